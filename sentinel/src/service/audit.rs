//! The audit line of each change a client asks a sentinel for: topics,
//! partitions, groups, brokers, users and ACLs, with the caller's
//! principal and address and how it ended (`goulette_auth::audit`).
//!
//! Written by the sentinel the client called: a follower that forwards the
//! request to the leader logs it, the leader does not log it again (it
//! would see the follower's certificate, not the client).

use tonic::Request;

use crate::error::SentinelError;

/// Who asked for a change, if this sentinel is the one to log it.
#[derive(Debug)]
pub(super) struct Audit {
    principal: String,
    address: String,
}

impl Audit {
    /// The caller of `req`; `None` for a request forwarded by a sentinel.
    pub(super) fn of<T>(req: &Request<T>) -> Option<Audit> {
        if super::forward::forwarded(req) {
            return None;
        }
        let principal = match req.extensions().get::<goulette_auth::gate::Principal>() {
            Some(goulette_auth::gate::Principal::User(u)) => format!("User:{u}"),
            Some(goulette_auth::gate::Principal::Certificate) => "certificate".to_owned(),
            _ => goulette_auth::acl::ANONYMOUS.to_owned(),
        };
        Some(Audit { principal, address: req.remote_addr().map(|a| a.to_string()).unwrap_or_default() })
    }

    /// Logs `event` on `what`: done, or refused with `error`.
    pub(super) fn record(&self, event: &str, what: &str, error: Option<&SentinelError>) {
        let outcome = error.map_or_else(|| "done".to_owned(), |e| format!("refused: {e}"));
        goulette_auth::audit::change(event, what, &self.principal, &self.address, &outcome);
    }
}

/// Logs `event` on `what` for `audit`'s caller, if this sentinel logs it.
pub(super) fn record<T>(audit: &Option<Audit>, event: &str, what: &str, result: &Result<T, SentinelError>) {
    if let Some(audit) = audit {
        audit.record(event, what, result.as_ref().err());
    }
}
