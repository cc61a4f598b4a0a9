//! Replicas this broker cannot serve: their log failed to open, or a read
//! found a batch whose checksum fails.
//!
//! A failed replica is closed and never served: clients asking for it get
//! `CORRUPT_STORAGE` (retriable: they look up the leader again), `/ready`
//! names it, the `partitions_failed` gauge counts it, and the sentinel
//! leader is told (`ReportReplicaFailure`), which takes the replica out of
//! the ISR and hands its leadership to the next live in-sync replica. The
//! failure is logged at ERROR once, when it starts.
//!
//! Open logs that failed (a write, fsync or seal failed: a full disk, an I/O
//! error) are found every second and failed the same way, so a full disk
//! moves the leadership to a replica that can write.
//!
//! Recovery, retried every second and after each assignment update:
//! - a replica that failed for another reason (a full disk, an I/O error)
//!   is opened again (reopening completes an interrupted seal) once the data
//!   directory has `MIN_FREE_BYTES` free: appends resume by themselves when
//!   space returns;
//! - a damaged replica is repaired only once another broker leads the
//!   partition and this one is out of its ISR: the log is cut before its
//!   first bad batch (`goulette_storage::repair`) and the replica fetches
//!   the rest from the leader like any follower, rejoining the ISR when
//!   caught up. A damaged sole copy (or one whose in-sync peers are gone)
//!   stays failed: only an operator may decide to lose data.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use goulette_proto::v1 as pb;

/// What a failed replica was last assigned: enough to open it again.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub state: pb::PartitionState,
    pub topic: Option<pb::TopicConfig>,
    pub incarnation: u64,
}

/// One failed replica.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    /// The data failed a check (else: another error, e.g. I/O).
    corrupt: bool,
    assignment: Assignment,
    /// When to tell the sentinel leader (again); `None` once it moved the
    /// leadership and ISR away.
    report_at: Option<Instant>,
}

/// How often a report that changed nothing (no other in-sync replica could
/// take over) is repeated.
const REPORT_AGAIN: Duration = Duration::from_secs(10);

/// The failed replicas of one broker.
#[derive(Debug, Default)]
pub struct Failures {
    failed: Mutex<BTreeMap<(String, u32), Failure>>,
    pub(crate) wake: tokio::sync::Notify,
}

impl Failures {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u32), Failure>> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a failure (logged once, when it starts) and, when it is new,
    /// wakes the reporter. A replica that fails again when retried does not
    /// wake it: the retry would fail again at once, in a loop that spun a
    /// core (a data directory of an old format failed every retry).
    pub fn record(&self, assignment: Assignment, reason: String, corrupt: bool) {
        let key = (assignment.state.topic.clone(), assignment.state.partition);
        let mut failed = self.lock();
        let report_at = failed.get(&key).map_or(Some(Instant::now()), |f| f.report_at);
        let new = !failed.contains_key(&key);
        if new {
            tracing::error!(topic = %key.0, partition = key.1, corrupt, reason = %reason,
                "replica failed: not served; asking the sentinels to move its leadership and ISR");
        }
        failed.insert(key, Failure { reason, corrupt, assignment, report_at });
        drop(failed);
        if new {
            self.wake.notify_one();
        }
    }

    /// Why `topic/partition` failed, and whether its data is damaged, if it did.
    pub fn reason(&self, topic: &str, partition: u32) -> Option<(String, bool)> {
        self.lock().get(&(topic.to_owned(), partition)).map(|f| (f.reason.clone(), f.corrupt))
    }

    /// Forgets a failure (the replica opened, or is no longer assigned).
    pub fn clear(&self, topic: &str, partition: u32) {
        if self.lock().remove(&(topic.to_owned(), partition)).is_some() {
            tracing::info!(topic, partition, "replica failure cleared");
        }
    }

    /// Keeps the latest assignment of a failed replica; false when it has not failed.
    pub fn reassigned(&self, assignment: &Assignment) -> bool {
        let key = (assignment.state.topic.clone(), assignment.state.partition);
        match self.lock().get_mut(&key) {
            Some(f) => {
                f.assignment = assignment.clone();
                true
            }
            None => false,
        }
    }

    /// Every failed replica with its reason.
    pub fn list(&self) -> Vec<((String, u32), String)> {
        self.lock().iter().map(|(k, f)| (k.clone(), f.reason.clone())).collect()
    }

    /// How many replicas failed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no replica failed.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The failures to report now.
    pub(crate) fn due(&self) -> Vec<pb::ReportReplicaFailureRequest> {
        let now = Instant::now();
        self.lock()
            .iter()
            .filter(|(_, f)| f.report_at.is_some_and(|at| at <= now))
            .map(|((topic, partition), f)| pb::ReportReplicaFailureRequest {
                broker_id: 0,
                topic: topic.clone(),
                partition: *partition,
                reason: f.reason.clone(),
            })
            .collect()
    }

    pub(crate) fn reported(&self, topic: &str, partition: u32, moved: bool) {
        if let Some(f) = self.lock().get_mut(&(topic.to_owned(), partition)) {
            f.report_at = (!moved).then(|| Instant::now() + REPORT_AGAIN);
        }
    }

    /// The failed replicas worth opening again, with whether to repair
    /// (cut) them: not damaged (when `room`: the data directory has space
    /// again), or damaged while another broker leads and `me` is out of the
    /// ISR.
    pub fn to_retry(&self, me: u32, room: bool) -> Vec<(Assignment, bool)> {
        self.lock()
            .values()
            .filter_map(|f| {
                let state = &f.assignment.state;
                let repairable = state.leader.is_some_and(|l| l != me) && !state.isr.contains(&me);
                match (f.corrupt, repairable) {
                    (false, _) if room => Some((f.assignment.clone(), false)),
                    (false, _) => None,
                    (true, true) => Some((f.assignment.clone(), true)),
                    (true, false) => None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topic: &str) -> Assignment {
        let state = pb::PartitionState { topic: topic.to_owned(), ..Default::default() };
        Assignment { state, topic: None, incarnation: 1 }
    }

    /// Notified now (or already), without waiting.
    fn woken(f: &Failures) -> bool {
        use std::future::Future;
        let notified = std::pin::pin!(f.wake.notified());
        let waker = std::task::Waker::noop();
        notified.poll(&mut std::task::Context::from_waker(waker)).is_ready()
    }

    #[test]
    fn only_a_new_failure_wakes_the_reporter() {
        let f = Failures::default();
        f.record(assignment("t"), "cannot open".into(), false);
        assert!(woken(&f));
        // The retry failed the same way: no wake-up, or the task would spin.
        f.record(assignment("t"), "cannot open".into(), false);
        assert!(!woken(&f));
        f.record(assignment("u"), "disk full".into(), false);
        assert!(woken(&f));
    }
}
