//! Behaviour of `PartitionLog` through its public API, on real files.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{all_values, batch, sized_batch, small_config};
use goulette_storage::{Batch, BatchError, FlushPolicy, LogConfig, PartitionLog, ProducerInfo, StorageError};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn given_appends_when_read_back_should_return_every_record_in_order_with_assigned_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut expected = Vec::new();
    for i in 0..100 {
        let info = log.append(&batch(&format!("b{i}"), 3, 1000 + i), 7).unwrap();
        assert_eq!(info.base_offset, i as u64 * 3);
        assert_eq!(info.next_offset, i as u64 * 3 + 3);
        for j in 0..3 {
            expected.push((i as u64 * 3 + j, format!("b{i}-{j}")));
        }
    }
    assert!(log.fragment_count() > 3, "small fragments should have sealed");
    assert_eq!(all_values(&log, 0), expected);
    // Reads from the middle of a batch return that batch; stamped fields are set.
    let first = Batch::parse(log.read(40, 1).unwrap().remove(0)).unwrap();
    assert_eq!((first.base_offset(), first.partition_leader_epoch()), (39, 7));
    assert_eq!(log.read(300, 1000).unwrap(), Vec::<bytes::Bytes>::new());
    assert!(matches!(log.read(301, 1000), Err(StorageError::OffsetOutOfRange { .. })));
}

#[test]
fn given_sealed_fragments_when_reopened_should_keep_offsets_and_continue_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..50 {
            log.append(&batch(&format!("b{i}"), 2, i), 0).unwrap();
        }
        log.close().unwrap();
    }
    let files = names(dir.path());
    assert_eq!(files.iter().filter(|n| n.ends_with(".wal")).count(), 1, "{files:?}");
    assert!(files.iter().any(|n| n == "00000000000000000000.frag"), "{files:?}");
    assert!(files.iter().any(|n| n == "00000000000000000000.index"), "{files:?}");

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 100));
    assert_eq!(log.append(&batch("after", 1, 0), 0).unwrap().base_offset, 100);
    assert_eq!(all_values(&log, 99), vec![(99, "b49-1".into()), (100, "after-0".into())]);
}

#[test]
fn given_max_bytes_when_reading_should_return_whole_batches_and_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { max_batch_bytes: 64 << 10, fragment_bytes: 1 << 20, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for _ in 0..10 {
        log.append(&sized_batch(100, 0), 0).unwrap();
    }
    let big = log.append(&sized_batch(20_000, 0), 0).unwrap();
    let one = log.read(0, 1).unwrap();
    assert_eq!(one.len(), 1);
    let some = log.read(0, 500).unwrap();
    assert!(!some.is_empty() && some.iter().map(|b| b.len()).sum::<usize>() <= 500);
    // A batch larger than max_bytes still comes back whole.
    let whole = log.read(big.base_offset, 10).unwrap();
    assert_eq!(Batch::parse(whole[0].clone()).unwrap().records().unwrap()[0].record.value.len(), 20_000);
    // read_bounded never returns a batch at or past `upper`.
    let bounded = log.read_bounded(0, 1 << 20, 5).unwrap();
    assert!(bounded.iter().all(|b| Batch::parse(b.clone()).unwrap().base_offset() < 5));
}

#[test]
fn given_oversized_batch_when_appended_should_be_refused_and_log_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let err = log.append(&sized_batch(10_000, 0), 0).unwrap_err();
    assert!(matches!(err, StorageError::Batch(BatchError::BatchTooLarge { max: 4096, .. })), "{err}");
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn given_truncation_inside_the_wal_when_reopened_should_hold_only_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { fragment_bytes: 1 << 20, ..small_config() };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    for i in 0..10 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    // Offset 7 is inside batch 3 (offsets 6, 7): that whole batch goes.
    assert_eq!(log.truncate_to(7).unwrap(), 6);
    assert_eq!(log.append(&batch("new", 1, 0), 0).unwrap().base_offset, 6);
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    let values = all_values(&log, 0);
    assert_eq!(values.len(), 7);
    assert_eq!(values[6], (6, "new-0".into()));
}

#[test]
fn given_truncation_into_a_sealed_fragment_when_reopened_should_drop_later_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    let fragments_before = log.fragment_count();
    assert!(fragments_before >= 3);
    assert_eq!(log.truncate_to(31).unwrap(), 30);
    assert!(log.fragment_count() < fragments_before);
    assert_eq!(log.append(&batch("new", 1, 0), 0).unwrap().base_offset, 30);
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let values = all_values(&log, 0);
    assert_eq!(values.len(), 31);
    assert_eq!(values[29], (29, "b14-1".into()));
    assert_eq!(values[30], (30, "new-0".into()));
    assert_eq!(names(dir.path()).iter().filter(|n| n.ends_with(".wal")).count(), 1);
}

#[test]
fn given_truncation_before_the_log_start_should_empty_the_log_and_continue_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for i in 0..10 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    assert_eq!(log.truncate_to(0).unwrap(), 0);
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.fragment_count()), (0, 0, 0));
    assert_eq!(log.append(&batch("again", 1, 0), 0).unwrap().base_offset, 0);
}

#[test]
fn given_a_reset_past_the_end_the_log_should_be_empty_there_survive_reopen_and_take_replicated_batches() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..50 {
            log.append(&batch(&format!("b{i}"), 2, 0), 4).unwrap();
        }
        assert!(log.fragment_count() > 1);
        assert!(matches!(log.reset_to(99), Err(StorageError::ResetBeforeEnd { offset: 99, log_end: 100 })));
        log.reset_to(500).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset(), log.durable_offset()), (500, 500, 500));
        assert_eq!((log.fragment_count(), log.epoch_history()), (0, vec![]));
        assert!(matches!(log.read(100, 1000), Err(StorageError::OffsetOutOfRange { .. })));
        // A leader's batch at the new start is taken as it is.
        log.append_replicated(&batch("leader", 3, 0).stamped(500, 9)).unwrap();
        log.close().unwrap();
    }
    assert_eq!(names(dir.path()), ["00000000000000000500.wal", "leader-epochs"]);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 503));
    assert_eq!(log.epoch_history(), vec![(9, 500)]);
    assert_eq!(all_values(&log, 500)[0], (500, "leader-0".to_string()));
}

#[test]
fn given_a_reset_interrupted_before_the_old_wal_went_recovery_should_keep_the_old_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..5 {
            log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
        }
        log.close().unwrap();
    }
    // What a crash between writing the new WAL and removing the old leaves.
    let empty = dir.path().join("empty");
    PartitionLog::open(&empty, small_config()).unwrap().reset_to(700).unwrap();
    std::fs::copy(empty.join("00000000000000000700.wal"), dir.path().join("00000000000000000700.wal")).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 10));
    assert!(!dir.path().join("00000000000000000700.wal").exists());
}

#[test]
fn given_idempotent_batches_in_sealed_fragments_a_reopened_log_should_still_know_their_retries() {
    let dir = tempfile::tempdir().unwrap();
    let numbered = |i: i32| {
        batch(&format!("b{i}"), 4, 0).with_producer(ProducerInfo {
            producer_id: 9,
            producer_epoch: 0,
            base_sequence: i * 4,
        })
    };
    let mut offsets = Vec::new();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..40 {
            offsets.push(log.append(&numbered(i), 1).unwrap().base_offset);
        }
        assert!(log.fragment_count() > 3);
        log.close().unwrap();
    }
    let snapshots = names(dir.path()).into_iter().filter(|n| n.ends_with(".producers")).count();
    assert!((1..=2).contains(&snapshots), "the two newest snapshots are kept: {snapshots}");

    // After a restart, a retry of a batch sealed into an older fragment is
    // still recognised (the snapshot), and the sequence goes on.
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let retry = log.append_deferred(&numbered(20), 1).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.info.base_offset, offsets[20]);
    assert!(matches!(log.append(&numbered(42), 1), Err(StorageError::OutOfOrderSequence { expected: 160, .. })));
    assert_eq!(log.append(&numbered(40), 1).unwrap().base_offset, 160);

    // A truncation forgets what it cut, on disk too.
    log.truncate_to(offsets[30]).unwrap();
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let again = log.append_deferred(&numbered(30), 1).unwrap();
    assert!(!again.duplicate, "batch 30 was truncated away: appended again");
    assert_eq!(again.info.base_offset, offsets[30]);
}

#[test]
fn given_a_snapshot_that_outlived_a_truncation_it_should_be_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let numbered = |producer: i64, i: i32| {
        batch(&format!("p{producer}-{i}"), 4, 0).with_producer(ProducerInfo {
            producer_id: producer,
            producer_epoch: 0,
            base_sequence: i * 4,
        })
    };
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut offsets = Vec::new();
    for i in 0..40 {
        offsets.push(log.append(&numbered(1, i), 1).unwrap().base_offset);
    }
    let snapshot = names(dir.path()).into_iter().rfind(|n| n.ends_with(".producers")).unwrap();
    let saved = std::fs::read(dir.path().join(&snapshot)).unwrap();
    // The log is cut before that snapshot and grows past it again with other
    // batches; then the snapshot's deletion is "lost" (as in a crash).
    log.truncate_to(offsets[5]).unwrap();
    for i in 0..40 {
        log.append(&numbered(2, i), 1).unwrap();
    }
    log.close().unwrap();
    std::fs::write(dir.path().join(&snapshot), saved).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    // Producer 1's batch 20 was cut: it must be appended, not called a duplicate.
    let retry = log.append_deferred(&numbered(1, 20), 1);
    assert!(!matches!(&retry, Ok(p) if p.duplicate), "a stale snapshot made the log claim a batch it no longer holds");
}

#[test]
fn given_retention_by_size_should_delete_whole_fragments_from_the_start_and_keep_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_bytes: Some(8192), ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..200 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    let before = log.size_bytes();
    let deleted = log.enforce_retention(goulette_storage::now_ms()).unwrap();
    assert!(!deleted.is_empty());
    let start = log.log_start_offset();
    assert!(start > 0);
    assert!(log.size_bytes() >= 8192 && log.size_bytes() < before);
    assert_eq!(log.log_end_offset(), 400, "the end never moves");
    assert!(matches!(log.read(0, 100), Err(StorageError::OffsetOutOfRange { .. })));
    let values = all_values(&log, start);
    assert_eq!(values.first().unwrap().0, start);
    assert_eq!(values.last().unwrap(), &(399, "b199-1".to_string()));
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, 400));
}

#[test]
fn given_retention_changed_while_open_should_apply_from_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_bytes: None, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..200 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    assert_eq!(log.enforce_retention(goulette_storage::now_ms()).unwrap(), Vec::<u64>::new(), "no limit yet");
    log.set_retention(goulette_storage::Retention { bytes: Some(8192), ..log.retention() });
    assert!(!log.enforce_retention(goulette_storage::now_ms()).unwrap().is_empty());
    assert!(log.log_start_offset() > 0 && log.size_bytes() >= 8192);
    assert_eq!(log.log_end_offset(), 400, "the end never moves");
}

/// Sets the mtime of every sealed fragment of `dir` that ends at or before
/// offset `end` to `at_ms`: as if this broker had appended them then.
fn age_fragments(dir: &std::path::Path, end: u64, at_ms: i64) {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().unwrap().strip_suffix(".frag").map(|b| b.parse().unwrap()))
        .collect();
    bases.sort();
    // A fragment ends where the next one (or the WAL) begins.
    for pair in bases.windows(2).filter(|w| w[1] <= end) {
        let path = dir.join(format!("{:020}.frag", pair[0]));
        let at = std::time::UNIX_EPOCH + Duration::from_millis(at_ms as u64);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(at).unwrap();
    }
}

#[test]
fn given_retention_by_age_should_delete_fragments_appended_long_ago_but_never_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_age: Some(Duration::from_secs(60)), ..small_config() };
    let now = goulette_storage::now_ms();
    {
        let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for i in 0..60 {
            log.append(&batch(&format!("old{i}"), 2, now), 0).unwrap();
        }
        // Records stamped an hour ago (a producer's clock behind) or ten
        // years ahead: appended now, so young whatever they say.
        for i in 0..60 {
            log.append(&batch(&format!("new{i}"), 2, now - 3_600_000), 0).unwrap();
        }
        log.append(&batch("future", 2, now + 10 * 365 * 86_400_000), 0).unwrap();
        log.close().unwrap();
    }
    // The fragments of the first 120 records were appended an hour ago.
    age_fragments(dir.path(), 120, now - 3_600_000);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    log.enforce_retention(now).unwrap();
    let values = all_values(&log, log.log_start_offset());
    assert!(values.iter().any(|(_, v)| v.starts_with("new0-")), "recent data is kept");
    assert!(values.iter().filter(|(_, v)| v.starts_with("old")).count() < 20, "old fragments are gone");
    // Far in the future everything sealed is old (the future-stamped record
    // does not pin it), but the WAL stays.
    log.enforce_retention(now + 86_400_000).unwrap();
    assert_eq!(log.fragment_count(), 0);
    assert_eq!(log.log_end_offset(), 242);
    assert_eq!(log.log_start_offset(), log.log_end_offset() - all_values(&log, log.log_start_offset()).len() as u64);
}

#[test]
fn given_records_stamped_long_ago_and_just_appended_retention_should_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_age: Some(Duration::from_secs(60)), ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..60 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    assert!(log.fragment_count() > 0);
    assert_eq!(log.enforce_retention(goulette_storage::clock::retention_now_ms()).unwrap(), Vec::<u64>::new());
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn given_retention_age_of_forever_should_delete_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_age: Some(Duration::MAX), ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..60 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    assert!(log.fragment_count() > 0);
    assert_eq!(log.enforce_retention(goulette_storage::now_ms()).unwrap(), Vec::<u64>::new());
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn given_timestamps_should_find_the_first_record_at_or_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    // Batch i holds records with timestamps 1000*i + 0..5.
    for i in 0..100 {
        log.append(&batch(&format!("b{i}"), 5, 1000 * i), 0).unwrap();
    }
    assert!(log.fragment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some(0));
    assert_eq!(log.offset_for_timestamp(3).unwrap(), Some(3));
    assert_eq!(log.offset_for_timestamp(5).unwrap(), Some(5));
    assert_eq!(log.offset_for_timestamp(42_002).unwrap(), Some(212));
    assert_eq!(log.offset_for_timestamp(99_004).unwrap(), Some(499));
    assert_eq!(log.offset_for_timestamp(99_005).unwrap(), None);
}

#[test]
fn given_records_in_fragments_and_the_wal_the_largest_timestamp_should_be_found_wherever_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.max_timestamp(), None, "no record yet");
    // The largest timestamp early (in a sealed fragment), smaller ones after.
    log.append(&batch("early", 5, 500_000), 0).unwrap();
    for i in 0..100 {
        log.append(&batch(&format!("b{i}"), 5, 1000 * i), 0).unwrap();
    }
    assert!(log.fragment_count() > 2);
    assert_eq!(log.max_timestamp(), Some(500_004));
    assert_eq!(log.offset_for_timestamp(500_004).unwrap(), Some(4), "its first record");
    log.append(&batch("late", 1, 700_000), 0).unwrap();
    assert_eq!(log.max_timestamp(), Some(700_000), "now in the WAL");
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.max_timestamp(), Some(700_000), "after a reopen");
}

#[test]
fn given_missing_or_damaged_index_when_reopened_should_rebuild_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..60 {
            log.append(&batch(&format!("b{i}"), 2, 10 * i), 0).unwrap();
        }
    }
    let files = names(dir.path());
    let indexes: Vec<&String> = files.iter().filter(|n| n.ends_with(".index")).collect();
    assert!(indexes.len() >= 2);
    let first = dir.path().join(indexes[0]);
    let original = std::fs::read(&first).unwrap();
    std::fs::remove_file(&first).unwrap();
    let mut damaged = std::fs::read(dir.path().join(indexes[1])).unwrap();
    let at = damaged.len() - 5;
    damaged[at] ^= 0xff;
    std::fs::write(dir.path().join(indexes[1]), &damaged).unwrap();

    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(std::fs::read(&first).unwrap(), original, "rebuilt index equals the original");
    assert_ne!(std::fs::read(dir.path().join(indexes[1])).unwrap(), damaged);
    assert_eq!(all_values(&log, 0).len(), 120);
    assert_eq!(log.offset_for_timestamp(305).unwrap(), Some(62));
}

#[test]
fn given_many_fragments_read_should_keep_at_most_the_configured_number_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { max_mapped_fragments: 2, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..200 {
        log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
    }
    assert!(log.fragment_count() >= 5);
    let held = log.read(0, 10).unwrap();
    assert_eq!(all_values(&log, 0).len(), 400);
    assert!(log.mapped_fragment_count() <= 2, "{}", log.mapped_fragment_count());
    log.unmap_idle(Duration::ZERO);
    assert_eq!(log.mapped_fragment_count(), 0);
    // Slices handed out before unmapping stay readable.
    assert_eq!(Batch::parse(held[0].clone()).unwrap().base_offset(), 0);
}

#[test]
fn given_flush_always_concurrent_appenders_should_share_fsyncs_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        LogConfig { flush: FlushPolicy::Always, fragment_bytes: 1 << 20, max_batch_bytes: 1 << 16, ..small_config() };
    let log = Arc::new(PartitionLog::open(dir.path(), config).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| log.append(&batch(&format!("t{t}-{i}"), 1, 0), 0).unwrap().base_offset)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut offsets: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    offsets.sort();
    assert_eq!(offsets, (0..400).collect::<Vec<_>>(), "every offset assigned exactly once");
    let values = all_values(&log, 0);
    for t in 0..8 {
        let mine: Vec<&String> = values.iter().map(|(_, v)| v).filter(|v| v.starts_with(&format!("t{t}-"))).collect();
        let want: Vec<String> = (0..50).map(|i| format!("t{t}-{i}-0")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>(), "each appender's batches stay in its order");
    }
}

#[test]
fn given_a_conditional_append_it_should_land_only_where_the_log_ends_and_otherwise_say_where_that_is() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let appended = log.append_deferred_at(&batch("first", 3, 0), 0, 1).unwrap();
    log.wait_durable_for(&appended).unwrap();
    assert_eq!((appended.info.base_offset, appended.info.next_offset), (0, 3));
    // A copy of what is there already (an earlier run's write): refused, the log unchanged.
    let again = log.append_deferred_at(&batch("first", 3, 0), 0, 1);
    assert!(matches!(again, Err(StorageError::LogEndMismatch { expected: 0, log_end: 3 })), "{again:?}");
    let ahead = log.append_deferred_at(&batch("gap", 1, 0), 7, 1);
    assert!(matches!(ahead, Err(StorageError::LogEndMismatch { expected: 7, log_end: 3 })), "{ahead:?}");
    let inline = log.try_append_deferred_at(&batch("next", 2, 0), 3, 1).unwrap().unwrap();
    log.wait_durable_for(&inline).unwrap();
    assert_eq!(inline.info.base_offset, 3);
    let values: Vec<String> = all_values(&log, 0).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values, ["first-0", "first-1", "first-2", "next-0", "next-1"]);
}

#[test]
fn given_replicated_batches_should_keep_the_leaders_offsets_and_refuse_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let leader = PartitionLog::open(dir.path().join("leader"), small_config()).unwrap();
    let follower = PartitionLog::open(dir.path().join("follower"), small_config()).unwrap();
    for i in 0..5 {
        leader.append(&batch(&format!("b{i}"), 2, 0), 3).unwrap();
    }
    for bytes in leader.read(0, 1 << 20).unwrap() {
        follower.append_replicated(&Batch::parse(bytes).unwrap()).unwrap();
    }
    assert_eq!(all_values(&follower, 0), all_values(&leader, 0));
    let gap = batch("gap", 1, 0).stamped(42, 3);
    assert!(matches!(follower.append_replicated(&gap), Err(StorageError::Batch(BatchError::InvalidBatch { .. }))));
}

#[test]
fn given_age_threshold_maintain_should_seal_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { fragment_bytes: 1 << 20, fragment_max_age: Duration::from_secs(60), ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    log.append(&batch("a", 1, 0), 0).unwrap();
    log.maintain(goulette_storage::now_ms(), Duration::from_secs(60)).unwrap();
    assert_eq!(log.fragment_count(), 0);
    log.maintain(goulette_storage::now_ms() + 61_000, Duration::from_secs(60)).unwrap();
    assert_eq!(log.fragment_count(), 1);
    assert_eq!(all_values(&log, 0), vec![(0, "a-0".to_string())]);
}

#[test]
fn given_flush_interval_maintain_should_make_appends_durable_once_due() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: FlushPolicy::Interval(Duration::from_secs(5)), ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    log.append(&batch("a", 2, 0), 0).unwrap();
    assert_eq!(log.durable_offset(), 0, "interval appends do not wait for fdatasync");
    log.maintain(goulette_storage::now_ms(), Duration::from_secs(60)).unwrap();
    assert_eq!(log.durable_offset(), 0, "not due yet");
    log.maintain(goulette_storage::now_ms() + 5_000, Duration::from_secs(60)).unwrap();
    assert_eq!(log.durable_offset(), 2);
}

#[test]
fn given_flush_never_only_an_explicit_flush_or_a_seal_should_advance_the_durable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig { fragment_bytes: 1 << 20, ..small_config() }).unwrap();
    log.append(&batch("a", 3, 0), 0).unwrap();
    assert_eq!(log.durable_offset(), 0);
    log.flush().unwrap();
    assert_eq!(log.durable_offset(), 3);
}

#[test]
fn given_flush_always_append_should_return_only_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: FlushPolicy::Always, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    for i in 0..5 {
        let info = log.append(&batch("a", 2, 0), 0).unwrap();
        assert!(log.durable_offset() >= info.next_offset, "append {i} returned before its fdatasync");
    }
}

#[test]
fn given_deferred_appends_should_be_durable_only_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { flush: FlushPolicy::Always, ..small_config() };
    let log = PartitionLog::open(dir.path(), config).unwrap();
    let pending: Vec<_> = (0..10).map(|_| log.append_deferred(&batch("d", 1, 0), 0).unwrap()).collect();
    assert_eq!(pending.iter().map(|p| p.info.base_offset).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    // One wait for the last covers all of them (one fdatasync for the group).
    log.wait_durable_for(&pending[9]).unwrap();
    assert!(log.durable_offset() >= 10);
    for p in &pending {
        log.wait_durable_for(p).unwrap();
    }
    // A truncation overtaking a deferred append turns its wait into an error.
    let lost = log.append_deferred(&batch("x", 1, 0), 0).unwrap();
    log.truncate_to(lost.info.base_offset).unwrap();
    assert!(matches!(log.wait_durable_for(&lost), Err(StorageError::Truncated { base_offset: 10 })));
}

#[test]
fn given_try_append_it_should_append_inline_only_when_nothing_but_the_write_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    // A new leader epoch is recorded (fsynced) first: not inline.
    assert!(log.try_append_deferred(&batch("a", 1, 0), 3).is_none());
    assert_eq!(log.log_end_offset(), 0, "a refused try appends nothing");
    log.append(&batch("a", 1, 0), 3).unwrap();
    // Same epoch, small WAL: inline, with the offsets a blocking append gives.
    let pending = log.try_append_deferred(&batch("b", 2, 0), 3).unwrap().unwrap();
    assert_eq!((pending.info.base_offset, pending.info.next_offset), (1, 3));
    // Inline appends never seal; the one that makes the WAL due leaves the
    // seal to the next blocking append, and tries are refused until then.
    let fragments = log.fragment_count();
    let mut refused = false;
    for i in 0..200 {
        match log.try_append_deferred(&batch(&format!("c{i}"), 1, 0), 3) {
            Some(r) => {
                let _ = r.unwrap();
            }
            None => {
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "a WAL due for sealing refuses inline appends");
    assert_eq!(log.fragment_count(), fragments, "inline appends never seal");
    log.append(&batch("d", 1, 0), 3).unwrap();
    assert_eq!(log.fragment_count(), fragments + 1, "the blocking append sealed");
    let values = all_values(&log, 0);
    assert_eq!(values.len() as u64, log.log_end_offset());
    assert_eq!(values.iter().map(|(o, _)| *o).collect::<Vec<_>>(), (0..log.log_end_offset()).collect::<Vec<_>>());
}

#[test]
fn given_flush_never_a_wal_near_its_seal_should_ask_once_for_a_presync_that_makes_it_durable() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { fragment_bytes: 64 << 10, max_batch_bytes: 16 << 10, ..small_config() };
    let log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let mut asked = Vec::new();
    for i in 0..200 {
        let pending = log.append_deferred(&sized_batch(1000, 0), 0).unwrap();
        if pending.presync_due {
            asked.push((i, log.fragment_count()));
            log.presync().unwrap();
            assert!(log.durable_offset() >= pending.info.next_offset, "a presync covers what was written");
        }
    }
    assert!(log.fragment_count() >= 2, "the WAL sealed");
    // Once per WAL, before its seal (a quarter of 64 KiB ahead).
    let per_wal: std::collections::BTreeSet<usize> = asked.iter().map(|(_, f)| *f).collect();
    assert_eq!(per_wal.len(), asked.len(), "asked once per WAL: {asked:?}");
    assert!(asked.len() >= 2, "{asked:?}");
    // Flush=always keeps the WAL synced: never asked.
    let config = LogConfig { flush: FlushPolicy::Always, ..config };
    let always = PartitionLog::open(dir.path().join("always"), config).unwrap();
    for _ in 0..100 {
        assert!(!always.append_deferred(&sized_batch(1000, 0), 0).unwrap().presync_due);
    }
}

#[test]
fn given_closed_log_should_refuse_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    log.close().unwrap();
    assert!(matches!(log.append(&batch("x", 1, 0), 0), Err(StorageError::Closed { .. })));
}

#[test]
fn given_leadership_changes_the_epoch_history_should_record_where_each_epoch_starts_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for (epoch, batches) in [(1u32, 5), (2, 3), (5, 4)] {
            for i in 0..batches {
                log.append(&batch(&format!("e{epoch}-{i}"), 2, 0), epoch).unwrap();
            }
        }
        assert_eq!(log.epoch_history(), vec![(1, 0), (2, 10), (5, 16)]);
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 10)));
        assert_eq!(log.end_offset_for_epoch(3), Some((2, 16)));
        assert_eq!(log.end_offset_for_epoch(5), Some((5, 24)));
        assert_eq!(log.end_offset_for_epoch(0), None);
        // A batch stamped with an older epoch (a lagging leader) changes nothing.
        log.append(&batch("late", 1, 0), 2).unwrap();
        assert_eq!(log.epoch_history().len(), 3);
    }
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.epoch_history(), vec![(1, 0), (2, 10), (5, 16)]);
    // Every batch keeps the epoch it was stamped with.
    let first = Batch::parse(log.read(10, 1).unwrap().remove(0)).unwrap();
    assert_eq!(first.partition_leader_epoch(), 2);
}

#[test]
fn given_truncation_the_epoch_history_should_forget_epochs_past_the_new_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for epoch in 1..=4u32 {
        for _ in 0..10 {
            log.append(&batch("x", 2, 0), epoch).unwrap();
        }
    }
    assert!(log.fragment_count() > 0);
    log.truncate_to(45).unwrap();
    assert_eq!(log.epoch_history(), vec![(1, 0), (2, 20), (3, 40)]);
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 44)));
    log.append(&batch("y", 1, 0), 6).unwrap();
    drop(log);
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.epoch_history(), vec![(1, 0), (2, 20), (3, 40), (6, 44)]);
}

#[test]
fn given_a_missing_or_damaged_epoch_file_it_should_be_rebuilt_from_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for epoch in [3u32, 3, 7, 9, 9] {
            log.append(&batch("x", 3, 0), epoch).unwrap();
        }
    }
    let file = dir.path().join(goulette_storage::epochs::EPOCHS_FILE);
    let good = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.epoch_history(), vec![(3, 0), (7, 6), (9, 9)]);
    drop(log);
    assert_eq!(std::fs::read(&file).unwrap(), good, "the rebuilt file equals the original");
    let mut damaged = good.clone();
    damaged[17] ^= 0x55;
    std::fs::write(&file, &damaged).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.epoch_history(), vec![(3, 0), (7, 6), (9, 9)]);
}

#[test]
fn given_a_crash_after_recording_a_new_epoch_but_before_its_batch_the_entry_should_be_dropped() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        log.append(&batch("x", 2, 0), 1).unwrap();
    }
    // Write-ahead: epoch 2 was recorded at offset 2, then the process died
    // before its batch reached the log. Write that file by hand (format in
    // storage/src/epochs.rs).
    let mut file = Vec::new();
    file.extend_from_slice(&goulette_storage::epochs::EPOCHS_MAGIC);
    file.extend_from_slice(&goulette_storage::epochs::EPOCHS_VERSION.to_le_bytes());
    file.extend_from_slice(&[0, 0]);
    file.extend_from_slice(&2u32.to_le_bytes());
    for (epoch, start) in [(1u32, 0u64), (2, 2)] {
        file.extend_from_slice(&epoch.to_le_bytes());
        file.extend_from_slice(&start.to_le_bytes());
    }
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_le_bytes());
    std::fs::write(dir.path().join(goulette_storage::epochs::EPOCHS_FILE), &file).unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.epoch_history(), vec![(1, 0)]);
    assert_eq!(log.end_offset_for_epoch(2), Some((1, 2)));
}

#[test]
fn given_replicated_batches_the_follower_should_hold_the_leaders_epoch_history() {
    let dir = tempfile::tempdir().unwrap();
    let leader = PartitionLog::open(dir.path().join("leader"), small_config()).unwrap();
    let follower = PartitionLog::open(dir.path().join("follower"), small_config()).unwrap();
    for epoch in [1u32, 1, 4, 4, 4, 6] {
        leader.append(&batch("r", 2, 0), epoch).unwrap();
    }
    for bytes in leader.read(0, 1 << 20).unwrap() {
        follower.append_replicated(&Batch::parse(bytes).unwrap()).unwrap();
    }
    assert_eq!(follower.epoch_history(), leader.epoch_history());
    assert_eq!(follower.epoch_history(), vec![(1, 0), (4, 4), (6, 10)]);
}
