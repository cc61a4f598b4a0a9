//! Authentication for Goulette's listeners, the same on the Kafka protocol
//! and on gRPC:
//!
//! - [`acl`]: access control lists in Kafka's model, and the index that
//!   checks them.
//! - [`audit`]: the audit line of a change, the same on every server.
//! - [`mechanism`]: SCRAM-SHA-256 and SCRAM-SHA-512, with their digests.
//! - [`credential`]: what is stored for a user: a salt, an iteration count,
//!   and the stored and server keys (RFC 5802) — never a password, nor
//!   anything from which one logs in without knowing it.
//! - [`server`] and [`client`]: the two sides of a SCRAM exchange (no
//!   channel binding, as Kafka).
//! - [`plain`]: SASL/PLAIN, checked against the same SCRAM credentials.
//! - [`sasl`]: the SASL mechanisms by name, as listeners are configured.
//! - [`token`]: short-lived bearer tokens for the gRPC API, signed with
//!   the cluster's rotating keys.
//! - [`cert_principal`] (feature `gate`): the user a client certificate
//!   stands for, by rules on its subject and SANs.
//! - [`gate`] (feature `gate`): who calls a gRPC service (a token or a
//!   verified client certificate), checked before the call runs.
//! - [`proto`] (feature): credentials as Goulette's protocol messages.
//! - [`guard`]: what a failed login costs (a delay, a per-address limit,
//!   a count and an audit line), the same on every listener.
//! - [`error`]: what an exchange fails with. A wrong password and an
//!   unknown user are one and the same failure, after the same work.
//!
//! Every primitive (HMAC, SHA-2, PBKDF2, randomness) is `ring`'s, the one
//! crypto library Goulette links (rustls uses it too).

pub mod acl;
pub mod audit;
#[cfg(feature = "gate")]
pub mod cert_principal;
pub mod client;
pub mod credential;
pub mod error;
#[cfg(feature = "gate")]
pub mod gate;
pub mod guard;
pub mod mechanism;
pub mod plain;
#[cfg(feature = "proto")]
pub mod proto;
pub mod sasl;
pub mod server;
pub mod token;
mod wire;

pub use client::ScramClient;
pub use credential::{DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential};
pub use error::AuthError;
pub use mechanism::Mechanism;
pub use sasl::SaslMechanism;
pub use server::{Decoy, ScramServer};
