//! Controlled shutdown: what a broker does on SIGTERM before it stops
//! serving, so that a rolling restart costs clients one leader switch and
//! no failed write.
//!
//! 1. Stop following: its leaders must not count it back into their ISRs.
//! 2. Ask the sentinel leader to move every partition it leads to another
//!    live in-sync replica and to take it out of every ISR (op
//!    `controlled-shutdown`), until nothing is left to move or `timeout`
//!    passes; wait until its own assignment says it leads nothing movable.
//!    Producers get `NOT_LEADER` (their in-flight `acks=all` requests too,
//!    once the epoch changes) and retry on the new leader; idempotence
//!    keeps those retries single.
//! 3. (`server::run`) stop accepting, answer what is in flight, close the
//!    logs, then [`deregister`]: the session ends at once, not at its timeout.
//!
//! Partitions with no other in-sync replica (RF=1, followers behind) stay
//! where they are and become offline when the broker goes, as with a crash.

use std::time::Duration;

use goulette_proto::v1 as pb;

use crate::link::SentinelClient;
use crate::partition::Partitions;

/// Moves leadership away; returns once this broker leads nothing that can
/// be moved, or at `timeout`.
pub async fn hand_over(partitions: &Partitions, sentinels: &SentinelClient, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    partitions.stop_following();
    let led = partitions.led().len();
    tracing::info!(partitions_led = led, "controlled shutdown: handing partitions over");
    let req = pb::ControlledShutdownRequest {
        broker_id: partitions.broker_id(),
        session_id: partitions.session(),
        finished: false,
    };
    while tokio::time::Instant::now() < deadline {
        let remaining = match sentinels.controlled_shutdown(req).await {
            Ok(pb::ControlledShutdownResponse { error: None, remaining }) => remaining,
            Ok(r) => {
                tracing::warn!(error = ?r.error, "controlled shutdown refused; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "controlled shutdown: no sentinel answered; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // The moves reach this broker through its assignment stream.
        let kept =
            |r: &crate::partition::Replica| remaining.iter().any(|s| s.topic == r.topic && s.partition == r.partition);
        while partitions.led().iter().any(|r| !kept(r)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A partition with other replicas may get one back in sync: ask
        // again. One without (RF=1) goes offline with this broker.
        if remaining.iter().all(|s| s.replicas.len() <= 1) {
            let unmovable: Vec<String> = remaining.iter().map(|s| format!("{}/{}", s.topic, s.partition)).collect();
            if unmovable.is_empty() {
                tracing::info!(partitions_led = led, "controlled shutdown: every partition handed over");
            } else {
                tracing::warn!(?unmovable, "controlled shutdown: single-replica partitions go offline until restart");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let still: Vec<String> = partitions.led().iter().map(|r| format!("{}/{}", r.topic, r.partition)).collect();
    tracing::warn!(?still, "controlled shutdown timed out; these go offline until another replica is in sync");
}

/// Ends this broker's session now (its logs are closed).
pub async fn deregister(partitions: &Partitions, sentinels: &SentinelClient) {
    let session_id = partitions.session();
    if session_id == 0 {
        return;
    }
    let req = pb::ControlledShutdownRequest { broker_id: partitions.broker_id(), session_id, finished: true };
    match tokio::time::timeout(Duration::from_secs(3), sentinels.controlled_shutdown(req)).await {
        Ok(Ok(pb::ControlledShutdownResponse { error: None, .. })) => tracing::info!("deregistered"),
        Ok(Ok(r)) => tracing::warn!(error = ?r.error, "deregistration refused; the session will time out"),
        Ok(Err(e)) => tracing::warn!(error = %e, "deregistration failed; the session will time out"),
        Err(_) => tracing::warn!("deregistration timed out; the session will time out"),
    }
}
