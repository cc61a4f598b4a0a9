//! The leader side of replication: managing the ISR.
//!
//! Every `isr_check_interval` the leader of each partition compares its
//! followers' progress with the ISR: a member that has not caught up with
//! the log end for `replica_lag_max` leaves it, a replica whose log end has
//! reached the high watermark (and this term's start) joins it. Changes go
//! through the sentinel leader (`AlterIsr`), fenced by the leader epoch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goulette_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

use crate::link::SentinelClient;
use crate::partition::Partitions;
use crate::replica::Replica;

/// The leader side: periodically shrinks and expands the ISR of every
/// partition this broker leads.
pub async fn manage_isr(
    partitions: Arc<Partitions>,
    sentinels: Arc<SentinelClient>,
    lag_max: Duration,
    every: Duration,
    token: CancellationToken,
) {
    let me = partitions.broker_id();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = token.cancelled() => return,
        }
        for replica in partitions.all() {
            let Some((state, wanted)) = wanted_isr(&replica, me, lag_max) else { continue };
            // Count the replicas being added before etcd has them, so that
            // nothing is acknowledged without them if the change lands.
            replica.set_pending_isr(wanted.iter().copied().filter(|r| !state.isr.contains(r)).collect());
            let req = pb::AlterIsrRequest {
                broker_id: me,
                topic: replica.topic.clone(),
                partition: replica.partition,
                leader_epoch: state.leader_epoch,
                isr: wanted.clone(),
            };
            match sentinels.alter_isr(req).await {
                Ok(pb::AlterIsrResponse { error: None, state: Some(new) }) => {
                    tracing::info!(topic = %replica.topic, partition = replica.partition, from = ?state.isr, to = ?new.isr, "ISR changed");
                    let metrics = partitions.metrics();
                    metrics.isr_shrinks.inc_by(state.isr.iter().filter(|r| !new.isr.contains(r)).count() as u64);
                    metrics.isr_expands.inc_by(new.isr.iter().filter(|r| !state.isr.contains(r)).count() as u64);
                    replica.set_state(new);
                }
                Ok(r) => {
                    tracing::warn!(topic = %replica.topic, partition = replica.partition, error = ?r.error, "ISR change refused");
                    // Refused: nothing was added.
                    replica.set_pending_isr(Vec::new());
                    if let Some(current) = r.state {
                        replica.set_state(current);
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %replica.topic, partition = replica.partition, error = %e, "ISR change failed")
                }
            }
        }
    }
}

/// The ISR this leader should have now, with the state it was computed
/// from, if it differs from the current one.
fn wanted_isr(replica: &Replica, me: u32, lag_max: Duration) -> Option<(pb::PartitionState, Vec<u32>)> {
    let state = replica.state();
    if state.leader != Some(me) {
        return None;
    }
    let term = replica.term()?;
    let progress = replica.followers();
    let high_watermark = replica.high_watermark();
    let now = Instant::now();
    let wanted: Vec<u32> = state
        .replicas
        .iter()
        .copied()
        .filter(|&r| {
            if r == me {
                return true;
            }
            let p = progress.get(&r);
            if state.isr.contains(&r) {
                // Members get a full lag_max from the start of the term.
                let since = p.map_or(term.started, |p| p.caught_up_at.max(term.started));
                now.duration_since(since) <= lag_max
            } else {
                // Only a follower that is fetching right now may join.
                p.is_some_and(|p| {
                    !p.streams.is_empty() && p.log_end >= high_watermark && p.log_end >= term.start_offset
                })
            }
        })
        .collect();
    (wanted != state.isr).then_some((state, wanted))
}
