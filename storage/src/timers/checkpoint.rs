//! `indexed-to`: how far the timer index has read the log, durably.
//!
//! ```text
//!      0   8 magic    "GOULTMR\0"
//!      8   8 offset   u64: every delayed record below it is in the buckets
//!     16   4 crc      CRC-32 of the preceding bytes
//! ```
//!
//! Written (tmp, fsync, rename) only after the buckets it covers were
//! synced, and lowered durably before anything is appended to a truncated
//! log, so it never claims entries the buckets may lack.

use std::path::Path;

use crate::crashsafe;
use crate::error::Result;

pub const FILE: &str = "indexed-to";
const MAGIC: [u8; 8] = *b"GOULTMR\0";
const LEN: usize = 20;

pub fn store(dir: &Path, offset: u64) -> Result<()> {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..16].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    crashsafe::write_durably(&dir.join(FILE), &[&out])
}

/// The stored offset: `Ok(None)` when there is none yet, `Err` (why) when
/// the file cannot be trusted.
pub fn load(dir: &Path) -> std::result::Result<Option<u64>, String> {
    let bytes = match std::fs::read(dir.join(FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if bytes.len() != LEN || bytes[..8] != MAGIC {
        return Err(format!("bad magic or length ({} bytes)", bytes.len()));
    }
    if crc32fast::hash(&bytes[..16]).to_le_bytes() != bytes[16..] {
        return Err("CRC mismatch".into());
    }
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&bytes[8..16]);
    Ok(Some(u64::from_le_bytes(offset)))
}
