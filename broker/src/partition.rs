//! The registry of the replicas this broker holds: it applies the
//! sentinels' assignment updates (opening, updating, closing and removing
//! replicas, deleting data only on evidence) and says what changed; it
//! answers which replica serves a request, and whether the broker is ready.
//!
//! Its parts live beside it: one replica in `replica`, the disk layout in
//! `layout`, the address book in `peers`, follower tasks in `supervisor`,
//! the session with the sentinels in `session`, replicas that cannot be
//! served in `failures` and `kept`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use goulette_proto::v1 as pb;
use goulette_storage::LogConfig;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use crate::changes::Changes;
use crate::failures::{Assignment, Failures};
use crate::kept::{Kept, other_incarnation};
use crate::layout::DataDir;
use crate::peers::Peers;
pub use crate::replica::Replica;
use crate::session::Session;
use crate::supervisor::Supervisor;

/// Every replica on this broker: the registry that assignment updates change.
#[derive(Debug)]
pub struct Partitions {
    broker_id: u32,
    data_dir: DataDir,
    defaults: LogConfig,
    replicas: RwLock<HashMap<(String, u32), Arc<Replica>>>,
    /// Where the other brokers are.
    peers: Arc<Peers>,
    /// The follower tasks of the partitions this broker follows.
    supervisor: Supervisor,
    /// The session with the sentinels (contact, first snapshot applied).
    session: Session,
    metrics: Arc<crate::metrics::BrokerMetrics>,
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
        let peers = Arc::new(Peers::default());
        Arc::new(Partitions {
            broker_id,
            data_dir: DataDir::new(data_dir),
            defaults,
            replicas: RwLock::new(HashMap::new()),
            supervisor: Supervisor::new(peers.clone(), shutdown),
            peers,
            session: Session::default(),
            metrics: Arc::new(crate::metrics::BrokerMetrics::new()),
            kept: Kept::default(),
            failures: Failures::default(),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    /// Records the sentinel session this broker holds.
    pub fn set_session(&self, id: i64) {
        self.session.set_id(id);
    }

    /// The sentinel session this broker holds (0 before registering).
    pub fn session(&self) -> i64 {
        self.session.id()
    }

    /// Stops every replication task and starts none again: a stopping
    /// broker's leaders must not count it back into their ISRs (a follower
    /// with no open fetch stream never rejoins).
    pub fn stop_following(&self) {
        self.supervisor.stop_all();
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
        let mut changes = Changes::default();
        self.retry_failed_locked(&mut changes).await;
        if !changes.is_empty() {
            tracing::info!(?changes, "retried failed replicas");
        }
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

    async fn retry_failed_locked(&self, changes: &mut Changes) {
        if self.failures.is_empty() {
            return;
        }
        let room = goulette_storage::free_bytes(self.data_dir.root()).is_none_or(|free| free >= MIN_FREE_BYTES);
        for (a, repair) in self.failures.to_retry(self.broker_id, room) {
            let key = (a.state.topic.clone(), a.state.partition);
            if self.get(&key.0, key.1).is_none() {
                self.open(a.state, a.topic.as_ref(), a.incarnation, key, repair, changes).await;
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
        if self.supervisor.is_draining() {
            return Err("stopping: handing partitions over".into());
        }
        if !self.session.is_assigned() {
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
        self.session.confirmed(sent, session_timeout);
    }

    /// False once no sentinel has confirmed the session for a session
    /// timeout: the sentinels may have elected other leaders, so this broker
    /// must not acknowledge `acks=all` writes as leader.
    pub fn in_contact(&self) -> bool {
        self.session.in_contact()
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
        self.peers.address(id)
    }

    /// Every partition directory held, with its topic incarnation (see
    /// [`DataDir::held`]).
    pub fn held(&self) -> Vec<pb::HeldReplica> {
        self.data_dir.held()
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
            if t.segment_bytes > 0 {
                config.fragment_bytes = t.segment_bytes.max(config.max_batch_bytes as u64);
            }
            if t.segment_ms > 0 {
                config.fragment_max_age = Duration::from_millis(t.segment_ms);
            }
        }
        if !crate::compaction::retention_applies(topic) {
            config.retention_age = None;
            config.retention_bytes = None;
        }
        config
    }

    /// Applies an update from the sentinels: stops serving the removed
    /// replicas (deleting data only on evidence about its incarnation),
    /// opens (recovering) the logs of new assignments and updates states.
    /// A log that fails to open is skipped and logged: the partition stays
    /// unavailable on this broker. Returns what changed.
    pub async fn apply(&self, update: pb::AssignmentUpdate) -> Changes {
        let _opening = self.opening.lock().await;
        let mut changes = Changes::default();
        self.peers.replace(&update.brokers);
        // Removals first: a topic deleted and created again comes as the old
        // incarnation's removal and the new one's assignment.
        for removal in &update.removals {
            self.remove(removal, &mut changes).await;
        }
        let mut keep = std::collections::HashSet::new();
        let mut to_open = Vec::new();
        for assignment in update.assignments {
            let Some(state) = assignment.state else { continue };
            let key = (state.topic.clone(), state.partition);
            keep.insert(key.clone());
            let incarnation = assignment.topic_incarnation;
            match self.get(&state.topic, state.partition) {
                Some(replica) if replica.incarnation == incarnation => {
                    replica.set_topic(assignment.topic.as_ref());
                    // A topic's settings may change at any time: retention
                    // follows from its next run, without reopening the log.
                    let config = self.log_config(assignment.topic.as_ref());
                    let retention = config.retention();
                    if replica.log.retention() != retention {
                        tracing::info!(topic = %state.topic, partition = state.partition, ?retention, "retention changed");
                        replica.log.set_retention(retention);
                    }
                    let rolling = config.rolling();
                    if replica.log.rolling() != rolling {
                        match replica.log.set_rolling(rolling) {
                            Ok(()) => {
                                tracing::info!(topic = %state.topic, partition = state.partition, ?rolling, "fragment settings changed")
                            }
                            Err(e) => {
                                tracing::warn!(topic = %state.topic, partition = state.partition, error = %e, "fragment settings refused; the old ones stay")
                            }
                        }
                    }
                    replica.set_state(state);
                    self.supervisor.follow(&replica);
                    changes.updated.push(key);
                }
                Some(replica) => {
                    // Another incarnation, and no evidence came that ours may go.
                    self.close(&state.topic, state.partition).await;
                    self.kept.raise(&state.topic, state.partition, other_incarnation(incarnation, replica.incarnation));
                    changes.kept.push(key);
                }
                None => {
                    let failed = Assignment { state, topic: assignment.topic, incarnation };
                    // A failed replica is opened again by `retry_failed` only.
                    if !self.failures.reassigned(&failed) {
                        to_open.push((failed, key));
                    }
                }
            }
        }
        // Opened several at a time: an open waits mostly on the disk (a
        // directory, a WAL, their fsyncs), and one at a time a broker
        // opened 26 new partitions a second, 10,000 in over six minutes.
        let opened: Vec<Changes> = futures_util::stream::iter(to_open)
            .map(|(a, key)| async move {
                let mut opened = Changes::default();
                self.open(a.state, a.topic.as_ref(), a.incarnation, key, false, &mut opened).await;
                opened
            })
            .buffer_unordered(OPENS_AT_ONCE)
            .collect()
            .await;
        for each in opened {
            changes.merge(each);
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
                changes.kept.push((topic, partition));
            }
            self.session.mark_assigned();
        }
        self.retry_failed_locked(&mut changes).await;
        changes
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
        changes: &mut Changes,
    ) {
        let dir = self.data_dir.partition(&state.topic, state.partition);
        let recorded = match self.data_dir.identity(&state.topic, state.partition) {
            Ok(recorded) => recorded,
            Err(e) => {
                self.kept.raise(&state.topic, state.partition, format!("its topic id cannot be read: {e:#}"));
                changes.kept.push(key);
                return;
            }
        };
        if let Some(recorded) = recorded.filter(|r| *r != incarnation) {
            self.kept.raise(&state.topic, state.partition, other_incarnation(incarnation, recorded));
            changes.kept.push(key);
            return;
        }
        let config = self.log_config(topic);
        let opened = tokio::task::spawn_blocking(move || {
            crate::replica_files::open(&dir, config, recorded.is_none().then_some(incarnation), repair)
        })
        .await;
        match opened {
            Ok(Ok((log, timers))) => {
                self.kept.clear(&key.0, key.1);
                self.failures.clear(&key.0, key.1);
                let end = log.log_end_offset();
                tracing::info!(topic = %state.topic, partition = state.partition, log_end = end, leader = ?state.leader, "opened partition");
                // Recovery fsyncs the WAL, so a single replica's log is all
                // committed. With replicas, nothing is known to be on the
                // others yet: the high watermark starts at the log start and
                // is raised by the leader (or, as follower, from it).
                let start = if state.replicas.len() <= 1 { end } else { log.log_start_offset() };
                // Nothing is removed for retention or compaction until the
                // delayed-delivery task knows which originals are pending.
                log.set_hold(0);
                let replica = Arc::new(Replica {
                    topic: state.topic.clone(),
                    partition: state.partition,
                    log: Arc::new(log),
                    state: RwLock::new(pb::PartitionState { leader_epoch: 0, revision: 0, ..state.clone() }),
                    high_watermark: watch::Sender::new(start),
                    log_end: watch::Sender::new(end),
                    broker_id: self.broker_id,
                    incarnation,
                    leader: Mutex::new(Default::default()),
                    min_insync: std::sync::atomic::AtomicUsize::new(1),
                    topic_config: RwLock::new(None),
                    metrics: self.metrics.clone(),
                    counters: self.metrics.topic(&state.topic),
                    timers: Arc::new(timers),
                });
                replica.set_topic(topic);
                replica.set_state(state);
                self.replicas.write().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), replica.clone());
                self.supervisor.follow(&replica);
                changes.opened.push(key);
            }
            Ok(Err(e)) => {
                let corrupt = matches!(e.downcast_ref(), Some(goulette_storage::StorageError::Corruption { .. }));
                let reason = format!("cannot open its log: {e:#}");
                self.failures.record(Assignment { state, topic: topic.cloned(), incarnation }, reason, corrupt);
                changes.failed.push(key);
            }
            Err(e) => {
                tracing::error!(error = %e, "partition open task failed");
                changes.failed.push(key);
            }
        }
    }

    /// Closes the open replica of `topic/partition`, if any (its data stays).
    async fn close(&self, topic: &str, partition: u32) {
        let key = (topic.to_owned(), partition);
        let Some(replica) = self.replicas.write().unwrap_or_else(|p| p.into_inner()).remove(&key) else { return };
        self.supervisor.stop(topic, partition);
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
    async fn remove(&self, removal: &pb::Removal, changes: &mut Changes) {
        let key = (removal.topic.clone(), removal.partition);
        let (topic, partition) = (removal.topic.as_str(), removal.partition);
        self.close(topic, partition).await;
        self.failures.clear(topic, partition);
        let reason = pb::RemovalReason::try_from(removal.reason).unwrap_or(pb::RemovalReason::Unknown);
        let recorded = match self.data_dir.identity(topic, partition) {
            Ok(None) => {
                // Nothing on disk (deleted already): nothing to keep.
                self.kept.clear(topic, partition);
                changes.removed.push(key);
                return;
            }
            Ok(Some(recorded)) => recorded,
            Err(e) => {
                self.kept.raise(topic, partition, format!("its topic id cannot be read: {e:#}"));
                changes.kept.push(key);
                return;
            }
        };
        let evidence = match reason {
            pb::RemovalReason::Deleted => "the topic incarnation was deleted",
            pb::RemovalReason::Moved => "the partition moved to other brokers",
            pb::RemovalReason::Unknown => {
                self.kept.raise(topic, partition, "the metadata no longer knows this replica".into());
                changes.kept.push(key);
                return;
            }
        };
        if recorded != removal.topic_incarnation {
            let reason = format!(
                "{evidence} for topic id {:016x}, but the directory holds topic id {recorded:016x}",
                removal.topic_incarnation
            );
            self.kept.raise(topic, partition, reason);
            changes.kept.push(key);
            return;
        }
        let dir = self.data_dir.partition(topic, partition);
        match tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await {
            Ok(Ok(())) => {
                self.kept.clear(topic, partition);
                changes.removed.push(key);
                tracing::info!(
                    topic,
                    partition,
                    topic_id = format!("{recorded:016x}"),
                    evidence,
                    "replica data deleted"
                );
            }
            Ok(Err(e)) => {
                tracing::warn!(topic, partition, error = %e, "deleting replica data failed");
                changes.kept.push(key);
            }
            Err(e) => {
                tracing::warn!(error = %e, "replica removal task failed");
                changes.kept.push(key);
            }
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
            replica.prepare_wal();
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

/// New replicas an assignment update opens at once.
const OPENS_AT_ONCE: usize = 32;

/// A replica that failed for lack of space is opened again only once its
/// data directory has this much free, so that it does not fail again at
/// once (and log it) every second while the disk stays full.
const MIN_FREE_BYTES: u64 = 8 << 20;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn assigned(topic: &str, incarnation: u64, epoch: u64) -> pb::PartitionAssignment {
        let state = pb::PartitionState {
            topic: topic.into(),
            partition: 0,
            replicas: vec![1],
            leader: Some(1),
            leader_epoch: epoch,
            isr: vec![1],
            revision: epoch,
        };
        pb::PartitionAssignment { topic: None, state: Some(state), topic_incarnation: incarnation }
    }

    fn removal(topic: &str, incarnation: u64, reason: pb::RemovalReason) -> pb::Removal {
        pb::Removal { topic: topic.into(), partition: 0, topic_incarnation: incarnation, reason: reason as i32 }
    }

    fn key(topic: &str) -> Vec<(String, u32)> {
        vec![(topic.to_owned(), 0)]
    }

    #[tokio::test]
    async fn apply_reports_what_it_opened_updated_kept_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let partitions = Partitions::new(1, dir.path().into(), LogConfig::default(), CancellationToken::new());
        let snapshot = pb::AssignmentUpdate {
            snapshot: true,
            assignments: vec![assigned("a", 7, 1), assigned("b", 8, 1)],
            ..Default::default()
        };
        let changes = partitions.apply(snapshot).await;
        assert_eq!(changes.opened.len(), 2, "{changes:?}");
        assert!(partitions.get("a", 0).unwrap().is_leader());

        let delta = pb::AssignmentUpdate { assignments: vec![assigned("a", 7, 2)], ..Default::default() };
        let changes = partitions.apply(delta).await;
        assert_eq!(changes, Changes { updated: key("a"), ..Default::default() });

        // No evidence about the incarnation: stop serving, keep the data.
        let unknown =
            pb::AssignmentUpdate { removals: vec![removal("b", 8, pb::RemovalReason::Unknown)], ..Default::default() };
        assert_eq!(partitions.apply(unknown).await, Changes { kept: key("b"), ..Default::default() });
        assert!(dir.path().join("b-0").exists());
        // Evidence about another incarnation is no evidence about this one.
        let other =
            pb::AssignmentUpdate { removals: vec![removal("a", 99, pb::RemovalReason::Deleted)], ..Default::default() };
        assert_eq!(partitions.apply(other).await, Changes { kept: key("a"), ..Default::default() });
        assert!(dir.path().join("a-0").exists());
        // Evidence about this very incarnation: the data goes.
        let deleted =
            pb::AssignmentUpdate { removals: vec![removal("a", 7, pb::RemovalReason::Deleted)], ..Default::default() };
        assert_eq!(partitions.apply(deleted).await, Changes { removed: key("a"), ..Default::default() });
        assert!(!dir.path().join("a-0").exists());
    }
}
