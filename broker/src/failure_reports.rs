//! The task that reports failed replicas (see `failures`) to the sentinel
//! leader, so that their leadership moves, and retries opening them.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::link::SentinelClient;
use crate::partition::Partitions;

/// Reports failed replicas to the sentinel leader and retries opening them,
/// every second and whenever a replica fails, until `token` is cancelled.
pub async fn run(partitions: Arc<Partitions>, sentinels: Arc<SentinelClient>, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = partitions.failures().wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = token.cancelled() => return,
        }
        for mut report in partitions.failures().due() {
            report.broker_id = partitions.broker_id();
            let (topic, partition) = (report.topic.clone(), report.partition);
            match sentinels.report_replica_failure(report).await {
                Ok(resp) if resp.error.is_none() => {
                    if !resp.moved {
                        tracing::warn!(
                            topic,
                            partition,
                            "no other in-sync replica can take over the failed replica; the partition stays unavailable here"
                        );
                    }
                    partitions.failures().reported(&topic, partition, resp.moved);
                }
                Ok(resp) => {
                    tracing::warn!(topic, partition, error = ?resp.error, "reporting a failed replica was refused")
                }
                Err(e) => tracing::warn!(topic, partition, error = %e, "reporting a failed replica failed"),
            }
        }
        partitions.fail_broken_logs().await;
        partitions.retry_failed().await;
    }
}
