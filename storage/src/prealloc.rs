//! WAL files zero-filled ahead of need.
//!
//! An append that grows a file changes its size, and ext4 must then commit
//! its journal on the next fdatasync: measured on this machine with a
//! writer at 20k appends/s and a syncer beside it, fdatasync took p50
//! 1.2–1.5 ms and p99 12–14 ms on a growing file, against 0.45–0.55 ms and
//! 6–7 ms on one whose blocks were written (with zeros) and synced before
//! (`fallocate`'s unwritten extents are no better than growing: their
//! conversion is a journal commit too). So the next WAL is prepared off the
//! append path: created under a temporary name, written with zeros to its
//! capacity and synced; at the seal's switch it only gets its header and
//! its name.
//!
//! On disk a prepared WAL is a log file whose frames are followed by zeros
//! up to its capacity. Recovery tells that apart from a torn write: a tail
//! that is zero to the end of the file is room never written, kept as it is
//! (see `recovery`); anything else after the last good frame is judged as
//! before. A prepared file not switched to yet is a `.tmp` file, deleted
//! when the log opens.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::crashsafe::TMP_SUFFIX;
use crate::error::{IoContext, Result};

/// The name of a prepared WAL before its switch (a `.tmp` file).
pub(crate) fn prepared_path(dir: &Path) -> PathBuf {
    dir.join(format!("prepared-wal{TMP_SUFFIX}"))
}

/// Smallest capacity a prepared WAL gets: a partition starts preparing once
/// its WAL holds [`PREPARE_AFTER`], and each prepared WAL doubles the last
/// one's capacity up to the seal size, so a busy partition reaches full
/// WALs after a few seals and an idle one never holds more than this.
pub(crate) const MIN_CAPACITY: u64 = 8 << 20;

/// A WAL that was never prepared asks for a prepared successor once it
/// holds this much.
pub(crate) const PREPARE_AFTER: u64 = 1 << 20;

/// Pause after each chunk, so that zeros take at most about 128 MB/s of
/// the disk: written back as fast as they could be (1 MiB chunks, no
/// pause), they held up the WAL fdatasyncs beside them, and a 20k msg/s
/// producer's p99 rose from 3–8 ms to 5–20 ms (four alternated runs each).
const PACE: std::time::Duration = std::time::Duration::from_millis(2);

/// Zeros written (and written back, waited for) per call while preparing.
const CHUNK: usize = 256 << 10;

/// A zero-filled, synced file waiting to become the next WAL.
#[derive(Debug)]
pub(crate) struct PreparedWal {
    pub path: PathBuf,
    pub file: File,
    /// Bytes of zeros it holds.
    pub capacity: u64,
}

impl PreparedWal {
    /// Creates the prepared file of `dir` (replacing a stale one), writes
    /// `capacity` bytes of zeros and fdatasyncs it. Blocks for as long as
    /// the disk takes: call it off the append path.
    pub fn create(dir: &Path, capacity: u64) -> Result<PreparedWal> {
        let path = prepared_path(dir);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .context(|| format!("create {}", path.display()))?;
        let zeros = vec![0u8; CHUNK];
        let mut at = 0;
        while at < capacity {
            let n = CHUNK.min((capacity - at) as usize);
            file.write_all_at(&zeros[..n], at).context(|| format!("zero-fill {}", path.display()))?;
            crate::sys::write_back_and_wait(&file, at, n as u64)
                .context(|| format!("write back {}", path.display()))?;
            at += n as u64;
            std::thread::sleep(PACE);
        }
        file.sync_data().context(|| format!("fdatasync {}", path.display()))?;
        Ok(PreparedWal { path, file, capacity })
    }

    /// Deletes the file (a prepared WAL no longer wanted).
    pub fn discard(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The capacity of the WAL prepared after one of `current` bytes of
/// capacity (its length when it was not prepared), for a log sealing at
/// `seal_at`: double, within [`MIN_CAPACITY`] and the seal size.
pub(crate) fn next_capacity(current: u64, seal_at: u64) -> u64 {
    current.saturating_mul(2).clamp(MIN_CAPACITY.min(seal_at), seal_at)
}

/// Whether every byte is zero: room of a prepared WAL never written.
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    // Eight bytes at a time: recovery runs this over up to a WAL's capacity.
    let mut words = bytes.chunks_exact(8);
    words.by_ref().all(|w| <[u8; 8]>::try_from(w).is_ok_and(|w| u64::from_ne_bytes(w) == 0))
        && words.remainder().iter().all(|b| *b == 0)
}

/// The position after the last nonzero byte of `bytes` (0 when all are zero).
pub(crate) fn data_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn capacities_double_from_the_minimum_up_to_the_seal_size() {
        let seal = 128 << 20;
        assert_eq!(next_capacity(1 << 20, seal), MIN_CAPACITY);
        assert_eq!(next_capacity(MIN_CAPACITY, seal), 2 * MIN_CAPACITY);
        assert_eq!(next_capacity(100 << 20, seal), seal);
        assert_eq!(next_capacity(seal, seal), seal);
        assert_eq!(next_capacity(1 << 20, 4 << 20), 4 << 20, "never past a small seal size");
    }

    #[test]
    fn a_prepared_file_holds_its_capacity_of_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let p = PreparedWal::create(dir.path(), (3 << 20) + 5).unwrap();
        let bytes = std::fs::read(&p.path).unwrap();
        assert_eq!(bytes.len() as u64, (3 << 20) + 5);
        assert!(all_zero(&bytes));
        let path = p.path.clone();
        p.discard();
        assert!(!path.exists());
    }

    #[test]
    fn zeros_are_told_from_data_to_the_last_byte() {
        let mut bytes = vec![0u8; 100];
        assert!(all_zero(&bytes));
        assert_eq!(data_end(&bytes), 0);
        bytes[99] = 1;
        assert!(!all_zero(&bytes));
        assert_eq!(data_end(&bytes), 100);
        bytes[99] = 0;
        bytes[3] = 7;
        assert!(!all_zero(&bytes));
        assert_eq!(data_end(&bytes), 4);
    }
}
