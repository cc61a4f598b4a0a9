//! `AuthService.Login`: a SCRAM login on the gRPC API, answered with a
//! bearer token signed by the cluster's newest token key. Users and keys
//! come from this sentinel's view; failures cost what they cost on the
//! Kafka listener (`goulette_auth::guard`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use goulette_auth::guard::{Failure, LoginGuard};
use goulette_auth::{AuthError, Decoy, Mechanism, ScramServer};
use goulette_proto::v1::{self as pb, ErrorCode};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::Sentinel;

const LISTENER: &str = "grpc";
/// How long a client gets for each step of its login.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// What logins on this sentinel share.
#[derive(Debug)]
pub(super) struct Logins {
    decoy: Decoy,
    guard: LoginGuard,
    token_ttl: Duration,
}

impl Logins {
    pub(super) fn new(auth: &goulette_proto::ops::auth::AuthArgs) -> Logins {
        let on_failure: goulette_auth::guard::OnFailure = Arc::new(|_, reason| {
            crate::tls_metrics::TLS.auth_failures.get_or_create(&crate::tls_metrics::ReasonLabel { reason }).inc();
        });
        Logins {
            decoy: Decoy::random(),
            guard: LoginGuard::new(auth.auth_failure_delay, auth.auth_failures_per_minute, on_failure),
            token_ttl: auth.auth_token_ttl,
        }
    }
}

fn failed(message: &str) -> pb::LoginResponse {
    pb::LoginResponse {
        error: Some(pb::Error::new(ErrorCode::AuthenticationFailed, message.to_owned())),
        ..Default::default()
    }
}

impl Sentinel {
    /// Runs one login on its own task, answering on the returned stream.
    pub(super) fn login(
        self: &Arc<Self>,
        peer: Option<SocketAddr>,
        mut inbound: Streaming<pb::LoginRequest>,
    ) -> ReceiverStream<Result<pb::LoginResponse, Status>> {
        let (tx, rx) = mpsc::channel(2);
        let me = self.clone();
        tokio::spawn(async move {
            let logins = &me.logins;
            let first = match tokio::time::timeout(STEP_TIMEOUT, inbound.message()).await {
                Ok(Ok(Some(first))) => first,
                _ => return,
            };
            let Some(mechanism) = Mechanism::parse(&first.mechanism) else {
                let _ = tx.send(Ok(failed("unsupported mechanism: SCRAM-SHA-256 and SCRAM-SHA-512 are served"))).await;
                return;
            };
            let outcome = async {
                if !logins.guard.admits(peer) {
                    return Err((String::new(), Failure::Throttled));
                }
                let view = me.view();
                let credential_of = |user: &str| {
                    view.users.get(user)?.scram_credentials().into_iter().find(|c| c.mechanism == mechanism)
                };
                // The cluster's decoy (this process's until the leader made one).
                let shared =
                    view.token_keys.as_ref().and_then(|(k, _)| k.decoy_secret()).map(|s| Decoy::from_secret(&s));
                let decoy = shared.as_ref().unwrap_or(&logins.decoy);
                let (server, server_first) = ScramServer::start(mechanism, &first.auth_bytes, credential_of, decoy)
                    .map_err(|e| (String::new(), failure_of(&e)))?;
                let user = server.user().to_owned();
                let answer = pb::LoginResponse { auth_bytes: server_first.into(), ..Default::default() };
                tx.send(Ok(answer)).await.map_err(|_| (user.clone(), Failure::Malformed))?;
                let last = match tokio::time::timeout(STEP_TIMEOUT, inbound.message()).await {
                    Ok(Ok(Some(last))) => last,
                    _ => return Err((user, Failure::Malformed)),
                };
                let (user, server_final) =
                    server.finish(&last.auth_bytes).map_err(|e| (user.clone(), failure_of(&e)))?;
                Ok((user, server_final))
            }
            .await;
            match outcome {
                Ok((user, server_final)) => {
                    let keys = me.view().token_keys.as_ref().map(|(k, _)| k.keys()).unwrap_or_default();
                    let Some(key) = keys.last() else {
                        let _ = tx.send(Ok(failed("no token key yet: the sentinel leader makes one; retry"))).await;
                        return;
                    };
                    logins.guard.succeeded(LISTENER, peer, &user, mechanism.name());
                    let expires = crate::model::now_ms() + logins.token_ttl.as_millis() as i64;
                    let token = goulette_auth::token::issue(key, &user, expires);
                    let answer = pb::LoginResponse {
                        error: None,
                        auth_bytes: server_final.into(),
                        token,
                        expires_at_ms: expires,
                        ttl_ms: logins.token_ttl.as_millis() as i64,
                    };
                    let _ = tx.send(Ok(answer)).await;
                }
                Err((user, failure)) => {
                    let delay = logins.guard.failed(LISTENER, peer, &user, mechanism.name(), failure);
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(Ok(failed("authentication failed: invalid credentials"))).await;
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

fn failure_of(e: &AuthError) -> Failure {
    match e {
        AuthError::Failed => Failure::InvalidCredentials,
        AuthError::Unsupported(_) => Failure::Unsupported,
        _ => {
            tracing::info!(error = %e, "a gRPC client broke the SCRAM exchange");
            Failure::Malformed
        }
    }
}
