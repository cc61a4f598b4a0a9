//! Checks of the administration APIs: CREATE (on the cluster, or the
//! topic) to create topics; DELETE to delete topics or their records;
//! ALTER to add partitions; DESCRIBE_CONFIGS and ALTER_CONFIGS on a topic
//! (on the cluster for a broker's configuration); DESCRIBE and ALTER on the
//! cluster for users and ACLs.

use goulette_auth::acl::Operation;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{Guard, cluster_denied, topic_denied};

/// Kafka's configuration resource type of a topic (4 is a broker).
const TOPIC_RESOURCE: i8 = 2;

/// Takes the topics `caller` may not create out of `req`; their answers.
pub fn create_topics(guard: Guard, req: &mut CreateTopicsRequest) -> Vec<CreatableTopicResult> {
    if guard.cluster(Operation::Create) {
        return Vec::new();
    }
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        if guard.topic(Operation::Create, &t.name.0) {
            return true;
        }
        denied.push(CreatableTopicResult::default().with_name(t.name.clone()).with_error_code(topic_denied()));
        false
    });
    denied
}

/// Takes the topics `caller` may not delete out of `req`; their answers.
pub fn delete_topics(guard: Guard, req: &mut DeleteTopicsRequest) -> Vec<DeletableTopicResult> {
    let mut denied = Vec::new();
    let refuse = |name: &TopicName| {
        DeletableTopicResult::default().with_name(Some(name.clone())).with_error_code(topic_denied())
    };
    req.topic_names.retain(|name| {
        let allowed = guard.topic(Operation::Delete, &name.0);
        if !allowed {
            denied.push(refuse(name));
        }
        allowed
    });
    req.topics.retain(|t| match &t.name {
        Some(name) if !guard.topic(Operation::Delete, &name.0) => {
            denied.push(refuse(name));
            false
        }
        _ => true,
    });
    denied
}

/// Takes the topics `caller` may not delete records of out of `req`.
pub fn delete_records(guard: Guard, req: &mut DeleteRecordsRequest) -> Vec<DeleteRecordsTopicResult> {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        if guard.topic(Operation::Delete, &t.name.0) {
            return true;
        }
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(topic_denied())
                    .with_low_watermark(-1)
            })
            .collect();
        denied.push(DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(partitions));
        false
    });
    denied
}

/// Takes the topics `caller` may not alter out of `req`; their answers.
pub fn create_partitions(guard: Guard, req: &mut CreatePartitionsRequest) -> Vec<CreatePartitionsTopicResult> {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        if guard.topic(Operation::Alter, &t.name.0) {
            return true;
        }
        denied.push(CreatePartitionsTopicResult::default().with_name(t.name.clone()).with_error_code(topic_denied()));
        false
    });
    denied
}

/// Whether `caller` may `operation` (DESCRIBE_CONFIGS, ALTER_CONFIGS) the
/// configuration resource `(kind, name)`, and the code refusing it.
fn config_allowed(guard: Guard, operation: Operation, kind: i8, name: &str) -> Result<(), i16> {
    match kind {
        TOPIC_RESOURCE if guard.topic(operation, name) => Ok(()),
        TOPIC_RESOURCE => Err(topic_denied()),
        _ if guard.cluster(operation) => Ok(()),
        _ => Err(cluster_denied()),
    }
}

/// Takes the resources `caller` may not describe out of `req`.
pub fn describe_configs(guard: Guard, req: &mut DescribeConfigsRequest) -> Vec<DescribeConfigsResult> {
    let mut denied = Vec::new();
    req.resources.retain(|r| {
        match config_allowed(guard, Operation::DescribeConfigs, r.resource_type, &r.resource_name) {
            Ok(()) => true,
            Err(code) => {
                denied.push(
                    DescribeConfigsResult::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone())
                        .with_error_code(code),
                );
                false
            }
        }
    });
    denied
}

/// The resources of an AlterConfigs or IncrementalAlterConfigs request
/// `caller` may not alter, by (type, name, code).
pub fn alter_configs<'r>(
    guard: Guard,
    resources: impl IntoIterator<Item = (i8, &'r StrBytes)>,
) -> Vec<(i8, StrBytes, i16)> {
    resources
        .into_iter()
        .filter_map(|(kind, name)| {
            config_allowed(guard, Operation::AlterConfigs, kind, name).err().map(|code| (kind, name.clone(), code))
        })
        .collect()
}
