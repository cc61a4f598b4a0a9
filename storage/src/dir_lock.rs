//! The lock that makes one process the only user of a directory.
//!
//! A partition log takes it on its directory when it opens (so two brokers,
//! or a broker and `goulette storage inspect`, never recover or write the
//! same files at once), and a broker takes it on its data directory. It is
//! an advisory `flock` on the directory itself (no lock file: taking it
//! changes nothing in the directory), and the kernel drops it when its
//! holder exits, however it exits, so there is no stale lock to clean up
//! after a crash.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result, StorageError};
use crate::sys;

/// A held directory lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    // Held for its open file description, which carries the flock.
    _file: File,
    dir: PathBuf,
}

impl DirLock {
    /// Locks `dir` (which must exist), failing with
    /// [`StorageError::DirectoryInUse`] when another process (or another
    /// open log in this one) holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let file = File::open(dir).context(|| format!("open directory {} to lock it", dir.display()))?;
        if !sys::try_lock_exclusive(&file).context(|| format!("lock {}", dir.display()))? {
            return Err(StorageError::DirectoryInUse { dir: dir.to_path_buf() });
        }
        Ok(DirLock { _file: file, dir: dir.to_path_buf() })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let second = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(second, StorageError::DirectoryInUse { .. }), "{second}");
        assert!(second.to_string().contains("in use"), "{second}");
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
