//! Checks of the data APIs: WRITE to produce, READ to fetch, DESCRIBE to
//! list offsets, ask leader epochs, or see a topic in Metadata (CREATE, on
//! the topic or the cluster, to have it created there).

use goulette_auth::acl::Operation;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    FetchRequest, ListOffsetsRequest, MetadataRequest, MetadataResponse, OffsetForLeaderEpochRequest, ProduceRequest,
};

use super::{Guard, topic_denied};

/// Takes the topics `caller` may not write out of `req`; their answers.
pub fn produce(guard: Guard, req: &mut ProduceRequest) -> Vec<TopicProduceResponse> {
    let mut denied = Vec::new();
    req.topic_data.retain(|t| {
        if guard.topic(Operation::Write, &t.name.0) {
            return true;
        }
        let partitions = t
            .partition_data
            .iter()
            .map(|p| {
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(topic_denied())
                    .with_base_offset(-1)
            })
            .collect();
        denied.push(TopicProduceResponse::default().with_name(t.name.clone()).with_partition_responses(partitions));
        false
    });
    denied
}

/// Takes the topics `caller` may not read out of `req`; their answers.
pub fn fetch(guard: Guard, req: &mut FetchRequest) -> Vec<FetchableTopicResponse> {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        if guard.topic(Operation::Read, &t.topic.0) {
            return true;
        }
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_error_code(topic_denied())
                    .with_high_watermark(-1)
            })
            .collect();
        denied.push(FetchableTopicResponse::default().with_topic(t.topic.clone()).with_partitions(partitions));
        false
    });
    denied
}

/// Takes the topics `caller` may not describe out of `req`; their answers.
pub fn list_offsets(guard: Guard, req: &mut ListOffsetsRequest) -> Vec<ListOffsetsTopicResponse> {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        if guard.topic(Operation::Describe, &t.name.0) {
            return true;
        }
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(topic_denied())
                    .with_offset(-1)
                    .with_timestamp(-1)
            })
            .collect();
        denied.push(ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions));
        false
    });
    denied
}

/// Takes the topics `caller` may not describe out of `req`; their answers.
pub fn leader_epochs(guard: Guard, req: &mut OffsetForLeaderEpochRequest) -> Vec<OffsetForLeaderTopicResult> {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        if guard.topic(Operation::Describe, &t.topic.0) {
            return true;
        }
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(topic_denied())
                    .with_end_offset(-1)
                    .with_leader_epoch(-1)
            })
            .collect();
        denied.push(OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions));
        false
    });
    denied
}

/// Before a Metadata request: no auto-creation unless `caller` may create
/// every topic named (on the cluster, or each topic).
pub fn metadata_request(guard: Guard, req: &mut MetadataRequest) {
    if !guard.active() || !req.allow_auto_topic_creation || guard.cluster(Operation::Create) {
        return;
    }
    let all_allowed =
        req.topics.iter().flatten().filter_map(|t| t.name.as_ref()).all(|name| guard.topic(Operation::Create, &name.0));
    if !all_allowed {
        req.allow_auto_topic_creation = false;
    }
}

/// After: topics `caller` may not describe are left out of a listing, and
/// answered TOPIC_AUTHORIZATION_FAILED when named.
pub fn metadata_response(guard: Guard, named: bool, resp: &mut MetadataResponse) {
    if !guard.active() {
        return;
    }
    for topic in &mut resp.topics {
        let Some(name) = &topic.name else { continue };
        if !guard.topic(Operation::Describe, &name.0) {
            topic.error_code = topic_denied();
            topic.partitions.clear();
        }
    }
    if !named {
        resp.topics.retain(|t| t.error_code != topic_denied());
    }
}
