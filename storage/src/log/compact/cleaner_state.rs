//! The compactor's progress in a partition directory (`cleaner-state`):
//! how far the log has been compacted, and since when it holds tombstones.
//!
//! ```text
//!  0  8  magic          "GOULCLN\0"
//!  8  8  clean_to       u64 LE: offsets below were compacted against every
//!                       key they hold (the next pass maps keys from here)
//! 16  8  tombstones_ms  i64 LE: the oldest append time (ms) of a fragment
//!                       still holding a tombstone; i64::MAX: none known
//! 24  4  crc            CRC-32 of bytes [0, 24)
//! ```
//!
//! It is an optimization, never a source of truth: a missing or damaged
//! file means "compact from the start", which costs a pass and loses
//! nothing (compaction is idempotent).

use std::path::{Path, PathBuf};

use crate::crashsafe;
use crate::error::{Result, StorageError};

/// The file name.
pub const CLEANER_STATE_FILE: &str = "cleaner-state";
const MAGIC: [u8; 8] = *b"GOULCLN\0";
const LEN: usize = 28;

/// What the compactor remembers of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerState {
    /// Offsets below were compacted.
    pub clean_to: u64,
    /// Oldest append time of a fragment holding a tombstone (`i64::MAX`: none).
    pub tombstones_ms: i64,
}

impl Default for CleanerState {
    fn default() -> Self {
        CleanerState { clean_to: 0, tombstones_ms: i64::MAX }
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join(CLEANER_STATE_FILE)
}

fn encode(state: CleanerState) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..16].copy_from_slice(&state.clean_to.to_le_bytes());
    out[16..24].copy_from_slice(&state.tombstones_ms.to_le_bytes());
    let crc = crc32fast::hash(&out[..24]);
    out[24..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> std::result::Result<CleanerState, String> {
    if bytes.len() != LEN || bytes[..8] != MAGIC {
        return Err(format!("bad magic or length ({} bytes)", bytes.len()));
    }
    if crc32fast::hash(&bytes[..24]).to_le_bytes() != bytes[24..] {
        return Err("CRC mismatch".into());
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        b
    };
    Ok(CleanerState { clean_to: u64::from_le_bytes(u64_at(8)), tombstones_ms: i64::from_le_bytes(u64_at(16)) })
}

/// Writes the state durably.
pub(crate) fn store(dir: &Path, state: CleanerState) -> Result<()> {
    crashsafe::write_durably(&path(dir), &[&encode(state)])
}

/// Reads the state; the default (compact from the start) when there is
/// none or it is damaged (logged).
pub(crate) fn load(dir: &Path) -> Result<CleanerState> {
    let path = path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(decode(&bytes).unwrap_or_else(|reason| {
            tracing::warn!(path = %path.display(), %reason, "cleaner state damaged; the next compaction starts over");
            CleanerState::default()
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CleanerState::default()),
        Err(e) => Err(StorageError::io(format!("read {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_a_damaged_file_means_start_over() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), CleanerState::default());
        let state = CleanerState { clean_to: 1234, tombstones_ms: 99 };
        store(dir.path(), state).unwrap();
        assert_eq!(load(dir.path()).unwrap(), state);
        let mut bytes = std::fs::read(path(dir.path())).unwrap();
        bytes[9] ^= 1;
        std::fs::write(path(dir.path()), bytes).unwrap();
        assert_eq!(load(dir.path()).unwrap(), CleanerState::default());
    }
}
