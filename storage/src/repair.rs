//! Cutting a damaged log at its first bad batch, so that a replica can fetch
//! the rest again from its partition's leader.
//!
//! Only a replica whose leader holds the data may do this: everything from
//! the first damaged batch on is dropped. The broker calls it for a
//! follower (never for a leader or a sole copy), after the sentinels took
//! the replica out of the ISR; the follower then truncates nothing more and
//! fetches from where the cut left its log end.
//!
//! The cut uses the truncation protocol of `log`: for damage in the WAL, the
//! WAL is cut at the bad frame; for damage in a fragment `b`, the frames of
//! `b` before the bad one are written as `{b}.wal` (tmp, fsync, rename,
//! fsync dir: the commit point), and recovery then deletes `{b}.frag` and
//! every file after it. A crash at any step leaves a log that opens.

use std::path::Path;

use crate::config::LogConfig;
use crate::crashsafe;
use crate::error::{IoContext, Result, StorageError};
use crate::fragment::{FRAGMENT_SUFFIX, file_name};
use crate::frame::{self, FILE_HEADER_LEN};
use crate::log::PartitionLog;
use crate::wal::WAL_SUFFIX;

/// Where a repair cut a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The damaged file.
    pub file: String,
    /// Byte position of the first bad frame in it.
    pub position: u64,
    /// What was wrong.
    pub reason: String,
}

/// At most this many damaged places are cut in one repair (each cut
/// shortens the log, so this only bounds pathological cases).
const MAX_CUTS: usize = 16;

/// Opens the log in `dir` and reads it through, checking every frame; on
/// corruption, cuts the log before the first damaged batch (see the module
/// doc) and starts over. Returns the log and every cut made. Errors other
/// than corruption are returned as they are.
pub fn open_repairing(dir: &Path, config: LogConfig) -> Result<(PartitionLog, Vec<Cut>)> {
    let mut cuts = Vec::new();
    loop {
        // Opening checks the WAL and any fragment without a sound index;
        // reading checks every frame's CRC (a damaged fragment whose index
        // is intact opens fine).
        let checked = PartitionLog::open(dir, config.clone()).and_then(|log| verify(&log).map(|()| log));
        match checked {
            Ok(log) => return Ok((log, cuts)),
            Err(StorageError::Corruption { path, position, reason }) if cuts.len() < MAX_CUTS => {
                cut_at(dir, &path, position)?;
                let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                tracing::warn!(dir = %dir.display(), file, position, reason, "cut the log before its damaged batch");
                cuts.push(Cut { file, position, reason });
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads the whole log, so that every frame's CRC is checked.
fn verify(log: &PartitionLog) -> Result<()> {
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let batches = log.read(offset, 4 << 20)?;
        let Some(next) = batches.last().and_then(|b| crate::batch::peek_next_offset(b)) else {
            break;
        };
        offset = next;
    }
    Ok(())
}

/// Cuts the log in `dir` at byte `position` of the log file `path`.
fn cut_at(dir: &Path, path: &Path, position: u64) -> Result<()> {
    let corrupt_name = || StorageError::corruption(path, position, "damage in a file that is not a WAL or fragment");
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(corrupt_name)?;
    let (stem, suffix) = name.split_once('.').ok_or_else(corrupt_name)?;
    let base: u64 = stem.parse().map_err(|_| corrupt_name())?;
    let keep = position.max(FILE_HEADER_LEN as u64);
    match suffix {
        WAL_SUFFIX if position >= FILE_HEADER_LEN as u64 => {
            let file = std::fs::OpenOptions::new().write(true).open(path).context(|| format!("open {name}"))?;
            file.set_len(keep).context(|| format!("cut {name}"))?;
            file.sync_all().context(|| format!("fsync {name}"))
        }
        WAL_SUFFIX | FRAGMENT_SUFFIX => {
            // The frames before `position` passed their checks (a scan stops
            // at the first bad one); a bad header keeps none of them.
            let prefix = if position >= FILE_HEADER_LEN as u64 {
                let bytes = std::fs::read(path).context(|| format!("read {name}"))?;
                bytes.get(..keep as usize).map(<[u8]>::to_vec).ok_or_else(corrupt_name)?
            } else {
                frame::file_header(base).to_vec()
            };
            // The lowest WAL wins at recovery: everything from `base` on is replaced.
            crashsafe::write_durably(&dir.join(file_name(base, WAL_SUFFIX)), &[&prefix])
        }
        _ => Err(corrupt_name()),
    }
}
