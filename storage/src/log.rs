//! `PartitionLog`: one partition's ordered, durable log.
//!
//! On disk, a partition directory holds sealed fragments
//! `{base:020}.frag` (+ `.index`) and one active WAL `{base:020}.wal`; each
//! file's name is the offset of its first record, and each file starts where
//! the previous one ends. Offsets are assigned here, never change and are
//! never reused: retention only moves the log start forward.
//!
//! Concurrency: one mutex guards the file set and the WAL's write position;
//! it is held for the `writev` of an append but never for an fdatasync or a
//! read's I/O. With `FlushPolicy::Always`, appenders wait on a condition
//! variable for the durable offset to pass their batch; the first waiter
//! with no fdatasync in flight runs one for everybody (group commit), so N
//! concurrent appenders share about one fdatasync per round.
//!
//! Crash protocol of the multi-file steps:
//! - seal: fdatasync WAL → rename `.wal` to `.frag` → write `.index`
//!   (tmp, fsync, rename) → create the next `.wal` (tmp, fsync, rename) →
//!   fsync the directory. A crash leaves a fragment without index (rebuilt)
//!   or without a following WAL (created).
//! - truncation into a fragment `b`: write the kept prefix of `b` as
//!   `{b}.wal` (tmp, fsync, rename, fsync dir) — the commit point — then
//!   delete `{b}.frag` and every file after it. Recovery completes an
//!   interrupted truncation: every fragment at or after the lowest WAL, and
//!   every other WAL, is deleted.
//! - retention: unlink the oldest `.frag` then its `.index`, fsync dir.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::batch::Batch;
use crate::config::{FlushPolicy, LogConfig};
use crate::crashsafe::{self, TMP_SUFFIX};
use crate::epochs::{EPOCHS_FILE, EpochHistory};
use crate::error::{IoContext, Result, StorageError};
use crate::fragment::{FRAGMENT_SUFFIX, Fragment, INDEX_SUFFIX, file_name};
use crate::frame::{self, FILE_HEADER_LEN};
use crate::producers::{Decision, ProducerStates, SNAPSHOT_SUFFIX};
use crate::read::{Gathered, ReadRange};
use crate::wal::{WAL_SUFFIX, Wal};

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Offset after its last record (the new log end).
    pub next_offset: u64,
    /// The batch's largest timestamp.
    pub max_timestamp: i64,
}

/// An append written but perhaps not yet durable (see
/// [`PartitionLog::append_deferred`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a deferred append must be waited for before it is acknowledged"]
pub struct PendingAppend {
    /// Where the batch landed.
    pub info: AppendInfo,
    /// The batch was a producer's retry of one already stored at `info`:
    /// nothing was appended.
    pub duplicate: bool,
    /// The WAL nears its seal, whose fdatasync would hold up every append
    /// while it runs: calling [`PartitionLog::presync`] now, off the append
    /// path, leaves that fdatasync little to write. Set once per WAL.
    pub presync_due: bool,
    generation: u64,
}

/// Whether a log accepts work.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    Open,
    /// A write, fsync, seal, truncation or reset failed: after a failed
    /// fsync the kernel may have dropped dirty pages, and after a failed
    /// multi-file step the file set in memory may not match the directory,
    /// so nothing more is accepted. Reopening the log recovers it (and
    /// completes an interrupted seal or truncation).
    Failed(String),
    /// Closed by [`PartitionLog::close`].
    Closed,
}

/// The partition log. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    inner: Mutex<Inner>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    epoch: Instant,
}

#[derive(Debug)]
struct Inner {
    /// Sealed fragments, oldest first, each starting where the previous ends.
    fragments: Vec<Arc<Fragment>>,
    wal: Wal,
    /// Whether the log accepts work (see [`Health`]).
    health: Health,
    /// Wall-clock ms of the last explicit flush (for `FlushPolicy::Interval`).
    last_flush_ms: i64,
    /// Where each leader epoch starts (persisted in `leader-epochs`).
    epochs: EpochHistory,
    /// Recent batches of idempotent producers.
    producers: ProducerStates,
    /// Offsets of the producer-state snapshots on disk.
    snapshots: BTreeSet<u64>,
    /// The CRC of the last batch in the log (named by snapshots).
    last_crc: u32,
    /// Batches appended since the log was opened (fdatasync statistics).
    appended_batches: u64,
    /// The base offset of the WAL whose presync was asked for.
    presync_asked: Option<u64>,
}

#[derive(Debug)]
struct SyncState {
    /// Every offset below this is on stable storage.
    durable: u64,
    /// An fdatasync is running on behalf of all waiters.
    syncing: bool,
    /// Bumped by every truncation. An fdatasync that started before a
    /// truncation must not raise `durable` (the offsets it covered may since
    /// have been rewritten), and an appender whose batch was truncated away
    /// must not be told it is durable.
    generation: u64,
    /// `appended_batches` when the last fdatasync started.
    synced_batches: u64,
}

/// How far before its seal a WAL asks for a presync: at the disk's ~0.6
/// GB/s, 16 MiB is written back in about 30 ms, before the seal comes at
/// any rate below ~0.5 GB/s.
const PRESYNC_MARGIN: u64 = 16 << 20;

/// Whether `batch` would overflow the WAL's offsets: index entries hold
/// offsets relative to the file's base as u32 (the WAL is sealed first).
fn offsets_full(inner: &Inner, batch: &Batch) -> bool {
    let wal = &inner.wal.index;
    wal.next_offset - wal.base_offset + u64::from(batch.record_count()) > u64::from(u32::MAX)
}

/// Whether `leader_epoch` is new to the log: its history records it (and
/// fsyncs) before the epoch's first batch.
fn starts_epoch(inner: &Inner, leader_epoch: u32) -> bool {
    inner.epochs.latest().is_none_or(|latest| leader_epoch > latest)
}

/// A duration in milliseconds, saturating instead of wrapping (a "forever"
/// retention must not turn negative and delete everything).
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub use goulette_batch::now_ms;

/// A file name of the partition directory, parsed.
fn parse_name(name: &str) -> Option<(u64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir` and recovers it: completes
    /// an interrupted truncation, checks every fragment's index (rebuilding
    /// it if needed), checks that the files are contiguous, and scans the WAL,
    /// truncating a torn tail.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<PartitionLog> {
        config.validate()?;
        let dir = dir.into();
        if !dir.exists() {
            std::fs::create_dir_all(&dir).context(|| format!("create partition directory {}", dir.display()))?;
            if let Some(parent) = dir.parent() {
                crashsafe::fsync_dir(parent)?;
            }
        }
        let epoch = Instant::now();
        let interval = config.index_interval_bytes;

        let mut wals = BTreeSet::new();
        let mut frags = BTreeSet::new();
        let mut indexes = BTreeSet::new();
        let mut snapshots = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).context(|| format!("list {}", dir.display()))? {
            let entry = entry.context(|| format!("list {}", dir.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(TMP_SUFFIX) {
                crashsafe::remove_if_exists(&entry.path())?;
                continue;
            }
            if name == EPOCHS_FILE || name == crate::identity::IDENTITY_FILE {
                continue;
            }
            match parse_name(name) {
                Some((base, WAL_SUFFIX)) => wals.insert(base),
                Some((base, FRAGMENT_SUFFIX)) => frags.insert(base),
                Some((base, INDEX_SUFFIX)) => indexes.insert(base),
                Some((offset, SNAPSHOT_SUFFIX)) => snapshots.insert(offset),
                _ => {
                    tracing::warn!(dir = %dir.display(), file = name, "ignoring unexpected file in partition directory");
                    false
                }
            };
        }

        let mut changed = false;
        if let Some(&lowest_wal) = wals.first() {
            // Only a WAL with a sound header may decide what else is deleted.
            frame::check_file_header_of(&dir.join(file_name(lowest_wal, WAL_SUFFIX)), lowest_wal)?;
            let stale_frags: Vec<u64> = frags.range(lowest_wal..).copied().collect();
            let stale_wals: Vec<u64> = wals.iter().skip(1).copied().collect();
            if !stale_frags.is_empty() || !stale_wals.is_empty() {
                tracing::warn!(dir = %dir.display(), wal = lowest_wal, "completing an interrupted truncation");
            }
            for base in stale_frags {
                crashsafe::remove_if_exists(&dir.join(file_name(base, FRAGMENT_SUFFIX)))?;
                frags.remove(&base);
                changed = true;
            }
            for base in stale_wals {
                crashsafe::remove_if_exists(&dir.join(file_name(base, WAL_SUFFIX)))?;
                wals.remove(&base);
                changed = true;
            }
        }
        for base in indexes.difference(&frags) {
            crashsafe::remove_if_exists(&dir.join(file_name(*base, INDEX_SUFFIX)))?;
            changed = true;
        }
        if changed {
            crashsafe::fsync_dir(&dir)?;
        }

        let mut fragments: Vec<Arc<Fragment>> = Vec::with_capacity(frags.len());
        for &base in &frags {
            let fragment = Fragment::open(&dir, base, interval, epoch)?;
            if let Some(prev) = fragments.last()
                && prev.next_offset != base
            {
                return Err(StorageError::corruption(
                    &fragment.path,
                    0,
                    format!("previous fragment ends at offset {}, this one starts at {base}", prev.next_offset),
                ));
            }
            fragments.push(Arc::new(fragment));
        }

        let expected_wal_base = fragments.last().map_or(0, |f| f.next_offset);
        let wal = match wals.first() {
            Some(&base) if fragments.is_empty() || base == expected_wal_base => Wal::open(&dir, base, interval)?,
            Some(&base) => {
                return Err(StorageError::corruption(
                    dir.join(file_name(base, WAL_SUFFIX)),
                    0,
                    format!("WAL starts at offset {base}, the last fragment ends at {expected_wal_base}"),
                ));
            }
            None => {
                let wal = Wal::create(&dir, expected_wal_base, interval)?;
                crashsafe::fsync_dir(&dir)?;
                wal
            }
        };
        // After a process crash the recovered WAL may hold bytes that are
        // still only in the page cache: make them durable before anything is
        // reported as such.
        wal.sync()?;
        let durable = wal.index.next_offset;
        tracing::debug!(
            dir = %dir.display(),
            fragments = fragments.len(),
            log_start = fragments.first().map_or(wal.index.base_offset, |f| f.base_offset),
            log_end = durable,
            "opened partition log"
        );
        let log = PartitionLog {
            dir,
            config,
            inner: Mutex::new(Inner {
                fragments,
                wal,
                health: Health::Open,
                last_flush_ms: now_ms(),
                epochs: EpochHistory::default(),
                producers: ProducerStates::default(),
                snapshots,
                last_crc: 0,
                appended_batches: 0,
                presync_asked: None,
            }),
            sync: Mutex::new(SyncState { durable, syncing: false, generation: 0, synced_batches: 0 }),
            synced: Condvar::new(),
            epoch,
        };
        log.recover_epochs()?;
        log.recover_producers()?;
        Ok(log)
    }

    /// Loads the leader-epoch history (rebuilding it from the batch headers
    /// when missing or damaged) and fits it to the recovered log.
    fn recover_epochs(&self) -> Result<()> {
        let (mut history, rebuilt) = match EpochHistory::load(&self.dir)? {
            Some(h) => (h, false),
            None => (self.scan_epochs()?, true),
        };
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let trimmed = history.truncate_from_end(end) | history.truncate_from_start(start);
        if rebuilt || trimmed {
            history.store(&self.dir)?;
        }
        self.lock().epochs = history;
        Ok(())
    }

    /// Rebuilds the idempotent producers' state: the newest snapshot that
    /// decodes and still matches the log (the batch ending where it ends has
    /// the CRC it names), plus the batches after it; or else the last
    /// fragment and the WAL (see `producers`). Snapshots past the log end
    /// (left by an interrupted truncation) are deleted.
    fn recover_producers(&self) -> Result<()> {
        let (log_start, end, fallback, candidates) = {
            let mut inner = self.lock();
            let log_start = inner.fragments.first().map_or(inner.wal.index.base_offset, |f| f.base_offset);
            let end = inner.wal.index.next_offset;
            self.drop_snapshots_from(&mut inner, end + 1)?;
            let fallback = inner.fragments.last().map_or(inner.wal.index.base_offset, |f| f.base_offset);
            // A snapshot at the log start has no batch left to check it by.
            let candidates: Vec<u64> = inner.snapshots.range(log_start + 1..).rev().copied().collect();
            (log_start, end, fallback, candidates)
        };
        let mut states = ProducerStates::default();
        let mut offset = fallback;
        for snapshot in candidates {
            let path = self.dir.join(file_name(snapshot, SNAPSHOT_SUFFIX));
            let loaded = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| ProducerStates::decode(&b))
                .and_then(|(loaded, covered, crc)| {
                    let ends_there = self.batch_ending_at(snapshot).map_err(|e| e.to_string())?;
                    match ends_there {
                        Some(last) if covered == snapshot && last == crc => Ok(loaded),
                        _ => Err("it does not match the log (the log was truncated after it)".into()),
                    }
                });
            match loaded {
                Ok(loaded) => {
                    states = loaded;
                    offset = snapshot;
                    break;
                }
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring a producer-state snapshot"),
            }
        }
        while offset < end {
            let batches = self.read(offset, 16 << 20)?;
            if batches.is_empty() {
                break;
            }
            for bytes in batches {
                let batch = Batch::parse(bytes).map_err(|e| {
                    StorageError::corruption(&self.dir, offset, format!("while rebuilding producers: {e}"))
                })?;
                if let Some(info) = batch.producer() {
                    states.record(&info, batch.record_count(), batch.base_offset(), batch.next_offset());
                }
                offset = batch.next_offset();
            }
        }
        // Retention may have deleted what a snapshot remembers.
        states.expire_before(log_start);
        let last_crc = if end > log_start { self.batch_ending_at(end)?.unwrap_or(0) } else { 0 };
        let mut inner = self.lock();
        inner.producers = states;
        inner.last_crc = last_crc;
        Ok(())
    }

    /// The CRC of the batch that ends exactly at `offset`, if one does.
    fn batch_ending_at(&self, offset: u64) -> Result<Option<u32>> {
        let Some(bytes) = self.read(offset - 1, 1)?.into_iter().next() else { return Ok(None) };
        let batch = Batch::parse(bytes)?;
        Ok((batch.next_offset() == offset).then(|| batch.crc()))
    }

    /// The epoch history as the batch headers of the whole log tell it.
    fn scan_epochs(&self) -> Result<EpochHistory> {
        let mut history = EpochHistory::default();
        let (mut offset, end) = (self.log_start_offset(), self.log_end_offset());
        while offset < end {
            let batches = self.read(offset, 16 << 20)?;
            let Some(last) = batches.last() else { break };
            for bytes in &batches {
                let batch = Batch::parse(bytes.clone()).map_err(|e| {
                    StorageError::corruption(&self.dir, offset, format!("while rebuilding epochs: {e}"))
                })?;
                history.assign(batch.partition_leader_epoch(), batch.base_offset());
            }
            offset = Batch::parse(last.clone())
                .map_err(|e| StorageError::corruption(&self.dir, offset, e.to_string()))?
                .next_offset();
        }
        tracing::info!(dir = %self.dir.display(), epochs = history.entries().len(), "rebuilt leader-epoch history");
        Ok(history)
    }

    /// `(epoch, start_offset)` of every leader epoch the log holds, oldest first.
    pub fn epoch_history(&self) -> Vec<(u32, u64)> {
        self.lock().epochs.entries().to_vec()
    }

    /// Where `epoch` ends in this log (see [`EpochHistory::end_offset_for`]):
    /// what a leader tells a follower that asks where to truncate.
    pub fn end_offset_for_epoch(&self, epoch: u32) -> Option<(u32, u64)> {
        let inner = self.lock();
        inner.epochs.end_offset_for(epoch, inner.wal.index.next_offset)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_sync(&self) -> MutexGuard<'_, SyncState> {
        self.sync.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First offset still held.
    pub fn log_start_offset(&self) -> u64 {
        let inner = self.lock();
        inner.fragments.first().map_or(inner.wal.index.base_offset, |f| f.base_offset)
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> u64 {
        self.lock().wal.index.next_offset
    }

    /// Every offset below this is on stable storage (as far as fdatasync can
    /// tell). Under `FlushPolicy::Always` it is the log end whenever no append
    /// is in flight; under `Interval` and `Never` it trails behind.
    pub fn durable_offset(&self) -> u64 {
        self.lock_sync().durable
    }

    /// Bytes held on disk (fragments and WAL).
    pub fn size_bytes(&self) -> u64 {
        let inner = self.lock();
        inner.fragments.iter().map(|f| f.len).sum::<u64>() + inner.wal.len()
    }

    /// Number of sealed fragments.
    pub fn fragment_count(&self) -> usize {
        self.lock().fragments.len()
    }

    /// Number of fragments currently mapped.
    pub fn mapped_fragment_count(&self) -> usize {
        self.lock().fragments.iter().filter(|f| f.is_mapped()).count()
    }

    fn check_open(&self, inner: &Inner) -> Result<()> {
        match &inner.health {
            Health::Open => Ok(()),
            Health::Failed(reason) => Err(StorageError::Closed { dir: self.dir.clone(), reason: reason.clone() }),
            Health::Closed => Err(StorageError::Closed { dir: self.dir.clone(), reason: "closed".into() }),
        }
    }

    /// Appends a batch as partition leader: assigns its offsets (from the log
    /// end) and stamps `leader_epoch`. Under `FlushPolicy::Always` it returns
    /// once the batch is on stable storage.
    pub fn append(&self, batch: &Batch, leader_epoch: u32) -> Result<AppendInfo> {
        let pending = self.append_deferred(batch, leader_epoch)?;
        self.wait_durable_for(&pending)?;
        Ok(pending.info)
    }

    /// Writes a batch like [`PartitionLog::append`] but returns before its
    /// fdatasync: the caller pipelines further appends (in order, from one
    /// thread or task) and waits for each with
    /// [`PartitionLog::wait_durable_for`], so that many appends share one
    /// fdatasync. Nothing appended may be acknowledged before that wait.
    pub fn append_deferred(&self, batch: &Batch, leader_epoch: u32) -> Result<PendingAppend> {
        self.append_at(batch, None, leader_epoch)
    }

    /// [`PartitionLog::append_deferred`] when the append needs nothing but
    /// its write into the page cache; otherwise `None` and nothing is done:
    /// the log is busy (another append, a seal, a flush's bookkeeping), the
    /// batch starts a new leader epoch (whose history is fsynced first), or
    /// the WAL is due for sealing. A caller on an async executor appends
    /// small batches inline this way and hands the rest to a blocking thread
    /// (where a seal may wait on the disk). A seal that this append makes due
    /// happens at the next blocking append or [`PartitionLog::maintain`].
    pub fn try_append_deferred(&self, batch: &Batch, leader_epoch: u32) -> Option<Result<PendingAppend>> {
        if let Err(e) = self.check_size(batch) {
            return Some(Err(e));
        }
        let mut inner = match self.inner.try_lock() {
            Ok(inner) => inner,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let now = now_ms();
        if offsets_full(&inner, batch) || starts_epoch(&inner, leader_epoch) || self.seal_due(&inner, now) {
            return None;
        }
        Some(self.append_locked(&mut inner, batch, None, leader_epoch, now, false))
    }

    /// Writes the WAL's data to stable storage without holding up appends
    /// (see [`PendingAppend::presync_due`]); what it covered counts as durable.
    pub fn presync(&self) -> Result<()> {
        self.sync_wal()
    }

    /// Appends a batch copied from the partition leader, keeping its offsets
    /// and leader epoch. Its base offset must be the log end offset.
    pub fn append_replicated(&self, batch: &Batch) -> Result<AppendInfo> {
        let pending = self.append_replicated_deferred(batch)?;
        self.wait_durable_for(&pending)?;
        Ok(pending.info)
    }

    /// [`PartitionLog::append_replicated`] without waiting for durability: a
    /// follower appends a whole fetch response and waits once, for its last
    /// batch, with [`PartitionLog::wait_durable_for`].
    pub fn append_replicated_deferred(&self, batch: &Batch) -> Result<PendingAppend> {
        self.append_at(batch, Some(batch.base_offset()), batch.partition_leader_epoch())
    }

    /// Blocks until a deferred append is durable under the flush policy
    /// (a no-op unless it is `Always`); `Truncated` if a truncation removed it.
    pub fn wait_durable_for(&self, pending: &PendingAppend) -> Result<()> {
        if self.config.flush == FlushPolicy::Always {
            self.wait_durable(pending.info.base_offset, pending.info.next_offset, pending.generation)?;
        }
        Ok(())
    }

    /// Whether a deferred append is durable under the flush policy, without
    /// waiting (always, unless it is `Always`): for callers that wait on
    /// their own, running [`PartitionLog::sync_round`] until it is.
    /// `Truncated` if a truncation removed it; the log's error if it failed.
    pub fn is_durable(&self, pending: &PendingAppend) -> Result<bool> {
        if self.config.flush != FlushPolicy::Always {
            return Ok(true);
        }
        let PendingAppend { info, generation, .. } = pending;
        if self.durable_past(info.base_offset, info.next_offset, *generation)? {
            return Ok(true);
        }
        self.check_open(&self.lock())?;
        Ok(false)
    }

    /// One round of group commit: an fdatasync covering everything appended
    /// so far, or, when one is already running, the end of that one (which
    /// may not cover the latest appends: check [`PartitionLog::is_durable`]).
    pub fn sync_round(&self) -> Result<()> {
        let mut state = self.lock_sync();
        if state.syncing {
            while state.syncing {
                state = self.synced.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            return Ok(());
        }
        state.syncing = true;
        drop(state);
        let result = self.sync_wal();
        self.lock_sync().syncing = false;
        self.synced.notify_all();
        result
    }

    fn check_size(&self, batch: &Batch) -> Result<()> {
        if batch.len() > self.config.max_batch_bytes {
            return Err(StorageError::BatchTooLarge { size: batch.len(), max: self.config.max_batch_bytes });
        }
        Ok(())
    }

    fn append_at(&self, batch: &Batch, expected_base: Option<u64>, leader_epoch: u32) -> Result<PendingAppend> {
        self.check_size(batch)?;
        let now = now_ms();
        let mut inner = self.lock();
        self.append_locked(&mut inner, batch, expected_base, leader_epoch, now, true)
    }

    /// The append itself, under the log's lock; seals after it when the WAL
    /// is due and `may_seal`.
    fn append_locked(
        &self,
        inner: &mut Inner,
        batch: &Batch,
        expected_base: Option<u64>,
        leader_epoch: u32,
        now: i64,
        may_seal: bool,
    ) -> Result<PendingAppend> {
        let producer = batch.producer();
        let (info, generation, presync_due) = {
            self.check_open(inner)?;
            // A leader checks an idempotent producer's sequence (a follower
            // copies what its leader decided).
            if expected_base.is_none()
                && let Some(p) = &producer
            {
                let duplicate = |base_offset, next_offset| AppendInfo {
                    base_offset,
                    next_offset,
                    max_timestamp: batch.max_timestamp(),
                };
                match inner.producers.check(p, batch.record_count()) {
                    Decision::Append => {}
                    Decision::Duplicate { base_offset, next_offset } => {
                        let generation = self.lock_sync().generation;
                        let info = duplicate(base_offset, next_offset);
                        return Ok(PendingAppend { info, duplicate: true, presync_due: false, generation });
                    }
                    Decision::DuplicateUnknown => {
                        return Err(StorageError::DuplicateSequence {
                            producer_id: p.producer_id,
                            sequence: p.base_sequence,
                        });
                    }
                    Decision::OutOfOrder { expected } => {
                        return Err(StorageError::OutOfOrderSequence {
                            producer_id: p.producer_id,
                            expected,
                            got: p.base_sequence,
                        });
                    }
                    Decision::Fenced { current } => {
                        return Err(StorageError::ProducerFenced {
                            producer_id: p.producer_id,
                            epoch: p.producer_epoch,
                            current,
                        });
                    }
                }
            }
            if offsets_full(inner, batch) {
                self.seal(inner)?;
            }
            let base = inner.wal.index.next_offset;
            if let Some(expected) = expected_base
                && expected != base
            {
                return Err(StorageError::invalid_batch(format!(
                    "replicated batch starts at offset {expected}, the log ends at {base}"
                )));
            }
            // Write-ahead: the history learns of a new epoch before its
            // first batch is in the log.
            if starts_epoch(inner, leader_epoch) {
                let mut epochs = inner.epochs.clone();
                epochs.assign(leader_epoch, base);
                epochs.store(&self.dir)?;
                inner.epochs = epochs;
            }
            let info = match inner.wal.append(batch, base, leader_epoch, now) {
                Ok(info) => info,
                // Out of space: the write was cut back, but so will the next
                // be; failing the log lets its owner move the leadership to
                // a replica that can write, and reopen it when space returns.
                Err(e) if matches!(e, StorageError::Closed { .. }) || e.is_out_of_space() => {
                    inner.health = Health::Failed(e.to_string());
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            if let Some(p) = &producer {
                inner.producers.record(p, batch.record_count(), base, info.next_offset);
            }
            inner.last_crc = batch.crc();
            inner.appended_batches += 1;
            if may_seal && self.seal_due(inner, now) {
                self.seal(inner)?;
            }
            let presync_due = self.presync_due(inner);
            let generation = self.lock_sync().generation;
            (
                AppendInfo { base_offset: base, next_offset: info.next_offset, max_timestamp: info.max_timestamp },
                generation,
                presync_due,
            )
        };
        Ok(PendingAppend { info, duplicate: false, presync_due, generation })
    }

    /// Whether the WAL has come within `PRESYNC_MARGIN` of its seal, for the
    /// first time. Under `FlushPolicy::Always` the WAL is kept synced anyway.
    fn presync_due(&self, inner: &mut Inner) -> bool {
        let wal = &inner.wal;
        let near = wal.len() + PRESYNC_MARGIN.min(self.config.fragment_bytes / 4) >= self.config.fragment_bytes;
        if self.config.flush == FlushPolicy::Always || !near || inner.presync_asked == Some(wal.index.base_offset) {
            return false;
        }
        inner.presync_asked = Some(wal.index.base_offset);
        true
    }

    fn seal_due(&self, inner: &Inner, now_ms: i64) -> bool {
        let wal = &inner.wal;
        let too_old =
            wal.first_append_ms.is_some_and(|t| now_ms.saturating_sub(t) >= millis(self.config.fragment_max_age));
        !wal.is_empty() && (wal.len() >= self.config.fragment_bytes || too_old)
    }

    /// Waits until every offset below `target` is durable, running the
    /// fdatasync itself when no other waiter is. Fails with `Truncated` when a
    /// truncation (generation change) overtook the wait for the batch at `base`.
    fn wait_durable(&self, base: u64, target: u64, generation: u64) -> Result<()> {
        while !self.durable_past(base, target, generation)? {
            self.sync_round()?;
        }
        Ok(())
    }

    /// Whether every offset below `target` is durable; `Truncated` when a
    /// truncation (generation change) overtook the batch at `base`.
    fn durable_past(&self, base: u64, target: u64, generation: u64) -> Result<bool> {
        let state = self.lock_sync();
        if state.generation != generation {
            return Err(StorageError::Truncated { base_offset: base });
        }
        Ok(state.durable >= target)
    }

    /// One fdatasync of the WAL, covering everything written before it
    /// started; records the new durable offset, or fails the log.
    fn sync_wal(&self) -> Result<()> {
        let (file, upto, path, generation, batches) = {
            let inner = self.lock();
            self.check_open(&inner)?;
            let mut state = self.lock_sync();
            let batches = inner.appended_batches.saturating_sub(state.synced_batches);
            state.synced_batches = inner.appended_batches;
            (inner.wal.file.clone(), inner.wal.index.next_offset, inner.wal.path.clone(), state.generation, batches)
        };
        let started = Instant::now();
        match file.sync_data() {
            Ok(()) => {
                crate::observe::fdatasync(started.elapsed(), batches);
                let mut state = self.lock_sync();
                if state.generation == generation {
                    state.durable = state.durable.max(upto);
                }
                Ok(())
            }
            Err(e) => {
                let err = StorageError::io(format!("fdatasync WAL {}", path.display()), e);
                tracing::error!(error = %err, "fsync failed; the partition log stops accepting writes");
                self.lock().health = Health::Failed(err.to_string());
                Err(err)
            }
        }
    }

    /// Makes everything appended so far durable.
    pub fn flush(&self) -> Result<()> {
        let (target, generation) = {
            let inner = self.lock();
            (inner.wal.index.next_offset, self.lock_sync().generation)
        };
        self.wait_durable(target, target, generation)?;
        self.lock().last_flush_ms = now_ms();
        Ok(())
    }

    /// Seals the WAL into a fragment (see the crash protocol above). Any
    /// failure after the rename fails the log: its in-memory file set no
    /// longer matches the directory, and a reopen recovers it.
    fn seal(&self, inner: &mut Inner) -> Result<()> {
        if inner.wal.is_empty() {
            return Ok(());
        }
        if let Err(e) = inner.wal.sync() {
            inner.health = Health::Failed(e.to_string());
            return Err(e);
        }
        let result = (|| {
            let index = inner.wal.index.clone();
            let fragment = Fragment::sealed(&self.dir, &index, self.config.index_interval_bytes, self.epoch);
            std::fs::rename(&inner.wal.path, &fragment.path)
                .context(|| format!("rename {} to {}", inner.wal.path.display(), fragment.path.display()))?;
            crashsafe::write_atomic_no_dir_sync(&fragment.index_path, &[&index.encode()])?;
            let wal = Wal::create(&self.dir, index.next_offset, self.config.index_interval_bytes)?;
            crashsafe::fsync_dir(&self.dir)?;
            tracing::debug!(fragment = %fragment.path.display(), bytes = index.file_len, "sealed WAL");
            Ok((fragment, wal))
        })();
        match result {
            Ok((fragment, wal)) => {
                let sealed_end = fragment.next_offset;
                inner.fragments.push(Arc::new(fragment));
                inner.wal = wal;
                {
                    let mut state = self.lock_sync();
                    state.durable = state.durable.max(sealed_end);
                }
                self.snapshot_producers(inner, sealed_end);
                Ok(())
            }
            Err(e) => {
                inner.health = Health::Failed(format!("sealing failed: {e}"));
                Err(e)
            }
        }
    }

    /// Writes the producer state as of `offset` (best effort: without it a
    /// restart reads more of the log) and keeps the two newest snapshots.
    fn snapshot_producers(&self, inner: &mut Inner, offset: u64) {
        let path = self.dir.join(file_name(offset, SNAPSHOT_SUFFIX));
        let written = crashsafe::write_durably(&path, &[&inner.producers.encode(offset, inner.last_crc)]);
        if let Err(e) = written {
            tracing::warn!(file = %path.display(), error = %e, "could not write a producer-state snapshot");
            return;
        }
        inner.snapshots.insert(offset);
        while inner.snapshots.len() > 2 {
            let Some(oldest) = inner.snapshots.pop_first() else { break };
            let _ = crashsafe::remove_if_exists(&self.dir.join(file_name(oldest, SNAPSHOT_SUFFIX)));
        }
    }

    /// Deletes the snapshots at or past `from` (a truncation or reset),
    /// durably: they must not outlive the cut.
    fn drop_snapshots_from(&self, inner: &mut Inner, from: u64) -> Result<()> {
        let stale: Vec<u64> = inner.snapshots.range(from..).copied().collect();
        if stale.is_empty() {
            return Ok(());
        }
        for s in stale {
            crashsafe::remove_if_exists(&self.dir.join(file_name(s, SNAPSHOT_SUFFIX)))?;
            inner.snapshots.remove(&s);
        }
        crashsafe::fsync_dir(&self.dir)
    }

    /// Reads whole batches starting with the one holding `offset`, up to
    /// about `max_bytes` (at least one batch). Fragment batches are zero-copy
    /// slices of the map; WAL batches slices of one buffer read per call.
    /// Reads stay within one file; an empty result means `offset` is the log end.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<Bytes>> {
        self.read_bounded(offset, max_bytes, u64::MAX)
    }

    /// Like [`PartitionLog::read`], but returns no batch that starts at or
    /// after `upper` (e.g. the high watermark).
    pub fn read_bounded(&self, offset: u64, max_bytes: usize, upper: u64) -> Result<Vec<Bytes>> {
        let range = ReadRange { offset, max_bytes, upper };
        enum Source {
            Fragment(Arc<Fragment>),
            Wal(crate::wal::WalView),
        }
        loop {
            let source = {
                let inner = self.lock();
                let start = inner.fragments.first().map_or(inner.wal.index.base_offset, |f| f.base_offset);
                let end = inner.wal.index.next_offset;
                if offset < start || offset > end {
                    return Err(StorageError::OffsetOutOfRange { offset, log_start: start, log_end: end });
                }
                if offset >= inner.wal.index.base_offset {
                    Source::Wal(inner.wal.view_from(inner.wal.index.position_for_offset(offset)))
                } else {
                    let i = inner.fragments.partition_point(|f| f.next_offset <= offset);
                    Source::Fragment(inner.fragments[i].clone())
                }
            };
            let mut out = Gathered::default();
            match source {
                Source::Wal(view) => view.read(range, &mut out)?,
                Source::Fragment(fragment) => {
                    match self.with_fragment(&fragment, |f| f.read(range, &mut out)) {
                        // Retention or truncation removed it after the lookup:
                        // look again (the answer is now out of range or elsewhere).
                        Err(_) if fragment.is_deleted() => continue,
                        result => result?,
                    }
                }
            }
            return Ok(out.batches);
        }
    }

    /// Runs `op` on a fragment (which may map it), then keeps the number of
    /// mapped fragments within `max_mapped_fragments`.
    fn with_fragment<T>(&self, fragment: &Arc<Fragment>, op: impl FnOnce(&Fragment) -> Result<T>) -> Result<T> {
        let was_mapped = fragment.is_mapped();
        let result = op(fragment);
        if !was_mapped && fragment.is_mapped() {
            self.limit_maps(fragment);
        }
        result
    }

    /// Unmaps the least recently read fragments beyond `max_mapped_fragments`.
    fn limit_maps(&self, keep: &Arc<Fragment>) {
        let inner = self.lock();
        let mut mapped: Vec<&Arc<Fragment>> =
            inner.fragments.iter().filter(|f| f.is_mapped() && !Arc::ptr_eq(f, keep)).collect();
        let excess = (mapped.len() + 1).saturating_sub(self.config.max_mapped_fragments);
        mapped.sort_by_key(|f| f.last_used_micros());
        for f in mapped.into_iter().take(excess) {
            f.unmap();
        }
    }

    /// Unmaps fragments not read for `idle`. Slices already handed out stay valid.
    pub fn unmap_idle(&self, idle: Duration) {
        let now = self.epoch.elapsed().as_micros() as u64;
        let idle = idle.as_micros() as u64;
        for f in self.lock().fragments.iter().filter(|f| f.is_mapped()) {
            if now.saturating_sub(f.last_used_micros()) >= idle {
                f.unmap();
            }
        }
    }

    /// The offset of the first record (in log order) whose timestamp is at
    /// or after `ts`, or `None` if there is none.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>> {
        let (fragments, wal) = {
            let inner = self.lock();
            (inner.fragments.clone(), inner.wal.view_from(inner.wal.index.position_for_timestamp(ts)))
        };
        for fragment in &fragments {
            match self.with_fragment(fragment, |f| f.offset_for_timestamp(ts)) {
                Ok(Some(offset)) => return Ok(Some(offset)),
                Ok(None) => {}
                // Deleted by retention meanwhile: its records are gone, look on.
                Err(_) if fragment.is_deleted() => {}
                Err(e) => return Err(e),
            }
        }
        wal.offset_for_timestamp(ts)
    }

    /// Drops every record at or after `offset` (replica divergence), durably,
    /// and returns the new log end. Batches are never split: when `offset`
    /// falls inside a batch, that whole batch goes. An `offset` before the
    /// log start empties the log, which then continues at `offset`.
    pub fn truncate_to(&self, offset: u64) -> Result<u64> {
        let mut inner = self.lock();
        self.check_open(&inner)?;
        let result = self.truncate_locked(&mut inner, offset);
        if let Err(e) = &result {
            inner.health = Health::Failed(format!("truncation failed: {e}"));
        }
        let end = inner.wal.index.next_offset;
        inner.producers.truncate(end);
        // Unknown until the next append: a snapshot taken before then names
        // no batch, and is ignored when loaded.
        inner.last_crc = 0;
        if result.is_ok() && inner.epochs.truncate_from_end(end) {
            let stored = inner.epochs.store(&self.dir);
            if let Err(e) = stored {
                // The history may name epochs the log no longer holds; a
                // reopen trims it again.
                tracing::warn!(error = %e, "could not store the trimmed leader-epoch history");
            }
        }
        let mut state = self.lock_sync();
        state.durable = state.durable.min(end);
        state.generation += 1;
        self.synced.notify_all();
        result.map(|()| end)
    }

    /// Empties the log, which then continues at `offset` (at least the log
    /// end): a follower whose log ends before its leader's log start
    /// (retention on the leader passed it) starts over there.
    ///
    /// Crash safety: fragments go first, oldest first (each step leaves a
    /// shorter but sound log, as retention does); then the new empty WAL is
    /// written and the old one removed. Recovery keeps the lowest WAL, so a
    /// crash before the old WAL is gone leaves it, and the follower resets
    /// again.
    pub fn reset_to(&self, offset: u64) -> Result<()> {
        let mut inner = self.lock();
        self.check_open(&inner)?;
        let end = inner.wal.index.next_offset;
        if offset < end {
            return Err(StorageError::ResetBeforeEnd { offset, log_end: end });
        }
        let result = self.reset_locked(&mut inner, offset);
        if let Err(e) = &result {
            inner.health = Health::Failed(format!("reset failed: {e}"));
        }
        let mut state = self.lock_sync();
        state.durable = inner.wal.index.next_offset;
        state.generation += 1;
        self.synced.notify_all();
        result
    }

    fn reset_locked(&self, inner: &mut Inner, offset: u64) -> Result<()> {
        self.drop_snapshots_from(inner, 0)?;
        for f in inner.fragments.drain(..) {
            f.mark_deleted();
            crashsafe::remove_if_exists(&f.path)?;
            crashsafe::remove_if_exists(&f.index_path)?;
            crashsafe::fsync_dir(&self.dir)?;
        }
        let header = frame::file_header(offset);
        crashsafe::write_durably(&self.dir.join(file_name(offset, WAL_SUFFIX)), &[&header])?;
        if inner.wal.index.base_offset != offset {
            crashsafe::remove_if_exists(&inner.wal.path)?;
            crashsafe::fsync_dir(&self.dir)?;
        }
        inner.wal = Wal::open(&self.dir, offset, self.config.index_interval_bytes)?;
        inner.epochs = EpochHistory::default();
        inner.epochs.store(&self.dir)?;
        inner.producers.clear();
        inner.last_crc = 0;
        tracing::warn!(dir = %self.dir.display(), offset, "log emptied; it continues at the leader's log start");
        Ok(())
    }

    fn truncate_locked(&self, inner: &mut Inner, offset: u64) -> Result<()> {
        if offset >= inner.wal.index.next_offset {
            return Ok(());
        }
        // Snapshots describing what is cut go first (and durably), or one
        // could survive a crash and claim batches the log no longer has.
        self.drop_snapshots_from(inner, offset + 1)?;
        if offset >= inner.wal.index.base_offset {
            return inner.wal.truncate(offset);
        }
        let interval = self.config.index_interval_bytes;
        let keep = inner.fragments.partition_point(|f| f.next_offset <= offset);
        // The kept prefix of the fragment that holds `offset` (just a file
        // header when the cut is at its first batch, or before the log start).
        let (new_base, prefix) = match inner.fragments.get(keep) {
            // Frames wholly before `offset`, CRC-checked and copied verbatim.
            Some(f) if f.base_offset <= offset => (f.base_offset, f.verified_prefix(offset)?),
            _ => (offset, Bytes::copy_from_slice(&frame::file_header(offset))),
        };
        debug_assert!(prefix.len() >= FILE_HEADER_LEN);
        crashsafe::write_durably(&self.dir.join(file_name(new_base, WAL_SUFFIX)), &[&prefix])?;
        // Committed: the lowest WAL now wins at recovery. Remove what it replaces.
        crashsafe::remove_if_exists(&inner.wal.path)?;
        for f in inner.fragments.drain(keep..).rev() {
            f.mark_deleted();
            crashsafe::remove_if_exists(&f.path)?;
            crashsafe::remove_if_exists(&f.index_path)?;
        }
        crashsafe::fsync_dir(&self.dir)?;
        inner.wal = Wal::open(&self.dir, new_base, interval)?;
        tracing::info!(dir = %self.dir.display(), offset, log_end = inner.wal.index.next_offset, "truncated log");
        Ok(())
    }

    /// Deletes whole fragments from the start of the log that are past the
    /// retention limits (time since this broker appended their last record,
    /// against `now_ms`, normally [`crate::clock::retention_now_ms`]; total
    /// size). Record timestamps play no part: a producer's clock, behind or
    /// far ahead, can neither age data nor pin the log. Never touches the WAL
    /// and never moves an offset: the log start becomes the first remaining
    /// file's base. Returns the base offsets deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<Vec<u64>> {
        let victims: Vec<Arc<Fragment>> = {
            let mut inner = self.lock();
            let mut total: u64 = inner.fragments.iter().map(|f| f.len).sum::<u64>() + inner.wal.len();
            let mut count = 0;
            for f in &inner.fragments {
                let too_old =
                    self.config.retention_age.is_some_and(|age| f.appended_ms < now_ms.saturating_sub(millis(age)));
                let too_big = self.config.retention_bytes.is_some_and(|max| total.saturating_sub(f.len) >= max);
                if !(too_old || too_big) {
                    break;
                }
                total -= f.len;
                count += 1;
            }
            let victims: Vec<Arc<Fragment>> = inner.fragments.drain(..count).collect();
            let start = inner.fragments.first().map_or(inner.wal.index.base_offset, |f| f.base_offset);
            inner.producers.expire_before(start);
            if !victims.is_empty() && inner.epochs.truncate_from_start(start) {
                inner.epochs.store(&self.dir)?;
            }
            victims
        };
        if victims.is_empty() {
            return Ok(Vec::new());
        }
        for f in &victims {
            f.mark_deleted();
            crashsafe::remove_if_exists(&f.path)?;
            crashsafe::remove_if_exists(&f.index_path)?;
            tracing::info!(fragment = %f.path.display(), bytes = f.len, "retention deleted fragment");
        }
        crashsafe::fsync_dir(&self.dir)?;
        Ok(victims.iter().map(|f| f.base_offset).collect())
    }

    /// Periodic housekeeping, to be called every ~100 ms by the log's owner:
    /// seals a WAL past its age, flushes under `FlushPolicy::Interval`,
    /// applies retention and unmaps fragments idle for `unmap_after`.
    pub fn maintain(&self, now_ms: i64, unmap_after: Duration) -> Result<()> {
        let flush_due = {
            let mut inner = self.lock();
            self.check_open(&inner)?;
            if self.seal_due(&inner, now_ms) {
                self.seal(&mut inner)?;
            }
            match self.config.flush {
                FlushPolicy::Interval(every) => now_ms.saturating_sub(inner.last_flush_ms) >= millis(every),
                _ => false,
            }
        };
        if flush_due {
            self.flush()?;
        }
        self.enforce_retention(now_ms)?;
        self.unmap_idle(unmap_after);
        Ok(())
    }

    /// Why the log stopped accepting work after a failure (`None` while it
    /// is open, or after [`PartitionLog::close`]): its owner reopens it to
    /// recover.
    pub fn failure(&self) -> Option<String> {
        match &self.lock().health {
            Health::Failed(reason) => Some(reason.clone()),
            Health::Open | Health::Closed => None,
        }
    }

    /// Flushes and closes the log; later calls fail with `Closed`.
    pub fn close(&self) -> Result<()> {
        self.flush()?;
        let mut inner = self.lock();
        inner.health = Health::Closed;
        for f in &inner.fragments {
            f.unmap();
        }
        Ok(())
    }
}
