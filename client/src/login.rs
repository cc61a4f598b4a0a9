//! Logging in to a cluster whose gRPC API requires it: a SCRAM exchange
//! with a sentinel (`AuthService.Login`) that ends with a short-lived
//! bearer token, which every later call of this process sends (to
//! sentinels and brokers alike). The password never crosses the network.
//!
//! The token is short-lived, so [`login`] keeps the process logged in: a
//! task logs in again at two thirds of each token's lifetime, for as long
//! as the returned [`Session`] is kept.

use std::time::Duration;

use goulette_auth::{Mechanism, ScramClient};
use goulette_proto::v1::auth_service_client::AuthServiceClient;
use goulette_proto::v1::{self as pb};

use crate::error::{ClientError, Result};

/// How long one login may take (it includes the server's delay after a
/// failure).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A renewal that failed is tried again after this, doubling up to
/// [`RETRY_MAX`]: the current token stays in use meanwhile.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// A token and when it expires.
#[derive(Clone)]
pub struct Token {
    pub token: String,
    /// The server's clock.
    pub expires_at_ms: i64,
    /// Its lifetime when issued (renewals go by this, not by clocks).
    pub ttl: Duration,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("expires_at_ms", &self.expires_at_ms).finish_non_exhaustive()
    }
}

/// A process logged in: while it is kept, a task renews the token before
/// it expires (so it holds the password in memory); dropping it stops the
/// renewals, and calls fail once the last token expires.
#[must_use = "dropping the session stops renewing its token"]
#[derive(Debug)]
pub struct Session {
    token: Token,
    renewer: tokio::task::JoinHandle<()>,
}

impl Session {
    /// The token of the first login.
    pub fn token(&self) -> &Token {
        &self.token
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Logs in as `user` with SCRAM-SHA-512 on the first sentinel that
/// answers, makes every later call of this process carry the token, and
/// keeps it renewed while the session lives (on the current runtime).
pub async fn login(sentinels: &[String], user: &str, password: &str) -> Result<Session> {
    let token = login_once(sentinels, user, password).await?;
    let renewer = tokio::spawn(renew(sentinels.to_vec(), user.to_owned(), password.to_owned(), token.ttl));
    Ok(Session { token, renewer })
}

/// When to renew a token of lifetime `ttl`: at two thirds of it, which
/// leaves a third for retries and for a server clock stepped forward.
fn renew_after(ttl: Duration) -> Duration {
    (ttl * 2 / 3).max(Duration::from_millis(100))
}

async fn renew(sentinels: Vec<String>, user: String, password: String, ttl: Duration) {
    let mut wait = renew_after(ttl);
    let mut retry = RETRY_MIN;
    loop {
        tokio::time::sleep(wait).await;
        match login_once(&sentinels, &user, &password).await {
            Ok(token) => {
                tracing::debug!(%user, ttl_ms = token.ttl.as_millis() as u64, "token renewed");
                wait = renew_after(token.ttl);
                retry = RETRY_MIN;
            }
            Err(e) => {
                tracing::warn!(%user, error = %e, retry_in_ms = retry.as_millis() as u64, "renewing the login failed; the current token stays in use");
                wait = retry;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

/// One login: the token is in use for every later call when this returns.
async fn login_once(sentinels: &[String], user: &str, password: &str) -> Result<Token> {
    let mut last = None;
    for address in sentinels {
        match tokio::time::timeout(LOGIN_TIMEOUT, login_at(address, user, password)).await {
            Ok(Ok(token)) => {
                goulette_proto::channel::use_bearer(&token.token).map_err(ClientError::InvalidArgument)?;
                return Ok(token);
            }
            // Refused credentials are an answer: no other sentinel will differ.
            Ok(Err(e @ ClientError::Server { .. })) => return Err(e),
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(ClientError::InvalidArgument(format!("login at {address} timed out"))),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::InvalidArgument("no sentinel to log in at".into())))
}

async fn login_at(address: &str, user: &str, password: &str) -> Result<Token> {
    let options = goulette_proto::channel::ChannelOptions::INTERNAL.without_keep_alive();
    let channel = goulette_proto::channel::lazy(address, options)
        .map_err(|e| ClientError::InvalidArgument(format!("{address}: {e}")))?;
    let mut client = AuthServiceClient::new(channel);
    let mut scram = ScramClient::new(Mechanism::ScramSha512, user, password);
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let first =
        pb::LoginRequest { mechanism: Mechanism::ScramSha512.name().to_owned(), auth_bytes: scram.first().into() };
    let _ = tx.send(first).await;
    let mut answers = client
        .login(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| ClientError::transport(format!("log in at {address}"), &s))?
        .into_inner();
    let mut next = async || -> Result<pb::LoginResponse> {
        let answer = answers
            .message()
            .await
            .map_err(|s| ClientError::transport(format!("log in at {address}"), &s))?
            .ok_or_else(|| ClientError::InvalidArgument(format!("{address} ended the login")))?;
        match &answer.error {
            Some(e) => Err(ClientError::from_proto(e)),
            None => Ok(answer),
        }
    };
    let server_first = next().await?;
    let last = scram.respond(&server_first.auth_bytes).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
    let _ = tx.send(pb::LoginRequest { mechanism: String::new(), auth_bytes: last.into() }).await;
    let done = next().await?;
    // The server proves it knows the credential too (no impostor sentinel).
    scram.verify(&done.auth_bytes).map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
    // A server without ttl_ms: its expiry against this clock, at least 1 s.
    let ttl_ms = if done.ttl_ms > 0 {
        done.ttl_ms
    } else {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (done.expires_at_ms - now.as_millis() as i64).max(1000)
    };
    Ok(Token { token: done.token, expires_at_ms: done.expires_at_ms, ttl: Duration::from_millis(ttl_ms as u64) })
}
