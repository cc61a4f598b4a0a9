//! AlterConfigs (v0–2) and IncrementalAlterConfigs (v0–1): changing a
//! topic's settings, forwarded to the sentinels, which store them and push
//! them to the brokers (applied without a restart).
//!
//! AlterConfigs replaces a topic's settings: every setting not named goes
//! back to its default, as in Kafka. IncrementalAlterConfigs changes only
//! the named ones: SET, and DELETE (back to the default); APPEND and
//! SUBTRACT are for list settings, and Goulette has no list setting that
//! can change (`cleanup.policy` is `delete` only), so they are
//! INVALID_CONFIG. A broker's settings are its start flags and cannot be
//! changed here; internal topics (`__…`) cannot be changed either.

use goulette_proto::v1::{self as pb, ErrorCode};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    alter_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::configs::{self, BROKER, Setting, TOPIC};
use crate::kafka::{Kafka, errors};

/// IncrementalAlterConfigs operations.
const SET: i8 = 0;
const DELETE: i8 = 1;

/// An error code and message to answer for one resource.
type Refusal = (i16, String);

fn invalid_config(reason: String) -> Refusal {
    (ResponseError::InvalidConfig.code(), reason)
}

/// Answers an AlterConfigs request.
pub async fn alter(kafka: &Kafka, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len().min(1024));
    for resource in req.resources {
        let name = resource.resource_name.to_string();
        let settings: Result<Vec<Setting>, Refusal> = resource
            .configs
            .iter()
            .map(|c| configs::parse(c.name.as_str(), c.value.as_deref()).map_err(invalid_config))
            .collect();
        // Everything not named goes back to its default.
        let everything = pb::AlterTopicRequest {
            retention_ms: Some(0),
            retention_bytes: Some(0),
            min_insync_replicas: Some(0),
            unclean_leader_election: Some(false),
            cleanup_policy: Some(pb::CleanupPolicy::Delete as i32),
            delete_retention_ms: Some(0),
            min_compaction_lag_ms: Some(0),
            min_cleanable_dirty_ratio_permille: Some(0),
            segment_bytes: Some(0),
            segment_ms: Some(0),
            ..Default::default()
        };
        let (code, message) =
            answer(kafka, resource.resource_type, &name, everything, settings, req.validate_only).await;
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// Answers an IncrementalAlterConfigs request.
pub async fn alter_incrementally(
    kafka: &Kafka,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len().min(1024));
    for resource in req.resources {
        let name = resource.resource_name.to_string();
        let settings: Result<Vec<Setting>, Refusal> = resource
            .configs
            .iter()
            .map(|c| {
                let key = c.name.as_str();
                match c.config_operation {
                    SET => configs::parse(key, c.value.as_deref()),
                    DELETE => configs::default_of(key),
                    op => Err(format!("{key}: operation {op} (APPEND/SUBTRACT) is for list settings; use SET")),
                }
                .map_err(invalid_config)
            })
            .collect();
        let nothing = pb::AlterTopicRequest::default();
        let (code, message) = answer(kafka, resource.resource_type, &name, nothing, settings, req.validate_only).await;
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The error code and message for changing resource `name` by `settings`
/// on top of `base`.
async fn answer(
    kafka: &Kafka,
    resource_type: i8,
    name: &str,
    base: pb::AlterTopicRequest,
    settings: Result<Vec<Setting>, Refusal>,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    let outcome = match settings {
        Ok(settings) => {
            let mut change = base;
            settings.into_iter().for_each(|s| configs::change(&mut change, s));
            send(kafka, resource_type, name, change, validate_only).await
        }
        Err(refusal) => Err(refusal),
    };
    match outcome {
        Ok(()) => (0, None),
        Err((code, message)) => (code, Some(StrBytes::from_string(message))),
    }
}

/// Sends a change of topic `name`'s settings to the sentinels.
async fn send(
    kafka: &Kafka,
    resource_type: i8,
    name: &str,
    mut change: pb::AlterTopicRequest,
    validate_only: bool,
) -> Result<(), Refusal> {
    match resource_type {
        TOPIC => {}
        BROKER => {
            let reason = "a broker's settings are its start flags: change its config file and restart it";
            return Err((ResponseError::InvalidRequest.code(), reason.to_owned()));
        }
        _ => return Err((ResponseError::InvalidRequest.code(), "only topic settings can be changed".to_owned())),
    }
    if name.starts_with("__") {
        return Err((ResponseError::InvalidRequest.code(), format!("{name} is an internal topic")));
    }
    change.name = name.to_owned();
    change.validate_only = validate_only;
    let answer = kafka
        .sentinels
        .alter_topic(change)
        .await
        .map_err(|e| (ResponseError::RequestTimedOut.code(), e.to_string()))?;
    match answer.error {
        None => {
            tracing::info!(topic = name, validate_only, "topic settings changed through Kafka AlterConfigs");
            Ok(())
        }
        Some(e) if e.error_code() == ErrorCode::InvalidArgument => Err(invalid_config(e.message)),
        Some(e) => Err((errors::code(&e), e.message)),
    }
}
