//! Keeping etcd leases alive on behalf of the processes that hold them:
//! broker sessions and consumer-group members. Any sentinel can do it
//! (leases are etcd's, not the leader's), so a session survives a sentinel
//! failover.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper};
use tokio::sync::Mutex;

use crate::error::{Result, SentinelError};
use crate::etcd_metrics::ETCD;

/// One lease's keep-alive stream, opened on its first refresh.
struct Session {
    keepalive: Mutex<Option<(LeaseKeeper, LeaseKeepAliveStream)>>,
    last_used: std::sync::Mutex<Instant>,
}

impl Default for Session {
    fn default() -> Self {
        Session { keepalive: Mutex::new(None), last_used: std::sync::Mutex::new(Instant::now()) }
    }
}

/// Keep-alive streams by lease id.
pub struct Leases {
    client: Client,
    /// How long one refresh may take.
    request_timeout: Duration,
    /// Streams unused this long are closed (their holder died or re-registered).
    idle: Duration,
    sessions: std::sync::Mutex<HashMap<i64, Arc<Session>>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").field("request_timeout", &self.request_timeout).finish_non_exhaustive()
    }
}

impl Leases {
    pub fn new(client: Client, request_timeout: Duration, idle: Duration) -> Leases {
        Leases { client, request_timeout, idle, sessions: std::sync::Mutex::new(HashMap::new()) }
    }

    /// Refreshes `lease`; `gone()` when it has expired. Each lease has its
    /// own stream and lock, so one slow stream never delays another holder.
    /// The whole refresh (opening a stream included) takes at most the
    /// request timeout: a frozen etcd answers `EtcdTimeout` (UNAVAILABLE),
    /// as an unreachable one does, before the holder's own call times out.
    pub async fn keep_alive(&self, lease: i64, gone: impl Fn() -> SentinelError) -> Result<()> {
        match tokio::time::timeout(self.request_timeout, self.refresh(lease, gone)).await {
            Ok(result) => result,
            Err(_) => {
                ETCD.errors.inc();
                Err(SentinelError::EtcdTimeout { context: "keep a session alive".into(), after: self.request_timeout })
            }
        }
    }

    async fn refresh(&self, lease: i64, gone: impl Fn() -> SentinelError) -> Result<()> {
        let slot = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            sessions.retain(|_, s| s.last_used.lock().unwrap_or_else(|p| p.into_inner()).elapsed() < self.idle);
            sessions.entry(lease).or_insert_with(|| Arc::new(Session::default())).clone()
        };
        *slot.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let mut keepalive = slot.keepalive.lock().await;
        let lease_error = |e: etcd_client::Error| {
            if e.to_string().contains("lease not found") {
                gone()
            } else {
                ETCD.errors.inc();
                SentinelError::etcd("keep a session alive", e)
            }
        };
        for attempt in 0..2 {
            if keepalive.is_none() {
                *keepalive = Some(self.client.clone().lease_keep_alive(lease).await.map_err(lease_error)?);
            }
            let Some((keeper, responses)) = keepalive.as_mut() else { continue };
            let sent = tokio::time::timeout(self.request_timeout, async {
                keeper.keep_alive().await?;
                responses.message().await
            })
            .await;
            match sent {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => return Ok(()),
                Ok(Ok(Some(_))) => {
                    *keepalive = None;
                    return Err(gone());
                }
                Ok(Err(e)) if attempt == 1 => {
                    *keepalive = None;
                    return Err(lease_error(e));
                }
                // A broken or silent stream (etcd restarted): open a new one once.
                _ => *keepalive = None,
            }
        }
        ETCD.errors.inc();
        Err(SentinelError::etcd(
            "keep a session alive",
            etcd_client::Error::InvalidArgs("keep-alive stream closed".into()),
        ))
    }

    /// Ends `lease` now (its keys are deleted with it).
    pub async fn revoke(&self, lease: i64) -> Result<()> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&lease);
        match self.client.clone().lease_revoke(lease).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("lease not found") => Ok(()),
            Err(e) => {
                ETCD.errors.inc();
                Err(SentinelError::etcd("revoke a session", e))
            }
        }
    }
}
