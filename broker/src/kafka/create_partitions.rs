//! CreatePartitions (v0–3): growing a topic, forwarded to the sentinels,
//! which place the new partitions on their hash ring like a new topic's.
//! Answered once the new partitions have leaders (or at the request's
//! timeout), so a client can produce to them at once.
//!
//! A count not above the current one is INVALID_PARTITIONS; manual
//! replica assignments are INVALID_REPLICA_ASSIGNMENT (the sentinels place
//! replicas); internal topics (`__…`: their partition count is part of
//! how groups are placed) cannot grow.

use std::time::Duration;

use goulette_proto::v1::{self as pb, ErrorCode};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Kafka, errors, topics};

/// Answers a CreatePartitions request.
pub async fn handle(kafka: &Kafka, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let wait = Duration::from_millis(req.timeout_ms.max(0) as u64).min(topics::MAX_WAIT);
    let mut results = Vec::with_capacity(req.topics.len().min(1024));
    for topic in req.topics {
        let name = topic.name.clone();
        let result = CreatePartitionsTopicResult::default().with_name(name.clone());
        results.push(match grow(kafka, topic, req.validate_only, wait).await {
            Ok(()) => result,
            Err((code, message)) => {
                tracing::info!(topic = %name.0.as_str(), code, %message, "Kafka CreatePartitions refused");
                result.with_error_code(code).with_error_message(Some(StrBytes::from_string(message)))
            }
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn grow(
    kafka: &Kafka,
    topic: CreatePartitionsTopic,
    validate_only: bool,
    wait: Duration,
) -> Result<(), (i16, String)> {
    let name = topic.name.0.to_string();
    if name.starts_with("__") {
        return Err((ResponseError::InvalidRequest.code(), format!("{name} is an internal topic")));
    }
    if topic.assignments.is_some() {
        let message = "manual replica assignments are not supported: the sentinels place replicas".to_owned();
        return Err((ResponseError::InvalidReplicaAssignment.code(), message));
    }
    let total = u32::try_from(topic.count)
        .map_err(|_| (ResponseError::InvalidPartitions.code(), format!("{} partitions", topic.count)))?;
    let req = pb::AddPartitionsRequest { name: name.clone(), total, validate_only };
    let answer = kafka
        .sentinels
        .add_partitions(req)
        .await
        .map_err(|e| (ResponseError::RequestTimedOut.code(), e.to_string()))?;
    match answer.error {
        None if validate_only => Ok(()),
        None => {
            tracing::info!(topic = %name, total, "topic grown through Kafka CreatePartitions");
            topics::wait_led(kafka, &name, wait).await;
            Ok(())
        }
        // Every argument the sentinels refuse here is about the count.
        Some(e) if e.error_code() == ErrorCode::InvalidArgument => {
            Err((ResponseError::InvalidPartitions.code(), e.message))
        }
        Some(e) => Err((errors::code(&e), e.message)),
    }
}
