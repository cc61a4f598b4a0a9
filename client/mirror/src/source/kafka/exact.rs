//! Exactly once, from a Goulette cluster (through its Kafka listener) to
//! another: every record lands in the target at its source offset, once.
//!
//! How: the target partition's offsets are made to equal the source's.
//! - Each target partition is written only by the mirror, from offset 0
//!   (or from where the mirror left it), partition p from source partition
//!   p (`partition = "same"`).
//! - Each batch is a *conditional append* at its first record's source
//!   offset: the target stores it only if its log ends exactly there, and
//!   otherwise answers where it ends (`append::append_at`).
//! - The mirror reads each source partition from the target's end, not from
//!   a commit of its own: the target is the only record of progress.
//!
//! So a batch is never stored twice. A retry after a lost answer, or a
//! batch that a killed earlier run had sent and that lands late, makes the
//! log end move past the batch: the next append there is refused, told
//! where the log ends, and the records below it are known stored (the
//! source's records at those offsets, since nothing else writes there).
//! A log that ends *before* a batch means a gap: source offsets that are
//! not dense (a compacted Kafka topic, transaction markers) or a target
//! that lost records. The mirror stops there and says so, rather than
//! shift offsets.
//!
//! Partitions are written in parallel, one task each, each in its order.
//!
//! Consumer groups to sync need no translation: their offsets are the
//! same on both sides, once the target holds what they committed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use goulette_batch::Record;
use goulette_client::Cluster;
use goulette_client::append::{Appended, append_at};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::translate::Identity;
use super::{Context, KafkaSourceError, client_config};
use crate::config::KafkaConfig;
use crate::metrics::SourceMetrics;

/// Records per batch at most, and their key and value bytes: one
/// conditional append is in flight per partition, so a partition moves a
/// batch per round trip (measured: 500 records of 1 KiB moved ~97k
/// records/s, docs/benchmarks.md)…
const BATCH_RECORDS: usize = 4096;
const BATCH_BYTES: usize = 2 << 20;
/// …and how long a batch waits for more.
const BATCH_WAIT: Duration = Duration::from_millis(5);
/// Batches read ahead of a partition's writer.
const AHEAD: usize = 8;
/// How long finding the source's partitions may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// A run of records of one partition, at consecutive source offsets from
/// `first`.
#[derive(Debug)]
struct Run {
    first: u64,
    records: Vec<Record>,
    bytes: usize,
}

/// Why a partition's writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExactError {
    #[error(
        "{topic}/{partition}: the target ends at offset {log_end}, before source offset {first}: \
         source offsets are not dense there, or the target lost records; exactly-once cannot keep offsets equal"
    )]
    Gap { topic: String, partition: u32, first: u64, log_end: u64 },
    #[error("{topic}/{partition}: source offsets jump from {expected} to {got}; exactly-once needs dense offsets")]
    SourceGap { topic: String, partition: u32, expected: u64, got: u64 },
    #[error("{topic}/{partition}: writing failed for {retried:?}: {error}")]
    Write { topic: String, partition: u32, retried: Duration, error: goulette_client::ClientError },
}

/// What is left of a run of records from `first` once the target's log
/// ends at `log_end`: how many leading records it holds already, or a gap.
fn stored_already(first: u64, len: usize, log_end: u64) -> Option<usize> {
    (log_end >= first).then(|| (log_end - first).min(len as u64) as usize)
}

/// Runs the source until `token` is cancelled: reads from where each
/// target partition ends, writes every partition's runs in order.
pub async fn run(
    config: KafkaConfig,
    metrics: SourceMetrics,
    target: Arc<Cluster>,
    retry_for: Duration,
    token: CancellationToken,
) -> Result<(), KafkaSourceError> {
    let brokers = config.brokers.clone();
    let client = |error| KafkaSourceError::Client { brokers: brokers.clone(), error };
    let mut settings = client_config(&config, &config.group);
    settings.set("enable.auto.commit", "false");
    let consumer: Arc<StreamConsumer<Context>> = Arc::new(
        settings
            .create_with_context(
                Context::new(&config.name, metrics.problem.clone()).with_lag(metrics.source_lag.clone()),
            )
            .map_err(client)?,
    );
    // Each source partition, from where its target partition ends.
    let mut assignment = TopicPartitionList::new();
    let mut writers = BTreeMap::new();
    let mut tasks = JoinSet::new();
    let (held, watched) = tokio::sync::watch::channel(Identity::default());
    let held = Arc::new(held);
    for topic in &config.topics {
        let partitions = source_partitions(&consumer, topic).await.map_err(client)?;
        let target_topic = config.target_topic(topic);
        for partition in 0..partitions {
            let end = target
                .list_offsets(&target_topic, partition, None)
                .await
                .map_err(|e| KafkaSourceError::Target(format!("{target_topic}/{partition}: {e}")))?
                .high_watermark;
            assignment.add_partition_offset(topic, partition as i32, Offset::Offset(end as i64)).map_err(client)?;
            let (runs, queued) = mpsc::channel(AHEAD);
            writers.insert((topic.clone(), partition), runs);
            held.send_modify(|h| {
                h.0.insert((topic.clone(), partition), end);
            });
            let writer = Writer {
                source_topic: topic.clone(),
                held: held.clone(),
                topic: target_topic.clone(),
                partition,
                target: target.clone(),
                metrics: metrics.clone(),
                retry_for,
                stop: token.clone(),
            };
            tasks.spawn(writer.run(queued));
            tracing::info!(source = %config.name, topic, partition, from = end, "exactly-once: reading from the target's end");
        }
    }
    consumer.assign(&assignment).map_err(client)?;
    if !config.sync_groups.is_empty() {
        tokio::spawn(super::groups::sync(config.clone(), watched, target.clone(), metrics.clone(), token.clone()));
    }
    let read = read(&config, &consumer, &mut writers, &metrics, &token, &mut tasks).await;
    // Stopped reading: the writers finish what they were given.
    writers.clear();
    let mut outcome = read;
    while let Some(done) = tasks.join_next().await {
        let written = done.map_err(|e| KafkaSourceError::Target(e.to_string())).and_then(|r| r.map_err(Into::into));
        if let Err(e) = written {
            token.cancel();
            if outcome.is_ok() {
                outcome = Err(e);
            }
        }
    }
    outcome
}

/// Reads the assigned partitions into runs until `token` is cancelled or
/// a writer stops.
async fn read(
    config: &KafkaConfig,
    consumer: &StreamConsumer<Context>,
    writers: &mut BTreeMap<(String, u32), mpsc::Sender<Run>>,
    metrics: &SourceMetrics,
    token: &CancellationToken,
    tasks: &mut JoinSet<Result<(), ExactError>>,
) -> Result<(), KafkaSourceError> {
    let mut stream = consumer.stream();
    let mut open: BTreeMap<(String, u32), Run> = BTreeMap::new();
    // Where each partition's next record must be (from its assignment).
    let mut next: BTreeMap<(String, u32), u64> = BTreeMap::new();
    if let Ok(assignment) = consumer.assignment() {
        for e in assignment.elements() {
            if let Offset::Offset(o) = e.offset() {
                next.insert((e.topic().to_owned(), e.partition() as u32), o as u64);
            }
        }
    }
    let mut deadline = tokio::time::Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => return Ok(()),
            // A writer that stopped early stops the source.
            Some(done) = tasks.join_next() => {
                return match done {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(KafkaSourceError::Target(e.to_string())),
                };
            }
            _ = tokio::time::sleep_until(deadline), if !open.is_empty() => {
                for (key, run) in std::mem::take(&mut open) {
                    hand_over(writers, key, run).await;
                }
            }
            message = stream.next() => match message {
                Some(Ok(m)) => {
                    let (offset, key) = (m.offset() as u64, (m.topic().to_owned(), m.partition() as u32));
                    let record = Record {
                        timestamp: m.timestamp().to_millis().unwrap_or_else(goulette_batch::now_ms),
                        key: m.key().map(Bytes::copy_from_slice),
                        value: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
                        headers: super::headers_of(&m),
                    };
                    let bytes = record.key.as_ref().map_or(0, Bytes::len) + record.value.len();
                    metrics.records_in.inc();
                    metrics.bytes_in.inc_by(bytes as u64);
                    *metrics.problem.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    if open.is_empty() {
                        deadline = tokio::time::Instant::now() + BATCH_WAIT;
                    }
                    // Every offset, in order, from where the target ends.
                    let expected = next.get(&key).copied().unwrap_or(offset);
                    if offset != expected {
                        return Err(ExactError::SourceGap { topic: key.0, partition: key.1, expected, got: offset }.into());
                    }
                    next.insert(key.clone(), offset + 1);
                    let run = open.entry(key.clone()).or_insert_with(|| Run { first: offset, records: Vec::new(), bytes: 0 });
                    run.records.push(record);
                    run.bytes += bytes;
                    if (run.records.len() >= BATCH_RECORDS || run.bytes >= BATCH_BYTES)
                        && let Some(run) = open.remove(&key)
                    {
                        hand_over(writers, key, run).await;
                    }
                }
                Some(Err(error)) => {
                    metrics.errors.inc();
                    tracing::warn!(source = %config.name, %error, "the Kafka consumer reports an error");
                }
                None => return Ok(()),
            },
        }
    }
}

/// Gives a run to its partition's writer (waiting while it is behind).
async fn hand_over(writers: &BTreeMap<(String, u32), mpsc::Sender<Run>>, key: (String, u32), run: Run) {
    if let Some(writer) = writers.get(&key) {
        // A writer gone has stopped with an error, which the caller sees.
        let _ = writer.send(run).await;
    }
}

/// The partition count of `topic` on the source.
async fn source_partitions(
    consumer: &Arc<StreamConsumer<Context>>,
    topic: &str,
) -> Result<u32, rdkafka::error::KafkaError> {
    let (consumer, name) = (consumer.clone(), topic.to_owned());
    let metadata = tokio::task::spawn_blocking(move || consumer.fetch_metadata(Some(&name), METADATA_TIMEOUT))
        .await
        .map_err(|_| rdkafka::error::KafkaError::Canceled)??;
    Ok(metadata.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len() as u32))
}

/// One target partition's writer.
struct Writer {
    source_topic: String,
    /// Where each target partition ends, for the group sync.
    held: Arc<tokio::sync::watch::Sender<Identity>>,
    topic: String,
    partition: u32,
    target: Arc<Cluster>,
    metrics: SourceMetrics,
    retry_for: Duration,
    /// A stop ends the retries: the target is the record of progress, so
    /// the next run starts where it ends.
    stop: CancellationToken,
}

impl Writer {
    async fn run(self, mut runs: mpsc::Receiver<Run>) -> Result<(), ExactError> {
        while let Some(run) = runs.recv().await {
            if !self.write(run).await? {
                // Stopped while failing: the runs left are read again.
                break;
            }
        }
        Ok(())
    }

    /// Appends `run` at its source offsets, skipping what the target holds
    /// already, retrying failures with backoff for `retry_for`; false when
    /// a stop ended the retries first.
    async fn write(&self, mut run: Run) -> Result<bool, ExactError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(200);
        let (count, bytes) = (run.records.len() as u64, run.bytes as u64);
        let stamps: Vec<i64> = run.records.iter().map(|r| r.timestamp).collect();
        while !run.records.is_empty() {
            match append_at(&self.target, &self.topic, self.partition, run.first, &run.records).await {
                Ok(Appended::Stored) => break,
                Ok(Appended::Mismatch { log_end }) => {
                    let Some(held) = stored_already(run.first, run.records.len(), log_end) else {
                        return Err(ExactError::Gap {
                            topic: self.topic.clone(),
                            partition: self.partition,
                            first: run.first,
                            log_end,
                        });
                    };
                    tracing::info!(topic = %self.topic, partition = self.partition, from = run.first, held, "exactly-once: records stored already are not written again");
                    run.records.drain(..held);
                    run.first += held as u64;
                }
                Err(error) if started.elapsed() < self.retry_for && !crate::target::unwritable(&error) => {
                    self.metrics.retries.inc();
                    self.metrics.errors.inc();
                    tracing::warn!(topic = %self.topic, partition = self.partition, %error, "a conditional append failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = self.stop.cancelled() => return Ok(false),
                    }
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
                Err(error) => {
                    return Err(ExactError::Write {
                        topic: self.topic.clone(),
                        partition: self.partition,
                        retried: started.elapsed(),
                        error,
                    });
                }
            }
        }
        self.metrics.records_out.inc_by(count);
        self.metrics.bytes_out.inc_by(bytes);
        self.metrics.observe_end_to_end(stamps);
        let end = run.first + run.records.len() as u64;
        self.held.send_modify(|h| {
            h.0.insert((self.source_topic.clone(), self.partition), end);
        });
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_ending_inside_or_past_a_run_holds_its_head_and_one_before_it_is_a_gap() {
        assert_eq!(stored_already(100, 50, 100), Some(0));
        assert_eq!(stored_already(100, 50, 120), Some(20), "a late write of an earlier run");
        assert_eq!(stored_already(100, 50, 400), Some(50), "all of it");
        assert_eq!(stored_already(100, 50, 90), None, "a gap");
    }
}
