//! The broker's validated configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use goulette_storage::{FlushPolicy, LogConfig};

/// Everything a broker needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    pub id: u32,
    /// gRPC listen address, registered with the sentinels for clients.
    pub address: SocketAddr,
    /// `/health`, `/ready` and `/metrics` listen here (also registered, for
    /// `cluster status`); none when unset.
    pub http_address: Option<SocketAddr>,
    /// Where the Kafka protocol is served (none: no Kafka listener).
    pub kafka_address: Option<SocketAddr>,
    /// The `host:port` Kafka clients are told to connect to (registered
    /// with the sentinels); defaults to `kafka_address`.
    pub kafka_advertised_address: Option<String>,
    /// Largest Kafka request accepted, in bytes (Kafka's
    /// `socket.request.max.bytes`): a bigger one closes its connection
    /// before anything is allocated for it.
    pub kafka_max_request_bytes: usize,
    /// TLS files of the Kafka listener (None: plaintext); watched and
    /// reloaded when they change.
    pub kafka_tls: Option<goulette_tls::TlsFiles>,
    /// SASL mechanisms the Kafka listener requires a login with (empty: no
    /// login). PLAIN only with `kafka_tls`.
    pub kafka_sasl: Vec<goulette_auth::SaslMechanism>,
    /// What a failed login costs (delay, per-address limit).
    pub auth: goulette_proto::ops::auth::AuthArgs,
    /// TLS files of the gRPC listener (clients and replication; None:
    /// plaintext); watched and reloaded when they change.
    pub grpc_tls: Option<goulette_tls::TlsFiles>,
    /// CAs trusted when connecting to sentinels and brokers (None:
    /// plaintext); the broker presents `grpc_tls`'s certificate to servers
    /// that ask for one.
    pub tls_ca: Option<PathBuf>,
    /// How long the first join of an empty Kafka group waits for more
    /// members (Kafka's `group.initial.rebalance.delay.ms`).
    pub kafka_group_initial_delay: Duration,
    /// One sub-directory per partition: `<data>/<topic>-<partition>/`.
    pub data_dir: PathBuf,
    /// Sentinel addresses (`host:port`), tried in turn.
    pub sentinels: Vec<String>,
    /// Defaults for every partition log (topic settings override retention).
    pub log: LogConfig,
    /// Most produce requests one connection may have in flight.
    pub max_in_flight: usize,
    /// Largest fetch response, whatever a reader asks for.
    pub max_fetch_bytes: usize,
    /// The memory all fetch responses read and not yet handed to the
    /// transport may hold (see `fetch_budget`).
    pub fetch_memory: usize,
    /// A fetch stream whose reader takes nothing for this long is closed.
    pub fetch_send_timeout: Duration,
    /// Connections kept at once, in all and per client address, and when
    /// an idle one is closed.
    pub connection_limits: goulette_proto::ops::serve::ConnectionLimits,
    /// How often partition logs are maintained (interval flush, seal by
    /// age, retention, unmapping).
    pub maintenance_interval: Duration,
    /// A follower that has not caught up with the leader's log end for this
    /// long leaves the ISR.
    pub replica_lag_max: Duration,
    /// How often a leader reviews its partitions' ISR.
    pub isr_check_interval: Duration,
    /// On shutdown, how long to wait for partition leaderships to move to
    /// in-sync followers before stopping anyway.
    pub controlled_shutdown_timeout: Duration,
    /// How far producer timestamps may stray from the broker's clock.
    pub timestamp_bounds: crate::timestamps::TimestampBounds,
    /// The compactor's memory, pace and rounds (see `compaction`).
    pub compaction: crate::compaction::CompactorConfig,
    /// The longest delay a delayed record may ask for (see `delayed`).
    pub max_delivery_delay: Duration,
}

/// What a produce request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceLimits {
    /// Largest record batch, in bytes.
    pub max_batch_bytes: usize,
    /// How far producer timestamps may stray from the broker's clock.
    pub timestamps: crate::timestamps::TimestampBounds,
    /// How long an `acks=all` write waits for the in-sync replicas (a
    /// Kafka produce may ask for less with its `timeout_ms`).
    pub replication_timeout: Duration,
    /// The longest delay a delayed record may ask for.
    pub max_delivery_delay: Duration,
}

/// How long an `acks=all` write waits for the in-sync replicas at most.
pub const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);

impl BrokerConfig {
    /// Defaults for broker `id` on `address`.
    pub fn new(id: u32, address: SocketAddr, data_dir: PathBuf, sentinels: Vec<String>) -> BrokerConfig {
        BrokerConfig {
            id,
            address,
            http_address: None,
            kafka_address: None,
            kafka_advertised_address: None,
            kafka_max_request_bytes: 100 << 20,
            kafka_tls: None,
            kafka_sasl: Vec::new(),
            auth: Default::default(),
            grpc_tls: None,
            tls_ca: None,
            kafka_group_initial_delay: Duration::from_secs(3),
            data_dir,
            sentinels,
            log: LogConfig { flush: FlushPolicy::Always, ..LogConfig::default() },
            max_in_flight: 1024,
            max_fetch_bytes: 1 << 20,
            fetch_memory: 256 << 20,
            fetch_send_timeout: Duration::from_secs(30),
            connection_limits: Default::default(),
            maintenance_interval: Duration::from_millis(100),
            replica_lag_max: Duration::from_secs(10),
            isr_check_interval: Duration::from_millis(250),
            controlled_shutdown_timeout: Duration::from_secs(10),
            timestamp_bounds: Default::default(),
            compaction: Default::default(),
            max_delivery_delay: crate::delayed::DEFAULT_MAX_DELAY,
        }
    }

    /// The Kafka address registered for clients: the advertised one, else
    /// the listen address; none without a Kafka listener.
    pub fn kafka_advertised(&self) -> Option<String> {
        let listen = self.kafka_address?;
        Some(self.kafka_advertised_address.clone().unwrap_or_else(|| listen.to_string()))
    }

    /// What a produce request may carry.
    pub fn produce_limits(&self) -> ProduceLimits {
        ProduceLimits {
            max_batch_bytes: self.log.max_batch_bytes,
            timestamps: self.timestamp_bounds,
            replication_timeout: REPLICATION_TIMEOUT,
            max_delivery_delay: self.max_delivery_delay,
        }
    }

    /// Checks every value, naming the flag of the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        // A bad rule stops the broker before it binds anything.
        goulette_auth::cert_principal::parse_rules(&self.auth.tls_principal_rules)?;
        if self.grpc_tls.is_some() && self.tls_ca.is_none() {
            return Err("--tls-cert needs --tls-ca: the broker connects to TLS sentinels and brokers too".into());
        }
        if self.sentinels.is_empty() {
            return Err("--sentinels needs at least one address".into());
        }
        if self.http_address == Some(self.address) {
            return Err("--http-address must differ from --address".into());
        }
        if let Some(kafka) = self.kafka_address
            && (Some(kafka) == self.http_address || kafka == self.address)
        {
            return Err("--kafka-address must differ from --address and --http-address".into());
        }
        if let Some(advertised) = &self.kafka_advertised_address {
            split_host_port(advertised)
                .ok_or_else(|| format!("--kafka-advertised-address {advertised:?}: expected host:port"))?;
        }
        if self.kafka_sasl.contains(&goulette_auth::SaslMechanism::Plain) && self.kafka_tls.is_none() {
            return Err("--kafka-sasl-mechanisms PLAIN sends passwords in clear: it needs --kafka-tls-cert".into());
        }
        if self.kafka_max_request_bytes < self.log.max_batch_bytes {
            return Err("--kafka-max-request-bytes must be at least --max-batch-bytes".into());
        }
        if self.max_fetch_bytes < 64 << 10 {
            return Err("--max-fetch-bytes must be at least 64 KiB".into());
        }
        if self.fetch_memory < self.max_fetch_bytes {
            return Err("--fetch-memory must be at least --max-fetch-bytes".into());
        }
        if self.connection_limits.max_connections == 0 || self.connection_limits.max_per_address == 0 {
            return Err("--max-connections and --max-connections-per-address must be at least 1".into());
        }
        if self.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".into());
        }
        self.log.validate().map_err(|e| format!("log settings: {e}"))
    }
}

/// Parses `always`, `never` or `interval:100ms`.
pub fn parse_flush(s: &str) -> Result<FlushPolicy, String> {
    match s {
        "always" => Ok(FlushPolicy::Always),
        "never" => Ok(FlushPolicy::Never),
        _ => match s.strip_prefix("interval:") {
            Some(d) => humantime::parse_duration(d).map(FlushPolicy::Interval).map_err(|e| e.to_string()),
            None => Err(format!("{s:?}: expected always, never or interval:DURATION")),
        },
    }
}

/// Splits `host:port` (a bracketed IPv6 host allowed) into its parts.
pub fn split_host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::split_host_port;

    #[test]
    fn host_and_port_are_split() {
        assert_eq!(split_host_port("127.0.0.1:9092"), Some(("127.0.0.1", 9092)));
        assert_eq!(split_host_port("broker-1.example:19092"), Some(("broker-1.example", 19092)));
        assert_eq!(split_host_port("[::1]:9092"), Some(("::1", 9092)));
        assert_eq!(split_host_port("nohost"), None);
        assert_eq!(split_host_port(":9092"), None);
        assert_eq!(split_host_port("h:99999"), None);
    }
}
