//! What only the sentinel leader does: every metadata write.
//!
//! Each method takes the leader's [`Fence`] and commits through
//! [`Store::commit`], so each change lands with its op-log entry in one
//! transaction, or not at all. [`leader_loop`] runs the leader's standing
//! duties.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::config::SentinelConfig;
use crate::error::{Result, SentinelError};
use crate::etcd_metrics::Counted;
use crate::leases::Leases;
use crate::model::{self, BrokerRecord, DecommissionRecord, PartitionRecord, TopicRecord};
use crate::placement::{self, Membership, Step};
use crate::ring::Ring;
use crate::store::{Change, Fence, Store};
use crate::view::ClusterView;

pub mod leader_loop;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

/// Producer ids reserved from etcd at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// A partition leader's request to change the ISR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    /// The requesting broker (it must lead the partition).
    pub broker: u32,
    pub topic: String,
    pub partition: u32,
    /// The epoch it leads at.
    pub leader_epoch: u64,
    /// The new ISR.
    pub isr: Vec<u32>,
}

/// The leader's write path.
pub struct Controller {
    store: Store,
    config: SentinelConfig,
    /// Keep-alive streams of broker sessions.
    leases: Arc<Leases>,
    /// When each broker was last seen, for this leadership term (the
    /// fence's revision).
    membership: std::sync::Mutex<(i64, Membership)>,
    /// Serializes decommissions, whose check reads etcd, not the view.
    decommissions: Mutex<()>,
    /// Producer ids this sentinel reserved and has not handed out yet:
    /// `[next, end)`.
    producer_ids: Mutex<(i64, i64)>,
    /// Brokers in a controlled shutdown: never handed a leadership, and
    /// not waited for (brokers stopping together would wait on each other).
    /// Held by this leader only; one that takes over learns them again from
    /// the brokers' repeated requests.
    /// Keyed by the leadership term (the fence's revision) it was learnt in.
    stopping: std::sync::Mutex<(i64, std::collections::BTreeSet<u32>)>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller writing through `store`.
    pub fn new(store: Store, config: SentinelConfig, leases: Arc<Leases>) -> Controller {
        Controller {
            store,
            config,
            leases,
            membership: std::sync::Mutex::new((0, Membership::default())),
            decommissions: Mutex::new(()),
            producer_ids: Mutex::new((0, 0)),
            stopping: std::sync::Mutex::new((0, std::collections::BTreeSet::new())),
        }
    }

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

    /// Starts a broker session: a lease of `session_timeout` holding
    /// `brokers/{id}`. Returns the session (lease) id.
    pub async fn register_broker(&self, fence: &Fence, broker: BrokerRecord) -> Result<i64> {
        if broker.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(SentinelError::InvalidArgument(format!(
                "broker address {:?} is not host:port",
                broker.address
            )));
        }
        // A broker starting again is no longer stopping.
        self.stopping.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&broker.id);
        // Rounded up: the lease must outlive what the broker believes.
        let ttl = self.config.session_timeout.as_millis().div_ceil(1000).max(1) as i64;
        let mut client = self.store.client();
        let lease = client
            .lease_grant(ttl, None)
            .await
            .counted()
            .map_err(|e| SentinelError::etcd("grant a broker session lease", e))?
            .id();
        let keys = self.store.keys();
        let detail = format!("broker {} at {} session {lease:x}", broker.id, broker.address);
        let change = Change::new("register-broker", detail).put_json(keys.broker(broker.id), &broker, Some(lease));
        if let Err(e) = self.store.commit(fence, change).await {
            let _ = client.lease_revoke(lease).await;
            return Err(e);
        }
        Ok(lease)
    }

    /// Refreshes a broker session; `UnknownBroker` when it has expired.
    pub async fn heartbeat(&self, broker_id: u32, session: i64) -> Result<()> {
        self.leases.keep_alive(session, || SentinelError::UnknownBroker(broker_id)).await
    }

    /// Ends the session of a broker that clients report unreachable, if a
    /// TCP connection to it fails too. Its partitions then fail over.
    /// A broker in a controlled shutdown is not probed: it has handed its
    /// leadership over and stops listening before it deregisters, so
    /// clients with old metadata report it; its own deregistration (or its
    /// session's timeout) ends its session.
    pub async fn probe_broker(&self, fence: &Fence, view: &ClusterView, broker_id: u32) -> Result<bool> {
        let Some(broker) = view.brokers.get(&broker_id) else { return Ok(false) };
        if self.is_stopping(fence, broker_id) {
            tracing::debug!(broker = broker_id, "reported unreachable while stopping; not probed");
            return Ok(false);
        }
        let reachable =
            tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(&broker.address))
                .await
                .is_ok_and(|r| r.is_ok());
        if reachable {
            return Ok(false);
        }
        let detail = format!("broker {broker_id} at {} failed a probe", broker.address);
        self.end_session(fence, broker_id, None, Change::new("broker-unreachable", detail)).await?;
        Ok(true)
    }

    /// Ends broker `id`'s session now: `change` (its op) deletes the
    /// broker's key, and its lease is revoked. With `session`, only that
    /// session is ended (a broker that registered again keeps its new one).
    async fn end_session(&self, fence: &Fence, id: u32, session: Option<i64>, mut change: Change) -> Result<()> {
        let key = self.store.keys().broker(id);
        let mut client = self.store.client();
        let found = client
            .get(key.as_str(), None)
            .await
            .counted()
            .map_err(|e| SentinelError::etcd("read a broker session", e))?
            .kvs()
            .first()
            .map(|kv| (kv.lease(), kv.mod_revision()));
        let lease = found.map(|(lease, _)| lease);
        if session.is_some() && lease != session {
            return Ok(());
        }
        // Only the session read here: a broker that registered again since
        // keeps its new key.
        if let Some((_, revision)) = found {
            change.require_mod_revision.push((key.clone(), revision));
        }
        change.deletes.push((key, false));
        self.store.commit(fence, change).await?;
        if let Some(lease) = lease.filter(|l| *l != 0) {
            let _ = client.lease_revoke(lease).await;
        }
        Ok(())
    }

    /// Broker `id` is stopping: moves the leadership of every partition it
    /// leads to another live in-sync replica (epoch + 1) and takes it out of
    /// every ISR (op `controlled-shutdown`), so that clients switch leaders
    /// before it goes and `acks=all` stops waiting for it. Returns what it
    /// still leads: with another live replica (behind, or the partition
    /// changed since `view`: worth asking again), or without (stranded).
    pub async fn controlled_shutdown(&self, fence: &Fence, view: &ClusterView, id: u32) -> Result<Handover> {
        let stopping = {
            let mut guard = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
            let (term, stopping) = &mut *guard;
            if *term != fence.revision {
                *term = fence.revision;
                stopping.clear();
            }
            stopping.insert(id);
            stopping.clone()
        };
        // Who may take over: live, and not stopping too.
        let able = |b: &u32| view.brokers.contains_key(b) && !stopping.contains(b);
        let mut handover = Handover::default();
        for p in view.partitions.values().filter(|p| p.replicas.contains(&id)) {
            let led = p.leader == Some(id);
            let Some(next) = without(p, id, able) else {
                if led {
                    let others_live = p.replicas.iter().any(able);
                    if others_live { &mut handover.remaining } else { &mut handover.stranded }.push(p.clone());
                }
                continue;
            };
            let detail = format!(
                "{}/{} broker {id} stopping: leader {:?} -> {:?} epoch {}, isr {:?} -> {:?}",
                p.topic, p.partition, p.leader, next.leader, next.leader_epoch, p.isr, next.isr
            );
            // Changed since `view` (another broker's hand-over, an ISR
            // change): ask again, whether or not it leads this one.
            if !self.commit_partition(fence, view, &next, "controlled-shutdown", detail).await? {
                handover.remaining.push(p.clone());
            }
        }
        Ok(handover)
    }

    /// Broker `id` cannot serve its replica of `topic/partition` (damaged or
    /// unable to open): it leaves the ISR and, if it leads, the first live
    /// in-sync replica that is not stopping takes over (op `replica-failed`).
    /// Returns whether the partition changed (false: no other in-sync
    /// replica could take over, or it was already out).
    pub async fn replica_failed(
        &self,
        fence: &Fence,
        view: &ClusterView,
        id: u32,
        topic: &str,
        partition: u32,
        reason: &str,
    ) -> Result<bool> {
        let p = view
            .partitions
            .get(&(topic.to_owned(), partition))
            .ok_or_else(|| SentinelError::UnknownTopic(format!("{topic}/{partition}")))?;
        let able = |b: &u32| view.brokers.contains_key(b) && !self.is_stopping(fence, *b);
        let Some(next) = without(p, id, able) else { return Ok(false) };
        let detail = format!(
            "{topic}/{partition} broker {id} cannot serve it ({reason}): leader {:?} -> {:?} epoch {}, isr {:?} -> {:?}",
            p.leader, next.leader, next.leader_epoch, p.isr, next.isr
        );
        self.commit_partition(fence, view, &next, "replica-failed", detail).await
    }

    /// Whether broker `id` asked for a controlled shutdown in this
    /// leadership term (and has not registered again since).
    fn is_stopping(&self, fence: &Fence, id: u32) -> bool {
        let guard = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        guard.0 == fence.revision && guard.1.contains(&id)
    }

    /// A stopped broker's session ends now instead of at its timeout.
    pub async fn deregister(&self, fence: &Fence, id: u32, session: i64) -> Result<()> {
        self.stopping.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&id);
        let change = Change::new("deregister-broker", format!("broker {id} stopped (session {session:x})"));
        self.end_session(fence, id, Some(session), change).await
    }

    /// Changes a partition's ISR at the request of its leader. Refused
    /// (`Fenced`) unless `broker` still leads the partition at `leader_epoch`;
    /// the ISR must hold the leader and only replicas. Compare-and-swapped on
    /// the partition's revision, with op `alter-isr`.
    /// Returns the new state and the revision it was written at.
    pub async fn alter_isr(
        &self,
        fence: &Fence,
        view: &ClusterView,
        request: IsrChange,
    ) -> Result<(PartitionRecord, i64)> {
        let IsrChange { broker, topic, partition, leader_epoch, isr } = request;
        let topic = topic.as_str();
        let key = (topic.to_owned(), partition);
        let current =
            view.partitions.get(&key).ok_or_else(|| SentinelError::UnknownTopic(format!("{topic}/{partition}")))?;
        if current.leader != Some(broker) || current.leader_epoch != leader_epoch {
            return Err(SentinelError::Fenced(format!(
                "broker {broker} at epoch {leader_epoch} does not lead {topic}/{partition} (leader {:?}, epoch {})",
                current.leader, current.leader_epoch
            )));
        }
        let mut isr_sorted = isr.clone();
        isr_sorted.sort_unstable();
        isr_sorted.dedup();
        if isr_sorted.len() != isr.len() || !isr.contains(&broker) || isr.iter().any(|b| !current.replicas.contains(b))
        {
            return Err(SentinelError::InvalidArgument(format!(
                "ISR {isr:?} must contain the leader {broker}, only replicas {:?}, each once",
                current.replicas
            )));
        }
        // Keep replica order, so the ISR reads the same however it was built.
        let isr: Vec<u32> = current.replicas.iter().copied().filter(|b| isr.contains(b)).collect();
        let revision = view.partition_revisions.get(&key).copied().unwrap_or(0);
        if isr == current.isr {
            return Ok((current.clone(), revision));
        }
        let next = PartitionRecord { isr, ..current.clone() };
        let keys = self.store.keys();
        let partition_key = keys.partition(topic, partition);
        let detail = format!("{topic}/{partition} isr {:?} -> {:?} epoch {leader_epoch}", current.isr, next.isr);
        let mut change = Change::new("alter-isr", detail).put_json(partition_key.clone(), &next, None);
        change.require_mod_revision.push((partition_key, revision));
        let (_, written) = self.store.commit_at(fence, change).await?;
        Ok((next, written))
    }

    /// Gives every partition whose leader is gone a new leader from its
    /// live ISR (or, if the topic allows unclean election, any live replica),
    /// bumping the epoch; marks it offline when there is none. One
    /// transaction per partition, compare-and-swapped on its old state.
    pub async fn reconcile(&self, fence: &Fence, view: &ClusterView) -> Result<usize> {
        let mut changed = 0;
        for p in view.partitions.values() {
            let Some(next) = elect(p, view) else { continue };
            let detail = match next.leader {
                Some(l) => {
                    format!("{}/{} leader {:?} -> {l} epoch {}", p.topic, p.partition, p.leader, next.leader_epoch)
                }
                None => {
                    format!("{}/{} offline (leader {:?} gone, no live in-sync replica)", p.topic, p.partition, p.leader)
                }
            };
            let kind = if next.leader.is_some() { "elect-leader" } else { "partition-offline" };
            changed += usize::from(self.commit_partition(fence, view, &next, kind, detail).await?);
        }
        Ok(changed + self.reassign(fence, view).await?)
    }

    /// Moves replicas towards the ring's placement over the eligible
    /// brokers (see [`placement`]): one step per partition per call.
    async fn reassign(&self, fence: &Fence, view: &ClusterView) -> Result<usize> {
        let eligible = {
            let mut guard = self.membership.lock().unwrap_or_else(|p| p.into_inner());
            let (term, membership) = &mut *guard;
            if *term != fence.revision {
                *term = fence.revision;
                membership.reset();
            }
            let holding = view.partitions.values().flat_map(|p| p.replicas.iter().copied());
            membership.eligible(
                Instant::now(),
                view.brokers.keys().copied(),
                holding,
                &view.decommissioned,
                self.config.replica_reassign_after,
            )
        };
        let ring = Ring::new(eligible.iter().copied());
        let mut moving = view
            .partitions
            .values()
            .filter(|p| view.topics.get(&p.topic).is_some_and(|t| p.replicas.len() > t.replication_factor as usize))
            .count();
        let mut changed = 0;
        for p in view.partitions.values() {
            let Some(topic) = view.topics.get(&p.topic) else { continue };
            let Some(wanted) = placement::wanted(&ring, p, topic.replication_factor as usize) else { continue };
            let may_start = moving < placement::MAX_MOVES_IN_FLIGHT;
            let live = |b: u32| view.brokers.contains_key(&b);
            let Some((next, step)) = placement::next_step(p, &wanted, may_start, live) else { continue };
            let (kind, detail) = match &step {
                Step::Add(added) => {
                    ("move-replicas", format!("{}/{} adding {added:?} to {:?}", p.topic, p.partition, p.replicas))
                }
                Step::Finish(removed) => (
                    "move-replicas-done",
                    format!(
                        "{}/{} replicas {:?} -> {:?} (removed {removed:?}) leader {:?} epoch {}",
                        p.topic, p.partition, p.replicas, next.replicas, next.leader, next.leader_epoch
                    ),
                ),
            };
            if self.commit_partition(fence, view, &next, kind, detail).await? {
                changed += 1;
                if matches!(step, Step::Add(_)) && p.replicas.len() == topic.replication_factor as usize {
                    moving += 1;
                }
            }
        }
        Ok(changed)
    }

    /// Writes `next` over partition `next.topic/next.partition`,
    /// compare-and-swapped on the revision `view` saw. False when the
    /// partition changed since (the next view will tell).
    async fn commit_partition(
        &self,
        fence: &Fence,
        view: &ClusterView,
        next: &PartitionRecord,
        kind: &str,
        detail: String,
    ) -> Result<bool> {
        let key = self.store.keys().partition(&next.topic, next.partition);
        let revision = view.partition_revisions.get(&(next.topic.clone(), next.partition)).copied().unwrap_or(0);
        let mut change = Change::new(kind, detail).put_json(key.clone(), next, None);
        change.require_mod_revision.push((key, revision));
        match self.store.commit(fence, change).await {
            Ok(_) => Ok(true),
            Err(SentinelError::Conflict(reason)) => {
                tracing::debug!(%reason, "partition changed since the view was taken; will look again");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// A producer id never handed out before. Ids are reserved from the
    /// etcd counter `counters/producer-ids` in blocks (one compare-and-swap
    /// per block, with its op); a block's unused ids are never reused, even
    /// if this sentinel loses its leadership.
    pub async fn allocate_producer_id(&self, fence: &Fence) -> Result<i64> {
        let mut block = self.producer_ids.lock().await;
        if block.0 == block.1 {
            let key = self.store.keys().producer_ids_counter();
            let current = self
                .store
                .client()
                .get(key.as_str(), None)
                .await
                .counted()
                .map_err(|e| SentinelError::etcd("read the producer-id counter", e))?;
            let (start, revision) = match current.kvs().first() {
                Some(kv) => {
                    let text = kv.value_str().unwrap_or_default();
                    let start = text.trim().parse::<i64>().map_err(|e| SentinelError::CorruptValue {
                        key: key.clone(),
                        reason: format!("{text:?}: {e}"),
                    })?;
                    (start, Some(kv.mod_revision()))
                }
                // A fresh counter (a new cluster, or an etcd that lost its
                // data) starts at a random block: ids handed out before a
                // loss are never handed out again, so no broker takes a new
                // producer's first batches for retries of an old one's.
                None => (first_producer_id(), None),
            };
            let end = start + PRODUCER_ID_BLOCK;
            let detail = format!("producer ids [{start}, {end})");
            let mut change = Change::new("reserve-producer-ids", detail).put_json(key.clone(), &end, None);
            match revision {
                Some(r) => change.require_mod_revision.push((key, r)),
                None => change.require_absent.push(key),
            }
            // A conflict (another writer in between) fails this request; the
            // client retries.
            self.store.commit(fence, change).await?;
            *block = (start, end);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    /// Marks broker `id` decommissioned (its replicas move to other
    /// brokers and it gets no new ones), or with `undo`, eligible again.
    /// Refused when the remaining brokers could not hold every topic's
    /// replication factor.
    pub async fn decommission(&self, fence: &Fence, view: &ClusterView, id: u32, undo: bool) -> Result<()> {
        let known = view.brokers.contains_key(&id) || view.partitions.values().any(|p| p.replicas.contains(&id));
        if !known && !view.decommissioned.contains(&id) {
            return Err(SentinelError::UnknownBroker(id));
        }
        let key = self.store.keys().decommissioned(id);
        if undo {
            let mut change = Change::new("recommission-broker", format!("broker {id}"));
            change.deletes.push((key, false));
            return self.store.commit(fence, change).await.map(drop);
        }
        // One at a time, against etcd itself: two concurrent requests must
        // not both pass the check on a view that has neither.
        let _serial = self.decommissions.lock().await;
        let prefix = self.store.keys().decommissioned_all();
        let listed = self
            .store
            .client()
            .get(prefix.as_str(), Some(etcd_client::GetOptions::new().with_prefix().with_keys_only()))
            .await
            .counted()
            .map_err(|e| SentinelError::etcd("read the decommissioned brokers", e))?;
        let decommissioned: Vec<u32> = listed
            .kvs()
            .iter()
            .filter_map(|kv| kv.key_str().ok()?.strip_prefix(prefix.as_str())?.parse().ok())
            .collect();
        let remaining = view.brokers.keys().filter(|b| **b != id && !decommissioned.contains(*b)).count();
        if let Some(t) = view.topics.values().find(|t| t.replication_factor as usize > remaining) {
            return Err(SentinelError::NotEnoughBrokers { wanted: t.replication_factor, live: remaining });
        }
        let record = DecommissionRecord { id, at_ms: model::now_ms() };
        let change = Change::new("decommission-broker", format!("broker {id}")).put_json(key, &record, None);
        self.store.commit(fence, change).await.map(drop)
    }
}

/// Where a new producer-id counter starts: a random multiple of the block
/// size below 2^50 (ids stay far from `i64::MAX`; two random starts share a
/// block with odds of about 2^-40).
fn first_producer_id() -> i64 {
    let blocks = (1i64 << 50) / PRODUCER_ID_BLOCK;
    (model::random_id() % blocks as u64) as i64 * PRODUCER_ID_BLOCK
}

/// The new state of `p` if its leadership must change, else `None`.
fn elect(p: &PartitionRecord, view: &ClusterView) -> Option<PartitionRecord> {
    let live = |b: &u32| view.brokers.contains_key(b);
    if p.leader.as_ref().is_some_and(live) {
        return None;
    }
    let unclean = view.topics.get(&p.topic).is_some_and(|t| t.unclean_leader_election);
    let candidate = p
        .replicas
        .iter()
        .find(|b| live(b) && p.isr.contains(b))
        .or_else(|| unclean.then(|| p.replicas.iter().find(|b| live(b))).flatten())
        .copied();
    match (candidate, p.leader) {
        (Some(c), _) => {
            let mut isr: Vec<u32> = p.isr.iter().copied().filter(|b| live(b)).collect();
            if !isr.contains(&c) {
                isr = vec![c];
            }
            Some(PartitionRecord { leader: Some(c), leader_epoch: p.leader_epoch + 1, isr, ..p.clone() })
        }
        // Already offline and still no candidate: nothing to write.
        (None, None) => None,
        // The ISR is kept: it names who holds the data when they return.
        (None, Some(_)) => Some(PartitionRecord { leader: None, leader_epoch: p.leader_epoch + 1, ..p.clone() }),
    }
}

/// What a stopping broker still leads after `Controller::controlled_shutdown`.
#[derive(Debug, Default)]
pub struct Handover {
    /// Another replica is live: it may catch up and take over.
    pub remaining: Vec<PartitionRecord>,
    /// No other replica is live: offline once the broker stops.
    pub stranded: Vec<PartitionRecord>,
}

/// `p` without broker `id` as leader or ISR member, if that leaves it a
/// leader: a new one from the other in-sync replicas that are `able` (live,
/// not stopping) when `id` leads. `None` when there is nothing to change or
/// no one to take over.
fn without(p: &PartitionRecord, id: u32, able: impl Fn(&u32) -> bool) -> Option<PartitionRecord> {
    if p.leader != Some(id) && !p.isr.contains(&id) {
        return None;
    }
    let isr: Vec<u32> = p.isr.iter().copied().filter(|b| *b != id).collect();
    if p.leader != Some(id) {
        return (!isr.is_empty()).then(|| PartitionRecord { isr, ..p.clone() });
    }
    let leader = p.replicas.iter().copied().find(|b| *b != id && able(b) && isr.contains(b))?;
    let isr = isr.into_iter().filter(&able).collect();
    Some(PartitionRecord { leader: Some(leader), leader_epoch: p.leader_epoch + 1, isr, ..p.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(live: &[u32]) -> ClusterView {
        let mut v = ClusterView::default();
        for &id in live {
            v.brokers.insert(
                id,
                BrokerRecord {
                    id,
                    address: format!("127.0.0.1:{}", 1000 + id),
                    http_address: String::new(),
                    rack: String::new(),
                    max_batch_bytes: 0,
                },
            );
        }
        v
    }

    fn partition(leader: Option<u32>, isr: &[u32]) -> PartitionRecord {
        PartitionRecord {
            topic: "t".into(),
            partition: 0,
            replicas: vec![1, 2, 3],
            leader,
            leader_epoch: 4,
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn a_stopping_leader_hands_over_to_a_live_in_sync_replica_and_leaves_the_isr() {
        let v = view(&[1, 2, 3]);
        let live = |b: &u32| v.brokers.contains_key(b);
        let next = without(&partition(Some(1), &[1, 2, 3]), 1, live).unwrap();
        assert_eq!((next.leader, next.leader_epoch, next.isr), (Some(2), 5, vec![2, 3]));
        // A follower only leaves the ISR; the epoch stays.
        let next = without(&partition(Some(2), &[1, 2, 3]), 1, live).unwrap();
        assert_eq!((next.leader, next.leader_epoch, next.isr), (Some(2), 4, vec![2, 3]));
        // Another stopping broker is passed over.
        let not_2 = |b: &u32| live(b) && *b != 2;
        let next = without(&partition(Some(1), &[1, 2, 3]), 1, not_2).unwrap();
        assert_eq!((next.leader, next.isr), (Some(3), vec![3]));
        // Nobody in sync to take over, or nothing to change.
        assert_eq!(without(&partition(Some(1), &[1]), 1, live), None);
        assert_eq!(without(&partition(Some(1), &[1, 2]), 1, |b: &u32| *b == 3), None, "2 is not able");
        assert_eq!(without(&partition(Some(2), &[2, 3]), 1, live), None);
    }

    #[test]
    fn a_live_leader_is_left_alone() {
        assert_eq!(elect(&partition(Some(1), &[1, 2]), &view(&[1, 2, 3])), None);
    }

    #[test]
    fn a_dead_leader_is_replaced_by_the_next_live_isr_member_with_a_new_epoch() {
        let next = elect(&partition(Some(1), &[1, 3]), &view(&[2, 3])).unwrap();
        assert_eq!((next.leader, next.leader_epoch, next.isr), (Some(3), 5, vec![3]));
    }

    #[test]
    fn without_a_live_isr_member_the_partition_goes_offline_and_keeps_its_isr() {
        let next = elect(&partition(Some(1), &[1]), &view(&[2, 3])).unwrap();
        assert_eq!((next.leader, next.leader_epoch, next.isr.clone()), (None, 5, vec![1]));
        // And stays offline without further writes until an ISR member returns.
        assert_eq!(elect(&next, &view(&[2, 3])), None);
        let back = elect(&next, &view(&[1, 2])).unwrap();
        assert_eq!((back.leader, back.leader_epoch), (Some(1), 6));
    }

    #[test]
    fn unclean_election_takes_any_live_replica_only_when_the_topic_allows_it() {
        let mut v = view(&[2]);
        v.topics.insert(
            "t".into(),
            TopicRecord {
                id: 0,
                name: "t".into(),
                partitions: 1,
                replication_factor: 3,
                retention_ms: 0,
                retention_bytes: 0,
                unclean_leader_election: true,
                min_insync_replicas: 1,
            },
        );
        let next = elect(&partition(Some(1), &[1]), &v).unwrap();
        assert_eq!((next.leader, next.isr), (Some(2), vec![2]));
    }
}
