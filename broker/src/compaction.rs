//! Compacted topics on the broker: which topics compact and how (their
//! settings, and `__offsets` always), the compactor's resources, and the
//! refusal of keyless records. Storage decides whether a pass is due and
//! runs it (`goulette_storage::log::compact`); `compactor` runs passes.

use std::time::Duration;

use goulette_proto::cleanup_policy;
use goulette_proto::offsets_topic::OFFSETS_TOPIC;
use goulette_proto::v1::{self as pb, CleanupPolicy};
use goulette_storage::{Batch, CompactionPolicy};

/// The compactor's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactorConfig {
    /// Bytes of keys (and their entries) one pass maps.
    pub map_bytes: usize,
    /// Read plus written bytes per second; 0: unlimited.
    pub io_bytes_per_sec: u64,
    /// How often every compacted partition is offered a pass.
    pub interval: Duration,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig { map_bytes: 64 << 20, io_bytes_per_sec: 100 << 20, interval: Duration::from_secs(5) }
    }
}

/// How `topic` (settings `config`) is compacted; `None` when it is not.
/// `__offsets` always is: each group's latest commit per partition is all
/// a coordinator reads.
pub fn policy(topic: &str, config: Option<&pb::TopicConfig>) -> Option<CompactionPolicy> {
    let cleanup = config.map_or(CleanupPolicy::Delete, |c| c.cleanup_policy());
    if cleanup == CleanupPolicy::Delete && topic != OFFSETS_TOPIC {
        return None;
    }
    let c = config.cloned().unwrap_or_default();
    let delete_retention_ms = match c.delete_retention_ms {
        0 => cleanup_policy::DEFAULT_DELETE_RETENTION_MS,
        ms => ms,
    };
    Some(CompactionPolicy {
        delete_retention: Duration::from_millis(delete_retention_ms),
        min_lag: Duration::from_millis(c.min_compaction_lag_ms),
        min_dirty_ratio: cleanup_policy::dirty_ratio(c.min_cleanable_dirty_ratio_permille),
    })
}

/// Whether retention applies to `config`'s topic (not with `compact` alone).
pub fn retention_applies(config: Option<&pb::TopicConfig>) -> bool {
    config.is_none_or(|c| c.cleanup_policy() != CleanupPolicy::Compact)
}

/// Refuses a batch with a keyless record for a compacted log: compaction
/// keeps records by key, so such a record could never be superseded or
/// deleted (Kafka refuses it too).
pub fn check_keys(batch: &Batch) -> Result<(), String> {
    let records = batch.iter_records().map_err(|e| e.to_string())?;
    for (i, record) in records.enumerate() {
        if record.map_err(|e| e.to_string())?.record.key.is_none() {
            return Err(format!("record {i} of the batch has no key: a compacted topic takes only keyed records"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_compact_as_their_policy_says_and_offsets_always_do() {
        let mut config = pb::TopicConfig::default();
        assert_eq!(policy("t", Some(&config)), None);
        assert!(policy(OFFSETS_TOPIC, Some(&config)).is_some());
        assert!(policy(OFFSETS_TOPIC, None).is_some());
        config.cleanup_policy = CleanupPolicy::Compact as i32;
        config.min_cleanable_dirty_ratio_permille = 100;
        config.delete_retention_ms = 1000;
        let p = policy("t", Some(&config)).unwrap();
        assert_eq!((p.min_dirty_ratio, p.delete_retention), (0.1, Duration::from_secs(1)));
        assert!(!retention_applies(Some(&config)));
        config.cleanup_policy = CleanupPolicy::CompactDelete as i32;
        assert!(retention_applies(Some(&config)) && policy("t", Some(&config)).is_some());
    }
}
