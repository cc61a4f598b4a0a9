//! CreateTopics (v2–6) and DeleteTopics (v1–5), forwarded to the sentinels
//! (the cluster's real controller). A created topic is answered once all
//! its partitions have a leader (or at the request's timeout), so a client
//! can produce to it at once.
//!
//! Partition counts and replication factors of −1 take the cluster's
//! defaults; manual replica assignments are refused (the sentinels place
//! replicas on their hash ring); settings are read by `configs::apply`.
//! Internal topics (`__…`) cannot be created or deleted.

use std::time::Duration;

use goulette_proto::v1::{self as pb, ErrorCode};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Kafka, configs, errors};

/// The longest a CreateTopics waits for leaders, whatever it asks.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(30);

fn code_of(e: &pb::Error) -> i16 {
    match e.error_code() {
        ErrorCode::TopicExists => ResponseError::TopicAlreadyExists.code(),
        ErrorCode::InvalidArgument => ResponseError::InvalidRequest.code(),
        ErrorCode::NoLeader | ErrorCode::Unavailable => ResponseError::NotController.code(),
        _ => errors::code(e),
    }
}

/// Answers a CreateTopics request.
pub async fn create(kafka: &Kafka, version: i16, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let wait = Duration::from_millis(req.timeout_ms.max(0) as u64).min(MAX_WAIT);
    let mut results = Vec::with_capacity(req.topics.len().min(1024));
    for topic in req.topics {
        let name = topic.name.clone();
        let result = CreatableTopicResult::default().with_name(name.clone());
        let outcome = create_one(kafka, topic, req.validate_only, wait).await;
        results.push(match outcome {
            Ok(config) if version >= 5 => result
                .with_num_partitions(config.partitions as i32)
                .with_replication_factor(config.replication_factor as i16),
            Ok(_) => result,
            Err((code, message)) => {
                tracing::info!(topic = %name.0.as_str(), code, %message, "Kafka CreateTopics refused");
                let result = result.with_error_code(code);
                if version >= 1 { result.with_error_message(Some(StrBytes::from_string(message))) } else { result }
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    kafka: &Kafka,
    topic: CreatableTopic,
    validate_only: bool,
    wait: Duration,
) -> Result<pb::TopicConfig, (i16, String)> {
    let name = topic.name.0.to_string();
    goulette_proto::validate_new_topic_name(&name).map_err(|r| (ResponseError::InvalidTopicException.code(), r))?;
    if name.starts_with("__") {
        return Err((ResponseError::InvalidTopicException.code(), format!("{name} is an internal topic name")));
    }
    if !topic.assignments.is_empty() {
        let message = "manual replica assignments are not supported: the sentinels place replicas".to_owned();
        return Err((ResponseError::InvalidReplicaAssignment.code(), message));
    }
    let mut config = pb::TopicConfig { name: name.clone(), ..Default::default() };
    config.partitions = match topic.num_partitions {
        -1 => 0,
        n if n >= 1 => n as u32,
        n => return Err((ResponseError::InvalidPartitions.code(), format!("{n} partitions"))),
    };
    config.replication_factor = match topic.replication_factor {
        -1 => 0,
        n if n >= 1 => n as u32,
        n => return Err((ResponseError::InvalidReplicationFactor.code(), format!("replication factor {n}"))),
    };
    for c in &topic.configs {
        configs::apply(&mut config, c.name.as_str(), c.value.as_deref())
            .map_err(|reason| (ResponseError::InvalidConfig.code(), reason))?;
    }
    let live = live_brokers(kafka).await.map_err(|e| (ResponseError::RequestTimedOut.code(), e))?;
    if config.replication_factor as usize > live {
        let message = format!("replication factor {} exceeds the {live} live brokers", config.replication_factor);
        return Err((ResponseError::InvalidReplicationFactor.code(), message));
    }
    if validate_only {
        let exists = topic_exists(kafka, &name).await.map_err(|e| (ResponseError::RequestTimedOut.code(), e))?;
        if exists {
            return Err((ResponseError::TopicAlreadyExists.code(), format!("topic {name} exists")));
        }
        return Ok(config);
    }
    let created = kafka
        .sentinels
        .create_topic(config)
        .await
        .map_err(|e| (ResponseError::RequestTimedOut.code(), e.to_string()))?;
    if let Some(e) = created.error {
        return Err((code_of(&e), e.message));
    }
    let config = created.topic.and_then(|t| t.config).unwrap_or_default();
    wait_led(kafka, &name, wait).await;
    Ok(config)
}

async fn live_brokers(kafka: &Kafka) -> Result<usize, String> {
    let answer = kafka.sentinels.metadata(pb::MetadataRequest::default()).await.map_err(|e| e.to_string())?;
    Ok(answer.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count())
}

async fn topic_exists(kafka: &Kafka, name: &str) -> Result<bool, String> {
    let asked = pb::MetadataRequest { topics: vec![name.to_owned()], ..Default::default() };
    let answer = kafka.sentinels.metadata(asked).await.map_err(|e| e.to_string())?;
    Ok(answer.topics.first().is_some_and(|t| t.error.is_none()))
}

/// Waits (at most `wait`) until every partition of `name` has a leader.
pub(super) async fn wait_led(kafka: &Kafka, name: &str, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        let asked = pb::MetadataRequest { topics: vec![name.to_owned()], ..Default::default() };
        if let Ok(answer) = kafka.sentinels.metadata(asked).await
            && answer.topics.first().is_some_and(|t| {
                t.error.is_none() && !t.partitions.is_empty() && t.partitions.iter().all(|p| p.leader.is_some())
            })
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Answers a DeleteTopics request.
pub async fn delete(kafka: &Kafka, version: i16, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut responses = Vec::with_capacity(req.topic_names.len().min(1024));
    for name in req.topic_names {
        let topic = name.0.to_string();
        let result = DeletableTopicResult::default().with_name(Some(name));
        let outcome: Result<(), (i16, String)> = if topic.starts_with("__") {
            Err((ResponseError::InvalidTopicException.code(), format!("{topic} is an internal topic")))
        } else {
            match kafka.sentinels.delete_topic(&topic).await {
                Ok(pb::DeleteTopicResponse { error: None }) => Ok(()),
                Ok(pb::DeleteTopicResponse { error: Some(e) }) => Err((code_of(&e), e.message)),
                Err(e) => Err((ResponseError::RequestTimedOut.code(), e.to_string())),
            }
        };
        responses.push(match outcome {
            Ok(()) => result,
            Err((code, message)) => {
                let result = result.with_error_code(code);
                if version >= 5 { result.with_error_message(Some(StrBytes::from_string(message))) } else { result }
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
