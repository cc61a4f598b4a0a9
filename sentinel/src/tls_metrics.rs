//! The sentinel's TLS and login counters, process-wide (the listener's
//! TLS is set up before the metrics endpoint exists): handshakes that
//! failed, changed TLS files that could not be loaded, failed logins.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// A failed-login series: why it failed.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// The sentinel's TLS and login counters.
#[derive(Debug, Default)]
pub struct TlsMetrics {
    /// Failed gRPC logins, by reason (`invalid-credentials`, `throttled`,
    /// `malformed`, `unsupported`).
    pub auth_failures: Family<ReasonLabel, Counter>,
    /// gRPC requests the ACLs refused.
    pub acl_denials: Counter,
    /// gRPC TLS handshakes that failed (plaintext clients, untrusted or
    /// expired certificates).
    pub handshake_failures: Counter,
    /// Changed TLS files that could not be loaded (the last good ones stayed).
    pub reload_failures: Counter,
}

/// The one set of TLS counters of this process.
pub static TLS: LazyLock<TlsMetrics> = LazyLock::new(TlsMetrics::default);
