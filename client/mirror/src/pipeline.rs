//! One source's way to the target: batches are queued on the producer in
//! the source's order as they arrive, at most `max_in_flight` records
//! unacknowledged, and acknowledged back to the source in that same order
//! once every record of a batch (and of all before it) is acknowledged by
//! the target. So the source only lets go of what the target holds.
//!
//! Optional dedup drops records already written; optional rate limits
//! pace the batches.
//!
//! A write that fails is retried (after the producer's own retries) with
//! exponential backoff and jitter for `retry_for`; a record the target will
//! never take (too large, invalid) goes to the dead-letter topic, or, with
//! none, stops the source. Stopping never acknowledges a record the target
//! does not hold: what is unacknowledged is sent again on the next run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goulette_client::ClientError;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::dedup::Dedup;
use crate::metrics::SourceMetrics;
use crate::rate::RateLimit;
use crate::record::{Batch, MirrorRecord};
use crate::source::{Acked, SourceLink};
use crate::target::{Target, unwritable};

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("source {source_name}: writing to {topic} failed for {retried:?}: {error}")]
    Write { source_name: String, topic: String, retried: Duration, error: ClientError },
    #[error("source {source_name}: the target refuses a record of {topic} ({error}) and no dead-letter topic is set")]
    Unwritable { source_name: String, topic: String, error: ClientError },
    #[error("source {source_name}: a write task failed: {reason}")]
    Task { source_name: String, reason: String },
    /// Stopped (SIGTERM) while writes were failing: what was not
    /// acknowledged stays so, and is read again on the next run.
    #[error("source {source_name}: stopped while writes were failing; {unacknowledged} records not acknowledged")]
    Stopped { source_name: String, unacknowledged: usize },
}

/// How a pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub source_name: String,
    pub max_in_flight: usize,
    pub retry_for: Duration,
}

/// After a stop, how long records in flight may still take to be
/// acknowledged (a healthy target needs milliseconds); then they are left
/// unacknowledged, to be read again on the next run.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// A retry's first pause, doubled up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);

struct InFlight {
    task: JoinHandle<Result<Acked, PipelineError>>,
    records: usize,
}

/// Moves batches from `link` to `target` until the source ends or `token`
/// is cancelled; then waits for what is in flight and acknowledges it.
pub async fn run(
    settings: PipelineSettings,
    link: SourceLink,
    target: Arc<Target>,
    metrics: SourceMetrics,
    mut dedup: Option<Dedup>,
    mut rate: Option<RateLimit>,
    token: CancellationToken,
) -> Result<(), PipelineError> {
    let SourceLink { mut batches, acks } = link;
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut records = 0;
    let mut reading = true;
    let result = loop {
        if !reading && in_flight.is_empty() {
            break Ok(());
        }
        tokio::select! {
            biased;
            done = async {
                match in_flight.front_mut() {
                    Some(front) => (&mut front.task).await.ok(),
                    None => None,
                }
            }, if !in_flight.is_empty() => {
                let Some(front) = in_flight.pop_front() else { continue };
                records -= front.records;
                metrics.in_flight.set(records as i64);
                match done {
                    Some(Ok(acked)) => {
                        let _ = acks.send(acked);
                    }
                    Some(Err(PipelineError::Stopped { source_name, .. })) => {
                        break Err(PipelineError::Stopped { source_name, unacknowledged: records + front.records });
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Err(PipelineError::Task { source_name: settings.source_name.clone(), reason: "panicked or cancelled".into() }),
                }
            }
            batch = batches.recv(), if reading && records < settings.max_in_flight => match batch {
                Some(batch) => {
                    let count = batch.records.len();
                    if let Some(rate) = rate.as_mut() {
                        rate.admit(count, batch.bytes()).await;
                    }
                    let task = queue(&settings, batch, &target, &metrics, dedup.as_mut(), &token).await;
                    records += count;
                    metrics.in_flight.set(records as i64);
                    in_flight.push_back(InFlight { task, records: count });
                }
                None => reading = false,
            },
            _ = token.cancelled(), if reading => {
                // Read no further; what is in flight is finished below.
                reading = false;
                batches.close();
            }
        }
    };
    if result.is_err() {
        // Nothing after a failed batch is acknowledged: the source sends it again.
        for f in in_flight {
            f.task.abort();
        }
    }
    metrics.in_flight.set(0);
    result
}

/// Queues `batch`'s records on the producer now (so that their order is
/// the source's), and returns the task waiting for their acknowledgement.
async fn queue(
    settings: &PipelineSettings,
    batch: Batch,
    target: &Arc<Target>,
    metrics: &SourceMetrics,
    dedup: Option<&mut Dedup>,
    token: &CancellationToken,
) -> JoinHandle<Result<Acked, PipelineError>> {
    let read_at = Instant::now();
    let bytes = batch.bytes() as u64;
    let mut deliveries = Vec::with_capacity(batch.records.len());
    let mut offsets = vec![None; batch.records.len()];
    let mut dedup = dedup.map(|d| (d, Instant::now()));
    for (index, record) in batch.records.into_iter().enumerate() {
        if let Some((dedup, now)) = dedup.as_mut() {
            let hash = dedup.hash_record(&record);
            if !dedup.first(hash, *now) {
                metrics.dedup_hits.inc();
                continue;
            }
        }
        let delivery = match &record.refused {
            // Not written: straight to the dead letters (or the stop).
            Some(reason) => Err(ClientError::InvalidArgument(reason.clone())),
            None => target.send(&record).await,
        };
        deliveries.push((index, record, delivery));
    }
    let (target, metrics, settings, token) = (target.clone(), metrics.clone(), settings.clone(), token.clone());
    tokio::spawn(async move {
        let count = deliveries.len() as u64;
        let mut stamps = Vec::with_capacity(deliveries.len());
        for (index, record, delivery) in deliveries {
            let first = match delivery {
                Ok(d) => tokio::select! {
                    outcome = d.wait() => outcome.map(|m| m.offset),
                    _ = async { token.cancelled().await; tokio::time::sleep(DRAIN_GRACE).await } => {
                        return Err(PipelineError::Stopped { source_name: settings.source_name.clone(), unacknowledged: 0 });
                    }
                },
                Err(e) => Err(e),
            };
            offsets[index] = settle(&settings, &target, &metrics, &record, first, &token).await?;
            stamps.extend(record.timestamp);
        }
        metrics.records_out.inc_by(count);
        metrics.bytes_out.inc_by(bytes);
        metrics.ack_latency.observe(read_at.elapsed().as_secs_f64());
        metrics.observe_end_to_end(stamps);
        Ok(Acked { position: batch.position, offsets })
    })
}

/// Sees one record through: retried while that may help, dead-lettered
/// when the target will never take it. Its offset in its topic (none:
/// dead-lettered). A stop (`token`) ends the retries: the record stays
/// unacknowledged rather than hold the stop for `retry_for`.
async fn settle(
    settings: &PipelineSettings,
    target: &Target,
    metrics: &SourceMetrics,
    record: &MirrorRecord,
    first: Result<Option<u64>, ClientError>,
    token: &CancellationToken,
) -> Result<Option<u64>, PipelineError> {
    let started = Instant::now();
    let mut pause = RETRY_FIRST;
    let mut outcome = first;
    loop {
        let error = match outcome {
            Ok(offset) => return Ok(offset),
            Err(e) => e,
        };
        metrics.errors.inc();
        if unwritable(&error) {
            return match target.dead_letter(record, &error).await {
                Some(Ok(())) => {
                    metrics.dead_letters.inc();
                    tracing::warn!(source = %settings.source_name, topic = %record.topic, %error, "a record went to the dead-letter topic");
                    Ok(None)
                }
                Some(Err(e)) => Err(PipelineError::Write {
                    source_name: settings.source_name.clone(),
                    topic: record.topic.clone(),
                    retried: started.elapsed(),
                    error: e,
                }),
                None => Err(PipelineError::Unwritable {
                    source_name: settings.source_name.clone(),
                    topic: record.topic.clone(),
                    error,
                }),
            };
        }
        if started.elapsed() >= settings.retry_for {
            return Err(PipelineError::Write {
                source_name: settings.source_name.clone(),
                topic: record.topic.clone(),
                retried: started.elapsed(),
                error,
            });
        }
        tracing::warn!(source = %settings.source_name, topic = %record.topic, %error, retry_in_ms = pause.as_millis() as u64, "a write failed; retrying");
        metrics.retries.inc();
        let stopped = PipelineError::Stopped { source_name: settings.source_name.clone(), unacknowledged: 0 };
        if token.is_cancelled() {
            return Err(stopped);
        }
        tokio::select! {
            _ = tokio::time::sleep(jitter(pause)) => {}
            _ = token.cancelled() => return Err(stopped),
        }
        pause = (pause * 2).min(RETRY_MAX);
        outcome = target.write(record).await;
    }
}

/// `pause`, give or take a quarter (so that retries do not march in step).
fn jitter(pause: Duration) -> Duration {
    let quarter = pause.as_millis() as u64 / 4;
    let offset = rand::rng().random_range(0..=2 * quarter);
    Duration::from_millis(pause.as_millis() as u64 - quarter + offset)
}
