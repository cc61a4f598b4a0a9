//! Which topic incarnation a partition directory's data belongs to.
//!
//! The broker writes the incarnation (the topic's id, decimal ASCII) to
//! `{partition dir}/topic.id` before the log is first opened there, and
//! deletes the directory only on evidence about that very incarnation. The
//! file lives inside the directory (not beside it) so that the longest
//! topic name still fits the file system's 255-byte name limit: the
//! directory `{topic}-{partition}` is the longest name the broker creates.
//! Written by [`crashsafe::write_durably`].

use std::path::Path;

use crate::crashsafe;
use crate::error::{IoContext, Result};

/// The file's name inside a partition directory.
pub const IDENTITY_FILE: &str = "topic.id";

/// The incarnation recorded in `dir`; `None` when the directory or the file
/// does not exist. A file that cannot be parsed is an error: data of an
/// unknown incarnation is never taken for a known one.
pub fn read(dir: &Path) -> Result<Option<u64>> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            text.trim().parse().map(Some).map_err(|_| {
                crate::StorageError::corruption(&path, 0, format!("holds {:?}, not a topic id", text.trim()))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(|| format!("read {}", path.display())),
    }
}

/// Records durably that `dir` (created if missing) holds data of `incarnation`.
pub fn write(dir: &Path, incarnation: u64) -> Result<()> {
    crashsafe::create_dir_durably(dir)?;
    crashsafe::write_durably(&dir.join(IDENTITY_FILE), &[incarnation.to_string().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_read_back_and_garbage_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        assert_eq!(read(&dir).unwrap(), None);
        write(&dir, u64::MAX).unwrap();
        assert_eq!(read(&dir).unwrap(), Some(u64::MAX));
        std::fs::write(dir.join(IDENTITY_FILE), b"\0\0").unwrap();
        assert!(read(&dir).is_err());
    }
}
