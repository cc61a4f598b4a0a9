//! Partition leadership and ISR: ISR changes asked by partition leaders,
//! a new leader (or offline) for each partition whose leader is gone, and
//! replica moves towards the ring's placement. Each change is one
//! compare-and-swap of the partition's record.

use std::time::Instant;

use super::Controller;
use crate::error::{Result, SentinelError};
use crate::model::PartitionRecord;
use crate::placement::{self, Step};
use crate::ring::Ring;
use crate::store::{Change, Fence};
use crate::view::ClusterView;

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

impl Controller {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::test_support::{partition, view};
    use crate::model::TopicRecord;

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
                ..TopicRecord::default()
            },
        );
        let next = elect(&partition(Some(1), &[1]), &v).unwrap();
        assert_eq!((next.leader, next.isr), (Some(2), vec![2]));
    }
}
