//! Consumer-group membership, from the member's side: join through a
//! sentinel, heartbeat in the background (reporting what the consumer
//! fetches), publish each new assignment, leave on close.
//!
//! The consumer reacts to a published assignment by committing and stopping
//! the partitions it lost, then starting those it gained; it reports the
//! change with [`Membership::fetching_changed`] so the sentinel can hand the
//! released partitions on without waiting for the next beat.
//!
//! What a heartbeat reports as fetched is never less than what the member
//! may be fetching: the partitions the consumer reported, plus those of the
//! latest published assignment (which the consumer may be starting). The
//! consumer takes an assignment with [`Membership::claim`], which marks its
//! partitions fetched under the same lock the heartbeat snapshots and
//! publishes under, so no partition is reported released while a fetcher
//! for it may still start. A member that has had no heartbeat answered for
//! its session timeout stops fetching (publishes an empty assignment): by
//! then the group may have handed its partitions on.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use goulette_proto::v1::{self as pb, ErrorCode};
use tokio::sync::{Notify, watch};

use crate::cluster::{Cluster, backoff};
use crate::error::{ClientError, Result};

/// Once fenced, how long before the fence is published again (harmless:
/// an unchanged assignment is not republished).
const FENCED_RECHECK: Duration = Duration::from_secs(3600);

/// How a consumer takes part in its group.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// `range`, `round-robin` or `sticky` (the default).
    pub strategy: String,
    /// A member silent this long loses its partitions to the others.
    pub session_timeout: Duration,
    /// Names the member in `goulette group describe`.
    pub client_id: String,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            strategy: "sticky".into(),
            session_timeout: Duration::from_secs(10),
            client_id: "consumer".into(),
        }
    }
}

/// What the member may consume, as of a generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Empty until joined.
    pub member_id: String,
    /// -1 until the first generation that includes this member.
    pub generation: i64,
    /// Partitions of the subscribed topic it may fetch.
    pub partitions: BTreeSet<u32>,
}

/// A running membership; leaves the group when closed or dropped.
#[derive(Debug)]
pub struct Membership {
    assignment: watch::Receiver<Assignment>,
    /// Guards `fetching` together with publishing to `assignment`.
    shared: Arc<Mutex<Shared>>,
    /// Why the membership ended, when the group refused it for good.
    failure: Arc<Mutex<Option<ClientError>>>,
    poke: Arc<Notify>,
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// What the consumer fetches (or may be starting), with the publisher of
/// assignments, under one lock.
#[derive(Debug)]
struct Shared {
    fetching: BTreeSet<u32>,
    publish: watch::Sender<Assignment>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Without an explicit close the session is left to lapse.
        self.task.abort();
    }
}

struct Member {
    failure: Arc<Mutex<Option<ClientError>>>,
    cluster: Arc<Cluster>,
    group: String,
    topic: String,
    options: GroupOptions,
    tag_filter: String,
    shared: Arc<Mutex<Shared>>,
    poke: Arc<Notify>,
    stop: Arc<Notify>,
}

/// A joined session.
struct Session {
    member_id: String,
    id: i64,
    interval: Duration,
    timeout: Duration,
}

impl Membership {
    /// Joins `group` for `topic` and keeps the membership alive in the background.
    /// `tag_filter` is the consumer's, normalized (empty: none): the group
    /// refuses a member whose filter differs from the others'.
    pub fn start(
        cluster: Arc<Cluster>,
        group: &str,
        topic: &str,
        options: GroupOptions,
        tag_filter: String,
    ) -> Membership {
        let (publish, assignment) = watch::channel(Assignment { generation: -1, ..Assignment::default() });
        let shared = Arc::new(Mutex::new(Shared { fetching: BTreeSet::new(), publish }));
        let (poke, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let failure = Arc::new(Mutex::new(None));
        let member = Member {
            failure: failure.clone(),
            cluster,
            group: group.to_owned(),
            topic: topic.to_owned(),
            options,
            tag_filter,
            shared: shared.clone(),
            poke: poke.clone(),
            stop: stop.clone(),
        };
        let task = tokio::spawn(member.run());
        Membership { assignment, shared, failure, poke, stop, task }
    }

    /// Follows the published assignment.
    pub fn assignment(&self) -> watch::Receiver<Assignment> {
        self.assignment.clone()
    }

    /// Why the membership ended: a join the group refused for good, such
    /// as a mismatched strategy (the assignment is then empty for good).
    pub fn failure(&self) -> Option<ClientError> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The latest assignment, its partitions marked fetched at once (the
    /// consumer is about to start them).
    pub fn claim(&self) -> Assignment {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let latest = shared.publish.borrow().clone();
        shared.fetching.extend(latest.partitions.iter().copied());
        latest
    }

    /// Tells the sentinel at once what the consumer fetches now.
    pub fn fetching_changed(&self, fetching: BTreeSet<u32>) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).fetching = fetching;
        self.poke.notify_one();
    }

    /// Beats now (after a commit was refused for a stale generation).
    pub fn refresh(&self) {
        self.poke.notify_one();
    }

    /// Leaves the group (the others take over at once) and waits for it.
    pub async fn close(mut self) {
        self.stop.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

fn server_error(e: Option<pb::Error>) -> Result<()> {
    e.map_or(Ok(()), |e| Err(ClientError::from_proto(&e)))
}

impl Member {
    async fn run(self) {
        let mut attempt = 0;
        loop {
            let session = tokio::select! {
                joined = self.join() => joined,
                _ = self.stop.notified() => return,
            };
            let session = match session {
                Ok(s) => s,
                Err(e) if !e.is_retriable() => {
                    tracing::error!(group = %self.group, error = %e, "the group refused this member");
                    *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    // Wake the consumer (always a change), which then reads the failure.
                    let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
                    shared.publish.send_modify(|a| *a = Assignment { generation: -1, ..Assignment::default() });
                    return;
                }
                Err(e) => {
                    tracing::warn!(group = %self.group, error = %e, "joining the group failed; will retry");
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff(attempt.min(6), Duration::from_millis(100), Duration::from_secs(2))) => continue,
                        _ = self.stop.notified() => return,
                    }
                }
            };
            attempt = 0;
            tracing::info!(group = %self.group, member = %session.member_id, "joined the group");
            if self.beat(&session).await {
                self.leave(&session).await;
                return;
            }
            // The session lapsed: everything it held is someone else's now.
            self.publish(Assignment { generation: -1, ..Assignment::default() });
        }
    }

    async fn join(&self) -> Result<Session> {
        // One group, one protocol: a group Kafka-protocol consumers hold
        // (their coordinator is a broker) is refused here, for good (the
        // consumer reports it). Their coordinator refuses Kafka members of
        // a group native members hold, in turn.
        // A broker that cannot say (an older one, or `__offsets` without a
        // leader right now) does not stop the join.
        if let Ok(Some(kafka)) = crate::offsets::describe_kafka_group(&self.cluster, &self.group).await
            && !kafka.members.is_empty()
        {
            return Err(ClientError::Server {
                code: ErrorCode::InvalidArgument,
                message: format!(
                    "group {} is held by {} Kafka-protocol consumer(s): a group has one protocol at a time (use another group id)",
                    self.group,
                    kafka.members.len()
                ),
            });
        }
        let req = pb::JoinGroupRequest {
            group: self.group.clone(),
            client_id: self.options.client_id.clone(),
            topics: vec![self.topic.clone()],
            strategy: self.options.strategy.clone(),
            session_timeout_ms: self.options.session_timeout.as_millis() as u32,
            tag_filter: self.tag_filter.clone(),
        };
        let resp = self
            .cluster
            .with_sentinel("join group", |mut c| {
                let req = req.clone();
                async move { c.join_group(req).await }
            })
            .await?;
        server_error(resp.error)?;
        Ok(Session {
            member_id: resp.member_id,
            id: resp.session_id,
            interval: Duration::from_millis(u64::from(resp.heartbeat_interval_ms.max(50))),
            timeout: Duration::from_millis(u64::from(resp.session_timeout_ms)),
        })
    }

    fn publish(&self, next: Assignment) {
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.publish.send_if_modified(|a| {
            let changed = *a != next;
            *a = next;
            changed
        });
    }

    /// What the member may be fetching: what the consumer reported, and
    /// the latest assignment it was given.
    fn may_fetch(&self) -> BTreeSet<u32> {
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let published = shared.publish.borrow().partitions.clone();
        shared.fetching.union(&published).copied().collect()
    }

    /// Heartbeats until stopped (true) or the session is gone (false).
    async fn beat(&self, session: &Session) -> bool {
        // When this member stops fetching unless a heartbeat is answered
        // first: a beat before its session lease can have expired (the lease
        // was last refreshed after the answered request was sent).
        let fence_after = session.timeout.saturating_sub(session.interval);
        let mut fence_at = tokio::time::Instant::now() + fence_after;
        loop {
            let sent = tokio::time::Instant::now();
            let fetching: Vec<pb::TopicPartition> = self
                .may_fetch()
                .into_iter()
                .map(|p| pb::TopicPartition { topic: self.topic.clone(), partition: p })
                .collect();
            let req = pb::GroupHeartbeatRequest {
                group: self.group.clone(),
                member_id: session.member_id.clone(),
                session_id: session.id,
                fetching,
            };
            // A sentinel that does not answer within a beat or two is skipped.
            let request = self.cluster.with_sentinel_within(
                "group heartbeat",
                (session.interval * 2).max(Duration::from_millis(500)),
                |mut c| {
                    let req = req.clone();
                    async move { c.group_heartbeat(req).await }
                },
            );
            let mut request = std::pin::pin!(request);
            let answer = loop {
                tokio::select! {
                    answer = &mut request => break answer.and_then(|r| server_error(r.error.clone()).map(|()| r)),
                    _ = tokio::time::sleep_until(fence_at) => {
                        self.fence(session);
                        fence_at = tokio::time::Instant::now() + FENCED_RECHECK;
                    }
                }
            };
            let mut wait = session.interval;
            match answer {
                Ok(r) => {
                    fence_at = sent + fence_after;
                    let partitions =
                        r.assignment.iter().filter(|tp| tp.topic == self.topic).map(|tp| tp.partition).collect();
                    self.publish(Assignment {
                        member_id: session.member_id.clone(),
                        generation: r.generation,
                        partitions,
                    });
                    if r.pending > 0 {
                        // A partition is on its way: ask again soon.
                        wait = wait.min(Duration::from_millis(100));
                    }
                }
                Err(ClientError::Server { code: ErrorCode::UnknownMember, .. }) => {
                    tracing::warn!(group = %self.group, member = %session.member_id, "session lapsed; joining again");
                    return false;
                }
                Err(e) => tracing::warn!(group = %self.group, error = %e, "group heartbeat failed; will retry"),
            }
            let until = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    _ = self.poke.notified() => break,
                    _ = self.stop.notified() => return true,
                    _ = tokio::time::sleep_until(fence_at) => {
                        self.fence(session);
                        fence_at = tokio::time::Instant::now() + FENCED_RECHECK;
                    }
                }
            }
        }
    }

    /// No heartbeat answered for nearly a session timeout: the group may
    /// hand our partitions on at any moment, so stop fetching them until a
    /// heartbeat is answered again.
    fn fence(&self, session: &Session) {
        let fenced = Assignment { member_id: session.member_id.clone(), generation: -1, ..Default::default() };
        if *self.shared.lock().unwrap_or_else(|p| p.into_inner()).publish.borrow() != fenced {
            tracing::warn!(group = %self.group, member = %session.member_id, "no heartbeat answered: stopped fetching");
        }
        self.publish(fenced);
    }

    async fn leave(&self, session: &Session) {
        let req = pb::LeaveGroupRequest {
            group: self.group.clone(),
            member_id: session.member_id.clone(),
            session_id: session.id,
        };
        let left = self
            .cluster
            .with_sentinel("leave group", |mut c| {
                let req = req.clone();
                async move { c.leave_group(req).await }
            })
            .await
            .and_then(|r| server_error(r.error));
        if let Err(e) = left {
            tracing::warn!(group = %self.group, error = %e, "leaving the group failed; its session will lapse");
        }
    }
}
