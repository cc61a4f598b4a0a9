//! What `goulette consume` was asked to do (shared by the loop in
//! `consume` and the per-topic readers of `topic_reader`).

use std::time::Duration;

use goulette_client::consumer::StartAt;

use super::record_format::{Encoding, RecordFormat};

/// `consume` options.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// The topics to read (several only without a group).
    pub topics: Vec<String>,
    pub start: StartAt,
    pub partition: Option<u32>,
    pub max_messages: Option<u64>,
    pub timeout: Option<Duration>,
    pub window_bytes: u64,
    pub format: RecordFormat,
    pub encoding: Encoding,
    /// Stop once every partition read reached the end it had at the start.
    pub exit_at_end: bool,
    /// Consume as a member of this group (or, with `partition`, only
    /// resume at and commit its offsets).
    pub group: Option<String>,
    pub strategy: String,
    pub session_timeout: Duration,
    /// Wait for a topic that does not exist yet (it is created by its
    /// first producer) instead of failing.
    pub wait_for_topic: bool,
    /// Only records with one of these tags (`A || B`), filtered by the broker.
    pub tags: Option<String>,
}
