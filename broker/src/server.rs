//! `run`: the broker's tasks (sentinel link, assignments, log maintenance,
//! gRPC server) and their orderly shutdown.

use std::sync::Arc;

use goulette_auth::gate::{Admit, Gate};

use goulette_proto::v1::broker_service_server::BrokerServiceServer;
use goulette_storage::batch::MAX_BATCH_LEN;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::BrokerConfig;
use crate::link;
use crate::partition::Partitions;
use crate::service::BrokerGrpc;

/// Runs a broker until `shutdown` is cancelled; then hands its partition
/// leaderships over (`shutdown::hand_over`), stops serving, answers what is
/// in flight, closes its logs and deregisters.
pub async fn run(config: BrokerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate().map_err(anyhow::Error::msg)?;
    // Who a client certificate stands for, on the Kafka and gRPC listeners.
    let certificate_rules =
        goulette_auth::cert_principal::parse_rules(&config.auth.tls_principal_rules).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!("create data directory {}: {e}", config.data_dir.display()))?;
    // Held until the broker returns: a second broker on the same data
    // directory would recover and append to the same logs.
    let _data_dir_lock = goulette_storage::DirLock::acquire(&config.data_dir).map_err(|e| match e {
        goulette_storage::StorageError::DirectoryInUse { dir } => anyhow::anyhow!(
            "data directory {} is in use by another process (a broker already running with this --data-dir?)",
            dir.display()
        ),
        e => anyhow::anyhow!(e),
    })?;
    goulette_proto::ops::tls::use_client_tls(config.tls_ca.as_deref(), config.grpc_tls.as_ref())
        .map_err(anyhow::Error::msg)?;
    let listener = goulette_proto::ops::serve::listen(config.address, "--address").await?;
    let kafka_listener = match config.kafka_address {
        Some(address) => Some(goulette_proto::ops::serve::listen(address, "--kafka-address").await?),
        None => None,
    };
    // Files that do not load stop the broker here, before it serves.
    let load_tls = |files: &Option<goulette_tls::TlsFiles>, alpn: Vec<Vec<u8>>, what: &str| {
        files
            .as_ref()
            .map(|files| goulette_tls::ServerTls::load(files.clone(), alpn))
            .transpose()
            .map_err(|e| anyhow::anyhow!("{what} TLS: {e}"))
    };
    let kafka_tls = load_tls(&config.kafka_tls, Vec::new(), "Kafka listener")?;
    // gRPC clients insist on HTTP/2 being negotiated (ALPN).
    let grpc_tls = load_tls(&config.grpc_tls, vec![b"h2".to_vec()], "gRPC listener")?;
    let http = match config.http_address {
        Some(address) => Some(goulette_proto::ops::serve::listen(address, "--http-address").await?),
        None => None,
    };
    let config = Arc::new(config);
    // `shutdown` asks the broker to stop; `stop` ends the serving, once
    // its partitions are handed over.
    let stop = CancellationToken::new();
    let partitions = Partitions::new(config.id, config.data_dir.clone(), config.log.clone(), stop.clone());
    let tracker = TaskTracker::new();
    let metrics = partitions.metrics();
    // One broker per process: the first one's metrics receive the fdatasyncs.
    goulette_storage::observe::set_observer(crate::metrics::StorageObserver {
        latency: metrics.fsync_latency.clone(),
        batches: metrics.fsync_batches.clone(),
        prepared: metrics.wals_prepared.clone(),
        prepared_bytes: metrics.wal_prepared_bytes.clone(),
        prepare_failures: metrics.wal_prepare_failures.clone(),
    });
    let sentinels = Arc::new(link::SentinelClient::new(&config.sentinels)?);
    let offsets =
        Arc::new(crate::offsets::Coordinator::new(partitions.clone(), sentinels.clone(), config.produce_limits()));
    if let Some(listener) = http {
        let probe = Arc::new(Probe { partitions: partitions.clone(), offsets: offsets.clone() });
        let token = stop.clone();
        tracker.spawn(async move {
            if let Err(e) = goulette_proto::ops::http::serve(listener, probe, token).await {
                tracing::error!(error = %e, "HTTP endpoints failed");
            }
        });
    }

    tracker.spawn(link::run_session(config.clone(), partitions.clone(), stop.clone()));
    tracker.spawn(link::run_assignments(config.clone(), partitions.clone(), stop.clone()));
    let security = Arc::new(crate::security::Security {
        users: Default::default(),
        acls: crate::security::acls::Acls::new(
            config.auth.acl_enabled,
            config.auth.super_users.clone(),
            metrics.acl_denials.clone(),
        ),
        decoy: goulette_auth::Decoy::random(),
        guard: crate::security::LoginGuard::new(
            config.auth.auth_failure_delay,
            config.auth.auth_failures_per_minute,
            {
                let metrics = metrics.clone();
                Arc::new(move |listener, reason| {
                    metrics.auth_failures(listener, reason).inc();
                })
            },
        ),
    });
    tracker.spawn(crate::security::watch::run(
        config.id,
        config.sentinels.clone(),
        security.clone(),
        sentinels.clone(),
        stop.clone(),
    ));
    {
        let (partitions, sentinels, stop, timeout) =
            (partitions.clone(), sentinels.clone(), stop.clone(), config.controlled_shutdown_timeout);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = stop.cancelled() => return,
            }
            if partitions.session() != 0 {
                crate::shutdown::hand_over(&partitions, &sentinels, timeout).await;
            }
            stop.cancel();
        });
    }
    tracker.spawn(crate::failure_reports::run(partitions.clone(), sentinels.clone(), stop.clone()));
    tracker.spawn(crate::isr::manage_isr(
        partitions.clone(),
        sentinels.clone(),
        config.replica_lag_max,
        config.isr_check_interval,
        stop.clone(),
    ));
    tracker.spawn(crate::compactor::run(partitions.clone(), config.compaction, stop.clone()));
    tracker.spawn(crate::delayed::deliver::run(partitions.clone(), config.produce_limits(), stop.clone()));
    let maintained = partitions.clone();
    let every = config.maintenance_interval;
    let token = stop.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let p = maintained.clone();
                    let _ = tokio::task::spawn_blocking(move || p.maintain()).await;
                }
                _ = token.cancelled() => return,
            }
        }
    });

    let fetch_budget = crate::fetch_budget::FetchBudget::new(config.fetch_memory);
    let kafka_groups =
        Arc::new(crate::kafka::groups::Groups::new(partitions.clone(), config.kafka_group_initial_delay));
    if let Some(listener) = kafka_listener {
        let kafka = Arc::new(crate::kafka::Kafka {
            partitions: partitions.clone(),
            config: config.clone(),
            sentinels: sentinels.clone(),
            offsets: offsets.clone(),
            groups: kafka_groups.clone(),
            fetch_budget: fetch_budget.clone(),
            security: security.clone(),
            certificate_rules: certificate_rules.clone(),
            shutdown: stop.clone(),
        });
        let kafka_tls = kafka_tls.map(|tls| watched(tls, metrics, &tracker, &stop));
        tracker.spawn(crate::kafka::serve(listener, kafka, kafka_tls, tracker.clone()));
    }
    let grpc_tls = grpc_tls.map(|tls| watched(tls, metrics, &tracker, &stop));
    let grpc = BrokerGrpc {
        partitions: partitions.clone(),
        config: config.clone(),
        shutdown: stop.clone(),
        offsets,
        fetch_budget,
        kafka_groups,
        security: security.clone(),
    };
    // Room for the largest batch plus the request's other fields.
    let max_message = MAX_BATCH_LEN + (1 << 20);
    tracing::info!(
        id = config.id,
        address = %config.address,
        http_address = ?config.http_address,
        kafka_address = ?config.kafka_address,
        data = %config.data_dir.display(),
        "broker serving"
    );
    // Who may call: with --auth-required, users with a token from a login
    // and the cluster's servers with their certificates.
    let admit = if config.auth.auth_required { Admit::UsersAndServers } else { Admit::Anyone };
    let gate = Gate::new(admit, {
        let security = security.clone();
        Arc::new(move || security.users.token_keys())
    })
    .with_certificate_rules(certificate_rules, config.auth.super_users.clone());
    let router = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(32 << 20))
        .max_frame_size(Some(256 << 10))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            BrokerServiceServer::new(grpc)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            gate.interceptor(),
        ));
    let incoming = goulette_proto::ops::serve::incoming(listener, config.connection_limits);
    let served = match grpc_tls {
        None => router.serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()).await,
        Some(tls) => {
            let failures = metrics.tls_handshake_failures("grpc");
            let incoming = goulette_proto::ops::serve::tls(incoming, tls, move || {
                failures.inc();
            });
            router.serve_with_incoming_shutdown(incoming, stop.clone().cancelled_owned()).await
        }
    };
    tracker.close();
    tracker.wait().await;
    let closing = partitions.clone();
    tokio::task::spawn_blocking(move || closing.close_all()).await?;
    crate::shutdown::deregister(&partitions, &sentinels).await;
    tracing::info!(id = config.id, "broker stopped");
    served.map_err(Into::into)
}

/// A listener's TLS with its files watched until `stop` (failed reloads counted).
fn watched(
    tls: goulette_tls::ServerTls,
    metrics: &crate::metrics::BrokerMetrics,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) -> Arc<goulette_tls::ServerTls> {
    let failures = metrics.tls_reload_failures.clone();
    let tls = Arc::new(tls.on_reload_failure(move || {
        failures.inc();
    }));
    tracker.spawn(tls.clone().watch(goulette_tls::reload::DEFAULT_POLL, stop.clone()));
    tls
}

/// What the broker's HTTP endpoints report.
#[derive(Debug)]
struct Probe {
    partitions: Arc<Partitions>,
    offsets: Arc<crate::offsets::Coordinator>,
}

impl goulette_proto::ops::http::Probe for Probe {
    fn ready(&self) -> Result<(), String> {
        self.partitions.ready()
    }

    fn metrics(&self) -> String {
        self.partitions.update_gauges();
        self.partitions.metrics().set_committed(self.offsets.committed_now());
        self.partitions.metrics().encode()
    }
}
