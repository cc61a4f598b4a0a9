//! What the sentinel stores in etcd, as JSON values, and the rules topics obey.

use serde::{Deserialize, Serialize};

use goulette_proto::v1 as pb;

/// A registered broker (`brokers/{id}`, under its session lease).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRecord {
    pub id: u32,
    pub address: String,
    #[serde(default)]
    pub http_address: String,
    #[serde(default)]
    pub rack: String,
    /// The largest record batch it accepts (0: not reported).
    #[serde(default)]
    pub max_batch_bytes: u64,
    /// Its advertised Kafka-protocol address; empty when it has none.
    #[serde(default)]
    pub kafka_address: String,
    /// The retention of topics that set none, in ms (`u64::MAX`: forever);
    /// `None` when it did not report it.
    #[serde(default)]
    pub default_retention_ms: Option<u64>,
}

/// A broker being decommissioned (`decommissioned/{id}`): it gets no new
/// replicas and its replicas move to other brokers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecommissionRecord {
    pub id: u32,
    /// Wall-clock ms when it was asked for.
    pub at_ms: i64,
}

/// A running sentinel (`sentinels/{id}`, under its lease).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentinelRecord {
    pub id: String,
    pub address: String,
    /// Its `/health`, `/ready` and `/metrics` address; empty when it has none.
    #[serde(default)]
    pub http_address: String,
}

/// A topic's configuration (`topics/{name}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    #[serde(default)]
    pub retention_ms: u64,
    #[serde(default)]
    pub retention_bytes: u64,
    #[serde(default)]
    pub unclean_leader_election: bool,
    /// 0 = the default (2 when the replication factor is ≥ 3, else 1).
    #[serde(default)]
    pub min_insync_replicas: u32,
    /// The topic's identity (its incarnation): random and non-zero, chosen
    /// at creation and stored as data, so that a backup restored into a new
    /// etcd keeps it. 0 in records written before ids existed; those topics
    /// are identified by their key's create revision instead (see
    /// `ClusterView::topic_incarnations`).
    #[serde(default)]
    pub id: u64,
    /// How records leave the topic (`pb::CleanupPolicy` as i32: 0 delete).
    #[serde(default)]
    pub cleanup_policy: i32,
    /// Compaction and fragment settings; 0 = the default (see `pb::TopicConfig`).
    #[serde(default)]
    pub delete_retention_ms: u64,
    #[serde(default)]
    pub min_compaction_lag_ms: u64,
    #[serde(default)]
    pub min_cleanable_dirty_ratio_permille: u32,
    #[serde(default)]
    pub segment_bytes: u64,
    #[serde(default)]
    pub segment_ms: u64,
}

/// The record that a topic incarnation was deleted
/// (`deleted-topics/{name}/{id}`), written in the deletion's transaction: the
/// positive evidence on which brokers delete that incarnation's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicTombstone {
    pub name: String,
    pub id: u64,
    /// Wall-clock ms of the deletion.
    pub at_ms: i64,
}

/// 64 random bits, never 0: a new topic's id, and where a new producer-id
/// counter starts. Random rather than counted, so that a topic created in
/// an etcd that lost its data can never take the id of an earlier
/// incarnation whose data brokers still hold (nor a producer an id they
/// still remember).
pub fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // std's RandomState is seeded from the OS's random source.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    h.finish().max(1)
}

/// Where a partition lives and who leads it (`partitions/{topic}/{p}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub topic: String,
    pub partition: u32,
    /// Replica brokers, in ring order (the preferred leader first).
    pub replicas: Vec<u32>,
    /// The current leader, `None` while offline.
    pub leader: Option<u32>,
    /// Bumped by every leadership change.
    pub leader_epoch: u64,
    /// In-sync replicas, the leader included.
    pub isr: Vec<u32>,
}

/// A topic partition, as group records name it.
pub type Tp = (String, u32);

/// A consumer-group member (`groups/{group}/members/{id}`, under the
/// member's session lease, so it vanishes when the member goes silent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: String,
    pub client_id: String,
    /// Topics it consumes.
    pub topics: Vec<String>,
    /// The assignment strategy it asked for.
    pub strategy: String,
    /// Its tag filter, normalized (empty: every record).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag_filter: String,
    /// Its session: the lease holding this key.
    pub session: i64,
    pub session_timeout_ms: u64,
    /// What it may be fetching: partitions granted to it and not yet
    /// reported released. A partition is granted to one member only while
    /// no other member's record owns it.
    #[serde(default)]
    pub owned: Vec<Tp>,
}

/// A group's current generation (`groups/{group}/state`), written by the
/// sentinel leader whenever members, their topics or partition counts change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub group: String,
    /// Bumped by every rebalance (starts over only after `group delete`).
    pub generation: i64,
    pub strategy: String,
    /// The members' subscriptions this generation was computed from.
    pub subscriptions: std::collections::BTreeMap<String, Vec<String>>,
    /// Partition counts of the subscribed topics it was computed from.
    pub partition_counts: std::collections::BTreeMap<String, u32>,
    /// Member → its partitions in this generation.
    pub assignment: std::collections::BTreeMap<String, Vec<Tp>>,
}

/// A group's settings (`groups/{group}/settings`), as `group alter` set
/// them; they outlive its members and generations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettingsRecord {
    /// Deliveries of a record before a nack dead-letters it; 0: not set.
    #[serde(default)]
    pub max_deliveries: u32,
}

/// One entry of the operation log (`ops/{seq}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRecord {
    pub seq: u64,
    /// Wall-clock ms when the sentinel leader committed it.
    pub at_ms: i64,
    /// The sentinel that committed it.
    pub sentinel: String,
    /// What happened, e.g. `create-topic`, `register-broker`, `elect-leader`.
    pub kind: String,
    /// Human-readable details.
    pub detail: String,
}

pub use goulette_proto::{MAX_TOPIC_NAME_LEN, validate_topic_name};

/// Wall-clock milliseconds since the Unix epoch, as records store time.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl From<&TopicRecord> for pb::TopicConfig {
    fn from(t: &TopicRecord) -> Self {
        pb::TopicConfig {
            name: t.name.clone(),
            partitions: t.partitions,
            replication_factor: t.replication_factor,
            retention_ms: t.retention_ms,
            retention_bytes: t.retention_bytes,
            unclean_leader_election: t.unclean_leader_election,
            min_insync_replicas: t.min_insync_replicas,
            cleanup_policy: t.cleanup_policy,
            delete_retention_ms: t.delete_retention_ms,
            min_compaction_lag_ms: t.min_compaction_lag_ms,
            min_cleanable_dirty_ratio_permille: t.min_cleanable_dirty_ratio_permille,
            segment_bytes: t.segment_bytes,
            segment_ms: t.segment_ms,
        }
    }
}

impl From<&PartitionRecord> for pb::PartitionState {
    fn from(p: &PartitionRecord) -> Self {
        pb::PartitionState {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas: p.replicas.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            isr: p.isr.clone(),
            // Filled in by whoever knows the etcd revision.
            revision: 0,
        }
    }
}
