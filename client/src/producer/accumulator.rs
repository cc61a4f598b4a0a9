//! A partition's accumulator: the batch being filled (records are encoded
//! into it as `send` is called, under a lock) and the batches sealed since,
//! waiting for the partition's sender task.

use std::collections::VecDeque;

use goulette_batch::BatchBuilder;
use tokio::time::Instant;

use super::completion::Waiters;

/// The batch being filled: its builder, its records' waiters, when it began.
pub(super) type Filling = (BatchBuilder, Waiters, Instant);

/// One partition's records not yet taken by its sender: the batch being
/// filled and the batches sealed since.
#[derive(Default)]
pub(super) struct Accumulator {
    pub(super) state: std::sync::Mutex<Accumulated>,
    /// Wakes the sender: a batch was sealed, a new one began (its linger
    /// starts), or the producer closed.
    pub(super) wake: tokio::sync::Notify,
    /// Wakes `send` calls waiting for room.
    pub(super) room: tokio::sync::Notify,
}

#[derive(Default)]
pub(super) struct Accumulated {
    pub(super) filling: Option<Filling>,
    pub(super) sealed: VecDeque<Filling>,
    pub(super) closed: bool,
}

impl std::fmt::Debug for Accumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accumulator").finish_non_exhaustive()
    }
}

impl Accumulator {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Accumulated> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
        self.room.notify_waiters();
    }
}
