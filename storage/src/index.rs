//! The sparse offset-and-time index of a log file.
//!
//! One entry every `index_interval_bytes` of frames (and always for the first
//! frame) maps a batch's offset to its byte position and records the largest
//! timestamp seen *before* that batch, so both `offset → position` and
//! `timestamp → offset` lookups start near their target and scan forward a few
//! frames at most. The WAL keeps its index in memory; sealing writes it next
//! to the fragment as `{base_offset:020}.index`:
//!
//! ```text
//! header (INDEX_HEADER_LEN = 52 bytes, little-endian)
//!      0   8 magic          INDEX_MAGIC "GOULIDX\0"
//!      8   2 version        INDEX_VERSION
//!     10   2 reserved       0
//!     12   8 base_offset    u64, the fragment's base offset
//!     20   8 next_offset    u64, offset after the fragment's last record
//!     28   8 fragment_len   u64, byte length of the fragment file
//!     36   8 max_timestamp  i64, largest timestamp in the fragment
//!     44   4 entry_count    u32
//!     48   4 crc            CRC-32 of bytes [0, 48) and of all entries
//! entries (INDEX_ENTRY_LEN = 16 bytes each)
//!      0   4 relative_offset  u32, batch base offset - base_offset
//!      4   4 position         u32, byte position of the frame in the fragment
//!      8   8 max_ts_before    i64, largest timestamp in frames before it
//! ```
//!
//! The index is derived data: written tmp → fsync → rename after the fragment
//! is durable, and rebuilt by scanning the fragment whenever it is missing or
//! disagrees with the fragment.

use std::path::Path;

use crate::error::{Result, StorageError};
use crate::frame::{FILE_HEADER_LEN, FrameInfo};

/// Magic bytes of an index file.
pub const INDEX_MAGIC: [u8; 8] = *b"GOULIDX\0";
/// Version of the index file format.
pub const INDEX_VERSION: u16 = 1;
/// Length of the index file header.
pub const INDEX_HEADER_LEN: usize = 52;
/// Length of one index entry.
pub const INDEX_ENTRY_LEN: usize = 16;

/// One sparse index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Base offset of the batch, relative to the file's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch's frame in the file.
    pub position: u32,
    /// Largest timestamp of the frames before this one (`i64::MIN` if none).
    pub max_ts_before: i64,
}

/// The index of one log file, and the summary a sealed fragment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SparseIndex {
    pub base_offset: u64,
    pub next_offset: u64,
    /// Bytes of the file covered (header and complete frames).
    pub file_len: u64,
    pub max_timestamp: i64,
    pub entries: Vec<IndexEntry>,
    interval: u32,
    bytes_since_entry: u64,
}

impl SparseIndex {
    /// An empty index for a file starting at `base_offset`.
    pub fn new(base_offset: u64, interval: u32) -> Self {
        SparseIndex {
            base_offset,
            next_offset: base_offset,
            file_len: FILE_HEADER_LEN as u64,
            max_timestamp: i64::MIN,
            entries: Vec::new(),
            interval,
            bytes_since_entry: 0,
        }
    }

    /// Bytes between entries.
    pub fn interval(&self) -> u32 {
        self.interval
    }

    /// Records a frame appended at the current end of the file.
    pub fn push(&mut self, frame: &FrameInfo) {
        if self.entries.is_empty() || self.bytes_since_entry >= u64::from(self.interval) {
            self.entries.push(IndexEntry {
                // Both fit: a file is far smaller than 4 GiB and holds fewer
                // than 2^32 records (fragment_bytes is bounded in LogConfig).
                relative_offset: (frame.base_offset - self.base_offset) as u32,
                position: self.file_len as u32,
                max_ts_before: self.max_timestamp,
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += frame.frame_len() as u64;
        self.file_len += frame.frame_len() as u64;
        self.next_offset = frame.next_offset;
        self.max_timestamp = self.max_timestamp.max(frame.max_timestamp);
    }

    /// Where to start scanning for `offset`: the last entry at or before it.
    pub fn position_for_offset(&self, offset: u64) -> u64 {
        let rel = offset.saturating_sub(self.base_offset);
        let i = self.entries.partition_point(|e| u64::from(e.relative_offset) <= rel);
        match i {
            0 => FILE_HEADER_LEN as u64,
            i => u64::from(self.entries[i - 1].position),
        }
    }

    /// Where to start scanning for the first batch with a timestamp at or
    /// after `ts`: the last entry before which every timestamp is below `ts`.
    pub fn position_for_timestamp(&self, ts: i64) -> u64 {
        let i = self.entries.partition_point(|e| e.max_ts_before < ts);
        match i {
            0 => FILE_HEADER_LEN as u64,
            i => u64::from(self.entries[i - 1].position),
        }
    }

    /// Serializes the index file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER_LEN + self.entries.len() * INDEX_ENTRY_LEN);
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.base_offset.to_le_bytes());
        out.extend_from_slice(&self.next_offset.to_le_bytes());
        out.extend_from_slice(&self.file_len.to_le_bytes());
        out.extend_from_slice(&self.max_timestamp.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        for e in &self.entries {
            out.extend_from_slice(&e.relative_offset.to_le_bytes());
            out.extend_from_slice(&e.position.to_le_bytes());
            out.extend_from_slice(&e.max_ts_before.to_le_bytes());
        }
        let crc = index_crc(&out);
        out[48..52].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses an index file and checks it against the fragment it describes.
    /// Any disagreement is an `Err` with the reason: the caller rebuilds.
    pub fn decode(bytes: &[u8], base_offset: u64, fragment_len: u64) -> std::result::Result<Self, String> {
        if bytes.len() < INDEX_HEADER_LEN {
            return Err(format!("{} bytes is shorter than the header", bytes.len()));
        }
        if bytes[0..8] != INDEX_MAGIC {
            return Err("bad magic".into());
        }
        let u64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != INDEX_VERSION {
            return Err(format!("unsupported version {version}"));
        }
        let count = u32_at(44) as usize;
        if bytes.len() != INDEX_HEADER_LEN + count.saturating_mul(INDEX_ENTRY_LEN) {
            return Err(format!("{count} entries announced, file is {} bytes", bytes.len()));
        }
        if u32_at(48) != index_crc(bytes) {
            return Err("CRC mismatch".into());
        }
        let index = SparseIndex {
            base_offset: u64_at(12),
            next_offset: u64_at(20),
            file_len: u64_at(28),
            max_timestamp: u64_at(36) as i64,
            entries: bytes[INDEX_HEADER_LEN..]
                .chunks_exact(INDEX_ENTRY_LEN)
                .map(|e| IndexEntry {
                    relative_offset: u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                    position: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
                    max_ts_before: i64::from_le_bytes([e[8], e[9], e[10], e[11], e[12], e[13], e[14], e[15]]),
                })
                .collect(),
            interval: 0,
            bytes_since_entry: 0,
        };
        if index.base_offset != base_offset {
            return Err(format!("index for base offset {}, fragment has {base_offset}", index.base_offset));
        }
        if index.file_len != fragment_len {
            return Err(format!("index covers {} bytes, fragment has {fragment_len}", index.file_len));
        }
        if index.next_offset <= base_offset {
            return Err(format!("next offset {} not after base {base_offset}", index.next_offset));
        }
        let first_ok =
            index.entries.first().is_some_and(|e| e.relative_offset == 0 && e.position as usize == FILE_HEADER_LEN);
        let ordered = index.entries.windows(2).all(|w| {
            w[0].relative_offset < w[1].relative_offset
                && w[0].position < w[1].position
                && w[0].max_ts_before <= w[1].max_ts_before
        });
        let in_bounds = index.entries.last().is_some_and(|e| {
            u64::from(e.position) < fragment_len && base_offset + u64::from(e.relative_offset) < index.next_offset
        });
        if !(first_ok && ordered && in_bounds) {
            return Err("entries are out of order or out of bounds".into());
        }
        Ok(index)
    }

    /// Reads and checks `path`; `Ok(None)` when it is missing or inconsistent.
    pub fn load(path: &Path, base_offset: u64, fragment_len: u64) -> Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(format!("read index {}", path.display()), e)),
        };
        match SparseIndex::decode(&bytes, base_offset, fragment_len) {
            Ok(index) => Ok(Some(index)),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "index is inconsistent; rebuilding it from the fragment");
                Ok(None)
            }
        }
    }
}

fn index_crc(file: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file[..48]);
    h.update(&file[INDEX_HEADER_LEN..]);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(base: u64, count: u64, len: usize, ts: i64) -> FrameInfo {
        FrameInfo { len, crc: 0, base_offset: base, next_offset: base + count, max_timestamp: ts }
    }

    fn sample() -> SparseIndex {
        let mut index = SparseIndex::new(100, 1000);
        let mut offset = 100;
        for i in 0..50 {
            index.push(&frame(offset, 10, 292, 1_000 + i * 10));
            offset += 10;
        }
        index
    }

    #[test]
    fn entries_are_sparse_and_lookups_land_at_or_before_the_target() {
        let index = sample();
        assert_eq!(index.next_offset, 600);
        assert!(index.entries.len() > 1 && index.entries.len() < 50, "{}", index.entries.len());
        for offset in 100..600 {
            let pos = index.position_for_offset(offset);
            let at = index.entries.iter().rev().find(|e| u64::from(e.position) == pos).unwrap();
            assert!(100 + u64::from(at.relative_offset) <= offset);
        }
        assert_eq!(index.position_for_timestamp(0), FILE_HEADER_LEN as u64);
    }

    #[test]
    fn encode_decode_round_trips_and_detects_damage() {
        let index = sample();
        let bytes = index.encode();
        let decoded = SparseIndex::decode(&bytes, 100, index.file_len).unwrap();
        assert_eq!(decoded.entries, index.entries);
        assert_eq!(decoded.next_offset, 600);
        assert!(SparseIndex::decode(&bytes, 101, index.file_len).is_err());
        assert!(SparseIndex::decode(&bytes, 100, index.file_len + 1).is_err());
        for at in [0, 20, 50, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(SparseIndex::decode(&bad, 100, index.file_len).is_err(), "flip at {at}");
        }
        assert!(SparseIndex::decode(&bytes[..bytes.len() - 3], 100, index.file_len).is_err());
    }
}
