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
        let answer = tokio::time::timeout_at(deadline, sentinels.controlled_shutdown(req)).await;
        let Ok(answer) = answer else { break };
        let (remaining, stranded) = match answer {
            Ok(pb::ControlledShutdownResponse { error: None, remaining, stranded }) => (remaining, stranded),
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
        // Done when nothing is left to move and this broker's own state
        // agrees (the moves reach it through its assignment stream; a
        // broker stopping at the same time may just have handed it more).
        let stranded_here =
            |r: &crate::partition::Replica| stranded.iter().any(|s| s.topic == r.topic && s.partition == r.partition);
        if remaining.is_empty() && partitions.led().iter().all(|r| stranded_here(r)) {
            if stranded.is_empty() {
                tracing::info!(partitions_led = led, "controlled shutdown: every partition handed over");
            } else {
                let names: Vec<String> = stranded.iter().map(|s| format!("{}/{}", s.topic, s.partition)).collect();
                tracing::warn!(partitions = ?names, "controlled shutdown: no other live replica; offline until restart");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
