//! Durable file-system steps: fsync a directory, write a file atomically.
//!
//! A rename or a new file is only durable once its directory is fsynced; a
//! file's contents only once the file is. Every metadata file is written
//! tmp → fsync → rename → fsync directory, so a crash leaves either the old
//! file or the new one, plus at most a `*.tmp` that recovery deletes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Suffix of files that are being written and may be deleted at recovery.
pub const TMP_SUFFIX: &str = ".tmp";

/// fsyncs a directory, making renames, creations and deletions in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).context(|| format!("fsync directory {}", dir.display()))
}

/// Writes `contents` to `path` atomically and durably. Does not fsync the
/// directory, so that callers can batch several renames under one fsync.
pub fn write_atomic_no_dir_sync(path: &Path, contents: &[&[u8]]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = Path::new(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .context(|| format!("create {}", tmp.display()))?;
    for part in contents {
        file.write_all(part).context(|| format!("write {}", tmp.display()))?;
    }
    file.sync_all().context(|| format!("fsync {}", tmp.display()))?;
    std::fs::rename(tmp, path).context(|| format!("rename {} to {}", tmp.display(), path.display()))
}

/// Removes a file if it exists.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(crate::error::StorageError::io(format!("remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}
