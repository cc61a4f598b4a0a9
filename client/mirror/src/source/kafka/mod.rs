//! Topics of a Kafka-protocol cluster, read as a consumer group through
//! librdkafka (the `rdkafka` crate): the Kafka client most used outside the
//! JVM, with the whole group protocol (rebalances, cooperative or eager),
//! TLS and SASL (PLAIN, SCRAM) to any Kafka-compatible cluster. It is
//! linked dynamically to Debian's librdkafka (`librdkafka-dev`), so it is
//! patched with the system and adds no C build.
//!
//! Offsets are committed to the source only once the target acknowledged
//! the records: they are stored (`enable.auto.offset.store=false`) after
//! the pipeline's acknowledgement, and librdkafka commits what is stored
//! every second, on a rebalance and at the end. A crash re-reads from the
//! last commit (at least once); a graceful stop commits everything
//! acknowledged, synchronously.
//!
//! Record: key, value (a null value becomes empty), headers and timestamp
//! as they are; the target topic by the `topic` rule; the target partition
//! the source's with `partition = "same"`. Then [`translate`] learns where
//! each record landed, and [`groups`] moves consumer groups' offsets.

pub mod client;
pub mod exact;
pub mod groups;
pub mod translate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use goulette_client::Cluster;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::{Acked, SourceEnds};
use crate::config::{KafkaConfig, KafkaPartition};
use crate::metrics::SourceMetrics;
use crate::record::{Batch, MirrorRecord};
pub use client::{Context, client_config};
use translate::Translation;

/// Records per batch at most…
const BATCH_RECORDS: usize = 500;
/// …and how long a batch waits for more.
const BATCH_WAIT: Duration = Duration::from_millis(5);
/// How often acknowledged offsets are handed to librdkafka (after the
/// translation is saved, when groups are synced).
const STORE_EVERY: Duration = Duration::from_secs(1);
/// The translation's file in the state directory.
const TRANSLATION_FILE: &str = "translation.json";

/// Why the source stopped.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("the Kafka consumer ({brokers}): {error}")]
    Client { brokers: String, error: KafkaError },
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    #[error("the target: {0}")]
    Target(String),
    #[error(transparent)]
    Exact(#[from] exact::ExactError),
}

/// Where a record came from: source topic, partition and offset.
type Origin = (Arc<str>, u32, u64);

/// Where a batch's records came from.
#[derive(Debug)]
struct Sent {
    position: u64,
    origins: Vec<Origin>,
}

struct KafkaSource {
    config: KafkaConfig,
    consumer: Arc<StreamConsumer<Context>>,
    /// The pipelines: a partition's records always go through the same one
    /// (so they stay in order), partitions spread over them.
    batches: Option<Vec<tokio::sync::mpsc::Sender<Batch>>>,
    acks: tokio::sync::mpsc::UnboundedReceiver<Acked>,
    /// Batches in the pipelines, by position.
    sent: BTreeMap<u64, Sent>,
    next_position: u64,
    /// The next offset of each partition the target acknowledged up to…
    acked: BTreeMap<(Arc<str>, u32), u64>,
    /// …and those not yet handed to librdkafka.
    unstored: BTreeMap<(Arc<str>, u32), u64>,
    /// With groups to sync: where records landed, saved before the
    /// source's commit covers them.
    translation: Option<(Translation, bool)>,
    published: Option<tokio::sync::watch::Sender<Translation>>,
    topics: BTreeMap<String, Arc<str>>,
    metrics: SourceMetrics,
}

/// Runs the source until `token` is cancelled and the pipeline let go.
pub async fn run(
    config: KafkaConfig,
    ends: SourceEnds,
    metrics: SourceMetrics,
    target: Arc<Cluster>,
    token: CancellationToken,
) -> Result<(), KafkaSourceError> {
    let brokers = config.brokers.clone();
    let client = |error| KafkaSourceError::Client { brokers: brokers.clone(), error };
    let consumer: StreamConsumer<Context> = client_config(&config, &config.group)
        .create_with_context(Context::new(&config.name, metrics.problem.clone()).with_lag(metrics.source_lag.clone()))
        .map_err(client)?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(client)?;
    tracing::info!(source = %config.name, brokers = %config.brokers, group = %config.group, ?topics, "consuming from Kafka");
    let mut published = None;
    let translation = if config.sync_groups.is_empty() {
        None
    } else {
        let dir = config.state_directory();
        let saved: Translation = super::checkpoint::load(
            &dir,
            TRANSLATION_FILE,
            "groups are then translated again only once the mirror wrote their offsets anew",
        )?;
        let (publish, watched) = tokio::sync::watch::channel(saved.clone());
        tokio::spawn(groups::sync(config.clone(), watched, target, metrics.clone(), token.clone()));
        published = Some(publish);
        Some((saved, false))
    };
    let mut source = KafkaSource {
        config,
        consumer: Arc::new(consumer),
        batches: Some(std::iter::once(ends.batches).chain(ends.workers).collect()),
        acks: ends.acks,
        sent: BTreeMap::new(),
        next_position: 1,
        acked: BTreeMap::new(),
        unstored: BTreeMap::new(),
        translation,
        published,
        topics: BTreeMap::new(),
        metrics,
    };
    source.consume(&token).await?;
    source.store()?;
    source.commit_acknowledged().await;
    Ok(())
}

impl KafkaSource {
    /// Reads until the source is stopped and the pipeline let go.
    async fn consume(&mut self, token: &CancellationToken) -> Result<(), KafkaSourceError> {
        let consumer = self.consumer.clone();
        let mut stream = consumer.stream();
        let mut batch: Vec<MirrorRecord> = Vec::new();
        let mut origins = Vec::new();
        let mut deadline = tokio::time::Instant::now();
        let mut store = tokio::time::interval(STORE_EVERY);
        loop {
            tokio::select! {
                biased;
                ack = self.acks.recv() => match ack {
                    Some(acked) => self.acknowledged(acked),
                    // The pipeline is done (after a stop): nothing more will come.
                    None => return Ok(()),
                },
                _ = store.tick() => self.store()?,
                _ = token.cancelled(), if self.batches.is_some() => {
                    // Read no further; the open batch was never sent: its
                    // records are read again after the last commit.
                    self.batches = None;
                    batch.clear();
                    origins.clear();
                }
                _ = tokio::time::sleep_until(deadline), if !batch.is_empty() && self.batches.is_some() => {
                    self.send(std::mem::take(&mut batch), std::mem::take(&mut origins)).await;
                }
                message = stream.next(), if self.batches.is_some() => match message {
                    Some(Ok(message)) => {
                        if batch.is_empty() {
                            deadline = tokio::time::Instant::now() + BATCH_WAIT;
                        }
                        let topic = self.topic(message.topic());
                        origins.push((topic, message.partition() as u32, message.offset() as u64));
                        batch.push(self.record(&message));
                        // Take what librdkafka holds already without another
                        // round of the select (its timers cost more than a
                        // record's copy).
                        while batch.len() < BATCH_RECORDS {
                            match stream.next().now_or_never() {
                                Some(Some(Ok(message))) => {
                                    let topic = self.topic(message.topic());
                                    origins.push((topic, message.partition() as u32, message.offset() as u64));
                                    batch.push(self.record(&message));
                                }
                                Some(Some(Err(error))) => self.consumer_error(&error),
                                _ => break,
                            }
                        }
                        if batch.len() >= BATCH_RECORDS {
                            self.send(std::mem::take(&mut batch), std::mem::take(&mut origins)).await;
                        }
                    }
                    Some(Err(error)) => self.consumer_error(&error),
                    None => return Ok(()),
                },
            }
        }
    }

    /// librdkafka goes on by itself (reconnects, retries): logged, counted
    /// and shown on `/ready` until records flow again.
    fn consumer_error(&self, error: &KafkaError) {
        self.metrics.errors.inc();
        tracing::warn!(source = %self.config.name, %error, "the Kafka consumer reports an error");
        self.set_problem(Some(format!("the Kafka consumer: {error}")));
    }

    fn set_problem(&self, why: Option<String>) {
        *self.metrics.problem.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// A shared name for `topic` (batches hold one per record).
    fn topic(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.topics.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(topic);
        self.topics.insert(topic.to_owned(), t.clone());
        t
    }

    fn record(&self, m: &BorrowedMessage<'_>) -> MirrorRecord {
        let headers = headers_of(m);
        MirrorRecord {
            topic: self.config.target_topic(m.topic()),
            partition: (self.config.partition == KafkaPartition::Same).then_some(m.partition() as u32),
            key: m.key().map(Bytes::copy_from_slice),
            value: Bytes::copy_from_slice(m.payload().unwrap_or_default()),
            headers,
            timestamp: m.timestamp().to_millis(),
            refused: None,
            tombstone: m.payload().is_none(),
        }
    }

    /// Hands the records to their pipelines, one batch each (waiting
    /// while one is full).
    async fn send(&mut self, records: Vec<MirrorRecord>, origins: Vec<Origin>) {
        let Some(pipelines) = &self.batches else { return };
        self.set_problem(None);
        let mut split: Vec<(Vec<MirrorRecord>, Vec<Origin>)> = vec![Default::default(); pipelines.len()];
        for (record, origin) in records.into_iter().zip(origins) {
            let (records, origins) = &mut split[pipeline_of(&origin.0, origin.1, pipelines.len())];
            records.push(record);
            origins.push(origin);
        }
        for (pipeline, (records, origins)) in split.into_iter().enumerate() {
            if records.is_empty() {
                continue;
            }
            let Some(pipelines) = &self.batches else { return };
            let position = self.next_position;
            self.next_position += 1;
            let batch = Batch { records, position };
            self.metrics.records_in.inc_by(batch.records.len() as u64);
            self.metrics.bytes_in.inc_by(batch.bytes() as u64);
            if pipelines[pipeline].send(batch).await.is_ok() {
                self.sent.insert(position, Sent { position, origins });
            } else {
                // A pipeline stopped: these records are read again.
                self.batches = None;
            }
        }
    }

    /// The batch at `acked.position` is held by the target (each
    /// pipeline acknowledges its batches in order, so each partition's
    /// records are acknowledged in order).
    fn acknowledged(&mut self, acked: Acked) {
        let Some(sent) = self.sent.remove(&acked.position) else { return };
        debug_assert_eq!(sent.position, acked.position);
        for (index, (topic, partition, offset)) in sent.origins.into_iter().enumerate() {
            if let Some((translation, changed)) = self.translation.as_mut() {
                let map = translation.partition(&topic, partition);
                match acked.offsets.get(index).copied().flatten() {
                    Some(target) => map.written(offset, target),
                    None => map.skipped(offset),
                }
                *changed = true;
            }
            self.acked.insert((topic.clone(), partition), offset + 1);
            self.unstored.insert((topic, partition), offset + 1);
        }
    }

    /// Saves the translation (when it changed), then lets librdkafka
    /// commit the offsets it covers.
    fn store(&mut self) -> Result<(), KafkaSourceError> {
        if self.unstored.is_empty() {
            return Ok(());
        }
        if let Some((translation, changed)) = self.translation.as_mut()
            && *changed
        {
            super::checkpoint::save(&self.config.state_directory(), TRANSLATION_FILE, translation)?;
            *changed = false;
            if let Some(published) = &self.published {
                published.send_replace(translation.clone());
            }
        }
        let tpl = partition_list(&self.unstored);
        if let Err(error) = self.consumer.store_offsets(&tpl) {
            // A partition revoked meanwhile: its new owner reads those
            // records again (at least once).
            tracing::warn!(source = %self.config.name, %error, "some acknowledged offsets could not be stored");
        }
        self.unstored.clear();
        Ok(())
    }

    /// At the end: commits every acknowledged offset, and waits for it.
    async fn commit_acknowledged(&self) {
        if self.acked.is_empty() {
            return;
        }
        let tpl = partition_list(&self.acked);
        let consumer = self.consumer.clone();
        let name = self.config.name.clone();
        let committed = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await;
        match committed {
            Ok(Ok(())) => tracing::info!(source = %name, "acknowledged offsets committed to the source"),
            Ok(Err(error)) => {
                tracing::warn!(source = %name, %error, "the last commit failed; the next run reads those records again")
            }
            Err(e) => tracing::warn!(source = %name, error = %e, "the last commit did not run"),
        }
    }
}

/// A Kafka message's headers as record headers (a null value as empty).
pub(crate) fn headers_of(m: &BorrowedMessage<'_>) -> Vec<(String, Bytes)> {
    m.headers()
        .map(|h| h.iter().map(|h| (h.key.to_owned(), Bytes::copy_from_slice(h.value.unwrap_or_default()))).collect())
        .unwrap_or_default()
}

/// The pipeline of `topic`'s `partition` among `pipelines` (stable).
fn pipeline_of(topic: &str, partition: u32, pipelines: usize) -> usize {
    if pipelines <= 1 {
        return 0;
    }
    let hash = crc32fast::hash(topic.as_bytes()) as usize;
    (hash.wrapping_add(partition as usize)) % pipelines
}

fn partition_list(offsets: &BTreeMap<(Arc<str>, u32), u64>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        // Only errors for a negative offset, which a u64 is not.
        let _ = tpl.add_partition_offset(topic, *partition as i32, Offset::Offset(*offset as i64));
    }
    tpl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_always_goes_through_the_same_pipeline_and_partitions_spread() {
        assert_eq!(pipeline_of("orders", 3, 1), 0);
        assert_eq!(pipeline_of("orders", 3, 4), pipeline_of("orders", 3, 4));
        let used: std::collections::BTreeSet<usize> = (0..8).map(|p| pipeline_of("orders", p, 4)).collect();
        assert_eq!(used.len(), 4, "consecutive partitions use every pipeline");
    }
}
