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
//! - [`errors`]: Goulette's typed errors as Kafka error codes.
//!
//! `docs/kafka.md` is the reader's reference.

pub mod alter_configs;
pub mod configs;
pub mod connection;
pub mod create_partitions;
pub mod delete_records;
pub mod errors;
pub mod fetch;
pub mod groups;
pub mod leader_epochs;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod producer_ids;
pub mod request;
pub mod topics;
pub mod versions;

use std::sync::Arc;

use futures_util::StreamExt;
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
    /// Cancelled when the broker stops serving.
    pub shutdown: CancellationToken,
}

/// How long a client gets to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    let mut incoming = goulette_proto::ops::serve::incoming(listener, kafka.config.connection_limits);
    loop {
        let accepted = tokio::select! {
            accepted = incoming.next() => accepted,
            _ = kafka.shutdown.cancelled() => return,
        };
        match accepted {
            Some(Ok(stream)) => match &tls {
                None => {
                    tracker.spawn(connection::serve(stream, kafka.clone()));
                }
                Some(tls) => {
                    let (acceptor, kafka) = (tls.acceptor(), kafka.clone());
                    tracker.spawn(async move {
                        let peer = stream.peer_addr().ok();
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => connection::serve(stream, kafka).await,
                            Ok(Err(e)) => {
                                kafka.partitions.metrics().kafka_tls_handshake_failures.inc();
                                tracing::info!(?peer, error = %e, "Kafka TLS handshake failed (a plaintext client, or an untrusted certificate?)");
                            }
                            Err(_) => {
                                kafka.partitions.metrics().kafka_tls_handshake_failures.inc();
                                tracing::info!(?peer, "Kafka TLS handshake timed out");
                            }
                        }
                    });
                }
            },
            Some(Err(e)) => tracing::debug!(error = %e, "Kafka accept failed"),
            None => return,
        }
    }
}
