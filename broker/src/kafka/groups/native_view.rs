//! The Kafka groups a broker coordinates, as Goulette's own tools see them
//! (`goulette group describe`, through the gRPC `DescribeKafkaGroup`):
//! members with the topics they subscribe to and the partitions assigned
//! to them, decoded from Kafka's consumer protocol (the subscription and
//! assignment bytes members exchange through the coordinator).

use bytes::Bytes;
use goulette_proto::v1::{self as pb, ErrorCode};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Decodable;

use crate::kafka::groups::Groups;

/// Reads a consumer-protocol message (an i16 version, then the body).
fn decode<T: Decodable>(bytes: &Bytes) -> Option<T> {
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = buf.split_to(2);
    T::decode(&mut buf, version).ok()
}

/// The Kafka members of `group`, if this broker coordinates it.
pub fn describe(groups: &Groups, req: &pb::DescribeKafkaGroupRequest) -> pb::DescribeKafkaGroupResponse {
    match groups.coordinated(&req.group) {
        Ok(partition) if partition == req.offsets_partition => {}
        _ => {
            let message = format!("this broker does not coordinate group {}", req.group);
            return pb::DescribeKafkaGroupResponse {
                error: Some(pb::Error::new(ErrorCode::NotLeader, message)),
                ..Default::default()
            };
        }
    }
    groups
        .with_existing(&req.group, |g| {
            let members = g
                .members
                .values()
                .map(|m| {
                    let subscription = m.protocols.iter().find(|(n, _)| *n == g.protocol).map(|(_, b)| b);
                    let topics = subscription
                        .and_then(decode::<ConsumerProtocolSubscription>)
                        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
                        .unwrap_or_default();
                    let assigned = decode::<ConsumerProtocolAssignment>(&m.assignment)
                        .map(|a| {
                            a.assigned_partitions
                                .iter()
                                .flat_map(|tp| {
                                    tp.partitions.iter().map(|p| pb::TopicPartition {
                                        topic: tp.topic.0.to_string(),
                                        partition: *p as u32,
                                    })
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    pb::GroupMember {
                        member_id: m.id.clone(),
                        client_id: m.client_id.clone(),
                        topics,
                        assigned,
                        owned: Vec::new(),
                    }
                })
                .collect();
            pb::DescribeKafkaGroupResponse {
                error: None,
                state: g.phase.name().to_owned(),
                generation: i64::from(g.generation),
                protocol: g.protocol.clone(),
                members,
            }
        })
        .unwrap_or_else(|| pb::DescribeKafkaGroupResponse { state: "Dead".to_owned(), ..Default::default() })
}
