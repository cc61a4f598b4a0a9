//! Damaged files: torn WAL tails are cut, anything else is a typed error, and
//! no batch that lies wholly before the damage is ever lost.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{all_values, batch, small_config};
use goulette_storage::frame::{FILE_HEADER_LEN, FRAME_HEADER_LEN};
use goulette_storage::{LogConfig, PartitionLog, StorageError};
use proptest::prelude::*;

fn wal_path(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a WAL exists")
}

fn wal_only_config() -> LogConfig {
    LogConfig { fragment_bytes: 1 << 20, ..small_config() }
}

/// Writes `n` batches of 2 records; returns each batch's (end byte in the WAL, values).
fn fill(dir: &Path, n: usize) -> Vec<(u64, Vec<(u64, String)>)> {
    let log = PartitionLog::open(dir, wal_only_config()).unwrap();
    let mut ends = Vec::new();
    let mut pos = FILE_HEADER_LEN as u64;
    for i in 0..n {
        let b = batch(&format!("b{i}"), 2, 0);
        pos += (FRAME_HEADER_LEN + b.len()) as u64;
        let info = log.append(&b, 0).unwrap();
        ends.push((pos, vec![(info.base_offset, format!("b{i}-0")), (info.base_offset + 1, format!("b{i}-1"))]));
    }
    log.close().unwrap();
    ends
}

/// Values of every batch that ends at or before byte `damage`.
fn intact_before(ends: &[(u64, Vec<(u64, String)>)], damage: u64) -> Vec<(u64, String)> {
    ends.iter().filter(|(end, _)| *end <= damage).flat_map(|(_, v)| v.clone()).collect()
}

#[test]
fn given_torn_wal_when_reopened_should_truncate_tail_and_continue() {
    let dir = tempfile::tempdir().unwrap();
    let ends = fill(dir.path(), 10);
    let wal = wal_path(dir.path());
    let cut = ends[7].0 + 5; // five bytes into batch 8
    std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(cut).unwrap();

    let log = PartitionLog::open(dir.path(), wal_only_config()).unwrap();
    assert_eq!(all_values(&log, 0), intact_before(&ends, cut));
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), ends[7].0, "tail cut durably at the last whole frame");
    assert_eq!(log.append(&batch("next", 1, 0), 0).unwrap().base_offset, 16);
}

#[test]
fn given_garbage_after_the_last_frame_when_reopened_should_drop_it() {
    let dir = tempfile::tempdir().unwrap();
    let ends = fill(dir.path(), 5);
    let wal = wal_path(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes.extend_from_slice(&[0xab; 300]);
    std::fs::write(&wal, &bytes).unwrap();
    let log = PartitionLog::open(dir.path(), wal_only_config()).unwrap();
    assert_eq!(all_values(&log, 0).len(), 10);
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), ends[4].0);
}

#[test]
fn given_corruption_followed_by_valid_frames_when_reopened_should_fail_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ends = fill(dir.path(), 10);
    let wal = wal_path(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    let at = ends[3].0 as usize + 40; // inside batch 4
    bytes[at] ^= 0x01;
    std::fs::write(&wal, &bytes).unwrap();
    let err = PartitionLog::open(dir.path(), wal_only_config()).unwrap_err();
    match err {
        StorageError::Corruption { position, .. } => assert_eq!(position, ends[3].0),
        other => panic!("expected corruption, got {other}"),
    }
    assert_eq!(std::fs::read(&wal).unwrap(), bytes, "a failed open truncates nothing");
}

#[test]
fn given_zeroed_sector_before_valid_frames_when_reopened_should_fail_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), wal_only_config()).unwrap();
    // Frames of ~2 KiB, so that whole 512-byte sectors lie inside each.
    let mut ends = Vec::new();
    for _ in 0..6 {
        log.append(&common::sized_batch(2000, 0), 0).unwrap();
        ends.push(std::fs::metadata(wal_path(dir.path())).unwrap().len());
    }
    drop(log);
    let wal = wal_path(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    // Zero the first whole sector inside frame 3 (frames 4 and 5 stay valid).
    let sector = (ends[2] as usize).div_ceil(512) * 512;
    assert!(sector + 512 <= ends[3] as usize);
    bytes[sector..sector + 512].fill(0);
    std::fs::write(&wal, &bytes).unwrap();
    // A zeroed sector under acknowledged batches cannot be told from a torn
    // group commit: it is corruption, and nothing is cut.
    match PartitionLog::open(dir.path(), wal_only_config()).unwrap_err() {
        StorageError::Corruption { position, .. } => assert_eq!(position, ends[2]),
        other => panic!("expected corruption, got {other}"),
    }
    assert_eq!(std::fs::read(&wal).unwrap(), bytes, "a failed open truncates nothing");
}

#[test]
fn given_damaged_file_header_when_reopened_should_fail() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 3);
    let wal = wal_path(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[3] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    assert!(matches!(PartitionLog::open(dir.path(), wal_only_config()), Err(StorageError::Corruption { .. })));
}

#[test]
fn given_damaged_fragment_without_index_when_reopened_should_fail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..60 {
            log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
        }
    }
    let frag = dir.path().join("00000000000000000000.frag");
    let mut bytes = std::fs::read(&frag).unwrap();
    bytes[FILE_HEADER_LEN + 100] ^= 0x10;
    std::fs::write(&frag, &bytes).unwrap();
    std::fs::remove_file(dir.path().join("00000000000000000000.index")).unwrap();
    let err = PartitionLog::open(dir.path(), small_config()).unwrap_err();
    assert!(matches!(err, StorageError::Corruption { .. }), "{err}");
}

#[test]
fn given_missing_middle_fragment_when_reopened_should_report_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = PartitionLog::open(dir.path(), small_config()).unwrap();
        for i in 0..100 {
            log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
        }
        assert!(log.fragment_count() >= 3);
    }
    let mut frags: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "frag"))
        .collect();
    frags.sort();
    std::fs::remove_file(&frags[1]).unwrap();
    let err = PartitionLog::open(dir.path(), small_config()).unwrap_err();
    assert!(matches!(err, StorageError::Corruption { .. }), "{err}");
}

/// Fills a log of small fragments and flips one byte inside the frames of
/// its first fragment, index intact (open does not rescan it).
fn flip_in_first_fragment(dir: &Path) -> Vec<(u64, String)> {
    let written = {
        let log = PartitionLog::open(dir, small_config()).unwrap();
        for i in 0..60 {
            log.append(&batch(&format!("b{i}"), 2, 0), 0).unwrap();
        }
        all_values(&log, 0)
    };
    let frag = dir.join("00000000000000000000.frag");
    let mut bytes = std::fs::read(&frag).unwrap();
    bytes[FILE_HEADER_LEN + 100] ^= 0x10;
    std::fs::write(&frag, &bytes).unwrap();
    written
}

#[test]
fn given_a_flipped_bit_in_a_sealed_fragment_a_read_should_report_corruption_not_serve_it() {
    let dir = tempfile::tempdir().unwrap();
    flip_in_first_fragment(dir.path());
    let log = PartitionLog::open(dir.path(), small_config()).unwrap();
    match log.read(0, 1 << 20) {
        Err(StorageError::Corruption { position, .. }) => assert_eq!(position, FILE_HEADER_LEN as u64),
        other => panic!("a damaged batch was served: {other:?}"),
    }
}

#[test]
fn given_damage_a_repairing_open_should_cut_before_the_first_bad_batch_and_keep_what_precedes() {
    // In a sealed fragment, index intact or not: its first batch is
    // damaged, so the log is cut to empty there.
    for drop_index in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        flip_in_first_fragment(dir.path());
        if drop_index {
            std::fs::remove_file(dir.path().join("00000000000000000000.index")).unwrap();
        }
        let (log, cuts) = goulette_storage::repair::open_repairing(dir.path(), small_config()).unwrap();
        assert_eq!(cuts.len(), 1, "{cuts:?}");
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert_eq!(log.append(&batch("again", 1, 0), 0).unwrap().base_offset, 0);
    }

    // In the WAL, behind intact batches: those are kept.
    let dir = tempfile::tempdir().unwrap();
    let ends = fill(dir.path(), 10);
    let wal = wal_path(dir.path());
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[ends[3].0 as usize + 40] ^= 0x01;
    std::fs::write(&wal, &bytes).unwrap();
    let (log, cuts) = goulette_storage::repair::open_repairing(dir.path(), wal_only_config()).unwrap();
    assert_eq!(cuts[0].position, ends[3].0);
    assert_eq!(all_values(&log, 0), intact_before(&ends, ends[3].0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Cutting the WAL anywhere loses exactly the batches not wholly before the cut.
    #[test]
    fn random_truncation_never_loses_a_batch_before_the_cut(n in 1usize..12, cut_frac in 0.0f64..1.0) {
        let dir = tempfile::tempdir().unwrap();
        let ends = fill(dir.path(), n);
        let wal = wal_path(dir.path());
        let len = std::fs::metadata(&wal).unwrap().len();
        let cut = FILE_HEADER_LEN as u64 + ((len - FILE_HEADER_LEN as u64) as f64 * cut_frac) as u64;
        std::fs::OpenOptions::new().write(true).open(&wal).unwrap().set_len(cut).unwrap();
        let log = PartitionLog::open(dir.path(), wal_only_config()).unwrap();
        prop_assert_eq!(all_values(&log, 0), intact_before(&ends, cut));
    }

    /// Flipping any byte either cuts a torn tail (keeping everything before
    /// the damaged frame) or is reported as corruption; it never panics and
    /// never silently drops a frame followed by valid data.
    #[test]
    fn random_byte_flips_never_panic_or_lose_earlier_batches(n in 1usize..10, at_frac in 0.0f64..1.0, flip in 1u8..=255) {
        let dir = tempfile::tempdir().unwrap();
        let ends = fill(dir.path(), n);
        let wal = wal_path(dir.path());
        let mut bytes = std::fs::read(&wal).unwrap();
        let at = (bytes.len() as f64 * at_frac) as usize;
        bytes[at] ^= flip;
        std::fs::write(&wal, &bytes).unwrap();
        let damaged_frame = ends.iter().position(|(end, _)| (at as u64) < *end);
        match PartitionLog::open(dir.path(), wal_only_config()) {
            Ok(log) => {
                // Only a flip in the last frame can be a torn tail.
                prop_assert_eq!(damaged_frame, Some(n - 1));
                prop_assert_eq!(all_values(&log, 0), intact_before(&ends, at as u64));
            }
            Err(StorageError::Corruption { .. }) => {
                prop_assert!(damaged_frame != Some(n - 1) || at < FILE_HEADER_LEN);
                prop_assert_eq!(std::fs::read(&wal).unwrap(), bytes);
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}
