//! What the assignment stream tells one broker: the partitions assigned to
//! it, and the replicas it must stop serving, each with the evidence for it.
//!
//! A broker deletes a replica's data only on a removal whose reason is
//! evidence about *that* incarnation of the topic: `DELETED` (a tombstone
//! of the incarnation is in etcd, written with the deletion) or `MOVED` (the
//! partition of the same incarnation exists and its replicas exclude the
//! broker: a completed reassignment). A replica the metadata does not know
//! at all (etcd lost its data, or a backup older than the topic was
//! restored) gets `UNKNOWN`: the broker closes it and keeps the data. So
//! no loss of metadata can make a broker delete data.

use std::collections::BTreeMap;

use goulette_proto::v1 as pb;

use crate::model::PartitionRecord;
use crate::view::ClusterView;

/// A partition's state as sent to brokers, with the revision that orders it.
pub fn state_of(view: &ClusterView, p: &PartitionRecord) -> pb::PartitionState {
    let revision = view.partition_revisions.get(&(p.topic.clone(), p.partition)).copied().unwrap_or(0);
    pb::PartitionState { revision: revision as u64, ..p.into() }
}

/// What a broker holds: (topic, partition) → assignment.
pub type Assignments = BTreeMap<(String, u32), pb::PartitionAssignment>;

/// The partitions assigned to `broker`.
pub fn assignments_of(view: &ClusterView, broker: u32) -> Assignments {
    view.partitions
        .values()
        .filter(|p| p.replicas.contains(&broker))
        .filter_map(|p: &PartitionRecord| {
            let topic = view.topics.get(&p.topic)?;
            let incarnation = view.topic_incarnations.get(&p.topic).copied()?;
            let assignment = pb::PartitionAssignment {
                topic: Some(topic.into()),
                state: Some(state_of(view, p)),
                topic_incarnation: incarnation,
            };
            Some(((p.topic.clone(), p.partition), assignment))
        })
        .collect()
}

/// Why `broker` must stop serving its replica of `topic/partition` holding
/// data of `incarnation`, by the evidence `view` holds.
pub fn removal(view: &ClusterView, broker: u32, topic: &str, partition: u32, incarnation: u64) -> pb::Removal {
    let reason = if view.tombstones.contains(&(topic.to_owned(), incarnation)) {
        pb::RemovalReason::Deleted
    } else if view.topic_incarnations.get(topic) == Some(&incarnation)
        && view.partitions.get(&(topic.to_owned(), partition)).is_some_and(|p| !p.replicas.contains(&broker))
    {
        pb::RemovalReason::Moved
    } else {
        pb::RemovalReason::Unknown
    };
    pb::Removal { topic: topic.to_owned(), partition, topic_incarnation: incarnation, reason: reason as i32 }
}

/// The first update of a stream: every assignment (`now`, from
/// [`assignments_of`]), and a removal for each replica the broker says it
/// holds that is not assigned to it (as that incarnation).
pub fn snapshot(
    view: &ClusterView,
    broker: u32,
    now: &Assignments,
    held: &[pb::HeldReplica],
    brokers: Vec<pb::BrokerInfo>,
) -> pb::AssignmentUpdate {
    let removals = held
        .iter()
        .filter(|h| now.get(&(h.topic.clone(), h.partition)).is_none_or(|a| a.topic_incarnation != h.topic_incarnation))
        .map(|h| removal(view, broker, &h.topic, h.partition, h.topic_incarnation))
        .collect();
    pb::AssignmentUpdate {
        metadata_version: view.revision as u64,
        snapshot: true,
        assignments: now.values().cloned().collect(),
        removals,
        brokers,
    }
}

/// The update from what was sent (`before`) to `now`: changed assignments,
/// and a removal for each assignment that went away or whose topic
/// incarnation changed. `None` when nothing changed.
pub fn delta(
    view: &ClusterView,
    broker: u32,
    before: &Assignments,
    now: &Assignments,
    brokers_changed: bool,
    brokers: Vec<pb::BrokerInfo>,
) -> Option<pb::AssignmentUpdate> {
    let assignments: Vec<_> = now.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(_, v)| v.clone()).collect();
    let removals: Vec<_> = before
        .iter()
        .filter(|(k, old)| now.get(*k).is_none_or(|a| a.topic_incarnation != old.topic_incarnation))
        .map(|((topic, partition), old)| removal(view, broker, topic, *partition, old.topic_incarnation))
        .collect();
    (!assignments.is_empty() || !removals.is_empty() || brokers_changed).then_some(pb::AssignmentUpdate {
        metadata_version: view.revision as u64,
        snapshot: false,
        assignments,
        removals,
        brokers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TopicRecord;

    fn view_with(topic: &str, id: u64, replicas: &[u32]) -> ClusterView {
        let mut view = ClusterView::default();
        let record = TopicRecord {
            name: topic.into(),
            partitions: 1,
            replication_factor: replicas.len() as u32,
            retention_ms: 0,
            retention_bytes: 0,
            unclean_leader_election: false,
            min_insync_replicas: 1,
            id,
        };
        view.topics.insert(topic.into(), record);
        view.topic_incarnations.insert(topic.into(), id);
        let p = PartitionRecord {
            topic: topic.into(),
            partition: 0,
            replicas: replicas.to_vec(),
            leader: replicas.first().copied(),
            leader_epoch: 1,
            isr: replicas.to_vec(),
        };
        view.partitions.insert((topic.into(), 0), p);
        view
    }

    fn reason(r: &pb::Removal) -> pb::RemovalReason {
        pb::RemovalReason::try_from(r.reason).unwrap_or(pb::RemovalReason::Unknown)
    }

    #[test]
    fn missing_metadata_is_never_evidence() {
        let empty = ClusterView::default();
        assert_eq!(reason(&removal(&empty, 1, "t", 0, 7)), pb::RemovalReason::Unknown);
        // A topic of the same name with another id says nothing about id 7.
        let other = view_with("t", 8, &[2]);
        assert_eq!(reason(&removal(&other, 1, "t", 0, 7)), pb::RemovalReason::Unknown);
    }

    #[test]
    fn a_tombstone_or_a_completed_move_of_the_same_incarnation_is_evidence() {
        let mut view = view_with("t", 8, &[2]);
        assert_eq!(reason(&removal(&view, 1, "t", 0, 8)), pb::RemovalReason::Moved);
        // Still a replica: no move.
        assert_eq!(reason(&removal(&view, 2, "t", 0, 8)), pb::RemovalReason::Unknown);
        view.tombstones.insert(("t".into(), 7));
        assert_eq!(reason(&removal(&view, 1, "t", 0, 7)), pb::RemovalReason::Deleted);
    }

    #[test]
    fn a_snapshot_removes_held_replicas_not_assigned_as_that_incarnation() {
        let view = view_with("t", 8, &[1]);
        let held = |id| vec![pb::HeldReplica { topic: "t".into(), partition: 0, topic_incarnation: id }];
        assert!(snapshot(&view, 1, &assignments_of(&view, 1), &held(8), vec![]).removals.is_empty());
        let update = snapshot(&view, 1, &assignments_of(&view, 1), &held(7), vec![]);
        assert_eq!(update.removals.len(), 1);
        assert_eq!(reason(&update.removals[0]), pb::RemovalReason::Unknown);
        assert_eq!(update.assignments.len(), 1);
    }

    #[test]
    fn a_delta_after_metadata_vanished_removes_without_evidence() {
        let view = view_with("t", 8, &[1]);
        let before = assignments_of(&view, 1);
        let empty = ClusterView::default();
        let update = delta(&empty, 1, &before, &assignments_of(&empty, 1), false, vec![]).unwrap();
        assert_eq!(update.removals.len(), 1);
        assert_eq!(reason(&update.removals[0]), pb::RemovalReason::Unknown);
        // Deleted and created again: the old incarnation's tombstone is the evidence.
        let mut recreated = view_with("t", 9, &[1]);
        recreated.tombstones.insert(("t".into(), 8));
        let update = delta(&recreated, 1, &before, &assignments_of(&recreated, 1), false, vec![]).unwrap();
        assert_eq!(update.removals.len(), 1);
        assert_eq!(reason(&update.removals[0]), pb::RemovalReason::Deleted);
        assert_eq!(update.removals[0].topic_incarnation, 8);
        assert_eq!(update.assignments[0].topic_incarnation, 9);
        assert!(delta(&view, 1, &before, &before, false, vec![]).is_none());
    }
}
