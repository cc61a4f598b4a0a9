//! What only the sentinel leader does: every metadata write, by concept:
//!
//! - [`topics`]: creating (with defaults and limits) and deleting topics;
//! - [`brokers`]: broker lifecycle: sessions, probes of brokers reported
//!   unreachable, controlled shutdown, failed replicas, decommissioning;
//! - [`partitions`]: partition leadership and ISR: ISR changes asked by
//!   leaders, elections when a leader is gone, moves towards the placement;
//! - [`producer_ids`]: producer ids, reserved from etcd in blocks;
//! - [`users`]: users and their SCRAM credentials;
//! - [`acls`]: ACL bindings;
//! - [`leader_loop`]: the leader's standing duties (elections, moves,
//!   consumer-group rebalances) on every change of the view.
//!
//! Consumer-group writes live in [`crate::groups`].
//!
//! Each method takes the leader's [`Fence`] and commits through
//! [`Store::commit`], so each change lands with its op-log entry in one
//! transaction, or not at all. This file holds the state they share and the
//! compare-and-swap write of one partition that all partition changes use.

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::config::SentinelConfig;
use crate::error::{Result, SentinelError};
use crate::leases::Leases;
use crate::model::PartitionRecord;
use crate::placement::Membership;
use crate::store::{Change, Fence, Store};
use crate::view::ClusterView;

pub mod acls;
pub mod brokers;
pub mod leader_loop;
pub mod partitions;
pub mod producer_ids;
pub mod topics;
pub mod users;

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
}

/// Views and partitions for the tests of the controller's files.
#[cfg(test)]
mod test_support {
    use crate::model::{BrokerRecord, PartitionRecord};
    use crate::view::ClusterView;

    pub(super) fn view(live: &[u32]) -> ClusterView {
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
                    kafka_address: String::new(),
                    default_retention_ms: None,
                },
            );
        }
        v
    }

    pub(super) fn partition(leader: Option<u32>, isr: &[u32]) -> PartitionRecord {
        PartitionRecord {
            topic: "t".into(),
            partition: 0,
            replicas: vec![1, 2, 3],
            leader,
            leader_epoch: 4,
            isr: isr.to_vec(),
        }
    }
}
