//! Every gRPC client channel in Goulette is built here: brokers to
//! sentinels and to their partition leaders, sentinels forwarding to their
//! leader, clients to sentinels and brokers. One place to set how a
//! connection is made (and, when transport security comes, secured).

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How a channel connects and notices a dead peer.
#[derive(Debug, Clone, Copy)]
pub struct ChannelOptions {
    /// Bound on establishing the connection.
    pub connect_timeout: Duration,
    /// Bound on each call (`None` for channels carrying long-lived streams).
    pub request_timeout: Option<Duration>,
    /// HTTP/2 ping interval and timeout: pings notice a peer that vanished
    /// without closing the connection, so a long-lived stream fails over
    /// instead of waiting for ever. `None`: no pings.
    pub keep_alive: Option<Duration>,
    /// Low-latency client settings (no Nagle, adaptive HTTP/2 windows).
    pub client_tuning: bool,
}

impl ChannelOptions {
    /// Between servers: connect within 2 s, ping every 2 s.
    pub const INTERNAL: ChannelOptions = ChannelOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: None,
        keep_alive: Some(Duration::from_secs(2)),
        client_tuning: false,
    };

    /// Clients: connect within 3 s, ping every 5 s, tuned for latency.
    pub const CLIENT: ChannelOptions = ChannelOptions {
        connect_timeout: Duration::from_secs(3),
        request_timeout: None,
        keep_alive: Some(Duration::from_secs(5)),
        client_tuning: true,
    };

    /// The same, with every call bounded by `timeout`.
    pub const fn with_request_timeout(self, timeout: Duration) -> ChannelOptions {
        ChannelOptions { request_timeout: Some(timeout), ..self }
    }

    /// The same, without HTTP/2 pings.
    pub const fn without_keep_alive(self) -> ChannelOptions {
        ChannelOptions { keep_alive: None, ..self }
    }
}

/// A lazily connected channel to `address` (`host:port`): nothing is
/// dialled until the first call. Fails only on an address that is not a
/// valid URI authority.
pub fn lazy(address: &str, options: ChannelOptions) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(format!("http://{address}"))?.connect_timeout(options.connect_timeout);
    if let Some(timeout) = options.request_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    if let Some(every) = options.keep_alive {
        endpoint = endpoint.http2_keep_alive_interval(every).keep_alive_timeout(every).keep_alive_while_idle(true);
    }
    if options.client_tuning {
        endpoint = endpoint.tcp_nodelay(true).http2_adaptive_window(true);
    }
    Ok(endpoint.connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_address_is_refused_and_a_good_one_is_not_dialled() {
        assert!(lazy("not an address\n", ChannelOptions::CLIENT).is_err());
        // Nothing listens there: a lazy channel is still built.
        assert!(lazy("127.0.0.1:1", ChannelOptions::INTERNAL.with_request_timeout(Duration::from_secs(1))).is_ok());
    }
}
