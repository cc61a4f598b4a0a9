//! Cleaning a run of sealed fragments into one new file: every batch is
//! copied in order with the records compaction keeps, so offsets, batch
//! headers (base offset, `last_offset_delta`, leader epoch, producer
//! fields) and the file format stay as they were. A batch that keeps no
//! record is still written, as its header alone: the log stays contiguous
//! batch by batch, so every check recovery makes of a fragment holds for a
//! compacted one. A run of such empty batches becomes one
//! ([`Batch::merged_empty`]) where no header would lose anything (same
//! leader epoch, same producer with sequences that run on): otherwise a
//! key updated one record per batch would leave a header per update.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::batch::Batch;
use crate::error::{IoContext, Result, StorageError};
use crate::fragment::{Fragment, file_name};
use crate::frame::{self, FILE_HEADER_LEN, FrameInfo};
use crate::index::SparseIndex;
use crate::sys;

use super::offset_map::OffsetMap;
use super::throttle::Throttle;

/// Suffix of a cleaned file: complete and durable, it replaces the
/// fragments it was cleaned from (see `swap`).
pub const COMPACTED_SUFFIX: &str = "compacted";
/// Suffix of a cleaned file's index, renamed to `.index` with it.
pub const COMPACTED_INDEX_SUFFIX: &str = "cindex";

/// What a record is kept by.
pub(super) struct Rules<'a> {
    /// Each key's latest offset below `map_end`.
    pub map: &'a OffsetMap,
    /// Records at or after this were not mapped: all kept.
    pub map_end: u64,
    /// Tombstones in fragments appended at or before this (ms) are removed.
    pub tombstone_deadline_ms: i64,
}

/// Counts of one cleaning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub records_read: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl CleanStats {
    pub(super) fn add(&mut self, other: &CleanStats) {
        self.records_read += other.records_read;
        self.records_removed += other.records_removed;
        self.tombstones_removed += other.tombstones_removed;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
    }
}

/// A cleaned file written (as `tmp`, fsynced), not yet installed.
#[derive(Debug)]
pub(super) struct Cleaned {
    pub tmp: PathBuf,
    pub index: SparseIndex,
    /// The newest append time of its sources (its mtime): what retention
    /// judges it by, so cleaning never makes data look younger or older.
    pub appended_ms: i64,
    /// Whether it still holds a tombstone.
    pub holds_tombstones: bool,
    pub stats: CleanStats,
}

/// The temporary name of a cleaned file for base `base`.
pub(super) fn tmp_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{}{}", file_name(base, COMPACTED_SUFFIX), crate::crashsafe::TMP_SUFFIX))
}

/// Cleans `group` (consecutive fragments) into one file starting at the
/// first one's base.
pub(super) fn clean(
    dir: &Path,
    group: &[Arc<Fragment>],
    rules: &Rules<'_>,
    interval: u32,
    throttle: &mut Throttle,
) -> Result<Cleaned> {
    let tmp = tmp_path(dir, group[0].base_offset);
    let cleaned = write_cleaned(&tmp, group, rules, interval, throttle);
    if cleaned.is_err() {
        // A full disk, a bad sector: nothing was installed, and the partial
        // file must not hold the space until the next open.
        let _ = std::fs::remove_file(&tmp);
    }
    cleaned
}

fn write_cleaned(
    tmp: &Path,
    group: &[Arc<Fragment>],
    rules: &Rules<'_>,
    interval: u32,
    throttle: &mut Throttle,
) -> Result<Cleaned> {
    let base = group[0].base_offset;
    let tmp = tmp.to_path_buf();
    let appended_ms = group.iter().map(|f| f.appended_ms).max().unwrap_or(i64::MIN);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .context(|| format!("create {}", tmp.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&frame::file_header(base)).context(|| format!("write {}", tmp.display()))?;
    let mut index = SparseIndex::new(base, interval);
    let mut stats = CleanStats::default();
    let mut holds_tombstones = false;
    // An empty batch waiting for the next: it may join it.
    let mut pending: Option<Batch> = None;
    let mut write = |batch: &Batch, stats: &mut CleanStats| -> Result<()> {
        let bytes = batch.as_bytes();
        let header = frame::frame_header(&[], bytes);
        out.write_all(&header).and_then(|()| out.write_all(bytes)).context(|| format!("write {}", tmp.display()))?;
        index.push(&FrameInfo {
            len: bytes.len(),
            crc: 0,
            base_offset: batch.base_offset(),
            next_offset: batch.next_offset(),
            max_timestamp: batch.max_timestamp(),
        });
        stats.bytes_written += (header.len() + bytes.len()) as u64;
        Ok(())
    };
    for fragment in group {
        let expired = fragment.appended_ms <= rules.tombstone_deadline_ms;
        let bytes = sys::map_file(&fragment.path, fragment.len)?;
        let mut pos = FILE_HEADER_LEN;
        while pos < bytes.len() {
            let info = frame::check_frame(&bytes[pos..])
                .map_err(|reason| StorageError::corruption(&fragment.path, pos as u64, reason))?;
            let start = pos + frame::FRAME_HEADER_LEN;
            let batch = Batch::parse_sparse(bytes.slice(start..start + info.len))
                .map_err(|e| StorageError::corruption(&fragment.path, pos as u64, e.to_string()))?;
            pos += info.frame_len();
            let mut tombstones = 0;
            let kept = batch
                .compacted(|r| {
                    let keep = keep(r, rules, expired);
                    stats.records_read += 1;
                    if !keep {
                        stats.records_removed += 1;
                        tombstones += u64::from(r.null_value);
                    } else if r.null_value && r.record.key.is_some() {
                        holds_tombstones = true;
                    }
                    keep
                })
                .map_err(|e| StorageError::corruption(&fragment.path, pos as u64, e.to_string()))?;
            stats.tombstones_removed += tombstones;
            throttle.account((info.frame_len() + kept.len()) as u64);
            pending = match pending.take() {
                Some(run) if run.joins_empty(&kept) => Some(
                    run.merged_empty(&kept)
                        .map_err(|e| StorageError::corruption(&fragment.path, pos as u64, e.to_string()))?,
                ),
                run => {
                    if let Some(run) = run {
                        write(&run, &mut stats)?;
                    }
                    if kept.record_count() == 0 {
                        Some(kept)
                    } else {
                        write(&kept, &mut stats)?;
                        None
                    }
                }
            };
        }
        stats.bytes_read += fragment.len;
    }
    if let Some(run) = pending.take() {
        write(&run, &mut stats)?;
    }
    let file = out.into_inner().map_err(|e| StorageError::io(format!("write {}", tmp.display()), e.into_error()))?;
    finish(&file, &tmp, appended_ms)?;
    Ok(Cleaned { tmp, index, appended_ms, holds_tombstones, stats })
}

/// Whether compaction keeps record `r`.
fn keep(r: &crate::batch::StoredRecord, rules: &Rules<'_>, tombstones_expired: bool) -> bool {
    if r.offset >= rules.map_end {
        return true; // not compacted yet
    }
    let Some(key) = &r.record.key else {
        return true; // keyless: nothing supersedes it, so nothing deletes it
    };
    if rules.map.get(key).is_some_and(|latest| latest > r.offset) {
        return false; // a later record of its key exists
    }
    !(r.null_value && tombstones_expired)
}

/// Stamps the file with its sources' append time, then makes it durable.
fn finish(file: &File, tmp: &Path, appended_ms: i64) -> Result<()> {
    let when = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(appended_ms).unwrap_or(0));
    file.set_modified(when).context(|| format!("set the time of {}", tmp.display()))?;
    file.sync_all().context(|| format!("fsync {}", tmp.display()))
}
