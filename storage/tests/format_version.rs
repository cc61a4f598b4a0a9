//! A data directory written before the Kafka RecordBatch v2 switch (log file
//! version 1, batches of magic 1) is refused with a typed error that says
//! what it is, and nothing in it is changed: not cut as a torn tail, not
//! repaired as corruption, no index rebuilt, no leftover deleted, no WAL
//! created.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use goulette_storage::frame::FILE_MAGIC;
use goulette_storage::{LogConfig, PartitionLog, StorageError};

/// A log file header of version 1, as Goulette wrote it before version 2.
fn v1_file_header(base_offset: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(32);
    h.extend_from_slice(&FILE_MAGIC);
    h.extend_from_slice(&1u16.to_le_bytes()); // version 1
    h.extend_from_slice(&[0; 2]);
    h.extend_from_slice(&base_offset.to_le_bytes());
    h.extend_from_slice(&[0; 8]);
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// A frame holding a batch of Goulette's batch format 1 (little-endian,
/// magic 1, CRC-32 IEEE, 57-byte header), one record with value "v".
fn v1_frame(base_offset: u64) -> Vec<u8> {
    #[rustfmt::skip]
    let record: &[u8] = &[
        0x07,       // length (LEB128)
        0x00,       // attributes
        0x00,       // timestamp delta
        0x00,       // offset delta
        0x01,       // key length -1 (zigzag): no key
        0x01, b'v', // value length 1 (LEB128), value
        0x00,       // no header
    ];
    let mut batch = Vec::new();
    batch.extend_from_slice(&base_offset.to_le_bytes());
    batch.extend_from_slice(&((57 + record.len()) as u32).to_le_bytes()); // total length
    batch.extend_from_slice(&3u32.to_le_bytes()); // leader epoch
    batch.push(1); // magic 1
    batch.extend_from_slice(&[0; 4]); // CRC, below
    batch.extend_from_slice(&0u16.to_le_bytes()); // attributes
    batch.extend_from_slice(&1_700_000_000_000i64.to_le_bytes()); // first timestamp
    batch.extend_from_slice(&1_700_000_000_000i64.to_le_bytes()); // max timestamp
    batch.extend_from_slice(&(-1i64).to_le_bytes()); // producer id
    batch.extend_from_slice(&(-1i16).to_le_bytes()); // producer epoch
    batch.extend_from_slice(&(-1i32).to_le_bytes()); // base sequence
    batch.extend_from_slice(&1u32.to_le_bytes()); // record count
    assert_eq!(batch.len(), 57);
    batch.extend_from_slice(record);
    let crc = crc32fast::hash(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_le_bytes());

    let mut frame = Vec::new();
    frame.extend_from_slice(&(batch.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&batch).to_le_bytes());
    frame.extend_from_slice(&batch);
    frame
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// A version-1 partition directory: a sealed fragment (without its index,
/// which an open would rebuild), a WAL ending in a torn frame (which
/// recovery would cut), and a leftover temporary file (which an open
/// would delete).
fn v1_directory(dir: &Path) {
    let frag = [v1_file_header(0), v1_frame(0)].concat();
    std::fs::write(dir.join("00000000000000000000.frag"), frag).unwrap();
    let torn = v1_frame(2);
    let wal = [v1_file_header(1), v1_frame(1), torn[..20].to_vec()].concat();
    std::fs::write(dir.join("00000000000000000001.wal"), wal).unwrap();
    std::fs::write(dir.join("00000000000000000001.snap.tmp"), b"leftover").unwrap();
}

fn assert_unsupported(err: StorageError) {
    match &err {
        StorageError::UnsupportedFormat { path, version: 1, supported: 2 } => {
            assert!(path.extension().is_some_and(|e| e == "frag" || e == "wal"), "{}", path.display());
        }
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("format version 1"), "{message}");
    assert!(
        message.contains("written by a Goulette version with batch format 1 (before the Kafka RecordBatch v2 switch)"),
        "{message}"
    );
    assert!(message.contains("delete the partition directory to start empty; nothing was changed"), "{message}");
}

#[test]
fn given_version_1_files_when_opened_should_refuse_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    v1_directory(dir.path());
    let before = snapshot(dir.path());

    assert_unsupported(PartitionLog::open(dir.path(), LogConfig::default()).unwrap_err());
    assert_eq!(snapshot(dir.path()), before, "open changed the directory");

    // A repairing open (what a follower does with a damaged log) must not
    // take the old format for damage either.
    assert_unsupported(goulette_storage::repair::open_repairing(dir.path(), LogConfig::default()).unwrap_err());
    assert_eq!(snapshot(dir.path()), before, "a repairing open changed the directory");
}

#[test]
fn given_only_a_version_1_wal_when_opened_should_refuse_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let wal = [v1_file_header(0), v1_frame(0), vec![0xab; 7]].concat();
    std::fs::write(dir.path().join("00000000000000000000.wal"), &wal).unwrap();
    let before = snapshot(dir.path());

    assert_unsupported(PartitionLog::open(dir.path(), LogConfig::default()).unwrap_err());
    assert_unsupported(goulette_storage::repair::open_repairing(dir.path(), LogConfig::default()).unwrap_err());
    assert_eq!(snapshot(dir.path()), before);
}

/// The same directory in the current version opens: it is the version that
/// is refused, not something else in the hand-made files.
#[test]
fn a_current_log_still_opens_and_its_files_say_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    log.close().unwrap();
    let wal = std::fs::read(dir.path().join("00000000000000000000.wal")).unwrap();
    assert_eq!(wal[8..10], 2u16.to_le_bytes());
    assert_eq!(goulette_storage::frame::FILE_VERSION, 2);
    PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
}
