//! The log start an operator asked for (Kafka's DeleteRecords): records
//! below it are deleted, even where they share a file with records that
//! stay. Whole files below it are removed; the rest of the file is kept on
//! disk but never served. Kept in `log-start` next to the log:
//!
//! ```text
//!      0   8 magic    LOG_START_MAGIC "GOULLST\0"
//!      8   8 offset   u64, the first offset still served
//!     16   4 crc      CRC-32 of every preceding byte
//! ```
//!
//! Crash protocol: the file is rewritten tmp → fsync → rename → fsync dir
//! *before* any file below the new start is removed, so a crash leaves
//! either the old start with every file, or the new start with files below
//! it that retention removes on its next run. A damaged file is reported
//! and ignored (the log then starts at its first file): deleted records
//! may show again, but no record is ever hidden by a file that cannot be
//! trusted.

use std::path::{Path, PathBuf};

use crate::crashsafe;
use crate::error::{Result, StorageError};

/// File name of the log start, inside the partition directory.
pub const LOG_START_FILE: &str = "log-start";
/// Magic bytes of the file.
pub const LOG_START_MAGIC: [u8; 8] = *b"GOULLST\0";
const LEN: usize = 20;

fn path(dir: &Path) -> PathBuf {
    dir.join(LOG_START_FILE)
}

fn encode(offset: u64) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(&LOG_START_MAGIC);
    out[8..16].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> std::result::Result<u64, String> {
    if bytes.len() != LEN || bytes[..8] != LOG_START_MAGIC {
        return Err(format!("bad magic or length ({} bytes)", bytes.len()));
    }
    if crc32fast::hash(&bytes[..16]).to_le_bytes() != bytes[16..] {
        return Err("CRC mismatch".into());
    }
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&bytes[8..16]);
    Ok(u64::from_le_bytes(offset))
}

/// Writes the log start durably to `dir`.
pub(crate) fn store(dir: &Path, offset: u64) -> Result<()> {
    crashsafe::write_durably(&path(dir), &[&encode(offset)])
}

/// Reads the log start from `dir`: 0 when there is none, or when the file
/// is damaged (reported).
pub(crate) fn load(dir: &Path) -> Result<u64> {
    let path = path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => match decode(&bytes) {
            Ok(offset) => Ok(offset),
            Err(reason) => {
                tracing::error!(
                    path = %path.display(),
                    %reason,
                    "log start file damaged; ignoring it: records deleted below it may be served again"
                );
                Ok(0)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(StorageError::io(format!("read {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_start_reads_back_and_any_damage_is_refused() {
        let bytes = encode(1234);
        assert_eq!(decode(&bytes), Ok(1234));
        for i in 0..LEN {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert!(decode(&damaged).is_err(), "byte {i} flipped");
        }
        assert!(decode(&bytes[..LEN - 1]).is_err());
    }

    #[test]
    fn a_missing_or_damaged_file_means_no_start() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), 0);
        store(dir.path(), 77).unwrap();
        assert_eq!(load(dir.path()).unwrap(), 77);
        std::fs::write(path(dir.path()), b"garbage").unwrap();
        assert_eq!(load(dir.path()).unwrap(), 0);
    }
}
