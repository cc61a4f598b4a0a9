//! `PartitionLog`: one partition's ordered, durable log.
//!
//! On disk, a partition directory holds sealed fragments
//! `{base:020}.frag` (+ `.index`) and one active WAL `{base:020}.wal`; each
//! file's name is the offset of its first record, and each file starts where
//! the previous one ends. Offsets are assigned here, never change and are
//! never reused: retention only moves the log start forward.
//!
//! One concept per file:
//! - this file: the log's parts, its offsets and its state;
//! - [`open`](self::open): opening and recovery;
//! - `append`: appends as leader and as follower, idempotent producers;
//! - `read`: reads by offset and by timestamp, fragment maps;
//! - `durability`: the durable offset and group-commit rounds, shared by
//!   every waiter (blocking or async, leader or follower);
//! - `seal`: sealing the WAL into a fragment off the append path;
//! - `lifecycle`: truncation, reset, retention, periodic maintenance, close;
//! - [`compact`]: compaction (the latest record of every key kept);
//! - [`state`]: whether the log accepts work.
//!
//! Locking rule: `inner` (the file set and the WAL's write position) is
//! held for the `writev` of an append and for the in-memory part of a
//! file-set change, never for a read's I/O and never for an fdatasync of a
//! WAL: group-commit rounds, presync and flush copy the WAL's file handle
//! out and sync without it, and a seal only switches to the next WAL under
//! it, syncing and renaming the full one after (see `seal`). Two steps do
//! fsync under it, because they must be atomic with respect to appends and
//! are rare: a new leader epoch's history is written before the epoch's
//! first batch (once per leadership change), and a truncation or reset
//! rewrites the file set (replica divergence). `seal_lock` serializes the
//! finishing of seals with truncation, reset and close, and is taken before
//! `inner`; `durability`'s own mutex is taken after `inner`, never before.
//! Log start, log end and the durable offset are atomics, published under
//! the lock and read without it.
//!
//! Crash protocol of the multi-file steps:
//! - seal: create the next `.wal` (switch) → fdatasync the full WAL →
//!   rename it to `.frag` → write `.index` (tmp, fsync, rename) → fsync the
//!   directory. A crash leaves two WALs (the seal is completed), a fragment
//!   without index (rebuilt) or without a following WAL (created).
//! - truncation into a fragment `b`: write the kept prefix of `b` as
//!   `{b}.wal` (tmp, fsync, rename, fsync dir) — the commit point — then
//!   delete `{b}.frag` and every file after it. Recovery completes an
//!   interrupted truncation: every fragment at or after the lowest WAL, and
//!   every other WAL, is deleted.
//! - retention: unlink the oldest `.frag` then its `.index`, fsync dir.
//! - compaction: write `{b}.compacted` (tmp, fsync, rename, fsync dir) —
//!   the commit point — then delete what it replaces and rename it to
//!   `{b}.frag`; recovery finishes a committed one (see `compact::swap`).

mod append;
pub mod compact;
mod durability;
mod lifecycle;
mod open;
mod prepare;
mod read;
mod seal;
pub mod state;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use append::{AppendInfo, PendingAppend};
pub use durability::DurableWait;
pub(crate) use open::parse_name;
pub use state::{LogState, Step};

use crate::config::{LogConfig, Retention, Rolling};
use crate::crashsafe;
use crate::dir_lock::DirLock;
use crate::epochs::EpochHistory;
use crate::error::{Result, StorageError};
use crate::fragment::Fragment;
use crate::producers::ProducerStates;
use crate::wal::Wal;

/// The partition log. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    /// This process's claim on `dir`, held from open to close.
    dir_lock: Mutex<Option<DirLock>>,
    config: LogConfig,
    /// What retention keeps: `config`'s at first, changed by the topic's
    /// settings while the log is open.
    retention: Mutex<Retention>,
    inner: Mutex<Inner>,
    /// Held while a seal is finished, and by truncation, reset and close
    /// (which finish a seal in flight first); taken before `inner`.
    seal_lock: Mutex<()>,
    /// Log start and end, readable without `inner`.
    offsets: Offsets,
    durability: durability::Durability,
    /// Zero of the fragments' last-use clock.
    epoch: Instant,
    /// Compaction settings and progress.
    compactor: compact::Compactor,
    /// Retention and compaction remove nothing at or above this offset
    /// (delayed records not yet delivered: see [`PartitionLog::set_hold`]).
    hold: std::sync::atomic::AtomicU64,
    /// No batch with a delayed-delivery bit was appended at or above this
    /// offset since the log opened (the log end at open: before it, unknown).
    marked_until: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Inner {
    /// Sealed fragments, oldest first, each starting where the previous ends.
    fragments: Vec<Arc<Fragment>>,
    /// The full WAL being sealed into the next fragment, if a seal is in
    /// flight: it sits between the fragments and `wal`.
    sealing: Option<seal::Sealing>,
    /// The WAL appends go to.
    wal: Wal,
    /// Whether `wal`'s directory entry is durable (a new WAL's is not until
    /// its seal or a round fsyncs the directory).
    wal_entry_synced: bool,
    /// Whether the log accepts work.
    state: LogState,
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
    /// Records below this were deleted on request (persisted in
    /// `log-start`); 0 when none were.
    deleted_before: u64,
    /// When the WAL is sealed (`config`'s at first, changed by the topic's
    /// settings while the log is open).
    rolling: Rolling,
    /// The zero-filled file the next seal switches to (see `prepare`).
    prepared: Option<crate::prealloc::PreparedWal>,
    /// A preparation is running (off the lock).
    preparing: bool,
    /// The WAL's length when a preparation last failed (0: none did).
    failed_prepare_at: u64,
}

impl Inner {
    /// First offset still served: the first file's base, or the start
    /// records were deleted up to (never past the log end, which a reset or
    /// truncation may have moved below it).
    fn log_start(&self) -> u64 {
        let first_file = match (self.fragments.first(), &self.sealing) {
            (Some(f), _) => f.base_offset,
            (None, Some(s)) => s.wal.index.base_offset,
            (None, None) => self.wal.index.base_offset,
        };
        first_file.max(self.deleted_before.min(self.log_end()))
    }

    /// Bytes in the WAL and the sealing WAL.
    fn wals_len(&self) -> u64 {
        self.wal.len() + self.sealing.as_ref().map_or(0, |s| s.wal.len())
    }

    /// The offset the next appended record will get.
    fn log_end(&self) -> u64 {
        self.wal.index.next_offset
    }
}

/// The log's start and end offsets, mirrored out of `Inner` so that readers
/// (fetch paths, metrics, the broker's high-watermark computation) need no
/// lock. Written only under `inner`, by [`PartitionLog::publish`].
#[derive(Debug, Default)]
struct Offsets {
    start: AtomicU64,
    end: AtomicU64,
}

/// A duration in milliseconds, saturating instead of wrapping (a "forever"
/// retention must not turn negative and delete everything).
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PartitionLog {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn seal_lock(&self) -> MutexGuard<'_, ()> {
        self.seal_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the current log start and end visible to lock-free readers.
    fn publish(&self, inner: &Inner) {
        self.offsets.start.store(inner.log_start(), Ordering::Release);
        self.offsets.end.store(inner.log_end(), Ordering::Release);
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings the log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// What retention keeps now.
    pub fn retention(&self) -> Retention {
        *self.retention.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes what retention keeps, from its next run on (a topic's
    /// settings changed while the log is open).
    pub fn set_retention(&self, retention: Retention) {
        *self.retention.lock().unwrap_or_else(|p| p.into_inner()) = retention;
    }

    /// Holds every record at or above `offset` against retention and
    /// compaction: they remove nothing there (an operator's DeleteRecords
    /// still does). Delayed delivery holds its originals not yet delivered.
    pub fn set_hold(&self, offset: u64) {
        self.hold.store(offset, std::sync::atomic::Ordering::Release);
    }

    /// The offset set by [`PartitionLog::set_hold`] (`u64::MAX`: none).
    pub fn hold(&self) -> u64 {
        self.hold.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every batch carrying a delayed-delivery bit appended since the log
    /// opened lies below this offset, and so may any before it: a reader
    /// of delayed records (the timer index) skips what lies above it.
    pub fn marked_until(&self) -> u64 {
        self.marked_until.load(std::sync::atomic::Ordering::Acquire)
    }

    /// When the WAL is sealed now.
    pub fn rolling(&self) -> Rolling {
        self.lock().rolling
    }

    /// Changes when the WAL is sealed, from the next append or maintenance
    /// on (a topic's `segment.bytes` or `segment.ms` changed while the log
    /// is open); refused as the configuration would be
    /// ([`LogConfig::validate`]).
    pub fn set_rolling(&self, rolling: Rolling) -> Result<()> {
        self.config.check_rolling(rolling)?;
        self.lock().rolling = rolling;
        Ok(())
    }

    /// First offset still held.
    pub fn log_start_offset(&self) -> u64 {
        self.offsets.start.load(Ordering::Acquire)
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> u64 {
        self.offsets.end.load(Ordering::Acquire)
    }

    /// Every offset below this is on stable storage (as far as fdatasync can
    /// tell). Under `FlushPolicy::Always` it is the log end whenever no append
    /// is in flight; under `Interval` and `Never` it trails behind.
    pub fn durable_offset(&self) -> u64 {
        self.durability.durable()
    }

    /// Bytes held on disk (fragments and WAL).
    pub fn size_bytes(&self) -> u64 {
        let inner = self.lock();
        inner.fragments.iter().map(|f| f.len).sum::<u64>() + inner.wals_len()
    }

    /// Number of sealed fragments.
    pub fn fragment_count(&self) -> usize {
        self.lock().fragments.len()
    }

    /// Number of fragments currently mapped.
    pub fn mapped_fragment_count(&self) -> usize {
        self.lock().fragments.iter().filter(|f| f.is_mapped()).count()
    }

    /// `(epoch, start_offset)` of every leader epoch the log holds, oldest first.
    pub fn epoch_history(&self) -> Vec<(u32, u64)> {
        self.lock().epochs.entries().to_vec()
    }

    /// Where `epoch` ends in this log (see [`EpochHistory::end_offset_for`]):
    /// what a leader tells a follower that asks where to truncate.
    pub fn end_offset_for_epoch(&self, epoch: u32) -> Option<(u32, u64)> {
        let inner = self.lock();
        inner.epochs.end_offset_for(epoch, inner.log_end())
    }

    /// Whether the log accepts work.
    pub fn state(&self) -> LogState {
        self.lock().state.clone()
    }

    /// Why the log stopped accepting work after a failure (`None` while it
    /// is open, or after [`PartitionLog::close`]): its owner reopens it to
    /// recover.
    pub fn failure(&self) -> Option<String> {
        match &self.lock().state {
            state @ LogState::Failed { .. } => Some(state.to_string()),
            LogState::Open | LogState::Closed => None,
        }
    }

    /// `Closed` unless the log accepts work.
    fn check_open(&self, inner: &Inner) -> Result<()> {
        match &inner.state {
            LogState::Open => Ok(()),
            state => Err(StorageError::Closed { dir: self.dir.clone(), state: state.clone() }),
        }
    }

    /// Fails the log: `step` failed with `cause`, and nothing more is
    /// accepted until it is reopened. Wakes every durability waiter, so that
    /// none waits for a round that will not come.
    fn fail(&self, inner: &mut Inner, step: Step, cause: &StorageError) {
        tracing::error!(dir = %self.dir.display(), %step, error = %cause, "partition log failed; it accepts no more writes until reopened");
        inner.state = LogState::failed(step, cause);
        self.durability.wake_all();
    }

    /// Removes a sealed fragment and its index from the directory (durable
    /// once the caller fsyncs it); readers holding it see it deleted.
    fn delete_fragment(&self, fragment: &Fragment) -> Result<()> {
        fragment.mark_deleted();
        crashsafe::remove_if_exists(&fragment.path)?;
        crashsafe::remove_if_exists(&fragment.index_path)
    }
}
