//! ListOffsets (v1–7): a partition's earliest offset (timestamp −2), its
//! latest (−1: the high watermark, which is also the last stable offset,
//! as Goulette has no transactions), the first offset whose timestamp is
//! at or after a given time, or (−3, from v7, KIP-734) the first record
//! with the largest timestamp; with that record's timestamp and, from v4,
//! the leader epoch of its batch.
//!
//! A time after every record is answered with offset and timestamp −1, as
//! Kafka does; so is a largest timestamp whose record is not below the high
//! watermark yet (Kafka, too, answers only what consumers can read).

use std::sync::Arc;

use goulette_storage::Batch;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::kafka::{Kafka, errors};
use crate::partition::Replica;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// Answers a ListOffsets request.
pub async fn handle(kafka: &Arc<Kafka>, version: i16, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len().min(1024));
    for topic in req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len().min(1024));
        for p in &topic.partitions {
            let answer = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let answer = match lookup(kafka, version, topic.name.0.as_str(), p).await {
                Ok(found) => {
                    let answer = answer.with_offset(found.offset).with_timestamp(found.timestamp);
                    if version >= 4 { answer.with_leader_epoch(found.leader_epoch) } else { answer }
                }
                Err(code) => answer.with_error_code(code),
            };
            partitions.push(answer);
        }
        topics.push(ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// An offset found, with its record's timestamp and batch's leader epoch
/// (−1 where unknown or not applicable).
struct Found {
    offset: i64,
    timestamp: i64,
    leader_epoch: i32,
}

const NOT_FOUND: Found = Found { offset: -1, timestamp: -1, leader_epoch: -1 };

async fn lookup(kafka: &Kafka, version: i16, topic: &str, p: &ListOffsetsPartition) -> Result<Found, i16> {
    let index = u32::try_from(p.partition_index).map_err(|_| ResponseError::UnknownTopicOrPartition.code())?;
    let Some(replica) = kafka.partitions.get(topic, index) else {
        return Err(errors::code(&kafka.partitions.unavailable(topic, index)));
    };
    if !replica.is_leader() {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    let epoch = replica.state().leader_epoch;
    errors::check_leader_epoch(p.current_leader_epoch, epoch)?;
    let high_watermark = replica.high_watermark();
    match p.timestamp {
        LATEST => Ok(Found { offset: high_watermark as i64, timestamp: -1, leader_epoch: epoch as i32 }),
        EARLIEST => Ok(Found { offset: replica.log.log_start_offset() as i64, ..NOT_FOUND }),
        ts if ts >= 0 || (ts == MAX_TIMESTAMP && version >= 7) => {
            let replica = replica.clone();
            tokio::task::spawn_blocking(move || {
                // The first record with the largest timestamp is the first
                // at or after it.
                match if ts == MAX_TIMESTAMP { replica.log.max_timestamp() } else { Some(ts) } {
                    Some(ts) => by_timestamp(&replica, ts, high_watermark),
                    None => Ok(NOT_FOUND),
                }
            })
            .await
            .map_err(|_| ResponseError::UnknownServerError.code())?
        }
        _ => Err(ResponseError::InvalidRequest.code()),
    }
}

/// The first record at or after `ts` below the high watermark.
fn by_timestamp(replica: &Replica, ts: i64, high_watermark: u64) -> Result<Found, i16> {
    let storage = |e: goulette_storage::StorageError| errors::code(&crate::error::storage_error(&e));
    let Some(offset) = replica.log.offset_for_timestamp(ts).map_err(storage)?.filter(|o| *o < high_watermark) else {
        return Ok(NOT_FOUND);
    };
    let batches = replica.log.read_bounded(offset, 1, high_watermark).map_err(storage)?;
    let Some(bytes) = batches.into_iter().next() else { return Ok(NOT_FOUND) };
    let batch = Batch::parse_sparse(bytes).map_err(|_| ResponseError::CorruptMessage.code())?;
    let leader_epoch = batch.partition_leader_epoch() as i32;
    let records = batch.iter_records().map_err(|_| ResponseError::CorruptMessage.code())?;
    for record in records {
        let record = record.map_err(|_| ResponseError::CorruptMessage.code())?;
        if record.offset == offset {
            return Ok(Found { offset: offset as i64, timestamp: record.record.timestamp, leader_epoch });
        }
    }
    Ok(Found { offset: offset as i64, timestamp: -1, leader_epoch })
}
