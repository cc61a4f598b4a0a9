//! Broker lifecycle as the leader sees it: sessions (register, heartbeat,
//! deregister), ending the session of a broker reported unreachable that
//! fails a probe, controlled shutdown (handing leadership over), replicas a
//! broker cannot serve, and decommissioning.

use std::time::Duration;

use super::Controller;
use crate::error::{Result, SentinelError};
use crate::etcd_metrics::Counted;
use crate::model::{self, BrokerRecord, DecommissionRecord, PartitionRecord};
use crate::store::{Change, Fence};
use crate::view::ClusterView;

impl Controller {
    /// Starts a broker session: a lease of `session_timeout` holding
    /// `brokers/{id}`, and records the identity of its data directory in
    /// `data-dirs/{id}`. Returns the session (lease) id, and a warning when
    /// the metadata knew the broker with another data directory.
    pub async fn register_broker(
        &self,
        fence: &Fence,
        broker: BrokerRecord,
        data_dir_id: &str,
    ) -> Result<(i64, Option<String>)> {
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
        let mut detail = format!("broker {} at {} session {lease:x}", broker.id, broker.address);
        let (known, warning) = match self.known_data_dir(broker.id, data_dir_id).await {
            Ok(known) => known,
            Err(e) => {
                let _ = client.lease_revoke(lease).await;
                return Err(e);
            }
        };
        if let Some(warning) = &warning {
            tracing::warn!(broker = broker.id, warning = %warning, "a broker registered with another data directory");
            detail.push_str("; data directory changed");
        }
        let mut change = Change::new("register-broker", detail).put_json(keys.broker(broker.id), &broker, Some(lease));
        if !known && !data_dir_id.is_empty() {
            change = change.put_json(keys.data_dir(broker.id), &data_dir_id, None);
        }
        if let Err(e) = self.store.commit(fence, change).await {
            let _ = client.lease_revoke(lease).await;
            return Err(e);
        }
        Ok((lease, warning))
    }

    /// Whether `data-dirs/{id}` already names `data_dir_id`, and the warning
    /// when it names another one: the broker's partitions' data is in that
    /// other directory (a wrong --data-dir, a replaced disk), or the metadata
    /// was restored from another cluster.
    async fn known_data_dir(&self, id: u32, data_dir_id: &str) -> Result<(bool, Option<String>)> {
        if data_dir_id.is_empty() {
            return Ok((true, None));
        }
        let key = self.store.keys().data_dir(id);
        let resp = self
            .store
            .client()
            .get(key.as_str(), None)
            .await
            .counted()
            .map_err(|e| SentinelError::etcd(format!("read {key}"), e))?;
        let Some(kv) = resp.kvs().first() else { return Ok((false, None)) };
        let known: String = serde_json::from_slice(kv.value()).unwrap_or_default();
        if known == data_dir_id {
            return Ok((true, None));
        }
        Ok((
            false,
            Some(format!(
                "the metadata knew broker {id} with data directory {known}, it now has {data_dir_id}: the data of \
                 its partitions is not here (wrong --data-dir? metadata restored into another layout or cluster?). \
                 Partitions it alone held are served empty. A replaced disk is fine: its replicas are copied \
                 from their leaders"
            )),
        ))
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
    use crate::controller::test_support::{partition, view};

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
}
