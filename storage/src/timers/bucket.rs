//! Bucket files: the timer index's entries, one file per [`SLOT_MS`] of
//! due time (`{slot:020}.bucket`), each file in the order its entries were
//! read off the log. Only the buckets being delivered are ever read, so
//! memory is one bucket's entries, whatever the number pending.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use super::entry::{ENTRY_LEN, Entry};
use crate::error::{IoContext, Result, StorageError};

/// The due time one bucket spans.
pub const SLOT_MS: i64 = 10_000;
const SUFFIX: &str = ".bucket";

/// The slot of a due time (times before the epoch share slot 0).
pub fn slot_of(due: i64) -> u64 {
    due.max(0).div_euclid(SLOT_MS) as u64
}

pub fn path(dir: &Path, slot: u64) -> PathBuf {
    dir.join(format!("{slot:020}{SUFFIX}"))
}

/// The slot a file name stands for, if it is a bucket's.
pub fn parse_name(name: &str) -> Option<u64> {
    name.strip_suffix(SUFFIX).filter(|s| s.len() == 20).and_then(|s| s.parse().ok())
}

/// What reading a bucket found.
#[derive(Debug)]
pub struct Contents {
    pub entries: Vec<Entry>,
    /// Bytes of a partial last entry (a write a crash cut): never synced,
    /// so never covered by the checkpoint, and safe to cut.
    pub torn_tail: usize,
}

/// Reads every entry of a bucket; a damaged whole entry is `Corruption`.
pub fn read(path: &Path) -> Result<Contents> {
    let mut bytes = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)).context(|| format!("read {}", path.display()))?;
    let whole = bytes.len() / ENTRY_LEN * ENTRY_LEN;
    let mut entries = Vec::with_capacity(whole / ENTRY_LEN);
    for (i, chunk) in bytes[..whole].chunks_exact(ENTRY_LEN).enumerate() {
        let chunk: &[u8; ENTRY_LEN] = chunk.try_into().unwrap_or(&[0; ENTRY_LEN]);
        let entry = Entry::decode(chunk).map_err(|reason| StorageError::Corruption {
            path: path.to_owned(),
            position: (i * ENTRY_LEN) as u64,
            reason: format!("timer entry: {reason}"),
        })?;
        entries.push(entry);
    }
    Ok(Contents { entries, torn_tail: bytes.len() - whole })
}

/// Appends `entries` (not synced: see [`sync`]).
pub fn append(path: &Path, entries: &[Entry]) -> Result<()> {
    let mut buf = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        buf.extend_from_slice(&e.encode());
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&buf))
        .context(|| format!("append to {}", path.display()))
}

/// Keeps the first `entries` entries of a bucket, durably.
pub fn cut(path: &Path, entries: usize) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len((entries * ENTRY_LEN) as u64)?;
            f.sync_data()
        })
        .context(|| format!("truncate {}", path.display()))
}

/// fdatasyncs a bucket.
pub fn sync(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_data()).context(|| format!("fsync {}", path.display()))
}
