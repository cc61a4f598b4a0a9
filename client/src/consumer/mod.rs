//! `Consumer`: reads partitions of one topic in offset order.
//!
//! One task per partition keeps a fetch stream open to the partition's
//! leader, granting credit (`window_bytes`) as delivered records are taken,
//! so at most one window per partition is buffered. Records of a partition
//! are delivered in offset order; a broken stream or a leader change
//! reconnects and resumes at the next offset not yet delivered.
//!
//! Files: this one (settings, `Consumer`, delivery and commits) and
//! `fetcher` (one partition's fetch stream: connect, credit, reconnect).
//!
//! With [`ConsumerConfig::membership`] the consumer is a member of its
//! group: it reads only the partitions the group assigns to it, and on each
//! new assignment commits (with auto-commit) and stops the partitions it
//! lost before starting the ones it gained at their committed offsets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_proto::v1::ErrorCode;
use tokio::sync::{mpsc, watch};

mod fetcher;

use fetcher::Fetcher;

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use crate::membership::{Assignment, GroupOptions, Membership};

/// Where a consumer starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The log start (oldest retained record).
    Beginning,
    /// The high watermark: only records produced from now on.
    End,
    /// This offset (clamped into the readable range).
    Offset(u64),
    /// The first record at or after this timestamp (ms).
    Timestamp(i64),
    /// The last N records (fewer when the partition holds fewer).
    Last(u64),
}

impl StartAt {
    /// The timestamp to ask `ListOffsets` for, if this start needs one.
    pub fn timestamp(&self) -> Option<i64> {
        match self {
            StartAt::Timestamp(ts) => Some(*ts),
            _ => None,
        }
    }

    /// The offset this start means in a partition with these offsets
    /// (asked with [`StartAt::timestamp`]).
    pub fn resolve(&self, offsets: &goulette_proto::v1::ListOffsetsResponse) -> u64 {
        let (start, end) = (offsets.log_start_offset, offsets.high_watermark);
        match *self {
            StartAt::Beginning => start,
            StartAt::End => end,
            StartAt::Offset(o) => o.clamp(start, end),
            StartAt::Timestamp(_) => offsets.timestamp_offset.unwrap_or(end),
            StartAt::Last(n) => end.saturating_sub(n).max(start),
        }
    }
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Partitions to read; all when `None`.
    pub partitions: Option<Vec<u32>>,
    pub start: StartAt,
    /// Bytes each partition may have fetched but not yet delivered.
    pub window_bytes: u64,
    /// Upper bound of one fetch response.
    pub max_bytes: u32,
    /// Resume each partition at the offset this group committed (`start`
    /// applies to partitions it has not committed), and commit with
    /// [`Consumer::commit`].
    pub group: Option<String>,
    /// With a group: commit what was delivered so far at most this often,
    /// when the next record is asked for (at-least-once), and before giving
    /// up a partition in a rebalance.
    pub auto_commit: Option<Duration>,
    /// Join `group` and read only the partitions it assigns to this
    /// consumer (`partitions` must then be `None`). Without it a consumer
    /// with a group reads the partitions it was told and only commits.
    pub membership: Option<GroupOptions>,
    /// Only records carrying one of these tags (`TagA || TagB`; `*` or
    /// `None`: every record), filtered by the broker: the others are not
    /// sent, and committed positions still move past them
    /// (`docs/tags.md`). A group refuses a member whose filter differs
    /// from its other members'.
    pub tag_filter: Option<String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            partitions: None,
            start: StartAt::End,
            window_bytes: 4 << 20,
            max_bytes: 1 << 20,
            group: None,
            auto_commit: None,
            membership: None,
            tag_filter: None,
        }
    }
}

/// A record as delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Shared by the records of a consumer (no allocation per record).
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// The value is null (`value` is empty): on a compacted topic, a
    /// tombstone deleting the key.
    pub tombstone: bool,
}

/// What fetch tasks send: the partition, the run of its fetcher the item
/// comes from (records of a partition given up and taken back later are
/// told apart by it), and the event.
type Item = (u32, u64, Event);

#[derive(Debug)]
enum Event {
    /// The fetcher starts at this offset (before any record): the position
    /// to commit if the partition is given up before a record arrives.
    Started(u64),
    /// The records of one batch, in offset order: one channel send per
    /// batch, not per record (a send per record cost more than the rest of
    /// the delivery at 600k records/s).
    Records(std::vec::IntoIter<ConsumedRecord>),
    /// The broker's tag filter left out the records up to here (after
    /// those delivered before): the position moves past them.
    Skipped(u64),
    /// An error that stopped the partition.
    Failed(ClientError),
}

/// A partition being read.
#[derive(Debug)]
struct Running {
    task: tokio::task::JoinHandle<()>,
    run: u64,
}

/// Reads a topic.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use goulette_client::{Cluster, Consumer, ConsumerConfig, GroupOptions, StartAt};
///
/// # async fn run() -> goulette_client::Result<()> {
/// let cluster = Arc::new(Cluster::new(vec!["127.0.0.1:50052".into()])?);
/// // A member of group `billing`: it reads the partitions the group assigns
/// // to it and commits what it was given every second.
/// let config = ConsumerConfig {
///     start: StartAt::Beginning,
///     group: Some("billing".into()),
///     auto_commit: Some(Duration::from_secs(1)),
///     membership: Some(GroupOptions::default()),
///     ..ConsumerConfig::default()
/// };
/// let mut consumer = Consumer::subscribe(cluster, "orders", config).await?;
/// while let Some(record) = consumer.recv().await {
///     let record = record?;
///     println!("{}@{}: {:?}", record.partition, record.offset, record.value);
/// }
/// consumer.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Consumer {
    records: mpsc::Receiver<Item>,
    /// The rest of the batch being delivered: partition, run, records.
    delivering: Option<(u32, u64, std::vec::IntoIter<ConsumedRecord>)>,
    /// Kept only with membership, to start fetchers for gained partitions
    /// (without it, the channel closes once every partition stopped).
    sender: Option<mpsc::Sender<Item>>,
    fetchers: BTreeMap<u32, Running>,
    runs: u64,
    cluster: Arc<Cluster>,
    topic: String,
    config: ConsumerConfig,
    membership: Option<Membership>,
    assignment: Option<watch::Receiver<Assignment>>,
    /// The assignment the fetchers follow.
    applied: Option<Assignment>,
    /// Partitions given up whose position is not committed yet: still
    /// reported fetched (so nobody else is granted them) until it is.
    releasing: BTreeMap<u32, u64>,
    /// When to try again to commit `releasing` or start gained partitions.
    retry_at: Option<tokio::time::Instant>,
    /// The generation this consumer acts in (-1: none).
    generation: i64,
    member_id: String,
    /// Per partition, the offset after the last record delivered.
    positions: BTreeMap<u32, u64>,
    /// What was last committed (or found committed).
    committed: BTreeMap<u32, u64>,
    last_commit: tokio::time::Instant,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        for r in self.fetchers.values() {
            r.task.abort();
        }
    }
}

impl Consumer {
    /// Starts reading `topic` through `cluster`.
    pub async fn subscribe(cluster: Arc<Cluster>, topic: &str, config: ConsumerConfig) -> Result<Consumer> {
        goulette_proto::validate_topic_name(topic).map_err(ClientError::InvalidArgument)?;
        // Normalized, for the group to compare members' filters.
        let tag_filter = match config.tag_filter.as_deref().map(goulette_batch::TagFilter::parse).transpose() {
            Ok(None | Some(goulette_batch::TagFilter::All)) => String::new(),
            Ok(Some(filter)) => filter.to_string(),
            Err(why) => return Err(ClientError::InvalidArgument(why)),
        };
        // Batches: at most this many buffered (with 256 KiB batches, 8 MiB).
        let (tx, records) = mpsc::channel(32);
        let mut consumer = Consumer {
            records,
            delivering: None,
            sender: Some(tx),
            fetchers: BTreeMap::new(),
            runs: 0,
            cluster: cluster.clone(),
            topic: topic.to_owned(),
            config: config.clone(),
            membership: None,
            assignment: None,
            applied: None,
            releasing: BTreeMap::new(),
            retry_at: None,
            generation: crate::offsets::NO_GENERATION,
            member_id: String::new(),
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_commit: tokio::time::Instant::now(),
        };
        if let Some(options) = &config.membership {
            let Some(group) = &config.group else {
                return Err(ClientError::InvalidArgument("group membership needs a group".into()));
            };
            if config.partitions.is_some() {
                return Err(ClientError::InvalidArgument("a group member is assigned its partitions".into()));
            }
            goulette_proto::validate_topic_name(group)
                .map_err(|r| ClientError::InvalidArgument(format!("group name: {r}")))?;
            let membership = Membership::start(cluster, group, topic, options.clone(), tag_filter);
            consumer.assignment = Some(membership.assignment());
            consumer.membership = Some(membership);
            return Ok(consumer);
        }
        let info = cluster.topic(topic, false).await?;
        let all: Vec<u32> = info.partitions.iter().map(|p| p.partition).collect();
        let partitions = match &config.partitions {
            Some(chosen) => {
                if let Some(bad) = chosen.iter().find(|p| !all.contains(p)) {
                    return Err(ClientError::InvalidArgument(format!("topic {topic} has no partition {bad}")));
                }
                chosen.clone()
            }
            None => all,
        };
        consumer.start(partitions).await?;
        consumer.sender = None;
        Ok(consumer)
    }

    /// Starts fetchers for `partitions`, at the group's committed offsets
    /// where it has some.
    async fn start(&mut self, partitions: Vec<u32>) -> Result<()> {
        let committed = match &self.config.group {
            Some(group) => crate::offsets::fetch(&self.cluster, group, &self.topic).await?,
            None => BTreeMap::new(),
        };
        let Some(tx) = &self.sender else { return Err(ClientError::Closed) };
        for p in partitions {
            self.runs += 1;
            let fetcher = Fetcher {
                cluster: self.cluster.clone(),
                topic: Arc::from(self.topic.as_str()),
                partition: p,
                run: self.runs,
                config: self.config.clone(),
                committed: committed.get(&p).copied(),
                out: tx.clone(),
            };
            self.fetchers.insert(p, Running { task: tokio::spawn(fetcher.run()), run: self.runs });
            match committed.get(&p) {
                Some(&o) => {
                    self.positions.insert(p, o);
                    self.committed.insert(p, o);
                }
                None => {
                    self.positions.remove(&p);
                    self.committed.remove(&p);
                }
            }
        }
        Ok(())
    }

    /// Follows the group's assignment, in steps that each leave a
    /// consistent state (a `recv` cancelled half-way resumes on the next
    /// call): stop the partitions lost, commit their positions (with
    /// auto-commit; until that succeeds they stay reported as fetched, so the
    /// next owner starts where this one stopped), start the partitions
    /// gained, and report what is fetched.
    async fn follow(&mut self) {
        let Some(membership) = &self.membership else { return };
        let assignment = membership.claim();
        if !self.member_id.is_empty() && assignment.member_id != self.member_id {
            // A new session (the old one lapsed): whatever the old member
            // held is someone else's now; nothing of it may be committed.
            for (_, r) in std::mem::take(&mut self.fetchers) {
                r.task.abort();
            }
            self.releasing.clear();
            self.positions.clear();
            self.committed.clear();
        }
        // The new generation is what commits carry from now on.
        self.generation = assignment.generation;
        self.member_id = assignment.member_id.clone();
        let lost: Vec<u32> = self.fetchers.keys().filter(|p| !assignment.partitions.contains(p)).copied().collect();
        for p in &lost {
            if let Some(r) = self.fetchers.remove(p) {
                r.task.abort();
            }
            let position = self.positions.remove(p);
            let committed = self.committed.remove(p);
            if let Some(position) = position
                && committed != Some(position)
                && self.config.auto_commit.is_some()
            {
                self.releasing.insert(*p, position);
            }
        }
        if !lost.is_empty() {
            tracing::info!(topic = %self.topic, partitions = ?lost, generation = self.generation, "gave up partitions");
        }
        if self.generation < 0 {
            self.releasing.clear(); // no session: the commit would be refused
        }
        let mut retry = false;
        if !self.releasing.is_empty() {
            match self.commit_offsets(&self.releasing).await {
                Ok(()) => self.releasing.clear(),
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "commit before giving up partitions failed; will retry");
                    retry = true;
                }
            }
        }
        // A partition given back before its release was committed waits for it.
        let gained: Vec<u32> = assignment
            .partitions
            .iter()
            .filter(|p| !self.fetchers.contains_key(p) && !self.releasing.contains_key(p))
            .copied()
            .collect();
        if !gained.is_empty() {
            match self.start(gained.clone()).await {
                Ok(()) => {
                    tracing::info!(topic = %self.topic, partitions = ?gained, generation = self.generation, "took partitions")
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "starting assigned partitions failed; will retry");
                    retry = true;
                }
            }
        }
        if let Some(m) = &self.membership {
            m.fetching_changed(self.fetchers.keys().chain(self.releasing.keys()).copied().collect());
        }
        self.applied = Some(assignment);
        self.retry_at = retry.then(|| tokio::time::Instant::now() + Duration::from_millis(500));
    }

    /// Commits the positions of the partitions being released.
    /// Commits `offsets` for the group, as this member (with its
    /// generation) or outside membership; a `FENCED` answer makes the
    /// member heartbeat at once to learn the new generation.
    async fn commit_offsets(&self, offsets: &BTreeMap<u32, u64>) -> Result<()> {
        let Some(group) = &self.config.group else {
            return Err(ClientError::InvalidArgument("commit needs a consumer group".into()));
        };
        let member = self.membership.as_ref().map(|_| (self.member_id.as_str(), self.generation));
        let done = crate::offsets::commit(&self.cluster, group, &self.topic, offsets, member).await;
        if let (Err(ClientError::Server { code: ErrorCode::Fenced, .. }), Some(m)) = (&done, &self.membership) {
            m.refresh();
        }
        done
    }

    /// True when the fetchers do not follow the published assignment yet,
    /// or a step failed and its retry is due.
    fn assignment_moved(&self) -> bool {
        let Some(a) = &self.assignment else { return false };
        match self.retry_at {
            Some(t) => t <= tokio::time::Instant::now(),
            None => self.applied.as_ref() != Some(&*a.borrow()),
        }
    }

    /// The next record (from any partition; each partition in order), or an
    /// error that stopped a partition. `None` once every partition stopped
    /// (never for a group member: its assignment may grow). With a group
    /// and `auto_commit`, commits what earlier calls delivered every
    /// interval, also while it waits for a record (a failed auto-commit is
    /// logged and tried again at the next interval).
    pub async fn recv(&mut self) -> Option<Result<ConsumedRecord>> {
        loop {
            if self.auto_commit_due().is_some_and(|at| at <= tokio::time::Instant::now())
                && let Err(e) = self.commit().await
            {
                tracing::warn!(topic = %self.topic, error = %e, "auto-commit failed; will retry");
            }
            // The group refused this member for good (a mismatched strategy).
            if let Some(failure) = self.membership.as_ref().and_then(Membership::failure) {
                return Some(Err(failure));
            }
            // Before each record, as before batches were handed over whole:
            // a revocation is answered at once, and the rest of a revoked
            // partition's batch is dropped.
            if self.assignment_moved() {
                self.follow().await;
            }
            if let Some(record) = self.next_delivering() {
                return Some(Ok(record));
            }
            let retry = self.retry_at;
            let commit_at = self.auto_commit_due();
            let wake = |at: Option<tokio::time::Instant>| {
                tokio::time::sleep_until(at.unwrap_or_else(tokio::time::Instant::now))
            };
            let item = match self.assignment.as_mut() {
                Some(assignment) => tokio::select! {
                    item = self.records.recv() => Some(item),
                    changed = assignment.changed() => match changed {
                        Ok(()) => None,
                        Err(_) => return Some(Err(ClientError::Closed)),
                    },
                    _ = wake(retry), if retry.is_some() => None,
                    _ = wake(commit_at), if commit_at.is_some() => None,
                },
                None => tokio::select! {
                    item = self.records.recv() => Some(item),
                    _ = wake(commit_at), if commit_at.is_some() => None,
                },
            };
            let Some(item) = item else { continue };
            let (partition, run, event) = item?;
            if self.fetchers.get(&partition).map(|r| r.run) != Some(run) {
                continue; // from a partition given up since
            }
            match event {
                Event::Started(offset) => {
                    self.positions.insert(partition, offset);
                }
                Event::Records(records) => self.delivering = Some((partition, run, records)),
                Event::Skipped(next) => {
                    let position = self.positions.entry(partition).or_insert(next);
                    *position = (*position).max(next);
                }
                Event::Failed(error) => return Some(Err(error)),
            }
        }
    }

    /// Whether `recv` has a record to return without waiting for the
    /// network (the rest of a batch, or a batch already fetched): a caller
    /// that buffers its output flushes it when this is false, so that what
    /// it delivered is seen at once, one flush per batch at most.
    pub fn has_buffered(&self) -> bool {
        self.delivering.as_ref().is_some_and(|(_, _, records)| records.len() > 0) || !self.records.is_empty()
    }

    /// When the next auto-commit is due (`None` without a group or
    /// auto-commit).
    fn auto_commit_due(&self) -> Option<tokio::time::Instant> {
        let every = self.config.auto_commit.filter(|_| self.config.group.is_some())?;
        Some(self.last_commit + every)
    }

    /// The next record of the batch being delivered, unless its partition
    /// was given up since (its fetcher's run ended): then the rest is dropped.
    fn next_delivering(&mut self) -> Option<ConsumedRecord> {
        let (partition, run, records) = self.delivering.as_mut()?;
        let record = if self.fetchers.get(partition).map(|r| r.run) == Some(*run) { records.next() } else { None };
        match &record {
            Some(r) => {
                self.positions.insert(r.partition, r.offset + 1);
            }
            None => self.delivering = None,
        }
        record
    }

    /// Commits, for this consumer's group, the offset after the last record
    /// delivered in each partition. Call it once those records are handled
    /// (at-least-once). An error without a group, and `FENCED` for a member
    /// whose generation is stale (it catches up on its next heartbeat).
    pub async fn commit(&mut self) -> Result<()> {
        if self.config.group.is_none() {
            return Err(ClientError::InvalidArgument("commit needs a consumer group".into()));
        }
        self.last_commit = tokio::time::Instant::now();
        let changed: BTreeMap<u32, u64> =
            self.positions.iter().filter(|(p, o)| self.committed.get(p) != Some(o)).map(|(p, o)| (*p, *o)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        if self.membership.is_some() && self.generation < 0 {
            return Err(ClientError::Server {
                code: ErrorCode::Fenced,
                message: "not a member of the group's current generation yet".into(),
            });
        }
        self.commit_offsets(&changed).await?;
        self.committed.extend(changed);
        Ok(())
    }

    /// Per partition, the offset after the last record delivered.
    pub fn positions(&self) -> &BTreeMap<u32, u64> {
        &self.positions
    }

    /// The partitions being read.
    pub fn partitions(&self) -> Vec<u32> {
        self.fetchers.keys().copied().collect()
    }

    /// A group member's generation (-1 outside membership or before the first).
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// Stops reading; a group member commits (with auto-commit) and leaves
    /// its group, so the others take its partitions over at once.
    pub async fn close(mut self) -> Result<()> {
        let mut committed = Ok(());
        for _ in 0..3 {
            let member_now = self.membership.is_none() || self.generation >= 0;
            if self.config.group.is_none() || self.config.auto_commit.is_none() || !member_now {
                break;
            }
            committed = match self.commit().await {
                Ok(()) if !self.releasing.is_empty() => self.commit_offsets(&self.releasing).await,
                other => other,
            };
            // A rebalance this member has not followed yet: catch up, retry.
            match (&committed, self.assignment.as_mut()) {
                (Err(ClientError::Server { code: ErrorCode::Fenced, .. }), Some(assignment)) => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), assignment.changed()).await;
                    self.follow().await;
                }
                _ => break,
            }
        }
        for r in self.fetchers.values() {
            r.task.abort();
        }
        if let Some(m) = self.membership.take() {
            m.close().await;
        }
        committed
    }
}
