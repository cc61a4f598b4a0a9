//! Preparing the next WAL off the append path (see `prealloc` for why).
//!
//! Once the WAL holds [`PREPARE_AFTER`] (or half the seal size, if less: a
//! WAL that was not prepared) or
//! half its capacity (one that was), [`PartitionLog::wants_prepared_wal`]
//! says so, and whoever runs the log's background work calls
//! [`PartitionLog::prepare_wal`] on a thread that may block: it zero-fills
//! and syncs the next WAL without the log's lock. The next seal switches to
//! it; a WAL that has outgrown its room (or was never prepared) is sealed as
//! soon as a prepared one waits, so a busy partition moves to zero-filled
//! WALs within one preparation. Each prepared WAL doubles the last one's
//! capacity up to the seal size: an idle partition holds no prepared file,
//! a busy one holds one of at most the seal size.
//!
//! A preparation that fails (a full disk) fails nothing: it is logged and
//! counted, the WAL goes on growing as an unprepared one, and the next
//! preparation is asked for once the WAL has grown by another
//! [`PREPARE_AFTER`].

use super::{Inner, LogState, PartitionLog};
use crate::error::Result;
use crate::prealloc::{self, PREPARE_AFTER, PreparedWal};

impl PartitionLog {
    /// Whether the next WAL should be prepared now (see the module
    /// documentation): open, nothing prepared or preparing, and the WAL far
    /// enough along.
    pub fn wants_prepared_wal(&self) -> bool {
        self.wants_prepared_locked(&self.lock())
    }

    fn wants_prepared_locked(&self, inner: &Inner) -> bool {
        if inner.state != LogState::Open || inner.prepared.is_some() || inner.preparing {
            return false;
        }
        let wal = &inner.wal;
        let used = wal.len();
        if wal.outgrown() {
            // Not prepared (or out of room): once it holds enough to say
            // the partition is busy, and again after each failed attempt.
            let step = PREPARE_AFTER.min(inner.rolling.bytes / 2);
            used >= wal.capacity().max(step) && used >= inner.failed_prepare_at + step
        } else {
            used >= wal.capacity() / 2
        }
    }

    /// Prepares the next WAL if [`PartitionLog::wants_prepared_wal`]:
    /// blocks while it zero-fills and syncs it (run it where blocking is
    /// fine). Returns whether a WAL was prepared; a failure is logged,
    /// counted and returned, and leaves the log as it was.
    pub fn prepare_wal(&self) -> Result<bool> {
        let capacity = {
            let mut inner = self.lock();
            if !self.wants_prepared_locked(&inner) {
                return Ok(false);
            }
            inner.preparing = true;
            let current = inner.wal.capacity().max(inner.wal.len());
            prealloc::next_capacity(current, inner.rolling.bytes)
        };
        let started = std::time::Instant::now();
        let prepared = PreparedWal::create(&self.dir, capacity);
        let mut inner = self.lock();
        inner.preparing = false;
        match prepared {
            Ok(prepared) if inner.state == LogState::Open => {
                crate::observe::wal_prepared(started.elapsed(), capacity);
                inner.prepared = Some(prepared);
                Ok(true)
            }
            Ok(prepared) => {
                // Closed or failed meanwhile: nothing will switch to it.
                drop(inner);
                prepared.discard();
                Ok(false)
            }
            Err(e) => {
                inner.failed_prepare_at = inner.wal.len();
                drop(inner);
                let _ = std::fs::remove_file(prealloc::prepared_path(&self.dir));
                crate::observe::wal_prepare_failed();
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not prepare the next WAL; the WAL grows meanwhile");
                Err(e)
            }
        }
    }
}
