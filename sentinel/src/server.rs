//! `run`: wires etcd, the view, the election, the leader's duties and the
//! gRPC server together, and takes them down in order on shutdown.

use std::sync::Arc;
use std::time::Duration;

use goulette_proto::v1::sentinel_internal_server::SentinelInternalServer;
use goulette_proto::v1::sentinel_service_server::SentinelServiceServer;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{EtcdMode, SentinelConfig};
use crate::controller::Controller;
use crate::election::{self, Role};
use crate::groups::Groups;
use crate::keys::Keys;
use crate::leases::Leases;
use crate::service::{Sentinel, SentinelGrpc};
use crate::store::{self, Store};
use crate::view::ClusterView;
use crate::{embedded, watcher};

/// Runs a sentinel until `shutdown` is cancelled.
pub async fn run(config: SentinelConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    let etcd_token = CancellationToken::new();
    let etcd_tracker = TaskTracker::new();
    let endpoints = match &config.etcd {
        EtcdMode::External(endpoints) => endpoints.clone(),
        EtcdMode::Embedded(cfg) => {
            let binary = embedded::find_etcd().ok_or_else(|| anyhow::anyhow!(embedded::missing_etcd_message()))?;
            etcd_tracker.spawn(embedded::supervise(binary, cfg.clone(), etcd_token.clone()));
            vec![embedded::endpoint(cfg)]
        }
    };
    // Bind first, so the port is ours before anything announces it.
    let listener = tokio::net::TcpListener::bind(config.address).await?;

    let result = serve(config, endpoints, listener, shutdown).await;
    etcd_token.cancel();
    etcd_tracker.close();
    etcd_tracker.wait().await;
    result
}

async fn serve(
    config: SentinelConfig,
    endpoints: Vec<String>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(client) = connect_until(&endpoints, Some(store::ETCD_REQUEST_TIMEOUT), &shutdown).await else {
        return Ok(());
    };
    // The campaign blocks until won: it needs a client without a request timeout.
    let Some(election_client) = connect_until(&endpoints, None, &shutdown).await else {
        return Ok(());
    };
    let keys = Keys::new(&config.prefix);
    let store = Store::new(client.clone(), keys.clone(), config.id.clone());
    let tracker = TaskTracker::new();

    let (views_tx, views) = watch::channel(Arc::new(ClusterView::default()));
    tracker.spawn(watcher::run(store.clone(), views_tx, shutdown.clone()));

    let (role_tx, role) = watch::channel(Role::Follower);
    let me = election::Candidate { id: config.id.clone(), address: config.address.to_string(), ttl: config.lease_ttl };
    tracker.spawn(election::run(election_client, keys, me, role_tx, shutdown.clone()));

    let leases = Arc::new(Leases::new(
        store.client(),
        config.session_timeout / 3,
        (config.session_timeout * 3).max(Duration::from_secs(60)),
    ));
    let groups = Groups::new(store.clone(), leases.clone(), views.clone());
    let controller = Controller::new(store, config.clone(), leases);
    let sentinel = Arc::new(Sentinel::new(config.clone(), controller, groups, views, role, shutdown.clone()));
    tracker.spawn(sentinel.clone().run_leader_duties());

    let grpc = SentinelGrpc(sentinel);
    tracing::info!(id = %config.id, address = %config.address, etcd = %endpoints.join(","), "sentinel serving");
    let server = tonic::transport::Server::builder()
        .add_service(SentinelServiceServer::new(grpc.clone()))
        .add_service(SentinelInternalServer::new(grpc))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.clone().cancelled_owned());
    let served = server.await;
    tracker.close();
    tracker.wait().await;
    tracing::info!(id = %config.id, "sentinel stopped");
    served.map_err(Into::into)
}

/// Connects to etcd, retrying until it answers; `None` on shutdown.
async fn connect_until(
    endpoints: &[String],
    request_timeout: Option<Duration>,
    shutdown: &CancellationToken,
) -> Option<etcd_client::Client> {
    loop {
        match store::connect_with(endpoints, request_timeout).await {
            Ok(client) => return Some(client),
            Err(e) => {
                tracing::warn!(error = %e, "waiting for etcd");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => return None,
                }
            }
        }
    }
}
