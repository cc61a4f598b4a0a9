//! WALs zero-filled ahead of need (`storage/src/prealloc.rs`,
//! `storage/src/log/prepare.rs`): a busy log moves to prepared WALs, every
//! fragment is as long as its data, and recovery completes every state a
//! crash can leave a prepared WAL in. Each test builds that state on real
//! files.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{all_values, batch};
use goulette_storage::read_only::ReadOnlyLog;
use goulette_storage::{FlushPolicy, LogConfig, PartitionLog};

/// Seals at 64 KiB: prepared WALs have 64 KiB of room, and one is asked
/// for once the WAL holds 32 KiB.
fn config() -> LogConfig {
    LogConfig {
        fragment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        flush: FlushPolicy::Always,
        retention_age: None,
        max_batch_bytes: 16 << 10,
        ..LogConfig::default()
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Appends batches until the log wants a prepared WAL; returns how many.
fn fill_until_wanted(log: &PartitionLog, tag: &str) -> usize {
    let mut i = 0;
    while !log.wants_prepared_wal() {
        log.append(&batch(&format!("{tag}{i}"), 3, i as i64), 1).unwrap();
        i += 1;
        assert!(i < 10_000, "a prepared WAL was never asked for");
    }
    i
}

/// A log now writing into a prepared WAL that holds some batches and zeros
/// after them; returns its values and the WAL's path.
fn log_in_a_prepared_wal(dir: &Path) -> (Vec<(u64, String)>, PathBuf) {
    let log = PartitionLog::open(dir, config()).unwrap();
    fill_until_wanted(&log, "a");
    assert!(log.prepare_wal().unwrap(), "prepared");
    assert!(!log.wants_prepared_wal(), "one at a time");
    // The next append seals the WAL that grew, switching to the prepared one.
    log.append(&batch("switch", 1, 0), 1).unwrap();
    for i in 0..5 {
        log.append(&batch(&format!("b{i}"), 2, i), 1).unwrap();
    }
    let values = all_values(&log, 0);
    let wal = files(dir, ".wal").pop().unwrap();
    assert_eq!(len(&wal), 64 << 10, "the WAL is the prepared file, its room kept");
    // Dropped without close: as a crash leaves it (every append was synced).
    drop(log);
    (values, wal)
}

#[test]
fn a_busy_log_moves_to_prepared_wals_and_every_fragment_is_as_long_as_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    let mut prepared = 0;
    for round in 0..6 {
        fill_until_wanted(&log, &format!("r{round}-"));
        assert!(log.prepare_wal().unwrap());
        prepared += 1;
        assert_eq!(len(&dir.path().join("prepared-wal.tmp")), 64 << 10, "zero-filled to the seal size");
    }
    assert_eq!(prepared, 6);
    let values = all_values(&log, 0);
    log.close().unwrap();
    assert!(files(dir.path(), ".tmp").is_empty(), "close deletes a prepared WAL not switched to");
    // Every fragment holds frames to its last byte: the room was cut at the seal.
    let scan = ReadOnlyLog::scan(dir.path()).unwrap();
    assert!(scan.files.len() >= 6, "{} files", scan.files.len());
    for file in &scan.files {
        assert!(file.bad_frame.is_none(), "{}: {:?}", file.path.display(), file.bad_frame);
        if !file.is_wal {
            let bytes = std::fs::read(&file.path).unwrap();
            assert_ne!(bytes.last(), Some(&0), "{} ends in zeros", file.path.display());
        }
    }
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(all_values(&log, 0), values);
}

#[test]
fn zeros_after_the_last_frame_are_room_kept_on_reopen_and_appends_continue_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let (values, wal) = log_in_a_prepared_wal(dir.path());
    let scan = ReadOnlyLog::scan(dir.path()).unwrap();
    assert!(scan.files.iter().all(|f| f.bad_frame.is_none()), "the room is not a torn tail to the inspector either");
    assert_eq!(scan.log_end_offset(), values.last().unwrap().0 + 1);

    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(all_values(&log, 0), values, "every record");
    assert_eq!(len(&wal), 64 << 10, "the room is kept, not cut as a torn tail");
    let end = log.log_end_offset();
    assert_eq!(log.append(&batch("after", 2, 0), 1).unwrap().base_offset, end);
    assert_eq!(len(&wal), 64 << 10, "an append into the room changes no file size");
    drop(log);
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(all_values(&log, 0).len(), values.len() + 2);
}

#[test]
fn a_torn_append_into_the_room_is_cut_and_damage_before_a_good_frame_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (values, wal) = log_in_a_prepared_wal(dir.path());
    // A torn append: the start of a frame written into the room, the rest
    // of the room still zeros.
    let bytes = std::fs::read(&wal).unwrap();
    let data_end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    let frame_start = 32; // after the file header: the first frame
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .write_all_at(&bytes[frame_start..frame_start + 40], data_end as u64)
        .unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(all_values(&log, 0), values, "the torn append is cut, nothing before it");
    let end = log.log_end_offset();
    assert_eq!(log.append(&batch("after", 1, 0), 1).unwrap().base_offset, end);
    drop(log);

    // A damaged frame with good frames after it, in a prepared WAL: never cut.
    let dir = tempfile::tempdir().unwrap();
    let (_, wal) = log_in_a_prepared_wal(dir.path());
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&wal).unwrap();
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, 100).unwrap();
    file.write_all_at(&[byte[0] ^ 0x55], 100).unwrap();
    let err = PartitionLog::open(dir.path(), config()).unwrap_err();
    assert!(err.to_string().contains("not a torn tail"), "{err}");
}

/// Seals the WAL now, as the broker's maintenance does: with a prepared
/// WAL waiting, a WAL that outgrew its room is switched from at once.
fn maintain(log: &PartitionLog) {
    maintain_later(log, 0);
}

/// [`maintain`] as if `hours` had passed (a WAL that old is sealed, room left or not).
fn maintain_later(log: &PartitionLog, hours: i64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    log.maintain(now + hours * 3600 * 1000, std::time::Duration::from_secs(60)).unwrap();
}

/// Fills the WAL, prepares the next and switches to it: the new WAL is
/// empty, its room all zeros. A WAL that was not prepared is switched from
/// at once; a prepared one only when full (an append seals it after
/// writing, so the new WAL stays empty).
fn switch_to_prepared(log: &PartitionLog, tag: &str) {
    fill_until_wanted(log, tag);
    assert!(log.prepare_wal().unwrap());
    let before = log.fragment_count();
    maintain(log);
    let mut i = 0;
    while log.fragment_count() == before {
        log.append(&batch(&format!("{tag}-full{i}"), 3, i), 1).unwrap();
        i += 1;
        assert!(i < 10_000, "the WAL was never sealed");
    }
}

#[test]
fn a_prepared_wal_whose_header_never_reached_the_disk_gets_it_again() {
    // The power went after the switch to a prepared WAL and the seal of
    // the one before, before anything was appended: the new WAL is its
    // name and zeros.
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    switch_to_prepared(&log, "a");
    let (values, end) = (all_values(&log, 0), log.log_end_offset());
    drop(log);
    let wal = files(dir.path(), ".wal").pop().unwrap();
    assert_eq!(len(&wal), 64 << 10);
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().write_all_at(&[0u8; 32], 0).unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(all_values(&log, 0), values);
    assert_eq!(log.append(&batch("after", 1, 0), 1).unwrap().base_offset, end);
    drop(log);
    // Frames behind a lost header are damage, not a torn creation.
    let wal = files(dir.path(), ".wal").pop().unwrap();
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().write_all_at(&[0u8; 32], 0).unwrap();
    assert!(PartitionLog::open(dir.path(), config()).is_err());
}

#[test]
fn a_seal_interrupted_after_switching_to_a_prepared_wal_is_completed_and_its_fragment_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    // The second switch seals a prepared WAL (P1), half full, by its age.
    switch_to_prepared(&log, "a");
    fill_until_wanted(&log, "b");
    assert!(log.prepare_wal().unwrap());
    let before = log.fragment_count();
    maintain_later(&log, 48);
    assert_eq!(log.fragment_count(), before + 1);
    let values = all_values(&log, 0);
    let end = log.log_end_offset();
    drop(log);
    // Undo that seal's finish: P1 back as a WAL with its room of zeros and
    // no index; the new WAL's header lost (all zeros).
    let frag = files(dir.path(), ".frag").pop().unwrap();
    let data_len = len(&frag);
    assert!(data_len < 64 << 10, "the sealed P1 was trimmed to its data");
    let lower = frag.with_extension("wal");
    std::fs::rename(&frag, &lower).unwrap();
    std::fs::remove_file(frag.with_extension("index")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&lower).unwrap().set_len(64 << 10).unwrap();
    let higher = files(dir.path(), ".wal").pop().unwrap();
    assert_ne!(higher, lower);
    std::fs::OpenOptions::new().write(true).open(&higher).unwrap().write_all_at(&[0u8; 32], 0).unwrap();

    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert_eq!(all_values(&log, 0), values, "every record");
    assert_eq!(len(&frag), data_len, "the completed seal cut the room");
    assert_eq!(log.append(&batch("after", 1, 0), 1).unwrap().base_offset, end);
}
