//! The broker's compactor: one thread that, every `interval`, offers a
//! pass to each compacted partition this broker holds (leader or follower:
//! every replica compacts its own log, as in Kafka), with one key map
//! (`map_bytes`) and one I/O budget (`io_bytes_per_sec`) for all of them,
//! and counts what the passes did in the broker's metrics.

use std::sync::Arc;

use goulette_storage::{OffsetMap, StorageError, Throttle};
use tokio_util::sync::CancellationToken;

use crate::compaction::CompactorConfig;
use crate::partition::Partitions;
use crate::replica::Replica;

/// Offers a pass to every compacted partition every `config.interval`
/// until `stop`.
pub async fn run(partitions: Arc<Partitions>, config: CompactorConfig, stop: CancellationToken) {
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut map = Some(OffsetMap::new(config.map_bytes));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let (p, mut m) = (partitions.clone(), map.take().unwrap_or_else(|| OffsetMap::new(config.map_bytes)));
        let io = config.io_bytes_per_sec;
        let Ok((m, damaged)) = tokio::task::spawn_blocking(move || {
            let damaged = round(&p, &mut m, io);
            (m, damaged)
        })
        .await
        else {
            continue;
        };
        map = Some(m);
        // Damage a pass found is handled as a read's would be: the replica
        // stops being served and is repaired from its leader.
        for (replica, reason) in damaged {
            partitions.fail(&replica, reason, true).await;
        }
    }
}

/// One round over the compacted partitions held; returns the replicas
/// whose data failed a check, with why.
fn round(partitions: &Partitions, map: &mut OffsetMap, io_bytes_per_sec: u64) -> Vec<(Arc<Replica>, String)> {
    let metrics = partitions.metrics();
    let mut damaged = Vec::new();
    for replica in partitions.all() {
        if replica.log.compaction().is_none() || replica.log.failure().is_some() {
            continue;
        }
        let mut throttle = Throttle::new((io_bytes_per_sec > 0).then_some(io_bytes_per_sec));
        let now = goulette_storage::clock::retention_now_ms();
        match replica.log.compact(map, &mut throttle, now, replica.high_watermark()) {
            Ok(None) => {}
            Ok(Some(report)) => {
                metrics.compaction_passes.inc();
                metrics.compaction_records_removed.inc_by(report.stats.records_removed);
                metrics.compaction_bytes_read.inc_by(report.stats.bytes_read);
                metrics.compaction_bytes_written.inc_by(report.stats.bytes_written);
            }
            Err(e) => {
                metrics.compaction_errors.inc();
                tracing::error!(topic = %replica.topic, partition = replica.partition, error = %e, "compaction failed");
                if matches!(e, StorageError::Corruption { .. }) {
                    damaged.push((replica.clone(), format!("compaction found damage: {e}")));
                }
            }
        }
    }
    damaged
}
