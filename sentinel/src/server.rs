//! `run`: wires etcd, the view, the election, the leader's duties and the
//! gRPC server together, and takes them down in order on shutdown.

use std::sync::Arc;
use std::time::Duration;

use goulette_proto::v1::sentinel_internal_server::SentinelInternalServer;
use goulette_proto::v1::sentinel_service_server::SentinelServiceServer;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{EmbeddedEtcd, EtcdMode, SentinelConfig};
use crate::controller::Controller;
use crate::controller::leader_loop::LeaderLoop;
use crate::election::{self, Role};
use crate::groups::Groups;
use crate::keys::Keys;
use crate::leases::Leases;
use crate::service::{Sentinel, SentinelGrpc};
use crate::store::{self, Store};
use crate::view::ClusterView;
use crate::{embedded, watcher};
use goulette_auth::gate::{Admit, Gate};

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
    if let Some(tls) = config.etcd_tls.client_tls().map_err(|e| anyhow::anyhow!("etcd TLS: {e}"))? {
        store::use_etcd_tls(tls).map_err(anyhow::Error::msg)?;
    }
    if let EtcdMode::Embedded(EmbeddedEtcd { tls: Some(tls), .. }) = &config.etcd {
        let client = goulette_proto::channel::ClientTls::from_files(&tls.ca, Some(&tls.cert), Some(&tls.key))
            .map_err(|e| anyhow::anyhow!("embedded etcd TLS: {e}"))?;
        store::use_etcd_tls(client).map_err(anyhow::Error::msg)?;
    }
    goulette_proto::ops::tls::use_client_tls(config.tls_ca.as_deref(), config.tls.as_ref())
        .map_err(anyhow::Error::msg)?;
    // Files that do not load stop the sentinel here, before it serves.
    // gRPC clients insist on HTTP/2 being negotiated (ALPN).
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(
            goulette_tls::ServerTls::load(files.clone(), vec![b"h2".to_vec()])
                .map_err(|e| anyhow::anyhow!("gRPC listener TLS: {e}"))?
                .on_reload_failure(|| {
                    crate::tls_metrics::TLS.reload_failures.inc();
                }),
        )),
        None => None,
    };
    // Bind first, so the port is ours before anything announces it.
    let listener = goulette_proto::ops::serve::listen(config.address, "--address").await?;
    // The HTTP endpoints answer from the start: /health while etcd is still
    // out of reach, /ready saying why not.
    let (views_tx, views) = watch::channel(Arc::new(ClusterView::default()));
    let (role_tx, role) = watch::channel(Role::Follower);
    let http_tracker = TaskTracker::new();
    let http_token = shutdown.child_token();
    if let Some(address) = config.http_address {
        let http = goulette_proto::ops::serve::listen(address, "--http-address").await?;
        let probe = Arc::new(crate::metrics::SentinelProbe::new(views.clone(), role.clone()));
        let token = http_token.clone();
        http_tracker.spawn(async move {
            if let Err(e) = goulette_proto::ops::http::serve(http, probe, token).await {
                tracing::error!(error = %e, "HTTP endpoints failed");
            }
        });
    }

    let channels = Channels { views_tx, views, role_tx, role };
    let result = serve(config, endpoints, (listener, tls), channels, shutdown).await;
    http_token.cancel();
    http_tracker.close();
    http_tracker.wait().await;
    etcd_token.cancel();
    etcd_tracker.close();
    etcd_tracker.wait().await;
    result
}

/// The view and role, published by the watcher and the election, read by
/// the services and the HTTP endpoints.
struct Channels {
    views_tx: watch::Sender<Arc<ClusterView>>,
    views: watch::Receiver<Arc<ClusterView>>,
    role_tx: watch::Sender<Role>,
    role: watch::Receiver<Role>,
}

async fn serve(
    config: SentinelConfig,
    endpoints: Vec<String>,
    (listener, tls): (tokio::net::TcpListener, Option<Arc<goulette_tls::ServerTls>>),
    channels: Channels,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Channels { views_tx, views, role_tx, role } = channels;
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

    tracker.spawn(watcher::run(store.clone(), views_tx, shutdown.clone()));

    let me = election::Candidate {
        id: config.id.clone(),
        address: config.address.to_string(),
        http_address: config.http_address,
        ttl: config.lease_ttl,
    };
    tracker.spawn(crate::etcd_metrics::probe_etcd(client.clone(), keys.ops_counter(), shutdown.clone()));
    tracker.spawn(election::run(election_client, keys, me, role_tx, shutdown.clone()));

    // Under the brokers' 1 s heartbeat call timeout: a frozen etcd must be
    // answered UNAVAILABLE (which brokers count as contact), not left to
    // time out the heartbeat (which they do not).
    let leases = Arc::new(Leases::new(
        store.client(),
        (config.session_timeout / 4).min(Duration::from_millis(750)),
        (config.session_timeout * 3).max(Duration::from_secs(60)),
    ));
    let groups = Arc::new(Groups::new(store.clone(), leases.clone(), views.clone()));
    let controller = Arc::new(Controller::new(store, config.clone(), leases));
    let duties = LeaderLoop::new(controller.clone(), groups.clone(), views.clone(), role.clone(), shutdown.clone());
    tracker.spawn(duties.run());
    // Who may call: with --auth-required, users with a token from a login
    // and servers with a certificate; the internal service, servers only.
    let keys: goulette_auth::gate::Keys = {
        let views = views.clone();
        Arc::new(move || views.borrow().token_keys.as_ref().map(|(k, _)| k.keys()).unwrap_or_default())
    };
    let (users, servers) = match config.auth.auth_required {
        true => (Admit::UsersAndServers, Admit::ServersOnly),
        false => (Admit::Anyone, Admit::Anyone),
    };
    let rules =
        goulette_auth::cert_principal::parse_rules(&config.auth.tls_principal_rules).map_err(anyhow::Error::msg)?;
    let with_rules = |gate: Gate| gate.with_certificate_rules(rules.clone(), config.auth.super_users.clone());
    let (users, servers) = (with_rules(Gate::new(users, keys.clone())), with_rules(Gate::new(servers, keys)));
    let sentinel = Arc::new(Sentinel::new(config.clone(), controller, groups, views, role, shutdown.clone()));

    let grpc = SentinelGrpc(sentinel);
    tracing::info!(id = %config.id, address = %config.address, etcd = %endpoints.join(","), "sentinel serving");
    let router = tonic::transport::Server::builder()
        .add_service(SentinelServiceServer::with_interceptor(grpc.clone(), users.interceptor()))
        .add_service(goulette_proto::v1::auth_service_server::AuthServiceServer::new(grpc.clone()))
        .add_service(SentinelInternalServer::with_interceptor(grpc, servers.interceptor()));
    let incoming = goulette_proto::ops::serve::incoming(listener, Default::default());
    let served = match tls {
        None => router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()).await,
        Some(tls) => {
            tracker.spawn(tls.clone().watch(goulette_tls::reload::DEFAULT_POLL, shutdown.clone()));
            let incoming = goulette_proto::ops::serve::tls(incoming, tls, || {
                crate::tls_metrics::TLS.handshake_failures.inc();
            });
            router.serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned()).await
        }
    };
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
