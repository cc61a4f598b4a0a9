//! Topic administration: validating a request and filling in defaults,
//! creating a topic with its partitions placed on the ring, deleting one
//! with the tombstone brokers delete its data on.

use super::Controller;
use crate::error::{Result, SentinelError};
use crate::model::{self, PartitionRecord, TopicRecord};
use crate::ring::Ring;
use crate::store::{Change, Fence};
use crate::view::ClusterView;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

impl Controller {
    /// Validates a topic request and fills in defaults (0 = default).
    pub fn topic_with_defaults(&self, mut topic: TopicRecord) -> Result<TopicRecord> {
        goulette_proto::validate_new_topic_name(&topic.name).map_err(SentinelError::InvalidArgument)?;
        if topic.partitions == 0 {
            topic.partitions = self.config.default_partitions;
        }
        if topic.replication_factor == 0 {
            topic.replication_factor = self.config.default_replication_factor;
        }
        if topic.min_insync_replicas == 0 {
            topic.min_insync_replicas = if topic.replication_factor >= 3 { 2 } else { 1 };
        }
        if topic.min_insync_replicas > topic.replication_factor {
            return Err(SentinelError::InvalidArgument(format!(
                "min_insync_replicas {} exceeds the replication factor {}",
                topic.min_insync_replicas, topic.replication_factor
            )));
        }
        if topic.partitions > MAX_PARTITIONS {
            return Err(SentinelError::InvalidArgument(format!(
                "{} partitions is more than the maximum of {MAX_PARTITIONS}",
                topic.partitions
            )));
        }
        // The topic, its partitions, the op and the counter in one transaction.
        let ops = topic.partitions as usize + 3;
        if ops > self.config.max_txn_ops {
            return Err(SentinelError::InvalidArgument(format!(
                "{} partitions need {ops} operations in one etcd transaction; etcd allows {} (its --max-txn-ops)",
                topic.partitions, self.config.max_txn_ops
            )));
        }
        Ok(topic)
    }

    /// Creates a topic: replicas from the ring over live brokers, the first
    /// replica leads with epoch 1. Until replication exists a follower holds
    /// no data, so the ISR starts as the leader alone.
    pub async fn create_topic(
        &self,
        fence: &Fence,
        view: &ClusterView,
        topic: TopicRecord,
    ) -> Result<Vec<PartitionRecord>> {
        let mut topic = self.topic_with_defaults(topic)?;
        topic.id = model::random_id();
        if view.topics.contains_key(&topic.name) {
            return Err(SentinelError::TopicExists(topic.name));
        }
        // Decommissioned brokers get no new replicas.
        let eligible: Vec<u32> = view.brokers.keys().copied().filter(|b| !view.decommissioned.contains(b)).collect();
        if (topic.replication_factor as usize) > eligible.len() {
            return Err(SentinelError::NotEnoughBrokers { wanted: topic.replication_factor, live: eligible.len() });
        }
        let ring = Ring::new(eligible);
        let keys = self.store.keys();
        let partitions: Vec<PartitionRecord> = (0..topic.partitions)
            .map(|p| {
                let replicas = ring.replicas(&topic.name, p, topic.replication_factor as usize);
                PartitionRecord {
                    topic: topic.name.clone(),
                    partition: p,
                    leader: replicas.first().copied(),
                    isr: replicas.first().copied().into_iter().collect(),
                    replicas,
                    leader_epoch: 1,
                }
            })
            .collect();
        let detail = format!(
            "topic {} id {:016x} partitions={} replication_factor={}",
            topic.name, topic.id, topic.partitions, topic.replication_factor
        );
        let mut change = Change::new("create-topic", detail).put_json(keys.topic(&topic.name), &topic, None);
        change.require_absent.push(keys.topic(&topic.name));
        for p in &partitions {
            change = change.put_json(keys.partition(&p.topic, p.partition), p, None);
        }
        match self.store.commit(fence, change).await {
            Err(SentinelError::Conflict(_)) => Err(SentinelError::TopicExists(topic.name)),
            other => other.map(|_| partitions),
        }
    }

    /// Deletes a topic and its partitions.
    pub async fn delete_topic(&self, fence: &Fence, view: &ClusterView, name: &str) -> Result<()> {
        if name.starts_with("__") {
            return Err(SentinelError::InvalidArgument(format!("{name} is an internal topic and cannot be deleted")));
        }
        if !view.topics.contains_key(name) {
            return Err(SentinelError::UnknownTopic(name.to_owned()));
        }
        let keys = self.store.keys();
        // The tombstone of this incarnation is the evidence on which brokers
        // delete its data (see `assignments`); it lands in the deletion's
        // transaction, so the topic cannot vanish without it.
        let id = view.topic_incarnations.get(name).copied().unwrap_or(0);
        let tombstone = model::TopicTombstone { name: name.to_owned(), id, at_ms: model::now_ms() };
        let mut change = Change::new("delete-topic", format!("topic {name} id {id:016x}")).put_json(
            keys.tombstone(name, id),
            &tombstone,
            None,
        );
        change.deletes.push((keys.topic(name), false));
        change.deletes.push((keys.partitions(name), true));
        self.store.commit(fence, change).await.map(drop)
    }
}
