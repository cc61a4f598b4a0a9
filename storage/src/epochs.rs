//! The leader-epoch history of a partition: at which offset each leader
//! epoch's batches begin.
//!
//! Replication needs it to find where a follower's log diverges from a new
//! leader's: the follower asks the leader where its latest epoch ends
//! ([`EpochHistory::end_offset_for`]) and truncates past that, instead of
//! trusting its high watermark. Kept in `leader-epochs` next to the log:
//!
//! ```text
//!      0   8 magic        EPOCHS_MAGIC "GOULEPO\0"
//!      8   2 version      EPOCHS_VERSION
//!     10   2 reserved     0
//!     12   4 count        u32
//!     16  12 entries      count × (epoch u32, start_offset u64), both increasing
//!      …   4 crc          CRC-32 of every preceding byte
//! ```
//!
//! Crash protocol: the file is rewritten tmp → fsync → rename → fsync dir
//! *before* the first batch of a new epoch is appended (write-ahead), so it
//! never lacks an epoch the log holds. An entry at or beyond the log end
//! (the batch never made it) is dropped on open. A missing or damaged file
//! is rebuilt by reading every batch header of the log.

use std::path::{Path, PathBuf};

use crate::crashsafe;
use crate::error::{Result, StorageError};

/// File name of the history, inside the partition directory.
pub const EPOCHS_FILE: &str = "leader-epochs";
/// Magic bytes of the history file.
pub const EPOCHS_MAGIC: [u8; 8] = *b"GOULEPO\0";
/// Version of the history file format.
pub const EPOCHS_VERSION: u16 = 1;
const HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = 12;

/// Epochs and the offsets their batches start at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochHistory {
    entries: Vec<(u32, u64)>,
}

impl EpochHistory {
    /// A history from entries (both columns strictly increasing).
    pub fn from_entries(entries: Vec<(u32, u64)>) -> Result<EpochHistory, String> {
        if entries.windows(2).any(|w| w[0].0 >= w[1].0 || w[0].1 > w[1].1) {
            return Err("epochs and start offsets must both increase".into());
        }
        Ok(EpochHistory { entries })
    }

    /// `(epoch, start_offset)` pairs, oldest first.
    pub fn entries(&self) -> &[(u32, u64)] {
        &self.entries
    }

    /// The latest epoch, if any batch was ever appended.
    pub fn latest(&self) -> Option<u32> {
        self.entries.last().map(|e| e.0)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the
    /// latest; returns whether the history changed. An older epoch changes
    /// nothing (batches keep the epoch their leader stamped).
    pub fn assign(&mut self, epoch: u32, start_offset: u64) -> bool {
        if self.latest().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Where `epoch` ends, as a leader answers a follower: the largest epoch
    /// `≤ epoch` this log knows, and the start of the next epoch (or
    /// `log_end` if it is the latest). `None` when `epoch` predates the
    /// whole history.
    pub fn end_offset_for(&self, epoch: u32, log_end: u64) -> Option<(u32, u64)> {
        let i = self.entries.partition_point(|e| e.0 <= epoch);
        if i == 0 {
            return None;
        }
        let found = self.entries[i - 1].0;
        let end = self.entries.get(i).map_or(log_end, |next| next.1);
        Some((found, end))
    }

    /// Forgets epochs starting at or after `offset` (the log was truncated
    /// there); returns whether anything changed.
    pub fn truncate_from_end(&mut self, offset: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.1 < offset);
        self.entries.len() != before
    }

    /// Forgets what lies before the log start: of the epochs starting
    /// before `log_start`, only the latest stays, moved to `log_start`.
    pub fn truncate_from_start(&mut self, log_start: u64) -> bool {
        let older = self.entries.partition_point(|e| e.1 < log_start);
        if older == 0 {
            return false;
        }
        let keep = self.entries[older - 1].0;
        let covered = self.entries.get(older).is_some_and(|e| e.1 == log_start);
        self.entries.drain(..older);
        if !covered {
            self.entries.insert(0, (keep, log_start));
        }
        true
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.entries.len() * ENTRY_LEN + 4);
        out.extend_from_slice(&EPOCHS_MAGIC);
        out.extend_from_slice(&EPOCHS_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (epoch, start) in &self.entries {
            out.extend_from_slice(&epoch.to_le_bytes());
            out.extend_from_slice(&start.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<EpochHistory, String> {
        if bytes.len() < HEADER_LEN + 4 || bytes[..8] != EPOCHS_MAGIC {
            return Err("bad magic or too short".into());
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err("CRC mismatch".into());
        }
        let version = u16::from_le_bytes([body[8], body[9]]);
        if version != EPOCHS_VERSION {
            return Err(format!("unsupported version {version}"));
        }
        let count = u32::from_le_bytes([body[12], body[13], body[14], body[15]]) as usize;
        if body.len() != HEADER_LEN + count.saturating_mul(ENTRY_LEN) {
            return Err(format!("{count} entries announced, {} bytes present", body.len()));
        }
        let entries = body[HEADER_LEN..]
            .chunks_exact(ENTRY_LEN)
            .map(|e| {
                let epoch = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                let mut start = [0u8; 8];
                start.copy_from_slice(&e[4..12]);
                (epoch, u64::from_le_bytes(start))
            })
            .collect();
        EpochHistory::from_entries(entries)
    }

    /// Writes the history durably to `dir`.
    pub(crate) fn store(&self, dir: &Path) -> Result<()> {
        crashsafe::write_durably(&path(dir), &[&self.encode()])
    }

    /// Reads the history from `dir`; `Ok(None)` when it is missing or
    /// damaged (the caller rebuilds it from the log).
    pub(crate) fn load(dir: &Path) -> Result<Option<EpochHistory>> {
        let path = path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => match EpochHistory::decode(&bytes) {
                Ok(history) => Ok(Some(history)),
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "leader-epoch history damaged; rebuilding it from the log");
                    Ok(None)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(format!("read {}", path.display()), e)),
        }
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join(EPOCHS_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(entries: &[(u32, u64)]) -> EpochHistory {
        EpochHistory::from_entries(entries.to_vec()).unwrap()
    }

    #[test]
    fn end_offsets_follow_the_next_epochs_start() {
        let h = history(&[(1, 0), (3, 100), (4, 250)]);
        assert_eq!(h.end_offset_for(0, 300), None);
        assert_eq!(h.end_offset_for(1, 300), Some((1, 100)));
        // Epoch 2 never led here: the answer is epoch 1's end.
        assert_eq!(h.end_offset_for(2, 300), Some((1, 100)));
        assert_eq!(h.end_offset_for(3, 300), Some((3, 250)));
        assert_eq!(h.end_offset_for(4, 300), Some((4, 300)));
        assert_eq!(h.end_offset_for(9, 300), Some((4, 300)));
    }

    #[test]
    fn assign_only_moves_forward() {
        let mut h = EpochHistory::default();
        assert!(h.assign(2, 0));
        assert!(!h.assign(2, 10));
        assert!(!h.assign(1, 10));
        assert!(h.assign(5, 10));
        assert_eq!(h.entries(), &[(2, 0), (5, 10)]);
    }

    #[test]
    fn truncation_from_either_end() {
        let mut h = history(&[(1, 0), (3, 100), (4, 250)]);
        assert!(h.truncate_from_end(250));
        assert_eq!(h.entries(), &[(1, 0), (3, 100)]);
        assert!(!h.truncate_from_end(250));
        assert!(h.truncate_from_start(150));
        assert_eq!(h.entries(), &[(3, 150)]);
        let mut h = history(&[(1, 0), (3, 100)]);
        assert!(h.truncate_from_start(100));
        assert_eq!(h.entries(), &[(3, 100)]);
    }

    #[test]
    fn the_file_round_trips_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let h = history(&[(1, 0), (7, 42)]);
        h.store(dir.path()).unwrap();
        assert_eq!(EpochHistory::load(dir.path()).unwrap(), Some(h));
        let file = path(dir.path());
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(EpochHistory::load(dir.path()).unwrap(), None);
        assert!(EpochHistory::from_entries(vec![(2, 0), (1, 5)]).is_err());
    }
}
