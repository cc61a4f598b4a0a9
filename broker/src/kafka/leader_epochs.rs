//! OffsetForLeaderEpoch (v2–4): where a leader epoch ends in this log, so a
//! client can check, after a leader change, that the position it holds was
//! not truncated away (KIP-320).
//!
//! The answer is the largest epoch at most the one asked that the log
//! knows, and its end: the start of the next epoch, or the log end for the
//! current one. An epoch older than the log's whole history is answered
//! with epoch and offset −1 (unknown), as Kafka does.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::kafka::{Kafka, errors};

/// Answers an OffsetForLeaderEpoch request (it reads memory only).
pub fn handle(kafka: &Kafka, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.as_str();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let answer = EpochEndOffset::default().with_partition(p.partition);
                    match end_of_epoch(kafka, name, p.partition, p.current_leader_epoch, p.leader_epoch) {
                        Ok(Some((epoch, end))) => answer.with_leader_epoch(epoch as i32).with_end_offset(end as i64),
                        Ok(None) => answer,
                        Err(code) => answer.with_error_code(code),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// The epoch and end offset for `epoch` in a partition this broker leads;
/// `Err` is the Kafka error code.
fn end_of_epoch(
    kafka: &Kafka,
    topic: &str,
    partition: i32,
    current: i32,
    epoch: i32,
) -> Result<Option<(u32, u64)>, i16> {
    let index = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    let Some(replica) = kafka.partitions.get(topic, index) else {
        return Err(errors::code(&kafka.partitions.unavailable(topic, index)));
    };
    if !replica.is_leader() {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    errors::check_leader_epoch(current, replica.state().leader_epoch)?;
    let Ok(epoch) = u32::try_from(epoch) else { return Ok(None) };
    Ok(replica.log.end_offset_for_epoch(epoch))
}
