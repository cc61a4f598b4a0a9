//! Goulette's wire protocol: generated prost/tonic types.
//!
//! - `errors.proto`: the typed error codes every response carries.
//! - `cluster.proto`: topics, partition states, brokers, sentinels.
//! - `client.proto`: `BrokerService` (produce, fetch) and `SentinelService`
//!   (metadata, topic admin, cluster status).
//! - `internal.proto`: `SentinelInternal` (broker registration, heartbeats,
//!   the assignment stream).
//!
//! All four share the package `goulette.v1`; the client-facing and internal
//! services live in separate files. [`channel`] builds every client channel;
//! [`hashing`] is the hash clients and brokers agree on; [`offsets_topic`]
//! the internal topic of committed offsets.

pub mod channel;
pub mod cleanup_policy;
pub mod hashing;
pub mod offsets_topic;
#[cfg(feature = "ops")]
pub mod ops;

/// Version 1 of the protocol (generated code).
#[allow(missing_debug_implementations, clippy::all)]
pub mod v1 {
    tonic::include_proto!("goulette.v1");
}

/// Metadata key set on a request that one sentinel forwards to the leader.
pub const FORWARDED_HEADER: &str = "goulette-forwarded";

impl v1::Error {
    /// An error with a code and a message.
    pub fn new(code: v1::ErrorCode, message: impl Into<String>) -> Self {
        v1::Error { code: code as i32, message: message.into(), leader_hint: String::new() }
    }

    /// The code, `Internal` for a value this build does not know.
    pub fn error_code(&self) -> v1::ErrorCode {
        v1::ErrorCode::try_from(self.code).unwrap_or(v1::ErrorCode::Internal)
    }
}

/// Longest topic name (it becomes a directory name).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks a topic name: `[A-Za-z0-9._-]{1,249}`, not `.` or `..`. Every
/// component that accepts a topic name checks it (it becomes a directory).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!("topic name must be 1 to {MAX_TOPIC_NAME_LEN} characters, got {}", name.len()));
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be {name:?}"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("topic name {name:?} contains {c:?}; allowed are A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

/// The internal topics Goulette creates for itself. Every other name that
/// begins with `__` is reserved for future internal topics and refused at
/// creation.
pub const INTERNAL_TOPICS: &[&str] = &["__offsets"];

/// Checks a name for a new topic: a valid name (see
/// [`validate_topic_name`]) that is not reserved (`__` names other than the
/// internal topics).
pub fn validate_new_topic_name(name: &str) -> Result<(), String> {
    validate_topic_name(name)?;
    if name.starts_with("__") && !INTERNAL_TOPICS.contains(&name) {
        return Err(format!("topic names beginning with \"__\" are reserved for internal topics: {name:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_the_rules() {
        for ok in ["a", "orders", "a.b-c_D9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250), "a\0"] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_new_topic_name("__foo").is_err());
        assert!(validate_new_topic_name("__offsets").is_ok());
        assert!(validate_new_topic_name("_one").is_ok());
    }
}
