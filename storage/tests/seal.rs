//! The seal off the append path (`storage/src/log/seal.rs`): a seal only
//! switches WALs under the log's lock, and recovery completes every state a
//! crash can leave it in. Each test builds that state on real files.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{all_values, batch, small_config};
use goulette_storage::{FlushPolicy, LogConfig, PartitionLog};

fn wal_name(base: u64) -> String {
    format!("{base:020}.wal")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

/// A closed log whose last append sealed the WAL, plus `extra` batches in
/// the next WAL: the values it holds, the last fragment's base, and the
/// WAL's base (the last fragment's end).
fn sealed_log(dir: &Path, extra: usize) -> (Vec<(u64, String)>, u64, u64) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let mut i = 0;
    while log.fragment_count() < 3 {
        log.append(&batch(&format!("b{i}"), 2, i), 1).unwrap();
        i += 1;
    }
    let wal_base = log.log_end_offset();
    for j in 0..extra {
        log.append(&batch(&format!("x{j}"), 2, j as i64), 1).unwrap();
    }
    let values = all_values(&log, 0);
    log.close().unwrap();
    let last =
        names(dir).iter().filter_map(|n| n.strip_suffix(".frag")).map(|n| n.parse::<u64>().unwrap()).max().unwrap();
    (values, last, wal_base)
}

/// Puts the last fragment back as the WAL it was before its seal finished
/// (a crash right after the switch): two WALs, the lower one full.
fn unfinish_last_seal(dir: &Path, last: u64) {
    std::fs::rename(dir.join(format!("{last:020}.frag")), dir.join(wal_name(last))).unwrap();
    std::fs::remove_file(dir.join(format!("{last:020}.index"))).unwrap();
}

#[test]
fn a_crash_after_the_switch_leaves_two_wals_and_recovery_completes_the_seal() {
    let dir = tempfile::tempdir().unwrap();
    let (values, last, wal_base) = sealed_log(dir.path(), 3);
    unfinish_last_seal(dir.path(), last);
    assert_eq!(names(dir.path()).iter().filter(|n| n.ends_with(".wal")).count(), 2);

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(all_values(&log, 0), values, "every record, in order");
    let files = names(dir.path());
    assert!(files.contains(&format!("{last:020}.frag")) && files.contains(&format!("{last:020}.index")), "{files:?}");
    assert_eq!(files.iter().filter(|n| n.ends_with(".wal")).collect::<Vec<_>>(), vec![&wal_name(wal_base)]);
    let info = log.append(&batch("after", 1, 0), 1).unwrap();
    assert_eq!(info.base_offset, wal_base + 6, "appends continue at the log end");
}

#[test]
fn a_new_wal_whose_header_never_reached_the_disk_is_written_anew() {
    let dir = tempfile::tempdir().unwrap();
    let (values, last, wal_base) = sealed_log(dir.path(), 0);
    unfinish_last_seal(dir.path(), last);
    // The power went right after the switch: the new WAL's name is there,
    // its (unsynced) header is not. Nothing was appended to it.
    std::fs::write(dir.path().join(wal_name(wal_base)), b"").unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(all_values(&log, 0), values);
    assert_eq!(log.append(&batch("after", 1, 0), 1).unwrap().base_offset, wal_base);
    drop(log);
    // A bad header in front of frames is damage, not a torn creation.
    let dir = tempfile::tempdir().unwrap();
    let (_, last, wal_base) = sealed_log(dir.path(), 2);
    unfinish_last_seal(dir.path(), last);
    let higher = dir.path().join(wal_name(wal_base));
    let mut bytes = std::fs::read(&higher).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&higher, bytes).unwrap();
    assert!(PartitionLog::open(dir.path(), small_config()).is_err());
}

#[test]
fn a_lower_wal_that_lost_its_tail_takes_the_higher_one_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (values, last, wal_base) = sealed_log(dir.path(), 2);
    unfinish_last_seal(dir.path(), last);
    // The power went before the full WAL's fdatasync: its last frame is
    // torn. The new WAL then follows a gap; under flush=always nothing in
    // it was acknowledged (rounds sync the lower WAL first).
    let lower = dir.path().join(wal_name(last));
    let len = std::fs::metadata(&lower).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&lower).unwrap().set_len(len - 3).unwrap();

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let end = log.log_end_offset();
    assert!(end < wal_base, "the torn batch is gone: {end}");
    assert_eq!(all_values(&log, 0), values.into_iter().filter(|(o, _)| *o < end).collect::<Vec<_>>());
    assert!(!names(dir.path()).contains(&wal_name(wal_base)), "the WAL after the gap went");
    assert_eq!(log.append(&batch("after", 1, 0), 1).unwrap().base_offset, end);
}

#[test]
fn appends_and_reads_go_on_across_seals_and_every_append_is_durable_when_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: FlushPolicy::Always, ..small_config() };
    let log = std::sync::Arc::new(PartitionLog::open(dir.path(), config).unwrap());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let info = log.append(&batch(&format!("w{w}-{i}"), 2, i), 1).unwrap();
                    assert!(log.durable_offset() >= info.next_offset, "acknowledged before durable");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert!(log.fragment_count() > 3, "seals happened meanwhile");
    assert_eq!(all_values(&log, 0).len(), 400);
    log.close().unwrap();
    let reopened = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(reopened.log_end_offset(), 400);
}

#[test]
fn sealing_settings_change_while_the_log_is_open() {
    use goulette_storage::Rolling;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig { fragment_bytes: 1 << 20, ..small_config() }).unwrap();
    log.append(&batch("a", 2, 0), 1).unwrap();
    log.maintain(goulette_storage::now_ms(), Duration::from_secs(60)).unwrap();
    assert_eq!(log.fragment_count(), 0);
    let refused = log.set_rolling(Rolling { bytes: 10, max_age: Duration::from_secs(1) }).unwrap_err();
    assert!(refused.to_string().contains("fragment_bytes"), "{refused}");
    // By age (Kafka's segment.ms), at the next maintenance round.
    log.set_rolling(Rolling { bytes: 1 << 20, max_age: Duration::from_millis(1) }).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    log.maintain(goulette_storage::now_ms(), Duration::from_secs(60)).unwrap();
    assert_eq!(log.fragment_count(), 1);
    // By size (segment.bytes), at the next appends.
    log.set_rolling(Rolling { bytes: 4096, max_age: Duration::from_secs(3600) }).unwrap();
    let mut i = 0;
    while log.fragment_count() < 3 {
        log.append(&batch(&format!("b{i}"), 2, i), 1).unwrap();
        i += 1;
        assert!(i < 200, "never sealed by size");
    }
    assert_eq!(log.rolling().bytes, 4096);
}
