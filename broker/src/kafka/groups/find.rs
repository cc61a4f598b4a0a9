//! FindCoordinator (v0–3): the broker that coordinates a group, the leader
//! of the group's `__offsets` partition. `__offsets` is created here if it
//! does not exist yet, with the settings native clients use.
//!
//! Transaction coordinators (key type 1) do not exist yet: those are
//! COORDINATOR_NOT_AVAILABLE.

use goulette_proto::offsets_topic::{self, OFFSETS_TOPIC, group_partition};
use goulette_proto::v1::{self as pb, ErrorCode};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use crate::config::split_host_port;
use crate::kafka::Kafka;

/// Answers a FindCoordinator request.
pub async fn handle(kafka: &Kafka, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let refuse = |code: i16, message: String| {
        FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_node_id(BrokerId(-1))
    };
    if req.key_type != 0 {
        return refuse(ResponseError::CoordinatorNotAvailable.code(), "transactions are not supported yet".into());
    }
    let group = req.key.to_string();
    if goulette_proto::validate_topic_name(&group).is_err() {
        return refuse(ResponseError::InvalidGroupId.code(), format!("invalid group id {group:?}"));
    }
    match coordinator(kafka, &group).await {
        Ok((id, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(id as i32))
            .with_host(StrBytes::from_string(host))
            .with_port(i32::from(port)),
        Err(reason) => {
            tracing::debug!(%group, %reason, "Kafka FindCoordinator: no coordinator yet");
            refuse(ResponseError::CoordinatorNotAvailable.code(), reason)
        }
    }
}

/// The leader of `group`'s `__offsets` partition: id, Kafka host and port.
async fn coordinator(kafka: &Kafka, group: &str) -> Result<(u32, String, u16), String> {
    let metadata = offsets_metadata(kafka).await?;
    let topic = metadata.topics.first().ok_or("no metadata for __offsets")?;
    let partition = group_partition(group, topic.partitions.len() as u32);
    let state = topic.partitions.iter().find(|p| p.partition == partition).ok_or("partition missing")?;
    let leader = state.leader.ok_or_else(|| format!("{OFFSETS_TOPIC}/{partition} has no leader"))?;
    let broker = metadata.brokers.iter().find(|b| b.id == leader && b.state == pb::BrokerState::Up as i32);
    let (host, port) = broker
        .and_then(|b| split_host_port(&b.kafka_address))
        .ok_or_else(|| format!("broker {leader} serves no Kafka listener"))?;
    Ok((leader, host.to_owned(), port))
}

/// The metadata of `__offsets`, creating the topic first if needed.
async fn offsets_metadata(kafka: &Kafka) -> Result<pb::MetadataResponse, String> {
    let ask = || pb::MetadataRequest { topics: vec![OFFSETS_TOPIC.to_owned()], ..Default::default() };
    let metadata = kafka.sentinels.metadata(ask()).await.map_err(|e| e.to_string())?;
    let missing = metadata.topics.first().and_then(|t| t.error.as_ref()).map(|e| e.error_code());
    if missing != Some(ErrorCode::UnknownTopic) {
        return Ok(metadata);
    }
    let up = metadata.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count();
    let created = kafka.sentinels.create_topic(offsets_topic::config(up)).await.map_err(|e| e.to_string())?;
    match created.error {
        Some(e) if e.error_code() != ErrorCode::TopicExists => return Err(e.message),
        _ => {}
    }
    kafka.sentinels.metadata(ask()).await.map_err(|e| e.to_string())
}
