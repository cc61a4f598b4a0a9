//! The timer index of delayed delivery (`storage/src/timers`) over a real
//! log: what it finds due and delivered, what a truncation of the log
//! takes back, and how it reopens after a torn write or damage.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::small_config;
use goulette_storage::delayed::{COPIES_BIT, DELAYED_BIT, DELAYED_FROM_HEADER, DELIVER_AT_HEADER};
use goulette_storage::timers::{Due, SLOT_MS, TIMERS_DIR, TimerIndex};
use goulette_storage::{Batch, BatchBuilder, Compression, FlushPolicy, LogConfig, PartitionLog, Record};

const T: i64 = 1_800_000_000_000;

fn config() -> LogConfig {
    LogConfig { flush: FlushPolicy::Always, ..small_config() }
}

/// One batch: `(due, copy of)` per record; a batch of copies when any
/// record is one, of originals otherwise (`None`: a plain record).
fn batch(records: &[(Option<i64>, Option<u64>)]) -> Batch {
    let mut b = BatchBuilder::new(Compression::None);
    for (due, copy_of) in records {
        let mut headers = Vec::new();
        if let Some(due) = due {
            headers.push((DELIVER_AT_HEADER.to_owned(), Bytes::from(due.to_string())));
        }
        if let Some(original) = copy_of {
            headers.push((DELAYED_FROM_HEADER.to_owned(), Bytes::from(original.to_string())));
        }
        b.push(&Record { timestamp: T, value: Bytes::from_static(b"v"), headers, ..Record::default() });
    }
    let batch = Batch::parse(b.build().unwrap()).unwrap();
    let bits = if records.iter().any(|(_, c)| c.is_some()) { COPIES_BIT } else { DELAYED_BIT };
    batch.with_delay_bits(if records.iter().all(|(d, _)| d.is_none()) { 0 } else { bits })
}

fn open(log: &PartitionLog) -> TimerIndex {
    let index = TimerIndex::open(log.dir(), log.log_start_offset(), log.log_end_offset()).unwrap();
    while index.catch_up(log, 1 << 20).unwrap() {}
    index
}

fn originals(due: &[Due]) -> Vec<u64> {
    due.iter().map(|d| d.original).collect()
}

/// Offsets 0-2 plain, 3-5 originals due at T+1s, T+25s, T+2s, 6 plain,
/// 7 a copy of 3.
fn sample(dir: &std::path::Path) -> PartitionLog {
    let log = PartitionLog::open(dir, config()).unwrap();
    log.append(&batch(&[(None, None); 3]), 1).unwrap();
    log.append(&batch(&[(Some(T + 1_000), None), (Some(T + 25_000), None), (Some(T + 2_000), None)]), 1).unwrap();
    log.append(&batch(&[(None, None)]), 1).unwrap();
    log.append(&batch(&[(Some(T + 1_000), Some(3))]), 1).unwrap();
    log
}

#[test]
fn originals_come_due_in_time_order_until_a_copy_is_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let log = sample(dir.path());
    let index = open(&log);
    assert_eq!(index.indexed_to(), 8);
    assert!(index.due(T, 0, 100).unwrap().is_empty(), "nothing due before its time");
    assert_eq!(originals(&index.due(T + 30_000, 0, 100).unwrap()), [5, 4], "3 was delivered; the rest by due time");
    assert_eq!(index.due(T + 30_000, 0, 1).unwrap(), [Due { original: 5, due: T + 2_000 }]);
    assert_eq!(index.pending(), 2);
    assert_eq!(index.retention_floor(), 3, "the bucket of 3 and 5 is not done");
    assert_eq!(originals(&index.due(T + 30_000, 5, 100).unwrap()), [5], "below the log start: deleted, not delivered");

    // Deliver 5 and 4; the buckets go once the copies are committed.
    log.append(&batch(&[(Some(T + 2_000), Some(5)), (Some(T + 25_000), Some(4))]), 1).unwrap();
    while index.catch_up(&log, 1 << 20).unwrap() {}
    assert!(index.due(T + 30_000, 0, 100).unwrap().is_empty());
    // Copies at 8 (of 5) and 9 (of 4): below a high watermark of 9, only
    // the first bucket is done for good.
    assert_eq!(index.collect(9, 0).unwrap(), 1, "a copy above the high watermark may still be cut");
    assert_eq!(index.collect(10, 0).unwrap(), 1);
    assert_eq!(index.retention_floor(), 10);
    assert_eq!(index.pending(), 0);
}

#[test]
fn a_truncation_takes_back_the_copies_and_originals_it_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let log = sample(dir.path());
    let index = open(&log);
    index.truncated(log.truncate_to(7).unwrap()).unwrap();
    assert_eq!(originals(&index.due(T + 30_000, 0, 100).unwrap()), [3, 5, 4], "the cut copy: 3 is pending again");
    // Inside the batch of 3-5: the whole batch goes.
    assert_eq!(log.truncate_to(4).unwrap(), 3);
    index.truncated(3).unwrap();
    assert!(index.due(T + 30_000, 0, 100).unwrap().is_empty());
    assert_eq!(index.pending(), 0);
    // What is appended after the cut is read afresh, through a reopen too.
    log.append(&batch(&[(Some(T + 3_000), None)]), 1).unwrap();
    drop(index);
    let index = open(&log);
    assert_eq!(originals(&index.due(T + 30_000, 0, 100).unwrap()), [3]);
    assert_eq!(index.due(T + 30_000, 0, 100).unwrap()[0].due, T + 3_000, "the new record at 3");
}

#[test]
fn a_reopened_index_cuts_a_torn_entry_and_rebuilds_from_the_log_when_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let log = sample(dir.path());
    let index = open(&log);
    index.checkpoint(&log).unwrap();
    drop(index);
    let bucket = |due: i64| dir.path().join(TIMERS_DIR).join(format!("{:020}.bucket", due / SLOT_MS));
    let path = bucket(T + 1_000);
    let whole = std::fs::read(&path).unwrap();
    assert_eq!(whole.len(), 3 * 32, "3 scheduled at T+1s and T+2s, 3 delivered");

    // A torn last write: cut, and the rest (below the checkpoint) stands,
    // with nothing read from the log again.
    let mut torn = whole.clone();
    torn.extend_from_slice(&[1, 0, 0]);
    std::fs::write(&path, &torn).unwrap();
    let index = TimerIndex::open(log.dir(), log.log_start_offset(), log.log_end_offset()).unwrap();
    assert_eq!(index.indexed_to(), 8, "the checkpoint covers the whole log");
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    assert_eq!(originals(&index.due(T + 30_000, 0, 100).unwrap()), [5, 4]);
    drop(index);

    // A flipped bit in a whole entry: nothing of the index is trusted; it
    // is read again from the log.
    let mut damaged = whole.clone();
    damaged[40] ^= 0x10;
    std::fs::write(&path, &damaged).unwrap();
    let index = TimerIndex::open(log.dir(), log.log_start_offset(), log.log_end_offset()).unwrap();
    assert_eq!(index.indexed_to(), 0, "rebuilt: read from the log start");
    while index.catch_up(&log, 1 << 20).unwrap() {}
    assert_eq!(originals(&index.due(T + 30_000, 0, 100).unwrap()), [5, 4]);
    assert_eq!(index.pending(), 2);
}

#[test]
fn retention_keeps_what_the_log_is_held_at() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_bytes: Some(1), ..config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..40 {
        log.append(&common::batch(&format!("b{i}"), 5, 0), 1).unwrap();
    }
    log.set_hold(100);
    log.enforce_retention(goulette_storage::now_ms()).unwrap();
    assert!(log.log_start_offset() <= 100, "held at 100, the log starts at {}", log.log_start_offset());
    assert!(log.log_start_offset() > 0, "and below it retention works");
}
