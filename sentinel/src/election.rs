//! Sentinel leader election through etcd's election API.
//!
//! Each sentinel holds a lease (TTL `lease_ttl`), publishes itself under
//! `sentinels/{id}` with it, and campaigns with its gRPC address as the
//! value. The winner's election key and create revision become its [`Fence`]:
//! every metadata write compares them, so a deposed leader cannot write.
//!
//! A leader steps down on its own, before etcd can expire its lease and let
//! another sentinel win: when no keep-alive has succeeded for two thirds of
//! the TTL it publishes `Role::Follower` first, then starts over.

use std::time::{Duration, Instant};

use etcd_client::{Client, PutOptions, ResignOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::keys::Keys;
use crate::model::SentinelRecord;
use crate::store::Fence;

/// What this sentinel is right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Not leading: reads from the view, forwards writes.
    Follower,
    /// Leading, with the fence every write must carry.
    Leader(Fence),
}

impl Role {
    /// The fence, when leading.
    pub fn fence(&self) -> Option<&Fence> {
        match self {
            Role::Leader(f) => Some(f),
            Role::Follower => None,
        }
    }
}

/// Identity a sentinel campaigns with.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub address: String,
    /// Published with the address, for `cluster status`.
    pub http_address: Option<std::net::SocketAddr>,
    pub ttl: Duration,
}

/// Runs the election until `token` is cancelled, publishing the role.
pub async fn run(client: Client, keys: Keys, me: Candidate, role: watch::Sender<Role>, token: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !token.is_cancelled() {
        match term(client.clone(), &keys, &me, &role, &token).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, "sentinel election: retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = token.cancelled() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
        role.send_replace(Role::Follower);
    }
}

/// One lease's worth of campaigning (and perhaps leading).
async fn term(
    mut client: Client,
    keys: &Keys,
    me: &Candidate,
    role: &watch::Sender<Role>,
    token: &CancellationToken,
) -> Result<(), etcd_client::Error> {
    let ttl_secs = me.ttl.as_secs().max(2) as i64;
    let lease = client.lease_grant(ttl_secs, None).await?.id();
    let record = SentinelRecord {
        id: me.id.clone(),
        address: me.address.clone(),
        http_address: me.http_address.map(|a| a.to_string()).unwrap_or_default(),
    };
    client
        .put(
            keys.sentinel(&me.id),
            serde_json::to_string(&record).unwrap_or_default(),
            Some(PutOptions::new().with_lease(lease)),
        )
        .await?;
    let lost = CancellationToken::new();
    let keeper = tokio::spawn(keep_alive(client.clone(), lease, me.ttl, lost.clone(), token.clone()));

    let result = async {
        let won = tokio::select! {
            won = client.campaign(keys.election(), me.address.clone(), lease) => won?,
            _ = lost.cancelled() => return Ok(()),
            _ = token.cancelled() => return Ok(()),
        };
        let Some(leader) = won.leader().cloned() else { return Ok(()) };
        let fence = Fence { key: leader.key().to_vec(), revision: leader.rev() };
        tracing::info!(id = %me.id, address = %me.address, revision = fence.revision, "became sentinel leader");
        role.send_replace(Role::Leader(fence));
        tokio::select! {
            _ = lost.cancelled() => {
                role.send_replace(Role::Follower);
                tracing::warn!(id = %me.id, "lost the lease: stepped down as sentinel leader");
            }
            _ = token.cancelled() => {
                role.send_replace(Role::Follower);
                let _ = client.resign(Some(ResignOptions::new().with_leader(leader))).await;
                tracing::info!(id = %me.id, "resigned as sentinel leader");
            }
        }
        Ok::<(), etcd_client::Error>(())
    }
    .await;
    keeper.abort();
    if token.is_cancelled() || lost.is_cancelled() {
        // Best effort: a revoked lease frees the election at once instead of
        // after the TTL.
        let _ = tokio::time::timeout(Duration::from_secs(1), client.lease_revoke(lease)).await;
    }
    result
}

/// Keeps `lease` alive every third of the TTL; cancels `lost` once no
/// keep-alive has succeeded for two thirds of it (before etcd would expire
/// it), or when etcd reports it gone.
async fn keep_alive(mut client: Client, lease: i64, ttl: Duration, lost: CancellationToken, token: CancellationToken) {
    let mut last_ok = Instant::now();
    let step = ttl / 3;
    let mut stream = None;
    loop {
        if last_ok.elapsed() >= ttl * 2 / 3 {
            lost.cancel();
            return;
        }
        if stream.is_none() {
            stream = tokio::time::timeout(step, client.lease_keep_alive(lease)).await.ok().and_then(Result::ok);
        }
        let mut pause = Duration::from_millis(200);
        if let Some((keeper, responses)) = &mut stream {
            let alive = tokio::time::timeout(step, async {
                keeper.keep_alive().await?;
                responses.message().await
            })
            .await;
            match alive {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                    last_ok = Instant::now();
                    pause = step;
                }
                Ok(Ok(Some(_))) => {
                    // TTL 0: etcd says the lease is gone.
                    lost.cancel();
                    return;
                }
                _ => stream = None,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = token.cancelled() => return,
        }
    }
}
