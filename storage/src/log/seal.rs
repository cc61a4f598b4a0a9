//! Sealing the WAL into a fragment, off the append path.
//!
//! A seal has two halves. [`PartitionLog::begin_seal`] runs under the log's
//! lock and only switches: the next WAL `{end}.wal` is created, or made of
//! the zero-filled file prepared for it (see `prepare`), its header written
//! and not yet synced, and takes appends at once, while the full WAL
//! becomes the *sealing* WAL, still readable. [`PartitionLog::finish_seal`]
//! runs without the log's lock: cut a prepared WAL's unused room and
//! fdatasync the sealing WAL, rename it to
//! `.frag`, write its `.index` (tmp, fsync, rename), fsync the directory
//! (which also makes the new WAL's name durable); then, under the lock for
//! a moment, the fragment joins the file set. A producer-state snapshot as
//! of the seal is written last (best effort).
//!
//! While a seal is in flight the first group-commit round also fdatasyncs
//! the sealing WAL (once: it takes no more appends) and fsyncs the
//! directory (until the new WAL's name is durable), so nothing appended to
//! the new WAL counts as durable before everything before it does.
//!
//! Crash states, all completed by recovery (`open`):
//! - the sealing WAL and the new one both present, the lower one's
//!   recovered end equal to the higher one's base: the seal is completed
//!   (and a new WAL whose header never reached the disk, holding nothing
//!   or only zeros, gets its header again; a sealing WAL's unused room is
//!   cut before it becomes a fragment);
//! - the lower one's end short of the higher one's base (its unsynced tail
//!   was lost with the power): nothing in the higher one was acknowledged
//!   under `flush=always` (rounds sync the lower one first), and it follows
//!   a gap, so it goes, as an interrupted truncation's would;
//! - the fragment without its index: the index is rebuilt.

use std::sync::Arc;

use super::{Inner, PartitionLog, Step, millis};
use crate::crashsafe;
use crate::error::{IoContext, Result};
use crate::fragment::{Fragment, file_name};
use crate::producers::SNAPSHOT_SUFFIX;
use crate::wal::Wal;

/// A WAL being sealed into a fragment (see the module documentation).
#[derive(Debug)]
pub(super) struct Sealing {
    pub(super) wal: Wal,
    /// A round has fdatasynced the whole sealing WAL (it takes no more
    /// appends, so later rounds need not sync it again).
    pub(super) synced: bool,
    /// The producer-state snapshot as of the seal, encoded at the switch.
    snapshot: Vec<u8>,
}

impl PartitionLog {
    /// Whether the WAL is due for sealing: full, or holding records older
    /// than the rolling age; never while a seal is in flight.
    pub(super) fn seal_due(&self, inner: &Inner, now_ms: i64) -> bool {
        let wal = &inner.wal;
        let too_old = wal.first_append_ms.is_some_and(|t| now_ms.saturating_sub(t) >= millis(inner.rolling.max_age));
        // A WAL that grows while a zero-filled one waits goes at once (see `prepare`).
        let switch = inner.prepared.is_some() && wal.outgrown();
        inner.sealing.is_none() && !wal.is_empty() && (wal.len() >= inner.rolling.bytes || too_old || switch)
    }

    /// The switch, under the log's lock: the next WAL takes appends, the
    /// full one becomes the sealing WAL. True when a seal began: the caller
    /// must call [`PartitionLog::finish_seal`] once it released the lock.
    pub(super) fn begin_seal(&self, inner: &mut Inner) -> Result<bool> {
        if inner.wal.is_empty() || inner.sealing.is_some() {
            return Ok(false);
        }
        let base = inner.log_end();
        let interval = self.config.index_interval_bytes;
        let next = match inner.prepared.take() {
            Some(prepared) => Wal::from_prepared(&self.dir, prepared, base, interval),
            None => Wal::create_unsynced(&self.dir, base, interval),
        };
        let next = match next {
            Ok(next) => next,
            Err(e) => {
                self.fail(inner, Step::Seal, &e);
                return Err(e);
            }
        };
        let snapshot = inner.producers.encode(base, inner.last_crc);
        let full = std::mem::replace(&mut inner.wal, next);
        inner.sealing = Some(Sealing { wal: full, synced: false, snapshot });
        inner.wal_entry_synced = false;
        Ok(true)
    }

    /// Completes the seal in flight, if any, without the log's lock (see
    /// the module documentation). A failure fails the log: its file set in
    /// memory may no longer match the directory, and a reopen recovers it.
    pub(super) fn finish_seal(&self) -> Result<()> {
        let _sealing = self.seal_lock();
        self.finish_seal_locked()
    }

    /// [`PartitionLog::finish_seal`] for a caller holding `seal_lock`.
    pub(super) fn finish_seal_locked(&self) -> Result<()> {
        let (file, wal_path, index, capacity) = {
            let inner = self.lock();
            let Some(sealing) = &inner.sealing else { return Ok(()) };
            let wal = &sealing.wal;
            (wal.file.clone(), wal.path.clone(), wal.index.clone(), wal.capacity())
        };
        let fragment = Fragment::sealed(&self.dir, &index, self.config.index_interval_bytes, self.epoch);
        // A prepared WAL's unused room is cut (the sealing WAL takes no more
        // appends, and readers stop at its data's end): a fragment is as
        // long as its data.
        let trim = || if capacity > index.file_len { file.set_len(index.file_len) } else { Ok(()) };
        let written = trim()
            .and_then(|()| file.sync_data())
            .context(|| format!("trim and fdatasync WAL {}", wal_path.display()))
            .and_then(|()| {
                std::fs::rename(&wal_path, &fragment.path)
                    .context(|| format!("rename {} to {}", wal_path.display(), fragment.path.display()))
            })
            .and_then(|()| crashsafe::write_atomic_no_dir_sync(&fragment.index_path, &[&index.encode()]))
            .and_then(|()| crashsafe::fsync_dir(&self.dir));
        let mut inner = self.lock();
        if let Err(e) = written {
            self.fail(&mut inner, Step::Seal, &e);
            return Err(e);
        }
        tracing::debug!(fragment = %fragment.path.display(), bytes = index.file_len, "sealed WAL");
        let Some(sealing) = inner.sealing.take() else { return Ok(()) };
        inner.fragments.push(Arc::new(fragment));
        // The directory fsync made the new WAL's name durable too.
        inner.wal_entry_synced = true;
        self.durability.raise(index.next_offset);
        drop(inner);
        self.store_snapshot(index.next_offset, &sealing.snapshot);
        Ok(())
    }

    /// Writes the producer state as of `offset` (best effort: without it a
    /// restart reads more of the log) and keeps the two newest snapshots.
    fn store_snapshot(&self, offset: u64, snapshot: &[u8]) {
        let path = self.dir.join(file_name(offset, SNAPSHOT_SUFFIX));
        if let Err(e) = crashsafe::write_durably(&path, &[snapshot]) {
            tracing::warn!(file = %path.display(), error = %e, "could not write a producer-state snapshot");
            return;
        }
        let mut inner = self.lock();
        inner.snapshots.insert(offset);
        while inner.snapshots.len() > 2 {
            let Some(oldest) = inner.snapshots.pop_first() else { break };
            let _ = crashsafe::remove_if_exists(&self.dir.join(file_name(oldest, SNAPSHOT_SUFFIX)));
        }
    }
}
