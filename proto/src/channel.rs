//! Every gRPC client channel in Goulette is built here: brokers to
//! sentinels and to their partition leaders, sentinels forwarding to their
//! leader, clients to sentinels and brokers. One place to set how a
//! connection is made and secured.
//!
//! TLS is a property of the process, set once with [`use_tls`] before the
//! first channel (a server from its `--tls-ca`, the CLI from its): a
//! cluster's gRPC is TLS everywhere or nowhere, so every channel of a
//! process uses the same trust and the same identity.

use std::sync::OnceLock;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// How this process's channels are secured: the CAs it trusts (PEM), and
/// the certificate and key it presents (PEM) to servers that ask (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    pub ca_pem: Vec<u8>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientTls {
    /// Reads the CA bundle `ca` and, when both are given, the certificate
    /// and key to present.
    pub fn from_files(
        ca: &std::path::Path,
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> Result<ClientTls, String> {
        let read =
            |path: &std::path::Path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            _ => return Err("a client certificate needs its key, and a key its certificate".into()),
        };
        Ok(ClientTls { ca_pem: read(ca)?, identity })
    }
}

static CLIENT_TLS: OnceLock<ClientTls> = OnceLock::new();

/// Makes every channel built from now on use TLS with `tls`. Set once: a
/// second, different setting is refused (a process has one trust).
pub fn use_tls(tls: ClientTls) -> Result<(), String> {
    let set = CLIENT_TLS.get_or_init(|| tls.clone());
    if *set == tls { Ok(()) } else { Err("TLS of client channels is already set differently".into()) }
}

/// Whether channels use TLS.
pub fn uses_tls() -> bool {
    CLIENT_TLS.get().is_some()
}

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
    let scheme = if uses_tls() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))?.connect_timeout(options.connect_timeout);
    if let Some(tls) = CLIENT_TLS.get() {
        // The server's name is checked against the address dialled (a DNS
        // name or an IP address in its certificate).
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(config)?;
    }
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

/// The bearer token this process sends on every call (set after a login,
/// replaced when renewed).
static BEARER: std::sync::RwLock<Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>> =
    std::sync::RwLock::new(None);

/// Sends `token` as `authorization: Bearer TOKEN` on every call made
/// through [`authorized`] from now on.
pub fn use_bearer(token: &str) -> Result<(), String> {
    let value = format!("Bearer {token}").parse().map_err(|_| "a token must be ASCII".to_owned())?;
    *BEARER.write().unwrap_or_else(|p| p.into_inner()) = Some(value);
    Ok(())
}

/// The interceptor adding this process's bearer token (if any) to a call.
pub type Bearer = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

fn add_bearer(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    if let Some(value) = BEARER.read().unwrap_or_else(|p| p.into_inner()).clone() {
        req.metadata_mut().insert("authorization", value);
    }
    Ok(req)
}

/// A channel sending this process's bearer token on every call.
pub type Authorized = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// `channel` with this process's bearer token on every call.
pub fn authorized(channel: Channel) -> Authorized {
    tonic::service::interceptor::InterceptedService::new(channel, add_bearer as Bearer)
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
