//! Produce (v3–9): each partition's records, one RecordBatch v2 as the
//! client sent it, go through the same path as a native produce
//! (`crate::produce::handle`): validation, the idempotent producer's
//! sequence checks, the append with the leader's offset and epoch stamped,
//! then the durability and, for `acks=all`, the replication wait. So a
//! Kafka client gets Goulette's guarantees: an acknowledged batch is
//! fdatasynced (under `flush=always`) and held by every in-sync replica.
//!
//! The appends happen when the request is accepted, in arrival order, so a
//! producer's batches keep their order; the waits run concurrently with the
//! next requests. `acks=0` gets no answer at all; if any partition failed,
//! the connection is closed instead, as Kafka does, so the producer learns
//! of it.

use std::pin::Pin;
use std::sync::Arc;

use goulette_proto::v1::{self as pb, Acks, ErrorCode};
use goulette_storage::batch::peek_batch_len;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Kafka, errors};

/// A produce request's answer, once every partition's wait is over: none
/// for `acks=0`, `Err` to close the connection.
pub type Produced = Pin<Box<dyn Future<Output = Result<Option<ProduceResponse>, String>> + Send>>;

type PartitionAnswer = Pin<Box<dyn Future<Output = PartitionProduceResponse> + Send>>;

fn refused(index: i32, code: i16, message: String) -> PartitionAnswer {
    let answer = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message)));
    Box::pin(std::future::ready(answer))
}

/// Appends every partition's batch, in request order, and returns the
/// future of the answer.
pub async fn accept(kafka: &Arc<Kafka>, req: ProduceRequest) -> Produced {
    let acks = match req.acks {
        -1 => Some(Acks::All),
        1 => Some(Acks::Leader),
        0 => Some(Acks::None),
        _ => None,
    };
    let mut limits = kafka.config.produce_limits();
    // An `acks=all` write waits for the in-sync replicas at most the
    // request's timeout, and never past the broker's; then it is answered
    // NOT_ENOUGH_REPLICAS_AFTER_APPEND (retriable: it may be stored, and an
    // idempotent producer's retry finds it) before the client gives up on
    // the whole connection.
    if req.timeout_ms > 0 {
        limits.replication_timeout =
            limits.replication_timeout.min(std::time::Duration::from_millis(req.timeout_ms as u64));
    }
    let mut topics = Vec::with_capacity(req.topic_data.len().min(1024));
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let mut partitions: Vec<PartitionAnswer> = Vec::with_capacity(topic.partition_data.len().min(1024));
        for data in topic.partition_data {
            let index = data.index;
            let answer = match (acks, data.records) {
                (None, _) => {
                    let message = format!("acks must be -1, 0 or 1, not {}", req.acks);
                    refused(index, ResponseError::InvalidRequiredAcks.code(), message)
                }
                (_, _) if req.transactional_id.is_some() => {
                    let message = "transactions are not supported yet".to_owned();
                    refused(index, ResponseError::TransactionalIdAuthorizationFailed.code(), message)
                }
                (Some(acks), records) => match append(kafka, &name, index, acks, records, limits).await {
                    Ok(answer) => answer,
                    Err((code, message)) => refused(index, code, message),
                },
            };
            partitions.push(answer);
        }
        topics.push((name, partitions));
    }
    Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        let mut failures = Vec::new();
        for (name, partitions) in topics {
            let answers = futures_util::future::join_all(partitions).await;
            for a in answers.iter().filter(|a| a.error_code != 0) {
                failures.push(format!("{name}/{}: error {}", a.index, a.error_code));
            }
            let name = TopicName(StrBytes::from_string(name));
            responses.push(TopicProduceResponse::default().with_name(name).with_partition_responses(answers));
        }
        if acks == Some(Acks::None) {
            return match failures.is_empty() {
                true => Ok(None),
                false => Err(format!("an acks=0 produce failed ({})", failures.join(", "))),
            };
        }
        Ok(Some(ProduceResponse::default().with_responses(responses)))
    })
}

/// Validates and appends one partition's records; `Err` is the refusal
/// (code and message) before any append.
async fn append(
    kafka: &Arc<Kafka>,
    topic: &str,
    index: i32,
    acks: Acks,
    records: Option<bytes::Bytes>,
    limits: crate::config::ProduceLimits,
) -> Result<PartitionAnswer, (i16, String)> {
    if let Err(e) = crate::produce::client_writable(topic) {
        return Err((ResponseError::InvalidTopicException.code(), e.message));
    }
    let partition = u32::try_from(index)
        .map_err(|_| (ResponseError::UnknownTopicOrPartition.code(), format!("no partition {index}")))?;
    let records = records.ok_or((ResponseError::InvalidRecord.code(), "records are null".to_owned()))?;
    // Kafka's rule for RecordBatch v2: exactly one batch per partition.
    if peek_batch_len(&records) != Some(records.len()) {
        let message = "a partition's records must be exactly one record batch".to_owned();
        return Err((ResponseError::InvalidRecord.code(), message));
    }
    let req = pb::ProduceRequest {
        correlation_id: 0,
        topic: topic.to_owned(),
        partition,
        acks: acks as i32,
        batch: records,
        expected_offset: None,
    };
    let (pending, refused_before_append) = crate::produce::handle(&kafka.partitions, req, limits).await;
    Ok(Box::pin(async move {
        let answer = PartitionProduceResponse::default().with_index(index).with_log_append_time_ms(-1);
        match pending.await {
            // acks=0 and stored.
            None => answer.with_base_offset(-1),
            Some(pb::ProduceResponse { error: Some(error), .. }) => {
                let code = match error.error_code() {
                    ErrorCode::NotEnoughReplicas if !refused_before_append => {
                        ResponseError::NotEnoughReplicasAfterAppend.code()
                    }
                    _ => errors::code(&error),
                };
                answer
                    .with_error_code(code)
                    .with_base_offset(-1)
                    .with_error_message(Some(StrBytes::from_string(error.message)))
            }
            Some(ok) => {
                answer.with_base_offset(ok.base_offset as i64).with_log_start_offset(ok.log_start_offset as i64)
            }
        }
    }))
}
