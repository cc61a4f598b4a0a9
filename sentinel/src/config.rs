//! The sentinel's validated configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How the sentinel reaches etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdMode {
    /// An external cluster at these endpoints.
    External(Vec<String>),
    /// An `etcd` child process supervised by this sentinel.
    Embedded(EmbeddedEtcd),
}

/// Settings of the embedded etcd child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedEtcd {
    /// Member name (defaults to the sentinel id).
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    /// `name=http://host:peer_port,…` for a multi-member cluster; empty
    /// for a single member.
    pub initial_cluster: String,
    /// Largest transaction etcd accepts (passed as `--max-txn-ops`).
    pub max_txn_ops: usize,
    /// TLS for its clients and peers (`--embedded-etcd-tls`); None: plaintext.
    pub tls: Option<EmbeddedEtcdTls>,
}

/// The embedded etcd over TLS: the sentinel's own certificate serves
/// etcd's clients and peers, and both must present a certificate of
/// `client_ca` (etcd's `--client-cert-auth`); the sentinel connects with
/// the same certificate. etcd reads the files at each handshake, so a
/// renewed certificate is used without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedEtcdTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CAs of the certificates etcd's clients and peers present.
    pub client_ca: PathBuf,
    /// CAs the sentinel trusts etcd's certificate by.
    pub ca: PathBuf,
}

/// Everything the sentinel needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    pub id: String,
    /// gRPC listen address (also published as this sentinel's address).
    pub address: SocketAddr,
    /// `/health`, `/ready` and `/metrics` listen here; none when unset.
    pub http_address: Option<SocketAddr>,
    pub etcd: EtcdMode,
    /// Key prefix in etcd.
    pub prefix: String,
    /// TTL of the sentinel's own lease (election and `sentinels/{id}`).
    pub lease_ttl: Duration,
    /// How often brokers are told to heartbeat.
    pub heartbeat_interval: Duration,
    /// A broker that misses heartbeats for this long is dead.
    pub session_timeout: Duration,
    /// A broker gone this long has its replicas rebuilt on other brokers.
    pub replica_reassign_after: Duration,
    /// Create unknown topics on first produce.
    pub auto_create_topics: bool,
    pub default_partitions: u32,
    pub default_replication_factor: u32,
    /// Cluster-wide defaults of new topics that set none (0: none; see
    /// `Controller::topic_with_defaults`).
    pub topic_defaults: TopicDefaults,
    /// TLS files of the gRPC listener (None: plaintext); watched and
    /// reloaded when they change.
    pub tls: Option<goulette_tls::TlsFiles>,
    /// CAs trusted when forwarding to the leader sentinel (None:
    /// plaintext); the sentinel presents `tls`'s certificate to servers
    /// that ask for one.
    pub tls_ca: Option<std::path::PathBuf>,
    /// TLS to etcd (read when the sentinel starts; none: plaintext).
    pub etcd_tls: goulette_proto::ops::tls::EtcdTlsArgs,
    /// Logins on the gRPC API: what a failure costs, how long a token lives.
    pub auth: goulette_proto::ops::auth::AuthArgs,
    /// Largest etcd transaction (etcd's `--max-txn-ops`, 128 by default).
    pub max_txn_ops: usize,
}

/// What a new topic gets for the settings its creation leaves at 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Retention by age in ms (0: the brokers' own `--retention-ms`).
    pub retention_ms: u64,
    /// Retention by size per partition in bytes (0: no size limit).
    pub retention_bytes: u64,
    /// In-sync replicas an `acks=all` write needs (0: 2 from 3 replicas on,
    /// else 1); never more than the topic's replication factor.
    pub min_insync_replicas: u32,
}

impl SentinelConfig {
    /// Defaults for a sentinel with `id` on `address` using `etcd`.
    pub fn new(id: impl Into<String>, address: SocketAddr, etcd: EtcdMode) -> SentinelConfig {
        let max_txn_ops = match &etcd {
            EtcdMode::Embedded(e) => e.max_txn_ops,
            EtcdMode::External(_) => 128,
        };
        SentinelConfig {
            id: id.into(),
            address,
            http_address: None,
            etcd,
            prefix: crate::keys::DEFAULT_PREFIX.to_owned(),
            lease_ttl: Duration::from_secs(3),
            heartbeat_interval: Duration::from_millis(500),
            session_timeout: Duration::from_secs(3),
            replica_reassign_after: Duration::from_secs(300),
            auto_create_topics: true,
            default_partitions: 3,
            default_replication_factor: 1,
            topic_defaults: TopicDefaults::default(),
            tls: None,
            tls_ca: None,
            etcd_tls: Default::default(),
            auth: Default::default(),
            max_txn_ops,
        }
    }

    /// Checks the values, naming the flag of the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        // A bad rule stops the sentinel before it binds anything.
        goulette_auth::cert_principal::parse_rules(&self.auth.tls_principal_rules)?;
        if self.id.is_empty() || self.id.contains('/') {
            return Err(format!("--id {:?} must be non-empty and contain no '/'", self.id));
        }
        if self.http_address == Some(self.address) {
            return Err("--http-address must differ from --address".into());
        }
        if self.session_timeout < Duration::from_secs(1) {
            return Err("--session-timeout must be at least 1s (etcd leases count whole seconds)".into());
        }
        if self.heartbeat_interval.is_zero() || self.heartbeat_interval * 2 > self.session_timeout {
            return Err("--heartbeat-interval must be positive and at most half of --session-timeout".into());
        }
        if self.replica_reassign_after < self.session_timeout {
            return Err("--replica-reassign-after must be at least --session-timeout".into());
        }
        if self.lease_ttl < Duration::from_secs(2) {
            return Err("--lease-ttl must be at least 2s".into());
        }
        if self.tls.is_some() && self.tls_ca.is_none() {
            return Err("--tls-cert needs --tls-ca: a sentinel forwards to the leader sentinel over TLS too".into());
        }
        if self.default_partitions == 0 || self.default_replication_factor == 0 {
            return Err("--default-partitions and --default-replication-factor must be at least 1".into());
        }
        if let EtcdMode::External(endpoints) = &self.etcd
            && endpoints.is_empty()
        {
            return Err("give --etcd-endpoints or --embedded-etcd".into());
        }
        if let EtcdMode::Embedded(EmbeddedEtcd { tls: Some(_), .. }) = &self.etcd
            && self.etcd_tls.etcd_tls_ca.is_some()
        {
            return Err("--embedded-etcd-tls connects with the sentinel's certificate: drop --etcd-tls-ca".into());
        }
        Ok(())
    }
}
