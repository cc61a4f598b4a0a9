//! Dead letters: the topic of the records a group gave up on, and the
//! headers naming where each came from and why it failed. Written by
//! [`crate::handler`] and [`crate::nack`]; read by [`crate::redrive`].

/// Header naming the topic a dead-lettered record came from.
pub const HEADER_SOURCE_TOPIC: &str = "goulette.dlq.source-topic";
/// Header naming its partition (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "goulette.dlq.source-partition";
/// Header naming its offset (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "goulette.dlq.source-offset";
/// Header holding the handler's last error.
pub const HEADER_ERROR: &str = "goulette.dlq.error";
/// Header holding how many times the handler was tried (decimal).
pub const HEADER_ATTEMPTS: &str = "goulette.dlq.attempts";
/// Header holding the record's original timestamp (ms, decimal); the dead
/// letter itself is stamped when written, so that time-based retention
/// counts from then.
pub const HEADER_SOURCE_TIMESTAMP: &str = "goulette.dlq.source-timestamp";

/// The dead-letter topic of `group`, by convention: `{group}.dlq`.
pub fn dead_letter_topic(group: &str) -> String {
    format!("{group}.dlq")
}
