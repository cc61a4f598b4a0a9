//! Who is calling a gRPC service, checked before the call runs: a bearer
//! token from a login (`authorization: Bearer …`), or a client certificate
//! the TLS handshake verified against the listener's client CA (servers
//! present theirs when they call each other). The principal found is put
//! in the request's extensions for the handlers (and, later, ACLs).

use std::sync::Arc;

use tonic::{Request, Status};

use crate::cert_principal::{CertRule, principal_of};
use crate::token::{TokenKey, verify};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user, by a token from its login.
    User(String),
    /// A peer with a certificate signed by the listener's client CA.
    Certificate,
    /// No authentication asked (the listener does not require it).
    Anonymous,
}

/// What a service lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Everyone (authentication not required).
    Anyone,
    /// Callers with a valid token or a verified certificate.
    UsersAndServers,
    /// Callers with a verified certificate only (the cluster's internal services).
    ServersOnly,
}

/// The token keys as they are now (they rotate).
pub type Keys = Arc<dyn Fn() -> Vec<TokenKey> + Send + Sync>;

/// The check in front of one service.
#[derive(Clone)]
pub struct Gate {
    admit: Admit,
    keys: Keys,
    /// Rules mapping a certificate to a user (empty: a certificate is a server).
    rules: Vec<CertRule>,
    /// With rules: the users that are servers (the internal service admits those).
    super_users: Vec<String>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("admit", &self.admit).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Gate {
    /// A gate letting in what `admit` says, checking tokens against `keys`.
    pub fn new(admit: Admit, keys: Keys) -> Gate {
        Gate { admit, keys, rules: Vec::new(), super_users: Vec::new() }
    }

    /// Certificates stand for users by `rules` (see `cert_principal`);
    /// `super_users` (the servers among them) are what the internal
    /// service admits.
    pub fn with_certificate_rules(mut self, rules: Vec<CertRule>, super_users: Vec<String>) -> Gate {
        self.rules = rules;
        self.super_users = super_users;
        self
    }

    /// The caller of `req`, or the refusal to answer it with.
    pub fn check<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        if self.admit == Admit::Anyone {
            return Ok(Principal::Anonymous);
        }
        if let Some(certs) = req.peer_certs().filter(|c| !c.is_empty()) {
            if self.rules.is_empty() {
                return Ok(Principal::Certificate);
            }
            let Some(principal) = principal_of(&certs[0], &self.rules) else {
                return Err(Status::unauthenticated(
                    "the client certificate names no user by the cluster's --tls-principal-rules",
                ));
            };
            if self.admit == Admit::ServersOnly && !self.super_users.contains(&principal) {
                return Err(Status::permission_denied(format!(
                    "{principal} is not one of the cluster's servers (--super-users)"
                )));
            }
            let user = principal.strip_prefix("User:").unwrap_or(&principal).to_owned();
            return Ok(Principal::User(user));
        }
        if self.admit == Admit::ServersOnly {
            return Err(Status::unauthenticated(
                "this service is for the cluster's servers: present a certificate signed by its client CA",
            ));
        }
        let Some(header) = req.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "authentication required: log in (goulette --user NAME, password in GOULETTE_PASSWORD) or present a client certificate",
            ));
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("the authorization header is not `Bearer TOKEN`"))?;
        verify(&(self.keys)(), token, now_ms())
            .map(Principal::User)
            .map_err(|e| Status::unauthenticated(format!("{e}: log in again")))
    }

    /// The interceptor of a service: checks, then hands the principal to the handler.
    pub fn interceptor(self) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static {
        move |mut req: Request<()>| {
            let principal = self.check(&req)?;
            req.extensions_mut().insert(principal);
            Ok(req)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::issue;

    fn gate(admit: Admit, key: &TokenKey) -> Gate {
        let key = key.clone();
        Gate::new(admit, Arc::new(move || vec![key.clone()]))
    }

    fn with_token(token: &str) -> Request<()> {
        let mut req = Request::new(());
        req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        req
    }

    #[test]
    fn tokens_let_users_in_and_nothing_else_does() {
        let key = TokenKey::generate(1);
        let users = gate(Admit::UsersAndServers, &key);
        let token = issue(&key, "alice", now_ms() + 60_000);
        assert_eq!(users.check(&with_token(&token)).unwrap(), Principal::User("alice".into()));
        let refused = users.check(&Request::new(())).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(refused.message().contains("GOULETTE_PASSWORD"));
        let expired = issue(&key, "alice", now_ms() - 1);
        assert!(users.check(&with_token(&expired)).unwrap_err().message().contains("expired"));
        let stranger = issue(&TokenKey::generate(1), "alice", now_ms() + 60_000);
        assert!(users.check(&with_token(&stranger)).is_err());
        // Internal services take no token, only certificates.
        assert!(gate(Admit::ServersOnly, &key).check(&with_token(&token)).is_err());
        assert_eq!(gate(Admit::Anyone, &key).check(&Request::new(())).unwrap(), Principal::Anonymous);
    }
}
