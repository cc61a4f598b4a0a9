//! OffsetCommit (v2–8) and OffsetFetch (v1–7): Kafka consumers' committed
//! positions, stored in `__offsets` by the group's coordinator
//! (`offsets::Coordinator`), next to native commits.
//!
//! A commit from a group member is checked against the group's current
//! generation (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION); one with generation
//! −1 and no member id comes from a consumer outside group management and
//! is stored as it is. The commit's metadata (at most
//! [`MAX_METADATA`] bytes) and leader epoch are returned by OffsetFetch
//! unchanged; a partition never committed is offset −1, metadata "".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use goulette_proto::v1::ErrorCode;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{OffsetFetchResponsePartition, OffsetFetchResponseTopic};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Kafka, errors};
use crate::offsets::{Commit, NO_GENERATION};

/// Largest commit metadata (Kafka's `offset.metadata.max.bytes`).
pub const MAX_METADATA: usize = 4096;

/// The Kafka code for a failed `__offsets` read or write: a partition
/// that moved means another coordinator.
pub(crate) fn storage_code(e: &goulette_proto::v1::Error) -> i16 {
    match e.error_code() {
        ErrorCode::NotLeader => ResponseError::NotCoordinator.code(),
        ErrorCode::NotEnoughReplicas | ErrorCode::Unavailable => ResponseError::CoordinatorNotAvailable.code(),
        _ => errors::code(e),
    }
}

/// A partition of a commit: its index, and its commit or its error code.
type PartitionOutcome = (i32, Result<Commit, i16>);

/// Accepts an OffsetCommit request: checks it and takes its place in the
/// append order of its `__offsets` partition now (requests on a connection
/// are accepted in the order they came, so a later commit is appended
/// later and wins); returns the future of the answer.
pub async fn accept(
    kafka: &Arc<Kafka>,
    req: OffsetCommitRequest,
) -> impl Future<Output = OffsetCommitResponse> + Send + 'static {
    let group = req.group_id.0.to_string();
    let generation = req.generation_id_or_member_epoch;
    let member = req.member_id.to_string();
    let checked: Result<u32, i16> = if goulette_proto::validate_topic_name(&group).is_err() {
        Err(ResponseError::InvalidGroupId.code())
    } else {
        kafka.groups.coordinated(&group).and_then(|partition| {
            kafka.groups.with(&group, |g| g.check_commit(&member, generation, Instant::now())).map(|()| partition)
        })
    };
    // Per partition: its code, or the commit to write.
    let mut outcome: Vec<(TopicName, Vec<PartitionOutcome>)> = Vec::new();
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let valid_topic = goulette_proto::validate_topic_name(&name).is_ok();
        let partitions = topic
            .partitions
            .into_iter()
            .map(|p| {
                let metadata = p.committed_metadata.map(|m| m.to_string()).unwrap_or_default();
                let result = match checked {
                    Err(code) => Err(code),
                    Ok(_) if !valid_topic || p.partition_index < 0 => {
                        Err(ResponseError::UnknownTopicOrPartition.code())
                    }
                    Ok(_) if metadata.len() > MAX_METADATA => Err(ResponseError::OffsetMetadataTooLarge.code()),
                    Ok(_) if p.committed_offset < 0 => Err(ResponseError::InvalidCommitOffsetSize.code()),
                    Ok(_) => Ok(Commit {
                        offset: p.committed_offset as u64,
                        generation: if generation < 0 { NO_GENERATION } else { i64::from(generation) },
                        metadata,
                        leader_epoch: (p.committed_leader_epoch >= 0).then_some(p.committed_leader_epoch),
                    }),
                };
                (p.partition_index, result)
            })
            .collect();
        outcome.push((topic.name, partitions));
    }
    let writes: Vec<(String, u32, Commit)> = outcome
        .iter()
        .flat_map(|(t, ps)| ps.iter().filter_map(|(p, r)| Some((t.0.to_string(), *p as u32, r.clone().ok()?))))
        .collect();
    let ticket = match (checked, writes.is_empty()) {
        (Ok(partition), false) => Some((partition, kafka.offsets.commit_ticket(partition).await)),
        _ => None,
    };
    // The write runs on a task of its own from now: this connection's next
    // request may wait for the ticket, and this answer's future is not
    // polled before that request is accepted.
    let writing = ticket.map(|(partition, ticket)| {
        let offsets = kafka.offsets.clone();
        tokio::spawn(async move { offsets.commit_positions(partition, &group, writes, ticket).await })
    });
    async move {
        let written = match writing {
            Some(task) => match task.await {
                Ok(result) => result.map_err(|e| storage_code(&e)),
                Err(_) => Err(ResponseError::UnknownServerError.code()),
            },
            None => Ok(()),
        };
        answer(outcome, written)
    }
}

/// The answer to a commit: each partition's refusal, or the write's outcome.
fn answer(outcome: Vec<(TopicName, Vec<PartitionOutcome>)>, written: Result<(), i16>) -> OffsetCommitResponse {
    let topics = outcome
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, result)| {
                    let code = match (result, written) {
                        (Err(code), _) | (Ok(_), Err(code)) => code,
                        (Ok(_), Ok(())) => 0,
                    };
                    OffsetCommitResponsePartition::default().with_partition_index(index).with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Answers an OffsetFetch request (v1–7: one group).
pub async fn fetch(kafka: &Kafka, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let group = req.group_id.0.to_string();
    let positions = match kafka.groups.coordinated(&group) {
        Ok(partition) => kafka.offsets.positions(partition, &group).await.map_err(|e| storage_code(&e)),
        Err(code) => Err(code),
    };
    let committed: BTreeMap<(String, u32), Commit> = match &positions {
        Ok(list) => list.iter().map(|(t, p, c)| ((t.clone(), *p), c.clone())).collect(),
        Err(_) => BTreeMap::new(),
    };
    let partition_answer = |topic: &str, index: i32| {
        let answer = OffsetFetchResponsePartition::default().with_partition_index(index);
        if let Err(code) = positions {
            // Before v2 there is no top-level error: each partition says it.
            return if version < 2 {
                answer.with_committed_offset(-1).with_error_code(code)
            } else {
                answer.with_committed_offset(-1)
            };
        }
        match u32::try_from(index).ok().and_then(|i| committed.get(&(topic.to_owned(), i))) {
            Some(c) => answer
                .with_committed_offset(c.offset as i64)
                .with_committed_leader_epoch(c.leader_epoch.unwrap_or(-1))
                .with_metadata(Some(StrBytes::from_string(c.metadata.clone()))),
            None => answer.with_committed_offset(-1).with_metadata(Some(StrBytes::default())),
        }
    };
    let topics = match req.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| {
                let partitions = t.partition_indexes.iter().map(|&i| partition_answer(t.name.0.as_str(), i)).collect();
                OffsetFetchResponseTopic::default().with_name(t.name).with_partitions(partitions)
            })
            .collect(),
        // Every committed partition of the group.
        None => {
            let mut by_topic: BTreeMap<String, Vec<OffsetFetchResponsePartition>> = BTreeMap::new();
            for (topic, partition) in committed.keys() {
                by_topic.entry(topic.clone()).or_default().push(partition_answer(topic, *partition as i32));
            }
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(partitions)
                })
                .collect()
        }
    };
    let mut out = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        out.error_code = positions.err().unwrap_or(0);
    }
    out
}
