//! Durable file-system steps, written once for every crate that keeps files.
//!
//! The contract: a rename, creation or deletion is durable only once its
//! directory is fsynced, and a file's contents only once the file is. So a
//! file that must survive a crash whole is written by [`write_durably`]:
//! `{path}.tmp` → fsync → rename over `path` → fsync the directory. A crash
//! at any step leaves either the old file or the new one, plus at most a
//! `*.tmp` that the next writer overwrites and recovery deletes.
//!
//! Storage, the broker (partition identity files) and the CLI (etcd backups)
//! all write their files through this module.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Suffix of files that are being written and may be deleted at recovery.
pub const TMP_SUFFIX: &str = ".tmp";

/// Writes `contents` (concatenated) to `path` atomically and durably: when
/// this returns, a crash leaves `path` with exactly `contents`; before it
/// returns, a crash leaves the old file (or none).
pub fn write_durably(path: &Path, contents: &[&[u8]]) -> Result<()> {
    write_atomic_no_dir_sync(path, contents)?;
    fsync_dir(parent_of(path))
}

/// Creates `dir` (and missing parents) and fsyncs its parent, so that the
/// directory's name survives a crash. A no-op when it exists.
pub fn create_dir_durably(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).context(|| format!("create directory {}", dir.display()))?;
    fsync_dir(parent_of(dir))
}

/// fsyncs a directory, making renames, creations and deletions in it durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).context(|| format!("fsync directory {}", dir.display()))
}

/// [`write_durably`] without the directory fsync, for callers that rename
/// several files and then fsync their directory once: until the caller's
/// [`fsync_dir`], a crash may leave the old file.
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
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
        return Err(e).context(|| format!("rename {} to {}", tmp.display(), path.display()));
    }
    Ok(())
}

/// Removes a file if it exists. Durable once the caller fsyncs the directory.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(crate::error::StorageError::io(format!("remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_durably_replaces_the_file_and_leaves_no_tmp() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        write_durably(&path, &[b"old"]).unwrap();
        write_durably(&path, &[b"ne", b"w"]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }

    #[test]
    fn a_failed_rename_keeps_the_old_file_and_removes_the_tmp() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory in the way makes the rename fail.
        let path = tmp.path().join("d");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("x"), b"keep").unwrap();
        assert!(write_durably(&path, &[b"new"]).is_err());
        assert_eq!(std::fs::read(path.join("x")).unwrap(), b"keep");
        assert!(!tmp.path().join("d.tmp").exists());
    }
}
