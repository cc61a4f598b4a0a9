//! Appends: as leader (offsets assigned here, idempotent producers checked)
//! and as follower (the leader's offsets and epochs kept).
//!
//! An append writes into the WAL under the log's lock and returns a
//! [`PendingAppend`]; whether it must wait for durability before it is
//! acknowledged is the flush policy's business (see `durability`).

use super::{Inner, PartitionLog, Step};
use crate::batch::Batch;
use crate::clock::now_ms;
use crate::error::{Result, StorageError};
use crate::producers::Decision;

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
    /// The durability generation the append was made in.
    pub(super) generation: u64,
}

/// Where an append lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// As leader, at the log end.
    Leader,
    /// As leader, only if the log ends at this offset (a conditional
    /// append: [`PartitionLog::append_deferred_at`]).
    LeaderAt(u64),
    /// A follower's copy, which must start at the log end.
    Replicated(u64),
}

/// Whether `batch` would overflow the WAL's offsets: index entries hold
/// offsets relative to the file's base as u32 (the WAL is sealed first).
fn offsets_full(inner: &Inner, batch: &Batch) -> bool {
    let wal = &inner.wal.index;
    wal.next_offset - wal.base_offset + u64::from(batch.offset_count()) > u64::from(u32::MAX)
}

/// Whether `leader_epoch` is new to the log: its history records it (and
/// fsyncs) before the epoch's first batch.
fn starts_epoch(inner: &Inner, leader_epoch: u32) -> bool {
    inner.epochs.latest().is_none_or(|latest| leader_epoch > latest)
}

impl PartitionLog {
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
    /// [`PartitionLog::wait_durable_for`] or [`PartitionLog::poll_durable`],
    /// so that many appends share one fdatasync. Nothing appended may be
    /// acknowledged before that wait.
    pub fn append_deferred(&self, batch: &Batch, leader_epoch: u32) -> Result<PendingAppend> {
        self.append_at(batch, Placement::Leader, leader_epoch)
    }

    /// [`PartitionLog::append_deferred`] only if the log ends at
    /// `log_end`: otherwise nothing is written and the error says where it
    /// ends (`LogEndMismatch`). A writer that copies another log offset for
    /// offset (a mirror) appends each batch at its source offset: a batch
    /// written already, by it or by an earlier run of it, is refused rather
    /// than stored twice.
    pub fn append_deferred_at(&self, batch: &Batch, log_end: u64, leader_epoch: u32) -> Result<PendingAppend> {
        self.append_at(batch, Placement::LeaderAt(log_end), leader_epoch)
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
        self.try_append_deferred_placed(batch, Placement::Leader, leader_epoch)
    }

    /// [`PartitionLog::try_append_deferred`] for
    /// [`PartitionLog::append_deferred_at`].
    pub fn try_append_deferred_at(
        &self,
        batch: &Batch,
        log_end: u64,
        leader_epoch: u32,
    ) -> Option<Result<PendingAppend>> {
        self.try_append_deferred_placed(batch, Placement::LeaderAt(log_end), leader_epoch)
    }

    fn try_append_deferred_placed(
        &self,
        batch: &Batch,
        placement: Placement,
        leader_epoch: u32,
    ) -> Option<Result<PendingAppend>> {
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
        Some(self.append_locked(&mut inner, batch, placement, leader_epoch, now, None))
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
    /// batch.
    pub fn append_replicated_deferred(&self, batch: &Batch) -> Result<PendingAppend> {
        self.append_at(batch, Placement::Replicated(batch.base_offset()), batch.partition_leader_epoch())
    }

    fn check_size(&self, batch: &Batch) -> Result<()> {
        if batch.len() > self.config.max_batch_bytes {
            let (size, max) = (batch.len(), self.config.max_batch_bytes);
            return Err(StorageError::Batch(goulette_batch::BatchError::BatchTooLarge { size, max }));
        }
        Ok(())
    }

    /// An append that may seal: a seal it begins (under the lock) is
    /// finished here, after the lock is released.
    fn append_at(&self, batch: &Batch, placement: Placement, leader_epoch: u32) -> Result<PendingAppend> {
        self.check_size(batch)?;
        loop {
            let now = now_ms();
            let mut inner = self.lock();
            if offsets_full(&inner, batch) && inner.sealing.is_some() {
                // The WAL must be sealed first, and the last seal is still
                // in flight: finish it, then look again.
                drop(inner);
                self.finish_seal()?;
                continue;
            }
            let mut sealing = false;
            let appended = self.append_locked(&mut inner, batch, placement, leader_epoch, now, Some(&mut sealing));
            drop(inner);
            if sealing {
                self.finish_seal()?;
            }
            return appended;
        }
    }

    /// A leader checks an idempotent producer's sequence (a follower copies
    /// what its leader decided): `Some` when the batch must not be appended,
    /// with the answer for its producer.
    fn check_producer(&self, inner: &Inner, batch: &Batch) -> Option<Result<PendingAppend>> {
        let p = batch.producer()?;
        match inner.producers.check(&p, batch.offset_count()) {
            Decision::Append => None,
            Decision::Duplicate { base_offset, next_offset } => {
                let info = AppendInfo { base_offset, next_offset, max_timestamp: batch.max_timestamp() };
                Some(Ok(PendingAppend { info, duplicate: true, presync_due: false, generation: self.generation() }))
            }
            Decision::DuplicateUnknown => {
                Some(Err(StorageError::DuplicateSequence { producer_id: p.producer_id, sequence: p.base_sequence }))
            }
            Decision::OutOfOrder { expected } => Some(Err(StorageError::OutOfOrderSequence {
                producer_id: p.producer_id,
                expected,
                got: p.base_sequence,
            })),
            Decision::Fenced { current } => {
                Some(Err(StorageError::ProducerFenced { producer_id: p.producer_id, epoch: p.producer_epoch, current }))
            }
        }
    }

    /// The append itself, under the log's lock. With `sealing`, it begins a
    /// seal when the WAL is due (or full of offsets) and sets it: the
    /// caller then finishes the seal once it released the lock.
    fn append_locked(
        &self,
        inner: &mut Inner,
        batch: &Batch,
        placement: Placement,
        leader_epoch: u32,
        now: i64,
        mut sealing: Option<&mut bool>,
    ) -> Result<PendingAppend> {
        self.check_open(inner)?;
        if !matches!(placement, Placement::Replicated(_))
            && let Some(answer) = self.check_producer(inner, batch)
        {
            return answer;
        }
        if let Some(began) = sealing.as_deref_mut()
            && offsets_full(inner, batch)
        {
            *began |= self.begin_seal(inner)?;
        }
        let base = inner.log_end();
        match placement {
            Placement::Replicated(expected) if expected != base => {
                return Err(StorageError::invalid_batch(format!(
                    "replicated batch starts at offset {expected}, the log ends at {base}"
                )));
            }
            Placement::LeaderAt(expected) if expected != base => {
                return Err(StorageError::LogEndMismatch { expected, log_end: base });
            }
            _ => {}
        }
        // Write-ahead: the history learns of a new epoch before its first
        // batch is in the log.
        if starts_epoch(inner, leader_epoch) {
            let mut epochs = inner.epochs.clone();
            epochs.assign(leader_epoch, base);
            epochs.store(&self.dir)?;
            inner.epochs = epochs;
        }
        let info = match inner.wal.append(batch, base, leader_epoch, now) {
            Ok(info) => info,
            // Out of space: the write was cut back, but so will the next be;
            // failing the log lets its owner move the leadership to a replica
            // that can write, and reopen it when space returns.
            Err(e) if matches!(e, StorageError::Closed { .. }) || e.is_out_of_space() => {
                self.fail(inner, Step::Append, &e);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if let Some(p) = &batch.producer() {
            inner.producers.record(p, batch.offset_count(), base, info.next_offset);
        }
        inner.last_crc = batch.crc();
        inner.appended_batches += 1;
        if batch.delay_bits() != 0 {
            self.marked_until.fetch_max(info.next_offset, std::sync::atomic::Ordering::AcqRel);
        }
        self.publish(inner);
        if let Some(began) = sealing
            && self.seal_due(inner, now)
        {
            *began |= self.begin_seal(inner)?;
        }
        let presync_due = self.presync_due(inner);
        let info = AppendInfo { base_offset: base, next_offset: info.next_offset, max_timestamp: info.max_timestamp };
        Ok(PendingAppend { info, duplicate: false, presync_due, generation: self.generation() })
    }
}
