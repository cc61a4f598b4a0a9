//! One completion per batch, shared by its records' deliveries.
//!
//! A record's [`Delivery`](super::Delivery) is its batch's completion and
//! its index in the batch: queuing a record allocates nothing for it, and
//! the sender resolves a whole batch with one store and one wake-up,
//! instead of a channel per record (each an allocation, a send and, for a
//! waiting task, a wake-up of its own). A batch refused as too large is
//! sent again in halves: each half resolves its range of the indexes.

use std::sync::{Arc, Mutex};

use super::RecordMetadata;
use crate::error::{ClientError, Result};

/// The outcome of a batch's records, resolved range by range (one range,
/// unless the batch was split).
#[derive(Debug)]
pub(super) struct Completion {
    topic: String,
    partition: u32,
    resolved: Mutex<Vec<Resolved>>,
    done: tokio::sync::Notify,
}

/// Records `first..first + count` of a batch, and where they landed: the
/// first one's offset (`None` with acks=0) or the error.
#[derive(Debug)]
struct Resolved {
    first: u32,
    count: u32,
    outcome: std::result::Result<Option<u64>, ClientError>,
}

impl Completion {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Resolved>> {
        self.resolved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The outcome of record `index`, once its range is resolved.
    fn outcome_of(&self, index: u32) -> Option<Result<RecordMetadata>> {
        let resolved = self.lock();
        let range = resolved.iter().find(|r| (r.first..r.first + r.count).contains(&index))?;
        Some(match &range.outcome {
            Ok(base) => Ok(RecordMetadata {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: base.map(|b| b + u64::from(index - range.first)),
            }),
            Err(e) => Err(e.clone()),
        })
    }

    /// Waits until record `index` is resolved.
    pub(super) async fn wait(&self, index: u32) -> Result<RecordMetadata> {
        loop {
            let notified = self.done.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a resolution in between is not lost.
            notified.as_mut().enable();
            if let Some(outcome) = self.outcome_of(index) {
                return outcome;
            }
            notified.await;
        }
    }
}

/// The records of a batch not resolved yet: a range of its completion's
/// indexes. Dropped unresolved (the sender ended without an answer), they
/// resolve as `Closed`.
#[derive(Debug)]
pub(super) struct Waiters {
    completion: Arc<Completion>,
    first: u32,
    count: u32,
}

impl Waiters {
    /// The waiters of a new, empty batch for `topic`'s `partition`.
    pub(super) fn new(topic: &str, partition: u32) -> Waiters {
        let completion = Completion {
            topic: topic.to_owned(),
            partition,
            resolved: Mutex::new(Vec::with_capacity(1)),
            done: tokio::sync::Notify::new(),
        };
        Waiters { completion: Arc::new(completion), first: 0, count: 0 }
    }

    /// Adds the next record; returns its completion and index.
    pub(super) fn push(&mut self) -> (Arc<Completion>, u32) {
        let index = self.first + self.count;
        self.count += 1;
        (self.completion.clone(), index)
    }

    /// Records waiting.
    pub(super) fn len(&self) -> usize {
        self.count as usize
    }

    /// Splits off the records from `at` on (as `Vec::split_off`).
    pub(super) fn split_off(&mut self, at: usize) -> Waiters {
        let at = (at as u32).min(self.count);
        let rest = Waiters { completion: self.completion.clone(), first: self.first + at, count: self.count - at };
        self.count = at;
        rest
    }

    /// Resolves every record here: `Ok(base)` with the first one's offset
    /// (`None` with acks=0), or the error for all of them.
    pub(super) fn resolve(mut self, outcome: std::result::Result<Option<u64>, ClientError>) {
        self.resolve_with(outcome);
    }

    fn resolve_with(&mut self, outcome: std::result::Result<Option<u64>, ClientError>) {
        if self.count == 0 {
            return;
        }
        self.completion.lock().push(Resolved { first: self.first, count: self.count, outcome });
        self.count = 0;
        self.completion.done.notify_waiters();
    }
}

impl Drop for Waiters {
    fn drop(&mut self) {
        self.resolve_with(Err(ClientError::Closed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_record_gets_its_offset_from_its_own_range() {
        let mut waiters = Waiters::new("t", 3);
        let deliveries: Vec<_> = (0..5).map(|_| waiters.push()).collect();
        let rest = waiters.split_off(2);
        let (c, i) = deliveries[4].clone();
        let waiting = tokio::spawn(async move { c.wait(i).await });
        tokio::task::yield_now().await;
        rest.resolve(Ok(Some(100)));
        waiters.resolve(Ok(Some(40)));
        let offsets: Vec<_> = {
            let mut v = Vec::new();
            for (c, i) in &deliveries {
                v.push(c.wait(*i).await.unwrap().offset);
            }
            v
        };
        assert_eq!(offsets, vec![Some(40), Some(41), Some(100), Some(101), Some(102)]);
        let landed = waiting.await.unwrap().unwrap();
        assert_eq!((landed.topic.as_str(), landed.partition, landed.offset), ("t", 3, Some(102)));
    }

    #[tokio::test]
    async fn unresolved_waiters_dropped_resolve_as_closed_and_errors_reach_every_record() {
        let mut dropped = Waiters::new("t", 0);
        let (c, i) = dropped.push();
        drop(dropped);
        assert!(matches!(c.wait(i).await, Err(ClientError::Closed)));
        let mut failed = Waiters::new("t", 0);
        let all: Vec<_> = (0..3).map(|_| failed.push()).collect();
        failed.resolve(Err(ClientError::InvalidArgument("no".into())));
        for (c, i) in all {
            assert!(matches!(c.wait(i).await, Err(ClientError::InvalidArgument(_))));
        }
    }
}
