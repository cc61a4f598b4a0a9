//! Per-partition log settings and their validation.

use std::time::Duration;

use crate::batch::MAX_BATCH_LEN;
use crate::error::{Result, StorageError};

/// When appended data is made durable with `fdatasync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlushPolicy {
    /// `append` returns only after an fdatasync covering the batch. Concurrent
    /// appends share one fdatasync (group commit).
    #[default]
    Always,
    /// Data is fdatasynced by [`crate::PartitionLog::maintain`] once it is
    /// older than this; `append` does not wait.
    Interval(Duration),
    /// Never fdatasync explicitly (except when sealing); the OS writes back.
    Never,
}

/// Settings of one partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Seal the WAL into a fragment once it holds this many bytes.
    pub fragment_bytes: u64,
    /// Seal a non-empty WAL once its first append is this old.
    pub fragment_max_age: Duration,
    /// Durability of appends.
    pub flush: FlushPolicy,
    /// Bytes of frames between two sparse index entries.
    pub index_interval_bytes: u32,
    /// Delete the oldest fragments while the log stays at least this large.
    pub retention_bytes: Option<u64>,
    /// Delete fragments whose newest record is older than this.
    pub retention_age: Option<Duration>,
    /// Largest batch `append` accepts.
    pub max_batch_bytes: usize,
    /// Most fragments of this log kept mapped at once; the least recently read
    /// is unmapped first.
    pub max_mapped_fragments: usize,
}

/// How much of a log is kept: the part of [`LogConfig`] a topic's owner
/// may change while the log is open ([`crate::PartitionLog::set_retention`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Delete fragments whose newest record is older than this.
    pub age: Option<Duration>,
    /// Delete the oldest fragments while the log stays at least this large.
    pub bytes: Option<u64>,
}

/// When the WAL is sealed into a fragment: the part of [`LogConfig`] a
/// topic's owner may change while the log is open
/// ([`crate::PartitionLog::set_rolling`]; Kafka's `segment.bytes` and
/// `segment.ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    /// Seal the WAL once it holds this many bytes.
    pub bytes: u64,
    /// Seal a non-empty WAL once its first append is this old.
    pub max_age: Duration,
}

impl LogConfig {
    /// The retention the log starts with.
    pub fn retention(&self) -> Retention {
        Retention { age: self.retention_age, bytes: self.retention_bytes }
    }

    /// The sealing settings the log starts with.
    pub fn rolling(&self) -> Rolling {
        Rolling { bytes: self.fragment_bytes, max_age: self.fragment_max_age }
    }

    /// Checks `rolling` against this configuration's other settings.
    pub fn check_rolling(&self, rolling: Rolling) -> Result<()> {
        LogConfig { fragment_bytes: rolling.bytes, fragment_max_age: rolling.max_age, ..self.clone() }.validate()
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            fragment_bytes: 128 << 20,
            fragment_max_age: Duration::from_secs(24 * 3600),
            flush: FlushPolicy::Always,
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_batch_bytes: 8 << 20,
            max_mapped_fragments: 4,
        }
    }
}

/// Index positions are `u32`: a log file must stay well below 4 GiB.
const MAX_FRAGMENT_BYTES: u64 = 2 << 30;

impl LogConfig {
    /// Checks every value, naming the key of the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, reason: String| Err(StorageError::InvalidConfig { key, reason });
        if !(4096..=MAX_FRAGMENT_BYTES).contains(&self.fragment_bytes) {
            return bad("fragment_bytes", format!("{} is outside [4096, {MAX_FRAGMENT_BYTES}]", self.fragment_bytes));
        }
        if self.fragment_max_age.is_zero() {
            return bad("fragment_max_age", "must be positive".into());
        }
        if let FlushPolicy::Interval(d) = self.flush
            && d.is_zero()
        {
            return bad("flush", "interval must be positive (use `always`)".into());
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes", "must be positive".into());
        }
        if self.max_batch_bytes == 0 || self.max_batch_bytes > MAX_BATCH_LEN {
            return bad("max_batch_bytes", format!("{} is outside [1, {MAX_BATCH_LEN}]", self.max_batch_bytes));
        }
        if self.max_batch_bytes as u64 > self.fragment_bytes {
            return bad("max_batch_bytes", "must not exceed fragment_bytes".into());
        }
        if self.max_mapped_fragments == 0 {
            return bad("max_mapped_fragments", "must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_name_their_key() {
        LogConfig::default().validate().unwrap();
        let err = LogConfig { fragment_bytes: 10, ..LogConfig::default() }.validate().unwrap_err();
        assert!(err.to_string().contains("fragment_bytes"), "{err}");
        let err = LogConfig { max_batch_bytes: 1 << 30, ..LogConfig::default() }.validate().unwrap_err();
        assert!(err.to_string().contains("max_batch_bytes"), "{err}");
    }
}
