//! The sentinel's TLS counters, process-wide (the listener's TLS is set up
//! before the metrics endpoint exists): handshakes that failed and changed
//! TLS files that could not be loaded.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;

/// The sentinel's TLS counters.
#[derive(Debug, Default)]
pub struct TlsMetrics {
    /// gRPC TLS handshakes that failed (plaintext clients, untrusted or
    /// expired certificates).
    pub handshake_failures: Counter,
    /// Changed TLS files that could not be loaded (the last good ones stayed).
    pub reload_failures: Counter,
}

/// The one set of TLS counters of this process.
pub static TLS: LazyLock<TlsMetrics> = LazyLock::new(TlsMetrics::default);
