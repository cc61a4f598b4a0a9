//! Moving replicas when the ring changes: which brokers are eligible to hold
//! replicas, and the next step of a partition's move towards the ring's
//! placement.
//!
//! A move has two steps, each one etcd write:
//! 1. **Add**: the brokers the ring now wants are appended to the replica
//!    list. They start as followers and copy the whole log from the leader
//!    (sealed fragments included, through the ordinary fetch path); the
//!    leader adds each to the ISR once it has caught up.
//! 2. **Finish**: once every wanted broker is in the ISR, the replica list
//!    becomes exactly the wanted one and the ISR keeps only wanted brokers.
//!    If the leader is not wanted, the first live wanted broker leads at a
//!    new epoch. The brokers left out are told to remove (and delete) the replica.
//!
//! So a partition never has fewer in-sync copies than before the move, and
//! nothing acknowledged depends on a replica that is being removed.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::model::PartitionRecord;
use crate::ring::Ring;

/// Partitions at most in step 1 at once, so that a broker joining a large
/// cluster does not start copying every partition at the same moment.
pub const MAX_MOVES_IN_FLIGHT: usize = 32;

/// Which brokers may hold replicas: those seen live within
/// `replica_reassign_after`, minus the decommissioned ones.
///
/// "Last seen" lives in the sentinel leader's memory; a new leader starts
/// every known broker's clock afresh, which can only delay a reassignment.
#[derive(Debug, Default)]
pub struct Membership {
    last_seen: HashMap<u32, Instant>,
}

impl Membership {
    /// Forgets everything (a new leadership term starts the clocks afresh).
    pub fn reset(&mut self) {
        self.last_seen.clear();
    }

    /// Updates the clocks with the brokers `live` now and the brokers
    /// `holding` replicas, and returns the eligible brokers.
    pub fn eligible(
        &mut self,
        now: Instant,
        live: impl IntoIterator<Item = u32>,
        holding: impl IntoIterator<Item = u32>,
        decommissioned: &BTreeSet<u32>,
        reassign_after: Duration,
    ) -> BTreeSet<u32> {
        for b in live {
            self.last_seen.insert(b, now);
        }
        let holding: BTreeSet<u32> = holding.into_iter().collect();
        for b in &holding {
            self.last_seen.entry(*b).or_insert(now);
        }
        // Brokers gone too long and holding nothing are forgotten.
        self.last_seen.retain(|b, seen| now.duration_since(*seen) < reassign_after || holding.contains(b));
        self.last_seen
            .iter()
            .filter(|(b, seen)| now.duration_since(**seen) < reassign_after && !decommissioned.contains(b))
            .map(|(b, _)| *b)
            .collect()
    }
}

/// Where the ring wants `p`'s replicas among `eligible` brokers, or `None`
/// when there are too few eligible brokers for its replication factor.
pub fn wanted(ring: &Ring, p: &PartitionRecord, replication_factor: usize) -> Option<Vec<u32>> {
    let wanted = ring.replicas(&p.topic, p.partition, replication_factor);
    (wanted.len() == replication_factor).then_some(wanted)
}

/// The next state of `p` on its way to `wanted`, or `None` when it is
/// there, cannot move now (no leader to copy from) or waits for catch-up.
/// `may_start` says whether a new move (step 1) may begin.
pub fn next_step(
    p: &PartitionRecord,
    wanted: &[u32],
    may_start: bool,
    live: impl Fn(u32) -> bool,
) -> Option<(PartitionRecord, Step)> {
    let leader = p.leader?;
    let missing: Vec<u32> = wanted.iter().copied().filter(|b| !p.replicas.contains(b)).collect();
    if !missing.is_empty() {
        // A move under way (more replicas than wanted) may always add.
        let moving = p.replicas.len() > wanted.len();
        if !may_start && !moving {
            return None;
        }
        let mut replicas = p.replicas.clone();
        replicas.extend(&missing);
        return Some((PartitionRecord { replicas, ..p.clone() }, Step::Add(missing)));
    }
    if p.replicas.len() == wanted.len() {
        return None; // already placed as wanted (order aside)
    }
    if !wanted.iter().all(|b| p.isr.contains(b)) {
        return None; // the new replicas are still catching up
    }
    let removed: Vec<u32> = p.replicas.iter().copied().filter(|b| !wanted.contains(b)).collect();
    let isr: Vec<u32> = wanted.iter().copied().filter(|b| p.isr.contains(b)).collect();
    let (leader, leader_epoch) = if wanted.contains(&leader) {
        (leader, p.leader_epoch)
    } else {
        // The first wanted broker that is alive takes over; none alive: wait.
        (wanted.iter().copied().find(|b| live(*b))?, p.leader_epoch + 1)
    };
    let next = PartitionRecord { replicas: wanted.to_vec(), isr, leader: Some(leader), leader_epoch, ..p.clone() };
    Some((next, Step::Finish(removed)))
}

/// What a step did, for the op log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// These brokers were added as catching-up replicas.
    Add(Vec<u32>),
    /// These brokers no longer hold the partition.
    Finish(Vec<u32>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: u32) -> bool {
        true
    }

    fn partition(replicas: &[u32], leader: Option<u32>, isr: &[u32]) -> PartitionRecord {
        PartitionRecord {
            topic: "t".into(),
            partition: 0,
            replicas: replicas.to_vec(),
            leader,
            leader_epoch: 5,
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn a_partition_placed_as_wanted_stays() {
        assert_eq!(next_step(&partition(&[1, 2, 3], Some(1), &[1, 2, 3]), &[2, 3, 1], true, all), None);
    }

    #[test]
    fn a_move_first_adds_the_wanted_brokers_as_replicas() {
        let p = partition(&[1, 2, 3], Some(1), &[1, 2, 3]);
        let (next, step) = next_step(&p, &[1, 2, 4], true, all).unwrap();
        assert_eq!(step, Step::Add(vec![4]));
        assert_eq!(next.replicas, vec![1, 2, 3, 4]);
        assert_eq!((next.isr, next.leader, next.leader_epoch), (p.isr, p.leader, p.leader_epoch));
    }

    #[test]
    fn a_new_move_waits_for_room_but_a_move_under_way_goes_on() {
        let p = partition(&[1, 2, 3], Some(1), &[1, 2, 3]);
        assert_eq!(next_step(&p, &[1, 2, 4], false, all), None);
        let moving = partition(&[1, 2, 3, 4], Some(1), &[1, 2, 3]);
        assert_eq!(next_step(&moving, &[1, 2, 5], false, all).unwrap().1, Step::Add(vec![5]));
    }

    #[test]
    fn a_move_finishes_only_once_the_new_replicas_are_in_sync() {
        let p = partition(&[1, 2, 3, 4], Some(1), &[1, 2, 3]);
        assert_eq!(next_step(&p, &[1, 2, 4], true, all), None);
        let caught_up = partition(&[1, 2, 3, 4], Some(1), &[1, 2, 3, 4]);
        let (next, step) = next_step(&caught_up, &[1, 2, 4], true, all).unwrap();
        assert_eq!(step, Step::Finish(vec![3]));
        assert_eq!((next.replicas, next.isr), (vec![1, 2, 4], vec![1, 2, 4]));
        assert_eq!((next.leader, next.leader_epoch), (Some(1), 5));
    }

    #[test]
    fn a_leader_moved_away_hands_over_to_the_first_live_wanted_broker_at_a_new_epoch() {
        let p = partition(&[1, 2, 3, 4], Some(1), &[1, 2, 3, 4]);
        let (next, _) = next_step(&p, &[4, 2, 3], true, all).unwrap();
        assert_eq!((next.leader, next.leader_epoch, next.replicas), (Some(4), 6, vec![4, 2, 3]));
        let (next, _) = next_step(&p, &[4, 2, 3], true, |b| b != 4).unwrap();
        assert_eq!(next.leader, Some(2));
        assert_eq!(next_step(&p, &[4, 2, 3], true, |b| b == 1), None, "no wanted broker alive: wait");
    }

    #[test]
    fn an_offline_partition_does_not_move() {
        assert_eq!(next_step(&partition(&[1, 2, 3], None, &[1, 2, 3]), &[1, 2, 4], true, all), None);
    }

    #[test]
    fn brokers_gone_longer_than_the_reassign_delay_and_decommissioned_ones_are_not_eligible() {
        let mut m = Membership::default();
        let t0 = Instant::now();
        let after = Duration::from_secs(10);
        let none = BTreeSet::new();
        assert_eq!(m.eligible(t0, [1, 2, 3], [1, 2, 3], &none, after), BTreeSet::from([1, 2, 3]));
        // 3 goes down: still eligible within the delay, not after it.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(m.eligible(t1, [1, 2], [1, 2, 3], &none, after), BTreeSet::from([1, 2, 3]));
        let t2 = t0 + Duration::from_secs(11);
        assert_eq!(m.eligible(t2, [1, 2], [1, 2, 3], &none, after), BTreeSet::from([1, 2]));
        // A replica holder first seen by a new leader gets a fresh clock.
        m.reset();
        assert_eq!(m.eligible(t2, [1, 2], [1, 2, 3], &none, after), BTreeSet::from([1, 2, 3]));
        assert_eq!(m.eligible(t2, [1, 2, 3], [], &BTreeSet::from([2]), after), BTreeSet::from([1, 3]));
    }
}
