//! `goulette-sentinel`: parses flags into a `SentinelConfig` and runs it
//! until SIGINT/SIGTERM (a second signal exits at once:
//! `goulette_proto::ops::signals`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use goulette_sentinel::config::{EmbeddedEtcd, EmbeddedEtcdTls, EtcdMode, SentinelConfig};

/// Goulette sentinel: broker membership, partition assignment and cluster metadata in etcd.
#[derive(Debug, Parser)]
#[command(name = "goulette-sentinel", version)]
struct Args {
    /// Unique id of this sentinel.
    #[arg(long, env = "GOULETTE_SENTINEL_ID", default_value = "sentinel-1")]
    id: String,
    /// gRPC listen address, also published to the cluster.
    #[arg(long, env = "GOULETTE_SENTINEL_ADDRESS", default_value = "127.0.0.1:50052")]
    address: SocketAddr,
    /// Address of the `/health`, `/ready` and `/metrics` endpoints (none when unset).
    #[arg(long, env = "GOULETTE_SENTINEL_HTTP_ADDRESS")]
    http_address: Option<SocketAddr>,
    /// Comma-separated etcd client endpoints of an external cluster.
    #[arg(long, env = "GOULETTE_ETCD_ENDPOINTS", value_delimiter = ',', conflicts_with = "embedded_etcd")]
    etcd_endpoints: Vec<String>,
    /// Start and supervise an etcd child process instead.
    #[arg(long, env = "GOULETTE_EMBEDDED_ETCD")]
    embedded_etcd: bool,
    /// Serve the embedded etcd over TLS to its clients and peers, with this
    /// sentinel's --tls-cert and --tls-key, requiring their certificates to
    /// chain to --tls-client-ca (else --tls-ca); the sentinel connects with
    /// its own certificate.
    #[arg(long, env = "GOULETTE_EMBEDDED_ETCD_TLS", requires = "embedded_etcd")]
    embedded_etcd_tls: bool,
    /// Client port of the embedded etcd.
    #[arg(long, env = "GOULETTE_ETCD_PORT", default_value_t = 2379)]
    etcd_port: u16,
    /// Peer port of the embedded etcd.
    #[arg(long, env = "GOULETTE_ETCD_PEER_PORT", default_value_t = 2380)]
    etcd_peer_port: u16,
    /// Data directory of the embedded etcd (default: data/etcd-<id>).
    #[arg(long, env = "GOULETTE_ETCD_DATA_DIR")]
    etcd_data_dir: Option<PathBuf>,
    /// Embedded etcd members, `name=http://127.0.0.1:PEER_PORT,…` (all
    /// sentinels of one cluster give the same list; member names are the sentinel ids).
    #[arg(long, env = "GOULETTE_ETCD_INITIAL_CLUSTER", default_value = "")]
    etcd_initial_cluster: String,
    /// Key prefix of Goulette's metadata in etcd.
    #[arg(long, env = "GOULETTE_ETCD_PREFIX", default_value = goulette_sentinel::keys::DEFAULT_PREFIX)]
    etcd_prefix: String,
    /// Largest etcd transaction, in operations (etcd's --max-txn-ops; the
    /// embedded etcd is started with this value). Default: 128 external, 4096 embedded.
    #[arg(long, env = "GOULETTE_MAX_TXN_OPS")]
    max_txn_ops: Option<usize>,
    /// A broker missing heartbeats for this long is dead.
    #[arg(long, env = "GOULETTE_SESSION_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    session_timeout: Duration,
    /// A broker gone this long has its replicas rebuilt on the next brokers
    /// of the ring (copied from the partition leaders).
    #[arg(long, env = "GOULETTE_REPLICA_REASSIGN_AFTER", default_value = "5m", value_parser = humantime::parse_duration)]
    replica_reassign_after: Duration,
    /// How often brokers heartbeat.
    #[arg(long, env = "GOULETTE_HEARTBEAT_INTERVAL", default_value = "500ms", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,
    /// TTL of this sentinel's lease (election and presence).
    #[arg(long, env = "GOULETTE_LEASE_TTL", default_value = "3s", value_parser = humantime::parse_duration)]
    lease_ttl: Duration,
    /// Create unknown topics on first produce (`--auto-create-topics=false` to refuse).
    #[arg(long, env = "GOULETTE_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of auto-created topics (and of `topic create` without --partitions).
    #[arg(long, env = "GOULETTE_DEFAULT_PARTITIONS", default_value_t = 3)]
    default_partitions: u32,
    /// Replication factor of auto-created topics.
    #[arg(long, env = "GOULETTE_DEFAULT_REPLICATION_FACTOR", default_value_t = 1)]
    default_replication_factor: u32,
    /// Retention by age of new topics that set none, e.g. 7d (default: the
    /// brokers' own --retention-ms).
    #[arg(long, env = "GOULETTE_DEFAULT_RETENTION", value_parser = humantime::parse_duration)]
    default_retention: Option<Duration>,
    /// Retention by size per partition of new topics that set none, in
    /// bytes (default: no size limit).
    #[arg(long, env = "GOULETTE_DEFAULT_RETENTION_BYTES")]
    default_retention_bytes: Option<u64>,
    /// min.insync.replicas of new topics that set none, capped at each
    /// topic's replication factor (default: 2 from 3 replicas on, else 1).
    #[arg(long, env = "GOULETTE_DEFAULT_MIN_INSYNC_REPLICAS")]
    default_min_insync_replicas: Option<u32>,
    #[command(flatten)]
    tls: goulette_proto::ops::tls::TlsArgs,
    #[command(flatten)]
    etcd_tls: goulette_proto::ops::tls::EtcdTlsArgs,
    #[command(flatten)]
    auth: goulette_proto::ops::auth::AuthArgs,
    /// TOML file of settings, keyed by these flags' long names
    /// (`config.example.toml`); environment variables and flags override it.
    #[arg(long, env = "GOULETTE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    log: goulette_proto::ops::logging::LogArgs,
}

impl Args {
    fn into_config(self) -> anyhow::Result<SentinelConfig> {
        let etcd = if self.embedded_etcd {
            EtcdMode::Embedded(EmbeddedEtcd {
                name: self.id.clone(),
                client_port: self.etcd_port,
                peer_port: self.etcd_peer_port,
                data_dir: self.etcd_data_dir.unwrap_or_else(|| PathBuf::from(format!("data/etcd-{}", self.id))),
                initial_cluster: self.etcd_initial_cluster,
                max_txn_ops: self.max_txn_ops.unwrap_or(4096),
                tls: if self.embedded_etcd_tls { Some(embedded_etcd_tls(&self.tls)?) } else { None },
            })
        } else {
            EtcdMode::External(self.etcd_endpoints)
        };
        let mut config = SentinelConfig::new(self.id, self.address, etcd);
        config.prefix = self.etcd_prefix;
        config.http_address = self.http_address;
        if let Some(n) = self.max_txn_ops {
            config.max_txn_ops = n;
        }
        config.session_timeout = self.session_timeout;
        config.heartbeat_interval = self.heartbeat_interval;
        config.replica_reassign_after = self.replica_reassign_after;
        config.lease_ttl = self.lease_ttl;
        config.auto_create_topics = self.auto_create_topics;
        config.default_partitions = self.default_partitions;
        config.default_replication_factor = self.default_replication_factor;
        config.topic_defaults = goulette_sentinel::config::TopicDefaults {
            retention_ms: self.default_retention.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            retention_bytes: self.default_retention_bytes.unwrap_or(0),
            min_insync_replicas: self.default_min_insync_replicas.unwrap_or(0),
        };
        config.tls = self.tls.listener().map_err(anyhow::Error::msg)?;
        self.auth.apply_to(&mut config.tls).map_err(anyhow::Error::msg)?;
        config.tls_ca = self.tls.tls_ca;
        config.etcd_tls = self.etcd_tls;
        config.auth = self.auth;
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

/// The embedded etcd's TLS, from the sentinel's own files.
fn embedded_etcd_tls(tls: &goulette_proto::ops::tls::TlsArgs) -> anyhow::Result<EmbeddedEtcdTls> {
    let (Some(cert), Some(key), Some(ca)) = (&tls.tls_cert, &tls.tls_key, &tls.tls_ca) else {
        anyhow::bail!("--embedded-etcd-tls needs --tls-cert, --tls-key and --tls-ca (etcd serves with them)");
    };
    let client_ca = tls.tls_client_ca.clone().unwrap_or_else(|| ca.clone());
    Ok(EmbeddedEtcdTls { cert: cert.clone(), key: key.clone(), client_ca, ca: ca.clone() })
}

fn main() -> anyhow::Result<()> {
    let args: Args = goulette_proto::ops::config::parse();
    goulette_proto::ops::logging::init(&args.log)?;
    let config = args.into_config()?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let shutdown = goulette_proto::ops::signals::shutdown_on_signal();
        goulette_sentinel::server::run(config, shutdown).await
    })
}
