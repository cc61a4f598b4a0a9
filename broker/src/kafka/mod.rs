//! The Kafka protocol: each broker serves Kafka clients (librdkafka and
//! everything built on it, kafka-python, the Java client, …) on
//! `--kafka-address`, over the same partitions, logs and guarantees as the
//! gRPC API. Batches are Kafka's RecordBatch v2 on both paths, so a Kafka
//! produce is stored as the client sent it and a Kafka fetch is served from
//! the log's bytes.
//!
//! - [`connection`]: one TCP connection: size-limited frames, requests
//!   accepted in order, answers written in order (pipelining allowed).
//! - [`request`]: reading a frame's API key, version and header, and the
//!   answer to versions not served.
//! - [`versions`]: the APIs and versions served (ApiVersions).
//! - [`metadata`], [`produce`], [`fetch`], [`list_offsets`],
//!   [`leader_epochs`], [`producer_ids`], [`delete_records`]: one API each.
//! - [`groups`]: the group coordinator (FindCoordinator, JoinGroup, SyncGroup,
//!   Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
//!   DescribeGroups).
//! - [`topics`], [`create_partitions`], [`configs`], [`alter_configs`]:
//!   CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs,
//!   AlterConfigs, IncrementalAlterConfigs, and topic settings under their
//!   Kafka names.
//! - [`sasl`]: SaslHandshake and SaslAuthenticate (SCRAM, PLAIN over TLS):
//!   a connection's login, before anything else is served on a listener
//!   with SASL mechanisms.
//! - [`scram_credentials`]: DescribeUserScramCredentials and
//!   AlterUserScramCredentials, so Kafka admin tools manage users.
//! - [`answer`]: an accepted request's answer, as a future of its frame.
//! - [`dispatch`]: one request decoded, checked and handed to its API.
//! - [`authorize`]: the ACL checks of each API (with `--acl-enabled`).
//! - [`acls`]: CreateAcls, DescribeAcls, DeleteAcls.
//! - [`audit`]: the audit line of each change a Kafka client asks for.
//! - [`errors`]: Goulette's typed errors as Kafka error codes.
//!
//! `docs/kafka.md` is the reader's reference.

pub mod acls;
pub mod alter_configs;
pub mod answer;
pub mod audit;
pub mod authorize;
pub mod configs;
pub mod connection;
pub mod create_partitions;
pub mod delete_records;
pub mod dispatch;
pub mod errors;
pub mod fetch;
pub mod groups;
pub mod leader_epochs;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod producer_ids;
pub mod request;
pub mod sasl;
pub mod scram_credentials;
pub mod topics;
pub mod versions;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::BrokerConfig;
use crate::fetch_budget::FetchBudget;
use crate::link::SentinelClient;
use crate::partition::Partitions;

/// What the Kafka handlers share: the broker's partitions and settings.
#[derive(Debug)]
pub struct Kafka {
    pub partitions: Arc<Partitions>,
    pub config: Arc<BrokerConfig>,
    pub sentinels: Arc<SentinelClient>,
    /// The committed offsets in `__offsets`, shared with the gRPC API.
    pub offsets: Arc<crate::offsets::Coordinator>,
    /// The Kafka consumer groups this broker coordinates.
    pub groups: Arc<groups::Groups>,
    /// The memory fetch responses may hold, shared with the gRPC fetches.
    pub fetch_budget: FetchBudget,
    /// Users and the login guard.
    pub security: Arc<crate::security::Security>,
    /// How client certificates name users (`--tls-principal-rules`).
    pub certificate_rules: Vec<goulette_auth::cert_principal::CertRule>,
    /// Cancelled when the broker stops serving.
    pub shutdown: CancellationToken,
}

/// Accepts Kafka connections on `listener` (within the broker's
/// connection limits) until `shutdown`, serving each on its own task; with
/// `tls`, only over TLS (a plaintext client fails its handshake and is
/// closed), each handshake with the configuration current at its start.
pub async fn serve(
    listener: tokio::net::TcpListener,
    kafka: Arc<Kafka>,
    tls: Option<Arc<goulette_tls::ServerTls>>,
    tracker: TaskTracker,
) {
    tracker.spawn(kafka.groups.clone().run(kafka.shutdown.clone()));
    let incoming = goulette_proto::ops::serve::incoming(listener, kafka.config.connection_limits);
    match tls {
        None => accept(incoming, kafka, tracker, false).await,
        Some(tls) => {
            let failures = kafka.partitions.metrics().tls_handshake_failures("kafka");
            let incoming = goulette_proto::ops::serve::tls(incoming, tls, move || {
                failures.inc();
            });
            accept(incoming, kafka, tracker, true).await
        }
    }
}

/// A connection's client address, and its certificate (mutual TLS).
pub trait Peer {
    fn peer(&self) -> Option<std::net::SocketAddr>;
    /// The client's certificate (DER), if it presented one.
    fn certificate(&self) -> Option<Vec<u8>>;
}

impl Peer for goulette_proto::ops::serve::Connection {
    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.peer_addr().ok()
    }

    fn certificate(&self) -> Option<Vec<u8>> {
        None
    }
}

impl Peer for tokio_rustls::server::TlsStream<goulette_proto::ops::serve::Connection> {
    fn peer(&self) -> Option<std::net::SocketAddr> {
        self.get_ref().0.peer_addr().ok()
    }

    fn certificate(&self) -> Option<Vec<u8>> {
        self.get_ref().1.peer_certificates()?.first().map(|c| c.to_vec())
    }
}

/// Serves each connection of `incoming` (over TLS or not) on its own task
/// until `shutdown`.
async fn accept<S>(
    mut incoming: impl tokio_stream::Stream<Item = std::io::Result<S>> + Unpin,
    kafka: Arc<Kafka>,
    tracker: TaskTracker,
    tls: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Peer + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = tokio_stream::StreamExt::next(&mut incoming) => accepted,
            _ = kafka.shutdown.cancelled() => return,
        };
        match accepted {
            Some(Ok(stream)) => {
                let peer = stream.peer();
                // With --tls-principal-rules, a client certificate names a user.
                let rules = &kafka.certificate_rules;
                let by_certificate = stream
                    .certificate()
                    .filter(|_| !rules.is_empty())
                    .and_then(|der| goulette_auth::cert_principal::principal_of(&der, rules));
                tracker.spawn(connection::serve(stream, kafka.clone(), peer, tls, by_certificate));
            }
            Some(Err(e)) => tracing::debug!(error = %e, "Kafka accept failed"),
            None => return,
        }
    }
}
