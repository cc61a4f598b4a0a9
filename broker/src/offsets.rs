//! The offsets coordinator: committed consumer offsets, kept in the
//! replicated internal topic `__offsets`.
//!
//! A group's commits go to partition `hash(group)` of `__offsets` (the
//! client computes it) and are served by that partition's leader. A commit
//! is one batch appended exactly like an `acks=all` produce (leadership,
//! `min_insync_replicas`, durability and replication checks included), so a
//! committed offset survives whatever an acknowledged message survives. The
//! leader keeps the latest offset per (group, topic, partition) in memory
//! and rebuilds it by reading the partition from its start each time it
//! starts a leadership term. `__offsets` is compacted (see `compaction`),
//! so that read covers about one commit per key, however many were made.
//!
//! Record format (one record per committed partition):
//!
//! ```text
//! key    {group} \n {topic} \n {partition}       UTF-8
//! value  offset u64 LE | generation i64 LE | metadata (UTF-8, rest)
//!        null: a tombstone (the group was deleted; written empty before
//!        compaction existed, and still read as one)
//! header leader-epoch  i32 BE, the leader epoch of the committed position
//!        (Kafka commits, v6+); absent when unknown
//! ```
//!
//! Native commits and Kafka-protocol commits (the Kafka group coordinator,
//! `kafka::groups`) are the same records.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use goulette_proto::v1::{self as pb, Acks, ErrorCode};
use goulette_storage::{Batch, BatchBuilder, Compression, Record};
use tokio::sync::Mutex;

use crate::error::{not_leader, storage_error};
use crate::link::SentinelClient;
use crate::partition::{Partitions, Replica};

/// The internal topic holding committed offsets.
pub use goulette_proto::offsets_topic::OFFSETS_TOPIC;

/// The generation of a consumer that is not a group member.
pub const NO_GENERATION: i64 = -1;

/// (group, topic, partition).
type Key = (String, String, u32);

#[derive(Debug, Clone)]
struct Committed {
    offset: u64,
    metadata: String,
    /// The leader epoch of the committed position, when the client said.
    leader_epoch: Option<i32>,
    /// Where the commit is in `__offsets`: a later one wins.
    log_offset: u64,
    /// A tombstone: the group's offset here was deleted.
    deleted: bool,
}

/// What to write for one key: an offset, or a tombstone.
type Entry = (Key, Option<Commit>);

/// One committed position as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub offset: u64,
    pub generation: i64,
    pub metadata: String,
    pub leader_epoch: Option<i32>,
}

/// A committed position as read back: (topic, partition, commit).
pub type CommittedOffset = (String, u32, Commit);

/// The record header carrying a commit's leader epoch.
const LEADER_EPOCH_HEADER: &str = "leader-epoch";

/// The committed offsets of one `__offsets` partition, as of a leadership term.
#[derive(Debug, Default)]
struct PartitionOffsets {
    loaded_epoch: Option<u64>,
    committed: HashMap<Key, Committed>,
}

impl Committed {
    fn tombstone(log_offset: u64) -> Committed {
        Committed { offset: 0, metadata: String::new(), leader_epoch: None, log_offset, deleted: true }
    }
}

impl PartitionOffsets {
    fn apply(&mut self, key: Key, value: Committed) {
        match self.committed.get(&key) {
            Some(old) if old.log_offset > value.log_offset => {}
            _ => {
                self.committed.insert(key, value);
            }
        }
    }
}

/// Serves `CommitOffsets` and `FetchOffsets`.
#[derive(Debug)]
pub struct Coordinator {
    partitions: Arc<Partitions>,
    /// Asked whether a committing member belongs to the current generation.
    sentinels: Arc<SentinelClient>,
    limits: crate::config::ProduceLimits,
    states: std::sync::Mutex<HashMap<u32, Arc<Mutex<PartitionOffsets>>>>,
    /// Per `__offsets` partition: held from a Kafka commit's acceptance to
    /// its append, so that one connection's pipelined commits are appended
    /// in the order they came (the later one must win).
    append_order: std::sync::Mutex<HashMap<u32, Arc<Mutex<()>>>>,
}

/// A commit's place in its partition's append order (see `commit_ticket`).
pub type CommitTicket = tokio::sync::OwnedMutexGuard<()>;

fn error(code: ErrorCode, message: impl Into<String>) -> pb::Error {
    pb::Error::new(code, message)
}

/// Group names follow the topic-name rules (they are part of record keys).
fn check_group(group: &str) -> Result<(), pb::Error> {
    goulette_proto::validate_topic_name(group)
        .map_err(|r| error(ErrorCode::InvalidArgument, format!("group name: {r}")))
}

fn encode_key(group: &str, topic: &str, partition: u32) -> Bytes {
    Bytes::from(format!("{group}\n{topic}\n{partition}"))
}

fn decode_key(key: &[u8]) -> Option<Key> {
    let text = std::str::from_utf8(key).ok()?;
    let mut parts = text.splitn(3, '\n');
    let (group, topic, partition) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
    Some((group.to_owned(), topic.to_owned(), partition))
}

fn encode_value(offset: u64, generation: i64, metadata: &str) -> Bytes {
    let mut v = BytesMut::with_capacity(16 + metadata.len());
    v.put_u64_le(offset);
    v.put_i64_le(generation);
    v.extend_from_slice(metadata.as_bytes());
    v.freeze()
}

fn decode_value(value: &[u8]) -> Option<(u64, String)> {
    let offset = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    let metadata = String::from_utf8_lossy(value.get(16..)?).into_owned();
    Some((offset, metadata))
}

impl Coordinator {
    pub fn new(
        partitions: Arc<Partitions>,
        sentinels: Arc<SentinelClient>,
        limits: crate::config::ProduceLimits,
    ) -> Coordinator {
        Coordinator {
            partitions,
            sentinels,
            limits,
            states: std::sync::Mutex::new(HashMap::new()),
            append_order: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The `__offsets` partition this broker leads, or the error to answer.
    fn led(&self, partition: u32) -> Result<Arc<Replica>, pb::Error> {
        match self.partitions.get(OFFSETS_TOPIC, partition) {
            // Cut off from the sentinels, this broker may have been replaced
            // as leader: its offsets may be stale.
            Some(r) if r.is_leader() && !self.partitions.in_contact() => {
                let mut e = not_leader(OFFSETS_TOPIC, partition, None);
                e.message = format!("{}: no sentinel has confirmed this broker's session", e.message);
                Err(e)
            }
            Some(r) if r.is_leader() => Ok(r),
            Some(r) => Err(not_leader(
                OFFSETS_TOPIC,
                partition,
                r.state().leader.and_then(|l| self.partitions.broker_address(l)),
            )),
            None => Err(not_leader(OFFSETS_TOPIC, partition, None)),
        }
    }

    /// The offsets committed by the groups this broker coordinates now
    /// (`__offsets` partitions it leads, loaded this term), for the metrics.
    /// A partition being loaded or written right now is left out of this
    /// scrape rather than waited for.
    pub fn committed_now(&self) -> Vec<(String, String, u32, u64)> {
        let states: Vec<(u32, Arc<Mutex<PartitionOffsets>>)> =
            self.states.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(p, s)| (*p, s.clone())).collect();
        let mut out = Vec::new();
        for (partition, state) in states {
            let Some(replica) = self.partitions.get(OFFSETS_TOPIC, partition) else { continue };
            let epoch = replica.state().leader_epoch;
            let Ok(guard) = state.try_lock() else { continue };
            if !replica.is_leader() || guard.loaded_epoch != Some(epoch) {
                continue;
            }
            let live = guard.committed.iter().filter(|(_, c)| !c.deleted);
            out.extend(live.map(|((g, t, p), c)| (g.clone(), t.clone(), *p, c.offset)));
        }
        out
    }

    /// The `__offsets` partition this broker leads, with its offsets loaded.
    async fn led_loaded(&self, partition: u32) -> Result<(Arc<Replica>, Arc<Mutex<PartitionOffsets>>), pb::Error> {
        let replica = self.led(partition)?;
        let state = self.loaded(&replica).await?;
        Ok((replica, state))
    }

    /// The state of `partition`, loaded from the log for the current term.
    async fn loaded(&self, replica: &Arc<Replica>) -> Result<Arc<Mutex<PartitionOffsets>>, pb::Error> {
        let state = self.states.lock().unwrap_or_else(|p| p.into_inner()).entry(replica.partition).or_default().clone();
        let epoch = replica.state().leader_epoch;
        let mut guard = state.lock().await;
        if guard.loaded_epoch != Some(epoch) {
            let log = replica.log.clone();
            let read = tokio::task::spawn_blocking(move || -> goulette_storage::Result<Vec<(Key, Committed)>> {
                let mut out = Vec::new();
                let (mut offset, end) = (log.log_start_offset(), log.log_end_offset());
                while offset < end {
                    let batches = log.read(offset, 4 << 20)?;
                    if batches.is_empty() {
                        break;
                    }
                    for bytes in batches {
                        let batch = Batch::parse_sparse(bytes)?;
                        offset = batch.next_offset();
                        for r in batch.records()? {
                            let Some(key) = r.record.key.as_deref().and_then(decode_key) else {
                                continue; // not a commit record
                            };
                            let leader_epoch = r
                                .record
                                .headers
                                .iter()
                                .find(|(name, _)| name == LEADER_EPOCH_HEADER)
                                .and_then(|(_, v)| Some(i32::from_be_bytes(v.as_ref().try_into().ok()?)));
                            let committed = if r.record.value.is_empty() {
                                Committed::tombstone(r.offset)
                            } else {
                                let Some((offset, metadata)) = decode_value(&r.record.value) else { continue };
                                Committed { offset, metadata, leader_epoch, log_offset: r.offset, deleted: false }
                            };
                            out.push((key, committed));
                        }
                    }
                }
                Ok(out)
            })
            .await
            .map_err(|e| error(ErrorCode::Internal, format!("loading offsets failed: {e}")))?
            .map_err(|e| storage_error(&e))?;
            guard.committed.clear();
            for (key, value) in read {
                guard.apply(key, value);
            }
            guard.loaded_epoch = Some(epoch);
            tracing::info!(
                partition = replica.partition,
                epoch,
                entries = guard.committed.len(),
                "loaded committed offsets"
            );
        }
        drop(guard);
        Ok(state)
    }

    /// Appends a commit (as an `acks=all` produce) and records it, in a
    /// task of its own: a client that goes away mid-commit must not leave a
    /// stored commit unrecorded.
    pub async fn commit(self: &Arc<Self>, req: pb::CommitOffsetsRequest) -> pb::CommitOffsetsResponse {
        let me = self.clone();
        match tokio::spawn(async move { me.commit_now(req).await }).await {
            Ok(response) => response,
            Err(e) => {
                pb::CommitOffsetsResponse { error: Some(error(ErrorCode::Internal, format!("commit failed: {e}"))) }
            }
        }
    }

    async fn commit_now(&self, req: pb::CommitOffsetsRequest) -> pb::CommitOffsetsResponse {
        let answer = |e: pb::Error| pb::CommitOffsetsResponse { error: Some(e) };
        let replica = match check_group(&req.group).and_then(|()| self.led(req.offsets_partition)) {
            Ok(r) => r,
            Err(e) => return answer(e),
        };
        let committed: Vec<(&str, u32)> = req.offsets.iter().map(|o| (o.topic.as_str(), o.partition)).collect();
        if req.generation != NO_GENERATION
            && let Err(e) = self.check_member(&req.group, &req.member_id, req.generation, &committed).await
        {
            return answer(e);
        }
        if req.offsets.is_empty() {
            return pb::CommitOffsetsResponse { error: None };
        }
        if let Some(bad) = req.offsets.iter().find(|o| goulette_proto::validate_topic_name(&o.topic).is_err()) {
            return answer(error(ErrorCode::InvalidArgument, format!("bad topic name {:?}", bad.topic)));
        }
        let entries: Vec<Entry> = req
            .offsets
            .into_iter()
            .map(|o| {
                let commit =
                    Commit { offset: o.offset, generation: req.generation, metadata: o.metadata, leader_epoch: None };
                ((req.group.clone(), o.topic, o.partition), Some(commit))
            })
            .collect();
        match self.write(&replica, entries).await {
            Ok(()) => pb::CommitOffsetsResponse { error: None },
            Err(e) => answer(e),
        }
    }

    /// Refuses (`FENCED`) a commit from a member that is not in the group's
    /// current generation — a zombie whose session lapsed, or a member that
    /// has not caught up with a rebalance — or for a partition the member
    /// neither owns nor is assigned in it: a late commit of a partition it
    /// gave up would overwrite the new owner's, and could move the group past
    /// records the new owner has not delivered. (A member whose session lapses
    /// between this check and the append can still land one commit: it
    /// only ever commits offsets it consumed, so nothing is skipped.)
    async fn check_member(
        &self,
        group: &str,
        member: &str,
        generation: i64,
        committed: &[(&str, u32)],
    ) -> Result<(), pb::Error> {
        let described = self
            .sentinels
            .describe_group(group, generation)
            .await
            .map_err(|e| error(ErrorCode::Unavailable, format!("cannot check the group generation: {e}")))?;
        if let Some(e) = described.error {
            return Err(e);
        }
        if described.generation != generation {
            return Err(error(
                ErrorCode::Fenced,
                format!("generation {generation} of group {group} is stale (current: {})", described.generation),
            ));
        }
        let Some(me) = described.members.iter().find(|m| m.member_id == member) else {
            return Err(error(ErrorCode::Fenced, format!("{member:?} is not a member of group {group}")));
        };
        let holds = |topic: &str, partition: u32| {
            me.owned.iter().chain(&me.assigned).any(|tp| tp.topic == topic && tp.partition == partition)
        };
        if let Some((topic, partition)) = committed.iter().find(|(t, p)| !holds(t, *p)) {
            return Err(error(
                ErrorCode::Fenced,
                format!(
                    "{member:?} neither owns nor is assigned {topic}/{partition} in generation {generation} of group {group}"
                ),
            ));
        }
        Ok(())
    }

    /// Appends `entries` to the replica's `__offsets` partition as one
    /// `acks=all` batch and records them once acknowledged.
    async fn write(&self, replica: &Arc<Replica>, entries: Vec<Entry>) -> Result<(), pb::Error> {
        self.write_in_turn(replica, entries, None).await
    }

    /// `write`, releasing `ticket` once the batch is appended (its
    /// durability and replication are awaited after).
    async fn write_in_turn(
        &self,
        replica: &Arc<Replica>,
        entries: Vec<Entry>,
        ticket: Option<CommitTicket>,
    ) -> Result<(), pb::Error> {
        let state = self.loaded(replica).await?;
        let mut builder = BatchBuilder::new(Compression::None);
        let now = goulette_storage::now_ms();
        for ((group, topic, partition), value) in &entries {
            let epoch = value.as_ref().and_then(|c| c.leader_epoch);
            let record = Record {
                timestamp: now,
                key: Some(encode_key(group, topic, *partition)),
                value: value.as_ref().map_or_else(Bytes::new, |c| encode_value(c.offset, c.generation, &c.metadata)),
                headers: epoch
                    .map(|e| (LEADER_EPOCH_HEADER.to_owned(), Bytes::copy_from_slice(&e.to_be_bytes())))
                    .into_iter()
                    .collect(),
            };
            // A deletion is a tombstone (null value), which compaction of
            // `__offsets` removes with the key's older commits.
            match value {
                Some(_) => builder.push(&record),
                None => builder.push_tombstone(&record),
            }
        }
        let batch = builder.build().map_err(|e| storage_error(&e.into()))?;
        let produce = pb::ProduceRequest {
            correlation_id: 0,
            topic: OFFSETS_TOPIC.to_owned(),
            partition: replica.partition,
            acks: Acks::All as i32,
            batch,
            expected_offset: None,
        };
        let (pending, _) = crate::produce::handle(&self.partitions, produce, self.limits).await;
        drop(ticket);
        let base = match pending.await {
            Some(pb::ProduceResponse { error: Some(e), .. }) => return Err(e),
            Some(r) => r.base_offset,
            None => return Err(error(ErrorCode::Internal, "the write got no answer")),
        };
        let mut guard = state.lock().await;
        for (i, (key, value)) in entries.into_iter().enumerate() {
            let log_offset = base + i as u64;
            let committed = match value {
                Some(c) => Committed {
                    offset: c.offset,
                    metadata: c.metadata,
                    leader_epoch: c.leader_epoch,
                    log_offset,
                    deleted: false,
                },
                None => Committed::tombstone(log_offset),
            };
            guard.apply(key, committed);
        }
        Ok(())
    }

    /// The next place in `__offsets` partition `partition`'s append order:
    /// taken when a Kafka commit is accepted (requests on a connection are
    /// accepted one at a time, in order), given up once it is appended.
    pub async fn commit_ticket(&self, partition: u32) -> CommitTicket {
        let order = self.append_order.lock().unwrap_or_else(|p| p.into_inner()).entry(partition).or_default().clone();
        order.lock_owned().await
    }

    /// Stores `commits` of `group` in `__offsets` partition `partition` (led
    /// here) as one `acks=all` batch, in a task of its own, appended when
    /// `ticket` comes up; for the Kafka group coordinator, which checked the
    /// membership.
    pub async fn commit_positions(
        self: &Arc<Self>,
        partition: u32,
        group: &str,
        commits: Vec<CommittedOffset>,
        ticket: CommitTicket,
    ) -> Result<(), pb::Error> {
        let me = self.clone();
        let entries: Vec<Entry> =
            commits.into_iter().map(|(topic, p, commit)| ((group.to_owned(), topic, p), Some(commit))).collect();
        let done = tokio::spawn(async move {
            let replica = me.led(partition)?;
            me.write_in_turn(&replica, entries, Some(ticket)).await
        });
        done.await.unwrap_or_else(|e| Err(error(ErrorCode::Internal, format!("commit failed: {e}"))))
    }

    /// The positions `group` committed, from `__offsets` partition `partition` (led here).
    pub async fn positions(&self, partition: u32, group: &str) -> Result<Vec<CommittedOffset>, pb::Error> {
        let (_, state) = self.led_loaded(partition).await?;
        let guard = state.lock().await;
        let mut out: Vec<CommittedOffset> = guard
            .committed
            .iter()
            .filter(|((g, _, _), c)| !c.deleted && g == group)
            .map(|((_, topic, p), c)| {
                let commit = Commit {
                    offset: c.offset,
                    generation: NO_GENERATION,
                    metadata: c.metadata.clone(),
                    leader_epoch: c.leader_epoch,
                };
                (topic.clone(), *p, commit)
            })
            .collect();
        out.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(out)
    }

    /// The groups with committed offsets in the `__offsets` partitions led here.
    pub async fn groups_here(&self) -> Vec<String> {
        let led: Vec<u32> = self
            .partitions
            .all()
            .into_iter()
            .filter(|r| r.topic == OFFSETS_TOPIC && r.is_leader())
            .map(|r| r.partition)
            .collect();
        let mut out = std::collections::BTreeSet::new();
        for partition in led {
            if let Ok((_, state)) = self.led_loaded(partition).await {
                let guard = state.lock().await;
                out.extend(guard.committed.iter().filter(|(_, c)| !c.deleted).map(|(k, _)| k.0.clone()));
            }
        }
        out.into_iter().collect()
    }

    /// Deletes a group's committed offsets (tombstones), in a task of its own.
    pub async fn delete_group(self: &Arc<Self>, req: pb::DeleteGroupRequest) -> pb::DeleteGroupResponse {
        let me = self.clone();
        let done = tokio::spawn(async move {
            check_group(&req.group)?;
            let (replica, state) = me.led_loaded(req.offsets_partition).await?;
            let keys: Vec<Key> = {
                let guard = state.lock().await;
                guard.committed.iter().filter(|(k, c)| k.0 == req.group && !c.deleted).map(|(k, _)| k.clone()).collect()
            };
            if keys.is_empty() {
                return Ok(());
            }
            me.write(&replica, keys.into_iter().map(|k| (k, None)).collect()).await
        })
        .await;
        let error = match done {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(e) => Some(error(ErrorCode::Internal, format!("delete failed: {e}"))),
        };
        pb::DeleteGroupResponse { error }
    }

    /// The groups with committed offsets in this `__offsets` partition.
    pub async fn list_groups(&self, req: pb::ListGroupsRequest) -> pb::ListGroupsResponse {
        let answer = |e: pb::Error| pb::ListGroupsResponse { error: Some(e), groups: Vec::new() };
        let state = match self.led_loaded(req.offsets_partition).await {
            Ok((_, s)) => s,
            Err(e) => return answer(e),
        };
        let guard = state.lock().await;
        let groups: std::collections::BTreeSet<String> =
            guard.committed.iter().filter(|(_, c)| !c.deleted).map(|(k, _)| k.0.clone()).collect();
        pb::ListGroupsResponse { error: None, groups: groups.into_iter().collect() }
    }

    /// The committed offsets of a group (of one topic, or all).
    pub async fn fetch(&self, req: pb::FetchOffsetsRequest) -> pb::FetchOffsetsResponse {
        let answer = |e: pb::Error| pb::FetchOffsetsResponse { error: Some(e), offsets: Vec::new() };
        if let Err(e) = check_group(&req.group) {
            return answer(e);
        }
        let state = match self.led_loaded(req.offsets_partition).await {
            Ok((_, s)) => s,
            Err(e) => return answer(e),
        };
        let guard = state.lock().await;
        let mut offsets: Vec<pb::TopicPartitionOffset> = guard
            .committed
            .iter()
            .filter(|((group, topic, _), c)| {
                !c.deleted && *group == req.group && (req.topic.is_empty() || *topic == req.topic)
            })
            .map(|((_, topic, partition), c)| pb::TopicPartitionOffset {
                topic: topic.clone(),
                partition: *partition,
                offset: c.offset,
                metadata: c.metadata.clone(),
            })
            .collect();
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        pb::FetchOffsetsResponse { error: None, offsets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip_and_foreign_records_are_ignored() {
        let key = encode_key("g", "orders", 7);
        assert_eq!(decode_key(&key), Some(("g".into(), "orders".into(), 7)));
        assert_eq!(decode_value(&encode_value(42, -1, "meta")), Some((42, "meta".into())));
        assert_eq!(decode_key(b"no newline"), None);
        assert_eq!(decode_value(b"short"), None);
    }

    #[test]
    fn a_later_commit_wins_whatever_order_it_is_applied_in() {
        let mut p = PartitionOffsets::default();
        let key = ("g".to_string(), "t".to_string(), 0);
        let at = |offset, log_offset| Committed {
            offset,
            metadata: String::new(),
            leader_epoch: None,
            log_offset,
            deleted: false,
        };
        p.apply(key.clone(), at(9, 5));
        p.apply(key.clone(), at(3, 2));
        assert_eq!(p.committed[&key].offset, 9);
    }
}
