//! `goulette-broker`: parses flags into a `BrokerConfig` and runs it until
//! SIGINT/SIGTERM (a second signal exits at once:
//! `goulette_proto::ops::signals`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use goulette_broker::config::{BrokerConfig, parse_flush};
use goulette_broker::timestamps::{TimestampBounds, bound, parse_bound};
use goulette_storage::FlushPolicy;

/// Goulette broker: stores topic partitions and serves producers and consumers.
#[derive(Debug, Parser)]
#[command(name = "goulette-broker", version)]
struct Args {
    /// Unique id of this broker in the cluster.
    #[arg(long, env = "GOULETTE_BROKER_ID")]
    id: u32,
    /// gRPC listen address, registered for clients.
    #[arg(long, env = "GOULETTE_BROKER_ADDRESS", default_value = "127.0.0.1:50051")]
    address: SocketAddr,
    /// Address of the `/health`, `/ready` and `/metrics` endpoints (none when unset).
    #[arg(long, env = "GOULETTE_BROKER_HTTP_ADDRESS")]
    http_address: Option<SocketAddr>,
    /// Serve the Kafka protocol here (none when unset), so Kafka clients
    /// (librdkafka, kcat, kafka-python, the Java client, …) can connect.
    #[arg(long, env = "GOULETTE_KAFKA_ADDRESS")]
    kafka_address: Option<SocketAddr>,
    /// The host:port Kafka clients are told to connect to (default: the
    /// --kafka-address).
    #[arg(long, env = "GOULETTE_KAFKA_ADVERTISED_ADDRESS")]
    kafka_advertised_address: Option<String>,
    #[command(flatten)]
    tls: goulette_proto::ops::tls::TlsArgs,
    /// Serve the Kafka listener over TLS only (SSL in Kafka clients' terms),
    /// with this certificate chain (PEM); needs --kafka-tls-key. The files
    /// are watched: new connections use renewed ones within seconds.
    #[arg(long, env = "GOULETTE_KAFKA_TLS_CERT", value_name = "FILE")]
    kafka_tls_cert: Option<PathBuf>,
    /// The private key of --kafka-tls-cert (PEM).
    #[arg(long, env = "GOULETTE_KAFKA_TLS_KEY", value_name = "FILE")]
    kafka_tls_key: Option<PathBuf>,
    /// Require Kafka clients to present a certificate signed by one of these
    /// CAs (PEM): mutual TLS.
    #[arg(long, env = "GOULETTE_KAFKA_TLS_CLIENT_CA", value_name = "FILE")]
    kafka_tls_client_ca: Option<PathBuf>,
    /// Require Kafka clients to log in with one of these SASL mechanisms
    /// (comma-separated: SCRAM-SHA-256, SCRAM-SHA-512, PLAIN; PLAIN only
    /// with --kafka-tls-cert). Users: `goulette user create`.
    #[arg(long, env = "GOULETTE_KAFKA_SASL_MECHANISMS", value_delimiter = ',')]
    kafka_sasl_mechanisms: Vec<goulette_auth::SaslMechanism>,
    #[command(flatten)]
    auth: goulette_proto::ops::auth::AuthArgs,
    /// Largest Kafka request accepted, in bytes; a bigger one closes its connection.
    #[arg(long, env = "GOULETTE_KAFKA_MAX_REQUEST_BYTES", default_value_t = 100 << 20)]
    kafka_max_request_bytes: usize,
    /// How long the first join of an empty Kafka consumer group waits for
    /// more members, so that members starting together share one generation.
    #[arg(long, env = "GOULETTE_KAFKA_GROUP_INITIAL_DELAY", default_value = "3s", value_parser = humantime::parse_duration)]
    kafka_group_initial_delay: std::time::Duration,
    /// Data directory holding one sub-directory per partition.
    #[arg(long, env = "GOULETTE_BROKER_DATA", default_value = "data/broker")]
    data: PathBuf,
    /// Comma-separated sentinel addresses (host:port), tried in turn.
    #[arg(long, env = "GOULETTE_SENTINELS", default_value = "127.0.0.1:50052", value_delimiter = ',')]
    sentinels: Vec<String>,
    /// When appends are fdatasynced: `always` (before the ack, with group
    /// commit), `never`, or `interval:100ms`.
    #[arg(long, env = "GOULETTE_FLUSH", default_value = "always", value_parser = parse_flush)]
    flush: FlushPolicy,
    /// Seal the WAL into a fragment at this size, in bytes.
    #[arg(long, env = "GOULETTE_FRAGMENT_BYTES", default_value_t = 128 << 20)]
    fragment_bytes: u64,
    /// Largest record batch accepted, in bytes.
    #[arg(long, env = "GOULETTE_MAX_BATCH_BYTES", default_value_t = 8 << 20)]
    max_batch_bytes: usize,
    /// A follower that has not caught up with its leader for this long leaves the ISR.
    #[arg(long, env = "GOULETTE_REPLICA_LAG_MAX", default_value = "10s", value_parser = humantime::parse_duration)]
    replica_lag_max: std::time::Duration,
    /// TOML file of settings, keyed by these flags' long names
    /// (`config.example.toml`); environment variables and flags override it.
    #[arg(long, env = "GOULETTE_CONFIG")]
    config: Option<PathBuf>,
    /// On SIGTERM, how long to wait for partition leaderships to move to
    /// in-sync followers before stopping anyway (0s: stop at once).
    #[arg(long, env = "GOULETTE_CONTROLLED_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    controlled_shutdown_timeout: std::time::Duration,
    /// Largest fetch response, in bytes, whatever a reader asks for.
    #[arg(long, env = "GOULETTE_MAX_FETCH_BYTES", default_value_t = 1 << 20)]
    max_fetch_bytes: usize,
    /// The memory, in bytes, that all fetch responses read and not yet handed
    /// to the network may hold together; readers wait beyond it.
    #[arg(long, env = "GOULETTE_FETCH_MEMORY", default_value_t = 256 << 20)]
    fetch_memory: usize,
    /// The compactor's key map, in bytes: more keys than fit take more
    /// passes, never more memory.
    #[arg(long, env = "GOULETTE_COMPACTION_MAP_BYTES", default_value_t = 64 << 20)]
    compaction_map_bytes: usize,
    /// The compactor's disk traffic (read plus written), in bytes per
    /// second; 0: unlimited.
    #[arg(long, env = "GOULETTE_COMPACTION_IO_BYTES_PER_SEC", default_value_t = 100 << 20)]
    compaction_io_bytes_per_sec: u64,
    /// How often the compactor looks for a compacted partition due a pass.
    #[arg(long, env = "GOULETTE_COMPACTION_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    compaction_interval: std::time::Duration,
    /// The longest delay a delayed record (header goulette-deliver-at or
    /// goulette-delay-ms) may ask for; longer ones are refused.
    #[arg(long, env = "GOULETTE_MAX_DELIVERY_DELAY", default_value = "30days", value_parser = humantime::parse_duration)]
    max_delivery_delay: std::time::Duration,
    /// A fetch stream whose reader takes nothing for this long is closed.
    #[arg(long, env = "GOULETTE_FETCH_SEND_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    fetch_send_timeout: std::time::Duration,
    /// Connections kept open at once; more are closed as they are accepted.
    #[arg(long, env = "GOULETTE_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Connections kept open at once from one IP address.
    #[arg(long, env = "GOULETTE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1_000)]
    max_connections_per_address: usize,
    /// A connection without a byte in either direction for this long is
    /// closed (`off`: never). Clients' keep-alive pings count.
    #[arg(long, env = "GOULETTE_CONNECTION_IDLE_TIMEOUT", default_value = "10m", value_parser = parse_bound)]
    connection_idle_timeout: std::time::Duration,
    /// Refuse batches stamped by their producer further ahead of this
    /// broker's clock than this (`off`: no limit).
    #[arg(long, env = "GOULETTE_MAX_TIMESTAMP_AHEAD", default_value = "1h", value_parser = parse_bound)]
    max_timestamp_ahead: std::time::Duration,
    /// Refuse batches stamped by their producer further behind this
    /// broker's clock than this (`off`: no limit).
    #[arg(long, env = "GOULETTE_MAX_TIMESTAMP_BEHIND", default_value = "off", value_parser = parse_bound)]
    max_timestamp_behind: std::time::Duration,
    #[command(flatten)]
    log: goulette_proto::ops::logging::LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args: Args = goulette_proto::ops::config::parse();
    goulette_proto::ops::logging::init(&args.log)?;
    // Each open partition holds file descriptors (docs/operations.md).
    match goulette_storage::raise_open_files_limit() {
        Ok((before, after)) if after > before => tracing::info!(before, after, "raised the open files limit"),
        Ok((_, limit)) => tracing::info!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not read the open files limit"),
    }
    let mut config = BrokerConfig::new(args.id, args.address, args.data, args.sentinels);
    config.http_address = args.http_address;
    config.kafka_address = args.kafka_address;
    config.kafka_advertised_address = args.kafka_advertised_address;
    config.kafka_max_request_bytes = args.kafka_max_request_bytes;
    config.grpc_tls = args.tls.listener().map_err(anyhow::Error::msg)?;
    args.auth.apply_to(&mut config.grpc_tls).map_err(anyhow::Error::msg)?;
    config.tls_ca = args.tls.tls_ca;
    config.kafka_tls = goulette_tls::reload::files_from_flags(
        args.kafka_tls_cert,
        args.kafka_tls_key,
        args.kafka_tls_client_ca,
        "kafka-tls",
    )
    .map_err(anyhow::Error::msg)?;
    config.kafka_group_initial_delay = args.kafka_group_initial_delay;
    config.kafka_sasl = args.kafka_sasl_mechanisms;
    config.auth = args.auth;
    config.log.flush = args.flush;
    config.log.fragment_bytes = args.fragment_bytes;
    config.log.max_batch_bytes = args.max_batch_bytes;
    config.max_fetch_bytes = args.max_fetch_bytes;
    config.fetch_memory = args.fetch_memory;
    config.compaction = goulette_broker::compaction::CompactorConfig {
        map_bytes: args.compaction_map_bytes,
        io_bytes_per_sec: args.compaction_io_bytes_per_sec,
        interval: args.compaction_interval,
    };
    config.max_delivery_delay = args.max_delivery_delay;
    config.fetch_send_timeout = args.fetch_send_timeout;
    config.connection_limits = goulette_proto::ops::serve::ConnectionLimits {
        max_connections: args.max_connections,
        max_per_address: args.max_connections_per_address,
        idle_timeout: bound(args.connection_idle_timeout),
    };
    config.timestamp_bounds =
        TimestampBounds { max_ahead: bound(args.max_timestamp_ahead), max_behind: bound(args.max_timestamp_behind) };
    config.replica_lag_max = args.replica_lag_max;
    config.controlled_shutdown_timeout = args.controlled_shutdown_timeout;
    config.validate().map_err(anyhow::Error::msg)?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let shutdown = goulette_proto::ops::signals::shutdown_on_signal();
        goulette_broker::server::run(config, shutdown).await
    })
}
