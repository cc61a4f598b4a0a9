//! The log file format shared by the WAL and sealed fragments.
//!
//! A fragment is a sealed WAL renamed, so both have the same layout. The
//! file and frame headers are little-endian; the batches inside are Kafka
//! RecordBatch v2, big-endian (see `batch`). CRC-32 here is IEEE (the
//! batches carry their own CRC-32C).
//!
//! ```text
//! file header (FILE_HEADER_LEN = 32 bytes)
//!      0   8 magic        FILE_MAGIC "GOULLOG\0"
//!      8   2 version      FILE_VERSION
//!     10   2 reserved     0
//!     12   8 base_offset  u64, equal to the number in the file name
//!     20   8 reserved     0
//!     28   4 crc          CRC-32 of bytes [0, 28)
//! frames, back to back, until the end of the file
//!      0   4 len          u32, bytes of the batch that follows
//!      4   4 crc          CRC-32 of the batch bytes
//!      8 len batch        one record batch (see `batch`), offsets stamped
//! ```
//!
//! The version names the batch format inside: version 1 files hold
//! Goulette's own batches (magic 1, little-endian, CRC-32), version 2 files
//! Kafka's RecordBatch v2 (magic 2). A file of another version is
//! [`StorageError::UnsupportedFormat`], never corruption: nothing in it is
//! cut, repaired or deleted (see `PartitionLog::open`).
//!
//! The frame CRC covers the whole batch, including the base offset and leader
//! epoch that the batch's own CRC leaves out, so a torn or flipped byte anywhere
//! in a frame is caught. A frame is valid only if its length is within bounds,
//! its CRC matches, its batch header parses and its base offset continues the
//! previous frame's offsets.

use std::path::Path;

use crate::batch::{
    self, BATCH_MAGIC, HEADER_LEN as BATCH_HEADER_LEN, MAX_BATCH_LEN, OFF_BASE_OFFSET, OFF_LAST_OFFSET_DELTA,
    OFF_MAGIC, OFF_MAX_TIMESTAMP, OFF_RECORD_COUNT,
};
use crate::error::{Result, StorageError};

/// Magic bytes at the start of every WAL and fragment file.
pub const FILE_MAGIC: [u8; 8] = *b"GOULLOG\0";
/// Version of the log file format: 2 since batches are Kafka RecordBatch v2.
pub const FILE_VERSION: u16 = 2;
/// Length of the file header; the first frame starts here.
pub const FILE_HEADER_LEN: usize = 32;
/// Length of a frame header (len + crc).
pub const FRAME_HEADER_LEN: usize = 8;
/// Bytes needed to read a frame's header and its batch header.
pub(crate) const FRAME_PEEK_LEN: usize = FRAME_HEADER_LEN + BATCH_HEADER_LEN;

/// Encodes the header of a log file whose first offset is `base_offset`.
pub(crate) fn file_header(base_offset: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..8].copy_from_slice(&FILE_MAGIC);
    h[8..10].copy_from_slice(&FILE_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&base_offset.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The format version in a log file header, if the header is complete and
/// sound (magic and CRC): only then does its version mean anything.
pub(crate) fn file_version(bytes: &[u8]) -> Option<u16> {
    let h = bytes.get(..FILE_HEADER_LEN)?;
    let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
    (h[0..8] == FILE_MAGIC && crc == crc32fast::hash(&h[..28])).then(|| u16::from_le_bytes([h[8], h[9]]))
}

/// Checks a log file header against the base offset its name promises. A
/// sound header of another version is [`StorageError::UnsupportedFormat`].
pub(crate) fn check_file_header(bytes: &[u8], path: &Path, base_offset: u64) -> Result<()> {
    let bad = |reason: String| Err(StorageError::corruption(path, 0, reason));
    if bytes.len() < FILE_HEADER_LEN {
        return bad(format!("file of {} bytes has no complete header", bytes.len()));
    }
    let h = &bytes[..FILE_HEADER_LEN];
    if h[0..8] != FILE_MAGIC {
        return bad("bad magic".into());
    }
    let Some(version) = file_version(h) else {
        return bad("header CRC mismatch".into());
    };
    if version != FILE_VERSION {
        return Err(StorageError::UnsupportedFormat { path: path.to_owned(), version, supported: FILE_VERSION });
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[12..20]);
    let stored = u64::from_le_bytes(b);
    if stored != base_offset {
        return bad(format!("header says base offset {stored}, file name says {base_offset}"));
    }
    Ok(())
}

/// Reads the first `FILE_HEADER_LEN` bytes (fewer if the file is shorter)
/// of the log file at `path`.
fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(FILE_HEADER_LEN);
    std::fs::File::open(path)
        .and_then(|f| f.take(FILE_HEADER_LEN as u64).read_to_end(&mut head))
        .map_err(|e| StorageError::io(format!("read header of {}", path.display()), e))?;
    Ok(head)
}

/// Reads the header of the log file at `path` and checks it (see
/// [`check_file_header`]), without reading the rest of the file.
pub(crate) fn check_file_header_of(path: &Path, base_offset: u64) -> Result<()> {
    check_file_header(&read_head(path)?, path, base_offset)
}

/// Fails with [`StorageError::UnsupportedFormat`] when the log file at
/// `path` has a sound header of another version than [`FILE_VERSION`]. Any
/// other header, damaged or torn included, passes: recovery judges those.
pub(crate) fn check_file_version_of(path: &Path) -> Result<()> {
    match file_version(&read_head(path)?) {
        Some(version) if version != FILE_VERSION => {
            Err(StorageError::UnsupportedFormat { path: path.to_owned(), version, supported: FILE_VERSION })
        }
        _ => Ok(()),
    }
}

/// The frame header for `batch`, whose first bytes may have been restamped:
/// `prefix` replaces the batch's first `prefix.len()` bytes.
pub(crate) fn frame_header(prefix: &[u8], batch: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(prefix);
    hasher.update(&batch[prefix.len()..]);
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[0..4].copy_from_slice(&(batch.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&hasher.finalize().to_le_bytes());
    h
}

/// What the header of a frame (and of its batch) says, bounds-checked but not
/// CRC-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    /// Length of the batch (the frame is `FRAME_HEADER_LEN` longer).
    pub len: usize,
    /// CRC stored in the frame header.
    pub crc: u32,
    /// Base offset of the batch.
    pub base_offset: u64,
    /// Offset after the batch's last record.
    pub next_offset: u64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
}

impl FrameInfo {
    /// Bytes the whole frame takes in the file.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.len
    }
}

/// Parses the frame header and batch header at the start of `bytes`, which
/// must hold at least `FRAME_PEEK_LEN` bytes. Checks that the lengths agree
/// and are in bounds; does not look at the CRC.
pub(crate) fn peek_frame(bytes: &[u8]) -> std::result::Result<FrameInfo, String> {
    if bytes.len() < FRAME_PEEK_LEN {
        return Err(format!("only {} bytes left, a frame needs at least {FRAME_PEEK_LEN}", bytes.len()));
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if !(BATCH_HEADER_LEN..=MAX_BATCH_LEN).contains(&len) {
        return Err(format!("frame length {len} out of bounds"));
    }
    let b = &bytes[FRAME_HEADER_LEN..];
    if batch::peek_batch_len(b) != Some(len) {
        return Err(format!("frame length {len} disagrees with the batch length {:?}", batch::peek_batch_len(b)));
    }
    if b[OFF_MAGIC] != BATCH_MAGIC {
        return Err(format!("unknown batch magic {}", b[OFF_MAGIC]));
    }
    // Batch header fields are big-endian (Kafka's byte order).
    let i64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[at..at + 8]);
        i64::from_be_bytes(a)
    };
    let i32_at = |at: usize| i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    // A compacted batch keeps its `last_offset_delta` (the offsets it
    // covers) with fewer records, down to none.
    let (count, last_delta) = (i32_at(OFF_RECORD_COUNT), i32_at(OFF_LAST_OFFSET_DELTA));
    if count < 0 || last_delta < 0 || i64::from(count) > i64::from(last_delta) + 1 {
        return Err(format!("batch with record count {count} and last offset delta {last_delta}"));
    }
    let base_offset = u64::try_from(i64_at(OFF_BASE_OFFSET))
        .map_err(|_| format!("negative base offset {}", i64_at(OFF_BASE_OFFSET)))?;
    let next_offset = base_offset
        .checked_add(last_delta as u64 + 1)
        .ok_or_else(|| format!("base offset {base_offset} + {last_delta} + 1 overflows"))?;
    Ok(FrameInfo {
        len,
        crc: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        base_offset,
        next_offset,
        max_timestamp: i64_at(OFF_MAX_TIMESTAMP),
    })
}

/// Fully checks the frame at the start of `bytes`: header bounds, the frame
/// fits, and the CRC matches.
pub(crate) fn check_frame(bytes: &[u8]) -> std::result::Result<FrameInfo, String> {
    let info = peek_frame(bytes)?;
    if info.frame_len() > bytes.len() {
        return Err(format!("frame of {} bytes runs past the end ({} left)", info.frame_len(), bytes.len()));
    }
    let actual = crc32fast::hash(&bytes[FRAME_HEADER_LEN..info.frame_len()]);
    if actual != info.crc {
        return Err(format!("frame CRC mismatch: stored {:#010x}, computed {actual:#010x}", info.crc));
    }
    Ok(info)
}

/// Looks for any complete, CRC-valid frame starting after byte 0 of `bytes`.
/// Used after a bad frame to tell a torn tail (nothing valid follows) from
/// corruption in the middle of the log (valid data follows). The cheap header
/// checks reject almost every position before a CRC is computed. A frame
/// begins with its length, never zero, so no frame starts past the last
/// nonzero byte: the zeros of a prepared WAL's room are not searched.
pub(crate) fn find_valid_frame_after(bytes: &[u8]) -> Option<usize> {
    let end = crate::prealloc::data_end(bytes).min(bytes.len().saturating_sub(FRAME_PEEK_LEN - 1));
    (1..end).find(|&at| check_frame(&bytes[at..]).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_round_trips_and_rejects_the_wrong_base() {
        let h = file_header(42);
        check_file_header(&h, Path::new("x"), 42).unwrap();
        assert!(check_file_header(&h, Path::new("x"), 43).is_err());
        let mut flipped = h;
        flipped[13] ^= 1;
        assert!(check_file_header(&flipped, Path::new("x"), 42).is_err());
        assert!(check_file_header(&h[..10], Path::new("x"), 42).is_err());
    }

    /// A sound header of another version is refused as such, not as
    /// corruption; a damaged one stays corruption.
    #[test]
    fn another_version_is_unsupported_not_corrupt() {
        let mut h = file_header(42);
        h[8..10].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32fast::hash(&h[..28]);
        h[28..32].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(file_version(&h), Some(1));
        let err = check_file_header(&h, Path::new("x"), 42).unwrap_err();
        assert!(matches!(err, StorageError::UnsupportedFormat { version: 1, .. }), "{err}");
        h[8] = 3; // the CRC no longer matches
        assert_eq!(file_version(&h), None);
        assert!(matches!(check_file_header(&h, Path::new("x"), 42), Err(StorageError::Corruption { .. })));
    }
}
