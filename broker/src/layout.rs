//! The data directory's layout: one directory `{topic}-{partition}` per
//! replica, holding its log and `topic.id` (the topic incarnation its data
//! belongs to, see `goulette_storage::identity`); brokers before topic ids
//! kept that id beside it as `{topic}-{partition}.incarnation`.

use std::path::{Path, PathBuf};

use goulette_proto::v1 as pb;
use goulette_storage::identity;

/// The file naming the data directory's identity: created on a broker's
/// first start in it, sent when registering, so that the metadata can tell
/// this directory from another one (see `data-dirs/` in the key layout).
const DATA_DIR_ID_FILE: &str = "data-dir.id";

/// The broker's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: PathBuf) -> DataDir {
        DataDir { root }
    }

    /// The data directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The data directory's identity (128 random bits, hex), created durably
    /// on first use.
    pub fn id(&self) -> anyhow::Result<String> {
        let path = self.root.join(DATA_DIR_ID_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow::anyhow!("read {}: {e}", path.display())),
        }
        let id = format!("{:016x}{:016x}", random_u64(), random_u64());
        goulette_storage::crashsafe::write_durably(&path, &[id.as_bytes()])?;
        Ok(id)
    }

    /// The directory of a replica's log.
    pub fn partition(&self, topic: &str, partition: u32) -> PathBuf {
        self.root.join(format!("{topic}-{partition}"))
    }

    /// `<data>/<topic>-<partition>.incarnation`: where brokers before topic
    /// ids recorded a directory's incarnation (now `topic.id` inside it).
    fn legacy_marker(&self, topic: &str, partition: u32) -> PathBuf {
        self.root.join(format!("{topic}-{partition}.incarnation"))
    }

    /// Every partition directory with the topic incarnation its data belongs
    /// to (open or not): what the assignment stream reports, so that the
    /// sentinels answer for each. Moves legacy markers into their
    /// directories on the way.
    pub fn held(&self) -> Vec<pb::HeldReplica> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut held = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((topic, partition)) = name.rsplit_once('-') else { continue };
            let Ok(partition) = partition.parse::<u32>() else { continue };
            if goulette_proto::validate_topic_name(topic).is_err() || !entry.path().is_dir() {
                continue;
            }
            match self.identity(topic, partition) {
                Ok(Some(incarnation)) => {
                    held.push(pb::HeldReplica { topic: topic.to_owned(), partition, topic_incarnation: incarnation })
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(dir = name, error = %e, "cannot tell which topic incarnation a partition directory holds")
                }
            }
        }
        held
    }

    /// The incarnation `<topic>-<partition>` holds data of (`None`: no
    /// data), moving a legacy marker into the directory first.
    pub fn identity(&self, topic: &str, partition: u32) -> anyhow::Result<Option<u64>> {
        let dir = self.partition(topic, partition);
        let legacy = self.legacy_marker(topic, partition);
        if let Ok(text) = std::fs::read_to_string(&legacy) {
            if dir.exists() && identity::read(&dir)?.is_none() {
                let incarnation: u64 = text.trim().parse()?;
                identity::write(&dir, incarnation)?;
            }
            std::fs::remove_file(&legacy)?;
        }
        Ok(identity::read(&dir)?)
    }
}

/// 64 random bits: the standard library's randomly seeded hasher over the
/// time and pid (an identity needs uniqueness, not cryptographic strength).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.write_u32(std::process::id());
    hasher.finish()
}
