//! Who makes a request, as ACL checks see it.

use std::net::IpAddr;

/// A principal (`User:alice`) from a host, or one of the cluster's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: String,
    pub host: Option<IpAddr>,
    /// One of the cluster's servers (a verified client certificate on
    /// gRPC), or a request no ACL applies to: allowed everything, as
    /// Kafka's inter-broker principal.
    pub server: bool,
}

/// The principal of a client that did not log in (Kafka's).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

impl Caller {
    /// A user.
    pub fn user(principal: String, host: Option<IpAddr>) -> Caller {
        Caller { principal, host, server: false }
    }

    /// A server, or a request not checked.
    pub fn server() -> Caller {
        Caller { principal: String::new(), host: None, server: true }
    }

    /// The caller of a gRPC request, from the principal the gate found.
    #[cfg(feature = "gate")]
    pub fn of<T>(req: &tonic::Request<T>) -> Caller {
        use crate::gate::Principal;
        let host = req.remote_addr().map(|a| a.ip());
        match req.extensions().get::<Principal>() {
            Some(Principal::User(u)) => Caller::user(format!("User:{u}"), host),
            Some(Principal::Certificate) => Caller::server(),
            Some(Principal::Anonymous) | None => Caller::user(ANONYMOUS.to_owned(), host),
        }
    }
}
