//! The cleanup (compaction) and fragment options of `topic create` and
//! `topic alter`, with Kafka's names and meanings (`docs/compaction.md`).

use goulette_proto::cleanup_policy;
use goulette_proto::v1 as pb;

/// Options shared by `topic create` and `topic alter`; only those given apply.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CleanupOptions {
    /// How records leave the topic: `delete` (retention), `compact` (each
    /// key's latest record stays; no retention) or `compact,delete`.
    #[arg(long, value_parser = cleanup_policy::parse)]
    pub cleanup_policy: Option<pb::CleanupPolicy>,
    /// Compacted topics: a tombstone (null value) stays at least this many
    /// ms after it was written (default 1 day; 0: back to it).
    #[arg(long)]
    pub delete_retention_ms: Option<u64>,
    /// Compacted topics: records are compacted only once sealed this many
    /// ms ago (default 0).
    #[arg(long)]
    pub min_compaction_lag_ms: Option<u64>,
    /// Compacted topics: a pass runs once this share of the sealed bytes
    /// is not compacted yet, from 0.001 to 1 (default 0.5).
    #[arg(long, value_parser = cleanup_policy::parse_dirty_ratio)]
    pub min_cleanable_dirty_ratio: Option<u32>,
    /// Seal a partition's WAL into a fragment at this many bytes (default:
    /// the brokers' --fragment-bytes).
    #[arg(long)]
    pub segment_bytes: Option<u64>,
    /// Seal a non-empty WAL this many ms after its first append, however
    /// small, so that compaction can reach it (default: the brokers').
    #[arg(long)]
    pub segment_ms: Option<u64>,
}

impl CleanupOptions {
    /// Sets the options given on a new topic.
    pub fn apply_to(&self, config: &mut pb::TopicConfig) {
        if let Some(policy) = self.cleanup_policy {
            config.cleanup_policy = policy as i32;
        }
        config.delete_retention_ms = self.delete_retention_ms.unwrap_or(0);
        config.min_compaction_lag_ms = self.min_compaction_lag_ms.unwrap_or(0);
        config.min_cleanable_dirty_ratio_permille = self.min_cleanable_dirty_ratio.unwrap_or(0);
        config.segment_bytes = self.segment_bytes.unwrap_or(0);
        config.segment_ms = self.segment_ms.unwrap_or(0);
    }

    /// Adds the options given to a change.
    pub fn change(&self, req: &mut pb::AlterTopicRequest) {
        req.cleanup_policy = self.cleanup_policy.map(|p| p as i32);
        req.delete_retention_ms = self.delete_retention_ms;
        req.min_compaction_lag_ms = self.min_compaction_lag_ms;
        req.min_cleanable_dirty_ratio_permille = self.min_cleanable_dirty_ratio;
        req.segment_bytes = self.segment_bytes;
        req.segment_ms = self.segment_ms;
    }
}
