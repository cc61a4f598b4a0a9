//! Logging in to a cluster whose gRPC API requires it: a SCRAM exchange
//! with a sentinel (`AuthService.Login`) that ends with a short-lived
//! bearer token, which every later call of this process sends (to
//! sentinels and brokers alike). The password never crosses the network.

use std::time::Duration;

use goulette_auth::{Mechanism, ScramClient};
use goulette_proto::v1::auth_service_client::AuthServiceClient;
use goulette_proto::v1::{self as pb};

use crate::error::{ClientError, Result};

/// How long one login may take (it includes the server's delay after a
/// failure).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);

/// A token and when it expires.
#[derive(Clone)]
pub struct Token {
    pub token: String,
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("expires_at_ms", &self.expires_at_ms).finish_non_exhaustive()
    }
}

/// Logs in as `user` with SCRAM-SHA-512 on the first sentinel that
/// answers, and makes every later call of this process carry the token.
pub async fn login(sentinels: &[String], user: &str, password: &str) -> Result<Token> {
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
    Ok(Token { token: done.token, expires_at_ms: done.expires_at_ms })
}
