//! Metadata (v0–9): the live brokers' Kafka addresses and, per topic, its
//! partitions' leaders, leader epochs, replicas and in-sync replicas, as
//! the sentinels know them.
//!
//! - Brokers: those with a live session that serve Kafka. The controller id
//!   Kafka clients send admin requests to is the lowest of them (any broker
//!   forwards those to the sentinels, which are the real controller).
//! - A partition without a leader is LEADER_NOT_AVAILABLE (retriable) with
//!   leader −1; an unknown topic UNKNOWN_TOPIC_OR_PARTITION, unless the
//!   request allows auto-creation (always, before v4) and the cluster does.
//! - With the sentinels out of reach, the requested topics are
//!   LEADER_NOT_AVAILABLE and this broker is the only one listed, so
//!   clients retry instead of giving up.

use std::collections::HashSet;

use goulette_proto::v1::{self as pb, ErrorCode};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::config::split_host_port;
use crate::kafka::{Kafka, errors};

/// Answers a Metadata request.
pub async fn handle(kafka: &Kafka, version: i16, req: MetadataRequest) -> MetadataResponse {
    // None: every topic. v0 has no null array: empty means every topic.
    let asked: Option<Vec<String>> = match req.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(topics.into_iter().filter_map(|t| t.name).map(|n| n.0.to_string()).collect()),
    };
    let mut topics = Vec::new();
    let mut valid = Vec::new();
    for name in asked.iter().flatten() {
        match goulette_proto::validate_topic_name(name) {
            Ok(()) => valid.push(name.clone()),
            Err(_) => topics.push(topic_error(name, ResponseError::InvalidTopicException.code())),
        }
    }
    let auto_create = version < 4 || req.allow_auto_topic_creation;
    let wanted = asked.as_ref().map(|_| valid.clone());
    // An explicit empty list asks for brokers only; the sentinels' empty list
    // means every topic, so the answer is filtered below.
    let request = pb::MetadataRequest {
        topics: wanted.clone().unwrap_or_default(),
        allow_auto_create: auto_create && wanted.as_ref().is_some_and(|w| !w.is_empty()),
        unreachable_brokers: Vec::new(),
    };
    let answer = match kafka.sentinels.metadata(request).await {
        Ok(answer) if answer.error.is_none() => answer,
        failed => {
            let reason = match failed {
                Ok(answer) => answer.error.map(|e| e.message).unwrap_or_default(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(%reason, "Kafka Metadata: the sentinels could not answer");
            topics.extend(valid.iter().map(|n| topic_error(n, ResponseError::LeaderNotAvailable.code())));
            return response(version, self_only(kafka), topics);
        }
    };
    let brokers = live_brokers(&answer.brokers);
    let live: HashSet<u32> = brokers.iter().map(|b| b.node_id.0 as u32).collect();
    let keep: Option<HashSet<&String>> = wanted.as_ref().map(|w| w.iter().collect());
    for topic in &answer.topics {
        if keep.as_ref().is_some_and(|k| !k.contains(&topic.name)) {
            continue;
        }
        topics.push(topic_metadata(version, topic, &live));
    }
    response(version, brokers, topics)
}

fn response(
    version: i16,
    brokers: Vec<MetadataResponseBroker>,
    topics: Vec<MetadataResponseTopic>,
) -> MetadataResponse {
    let controller = brokers.iter().map(|b| b.node_id.0).min().unwrap_or(-1);
    let mut out = MetadataResponse::default().with_brokers(brokers).with_topics(topics);
    if version >= 1 {
        out.controller_id = BrokerId(controller);
    }
    out
}

/// The brokers with a live session and a Kafka address.
fn live_brokers(brokers: &[pb::BrokerInfo]) -> Vec<MetadataResponseBroker> {
    let mut out: Vec<MetadataResponseBroker> = brokers
        .iter()
        .filter(|b| b.state == pb::BrokerState::Up as i32)
        .filter_map(|b| {
            let (host, port) = split_host_port(&b.kafka_address)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id as i32))
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(i32::from(port))
                    .with_rack((!b.rack.is_empty()).then(|| StrBytes::from_string(b.rack.clone()))),
            )
        })
        .collect();
    out.sort_by_key(|b| b.node_id.0);
    out
}

/// This broker alone, for an answer without the sentinels.
fn self_only(kafka: &Kafka) -> Vec<MetadataResponseBroker> {
    let advertised = kafka.config.kafka_advertised().unwrap_or_default();
    let info = pb::BrokerInfo {
        id: kafka.config.id,
        kafka_address: advertised,
        state: pb::BrokerState::Up as i32,
        ..Default::default()
    };
    live_brokers(&[info])
}

fn topic_error(name: &str, code: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
        .with_error_code(code)
}

fn topic_metadata(version: i16, topic: &pb::TopicMetadata, live: &HashSet<u32>) -> MetadataResponseTopic {
    if let Some(error) = &topic.error {
        let code = match error.error_code() {
            ErrorCode::InvalidArgument => ResponseError::InvalidTopicException.code(),
            _ => errors::code(error),
        };
        return topic_error(&topic.name, code);
    }
    let ids = |v: &[u32]| v.iter().map(|&id| BrokerId(id as i32)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let mut out = MetadataResponsePartition::default()
                .with_partition_index(p.partition as i32)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr));
            match p.leader {
                Some(leader) => out.leader_id = BrokerId(leader as i32),
                None => {
                    out.leader_id = BrokerId(-1);
                    out.error_code = ResponseError::LeaderNotAvailable.code();
                }
            }
            if version >= 5 {
                let offline: Vec<u32> = p.replicas.iter().copied().filter(|r| !live.contains(r)).collect();
                out.offline_replicas = ids(&offline);
            }
            if version >= 7 {
                // Epochs start at 1; 0 would mean "known" to clients, so an
                // unled partition that never had a leader says -1.
                out.leader_epoch = i32::try_from(p.leader_epoch).ok().filter(|e| *e > 0).unwrap_or(-1);
            }
            out
        })
        .collect();
    let mut out = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_partitions(partitions);
    if version >= 1 {
        out.is_internal = topic.name.starts_with("__");
    }
    out
}
