//! SASL on the Kafka listener (SaslHandshake v1, then SaslAuthenticate
//! frames, KIP-152): one [`Session`] per connection. On a listener with
//! SASL mechanisms configured, nothing but ApiVersions, SaslHandshake and
//! SaslAuthenticate is served before a login succeeds; a failed login is
//! answered after the guard's delay, and its connection closed, as Kafka
//! does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_auth::{AuthError, SaslMechanism, ScramServer, plain};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::Kafka;
use crate::security::acls::Caller;
use goulette_auth::guard::Failure;

const LISTENER: &str = "kafka";

/// Where a connection's login stands.
#[derive(Debug)]
enum State {
    /// The listener needs no login.
    Open,
    /// Waiting for SaslHandshake.
    Start,
    /// A mechanism was chosen; waiting for its first SaslAuthenticate.
    Chosen(SaslMechanism),
    /// A SCRAM exchange after the server's first message.
    Scram(Box<ScramServer>),
    /// Logged in as this user.
    Authenticated(String),
    /// A login failed or the protocol was broken: the connection closes.
    Failed,
}

/// One connection's authentication.
#[derive(Debug)]
pub struct Session {
    state: State,
    peer: Option<SocketAddr>,
    /// Whether the connection is over TLS (PLAIN is refused otherwise).
    tls: bool,
    /// The user its client certificate names (`--tls-principal-rules`).
    by_certificate: Option<String>,
    /// Who makes its requests, once asked (until a login changes it).
    caller: Option<Arc<Caller>>,
}

/// A SaslAuthenticate answer, and what follows it.
#[derive(Debug)]
pub struct Authenticated {
    pub response: SaslAuthenticateResponse,
    /// Answer only after this long (a failed login).
    pub delay: Option<Duration>,
    /// Close the connection once the answer is written.
    pub close: bool,
}

impl Session {
    /// A connection of a listener that requires a login (`required`) or not.
    pub fn new(required: bool, peer: Option<SocketAddr>, tls: bool, by_certificate: Option<String>) -> Session {
        Session { state: if required { State::Start } else { State::Open }, peer, tls, by_certificate, caller: None }
    }

    /// The authenticated principal (`User:alice`), if a login succeeded.
    pub fn principal(&self) -> Option<String> {
        match &self.state {
            State::Authenticated(user) => Some(format!("User:{user}")),
            _ => None,
        }
    }

    /// Who makes this connection's requests: the logged-in user, else the
    /// user its certificate names, else `User:ANONYMOUS` (as Kafka), from
    /// the client's address.
    ///
    /// Kept until a login changes it: every request asks.
    pub fn caller(&mut self) -> Arc<Caller> {
        if let Some(caller) = &self.caller {
            return caller.clone();
        }
        let principal = self
            .principal()
            .or_else(|| self.by_certificate.clone())
            .unwrap_or_else(|| crate::security::acls::ANONYMOUS.to_owned());
        let caller = Arc::new(Caller::user(principal, self.peer.map(|p| p.ip())));
        self.caller = Some(caller.clone());
        caller
    }

    /// Whether a request of `key` may be served now.
    pub fn allows(&self, key: ApiKey) -> bool {
        match self.state {
            State::Open | State::Authenticated(_) => true,
            _ => matches!(key, ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate),
        }
    }

    /// Answers SaslHandshake: the mechanism is chosen if the listener offers it.
    pub fn handshake(&mut self, kafka: &Kafka, req: SaslHandshakeRequest) -> SaslHandshakeResponse {
        let offered = &kafka.config.kafka_sasl;
        let names: Vec<StrBytes> = offered.iter().map(|m| StrBytes::from_static_str(m.name())).collect();
        let answer = SaslHandshakeResponse::default().with_mechanisms(names);
        if !matches!(self.state, State::Start) {
            self.state = State::Failed;
            return answer.with_error_code(ResponseError::IllegalSaslState.code());
        }
        match SaslMechanism::parse(&req.mechanism).filter(|m| offered.contains(m)) {
            Some(SaslMechanism::Plain) if !self.tls => {
                // Never offered without TLS (the configuration refuses it);
                // checked again here as the password would travel in clear.
                self.state = State::Failed;
                answer.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
            }
            Some(m) => {
                self.state = State::Chosen(m);
                answer
            }
            None => {
                self.state = State::Failed;
                answer.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
            }
        }
    }

    /// Answers one SaslAuthenticate step.
    pub fn authenticate(&mut self, kafka: &Arc<Kafka>, req: SaslAuthenticateRequest) -> Authenticated {
        let security = &kafka.security;
        let decoy = security.users.decoy_or(&security.decoy);
        let state = std::mem::replace(&mut self.state, State::Failed);
        let step = match state {
            State::Chosen(mechanism) if !security.guard.admits(self.peer) => {
                Err((mechanism, String::new(), Failure::Throttled))
            }
            State::Chosen(SaslMechanism::Plain) => {
                let user = plain::parse(&req.auth_bytes).map(|p| p.user).unwrap_or_default();
                match plain::authenticate(&req.auth_bytes, |u| security.users.credentials_of(u), &decoy) {
                    Ok(user) => Ok((SaslMechanism::Plain, user, Bytes::new())),
                    Err(e) => Err((SaslMechanism::Plain, user, failure_of(&e))),
                }
            }
            State::Chosen(SaslMechanism::Scram(m)) => {
                let started = ScramServer::start(m, &req.auth_bytes, |u| security.users.credential(u, m), &decoy);
                match started {
                    Ok((server, first)) => {
                        self.state = State::Scram(Box::new(server));
                        return Authenticated {
                            response: SaslAuthenticateResponse::default().with_auth_bytes(first.into()),
                            delay: None,
                            close: false,
                        };
                    }
                    Err(e) => Err((SaslMechanism::Scram(m), String::new(), failure_of(&e))),
                }
            }
            State::Scram(server) => {
                let user = server.user().to_owned();
                let mechanism = SaslMechanism::Scram(server.mechanism());
                match server.finish(&req.auth_bytes) {
                    Ok((user, last)) => Ok((mechanism, user, last.into())),
                    Err(e) => Err((mechanism, user, failure_of(&e))),
                }
            }
            State::Open | State::Start | State::Authenticated(_) | State::Failed => {
                return Authenticated {
                    response: SaslAuthenticateResponse::default()
                        .with_error_code(ResponseError::IllegalSaslState.code())
                        .with_error_message(Some(StrBytes::from_static_str("SaslAuthenticate is not expected now"))),
                    delay: None,
                    close: true,
                };
            }
        };
        match step {
            Ok((mechanism, user, last)) => {
                security.guard.succeeded(LISTENER, self.peer, &user, mechanism.name());
                self.state = State::Authenticated(user);
                self.caller = None;
                Authenticated {
                    response: SaslAuthenticateResponse::default().with_auth_bytes(last),
                    delay: None,
                    close: false,
                }
            }
            Err((mechanism, user, failure)) => {
                let delay = security.guard.failed(LISTENER, self.peer, &user, mechanism.name(), failure);
                // One message for every failure: it must not tell an
                // unknown user from a wrong password (nor a throttled one).
                let message = format!("Authentication failed: invalid credentials with SASL mechanism {mechanism}");
                Authenticated {
                    response: SaslAuthenticateResponse::default()
                        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                        .with_error_message(Some(StrBytes::from_string(message))),
                    delay: Some(delay),
                    close: true,
                }
            }
        }
    }
}

fn failure_of(e: &AuthError) -> Failure {
    if !matches!(e, AuthError::Failed) {
        // What the client got wrong, for its operator (never sent back).
        tracing::info!(error = %e, "a Kafka client broke the SASL exchange");
    }
    match e {
        AuthError::Failed => Failure::InvalidCredentials,
        AuthError::Unsupported(_) => Failure::Unsupported,
        _ => Failure::Malformed,
    }
}
