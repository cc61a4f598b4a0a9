//! Mapping broker-side failures to the typed protocol errors.

use goulette_proto::v1::{self as pb, ErrorCode};
use goulette_storage::{BatchError, StorageError};

/// The protocol error for a storage failure.
pub fn storage_error(e: &StorageError) -> pb::Error {
    let code = match e {
        e if e.is_out_of_space() => ErrorCode::StorageUnavailable,
        StorageError::Batch(BatchError::BatchTooLarge { .. }) => ErrorCode::TooLarge,
        StorageError::Batch(_) => ErrorCode::InvalidBatch,
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        StorageError::Corruption { .. } => ErrorCode::CorruptStorage,
        StorageError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequence,
        StorageError::DuplicateSequence { .. } => ErrorCode::DuplicateSequence,
        StorageError::ProducerFenced { .. } => ErrorCode::Fenced,
        StorageError::LogEndMismatch { .. } => ErrorCode::OffsetMismatch,
        // The replica changed under the request (truncated for a new leader,
        // or closed because it moved): the client should look up the leader.
        StorageError::Truncated { .. } | StorageError::Closed { .. } => ErrorCode::NotLeader,
        _ => ErrorCode::Internal,
    };
    pb::Error::new(code, e.to_string())
}

/// `NOT_LEADER` for a partition this broker does not lead, with the
/// leader's address when known.
pub fn not_leader(topic: &str, partition: u32, leader_address: Option<String>) -> pb::Error {
    let mut e = pb::Error::new(ErrorCode::NotLeader, format!("this broker does not lead {topic}/{partition}"));
    e.leader_hint = leader_address.unwrap_or_default();
    e
}
