//! Waiting for durability as a task, on storage's group-commit rounds.
//!
//! Under `flush=always` every produce request, and every follower's fetch
//! response, waits until its batches are on stable storage. Storage owns
//! the rounds (`goulette_storage::log` `durability`); this is the thin async
//! adapter: a task polls [`PartitionLog::poll_durable`] with its waker, and
//! the one told to run the rounds does so on a blocking thread. So there is
//! at most one blocking thread per partition, and one hand-off per
//! fdatasync instead of a blocked thread per request (which, with a window
//! of requests in flight, cost more than the fdatasyncs themselves).

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use goulette_storage::{DurableWait, PartitionLog, PendingAppend, StorageError};

/// Returns once `pending` is durable under the log's flush policy;
/// `Truncated` when a truncation removed it, the log's error when an
/// fdatasync failed or the log was closed.
pub async fn wait_durable(log: &Arc<PartitionLog>, pending: &PendingAppend) -> Result<(), StorageError> {
    poll_fn(|cx| match log.poll_durable(pending, cx.waker()) {
        Ok(DurableWait::Durable) => Poll::Ready(Ok(())),
        Ok(DurableWait::Waiting) => Poll::Pending,
        Ok(DurableWait::RunRounds) => {
            let log = log.clone();
            tokio::task::spawn_blocking(move || log.run_rounds());
            Poll::Pending
        }
        Err(e) => Poll::Ready(Err(e)),
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use goulette_storage::{Batch, BatchBuilder, Compression, FlushPolicy, LogConfig, Record};

    use super::*;

    fn batch(n: usize) -> Batch {
        let mut b = BatchBuilder::new(Compression::None);
        for i in 0..n {
            b.push(&Record { value: bytes::Bytes::from(format!("v{i}")), ..Record::default() });
        }
        Batch::parse(b.build().unwrap()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_many_concurrent_waiters_each_should_return_only_once_its_batch_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
        let log = Arc::new(PartitionLog::open(dir.path(), config).unwrap());
        let mut waiters = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let pending = log.append_deferred(&batch(3), 1).unwrap();
            let log = log.clone();
            waiters.spawn(async move {
                wait_durable(&log, &pending).await.unwrap();
                assert!(log.durable_offset() >= pending.info.next_offset, "returned before durable");
            });
        }
        while let Some(done) = waiters.join_next().await {
            done.unwrap();
        }
        assert_eq!(log.durable_offset(), 600);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_a_truncation_overtaking_an_append_its_wait_should_fail_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
        let log = Arc::new(PartitionLog::open(dir.path(), config).unwrap());
        log.append(&batch(2), 1).unwrap();
        let lost = log.append_deferred(&batch(2), 1).unwrap();
        log.truncate_to(2).unwrap();
        let waited = wait_durable(&log, &lost).await;
        assert!(matches!(waited, Err(StorageError::Truncated { base_offset: 2 })), "{waited:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_a_closed_log_a_wait_should_fail_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() };
        let log = Arc::new(PartitionLog::open(dir.path(), config).unwrap());
        let pending = log.append_deferred(&batch(1), 1).unwrap();
        // Closing flushes: what was appended before is durable.
        log.close().unwrap();
        wait_durable(&log, &pending).await.unwrap();
        let late = log.try_append_deferred(&batch(1), 1);
        assert!(matches!(late, Some(Err(StorageError::Closed { .. }))), "{late:?}");
    }
}
