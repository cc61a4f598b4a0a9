//! The Kafka group coordinator.
//!
//! The coordinator of a group is the leader of the group's `__offsets`
//! partition (`goulette_proto::offsets_topic::group_partition`), as Kafka's is
//! the leader of its `__consumer_offsets` partition, and as Goulette's
//! native commits already are: Kafka commits are stored there next to
//! native ones, in the same records, so `goulette group describe` and lag
//! see both.
//!
//! Membership ([`state`]) lives in the coordinator's memory. When the
//! coordinator moves (its broker stopped or lost the leadership), the
//! members get NOT_COORDINATOR, find the new one and join again; member
//! ids are random, so a member of the old coordinator can never pass as
//! one of a new generation, and the committed offsets are read back from
//! `__offsets`.
//!
//! - `find`: FindCoordinator.
//! - `membership`: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.
//! - `commits`: OffsetCommit, OffsetFetch.
//! - `describe`: ListGroups, DescribeGroups.
//! - `delete`: DeleteGroups.
//! - `native_view`: the groups as `goulette group describe` sees them.

pub mod commits;
pub mod delete;
pub mod describe;
pub mod find;
pub mod membership;
pub mod native_view;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use goulette_proto::offsets_topic::{OFFSETS_TOPIC, group_partition};
use kafka_protocol::ResponseError;

use crate::partition::Partitions;
use state::Group;

/// The groups this broker coordinates.
#[derive(Debug)]
pub struct Groups {
    partitions: Arc<Partitions>,
    groups: Mutex<HashMap<String, Group>>,
    /// How long a join phase of an empty group waits for more members
    /// (Kafka's `group.initial.rebalance.delay.ms`).
    initial_delay: Duration,
    next_member: std::sync::atomic::AtomicU64,
    /// `__offsets`' partition count once known (0: not yet).
    offsets_partitions: std::sync::atomic::AtomicU32,
}

/// How often sessions and join deadlines are checked.
pub const TICK: Duration = Duration::from_millis(100);

impl Groups {
    pub fn new(partitions: Arc<Partitions>, initial_delay: Duration) -> Groups {
        Groups {
            partitions,
            groups: Mutex::new(HashMap::new()),
            initial_delay,
            next_member: std::sync::atomic::AtomicU64::new(0),
            offsets_partitions: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The `__offsets` partition of `group` if this broker coordinates it,
    /// else NOT_COORDINATOR (the client asks FindCoordinator again).
    pub fn coordinated(&self, group: &str) -> Result<u32, i16> {
        let not = ResponseError::NotCoordinator.code();
        let count = self.offsets_partitions().ok_or(not)?;
        let partition = group_partition(group, count);
        match self.partitions.get(OFFSETS_TOPIC, partition) {
            Some(r) if r.is_leader() && self.partitions.in_contact() => Ok(partition),
            _ => Err(not),
        }
    }

    /// The partition count of `__offsets`, from a replica held here; kept
    /// once known (it is fixed at the topic's creation).
    fn offsets_partitions(&self) -> Option<u32> {
        use std::sync::atomic::Ordering;
        let known = self.offsets_partitions.load(Ordering::Relaxed);
        if known > 0 {
            return Some(known);
        }
        let replica = self.partitions.all().into_iter().find(|r| r.topic == OFFSETS_TOPIC)?;
        let config = replica.topic_config.read().unwrap_or_else(|p| p.into_inner()).clone();
        let count = config.map(|c| c.partitions).filter(|n| *n > 0)?;
        self.offsets_partitions.store(count, Ordering::Relaxed);
        Some(count)
    }

    /// Runs `f` on `group` (created empty if unknown), under the lock.
    pub fn with<T>(&self, group: &str, f: impl FnOnce(&mut Group) -> T) -> T {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        f(groups.entry(group.to_owned()).or_default())
    }

    /// Runs `f` on `group` if it exists.
    pub fn with_existing<T>(&self, group: &str, f: impl FnOnce(&Group) -> T) -> Option<T> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).get(group).map(f)
    }

    /// Forgets a group without members (it was deleted).
    pub fn forget(&self, group: &str) {
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        if groups.get(group).is_some_and(|g| g.members.is_empty()) {
            groups.remove(group);
        }
    }

    /// The names of the groups with members or pending ids.
    pub fn names(&self) -> Vec<String> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// A new member id, unique across brokers and restarts.
    pub fn new_member_id(&self, client_id: &str) -> String {
        let n = self.next_member.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let client = if client_id.is_empty() { "member" } else { client_id };
        format!("{client}-{:x}-{nanos:x}-{n:x}", self.partitions.broker_id())
    }

    /// The initial rebalance delay.
    pub fn initial_delay(&self) -> Duration {
        self.initial_delay
    }

    /// Expires sessions, ends join phases that are due, and forgets groups
    /// this broker no longer coordinates (their waiting members get
    /// NOT_COORDINATOR) or that hold nothing.
    pub fn tick(&self) {
        let now = Instant::now();
        let names = self.names();
        let led: HashMap<String, bool> = names.iter().map(|g| (g.clone(), self.coordinated(g).is_ok())).collect();
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups.retain(|name, group| {
            // A group created since the names were taken is kept: its
            // coordination is checked at the next tick.
            if !led.get(name).copied().unwrap_or(true) {
                return false;
            }
            let lapsed = group.tick(now);
            if !lapsed.is_empty() {
                tracing::info!(group = %name, members = ?lapsed, "Kafka group members' sessions lapsed");
            }
            // An empty group is forgotten (its commits stay in `__offsets`);
            // member ids are unique, so a generation that starts over is safe.
            !group.is_idle()
        });
    }

    /// Runs [`Groups::tick`] every [`TICK`] until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.tick(),
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
