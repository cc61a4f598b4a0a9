//! Durability: the durable offset, and the group-commit rounds that move it.
//!
//! Under `FlushPolicy::Always` an append is acknowledged only once its batch
//! is on stable storage. One fdatasync covers everything written before it
//! started, so waiters share rounds: a *round* is one fdatasync of the WAL
//! on behalf of every waiter, and at most one runs at a time. Storage owns
//! the rounds and every kind of waiter uses the same ones:
//! - a blocking waiter ([`PartitionLog::wait_durable_for`]) runs a round
//!   itself when none is running, or waits on the condition variable for the
//!   running one to end;
//! - an async waiter (the broker's produce path and its followers) polls
//!   [`PartitionLog::poll_durable`] with its task's waker: the first one
//!   that finds no round running is told to run [`PartitionLog::run_rounds`]
//!   on a thread that may block, and every waker is called when a round
//!   ends. Storage stays free of any async runtime: a `std::task::Waker` is
//!   all it keeps.
//!
//! A truncation or reset bumps the *generation*: an fdatasync that started
//! before it must not raise the durable offset (the offsets it covered may
//! since have been rewritten), and a waiter whose batch was truncated away
//! is told `Truncated`, never that it is durable.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use super::{Inner, PartitionLog, PendingAppend, Step};
use crate::config::FlushPolicy;
use crate::error::{Result, StorageError};

/// The durable offset and the round in progress.
#[derive(Debug)]
pub(super) struct Durability {
    state: Mutex<SyncState>,
    /// Signalled when a round ends (or a truncation or failure ends waits).
    round_ended: Condvar,
    /// `SyncState::durable`, readable without the mutex.
    durable: AtomicU64,
}

#[derive(Debug)]
struct SyncState {
    /// Every offset below this is on stable storage.
    durable: u64,
    /// A round is running, or was handed to a runner that is about to run it.
    syncing: bool,
    /// Bumped by every truncation and reset (see the module documentation).
    generation: u64,
    /// `appended_batches` when the last fdatasync started.
    synced_batches: u64,
    /// Async waiters to wake when the current round ends.
    wakers: Vec<Waker>,
    /// Rounds ended so far (a blocking waiter waits for the next one, not
    /// for the runner to stop, which under steady appends may be long).
    rounds: u64,
}

/// What an async waiter does next (see [`PartitionLog::poll_durable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum DurableWait {
    /// The append is durable under the flush policy.
    Durable,
    /// A round is running; the waker is called when it ends.
    Waiting,
    /// No round was running and this caller now owns one: it must call
    /// [`PartitionLog::run_rounds`] on a thread that may block (the waker
    /// is also registered).
    RunRounds,
}

impl Durability {
    pub(super) fn new(durable: u64) -> Durability {
        Durability {
            state: Mutex::new(SyncState {
                durable,
                syncing: false,
                generation: 0,
                synced_batches: 0,
                wakers: Vec::new(),
                rounds: 0,
            }),
            round_ended: Condvar::new(),
            durable: AtomicU64::new(durable),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(super) fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn set_durable(&self, state: &mut SyncState, durable: u64) {
        state.durable = durable;
        self.durable.store(durable, Ordering::Release);
    }

    /// Raises the durable offset to `upto` (a seal made the WAL durable).
    pub(super) fn raise(&self, upto: u64) {
        let mut state = self.lock();
        let durable = state.durable.max(upto);
        self.set_durable(&mut state, durable);
    }

    /// The log was cut back to `end` (truncation) or restarted there
    /// (`reset`): lowers or sets the durable offset, starts a new
    /// generation and ends every wait (they check their generation).
    pub(super) fn cut(&self, end: u64, reset: bool) {
        let mut state = self.lock();
        let durable = if reset { end } else { state.durable.min(end) };
        self.set_durable(&mut state, durable);
        state.generation += 1;
        self.end_round_locked(&mut state);
    }

    /// Wakes every waiter, blocking or async (a failure or close).
    pub(super) fn wake_all(&self) {
        let mut state = self.lock();
        self.end_round_locked(&mut state);
    }

    fn end_round_locked(&self, state: &mut SyncState) {
        state.rounds = state.rounds.wrapping_add(1);
        self.round_ended.notify_all();
        for waker in state.wakers.drain(..) {
            waker.wake();
        }
    }

    /// Whether every offset below `target` is durable; `Truncated` when a
    /// truncation (generation change) overtook the batch at `base`.
    fn durable_past(&self, base: u64, target: u64, generation: u64) -> Result<bool> {
        let state = self.lock();
        if state.generation != generation {
            return Err(StorageError::Truncated { base_offset: base });
        }
        Ok(state.durable >= target)
    }
}

impl PartitionLog {
    /// The current durability generation (see the module documentation).
    pub(super) fn generation(&self) -> u64 {
        self.durability.generation()
    }

    /// Blocks until a deferred append is durable under the flush policy
    /// (a no-op unless it is `Always`); `Truncated` if a truncation removed it.
    pub fn wait_durable_for(&self, pending: &PendingAppend) -> Result<()> {
        if self.config.flush == FlushPolicy::Always {
            self.wait_durable(pending.info.base_offset, pending.info.next_offset, pending.generation)?;
        }
        Ok(())
    }

    /// For async waiters: whether a deferred append is durable under the
    /// flush policy, and if not, registers `waker` for the end of the
    /// current round and says whether the caller must run the rounds (see
    /// [`DurableWait`]). `Truncated` if a truncation removed the append;
    /// the log's error if it failed.
    pub fn poll_durable(&self, pending: &PendingAppend, waker: &Waker) -> Result<DurableWait> {
        if self.config.flush != FlushPolicy::Always {
            return Ok(DurableWait::Durable);
        }
        let PendingAppend { info, generation, .. } = pending;
        {
            let mut state = self.durability.lock();
            if state.generation != *generation {
                return Err(StorageError::Truncated { base_offset: info.base_offset });
            }
            if state.durable >= info.next_offset {
                return Ok(DurableWait::Durable);
            }
            // No dedup scan: every waiter polls again only once woken, and
            // the list is drained at each round's end, so it stays as long
            // as the waiters are many (a scan per poll made a round cost
            // O(waiters²) under a large produce window).
            state.wakers.push(waker.clone());
            if state.syncing {
                return Ok(DurableWait::Waiting);
            }
        }
        // Not durable and no round running: a failed or closed log will run
        // none, so say so instead of asking for one.
        self.check_open(&self.lock())?;
        let mut state = self.durability.lock();
        if state.syncing {
            return Ok(DurableWait::Waiting);
        }
        state.syncing = true;
        Ok(DurableWait::RunRounds)
    }

    /// Runs group-commit rounds for the caller that [`poll_durable`] told
    /// to: round after round while appends keep coming (instead of waiting
    /// for a waiter to ask again), until everything appended is durable or
    /// the log fails. Blocks on fdatasync: call it where blocking is fine.
    ///
    /// [`poll_durable`]: PartitionLog::poll_durable
    pub fn run_rounds(&self) {
        loop {
            let result = self.sync_wal();
            let done = result.is_err() || self.durable_offset() >= self.log_end_offset();
            let mut state = self.durability.lock();
            if done {
                // Cleared before the last wake-up: a waiter that finds its
                // batch still not durable then starts a round.
                state.syncing = false;
            }
            self.durability.end_round_locked(&mut state);
            if done {
                return;
            }
        }
    }

    /// Writes the WAL's data to stable storage without holding up appends
    /// (see [`PendingAppend::presync_due`]); what it covered counts as durable.
    pub fn presync(&self) -> Result<()> {
        self.sync_wal()
    }

    /// Makes everything appended so far durable.
    pub fn flush(&self) -> Result<()> {
        let (target, generation) = {
            let inner = self.lock();
            (inner.log_end(), self.generation())
        };
        self.wait_durable(target, target, generation)?;
        self.lock().last_flush_ms = crate::clock::now_ms();
        Ok(())
    }

    /// Waits until every offset below `target` is durable, running rounds
    /// itself when no other waiter is. Fails with `Truncated` when a
    /// truncation (generation change) overtook the wait for the batch at `base`.
    fn wait_durable(&self, base: u64, target: u64, generation: u64) -> Result<()> {
        while !self.durability.durable_past(base, target, generation)? {
            self.sync_round()?;
        }
        Ok(())
    }

    /// One round for a blocking waiter: an fdatasync covering everything
    /// appended so far, or, when a round is already running, the end of that
    /// one (which may not cover the latest appends: the caller checks again).
    fn sync_round(&self) -> Result<()> {
        let mut state = self.durability.lock();
        if state.syncing {
            let round = state.rounds;
            while state.syncing && state.rounds == round {
                state = self.durability.round_ended.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            drop(state);
            // A failure ended the round: say so rather than loop.
            return self.check_open(&self.lock());
        }
        state.syncing = true;
        drop(state);
        let result = self.sync_wal();
        let mut state = self.durability.lock();
        state.syncing = false;
        self.durability.end_round_locked(&mut state);
        result
    }

    /// One fdatasync of the WAL, covering everything written before it
    /// started, run without the log's lock; records the new durable offset,
    /// or fails the log. While a seal is in flight it also fdatasyncs the
    /// sealing WAL first (until one round did), and fsyncs the directory
    /// until the new WAL's name is durable: nothing in the new WAL counts as
    /// durable before that.
    fn sync_wal(&self) -> Result<()> {
        let round = self.begin_sync()?;
        let started = Instant::now();
        if let Err(err) = round.sync(&self.dir) {
            self.fail(&mut self.lock(), Step::Fdatasync, &err);
            return Err(err);
        }
        crate::observe::fdatasync(started.elapsed(), round.batches);
        if round.dir_sync || round.sealing.is_some() {
            let mut inner = self.lock();
            if round.dir_sync && inner.wal.index.base_offset == round.wal_base {
                inner.wal_entry_synced = true;
            }
            if let Some((_, base)) = round.sealing
                && let Some(s) = inner.sealing.as_mut().filter(|s| s.wal.index.base_offset == base)
            {
                s.synced = true;
            }
        }
        let mut state = self.durability.lock();
        if state.generation == round.generation {
            let durable = state.durable.max(round.upto);
            self.durability.set_durable(&mut state, durable);
        }
        Ok(())
    }

    /// What the next fdatasync covers, taken under the log's lock.
    fn begin_sync(&self) -> Result<SyncRound> {
        let inner = self.lock();
        self.check_open(&inner)?;
        let mut state = self.durability.lock();
        let batches = inner.appended_batches.saturating_sub(state.synced_batches);
        state.synced_batches = inner.appended_batches;
        Ok(SyncRound {
            wal: inner.wal.file.clone(),
            wal_path: inner.wal.path.clone(),
            wal_base: inner.wal.index.base_offset,
            sealing: inner
                .sealing
                .as_ref()
                .filter(|s| !s.synced)
                .map(|s| (s.wal.file.clone(), s.wal.index.base_offset)),
            dir_sync: !inner.wal_entry_synced,
            upto: inner.log_end(),
            generation: state.generation,
            batches,
        })
    }

    /// Whether the WAL has come within `PRESYNC_MARGIN` of its seal, for the
    /// first time. Under `FlushPolicy::Always` the WAL is kept synced anyway.
    pub(super) fn presync_due(&self, inner: &mut Inner) -> bool {
        let wal = &inner.wal;
        let seal_at = inner.rolling.bytes;
        let near = wal.len() + PRESYNC_MARGIN.min(seal_at / 4) >= seal_at;
        if self.config.flush == FlushPolicy::Always || !near || inner.presync_asked == Some(wal.index.base_offset) {
            return false;
        }
        inner.presync_asked = Some(wal.index.base_offset);
        true
    }
}

/// What one fdatasync covers (see [`PartitionLog::sync_wal`]).
struct SyncRound {
    /// The WAL appends go to.
    wal: Arc<File>,
    wal_path: PathBuf,
    wal_base: u64,
    /// The sealing WAL and its base, while no round has synced it yet.
    sealing: Option<(Arc<File>, u64)>,
    /// The WAL's name is not durable yet: fsync the directory too.
    dir_sync: bool,
    /// Every offset below this is durable once the round succeeds.
    upto: u64,
    /// The durability generation the round started in.
    generation: u64,
    /// Batches appended since the previous round (for the observer).
    batches: u64,
}

impl SyncRound {
    /// The fsyncs themselves: the sealing WAL, the WAL, the directory.
    fn sync(&self, dir: &Path) -> Result<()> {
        let fdatasync = |file: &File| {
            file.sync_data().map_err(|e| StorageError::io(format!("fdatasync WAL {}", self.wal_path.display()), e))
        };
        if let Some((sealing, _)) = &self.sealing {
            fdatasync(sealing)?;
        }
        fdatasync(&self.wal)?;
        if self.dir_sync {
            crate::crashsafe::fsync_dir(dir)?;
        }
        Ok(())
    }
}

/// How far before its seal a WAL asks for a presync: at the disk's ~0.6
/// GB/s, 16 MiB is written back in about 30 ms, before the seal comes at
/// any rate below ~0.5 GB/s.
const PRESYNC_MARGIN: u64 = 16 << 20;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use crate::log::LogState;
    use crate::{Batch, BatchBuilder, Compression, LogConfig, Record};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn batch() -> Batch {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(&Record { value: bytes::Bytes::from_static(b"v"), ..Record::default() });
        Batch::parse(b.build().unwrap()).unwrap()
    }

    #[test]
    fn one_async_waiter_runs_the_rounds_the_others_are_woken_when_they_end() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
        let log = PartitionLog::open(dir.path(), config).unwrap();
        let (a, b) = (log.append_deferred(&batch(), 1).unwrap(), log.append_deferred(&batch(), 1).unwrap());
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        assert_eq!(log.poll_durable(&a, &waker).unwrap(), DurableWait::RunRounds);
        let other = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        assert_eq!(log.poll_durable(&b, &other).unwrap(), DurableWait::Waiting, "one runner at a time");
        log.run_rounds();
        assert!(woken.0.load(Ordering::SeqCst) >= 1, "the round's end wakes the waiter");
        assert_eq!(log.poll_durable(&a, &waker).unwrap(), DurableWait::Durable);
        assert_eq!(log.poll_durable(&b, &waker).unwrap(), DurableWait::Durable);
        // A blocking waiter uses the same rounds: nothing is left to sync.
        log.wait_durable_for(&b).unwrap();
        assert_eq!(log.durable_offset(), 2);
    }

    #[test]
    fn a_truncation_ends_async_waits_with_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
        let log = PartitionLog::open(dir.path(), config).unwrap();
        let lost = log.append_deferred(&batch(), 1).unwrap();
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        assert_eq!(log.poll_durable(&lost, &waker).unwrap(), DurableWait::RunRounds);
        log.truncate_to(0).unwrap();
        assert!(woken.0.load(Ordering::SeqCst) >= 1, "the truncation wakes the waiter");
        assert!(matches!(log.poll_durable(&lost, &waker), Err(StorageError::Truncated { base_offset: 0 })));
        log.run_rounds();
    }

    #[test]
    fn a_closed_log_refuses_to_start_a_round() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
        let log = PartitionLog::open(dir.path(), config).unwrap();
        let pending = log.append_deferred(&batch(), 1).unwrap();
        let late = PendingAppend { info: super::super::AppendInfo { next_offset: 5, ..pending.info }, ..pending };
        log.close().unwrap();
        let waker = Waker::from(Arc::new(Count(AtomicUsize::new(0))));
        assert_eq!(log.poll_durable(&pending, &waker).unwrap(), DurableWait::Durable, "close flushes");
        assert!(matches!(log.poll_durable(&late, &waker), Err(StorageError::Closed { state: LogState::Closed, .. })));
    }
}
