//! Follows the security stream of the sentinels: applies each update to
//! the broker's users, then tells the sentinel leader which revision it
//! applied (the leader answers a user change only once every live broker
//! has; see the sentinel's `security_acks`).

use std::sync::Arc;
use std::time::Duration;

use goulette_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

use super::Security;
use crate::link::{SentinelClient, Sentinels, follow, pause};
use goulette_proto::v1::sentinel_internal_client::SentinelInternalClient;
use tonic::transport::Channel;

/// Times a report of an applied update is tried (a leader election in
/// progress answers NO_LEADER for a moment).
const REPORT_ATTEMPTS: usize = 5;

/// Applies every security update until `token` is cancelled, reconnecting
/// (to the next sentinel) when the stream ends.
pub async fn run(
    broker_id: u32,
    addresses: Vec<String>,
    security: Arc<Security>,
    sentinels: Arc<SentinelClient>,
    token: CancellationToken,
) {
    let open = |mut client: SentinelInternalClient<Channel>| async move {
        client.watch_security(pb::WatchSecurityRequest { broker_id }).await
    };
    let apply = |update: pb::SecurityUpdate| {
        let (security, sentinels, token) = (&security, &sentinels, &token);
        async move {
            security.users.apply(&update);
            security.acls.apply(&update.acls);
            tracing::info!(users = update.users.len(), revision = update.revision, "applied a security update");
            report(broker_id, update.revision, sentinels, token).await;
        }
    };
    follow(Sentinels::for_streams(&addresses), "security", &token, open, apply).await;
}

/// Tells the sentinel leader `revision` is applied here.
async fn report(broker_id: u32, revision: u64, sentinels: &SentinelClient, token: &CancellationToken) {
    let req = pb::SecurityAppliedRequest { broker_id, revision };
    for _ in 0..REPORT_ATTEMPTS {
        match sentinels.security_applied(req).await {
            Ok(r) if r.error.is_none() => return,
            Ok(r) => tracing::debug!(error = ?r.error, "the sentinel leader did not take the applied revision"),
            Err(e) => tracing::debug!(error = %e, "cannot report the applied security revision"),
        }
        if !pause(token, Duration::from_millis(200)).await {
            return;
        }
    }
    tracing::warn!(revision, "could not tell the sentinel leader a security update is applied; user changes will wait");
}
