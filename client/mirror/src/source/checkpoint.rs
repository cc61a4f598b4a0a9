//! A source's progress, kept on disk (the files source's: for each file
//! being mirrored, how many of its bytes the target acknowledged; the Kafka
//! source's offset translation). Written whole to a
//! temporary file, synced, then renamed over the old one (and the
//! directory synced), so a crash leaves the old or the new, never a torn
//! one; a checksum guards the content (a damaged checkpoint is refused
//! loudly rather than trusted: the operator decides).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One file's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The file's inode: a new file under an old name starts over.
    pub inode: u64,
    /// Bytes from the start acknowledged by the target.
    pub acked: u64,
    /// The file's size when it was taken (all acknowledged: finished).
    pub size: u64,
}

impl Progress {
    pub fn done(&self) -> bool {
        self.acked >= self.size
    }
}

/// Every file in progress, by its path under the watched directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub files: BTreeMap<String, Progress>,
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    crc32: u32,
    checkpoint: T,
}

/// Why the checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("checkpoint {path} is damaged ({reason}); move it away to start the source over ({hint})")]
    Damaged { path: PathBuf, reason: String, hint: &'static str },
}

fn crc<T: Serialize>(checkpoint: &T) -> u32 {
    crc32fast::hash(&serde_json::to_vec(checkpoint).unwrap_or_default())
}

/// The `file` in `dir` (the default when there is none yet); `hint` says
/// what starting over means, for the error on a damaged one.
pub fn load<T: DeserializeOwned + Serialize + Default>(
    dir: &Path,
    file: &str,
    hint: &'static str,
) -> Result<T, CheckpointError> {
    let path = dir.join(file);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(e) => return Err(CheckpointError::Io { path, reason: e.to_string() }),
    };
    let stored: Stored<T> = serde_json::from_slice(&text).map_err(|e| CheckpointError::Damaged {
        path: path.clone(),
        reason: e.to_string(),
        hint,
    })?;
    if crc(&stored.checkpoint) != stored.crc32 {
        return Err(CheckpointError::Damaged { path, reason: "checksum mismatch".into(), hint });
    }
    Ok(stored.checkpoint)
}

/// Replaces `file` in `dir` with `value`, durably.
pub fn save<T: Serialize>(dir: &Path, file: &str, value: &T) -> Result<(), CheckpointError> {
    let path = dir.join(file);
    let io = |e: std::io::Error| CheckpointError::Io { path: path.clone(), reason: e.to_string() };
    std::fs::create_dir_all(dir).map_err(io)?;
    let stored = Stored { crc32: crc(value), checkpoint: value };
    let text = serde_json::to_vec_pretty(&stored).map_err(|e| io(std::io::Error::other(e)))?;
    let temporary = dir.join(format!("{file}.new"));
    let mut file = std::fs::File::create(&temporary).map_err(io)?;
    file.write_all(&text).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, &path).map_err(io)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

impl Checkpoint {
    /// The checkpoint in `dir` (empty when there is none yet).
    pub fn load(dir: &Path) -> Result<Checkpoint, CheckpointError> {
        load(dir, "checkpoint.json", "files not yet finished are then sent again from their start")
    }

    /// Replaces the checkpoint in `dir` with this one, durably.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        save(dir, "checkpoint.json", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_loads_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Checkpoint::default());
        let mut c = Checkpoint::default();
        c.files.insert("a.log".into(), Progress { inode: 7, acked: 10, size: 20 });
        c.save(dir.path()).unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), c);
        let path = dir.path().join("checkpoint.json");
        let text = std::fs::read_to_string(&path).unwrap().replace("\"acked\": 10", "\"acked\": 19");
        std::fs::write(&path, text).unwrap();
        let e = Checkpoint::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("checksum"), "{e}");
    }
}
