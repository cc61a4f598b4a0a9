//! Goulette's typed errors as Kafka error codes.
//!
//! Kafka clients decide from the code alone whether to retry, refresh
//! metadata or give up, so each mapping keeps Kafka's meaning: a partition
//! this broker does not lead is NOT_LEADER_OR_FOLLOWER (retry after a
//! metadata refresh), a batch that fails its checks is CORRUPT_MESSAGE, a
//! storage failure is KAFKA_STORAGE_ERROR (retriable: leadership moves to a
//! replica that can write).

use goulette_proto::v1::{self as pb, ErrorCode};
use kafka_protocol::ResponseError;

/// The Kafka code for a Goulette error, outside any request's context.
/// Callers override where the request decides (NOT_ENOUGH_REPLICAS before
/// or after the append, an invalid topic name).
pub fn code(error: &pb::Error) -> i16 {
    let kafka = match error.error_code() {
        ErrorCode::Unspecified => return 0,
        ErrorCode::NotLeader => ResponseError::NotLeaderOrFollower,
        ErrorCode::UnknownTopic | ErrorCode::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ErrorCode::InvalidArgument => ResponseError::InvalidRequest,
        ErrorCode::InvalidBatch => ResponseError::CorruptMessage,
        ErrorCode::TooLarge => ResponseError::MessageTooLarge,
        ErrorCode::NotEnoughReplicas => ResponseError::NotEnoughReplicas,
        ErrorCode::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        // Only native conditional produces meet it; Kafka has no such request.
        ErrorCode::OffsetMismatch => ResponseError::InvalidRequest,
        ErrorCode::Unavailable | ErrorCode::NoLeader => ResponseError::RequestTimedOut,
        ErrorCode::CorruptStorage | ErrorCode::StorageUnavailable => ResponseError::KafkaStorageError,
        ErrorCode::Fenced => ResponseError::InvalidProducerEpoch,
        ErrorCode::DuplicateSequence => ResponseError::DuplicateSequenceNumber,
        ErrorCode::OutOfOrderSequence => ResponseError::OutOfOrderSequenceNumber,
        ErrorCode::Internal | ErrorCode::UnknownBroker => ResponseError::UnknownServerError,
        ErrorCode::TopicExists => ResponseError::TopicAlreadyExists,
        ErrorCode::UnknownMember => ResponseError::UnknownMemberId,
        ErrorCode::GroupNotEmpty => ResponseError::NonEmptyGroup,
        ErrorCode::InvalidTimestamp => ResponseError::InvalidTimestamp,
        ErrorCode::InvalidRecord => ResponseError::InvalidRecord,
        ErrorCode::UserNotFound => ResponseError::ResourceNotFound,
        ErrorCode::UserExists => ResponseError::DuplicateResource,
        ErrorCode::AuthenticationFailed => ResponseError::SaslAuthenticationFailed,
        ErrorCode::NotAuthorized => ResponseError::TopicAuthorizationFailed,
    };
    kafka.code()
}

/// The Kafka code for `error`, if any (0 for none).
pub fn code_of(error: Option<&pb::Error>) -> i16 {
    error.map_or(0, code)
}

/// The fencing check of a request that names the leader epoch it
/// expects (-1: none): an older one is FENCED_LEADER_EPOCH (the client's
/// metadata is stale), a newer one UNKNOWN_LEADER_EPOCH (this broker has
/// not learnt of it yet); both are retriable.
pub fn check_leader_epoch(requested: i32, current: u64) -> Result<(), i16> {
    if requested < 0 {
        return Ok(());
    }
    match (requested as u64).cmp(&current) {
        std::cmp::Ordering::Less => Err(ResponseError::FencedLeaderEpoch.code()),
        std::cmp::Ordering::Greater => Err(ResponseError::UnknownLeaderEpoch.code()),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_keep_kafkas_meaning() {
        let of = |c: ErrorCode| code(&pb::Error::new(c, "x"));
        assert_eq!(of(ErrorCode::NotLeader), 6);
        assert_eq!(of(ErrorCode::InvalidBatch), 2);
        assert_eq!(of(ErrorCode::TooLarge), 10);
        assert_eq!(of(ErrorCode::NotEnoughReplicas), 19);
        assert_eq!(of(ErrorCode::OutOfOrderSequence), 45);
        assert_eq!(of(ErrorCode::CorruptStorage), 56);
        assert_eq!(code_of(None), 0);
    }

    #[test]
    fn leader_epochs_are_fenced_both_ways() {
        assert_eq!(check_leader_epoch(-1, 5), Ok(()));
        assert_eq!(check_leader_epoch(5, 5), Ok(()));
        assert_eq!(check_leader_epoch(4, 5), Err(74));
        assert_eq!(check_leader_epoch(6, 5), Err(75));
    }
}
