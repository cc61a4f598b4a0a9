//! Topic administration: validating a request and filling in defaults,
//! creating a topic with its partitions placed on the ring, changing its
//! settings, growing it to more partitions, deleting one with the
//! tombstone brokers delete its data on.

use super::Controller;
use crate::error::{Result, SentinelError};
use crate::model::{self, PartitionRecord, TopicRecord};
use crate::ring::Ring;
use crate::store::{Change, Fence};
use crate::view::ClusterView;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

/// A change of a topic's settings: each `Some` is set, each `None` kept;
/// for `retention_ms`, `retention_bytes` and `min_insync_replicas`, 0 goes
/// back to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicChange {
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub min_insync_replicas: Option<u32>,
    pub unclean_leader_election: Option<bool>,
    pub cleanup_policy: Option<i32>,
    pub delete_retention_ms: Option<u64>,
    pub min_compaction_lag_ms: Option<u64>,
    pub min_cleanable_dirty_ratio_permille: Option<u32>,
    pub segment_bytes: Option<u64>,
    pub segment_ms: Option<u64>,
}

impl TopicChange {
    /// `topic` with this change applied, or why it cannot be.
    pub fn apply(&self, mut topic: TopicRecord) -> Result<TopicRecord> {
        if let Some(ms) = self.retention_ms {
            topic.retention_ms = ms;
        }
        if let Some(bytes) = self.retention_bytes {
            topic.retention_bytes = bytes;
        }
        if let Some(unclean) = self.unclean_leader_election {
            topic.unclean_leader_election = unclean;
        }
        if let Some(n) = self.min_insync_replicas {
            topic.min_insync_replicas = match n {
                0 => default_min_insync(topic.replication_factor),
                n => n,
            };
        }
        if topic.min_insync_replicas > topic.replication_factor {
            return Err(SentinelError::InvalidArgument(format!(
                "min_insync_replicas {} exceeds the replication factor {}",
                topic.min_insync_replicas, topic.replication_factor
            )));
        }
        let set = |field: &mut u64, value: Option<u64>| {
            if let Some(v) = value {
                *field = v;
            }
        };
        set(&mut topic.delete_retention_ms, self.delete_retention_ms);
        set(&mut topic.min_compaction_lag_ms, self.min_compaction_lag_ms);
        set(&mut topic.segment_bytes, self.segment_bytes);
        set(&mut topic.segment_ms, self.segment_ms);
        if let Some(policy) = self.cleanup_policy {
            topic.cleanup_policy = policy;
        }
        if let Some(ratio) = self.min_cleanable_dirty_ratio_permille {
            topic.min_cleanable_dirty_ratio_permille = ratio;
        }
        check_compaction(&topic)?;
        Ok(topic)
    }
}

/// Checks the cleanup and fragment settings.
fn check_compaction(topic: &TopicRecord) -> Result<()> {
    let bad = |reason: String| Err(SentinelError::InvalidArgument(reason));
    if goulette_proto::v1::CleanupPolicy::try_from(topic.cleanup_policy).is_err() {
        return bad(format!(
            "cleanup policy {} is not delete (0), compact (1) or compact,delete (2)",
            topic.cleanup_policy
        ));
    }
    if topic.min_cleanable_dirty_ratio_permille > 1000 {
        return bad(format!(
            "min_cleanable_dirty_ratio_permille {} is more than 1000 (a ratio of 1)",
            topic.min_cleanable_dirty_ratio_permille
        ));
    }
    let sizes = goulette_proto::cleanup_policy::SEGMENT_BYTES;
    if topic.segment_bytes != 0 && !sizes.contains(&topic.segment_bytes) {
        let (low, high) = sizes.into_inner();
        return bad(format!("segment_bytes {} is outside [{low}, {high}]", topic.segment_bytes));
    }
    Ok(())
}

/// The default `min_insync_replicas`: 2 from 3 replicas on, else 1.
fn default_min_insync(replication_factor: u32) -> u32 {
    if replication_factor >= 3 { 2 } else { 1 }
}

/// Why a topic cannot be changed: internal topics are the system's own.
fn refuse_internal(name: &str, what: &str) -> Result<()> {
    if name.starts_with("__") {
        return Err(SentinelError::InvalidArgument(format!(
            "{name} is an internal topic: its {what} cannot be changed"
        )));
    }
    Ok(())
}

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
        let defaults = self.config.topic_defaults;
        if topic.retention_ms == 0 {
            topic.retention_ms = defaults.retention_ms;
        }
        if topic.retention_bytes == 0 {
            topic.retention_bytes = defaults.retention_bytes;
        }
        if topic.min_insync_replicas == 0 {
            topic.min_insync_replicas = match defaults.min_insync_replicas {
                0 => default_min_insync(topic.replication_factor),
                // A cluster default never makes a small topic unwritable.
                n => n.min(topic.replication_factor),
            };
        }
        if topic.min_insync_replicas > topic.replication_factor {
            return Err(SentinelError::InvalidArgument(format!(
                "min_insync_replicas {} exceeds the replication factor {}",
                topic.min_insync_replicas, topic.replication_factor
            )));
        }
        check_compaction(&topic)?;
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
        let keys = self.store.keys();
        let partitions = place(&Ring::new(eligible), &topic, 0..topic.partitions);
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

    /// Changes `name`'s settings (compare-and-swapped on the revision `view`
    /// saw: `Conflict` when it changed since). Brokers apply the new
    /// settings when the assignment stream brings them. With
    /// `validate_only`, answers what the change would give.
    pub async fn alter_topic(
        &self,
        fence: &Fence,
        view: &ClusterView,
        name: &str,
        change: &TopicChange,
        validate_only: bool,
    ) -> Result<TopicRecord> {
        refuse_internal(name, "settings")?;
        let current = view.topics.get(name).ok_or_else(|| SentinelError::UnknownTopic(name.to_owned()))?;
        let next = change.apply(current.clone())?;
        if validate_only || next == *current {
            return Ok(next);
        }
        let keys = self.store.keys();
        let detail = format!(
            "topic {name} retention_ms={} retention_bytes={} min_insync_replicas={} unclean_leader_election={}",
            next.retention_ms, next.retention_bytes, next.min_insync_replicas, next.unclean_leader_election
        );
        let revision = view.topic_revisions.get(name).copied().unwrap_or(0);
        let mut write = Change::new("alter-topic", detail).put_json(keys.topic(name), &next, None);
        write.require_mod_revision.push((keys.topic(name), revision));
        self.store.commit(fence, write).await.map(|_| next)
    }

    /// Grows `name` to `total` partitions, the new ones placed on the ring
    /// like a new topic's (compare-and-swapped like [`Self::alter_topic`]).
    /// Existing partitions and their data are untouched; keys hash over
    /// the new count from now on.
    pub async fn add_partitions(
        &self,
        fence: &Fence,
        view: &ClusterView,
        name: &str,
        total: u32,
        validate_only: bool,
    ) -> Result<(TopicRecord, Vec<PartitionRecord>)> {
        refuse_internal(name, "partition count")?;
        let current = view.topics.get(name).ok_or_else(|| SentinelError::UnknownTopic(name.to_owned()))?;
        if total <= current.partitions {
            return Err(SentinelError::InvalidArgument(format!(
                "topic {name} has {} partitions; the new count must be more, not {total}",
                current.partitions
            )));
        }
        if total > MAX_PARTITIONS {
            return Err(SentinelError::InvalidArgument(format!(
                "{total} partitions is more than the maximum of {MAX_PARTITIONS}"
            )));
        }
        let ops = (total - current.partitions) as usize + 3;
        if ops > self.config.max_txn_ops {
            return Err(SentinelError::InvalidArgument(format!(
                "adding {} partitions needs {ops} operations in one etcd transaction; etcd allows {} (its --max-txn-ops)",
                total - current.partitions,
                self.config.max_txn_ops
            )));
        }
        let eligible: Vec<u32> = view.brokers.keys().copied().filter(|b| !view.decommissioned.contains(b)).collect();
        if (current.replication_factor as usize) > eligible.len() {
            return Err(SentinelError::NotEnoughBrokers { wanted: current.replication_factor, live: eligible.len() });
        }
        let topic = TopicRecord { partitions: total, ..current.clone() };
        let added = place(&Ring::new(eligible), &topic, current.partitions..total);
        if validate_only {
            return Ok((topic, added));
        }
        let keys = self.store.keys();
        let detail = format!("topic {name} partitions {} -> {total}", current.partitions);
        let revision = view.topic_revisions.get(name).copied().unwrap_or(0);
        let mut change = Change::new("add-partitions", detail).put_json(keys.topic(name), &topic, None);
        change.require_mod_revision.push((keys.topic(name), revision));
        for p in &added {
            let key = keys.partition(&p.topic, p.partition);
            change.require_absent.push(key.clone());
            change = change.put_json(key, p, None);
        }
        self.store.commit(fence, change).await.map(|_| (topic, added))
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

/// Partitions `range` of `topic`, their replicas from `ring`: the first
/// replica leads with epoch 1 and is the whole ISR until followers catch up.
fn place(ring: &Ring, topic: &TopicRecord, range: std::ops::Range<u32>) -> Vec<PartitionRecord> {
    range
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
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(rf: u32, min_insync: u32) -> TopicRecord {
        TopicRecord {
            name: "t".into(),
            partitions: 3,
            replication_factor: rf,
            retention_ms: 0,
            retention_bytes: 0,
            unclean_leader_election: false,
            min_insync_replicas: min_insync,
            id: 7,
            ..TopicRecord::default()
        }
    }

    #[test]
    fn a_change_sets_what_it_names_and_keeps_the_rest() {
        let change = TopicChange { retention_ms: Some(60_000), ..Default::default() };
        let next = change.apply(topic(3, 2)).unwrap();
        assert_eq!(next.retention_ms, 60_000);
        assert_eq!((next.retention_bytes, next.min_insync_replicas, next.unclean_leader_election), (0, 2, false));
        let change = TopicChange {
            retention_bytes: Some(1 << 20),
            unclean_leader_election: Some(true),
            min_insync_replicas: Some(3),
            ..Default::default()
        };
        let next = change.apply(next).unwrap();
        assert_eq!((next.retention_ms, next.retention_bytes, next.min_insync_replicas), (60_000, 1 << 20, 3));
        assert!(next.unclean_leader_election);
    }

    #[test]
    fn zero_goes_back_to_the_default_and_min_insync_stays_within_the_replicas() {
        let back = TopicChange { min_insync_replicas: Some(0), retention_ms: Some(0), ..Default::default() };
        let mut changed = topic(3, 3);
        changed.retention_ms = 5;
        let next = back.apply(changed).unwrap();
        assert_eq!((next.min_insync_replicas, next.retention_ms), (2, 0));
        assert_eq!(back.apply(topic(1, 1)).unwrap().min_insync_replicas, 1);
        let too_many = TopicChange { min_insync_replicas: Some(4), ..Default::default() };
        assert!(matches!(too_many.apply(topic(3, 2)), Err(SentinelError::InvalidArgument(_))));
    }

    #[test]
    fn added_partitions_continue_the_numbering_and_lead_on_their_first_replica() {
        let ring = Ring::new(vec![1, 2, 3]);
        let added = place(&ring, &topic(2, 1), 3..5);
        assert_eq!(added.iter().map(|p| p.partition).collect::<Vec<_>>(), vec![3, 4]);
        for p in &added {
            assert_eq!(p.replicas.len(), 2);
            assert_eq!(p.leader, p.replicas.first().copied());
            assert_eq!((p.isr.clone(), p.leader_epoch), (vec![p.replicas[0]], 1));
        }
        // The same placement a topic created with 5 partitions gets.
        assert_eq!(added, place(&ring, &topic(2, 1), 0..5)[3..].to_vec());
    }

    #[test]
    fn internal_topics_cannot_be_changed() {
        assert!(refuse_internal("__offsets", "settings").is_err());
        assert!(refuse_internal("orders", "settings").is_ok());
    }
}
