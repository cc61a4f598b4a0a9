//! One Kafka consumer group's membership: Kafka's classic group protocol as
//! a state machine, without I/O (the coordinator drives it and its clock).
//!
//! ```text
//!   Empty ──join──▶ Joining ──all joined (or rebalance timeout)──▶ Syncing
//!     ▲               ▲  │                                           │
//!     │   join, leave,│  └─ no member left ──▶ Empty      leader's sync
//!     │   expiry      │                                              ▼
//!     └── last member leaves or expires ─────────────────────────  Stable
//! ```
//!
//! - **Join** (KIP-394, v4+): a member without an id gets MEMBER_ID_REQUIRED
//!   and a new id, kept pending for its session timeout (at most a minute);
//!   it joins again with it. A group holds at most [`MAX_GROUP_SIZE`]
//!   members and pending ids (GROUP_MAX_SIZE_REACHED beyond), so clients
//!   that never come back cannot grow a coordinator's memory without
//!   bound. Every join (re)starts a rebalance: the other members learn it from
//!   their heartbeats (REBALANCE_IN_PROGRESS) and join again. The join
//!   phase ends when every member has joined, or at the largest rebalance
//!   timeout, dropping those that did not; a group that was empty also
//!   waits `initial_delay` so that members starting together share one
//!   generation. Then the generation grows by one, the protocol every member
//!   supports is chosen (by the members' preference order), and the leader
//!   (the previous one if it stayed, else the earliest member) gets the
//!   member list to compute the assignment.
//! - **Sync**: the leader's assignments are handed to every member.
//! - **Fencing**: a request from an unknown member is UNKNOWN_MEMBER_ID,
//!   from another generation ILLEGAL_GENERATION; clients join again.
//! - **Sessions**: a member not heard from (join, sync, heartbeat, commit)
//!   for its session timeout is removed, which starts a rebalance.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

/// Most members and pending member ids one group holds (Kafka's
/// `group.max.size`).
pub const MAX_GROUP_SIZE: usize = 1000;
/// Longest a member id handed out by the join handshake waits to be used:
/// the client joins again with it at once.
const MAX_PENDING: Duration = Duration::from_secs(60);

/// Where the group is in its protocol (the names Kafka tools show).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Empty,
    /// Waiting for the members to join, until the deadline.
    Joining {
        deadline: Instant,
    },
    /// Waiting for the leader's assignments.
    Syncing,
    Stable,
}

impl Phase {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::Joining { .. } => "PreparingRebalance",
            Phase::Syncing => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }
}

/// A join as the coordinator received it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata), in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// Whether the client knows the member-id handshake (JoinGroup v4+).
    pub handshake: bool,
}

/// The answer to a join.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Joined {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// (member id, its metadata for the chosen protocol): for the leader only.
    pub members: Vec<(String, Bytes)>,
}

/// An answer now, or one that comes when the phase ends.
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// One member.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_heard: Instant,
    /// Joined in the current join phase.
    joined: bool,
    /// Order of first join (the leader is the earliest).
    seq: u64,
    join_waiter: Option<oneshot::Sender<Joined>>,
    sync_waiter: Option<oneshot::Sender<Result<Bytes, i16>>>,
}

/// A consumer group (see the module documentation).
#[derive(Debug)]
pub struct Group {
    pub generation: i32,
    pub phase: Phase,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out and not yet used, with their expiry.
    pending: HashMap<String, Instant>,
    next_seq: u64,
    /// When a join phase of a group that was empty may end at the earliest.
    initial_until: Option<Instant>,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

impl Default for Group {
    fn default() -> Self {
        Group {
            generation: 0,
            phase: Phase::Empty,
            protocol_type: String::new(),
            protocol: String::new(),
            leader: String::new(),
            members: BTreeMap::new(),
            pending: HashMap::new(),
            next_seq: 0,
            initial_until: None,
        }
    }
}

impl Group {
    /// A member joins (or joins again); `new_id` names a member without one.
    pub fn join(&mut self, req: JoinRequest, now: Instant, initial_delay: Duration, new_id: String) -> Reply<Joined> {
        let refuse = |error: i16, member_id: String| Reply::Now(Joined { error, member_id, ..Joined::default() });
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return refuse(code(ResponseError::InconsistentGroupProtocol), req.member_id);
        }
        if !self.members.is_empty() && req.protocol_type != self.protocol_type {
            return refuse(code(ResponseError::InconsistentGroupProtocol), req.member_id);
        }
        let others_support = |name: &str| {
            self.members.values().filter(|m| m.id != req.member_id).all(|m| m.protocols.iter().any(|(n, _)| n == name))
        };
        if !req.protocols.iter().any(|(name, _)| others_support(name)) {
            return refuse(code(ResponseError::InconsistentGroupProtocol), req.member_id);
        }
        if req.member_id.is_empty() && self.members.len() + self.pending.len() >= MAX_GROUP_SIZE {
            self.pending.retain(|_, expiry| *expiry > now);
            if self.members.len() + self.pending.len() >= MAX_GROUP_SIZE {
                return refuse(code(ResponseError::GroupMaxSizeReached), req.member_id);
            }
        }
        let member_id = if req.member_id.is_empty() {
            if req.handshake {
                self.pending.insert(new_id.clone(), now + req.session_timeout.min(MAX_PENDING));
                return refuse(code(ResponseError::MemberIdRequired), new_id);
            }
            new_id
        } else if self.members.contains_key(&req.member_id) || self.pending.remove(&req.member_id).is_some() {
            req.member_id.clone()
        } else {
            return refuse(code(ResponseError::UnknownMemberId), req.member_id);
        };
        let (sender, receiver) = oneshot::channel();
        let seq = self.next_seq;
        let member = self.members.entry(member_id.clone()).or_insert_with(|| Member {
            id: member_id.clone(),
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: req.session_timeout,
            rebalance_timeout: req.rebalance_timeout,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_heard: now,
            joined: false,
            seq,
            join_waiter: None,
            sync_waiter: None,
        });
        if member.seq == seq {
            self.next_seq += 1;
        }
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.protocols = req.protocols;
        member.last_heard = now;
        member.joined = true;
        // A member that joins twice in one phase gets its latest answer only.
        member.join_waiter = Some(sender);
        self.protocol_type = req.protocol_type;
        if !matches!(self.phase, Phase::Joining { .. }) {
            self.start_rebalance(now, initial_delay);
        }
        self.try_complete_join(now);
        Reply::Later(receiver)
    }

    /// Starts a join phase: every member must join again.
    fn start_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        self.initial_until = (self.phase == Phase::Empty).then(|| now + initial_delay);
        self.phase = Phase::Joining { deadline: now + timeout.max(initial_delay) };
        for m in self.members.values_mut() {
            // Only those that joined in this very call stay joined.
            if m.join_waiter.is_none() {
                m.joined = false;
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(Err(code(ResponseError::RebalanceInProgress)));
            }
        }
    }

    /// Ends the join phase if every member joined (after the initial
    /// delay), or its deadline passed.
    pub fn try_complete_join(&mut self, now: Instant) {
        let Phase::Joining { deadline } = self.phase else { return };
        let all_joined = self.members.values().all(|m| m.joined);
        let delayed = self.initial_until.is_some_and(|until| now < until);
        if (delayed || !all_joined) && now < deadline {
            return;
        }
        self.members.retain(|_, m| m.joined);
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.leader.clear();
            return;
        }
        self.generation += 1;
        self.protocol = self.choose_protocol();
        if !self.members.contains_key(&self.leader) {
            self.leader = self.members.values().min_by_key(|m| m.seq).map(|m| m.id.clone()).unwrap_or_default();
        }
        self.phase = Phase::Syncing;
        let metadata: Vec<(String, Bytes)> = self
            .members
            .values()
            .map(|m| {
                let meta = m.protocols.iter().find(|(n, _)| *n == self.protocol).map(|(_, b)| b.clone());
                (m.id.clone(), meta.unwrap_or_default())
            })
            .collect();
        for m in self.members.values_mut() {
            m.joined = false;
            m.last_heard = now;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(Joined {
                    error: 0,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader: self.leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == self.leader { metadata.clone() } else { Vec::new() },
                });
            }
        }
    }

    /// The protocol every member supports that most members prefer (ties:
    /// the earliest member's preference).
    fn choose_protocol(&self) -> String {
        let Some(first) = self.members.values().min_by_key(|m| m.seq) else { return String::new() };
        let supported = |name: &str| self.members.values().all(|m| m.protocols.iter().any(|(n, _)| n == name));
        let candidates: Vec<&str> = first.protocols.iter().map(|(n, _)| n.as_str()).filter(|n| supported(n)).collect();
        // Each member votes for the candidate it prefers.
        fn vote<'a>(m: &'a Member, candidates: &[&str]) -> Option<&'a str> {
            m.protocols.iter().map(|(n, _)| n.as_str()).find(|n| candidates.contains(n))
        }
        let mut best: Option<(&str, usize)> = None;
        for &c in &candidates {
            let votes = self.members.values().filter(|m| vote(m, &candidates) == Some(c)).count();
            if best.is_none_or(|(_, most)| votes > most) {
                best = Some((c, votes));
            }
        }
        best.map_or_else(String::new, |(c, _)| c.to_owned())
    }

    /// Checks that `member` of `generation` is current; refreshes its session.
    fn check(&mut self, member: &str, generation: i32, now: Instant) -> Result<&mut Member, i16> {
        let current = self.generation;
        let Some(m) = self.members.get_mut(member) else { return Err(code(ResponseError::UnknownMemberId)) };
        m.last_heard = now;
        if generation != current {
            return Err(code(ResponseError::IllegalGeneration));
        }
        Ok(m)
    }

    /// A member asks for its assignment; the leader brings everyone's.
    pub fn sync(
        &mut self,
        member: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<Result<Bytes, i16>> {
        let phase = self.phase;
        let leader = self.leader.clone();
        let m = match self.check(member, generation, now) {
            Ok(m) => m,
            Err(e) => return Reply::Now(Err(e)),
        };
        match phase {
            Phase::Joining { .. } | Phase::Empty => Reply::Now(Err(code(ResponseError::RebalanceInProgress))),
            Phase::Stable => Reply::Now(Ok(m.assignment.clone())),
            Phase::Syncing if member != leader => {
                let (sender, receiver) = oneshot::channel();
                m.sync_waiter = Some(sender);
                Reply::Later(receiver)
            }
            Phase::Syncing => {
                let mut assignments: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = assignments.remove(&m.id).unwrap_or_default();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(Ok(m.assignment.clone()));
                    }
                }
                self.phase = Phase::Stable;
                Reply::Now(Ok(self.members.get(member).map(|m| m.assignment.clone()).unwrap_or_default()))
            }
        }
    }

    /// A member's heartbeat: 0, or the error that makes it join again.
    pub fn heartbeat(&mut self, member: &str, generation: i32, now: Instant) -> i16 {
        let phase = self.phase;
        match self.check(member, generation, now) {
            Err(e) => e,
            Ok(_) if matches!(phase, Phase::Joining { .. }) => code(ResponseError::RebalanceInProgress),
            Ok(_) => 0,
        }
    }

    /// A commit's membership check. Generation −1 without a member id is a
    /// consumer outside group management: allowed only while the group has
    /// no members, as Kafka does, so it cannot overwrite their commits.
    pub fn check_commit(&mut self, member: &str, generation: i32, now: Instant) -> Result<(), i16> {
        if generation < 0 && member.is_empty() {
            return if self.members.is_empty() { Ok(()) } else { Err(code(ResponseError::UnknownMemberId)) };
        }
        self.check(member, generation, now).map(drop)
    }

    /// Members leave; the others rebalance. Per member: 0 or UNKNOWN_MEMBER_ID.
    pub fn leave(&mut self, members: &[String], now: Instant) -> Vec<i16> {
        let answers = members.iter().map(|id| self.remove(id)).collect();
        self.after_removal(now);
        answers
    }

    fn remove(&mut self, id: &str) -> i16 {
        match self.members.remove(id) {
            Some(m) => {
                if let Some(w) = m.join_waiter {
                    let _ = w.send(Joined { error: code(ResponseError::UnknownMemberId), ..Joined::default() });
                }
                if let Some(w) = m.sync_waiter {
                    let _ = w.send(Err(code(ResponseError::UnknownMemberId)));
                }
                0
            }
            None => code(ResponseError::UnknownMemberId),
        }
    }

    fn after_removal(&mut self, now: Instant) {
        match self.phase {
            _ if self.members.is_empty() => {
                self.phase = Phase::Empty;
                self.leader.clear();
            }
            Phase::Joining { .. } => self.try_complete_join(now),
            Phase::Syncing | Phase::Stable => self.start_rebalance(now, Duration::ZERO),
            Phase::Empty => {}
        }
    }

    /// Removes members whose session lapsed and pending ids never used;
    /// ends a join phase whose time is up. Returns the members removed.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        self.pending.retain(|_, expiry| *expiry > now);
        // A member waiting for its join or sync answer is alive.
        let lapsed: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none())
            .filter(|m| now.saturating_duration_since(m.last_heard) > m.session_timeout)
            .map(|m| m.id.clone())
            .collect();
        for id in &lapsed {
            self.remove(id);
        }
        if !lapsed.is_empty() {
            self.after_removal(now);
        }
        self.try_complete_join(now);
        lapsed
    }

    /// True when the group holds nothing worth keeping in memory.
    pub fn is_idle(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests;
