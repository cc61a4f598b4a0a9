//! The running mirror: one pipeline per source, the operator's endpoints,
//! and a graceful stop (SIGTERM/SIGINT: sources stop reading, what is in
//! flight is written and acknowledged to its source, then the process
//! exits), with periodic stats in the log.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{MirrorConfig, SourceConfig};
use crate::dedup::Dedup;
use crate::metrics::{Metrics, SourceMetrics};
use crate::pipeline::{self, PipelineSettings};
use crate::source;
use crate::target::Target;

/// How often each source's counts are logged.
const STATS_EVERY: Duration = Duration::from_secs(30);

/// Ready while every source serves; says which stopped, or which cannot
/// reach its system now, otherwise.
struct Probe {
    metrics: Arc<Metrics>,
    failed: std::sync::Mutex<Vec<String>>,
}

impl goulette_proto::ops::http::Probe for Probe {
    fn ready(&self) -> Result<(), String> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        if !failed.is_empty() {
            return Err(format!("stopped: {}", failed.join("; ")));
        }
        let problems = self.metrics.problems();
        if problems.is_empty() { Ok(()) } else { Err(format!("not serving: {}", problems.join("; "))) }
    }

    fn metrics(&self) -> String {
        goulette_proto::ops::http::encode(&self.metrics.registry)
    }
}

/// Runs every source of `config` until `shutdown`; an error when a source
/// stopped on its own (the others are stopped too, gracefully).
pub async fn run(config: MirrorConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let probe = Arc::new(Probe { metrics: metrics.clone(), failed: std::sync::Mutex::new(Vec::new()) });
    let http_stop = CancellationToken::new();
    if let Some(address) = config.http.address {
        let listener =
            tokio::net::TcpListener::bind(address).await.map_err(|e| anyhow::anyhow!("http.address {address}: {e}"))?;
        tracing::info!(%address, "serving /health, /ready and /metrics");
        tokio::spawn(goulette_proto::ops::http::serve(listener, probe.clone(), http_stop.clone()));
    }
    let target = Arc::new(Target::new(&config.target)?);
    // A source that fails stops the others (gracefully) too.
    let stop = shutdown.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    for source in config.sources.clone() {
        let name = source.name().to_owned();
        let source_metrics = metrics.source(&name);
        tokio::spawn(log_stats(name.clone(), source_metrics.clone(), stop.clone()));
        let pipelines = source.pipelines();
        let settings = PipelineSettings {
            source_name: name.clone(),
            max_in_flight: (config.target.max_in_flight / pipelines).max(1),
            retry_for: config.target.retry_for,
        };
        let (links, ends) = source::link(pipelines);
        let target_side = (target.cluster(), config.target.retry_for);
        let reader = spawn_source(source.clone(), ends, source_metrics.clone(), target_side, stop.clone());
        let (target, stop, m) = (target.clone(), stop.clone(), source_metrics.clone());
        let (dedup, topics) = (source.dedup().cloned(), source.topics());
        let rate = source.rate().map(crate::rate::RateLimit::new);
        tasks.spawn(async move {
            let mut dedup = match dedup {
                Some(config) => Some(seeded(Dedup::new(config), &target, &topics, &name).await?),
                None => None,
            };
            // Dedup and rate limits come with one pipeline only.
            let mut rate = rate;
            let mut pipes = tokio::task::JoinSet::new();
            for link in links {
                let run = pipeline::run(
                    settings.clone(),
                    link,
                    target.clone(),
                    m.clone(),
                    dedup.take(),
                    rate.take(),
                    stop.clone(),
                );
                pipes.spawn(run);
            }
            let mut piped = Ok(());
            while let Some(done) = pipes.join_next().await {
                let outcome = match done {
                    Ok(outcome) => outcome,
                    Err(e) => Err(pipeline::PipelineError::Task { source_name: name.clone(), reason: e.to_string() }),
                };
                match outcome {
                    Ok(()) => {}
                    // A stop asked for, not a failure: the source reads the
                    // unacknowledged records again on its next run.
                    Err(e @ pipeline::PipelineError::Stopped { .. }) => {
                        tracing::warn!(error = %e, "stopping without waiting for the target");
                    }
                    Err(e) => {
                        stop.cancel();
                        if piped.is_ok() {
                            piped = Err(e);
                        }
                    }
                }
            }
            let read = reader.await.map_err(|e| anyhow::anyhow!("source {name}: {e}"))?;
            piped.map_err(anyhow::Error::from)?;
            read.map_err(|e| anyhow::anyhow!("source {name}: {e}"))
        });
    }
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let outcome = done.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = outcome {
            tracing::error!(error = %e, "a source stopped; stopping the others");
            probe.failed.lock().unwrap_or_else(|p| p.into_inner()).push(e.to_string());
            stop.cancel();
            first_error.get_or_insert(e);
        }
    }
    match Arc::try_unwrap(target) {
        // Everything acknowledged is written; what the producer still
        // holds was not acknowledged to any source: it need not wait for a
        // target that is down.
        Ok(target) => {
            if tokio::time::timeout(pipeline::DRAIN_GRACE, target.close()).await.is_err() {
                tracing::warn!("the producer did not flush in time; its records are read again on the next run");
            }
        }
        Err(_) => tracing::warn!("the producer is still shared at exit"),
    }
    http_stop.cancel();
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!("every source stopped; in-flight records were written and acknowledged");
            Ok(())
        }
    }
}

/// `dedup` seeded from what `topics` hold.
async fn seeded(mut dedup: Dedup, target: &Target, topics: &[String], name: &str) -> anyhow::Result<Dedup> {
    for topic in topics {
        let seeded = crate::seed::seed(&mut dedup, target.cluster(), topic)
            .await
            .map_err(|e| anyhow::anyhow!("source {name}: seeding the dedup from topic {topic}: {e}"))?;
        tracing::info!(source = %name, topic, seeded, "dedup seeded from the topic's last records");
    }
    Ok(dedup)
}

/// Starts the reading side of `source`.
fn spawn_source(
    source: SourceConfig,
    ends: source::SourceEnds,
    metrics: SourceMetrics,
    (target, retry_for): (Arc<goulette_client::Cluster>, std::time::Duration),
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), String>> {
    match source {
        SourceConfig::Files(files) => tokio::task::spawn_blocking(move || {
            source::files::run(files, ends, metrics, stop).map_err(|e| e.to_string())
        }),
        SourceConfig::Rabbitmq(rabbit) => {
            tokio::spawn(
                async move { source::rabbitmq::run(rabbit, ends, metrics, stop).await.map_err(|e| e.to_string()) },
            )
        }
        // It writes by itself (conditional appends): its pipeline gets nothing.
        SourceConfig::Kafka(kafka) if kafka.exactly_once => tokio::spawn(async move {
            drop(ends);
            source::kafka::exact::run(kafka, metrics, target, retry_for, stop).await.map_err(|e| e.to_string())
        }),
        SourceConfig::Kafka(kafka) => tokio::spawn(async move {
            source::kafka::run(kafka, ends, metrics, target, stop).await.map_err(|e| e.to_string())
        }),
    }
}

/// Logs `name`'s counts every [`STATS_EVERY`] until `stop`.
async fn log_stats(name: String, m: SourceMetrics, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(STATS_EVERY);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        tracing::info!(
            source = %name,
            records_in = m.records_in.get(),
            records_out = m.records_out.get(),
            bytes_out = m.bytes_out.get(),
            in_flight = m.in_flight.get(),
            retries = m.retries.get(),
            dead_letters = m.dead_letters.get(),
            errors = m.errors.get(),
            "mirror stats"
        );
    }
}
