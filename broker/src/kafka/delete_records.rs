//! DeleteRecords (v0–2): an operator's explicit instruction to delete a
//! partition's records below an offset (−1: the high watermark). The
//! leader makes the new log start durable (`log-start`, see
//! `goulette_storage::log_start`), removes whole files below it, and
//! pushes it to its followers' replication streams at once; followers
//! apply it, never past their own end. The answer's low watermark is the
//! leader's new log start.
//!
//! An offset past the high watermark is OFFSET_OUT_OF_RANGE (only what
//! consumers can read can be deleted), as in Kafka. `__offsets` holds the
//! groups' commits and is refused (POLICY_VIOLATION).

use goulette_proto::offsets_topic::OFFSETS_TOPIC;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::kafka::{Kafka, errors};

/// Answers a DeleteRecords request.
pub async fn handle(kafka: &Kafka, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len().min(1024));
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len().min(1024));
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            partitions.push(match delete(kafka, &name, p.partition_index, p.offset).await {
                Ok(low_watermark) => result.with_low_watermark(low_watermark as i64),
                Err(code) => result.with_low_watermark(-1).with_error_code(code),
            });
        }
        topics.push(DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions));
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Deletes `topic/partition`'s records below `offset`; the new log start.
async fn delete(kafka: &Kafka, topic: &str, partition: i32, offset: i64) -> Result<u64, i16> {
    if topic == OFFSETS_TOPIC {
        return Err(ResponseError::PolicyViolation.code());
    }
    let index = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    let Some(replica) = kafka.partitions.get(topic, index) else {
        return Err(errors::code(&kafka.partitions.unavailable(topic, index)));
    };
    if !replica.is_leader() {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    let high_watermark = replica.high_watermark();
    let before = match offset {
        -1 => high_watermark,
        o if o >= 0 && (o as u64) <= high_watermark => o as u64,
        _ => return Err(ResponseError::OffsetOutOfRange.code()),
    };
    let log = replica.log.clone();
    let deleted = tokio::task::spawn_blocking(move || log.delete_records_before(before))
        .await
        .map_err(|_| ResponseError::UnknownServerError.code())?;
    match deleted {
        Ok(start) => {
            tracing::info!(topic, partition, start, "records deleted through Kafka DeleteRecords");
            // Followers' streams send the new start at once, data or not.
            replica.notify();
            Ok(start)
        }
        Err(e) => Err(errors::code(&crate::error::storage_error(&e))),
    }
}
