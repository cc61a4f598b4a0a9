//! The partitions this broker holds: their logs, their state as the
//! sentinels last described it, and their high watermark.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use goulette_proto::v1 as pb;
use goulette_storage::{FlushPolicy, LogConfig, PartitionLog, identity};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::failures::{Assignment, Failures};
use crate::kept::{Kept, other_incarnation};

/// One partition replica on this broker.
#[derive(Debug)]
pub struct Replica {
    pub topic: String,
    pub partition: u32,
    pub log: Arc<PartitionLog>,
    state: RwLock<pb::PartitionState>,
    /// Offsets below this are visible to consumers: durable under the flush
    /// policy (and, with replication, on every in-sync replica).
    high_watermark: watch::Sender<u64>,
    /// The log end, for follower fetch streams waiting for new data.
    log_end: watch::Sender<u64>,
    broker_id: u32,
    /// The topic incarnation this replica's data belongs to.
    incarnation: u64,
    /// As leader: what each follower has reported.
    followers: Mutex<HashMap<u32, FollowerProgress>>,
    /// As leader: when this term began and the log end then (a follower
    /// rejoins the ISR only once past it).
    term: Mutex<Option<Term>>,
    /// acks=all needs at least this many in-sync replicas.
    min_insync: std::sync::atomic::AtomicUsize,
    /// The topic's settings as last assigned (to open the log again after
    /// a failure).
    topic_config: RwLock<Option<pb::TopicConfig>>,
    /// Replicas whose addition to the ISR was requested and not yet settled:
    /// the high watermark counts them already, so that nothing is
    /// acknowledged without them if etcd applied the change.
    pending_isr: Mutex<Vec<u32>>,
    pub(crate) metrics: Arc<crate::metrics::BrokerMetrics>,
    /// This topic's traffic counters.
    pub(crate) counters: crate::metrics::TopicCounters,
}

/// A follower's progress as its leader sees it.
#[derive(Debug, Clone)]
pub struct FollowerProgress {
    /// Its log end after its last append.
    pub log_end: u64,
    /// When its log end last reached the leader's.
    pub caught_up_at: Instant,
    /// Ids of its open fetch streams: a follower with none is not fetching.
    pub streams: std::collections::HashSet<u64>,
}

/// The current leadership term of this broker for a partition.
#[derive(Debug, Clone, Copy)]
pub struct Term {
    pub epoch: u64,
    pub started: Instant,
    pub start_offset: u64,
}

impl Replica {
    /// The state the sentinels last sent.
    pub fn state(&self) -> pb::PartitionState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        self.state.read().unwrap_or_else(|p| p.into_inner()).leader == Some(self.broker_id)
    }

    /// The current high watermark.
    pub fn high_watermark(&self) -> u64 {
        *self.high_watermark.borrow()
    }

    /// Follows the high watermark.
    pub fn watch_high_watermark(&self) -> watch::Receiver<u64> {
        self.high_watermark.subscribe()
    }

    /// Wakes everything waiting on the high watermark or the log end
    /// (fetch streams, acks=all waits), so that they re-check leadership
    /// after a state change or a removal.
    fn notify(&self) {
        self.high_watermark.send_modify(|_| {});
        self.log_end.send_modify(|_| {});
    }

    /// Follows the log end (follower fetch streams wait on it).
    pub fn watch_log_end(&self) -> watch::Receiver<u64> {
        self.log_end.subscribe()
    }

    /// Tells followers' fetch streams that the log grew.
    pub fn appended(&self) {
        let end = self.log.log_end_offset();
        self.log_end.send_if_modified(|e| std::mem::replace(e, end) != end);
    }

    /// What this broker can vouch for locally: the durable offset under
    /// `always`, the log end otherwise.
    fn locally_visible(&self) -> u64 {
        match self.log.config().flush {
            FlushPolicy::Always => self.log.durable_offset(),
            _ => self.log.log_end_offset(),
        }
    }

    fn raise_high_watermark(&self, to: u64) {
        self.high_watermark.send_if_modified(|hw| {
            let moved = to > *hw;
            *hw = (*hw).max(to);
            moved
        });
    }

    /// As leader: moves the high watermark up to the lowest log end over the
    /// ISR (this broker counting what it can vouch for). A member that has
    /// not reported yet holds it where it is. It never moves down.
    pub fn advance_high_watermark(&self) {
        let state = self.state();
        if state.leader != Some(self.broker_id) {
            return;
        }
        let mut visible = self.locally_visible();
        let pending = self.pending_isr.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        for member in state.isr.iter().chain(&pending).filter(|m| **m != self.broker_id) {
            visible = visible.min(followers.get(member).map_or(0, |f| f.log_end));
        }
        drop(followers);
        self.raise_high_watermark(visible);
    }

    /// As follower: the high watermark is the leader's, capped by what this
    /// replica holds.
    pub fn follow_high_watermark(&self, leader_high_watermark: u64) {
        self.raise_high_watermark(leader_high_watermark.min(self.locally_visible()));
    }

    /// As leader: a follower reports its log end; `caught_up` when it
    /// reached the log end this leader had when it served the data.
    pub fn record_follower(&self, follower: u32, log_end: u64, caught_up: bool) {
        {
            let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
            let entry = followers.entry(follower).or_insert_with(|| FollowerProgress {
                log_end,
                caught_up_at: Instant::now(),
                streams: Default::default(),
            });
            entry.log_end = log_end;
            if caught_up {
                entry.caught_up_at = Instant::now();
            }
        }
        self.advance_high_watermark();
    }

    /// As leader: replicas about to be proposed for the ISR (see `pending_isr`).
    pub fn set_pending_isr(&self, additions: Vec<u32>) {
        *self.pending_isr.lock().unwrap_or_else(|p| p.into_inner()) = additions;
    }

    /// As leader: every follower's reported progress. A follower that is
    /// fetching and holds the whole log counts as caught up now (an idle
    /// partition sends it nothing to report about).
    pub fn followers(&self) -> HashMap<u32, FollowerProgress> {
        let end = self.log.log_end_offset();
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        for f in followers.values_mut().filter(|f| !f.streams.is_empty() && f.log_end >= end) {
            f.caught_up_at = Instant::now();
        }
        followers.clone()
    }

    /// As leader: a follower opened (`opened`) or closed fetch stream `stream`.
    pub fn follower_stream(&self, follower: u32, stream: u64, opened: bool) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = followers.get_mut(&follower) {
            if opened {
                f.streams.insert(stream);
            } else {
                f.streams.remove(&stream);
            }
        }
    }

    /// As leader: the current term, if this broker leads.
    pub fn term(&self) -> Option<Term> {
        *self.term.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs the topic's settings as assigned.
    fn set_topic(&self, topic: Option<&pb::TopicConfig>) {
        *self.topic_config.write().unwrap_or_else(|p| p.into_inner()) = topic.cloned();
        // The topic's replication factor, not the replica list's length:
        // a partition being moved has extra replicas for a while.
        let rf = topic.map_or(self.state().replicas.len(), |t| t.replication_factor as usize).max(1);
        let n = match topic.map_or(0, |t| t.min_insync_replicas) {
            0 if rf >= 3 => 2,
            0 => 1,
            n => n as usize,
        };
        self.min_insync.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// acks=all needs this many in-sync replicas.
    pub fn min_insync(&self) -> usize {
        self.min_insync.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Installs a new state from the sentinels (or an ISR change), unless it
    /// is older than the current one, and starts a new term when this
    /// broker just became leader.
    pub fn set_state(&self, state: pb::PartitionState) {
        {
            let mut current = self.state.write().unwrap_or_else(|p| p.into_inner());
            // A lagging sentinel (or a stale reply) must not hand back an
            // older state: epochs first, then the etcd revision within one.
            if (state.leader_epoch, state.revision) < (current.leader_epoch, current.revision) {
                return;
            }
            // A newer state settles any ISR proposal in flight.
            self.pending_isr.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let leading = state.leader == Some(self.broker_id);
            let mut term = self.term.lock().unwrap_or_else(|p| p.into_inner());
            if term.is_some() != leading {
                self.metrics.leader_changes.inc();
            }
            match (*term, leading) {
                (Some(t), true) if t.epoch == state.leader_epoch => {}
                (_, true) => {
                    *term = Some(Term {
                        epoch: state.leader_epoch,
                        started: Instant::now(),
                        start_offset: self.log.log_end_offset(),
                    });
                    self.followers.lock().unwrap_or_else(|p| p.into_inner()).clear();
                }
                (_, false) => *term = None,
            }
            *current = state;
        }
        self.advance_high_watermark();
        self.notify();
    }
}

/// Every replica on this broker, and the addresses of the other brokers.
#[derive(Debug)]
pub struct Partitions {
    broker_id: u32,
    data_dir: PathBuf,
    defaults: LogConfig,
    replicas: RwLock<HashMap<(String, u32), Arc<Replica>>>,
    brokers: RwLock<HashMap<u32, String>>,
    /// Replication tasks of the partitions this broker follows.
    followers: Mutex<HashMap<(String, u32), CancellationToken>>,
    /// The last time a sentinel confirmed this broker's session, and the
    /// session timeout: past it, the sentinels may have handed its
    /// partitions to others.
    contact: Mutex<Option<(Instant, Duration)>>,
    shutdown: CancellationToken,
    /// Itself, for the replication tasks it spawns.
    me: std::sync::Weak<Partitions>,
    metrics: Arc<crate::metrics::BrokerMetrics>,
    /// Set once the first assignment snapshot is applied (its logs opened
    /// and recovered): until then the broker is not ready.
    assigned: std::sync::atomic::AtomicBool,
    /// The current sentinel session (etcd lease id; 0 before registering).
    session: std::sync::atomic::AtomicI64,
    /// Stopping: no replica is followed any more (see `stop_following`).
    draining: std::sync::atomic::AtomicBool,
    /// Partition directories whose data is kept but not served (see `kept`).
    kept: Kept,
    /// Replicas that cannot be served (see `failures`).
    failures: Failures,
    /// Held while replicas are opened: by `apply` (assignment updates come
    /// one at a time) and by `retry_failed` (from the failure task), so that
    /// a replica is never opened twice at once.
    opening: tokio::sync::Mutex<()>,
}

impl Partitions {
    /// An empty registry storing logs under `data_dir`; its replication
    /// tasks end with `shutdown`.
    pub fn new(broker_id: u32, data_dir: PathBuf, defaults: LogConfig, shutdown: CancellationToken) -> Arc<Partitions> {
        Arc::new_cyclic(|me| Partitions {
            broker_id,
            data_dir,
            defaults,
            replicas: RwLock::new(HashMap::new()),
            brokers: RwLock::new(HashMap::new()),
            followers: Mutex::new(HashMap::new()),
            contact: Mutex::new(None),
            shutdown,
            me: me.clone(),
            metrics: Arc::new(crate::metrics::BrokerMetrics::new()),
            assigned: std::sync::atomic::AtomicBool::new(false),
            session: std::sync::atomic::AtomicI64::new(0),
            draining: std::sync::atomic::AtomicBool::new(false),
            kept: Kept::default(),
            failures: Failures::default(),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    /// Records the sentinel session this broker holds.
    pub fn set_session(&self, id: i64) {
        self.session.store(id, std::sync::atomic::Ordering::Relaxed);
    }

    /// The sentinel session this broker holds (0 before registering).
    pub fn session(&self) -> i64 {
        self.session.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops every replication task and starts none again: a stopping
    /// broker's leaders must not count it back into their ISRs (a follower
    /// with no open fetch stream never rejoins).
    pub fn stop_following(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Release);
        for (_, task) in self.followers.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            task.cancel();
        }
    }

    /// The partitions this broker leads, as the sentinels last said.
    pub fn led(&self) -> Vec<Arc<Replica>> {
        self.all().into_iter().filter(|r| r.is_leader()).collect()
    }

    /// The replicas this broker cannot serve.
    pub fn failures(&self) -> &Failures {
        &self.failures
    }

    /// The error for a request about a partition this broker does not serve:
    /// for a failed replica (its leadership is moving) `CORRUPT_STORAGE`
    /// when its data is damaged, else `STORAGE_UNAVAILABLE`; otherwise
    /// `NOT_LEADER` with the leader's address when known.
    pub fn unavailable(&self, topic: &str, partition: u32) -> pb::Error {
        if let Some((reason, corrupt)) = self.failures.reason(topic, partition) {
            let message = format!(
                "this broker's replica of {topic}/{partition} cannot be served ({reason}); its leadership moves to another replica"
            );
            let code = if corrupt { pb::ErrorCode::CorruptStorage } else { pb::ErrorCode::StorageUnavailable };
            return pb::Error::new(code, message);
        }
        let leader = self.get(topic, partition).and_then(|r| r.state().leader).and_then(|l| self.broker_address(l));
        crate::error::not_leader(topic, partition, leader)
    }

    /// Stops serving an open replica whose data failed a check (or whose
    /// log failed otherwise): see `failures`.
    pub async fn fail(&self, replica: &Replica, reason: String, corrupt: bool) {
        // Only the replica being served: one already replaced (repaired,
        // or reopened) is not failed again for what its predecessor found.
        if !self.get(&replica.topic, replica.partition).is_some_and(|r| std::ptr::eq(&*r, replica)) {
            return;
        }
        let topic_config = replica.topic_config.read().unwrap_or_else(|p| p.into_inner()).clone();
        let assignment = Assignment { state: replica.state(), topic: topic_config, incarnation: replica.incarnation };
        self.failures.record(assignment, reason, corrupt);
        self.close(&replica.topic, replica.partition).await;
    }

    /// Opens failed replicas again where that is safe (see `failures`).
    pub async fn retry_failed(&self) {
        let _opening = self.opening.lock().await;
        self.retry_failed_locked().await;
    }

    /// Fails the open replicas whose log stopped accepting work (a write,
    /// fsync or seal failed).
    pub async fn fail_broken_logs(&self) {
        for replica in self.all() {
            if let Some(reason) = replica.log.failure() {
                self.fail(&replica, reason, false).await;
            }
        }
    }

    async fn retry_failed_locked(&self) {
        if self.failures.is_empty() {
            return;
        }
        let room = goulette_storage::free_bytes(&self.data_dir).is_none_or(|free| free >= MIN_FREE_BYTES);
        for (a, repair) in self.failures.to_retry(self.broker_id, room) {
            let key = (a.state.topic.clone(), a.state.partition);
            if self.get(&key.0, key.1).is_none() {
                self.open(a.state, a.topic.as_ref(), a.incarnation, key, repair).await;
            }
        }
    }

    /// This broker's metrics.
    pub fn metrics(&self) -> &Arc<crate::metrics::BrokerMetrics> {
        &self.metrics
    }

    /// `Ok` once registered (a sentinel confirmed the session recently) and
    /// the first assignment snapshot is applied, its logs recovered.
    pub fn ready(&self) -> Result<(), String> {
        if self.draining.load(std::sync::atomic::Ordering::Acquire) {
            return Err("stopping: handing partitions over".into());
        }
        if !self.assigned.load(std::sync::atomic::Ordering::Acquire) {
            return Err("no assignment snapshot applied yet (registering, or recovering partition logs)".into());
        }
        if !self.in_contact() {
            return Err("no sentinel has confirmed this broker's session for a session timeout".into());
        }
        if !self.failures.is_empty() {
            let list: Vec<String> =
                self.failures.list().into_iter().map(|((t, p), reason)| format!("{t}/{p}: {reason}")).collect();
            return Err(format!("replicas that cannot be served: {}", list.join("; ")));
        }
        Ok(())
    }

    /// Brings the partition gauges up to date (before a scrape).
    pub fn update_gauges(&self) {
        let replicas = self.all();
        let (mut led, mut under, mut below_min) = (0, 0, 0);
        let mut high_watermarks = Vec::new();
        for r in &replicas {
            let state = r.state();
            if state.leader == Some(self.broker_id) {
                led += 1;
                high_watermarks.push((r.topic.clone(), r.partition, r.high_watermark()));
                under += usize::from(state.isr.len() < state.replicas.len());
                below_min += usize::from(state.isr.len() < r.min_insync());
            }
        }
        let (kept, failed) = (self.kept.len(), self.failures.len());
        self.metrics.set_partition_gauges(replicas.len(), led, under, below_min, kept, failed);
        self.metrics.set_high_watermarks(high_watermarks);
    }

    /// This broker's id.
    pub fn broker_id(&self) -> u32 {
        self.broker_id
    }

    /// A sentinel confirmed the session (registration or heartbeat) with a
    /// request sent at `sent`.
    pub fn sentinel_contact(&self, sent: Instant, session_timeout: Duration) {
        *self.contact.lock().unwrap_or_else(|p| p.into_inner()) = Some((sent, session_timeout));
    }

    /// False once no sentinel has confirmed the session for a session
    /// timeout: the sentinels may have elected other leaders, so this broker
    /// must not acknowledge `acks=all` writes as leader.
    pub fn in_contact(&self) -> bool {
        self.contact.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|(at, timeout)| at.elapsed() < timeout)
    }

    /// The replica of `topic/partition`, if this broker holds it.
    pub fn get(&self, topic: &str, partition: u32) -> Option<Arc<Replica>> {
        self.replicas.read().unwrap_or_else(|p| p.into_inner()).get(&(topic.to_owned(), partition)).cloned()
    }

    /// Every replica held.
    pub fn all(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// The address of broker `id`, if known.
    pub fn broker_address(&self, id: u32) -> Option<String> {
        self.brokers.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    fn dir_of(&self, topic: &str, partition: u32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// `<data>/<topic>-<partition>.incarnation`: where brokers before topic
    /// ids recorded a directory's incarnation (now `topic.id` inside it).
    fn legacy_marker_of(&self, topic: &str, partition: u32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}.incarnation"))
    }

    /// Every partition directory under the data directory with the topic
    /// incarnation its data belongs to (open or not): what the assignment
    /// stream reports, so that the sentinels answer for each. Moves legacy
    /// markers into their directories on the way.
    pub fn held(&self) -> Vec<pb::HeldReplica> {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else { return Vec::new() };
        let mut held = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some((topic, partition)) = name.rsplit_once('-') else { continue };
            let Ok(partition) = partition.parse::<u32>() else { continue };
            if goulette_proto::validate_topic_name(topic).is_err() || !entry.path().is_dir() {
                continue;
            }
            match self.identity(topic, partition) {
                Ok(Some(incarnation)) => {
                    held.push(pb::HeldReplica { topic: topic.to_owned(), partition, topic_incarnation: incarnation })
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(dir = name, error = %e, "cannot tell which topic incarnation a partition directory holds")
                }
            }
        }
        held
    }

    /// The incarnation `<topic>-<partition>` holds data of (`None`: no
    /// data), moving a legacy marker into the directory first.
    fn identity(&self, topic: &str, partition: u32) -> anyhow::Result<Option<u64>> {
        let dir = self.dir_of(topic, partition);
        let legacy = self.legacy_marker_of(topic, partition);
        if let Ok(text) = std::fs::read_to_string(&legacy) {
            if dir.exists() && identity::read(&dir)?.is_none() {
                let incarnation: u64 = text.trim().parse()?;
                identity::write(&dir, incarnation)?;
            }
            std::fs::remove_file(&legacy)?;
        }
        Ok(identity::read(&dir)?)
    }

    /// The replicas held but not served: failed ones, and ones whose data
    /// is kept without metadata.
    pub fn problems(&self) -> Vec<pb::ReplicaProblem> {
        let problem = |state: &str| {
            let state = state.to_owned();
            move |((topic, partition), reason): ((String, u32), String)| pb::ReplicaProblem {
                topic,
                partition,
                state: state.clone(),
                reason,
            }
        };
        self.failures
            .list()
            .into_iter()
            .map(problem("failed"))
            .chain(self.kept.list().into_iter().map(problem("kept")))
            .collect()
    }

    fn log_config(&self, topic: Option<&pb::TopicConfig>) -> LogConfig {
        let mut config = self.defaults.clone();
        if let Some(t) = topic {
            if t.retention_ms > 0 {
                config.retention_age = Some(Duration::from_millis(t.retention_ms));
            }
            if t.retention_bytes > 0 {
                config.retention_bytes = Some(t.retention_bytes);
            }
        }
        config
    }

    /// Applies an update from the sentinels: stops serving the removed
    /// replicas (deleting data only on evidence about its incarnation),
    /// opens (recovering) the logs of new assignments and updates states.
    /// A log that fails to open is skipped and logged: the partition stays
    /// unavailable on this broker.
    pub async fn apply(&self, update: pb::AssignmentUpdate) {
        let _opening = self.opening.lock().await;
        {
            let mut brokers = self.brokers.write().unwrap_or_else(|p| p.into_inner());
            brokers.clear();
            brokers.extend(update.brokers.iter().filter(|b| !b.address.is_empty()).map(|b| (b.id, b.address.clone())));
        }
        // Removals first: a topic deleted and created again comes as the old
        // incarnation's removal and the new one's assignment.
        for removal in &update.removals {
            self.remove(removal).await;
        }
        let mut keep = Vec::new();
        for assignment in update.assignments {
            let Some(state) = assignment.state else { continue };
            let key = (state.topic.clone(), state.partition);
            keep.push(key.clone());
            let incarnation = assignment.topic_incarnation;
            match self.get(&state.topic, state.partition) {
                Some(replica) if replica.incarnation == incarnation => {
                    replica.set_topic(assignment.topic.as_ref());
                    replica.set_state(state);
                    self.follow(&replica);
                }
                Some(replica) => {
                    // Another incarnation, and no evidence came that ours may go.
                    self.close(&state.topic, state.partition).await;
                    self.kept.raise(&state.topic, state.partition, other_incarnation(incarnation, replica.incarnation));
                }
                None => {
                    let failed = Assignment { state, topic: assignment.topic, incarnation };
                    // A failed replica is opened again by `retry_failed` only.
                    if !self.failures.reassigned(&failed) {
                        self.open(failed.state, failed.topic.as_ref(), incarnation, key, false).await;
                    }
                }
            }
        }
        // A snapshot that omits an open replica closes it but keeps its
        // data (the sentinel also sends a removal for each such replica).
        if update.snapshot {
            let stale: Vec<(String, u32)> = {
                let replicas = self.replicas.read().unwrap_or_else(|p| p.into_inner());
                replicas.keys().filter(|k| !keep.contains(k)).cloned().collect()
            };
            for (topic, partition) in stale {
                self.close(&topic, partition).await;
                self.kept.raise(&topic, partition, "missing from the assignment snapshot".into());
            }
            self.assigned.store(true, std::sync::atomic::Ordering::Release);
        }
        self.retry_failed_locked().await;
    }

    /// Starts (or stops) replicating `replica` from its leader, as its state says.
    fn follow(&self, replica: &Arc<Replica>) {
        let key = (replica.topic.clone(), replica.partition);
        let mut tasks = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        let following = replica.state().leader.is_some_and(|l| l != self.broker_id)
            && !self.draining.load(std::sync::atomic::Ordering::Acquire);
        match (following, tasks.get(&key)) {
            (true, Some(running)) if !running.is_cancelled() => {}
            (true, _) => {
                let token = self.shutdown.child_token();
                tasks.insert(key, token.clone());
                if let Some(me) = self.me.upgrade() {
                    tokio::spawn(crate::replication::follow(me, replica.clone(), token));
                }
            }
            (false, Some(running)) => {
                running.cancel();
                tasks.remove(&key);
            }
            (false, None) => {}
        }
    }

    /// Opens (recovering) a newly assigned replica. A directory holding
    /// another incarnation's data is left alone and not served. With
    /// `repair`, a damaged log is cut before its first bad batch (only for
    /// a replica that neither leads nor is in the ISR: see `failures`). A
    /// log that fails to open is a failed replica.
    async fn open(
        &self,
        state: pb::PartitionState,
        topic: Option<&pb::TopicConfig>,
        incarnation: u64,
        key: (String, u32),
        repair: bool,
    ) {
        let dir = self.dir_of(&state.topic, state.partition);
        let recorded = match self.identity(&state.topic, state.partition) {
            Ok(recorded) => recorded,
            Err(e) => {
                self.kept.raise(&state.topic, state.partition, format!("its topic id cannot be read: {e:#}"));
                return;
            }
        };
        if let Some(recorded) = recorded.filter(|r| *r != incarnation) {
            self.kept.raise(&state.topic, state.partition, other_incarnation(incarnation, recorded));
            return;
        }
        let config = self.log_config(topic);
        let opened = tokio::task::spawn_blocking(move || -> anyhow::Result<PartitionLog> {
            if recorded.is_none() {
                identity::write(&dir, incarnation)?;
            }
            if !repair {
                return Ok(PartitionLog::open(dir, config)?);
            }
            let (log, cuts) = goulette_storage::repair::open_repairing(&dir, config)?;
            for cut in cuts {
                tracing::warn!(dir = %dir.display(), file = cut.file, position = cut.position, reason = cut.reason,
                    "repaired a damaged replica: cut before its first bad batch; the rest comes from the leader");
            }
            Ok(log)
        })
        .await;
        match opened {
            Ok(Ok(log)) => {
                self.kept.clear(&key.0, key.1);
                self.failures.clear(&key.0, key.1);
                let end = log.log_end_offset();
                tracing::info!(topic = %state.topic, partition = state.partition, log_end = end, leader = ?state.leader, "opened partition");
                // Recovery fsyncs the WAL, so a single replica's log is all
                // committed. With replicas, nothing is known to be on the
                // others yet: the high watermark starts at the log start and
                // is raised by the leader (or, as follower, from it).
                let start = if state.replicas.len() <= 1 { end } else { log.log_start_offset() };
                let replica = Arc::new(Replica {
                    topic: state.topic.clone(),
                    partition: state.partition,
                    log: Arc::new(log),
                    state: RwLock::new(pb::PartitionState { leader_epoch: 0, revision: 0, ..state.clone() }),
                    high_watermark: watch::Sender::new(start),
                    log_end: watch::Sender::new(end),
                    broker_id: self.broker_id,
                    incarnation,
                    followers: Mutex::new(HashMap::new()),
                    term: Mutex::new(None),
                    min_insync: std::sync::atomic::AtomicUsize::new(1),
                    topic_config: RwLock::new(None),
                    pending_isr: Mutex::new(Vec::new()),
                    metrics: self.metrics.clone(),
                    counters: self.metrics.topic(&state.topic),
                });
                replica.set_topic(topic);
                replica.set_state(state);
                self.replicas.write().unwrap_or_else(|p| p.into_inner()).insert(key, replica.clone());
                self.follow(&replica);
            }
            Ok(Err(e)) => {
                let corrupt = matches!(e.downcast_ref(), Some(goulette_storage::StorageError::Corruption { .. }));
                let reason = format!("cannot open its log: {e:#}");
                self.failures.record(Assignment { state, topic: topic.cloned(), incarnation }, reason, corrupt);
            }
            Err(e) => tracing::error!(error = %e, "partition open task failed"),
        }
    }

    /// Closes the open replica of `topic/partition`, if any (its data stays).
    async fn close(&self, topic: &str, partition: u32) {
        let key = (topic.to_owned(), partition);
        let Some(replica) = self.replicas.write().unwrap_or_else(|p| p.into_inner()).remove(&key) else { return };
        if let Some(task) = self.followers.lock().unwrap_or_else(|p| p.into_inner()).remove(&key) {
            task.cancel();
        }
        replica.notify();
        let closed = tokio::task::spawn_blocking(move || replica.log.close()).await;
        if let Ok(Err(e)) = closed {
            tracing::warn!(topic, partition, error = %e, "closing partition log failed");
        }
    }

    /// Stops serving a removed replica. Its data is deleted only when the
    /// removal is evidence (a recorded deletion or a completed move) about
    /// the very incarnation the directory holds; otherwise it is kept, and
    /// the alarm raised.
    async fn remove(&self, removal: &pb::Removal) {
        let (topic, partition) = (removal.topic.as_str(), removal.partition);
        self.close(topic, partition).await;
        self.failures.clear(topic, partition);
        let reason = pb::RemovalReason::try_from(removal.reason).unwrap_or(pb::RemovalReason::Unknown);
        let recorded = match self.identity(topic, partition) {
            Ok(None) => {
                // Nothing on disk (deleted already): nothing to keep.
                self.kept.clear(topic, partition);
                return;
            }
            Ok(Some(recorded)) => recorded,
            Err(e) => {
                self.kept.raise(topic, partition, format!("its topic id cannot be read: {e:#}"));
                return;
            }
        };
        let evidence = match reason {
            pb::RemovalReason::Deleted => "the topic incarnation was deleted",
            pb::RemovalReason::Moved => "the partition moved to other brokers",
            pb::RemovalReason::Unknown => {
                self.kept.raise(topic, partition, "the metadata no longer knows this replica".into());
                return;
            }
        };
        if recorded != removal.topic_incarnation {
            let reason = format!(
                "{evidence} for topic id {:016x}, but the directory holds topic id {recorded:016x}",
                removal.topic_incarnation
            );
            self.kept.raise(topic, partition, reason);
            return;
        }
        let dir = self.dir_of(topic, partition);
        match tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await {
            Ok(Ok(())) => {
                self.kept.clear(topic, partition);
                tracing::info!(
                    topic,
                    partition,
                    topic_id = format!("{recorded:016x}"),
                    evidence,
                    "replica data deleted"
                );
            }
            Ok(Err(e)) => tracing::warn!(topic, partition, error = %e, "deleting replica data failed"),
            Err(e) => tracing::warn!(error = %e, "replica removal task failed"),
        }
    }

    /// Periodic log housekeeping (see `PartitionLog::maintain`), then moves
    /// high watermarks (an interval flush may have made more data durable).
    pub fn maintain(&self) {
        // Retention's clock: wall-clock steps forward are ignored (see `clock`).
        let now = goulette_storage::clock::retention_now_ms();
        for replica in self.all() {
            // A failed log is failed as a replica by `failures` (and logged
            // there once), not once per maintenance round.
            if replica.log.failure().is_some() {
                continue;
            }
            if let Err(e) = replica.log.maintain(now, Duration::from_secs(60)) {
                tracing::warn!(topic = %replica.topic, partition = replica.partition, error = %e, "log maintenance failed");
            }
            replica.advance_high_watermark();
        }
    }

    /// Flushes and closes every log (graceful shutdown).
    pub fn close_all(&self) {
        for replica in self.all() {
            if let Err(e) = replica.log.close() {
                tracing::warn!(topic = %replica.topic, partition = replica.partition, error = %e, "closing log failed");
            }
        }
    }
}

/// A replica that failed for lack of space is opened again only once its
/// data directory has this much free, so that it does not fail again at
/// once (and log it) every second while the disk stays full.
const MIN_FREE_BYTES: u64 = 8 << 20;
