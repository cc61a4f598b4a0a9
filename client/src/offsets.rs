//! Committed consumer offsets: commit and fetch them through the leader of
//! the group's partition of the internal topic `__offsets` (created on first
//! use, replicated like any topic).
//!
//! Built on `Cluster` alone (its leader loop, topic creation and cluster
//! status), so that the consumer can use it without depending on `Admin`.

use std::collections::BTreeMap;
use std::sync::Arc;

use goulette_proto::v1::{self as pb, ErrorCode, broker_service_client::BrokerServiceClient};

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};

/// The internal topic holding committed offsets, and its partition count.
pub use goulette_proto::offsets_topic::{OFFSETS_PARTITIONS, OFFSETS_TOPIC};
/// The generation of a consumer outside group membership.
pub const NO_GENERATION: i64 = -1;

/// The `__offsets` partition of `group` among `partitions` (stable).
pub use goulette_proto::offsets_topic::group_partition as partition_for;

/// The `__offsets` partition count; `None` when the topic does not exist
/// and `create` is false. Created on first commit
/// (`goulette_proto::offsets_topic::config`).
async fn offsets_partitions(cluster: &Arc<Cluster>, create: bool) -> Result<Option<u32>> {
    match cluster.topic(OFFSETS_TOPIC, false).await {
        Ok(t) => return Ok(Some(t.partitions.len() as u32)),
        Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. }) if !create => return Ok(None),
        Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. }) => {}
        Err(e) => return Err(e),
    }
    let up = cluster.cluster_status().await?.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count();
    match cluster.create_topic(goulette_proto::offsets_topic::config(up)).await {
        Ok(_) | Err(ClientError::Server { code: ErrorCode::TopicExists, .. }) => {}
        Err(e) => return Err(e),
    }
    cluster.invalidate(OFFSETS_TOPIC);
    Ok(Some(cluster.topic(OFFSETS_TOPIC, false).await?.partitions.len() as u32))
}

/// Calls the coordinator of `group` (the leader of its `__offsets`
/// partition) with `call`, retrying while leadership moves. `None` when
/// `__offsets` does not exist and `create` is false.
async fn with_coordinator<T, F, Fut>(cluster: &Arc<Cluster>, group: &str, create: bool, call: F) -> Result<Option<T>>
where
    F: FnMut(BrokerServiceClient<goulette_proto::channel::Authorized>, u32) -> Fut,
    Fut: Future<Output = std::result::Result<(T, Option<pb::Error>), tonic::Status>>,
{
    goulette_proto::validate_topic_name(group).map_err(|r| ClientError::InvalidArgument(format!("group name: {r}")))?;
    let Some(count) = offsets_partitions(cluster, create).await? else { return Ok(None) };
    with_leader_of(cluster, partition_for(group, count), call).await.map(Some)
}

/// Calls the leader of `__offsets` partition `partition` with `call`,
/// retrying while leadership moves.
async fn with_leader_of<T, F, Fut>(cluster: &Cluster, partition: u32, mut call: F) -> Result<T>
where
    F: FnMut(BrokerServiceClient<goulette_proto::channel::Authorized>, u32) -> Fut,
    Fut: Future<Output = std::result::Result<(T, Option<pb::Error>), tonic::Status>>,
{
    cluster.with_leader("offsets coordinator", OFFSETS_TOPIC, partition, 10, |client| call(client, partition)).await
}

/// Commits `offsets` (partition → next offset to consume) of `topic` for
/// `group`: as `member` (member id, generation), or with `None` as a
/// consumer outside group membership.
pub async fn commit(
    cluster: &Arc<Cluster>,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<u32, u64>,
    member: Option<(&str, i64)>,
) -> Result<()> {
    let (member_id, generation) = member.unwrap_or(("", NO_GENERATION));
    let offsets: Vec<pb::TopicPartitionOffset> = offsets
        .iter()
        .map(|(p, o)| pb::TopicPartitionOffset {
            topic: topic.to_owned(),
            partition: *p,
            offset: *o,
            metadata: String::new(),
        })
        .collect();
    with_coordinator(cluster, group, true, |mut client, offsets_partition| {
        let req = pb::CommitOffsetsRequest {
            group: group.to_owned(),
            offsets_partition,
            generation,
            member_id: member_id.to_owned(),
            offsets: offsets.clone(),
        };
        async move { client.commit_offsets(req).await.map(|r| ((), r.into_inner().error)) }
    })
    .await
    .map(drop)
}

/// The offsets `group` committed for `topic`'s partitions.
pub async fn fetch(cluster: &Arc<Cluster>, group: &str, topic: &str) -> Result<BTreeMap<u32, u64>> {
    let offsets = fetch_where(cluster, group, topic).await?;
    Ok(offsets.into_iter().filter(|o| o.topic == topic).map(|o| (o.partition, o.offset)).collect())
}

/// Every offset `group` committed: (topic, partition) → offset.
pub async fn fetch_all(cluster: &Arc<Cluster>, group: &str) -> Result<BTreeMap<(String, u32), u64>> {
    let offsets = fetch_where(cluster, group, "").await?;
    Ok(offsets.into_iter().map(|o| ((o.topic, o.partition), o.offset)).collect())
}

/// The commits of `group` for `topic` (every topic when empty).
async fn fetch_where(cluster: &Arc<Cluster>, group: &str, topic: &str) -> Result<Vec<pb::TopicPartitionOffset>> {
    let offsets = with_coordinator(cluster, group, false, |mut client, offsets_partition| {
        let req = pb::FetchOffsetsRequest { group: group.to_owned(), offsets_partition, topic: topic.to_owned() };
        async move {
            client.fetch_offsets(req).await.map(|r| {
                let r = r.into_inner();
                (r.offsets, r.error)
            })
        }
    })
    .await?;
    Ok(offsets.unwrap_or_default())
}

/// The Kafka-protocol members of `group`, from its coordinator (Kafka
/// clients' groups live in the brokers, not the sentinels); `None` when
/// `__offsets` does not exist yet.
pub async fn describe_kafka_group(
    cluster: &Arc<Cluster>,
    group: &str,
) -> Result<Option<pb::DescribeKafkaGroupResponse>> {
    with_coordinator(cluster, group, false, |mut client, offsets_partition| {
        let req = pb::DescribeKafkaGroupRequest { group: group.to_owned(), offsets_partition };
        async move {
            client.describe_kafka_group(req).await.map(|r| {
                let r = r.into_inner();
                let error = r.error.clone();
                (r, error)
            })
        }
    })
    .await
}

/// Every group with committed offsets, sorted.
pub async fn list_groups(cluster: &Arc<Cluster>) -> Result<Vec<String>> {
    let Some(count) = offsets_partitions(cluster, false).await? else { return Ok(Vec::new()) };
    let mut groups = Vec::new();
    for partition in 0..count {
        let found = with_leader_of(cluster, partition, |mut client, offsets_partition| async move {
            client.list_groups(pb::ListGroupsRequest { offsets_partition }).await.map(|r| {
                let r = r.into_inner();
                (r.groups, r.error)
            })
        })
        .await?;
        groups.extend(found);
    }
    groups.sort();
    Ok(groups)
}

/// Deletes every committed offset of `group`.
pub async fn delete_group(cluster: &Arc<Cluster>, group: &str) -> Result<()> {
    with_coordinator(cluster, group, false, |mut client, offsets_partition| {
        let req = pb::DeleteGroupRequest { group: group.to_owned(), offsets_partition };
        async move { client.delete_group(req).await.map(|r| ((), r.into_inner().error)) }
    })
    .await
    .map(drop)
}
