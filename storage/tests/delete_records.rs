//! Records deleted on request (Kafka's DeleteRecords) through the public
//! API, on real files: the log starts where asked, whole files below go,
//! the start survives a reopen and a crash between its two steps, and a
//! damaged `log-start` file hides nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{all_values, batch, small_config};
use goulette_storage::log_start::LOG_START_FILE;
use goulette_storage::{PartitionLog, StorageError};

fn frags(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".frag"))
        .count()
}

/// A log of 100 batches of 2 records (offsets 0..200) over several fragments.
fn filled(dir: &std::path::Path) -> PartitionLog {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    for i in 0..100 {
        log.append(&batch(&format!("b{i}"), 2, 1000 * i), 0).unwrap();
    }
    assert!(log.fragment_count() > 3);
    log
}

#[test]
fn given_a_start_asked_for_the_log_should_start_there_and_drop_whole_files_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    let before = frags(dir.path());
    // 101 is inside a fragment and inside a batch (100–101).
    assert_eq!(log.delete_records_before(101).unwrap(), 101);
    assert_eq!(log.log_start_offset(), 101);
    assert!(frags(dir.path()) < before, "fragments wholly below 101 are removed");
    assert!(matches!(log.read(100, 1 << 16), Err(StorageError::OffsetOutOfRange { log_start: 101, .. })));
    let values = all_values(&log, 101);
    assert_eq!(values.first().unwrap(), &(101, "b50-1".to_owned()));
    assert_eq!(values.len(), 99);
    // A consumer asking by time for a deleted record starts at the log start.
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some(101));

    // Lower asks change nothing; past the end is refused; the end is fine.
    assert_eq!(log.delete_records_before(50).unwrap(), 101);
    assert!(matches!(log.delete_records_before(201), Err(StorageError::OffsetOutOfRange { .. })));
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (101, 200), "kept across a reopen");
    assert_eq!(log.delete_records_before(200).unwrap(), 200);
    assert!(all_values(&log, 200).is_empty());
    log.append(&batch("after", 1, 0), 0).unwrap();
    assert_eq!(all_values(&log, 200), vec![(200, "after-0".to_owned())], "appends go on at the end");
}

#[test]
fn given_a_crash_after_the_start_was_stored_the_files_below_it_should_go_at_the_next_retention_run() {
    let before = tempfile::tempdir().unwrap();
    let after = tempfile::tempdir().unwrap();
    drop(filled(before.path()));
    for e in std::fs::read_dir(before.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), after.path().join(e.file_name())).unwrap();
    }
    // The deletion on one copy; its stored start on the other: the state a
    // crash between storing the start and removing files leaves.
    let log = PartitionLog::open(before.path(), small_config()).unwrap();
    log.delete_records_before(150).unwrap();
    drop(log);
    std::fs::copy(before.path().join(LOG_START_FILE), after.path().join(LOG_START_FILE)).unwrap();
    let all = frags(after.path());

    let log = PartitionLog::open(after.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 150);
    assert!(matches!(log.read(0, 1 << 16), Err(StorageError::OffsetOutOfRange { .. })));
    log.enforce_retention(goulette_storage::now_ms()).unwrap();
    assert!(frags(after.path()) < all);
    assert_eq!(frags(after.path()), frags(before.path()));
    assert_eq!(all_values(&log, 150).len(), 50);
}

#[test]
fn given_a_damaged_log_start_file_the_log_should_start_at_its_first_file_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    log.delete_records_before(101).unwrap();
    let start = log.fragment_count();
    drop(log);
    let path = dir.path().join(LOG_START_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert!(log.log_start_offset() <= 101, "nothing is hidden by a start that cannot be trusted");
    assert_eq!(log.fragment_count(), start);
    assert_eq!(all_values(&log, log.log_start_offset()).last().unwrap().0, 199);
}

#[test]
fn given_records_deleted_inside_the_wal_the_log_should_open_again() {
    // The defect: recovery read the producers' batches from the WAL's base,
    // below the log start, and the log could not open ("offset 0 is out of
    // range [30, 100]"): a broker restarted after a DeleteRecords failed
    // the replica.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..8 {
        log.append(&batch(&format!("b{i}"), 2, 1000 * i), 0).unwrap();
    }
    assert_eq!(log.fragment_count(), 0, "everything in the WAL");
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 16));
    assert_eq!(all_values(&log, 5).first().unwrap(), &(5, "b2-1".to_owned()));
    // Without the epochs file too (it is rebuilt from the log start).
    drop(log);
    std::fs::remove_file(dir.path().join(goulette_storage::epochs::EPOCHS_FILE)).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 5);
}
