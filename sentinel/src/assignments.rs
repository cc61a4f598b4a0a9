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
//!
//! [`AssignmentStream`] is the diff a stream runs on each view: a snapshot
//! first, then what changed since the last update sent. It does no I/O;
//! the gRPC handler (`service/internal.rs`) feeds it views and sends what it
//! returns.

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

/// One broker's assignment stream: what it has sent, and so what to send
/// next. An assignment is sent again whenever any of its fields differs
/// from what was sent (leader, epoch, ISR, replicas, the partition's
/// revision, the topic's config or incarnation).
#[derive(Debug)]
pub struct AssignmentStream {
    broker: u32,
    /// The replicas the broker said it holds when it opened the stream.
    held: Vec<pb::HeldReplica>,
    /// The assignments and broker list last sent; `None` before the snapshot.
    sent: Option<(Assignments, Vec<pb::BrokerInfo>)>,
}

impl AssignmentStream {
    /// A stream for `broker`, which holds `held`.
    pub fn new(broker: u32, held: Vec<pb::HeldReplica>) -> AssignmentStream {
        AssignmentStream { broker, held, sent: None }
    }

    /// The update to send for `view`, whose broker list is `brokers`: the
    /// [`snapshot`] first, then a [`delta`] when the broker's assignments
    /// or removals or the broker list changed (`None`: nothing to send).
    /// Either way, what `view` assigns counts as sent from now on.
    pub fn next(&mut self, view: &ClusterView, brokers: Vec<pb::BrokerInfo>) -> Option<pb::AssignmentUpdate> {
        let now = assignments_of(view, self.broker);
        let update = match &self.sent {
            None => Some(snapshot(view, self.broker, &now, &self.held, brokers.clone())),
            Some((before, sent_brokers)) => {
                delta(view, self.broker, before, &now, brokers != *sent_brokers, brokers.clone())
            }
        };
        self.sent = Some((now, brokers));
        update
    }
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
            ..TopicRecord::default()
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

    /// `view` with another topic `name` (id `id`), one partition on `replicas`.
    fn with_topic(mut view: ClusterView, name: &str, id: u64, replicas: &[u32]) -> ClusterView {
        let other = view_with(name, id, replicas);
        view.topics.extend(other.topics);
        view.topic_incarnations.extend(other.topic_incarnations);
        view.partitions.extend(other.partitions);
        view
    }

    fn broker_info(id: u32) -> pb::BrokerInfo {
        pb::BrokerInfo { id, address: format!("127.0.0.1:{}", 9000 + id), ..Default::default() }
    }

    fn partitions_of(update: &pb::AssignmentUpdate) -> Vec<(String, u32)> {
        update.assignments.iter().filter_map(|a| a.state.as_ref()).map(|s| (s.topic.clone(), s.partition)).collect()
    }

    /// A stream that has sent its snapshot of `view`.
    fn started(view: &ClusterView) -> AssignmentStream {
        let mut stream = AssignmentStream::new(1, vec![]);
        assert!(stream.next(view, vec![broker_info(1)]).is_some_and(|u| u.snapshot));
        stream
    }

    #[test]
    fn a_stream_starts_with_a_snapshot_of_every_assignment_and_each_held_replica_not_assigned() {
        let view = with_topic(view_with("t", 8, &[1, 2]), "u", 9, &[2]);
        let held = vec![
            pb::HeldReplica { topic: "t".into(), partition: 0, topic_incarnation: 8 },
            pb::HeldReplica { topic: "u".into(), partition: 0, topic_incarnation: 9 },
        ];
        let mut stream = AssignmentStream::new(1, held);
        let update = stream.next(&view, vec![broker_info(1), broker_info(2)]).unwrap();
        assert!(update.snapshot);
        assert_eq!(update.metadata_version, view.revision as u64);
        assert_eq!(partitions_of(&update), vec![("t".to_owned(), 0)]);
        assert_eq!(update.removals.len(), 1);
        assert_eq!((update.removals[0].topic.as_str(), reason(&update.removals[0])), ("u", pb::RemovalReason::Moved));
        assert_eq!(update.brokers.len(), 2);
        // Even an empty snapshot is sent: it tells the broker it holds nothing.
        let mut empty = AssignmentStream::new(3, vec![]);
        assert!(empty.next(&view, vec![]).is_some_and(|u| u.snapshot && u.assignments.is_empty()));
    }

    #[test]
    fn an_unchanged_view_or_a_change_to_other_brokers_partitions_sends_nothing() {
        let view = view_with("t", 8, &[1]);
        let mut stream = started(&view);
        assert_eq!(stream.next(&view, vec![broker_info(1)]), None);
        let mut elsewhere = with_topic(view.clone(), "u", 9, &[2]);
        elsewhere.revision += 1;
        assert_eq!(stream.next(&elsewhere, vec![broker_info(1)]), None);
    }

    #[test]
    fn a_new_assignment_is_sent_alone() {
        let view = view_with("t", 8, &[1]);
        let mut stream = started(&view);
        let more = with_topic(view.clone(), "u", 9, &[2, 1]);
        let update = stream.next(&more, vec![broker_info(1)]).unwrap();
        assert!(!update.snapshot);
        assert_eq!(partitions_of(&update), vec![("u".to_owned(), 0)]);
        assert!(update.removals.is_empty());
        // Sent once.
        assert_eq!(stream.next(&more, vec![broker_info(1)]), None);
    }

    #[test]
    fn a_replica_moved_away_is_removed_with_its_evidence() {
        let view = with_topic(view_with("t", 8, &[1]), "u", 9, &[1]);
        let mut stream = started(&view);
        let mut moved = view.clone();
        moved.partitions.get_mut(&("u".to_owned(), 0)).unwrap().replicas = vec![2];
        let update = stream.next(&moved, vec![broker_info(1)]).unwrap();
        assert!(update.assignments.is_empty());
        assert_eq!(update.removals.len(), 1);
        assert_eq!((update.removals[0].topic.as_str(), update.removals[0].topic_incarnation), ("u", 9));
        assert_eq!(reason(&update.removals[0]), pb::RemovalReason::Moved);
        assert_eq!(stream.next(&moved, vec![broker_info(1)]), None);
    }

    #[test]
    fn a_new_leader_epoch_isr_or_revision_resends_the_assignment() {
        let view = with_topic(view_with("t", 8, &[1, 2]), "u", 9, &[1]);
        let mut stream = started(&view);
        let state = |u: &pb::AssignmentUpdate| u.assignments[0].state.clone().unwrap();

        let mut failover = view.clone();
        let p = failover.partitions.get_mut(&("t".to_owned(), 0)).unwrap();
        p.leader = Some(2);
        p.leader_epoch = 2;
        let update = stream.next(&failover, vec![broker_info(1)]).unwrap();
        assert_eq!(partitions_of(&update), vec![("t".to_owned(), 0)], "only the changed partition");
        assert_eq!((state(&update).leader, state(&update).leader_epoch), (Some(2), 2));
        assert!(update.removals.is_empty());

        let mut shrunk = failover.clone();
        shrunk.partitions.get_mut(&("t".to_owned(), 0)).unwrap().isr = vec![2];
        let update = stream.next(&shrunk, vec![broker_info(1)]).unwrap();
        assert_eq!(state(&update).isr, vec![2]);

        // Brokers order states by revision: the same record rewritten is news too.
        let mut rewritten = shrunk.clone();
        rewritten.partition_revisions.insert(("t".to_owned(), 0), 42);
        let update = stream.next(&rewritten, vec![broker_info(1)]).unwrap();
        assert_eq!(state(&update).revision, 42);
        assert_eq!(stream.next(&rewritten, vec![broker_info(1)]), None);
    }

    #[test]
    fn a_topic_created_again_removes_the_old_incarnation_and_assigns_the_new() {
        let view = view_with("t", 8, &[1]);
        let mut stream = started(&view);
        let mut recreated = view_with("t", 9, &[1]);
        recreated.tombstones.insert(("t".into(), 8));
        let update = stream.next(&recreated, vec![broker_info(1)]).unwrap();
        assert_eq!(update.assignments[0].topic_incarnation, 9);
        assert_eq!(
            (update.removals[0].topic_incarnation, reason(&update.removals[0])),
            (8, pb::RemovalReason::Deleted)
        );
    }

    #[test]
    fn a_changed_broker_list_alone_is_sent() {
        let view = view_with("t", 8, &[1]);
        let mut stream = started(&view);
        let update = stream.next(&view, vec![broker_info(1), broker_info(2)]).unwrap();
        assert!(update.assignments.is_empty() && update.removals.is_empty());
        assert_eq!(update.brokers.len(), 2);
        assert_eq!(stream.next(&view, vec![broker_info(1), broker_info(2)]), None);
        let mut moved = broker_info(2);
        moved.address = "127.0.0.1:1".into();
        assert!(stream.next(&view, vec![broker_info(1), moved]).is_some());
    }
}
