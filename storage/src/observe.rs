//! How the process embedding the storage engine observes it.
//!
//! The broker turns these events into metrics (fdatasync latency, batches
//! per fdatasync). Storage stays free of any metrics library: it calls the
//! one process-wide [`Observer`] installed with [`set_observer`], and does
//! nothing when none is (tests, tools).

use std::sync::OnceLock;
use std::time::Duration;

/// Receives storage events. Called on the appending or syncing thread: keep
/// it to a few atomic operations.
pub trait Observer: Send + Sync + 'static {
    /// One fdatasync of a WAL finished (successfully), taking `took` and
    /// making `batches` appended batches durable (group commit: one
    /// fdatasync for every batch appended since the previous one).
    fn fdatasync(&self, took: Duration, batches: u64);

    /// A WAL of `bytes` was zero-filled ahead of need, taking `took`.
    fn wal_prepared(&self, _took: Duration, _bytes: u64) {}

    /// Preparing a WAL failed (the WAL grows meanwhile).
    fn wal_prepare_failed(&self) {}
}

static OBSERVER: OnceLock<Box<dyn Observer>> = OnceLock::new();

/// Installs the process's observer; false if one was installed already.
pub fn set_observer(observer: impl Observer) -> bool {
    OBSERVER.set(Box::new(observer)).is_ok()
}

pub(crate) fn fdatasync(took: Duration, batches: u64) {
    if let Some(o) = OBSERVER.get() {
        o.fdatasync(took, batches);
    }
}

pub(crate) fn wal_prepared(took: Duration, bytes: u64) {
    if let Some(o) = OBSERVER.get() {
        o.wal_prepared(took, bytes);
    }
}

pub(crate) fn wal_prepare_failed() {
    if let Some(o) = OBSERVER.get() {
        o.wal_prepare_failed();
    }
}
