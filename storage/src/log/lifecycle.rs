//! The log's file set over time, besides sealing (`seal`): truncation
//! (replica divergence), reset (a follower behind its leader's log start),
//! retention, periodic maintenance and close. Truncation and reset first
//! complete a seal in flight, then run under the log's lock and follow the
//! crash protocol in the module documentation of [`crate::log`]; a failure
//! halfway fails the log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{Inner, LogState, PartitionLog, Step, millis};

use crate::config::FlushPolicy;
use crate::crashsafe;
use crate::epochs::EpochHistory;
use crate::error::{Result, StorageError};
use crate::fragment::{Fragment, file_name};
use crate::frame::{self, FILE_HEADER_LEN};
use crate::producers::SNAPSHOT_SUFFIX;
use crate::wal::{WAL_SUFFIX, Wal};

impl PartitionLog {
    /// Deletes the snapshots at or past `from` (a truncation or reset),
    /// durably: they must not outlive the cut.
    pub(super) fn drop_snapshots_from(&self, inner: &mut Inner, from: u64) -> Result<()> {
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

    /// Drops every record at or after `offset` (replica divergence), durably,
    /// and returns the new log end. Batches are never split: when `offset`
    /// falls inside a batch, that whole batch goes. An `offset` before the
    /// log start empties the log, which then continues at `offset`.
    pub fn truncate_to(&self, offset: u64) -> Result<u64> {
        let _sealing = self.seal_lock();
        self.finish_seal_locked()?;
        let mut inner = self.lock();
        self.check_open(&inner)?;
        let result = self.truncate_locked(&mut inner, offset);
        if let Err(e) = &result {
            self.fail(&mut inner, Step::Truncate, e);
        }
        let end = inner.log_end();
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
        self.publish(&inner);
        self.durability.cut(end, false);
        result?;
        self.cleaned_before(end)?;
        Ok(end)
    }

    fn truncate_locked(&self, inner: &mut Inner, offset: u64) -> Result<()> {
        if offset >= inner.log_end() {
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
            self.delete_fragment(&f)?;
        }
        crashsafe::fsync_dir(&self.dir)?;
        inner.wal = Wal::open(&self.dir, new_base, interval)?;
        tracing::info!(dir = %self.dir.display(), offset, log_end = inner.log_end(), "truncated log");
        Ok(())
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
        let _sealing = self.seal_lock();
        self.finish_seal_locked()?;
        let mut inner = self.lock();
        self.check_open(&inner)?;
        let end = inner.log_end();
        if offset < end {
            return Err(StorageError::ResetBeforeEnd { offset, log_end: end });
        }
        let result = self.reset_locked(&mut inner, offset);
        if let Err(e) = &result {
            self.fail(&mut inner, Step::Reset, e);
        }
        self.publish(&inner);
        self.durability.cut(inner.log_end(), true);
        result
    }

    fn reset_locked(&self, inner: &mut Inner, offset: u64) -> Result<()> {
        self.drop_snapshots_from(inner, 0)?;
        for f in inner.fragments.drain(..) {
            self.delete_fragment(&f)?;
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

    /// Deletes whole fragments from the start of the log that are past the
    /// retention limits (time since this broker appended their last record,
    /// against `now_ms`, normally [`crate::clock::retention_now_ms`]; total
    /// size). Record timestamps play no part: a producer's clock, behind or
    /// far ahead, can neither age data nor pin the log. Never touches the WAL
    /// and never moves an offset: the log start becomes the first remaining
    /// file's base. Returns the base offsets deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<Vec<u64>> {
        let retention = self.retention();
        let hold = self.hold();
        let victims: Vec<Arc<Fragment>> = {
            let mut inner = self.lock();
            let mut total: u64 = inner.fragments.iter().map(|f| f.len).sum::<u64>() + inner.wals_len();
            let mut count = 0;
            for f in &inner.fragments {
                // Wholly below a start asked for (left by a crash, or sealed since).
                let deleted = f.next_offset <= inner.deleted_before;
                let too_old = retention.age.is_some_and(|age| f.appended_ms < now_ms.saturating_sub(millis(age)));
                let too_big = retention.bytes.is_some_and(|max| total.saturating_sub(f.len) >= max);
                let held = f.next_offset > hold;
                if !(deleted || ((too_old || too_big) && !held)) {
                    break;
                }
                total -= f.len;
                count += 1;
            }
            let victims: Vec<Arc<Fragment>> = inner.fragments.drain(..count).collect();
            let start = inner.log_start();
            inner.producers.expire_before(start);
            if !victims.is_empty() && inner.epochs.truncate_from_start(start) {
                inner.epochs.store(&self.dir)?;
            }
            self.publish(&inner);
            victims
        };
        if victims.is_empty() {
            return Ok(Vec::new());
        }
        for f in &victims {
            self.delete_fragment(f)?;
            tracing::info!(fragment = %f.path.display(), bytes = f.len, "retention deleted fragment");
        }
        crashsafe::fsync_dir(&self.dir)?;
        Ok(victims.iter().map(|f| f.base_offset).collect())
    }

    /// Deletes every record below `offset` (Kafka's DeleteRecords): the log
    /// then starts there, files wholly below it are removed and the rest
    /// is never served again. Asking for a start at or below the current
    /// one changes nothing; one past the log end is `OffsetOutOfRange`.
    /// Returns the log start. The start is made durable before any file is
    /// removed (see [`crate::log_start`]).
    pub fn delete_records_before(&self, offset: u64) -> Result<u64> {
        let (start, victims) = {
            let mut inner = self.lock();
            self.check_open(&inner)?;
            let (start, end) = (inner.log_start(), inner.log_end());
            if offset > end {
                return Err(StorageError::OffsetOutOfRange { offset, log_start: start, log_end: end });
            }
            if offset <= start {
                return Ok(start);
            }
            crate::log_start::store(&self.dir, offset)?;
            inner.deleted_before = offset;
            let count = inner.fragments.iter().take_while(|f| f.next_offset <= offset).count();
            let victims: Vec<Arc<Fragment>> = inner.fragments.drain(..count).collect();
            let start = inner.log_start();
            inner.producers.expire_before(start);
            if inner.epochs.truncate_from_start(start) {
                inner.epochs.store(&self.dir)?;
            }
            self.publish(&inner);
            (start, victims)
        };
        for f in &victims {
            self.delete_fragment(f)?;
        }
        if !victims.is_empty() {
            crashsafe::fsync_dir(&self.dir)?;
        }
        tracing::info!(dir = %self.dir.display(), start, fragments = victims.len(), "records deleted on request");
        Ok(start)
    }

    /// Periodic housekeeping, to be called every ~100 ms by the log's owner:
    /// seals a WAL past its age, flushes under `FlushPolicy::Interval`,
    /// applies retention and unmaps fragments idle for `unmap_after`.
    pub fn maintain(&self, now_ms: i64, unmap_after: Duration) -> Result<()> {
        let flush_due = {
            let mut inner = self.lock();
            self.check_open(&inner)?;
            if self.seal_due(&inner, now_ms) {
                self.begin_seal(&mut inner)?;
            }
            match self.config.flush {
                FlushPolicy::Interval(every) => now_ms.saturating_sub(inner.last_flush_ms) >= millis(every),
                _ => false,
            }
        };
        // This seal, or one its appender could not finish.
        self.finish_seal()?;
        if flush_due {
            self.flush()?;
        }
        self.enforce_retention(now_ms)?;
        self.unmap_idle(unmap_after);
        Ok(())
    }

    /// Flushes and closes the log; later calls fail with `Closed`.
    pub fn close(&self) -> Result<()> {
        let _sealing = self.seal_lock();
        self.finish_seal_locked()?;
        self.flush()?;
        let mut inner = self.lock();
        inner.state = LogState::Closed;
        if let Some(prepared) = inner.prepared.take() {
            prepared.discard();
        }
        for f in &inner.fragments {
            f.unmap();
        }
        self.durability.wake_all();
        // The directory is free for the next opener even while handles to
        // this closed log live on.
        self.dir_lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(())
    }
}
