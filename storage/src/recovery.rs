//! Scanning log files on open: WAL recovery and index rebuilds.
//!
//! The WAL may end in a torn write (the process or machine died mid-append);
//! that tail is cut off and logged with the number of bytes dropped. Damage
//! that is followed by a valid frame is not a torn tail but corruption, and is
//! an error for the partition: acknowledged data may lie behind it, so it is
//! never skipped silently. A sealed fragment was fsynced before its rename,
//! so any bad frame in one is corruption.
//!
//! That holds for zeros too. A power loss during a group commit can persist
//! a later page of it but not an earlier one, which then reads back as
//! zeros; but a zeroed range inside the written part of the log is just as
//! well a bad sector under acknowledged data, and the log cannot tell the
//! two apart. So it is reported as corruption, never cut: a replica repairs
//! it from the partition's leader (see `PartitionLog::open_repairing`), and
//! a single copy waits for an operator.

use std::fs::OpenOptions;
use std::path::Path;

use crate::crashsafe;
use crate::error::{IoContext, Result, StorageError};
use crate::frame::{self, FILE_HEADER_LEN};
use crate::index::SparseIndex;
use crate::{prealloc, sys};

/// The first bad frame found by a scan.
#[derive(Debug)]
struct BadFrame {
    position: u64,
    reason: String,
}

/// Walks the frames of a log file held in `bytes`, building its index, up to
/// the end or the first frame that fails a check.
fn scan_frames(bytes: &[u8], path: &Path, base_offset: u64, interval: u32) -> Result<(SparseIndex, Option<BadFrame>)> {
    frame::check_file_header(bytes, path, base_offset)?;
    let mut index = SparseIndex::new(base_offset, interval);
    let mut pos = FILE_HEADER_LEN;
    while pos < bytes.len() {
        match frame::check_frame(&bytes[pos..]) {
            Ok(info) if info.base_offset == index.next_offset => {
                index.push(&info);
                pos += info.frame_len();
            }
            Ok(info) => {
                // A CRC-valid frame with the wrong offset was written by someone
                // else or by a bug: never a torn write.
                return Err(StorageError::corruption(
                    path,
                    pos as u64,
                    format!("frame has base offset {}, expected {}", info.base_offset, index.next_offset),
                ));
            }
            Err(reason) => return Ok((index, Some(BadFrame { position: pos as u64, reason }))),
        }
    }
    Ok((index, None))
}

/// What recovery found in a WAL: the index of its frames, and its
/// capacity, the file's length (beyond the index's `file_len` when the
/// frames are followed by zeros to the end: room of a prepared WAL).
#[derive(Debug)]
pub(crate) struct RecoveredWal {
    pub index: SparseIndex,
    pub capacity: u64,
}

/// Recovers the WAL at `path`: checks every frame, truncates a torn tail
/// (durably) and returns the index of what remains; zeros to the end of
/// the file after the last frame are room, kept.
pub(crate) fn recover_wal(path: &Path, base_offset: u64, interval: u32) -> Result<RecoveredWal> {
    let len = std::fs::metadata(path).context(|| format!("stat WAL {}", path.display()))?.len();
    let (index, bad) = {
        let bytes = sys::map_file(path, len)?;
        let (index, bad) = scan_frames(&bytes, path, base_offset, interval)?;
        if let Some(bad) = &bad {
            let rest = &bytes[bad.position as usize..];
            if prealloc::all_zero(rest) {
                return Ok(RecoveredWal { index, capacity: len });
            }
            if let Some(at) = frame::find_valid_frame_after(rest) {
                return Err(StorageError::corruption(
                    path,
                    bad.position,
                    format!(
                        "{}; a valid frame follows at byte {}, so this is not a torn tail",
                        bad.reason,
                        bad.position + at as u64
                    ),
                ));
            }
        }
        (index, bad)
        // The map is dropped here, before the file is truncated.
    };
    if let Some(bad) = bad {
        let dropped = len - bad.position;
        tracing::warn!(
            path = %path.display(),
            position = bad.position,
            dropped_bytes = dropped,
            reason = %bad.reason,
            "truncating torn WAL tail"
        );
        let file = OpenOptions::new().write(true).open(path).context(|| format!("open WAL {}", path.display()))?;
        file.set_len(bad.position).context(|| format!("truncate WAL {}", path.display()))?;
        file.sync_all().context(|| format!("fsync WAL {}", path.display()))?;
    }
    Ok(RecoveredWal { capacity: index.file_len, index })
}

/// Rebuilds the index of a sealed fragment by scanning it, and writes it
/// durably to `index_path`. Any bad frame is corruption.
pub(crate) fn rebuild_fragment_index(
    path: &Path,
    index_path: &Path,
    base_offset: u64,
    len: u64,
    interval: u32,
) -> Result<SparseIndex> {
    let bytes = sys::map_file(path, len)?;
    let (index, bad) = scan_frames(&bytes, path, base_offset, interval)?;
    if let Some(bad) = bad {
        return Err(StorageError::corruption(path, bad.position, format!("sealed fragment: {}", bad.reason)));
    }
    if index.entries.is_empty() {
        return Err(StorageError::corruption(path, FILE_HEADER_LEN as u64, "sealed fragment holds no batch"));
    }
    crashsafe::write_durably(index_path, &[&index.encode()])?;
    tracing::info!(path = %path.display(), entries = index.entries.len(), "rebuilt fragment index");
    Ok(index)
}
