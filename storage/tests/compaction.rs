//! Compaction (`storage/src/log/compact`) on real files: what a pass keeps,
//! passes with a map too small for the keys, tombstones, and a crash at each
//! step of installing a cleaned file.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use common::small_config;
use goulette_storage::log::compact::CrashPoint;
use goulette_storage::{
    Batch, BatchBuilder, CompactionPolicy, Compression, OffsetMap, PartitionLog, Record, Throttle, now_ms,
};

/// (key, value) per offset; a `None` value is a tombstone, a `None` key a keyless record.
type Entry = (Option<String>, Option<String>);

fn batch_of(entries: &[Entry], compression: Compression) -> Batch {
    let mut b = BatchBuilder::new(compression);
    for (key, value) in entries {
        let record = Record {
            timestamp: now_ms(),
            key: key.as_ref().map(|k| Bytes::from(k.clone())),
            value: value.as_ref().map(|v| Bytes::from(v.clone())).unwrap_or_default(),
            headers: vec![("pad".into(), Bytes::from(vec![b'.'; 60]))],
        };
        match value {
            Some(_) => b.push(&record),
            None => b.push_tombstone(&record),
        }
    }
    Batch::parse(b.build().unwrap()).unwrap()
}

/// A log of `batches` batches of 5 records over `keys` keys (offset n has
/// key `k{n % keys}` and value `v{n}`), every 7th record a tombstone when
/// `tombstones`; compressed batches alternate with plain ones.
fn fill(dir: &Path, batches: u64, keys: u64, tombstones: bool) -> (PartitionLog, BTreeMap<u64, Entry>) {
    let log = PartitionLog::open(dir, small_config()).unwrap();
    let mut written = BTreeMap::new();
    for b in 0..batches {
        let entries: Vec<Entry> = (0..5)
            .map(|i| {
                let n = b * 5 + i;
                let value = (!(tombstones && n % 7 == 6)).then(|| format!("v{n}"));
                (Some(format!("k{}", n % keys)), value)
            })
            .collect();
        let codec = if b % 2 == 0 { Compression::Zstd } else { Compression::None };
        let base = log.append(&batch_of(&entries, codec), 1).unwrap().base_offset;
        for (i, e) in entries.into_iter().enumerate() {
            written.insert(base + i as u64, e);
        }
    }
    (log, written)
}

/// Every record the log serves: offset → (key, value or tombstone).
fn contents(log: &PartitionLog) -> BTreeMap<u64, Entry> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        for bytes in log.read(offset, 1 << 16).unwrap() {
            let batch = Batch::parse_sparse(bytes).unwrap();
            for r in batch.records().unwrap() {
                let key = r.record.key.map(|k| String::from_utf8(k.to_vec()).unwrap());
                let value = (!r.null_value).then(|| String::from_utf8(r.record.value.to_vec()).unwrap());
                assert!(out.insert(r.offset, (key, value)).is_none(), "offset {} served twice", r.offset);
            }
            offset = batch.next_offset();
        }
    }
    out
}

fn policy(delete_retention: Duration) -> CompactionPolicy {
    CompactionPolicy { delete_retention, min_lag: Duration::ZERO, min_dirty_ratio: 0.0 }
}

/// What compaction up to `clean_to` must leave of `written`: below it, the
/// latest record of each key (tombstones too unless `drop_tombstones`),
/// keyless records, and everything at or after it.
fn expected(written: &BTreeMap<u64, Entry>, clean_to: u64, drop_tombstones: bool) -> BTreeMap<u64, Entry> {
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for (&offset, (key, _)) in written.range(..clean_to) {
        if let Some(key) = key {
            latest.insert(key, offset);
        }
    }
    written
        .iter()
        .filter(|&(&offset, (key, value))| match key {
            _ if offset >= clean_to => true,
            None => true,
            Some(key) => latest[key.as_str()] == offset && (value.is_some() || !drop_tombstones),
        })
        .map(|(&o, e)| (o, e.clone()))
        .collect()
}

fn compact(log: &PartitionLog, map_bytes: usize) -> goulette_storage::CompactionReport {
    let mut map = OffsetMap::new(map_bytes);
    log.compact(&mut map, &mut Throttle::new(None), now_ms(), u64::MAX).unwrap().expect("a pass was due")
}

#[test]
fn a_pass_keeps_the_latest_record_of_every_key_at_its_offset_and_leaves_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written) = fill(dir.path(), 100, 20, false);
    assert!(log.fragment_count() > 5, "{}", log.fragment_count());
    let (before_bytes, before_frags) = (log.size_bytes(), log.fragment_count());
    assert_eq!(log.compact(&mut OffsetMap::new(1 << 20), &mut Throttle::new(None), now_ms(), u64::MAX).unwrap(), None);

    log.set_compaction(Some(policy(Duration::from_secs(3600))));
    let report = compact(&log, 1 << 20);
    let wal_base = report.clean_to;
    assert!(wal_base > 0 && wal_base < log.log_end_offset(), "only sealed fragments: {report:?}");
    let got = contents(&log);
    assert_eq!(got, expected(&written, wal_base, false));
    assert!(got.range(wal_base..).count() == written.range(wal_base..).count(), "the WAL is never compacted");
    assert!(log.size_bytes() < before_bytes / 2, "{} of {before_bytes} bytes", log.size_bytes());
    assert_eq!(log.fragment_count(), before_frags, "sources are grouped by their size, as in Kafka");
    assert_eq!(report.stats.records_removed as usize, written.len() - got.len());

    // Nothing new: no pass is due.
    assert_eq!(log.compact(&mut OffsetMap::new(1 << 20), &mut Throttle::new(None), now_ms(), u64::MAX).unwrap(), None);
    // The compacted log reopens as it was, and takes appends at its end.
    let end = log.log_end_offset();
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((contents(&log), log.log_end_offset()), (got, end));
    assert_eq!(log.cleaner_state().clean_to, wal_base);
    let info = log.append(&batch_of(&[(Some("k0".into()), Some("new".into()))], Compression::None), 2).unwrap();
    assert_eq!(info.base_offset, end);
    // The next pass merges the fragments the first one shrank.
    log.set_compaction(Some(policy(Duration::from_secs(3600))));
    while log.log_end_offset() < end + 500 {
        log.append(&batch_of(&[(Some("k1".into()), Some("x".repeat(200)))], Compression::None), 2).unwrap();
    }
    let frags = log.fragment_count();
    let report = compact(&log, 1 << 20);
    assert!(report.fragments_out < report.fragments_in && log.fragment_count() < frags, "{report:?}");
}

#[test]
fn a_map_too_small_for_the_keys_takes_more_passes_to_the_same_log() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (big, written) = fill(a.path(), 40, 30, true);
    let (small, _) = fill(b.path(), 40, 30, true);
    for log in [&big, &small] {
        log.set_compaction(Some(policy(Duration::from_secs(3600))));
    }
    let end = compact(&big, 1 << 20).clean_to;
    let mut passes = 0;
    while small.cleaner_state().clean_to < end {
        let report = compact(&small, 1); // one batch's keys per pass
        assert!(report.clean_to > 0 && !report.abandoned);
        passes += 1;
        assert!(passes < 100, "no progress");
    }
    assert!(passes > 5, "{passes} passes");
    assert_eq!(contents(&small), contents(&big));
    assert_eq!(contents(&big), expected(&written, end, false));
}

#[test]
fn tombstones_stay_for_their_retention_then_go_with_every_older_value() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written) = fill(dir.path(), 60, 20, true);
    log.set_compaction(Some(policy(Duration::from_secs(3600))));
    let clean_to = compact(&log, 1 << 20).clean_to;
    assert_eq!(contents(&log), expected(&written, clean_to, false));
    assert!(contents(&log).range(..clean_to).any(|(_, (_, v))| v.is_none()), "tombstones kept for now");

    // Their retention over: a pass is due for them alone, with nothing new.
    log.set_compaction(Some(policy(Duration::ZERO)));
    let report = compact(&log, 1 << 20);
    assert!(report.stats.tombstones_removed > 0, "{report:?}");
    assert_eq!(contents(&log), expected(&written, clean_to, true));
    assert_eq!(log.cleaner_state().tombstones_ms, i64::MAX);
}

#[test]
fn keyless_records_and_young_fragments_stay() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    for _ in 0..40 {
        let entries: Vec<Entry> = vec![(None, Some("a".into())), (Some("k".into()), Some("b".into()))];
        log.append(&batch_of(&entries, Compression::None), 1).unwrap();
    }
    let all = contents(&log);
    log.set_compaction(Some(CompactionPolicy { min_lag: Duration::from_secs(3600), ..policy(Duration::ZERO) }));
    assert_eq!(log.compact(&mut OffsetMap::new(1 << 20), &mut Throttle::new(None), now_ms(), u64::MAX).unwrap(), None);
    log.set_compaction(Some(policy(Duration::ZERO)));
    let clean_to = compact(&log, 1 << 20).clean_to;
    let got = contents(&log);
    assert_eq!(got.range(..clean_to).filter(|(_, (k, _))| k.is_some()).count(), 1, "one k below {clean_to}");
    assert_eq!(got.values().filter(|(k, _)| k.is_none()).count(), 40, "every keyless record");
    assert!(got.len() < all.len());
}

#[test]
fn a_crash_at_any_step_of_an_install_leaves_a_log_that_opens_whole() {
    let steps =
        [CrashPoint::BeforeCommit, CrashPoint::AfterCommit, CrashPoint::AfterRemove, CrashPoint::BetweenRenames];
    for step in steps {
        let dir = tempfile::tempdir().unwrap();
        let (log, written) = fill(dir.path(), 60, 20, false);
        log.set_compaction(Some(policy(Duration::from_secs(3600))));
        log.inject_compaction_crash(step);
        let mut map = OffsetMap::new(1 << 20);
        assert!(log.compact(&mut map, &mut Throttle::new(None), now_ms(), u64::MAX).is_err(), "{step:?}");
        let end = log.log_end_offset();
        drop(log);

        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        let names: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(!names.iter().any(|n| n.contains("compacted") || n.contains("cindex")), "{step:?}: {names:?}");
        assert_eq!(log.log_end_offset(), end);
        let got = contents(&log);
        // Committed or not, nothing acknowledged is lost: each key's latest
        // record is there, and every record served is one written there.
        for (offset, entry) in &got {
            assert_eq!(written.get(offset), Some(entry), "{step:?}");
        }
        for (offset, entry) in &expected(&written, end, false) {
            assert_eq!(got.get(offset), Some(entry), "{step:?}: the latest record of a key is missing");
        }
        if step == CrashPoint::BeforeCommit {
            assert_eq!(got, written, "not committed: the log as it was");
        } else {
            assert!(got.len() < written.len(), "{step:?}: committed, so open finished the install");
        }
        // The next pass finishes the job.
        log.set_compaction(Some(policy(Duration::from_secs(3600))));
        let clean_to = compact(&log, 1 << 20).clean_to;
        assert_eq!(contents(&log), expected(&written, clean_to, false), "{step:?}");
    }
}

#[test]
fn a_truncation_below_the_compacted_part_makes_what_follows_dirty_again() {
    let dir = tempfile::tempdir().unwrap();
    let (log, mut written) = fill(dir.path(), 60, 20, false);
    log.set_compaction(Some(policy(Duration::from_secs(3600))));
    let clean_to = compact(&log, 1 << 20).clean_to;
    let cut = clean_to / 2;
    let end = log.truncate_to(cut).unwrap();
    assert!(end <= cut && log.cleaner_state().clean_to <= end);
    written.retain(|&o, _| o < end);
    // New history after the cut, with keys the compacted part holds.
    for b in 0..60u64 {
        let entries: Vec<Entry> =
            (0..5).map(|i| (Some(format!("k{}", (b + i) % 20)), Some(format!("n{b}-{i}")))).collect();
        let base = log.append(&batch_of(&entries, Compression::None), 2).unwrap().base_offset;
        for (i, e) in entries.into_iter().enumerate() {
            written.insert(base + i as u64, e);
        }
    }
    let clean_to = compact(&log, 1 << 20).clean_to;
    assert_eq!(contents(&log), expected(&written, clean_to, false));
}

#[test]
fn a_key_updated_one_record_per_batch_leaves_a_header_per_run_not_per_update() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    let mut written = BTreeMap::new();
    for n in 0..3000u64 {
        let entry: Entry = (Some(format!("k{}", n % 10)), Some(format!("v{n}")));
        let base = log.append(&batch_of(std::slice::from_ref(&entry), Compression::None), 1).unwrap().base_offset;
        written.insert(base, entry);
    }
    let before = log.size_bytes();
    log.set_compaction(Some(policy(Duration::from_secs(3600))));
    compact(&log, 1 << 20);
    // The first pass cleans each fragment alone (groups go by their
    // sources' size); the next merges the shrunk ones, and their runs.
    for n in 3000..3100u64 {
        let entry: Entry = (Some(format!("k{}", n % 10)), Some(format!("v{n}")));
        let base = log.append(&batch_of(std::slice::from_ref(&entry), Compression::None), 1).unwrap().base_offset;
        written.insert(base, entry);
    }
    let clean_to = compact(&log, 1 << 20).clean_to;
    assert_eq!(contents(&log), expected(&written, clean_to, false));
    // Below clean_to: at most 10 batches with a record, and between them
    // runs of emptied batches merged into one header each (a few more
    // where one output file ends and the next begins).
    let mut batches = 0;
    let mut offset = log.log_start_offset();
    while offset < clean_to {
        for bytes in log.read(offset, 1 << 20).unwrap() {
            let batch = Batch::parse_sparse(bytes).unwrap();
            offset = batch.next_offset();
            batches += 1;
        }
    }
    assert!(batches <= 30, "{batches} batches below {clean_to}");
    assert!(log.size_bytes() < before / 10, "{} of {before} bytes", log.size_bytes());
    // Merged headers survive a reopen (contiguity, epochs, producers).
    let end = log.log_end_offset();
    log.close().unwrap();
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!((contents(&log), log.log_end_offset()), (expected(&written, clean_to, false), end));
    assert_eq!(log.epoch_history(), vec![(1, 0)]);
}

/// Appends, passes and full reads at once, for a while: a reader never
/// meets an error, a record out of place or out of order, whatever the
/// installs replace under it; and at the end the log is what the rules say.
#[test]
fn passes_under_concurrent_appends_and_reads_never_show_a_reader_anything_wrong() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), small_config()).unwrap());
    log.set_compaction(Some(policy(Duration::from_secs(3600))));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut written = BTreeMap::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let entries: Vec<Entry> =
                    (n..n + 4).map(|i| (Some(format!("k{}", i % 37)), Some(format!("v{i}")))).collect();
                let base = log.append(&batch_of(&entries, Compression::None), 1).unwrap().base_offset;
                assert_eq!(base, n);
                for (i, e) in entries.into_iter().enumerate() {
                    written.insert(base + i as u64, e);
                }
                n += 4;
            }
            written
        })
    };
    let compactor = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut map = OffsetMap::new(1 << 20);
            let mut passes = 0;
            while !stop.load(Ordering::Relaxed) {
                if log.compact(&mut map, &mut Throttle::new(None), now_ms(), u64::MAX).unwrap().is_some() {
                    passes += 1;
                }
            }
            passes
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut reads = 0;
    while std::time::Instant::now() < deadline {
        for (offset, (key, value)) in contents(&log) {
            assert_eq!(value, Some(format!("v{offset}")), "offset {offset}");
            assert_eq!(key, Some(format!("k{}", offset % 37)));
        }
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let passes = compactor.join().unwrap();
    assert!(passes > 2 && reads > 2, "{passes} passes, {reads} reads");
    let clean_to = compact(&log, 1 << 20).clean_to;
    assert_eq!(contents(&log), expected(&written, clean_to, false));
}

/// A record above the high watermark may still be cut by a truncation: it
/// must not be compacted, nor cost an older record of its key its place.
#[test]
fn records_above_the_high_watermark_neither_go_nor_supersede() {
    let dir = tempfile::tempdir().unwrap();
    let (log, written) = fill(dir.path(), 100, 20, false);
    log.set_compaction(Some(policy(Duration::from_secs(3600))));
    let committed = log.log_end_offset() / 2;
    let mut map = OffsetMap::new(1 << 20);
    let report = log.compact(&mut map, &mut Throttle::new(None), now_ms(), committed).unwrap().unwrap();
    assert!(report.clean_to <= committed && report.clean_to > 0, "{report:?} with the watermark at {committed}");
    assert_eq!(contents(&log), expected(&written, report.clean_to, false));
    // Nothing wholly committed: no pass.
    let other = tempfile::tempdir().unwrap();
    let (empty, _) = fill(other.path(), 100, 20, false);
    empty.set_compaction(Some(policy(Duration::from_secs(3600))));
    assert_eq!(empty.compact(&mut map, &mut Throttle::new(None), now_ms(), 3).unwrap(), None);
}
