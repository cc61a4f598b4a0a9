//! One partition replica on this broker: its log, its state as the
//! sentinels last described it, its high watermark, and (as leader) the
//! leader-only state the high watermark and the ISR are computed from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use goulette_proto::v1 as pb;
use goulette_storage::timers::TimerIndex;
use goulette_storage::{FlushPolicy, PartitionLog};
use tokio::sync::watch;

use crate::leader_state::{FollowerProgress, LeaderState, Term};

/// One partition replica on this broker.
#[derive(Debug)]
pub struct Replica {
    pub topic: String,
    pub partition: u32,
    pub log: Arc<PartitionLog>,
    pub(crate) state: RwLock<pb::PartitionState>,
    /// Offsets below this are visible to consumers: durable under the flush
    /// policy (and, with replication, on every in-sync replica).
    pub(crate) high_watermark: watch::Sender<u64>,
    /// The log end, for follower fetch streams waiting for new data.
    pub(crate) log_end: watch::Sender<u64>,
    pub(crate) broker_id: u32,
    /// The topic incarnation this replica's data belongs to.
    pub(crate) incarnation: u64,
    /// As leader: the term, the followers' progress, pending ISR additions.
    pub(crate) leader: Mutex<LeaderState>,
    /// acks=all needs at least this many in-sync replicas.
    pub(crate) min_insync: std::sync::atomic::AtomicUsize,
    /// The topic's settings as last assigned (to open the log again after
    /// a failure).
    pub(crate) topic_config: RwLock<Option<pb::TopicConfig>>,
    pub(crate) metrics: Arc<crate::metrics::BrokerMetrics>,
    /// This topic's traffic counters.
    pub(crate) counters: crate::metrics::TopicCounters,
    /// Delayed delivery's timer index of this log, opened with it.
    pub timers: Arc<TimerIndex>,
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
    pub(crate) fn notify(&self) {
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

    /// Zero-fills the log's next WAL on a blocking thread of its own when
    /// the log wants one (see `goulette_storage::log::prepare`): it takes as
    /// long as the disk does, and must hold up neither the appends nor the
    /// other partitions' maintenance. The log refuses a second preparation
    /// while one runs, and logs and counts a failed one.
    pub fn prepare_wal(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.log.wants_prepared_wal() {
            let log = self.log.clone();
            runtime.spawn_blocking(move || log.prepare_wal());
        }
    }

    /// As leader: moves the high watermark up to what the ISR holds (see
    /// `leader_state::high_watermark`). It never moves down.
    pub fn advance_high_watermark(&self) {
        let state = self.state();
        if state.leader != Some(self.broker_id) {
            return;
        }
        let visible = self.locally_visible();
        let hw = self.leader_state().high_watermark(self.broker_id, visible, &state.isr);
        self.raise_high_watermark(hw);
    }

    /// As follower: the high watermark is the leader's, capped by what this
    /// replica holds.
    pub fn follow_high_watermark(&self, leader_high_watermark: u64) {
        self.raise_high_watermark(leader_high_watermark.min(self.locally_visible()));
    }

    /// As leader: a follower reports its log end; `caught_up` when it
    /// reached the log end this leader had when it served the data.
    pub fn record_follower(&self, follower: u32, log_end: u64, caught_up: bool) {
        self.leader_state().record_follower(follower, log_end, caught_up);
        self.advance_high_watermark();
    }

    /// As leader: replicas about to be proposed for the ISR (counted by the
    /// high watermark already, so that nothing is acknowledged without them
    /// if etcd applied the change).
    pub fn set_pending_isr(&self, additions: Vec<u32>) {
        self.leader_state().pending_isr = additions;
    }

    fn leader_state(&self) -> std::sync::MutexGuard<'_, LeaderState> {
        self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// As leader: every follower's reported progress. A follower that is
    /// fetching and holds the whole log counts as caught up now (an idle
    /// partition sends it nothing to report about).
    pub fn followers(&self) -> HashMap<u32, FollowerProgress> {
        let end = self.log.log_end_offset();
        let mut leader = self.leader_state();
        for f in leader.followers.values_mut().filter(|f| !f.streams.is_empty() && f.log_end >= end) {
            f.caught_up_at = Instant::now();
        }
        leader.followers.clone()
    }

    /// As leader: a follower opened (`opened`) or closed fetch stream `stream`.
    pub fn follower_stream(&self, follower: u32, stream: u64, opened: bool) {
        if let Some(f) = self.leader_state().followers.get_mut(&follower) {
            if opened {
                f.streams.insert(stream);
            } else {
                f.streams.remove(&stream);
            }
        }
    }

    /// As leader: the current term, if this broker leads.
    pub fn term(&self) -> Option<Term> {
        self.leader_state().term
    }

    /// Installs the topic's settings as assigned.
    pub(crate) fn set_topic(&self, topic: Option<&pb::TopicConfig>) {
        *self.topic_config.write().unwrap_or_else(|p| p.into_inner()) = topic.cloned();
        let compaction = crate::compaction::policy(&self.topic, topic);
        if self.log.compaction() != compaction {
            tracing::info!(topic = %self.topic, partition = self.partition, ?compaction, "compaction settings");
            self.log.set_compaction(compaction);
        }
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
            let mut leader = self.leader_state();
            // A newer state settles any ISR proposal in flight.
            leader.pending_isr.clear();
            let leading = state.leader == Some(self.broker_id);
            if leader.term.is_some() != leading {
                self.metrics.leader_changes.inc();
            }
            match (leader.term, leading) {
                (Some(t), true) if t.epoch == state.leader_epoch => {}
                (_, true) => {
                    leader.term = Some(Term {
                        epoch: state.leader_epoch,
                        started: Instant::now(),
                        start_offset: self.log.log_end_offset(),
                    });
                    leader.followers.clear();
                }
                (_, false) => leader.term = None,
            }
            *current = state;
        }
        self.advance_high_watermark();
        self.notify();
    }
}
