//! `Producer`: batches records per partition and keeps a window of produce
//! requests in flight to each partition's leader.
//!
//! Each partition has one sender task and one produce stream to its leader.
//! `send` encodes a record straight into the partition's accumulator (the
//! batch being filled, under a lock), so the sender task is woken once per
//! batch, not once per record. Records are batched by size (`batch_bytes`)
//! and time (`linger`); up to `window` batches are in flight, and `send`
//! waits (backpressure) while `window` sealed batches wait for the sender. Responses arrive in request order. On a
//! retriable error (NOT_LEADER, an unreachable broker, …) the sender
//! refreshes metadata (reporting an unreachable broker to the sentinels),
//! reconnects to the leader and re-sends every unacknowledged batch in the
//! original order, with exponential backoff and jitter, so a retry never
//! reorders a partition.
//!
//! Files: this one (settings, records, `Producer::send`), `accumulator`
//! (the batch being filled and the sealed ones, per partition) and
//! `sender` (a partition's sender task: window, retries, idempotence).
//!
//! Idempotence (on by default): each partition sender gets a producer id
//! from the sentinels and numbers its records; a batch keeps its numbers
//! across retries, so a leader that already stored it answers with the
//! original offsets instead of storing it twice, and refuses a batch whose
//! predecessor is missing (`OUT_OF_ORDER_SEQUENCE`, retried in order). A
//! batch that fails for good leaves a hole in the numbering: the sender then
//! starts over under a new producer id. The window is capped to what a
//! partition remembers per producer (`goulette_batch::CACHED_BATCHES`). Without
//! idempotence a batch whose response was lost may be stored twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_batch::{BatchBuilder, Compression, Record};
use goulette_proto::v1::{Acks, ErrorCode};
use tokio::time::Instant;

mod accumulator;
mod completion;
mod sender;

use accumulator::Accumulator;
use sender::PartitionSender;

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};
use crate::partitioner::{Partitioner, Picker};

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// Batches in flight per partition.
    pub window: usize,
    /// A batch is sent once its records reach this many bytes…
    pub batch_bytes: usize,
    /// …or once its first record has waited this long.
    pub linger: Duration,
    pub compression: Compression,
    /// Attempts per batch before its records fail.
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    pub max_retry_backoff: Duration,
    /// Ask the sentinels to create unknown topics.
    pub auto_create_topics: bool,
    /// Number batches so that a retried batch is stored once.
    pub idempotent: bool,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            window: 16,
            batch_bytes: 256 << 10,
            linger: Duration::from_millis(5),
            compression: Compression::None,
            max_attempts: 20,
            retry_backoff: Duration::from_millis(50),
            max_retry_backoff: Duration::from_secs(2),
            auto_create_topics: true,
            idempotent: true,
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// Explicit partition; otherwise the partitioner chooses.
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the epoch; now when absent.
    pub timestamp: Option<i64>,
    /// Send a null value (`value` must be empty): on a compacted topic, a
    /// tombstone, which deletes the key (`docs/compaction.md`).
    pub tombstone: bool,
}

impl ProducerRecord {
    /// Delivered to consumers from `at_ms` (ms since the Unix epoch) on,
    /// not before (the `goulette-deliver-at` header, `docs/delayed.md`).
    pub fn deliver_at(mut self, at_ms: i64) -> ProducerRecord {
        self.headers.push((goulette_batch::delayed::DELIVER_AT_HEADER.to_owned(), Bytes::from(at_ms.to_string())));
        self
    }

    /// Delivered to consumers `delay` after the record's timestamp (the
    /// `goulette-delay-ms` header, `docs/delayed.md`).
    pub fn delay(mut self, delay: std::time::Duration) -> ProducerRecord {
        let ms = delay.as_millis().to_string();
        self.headers.push((goulette_batch::delayed::DELAY_HEADER.to_owned(), Bytes::from(ms)));
        self
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: u32,
    /// The record's offset (`None` with `acks=0`, which waits for nothing).
    pub offset: Option<u64>,
}

/// Resolves when the record is acknowledged (or definitely failed): its
/// batch's completion, shared with the batch's other records, and its
/// place in the batch.
#[derive(Debug)]
pub struct Delivery {
    batch: Arc<completion::Completion>,
    index: u32,
}

impl Delivery {
    /// Waits for the outcome.
    pub async fn wait(self) -> Result<RecordMetadata> {
        self.batch.wait(self.index).await
    }
}

/// Sends records to a Goulette cluster.
///
/// ```no_run
/// use std::sync::Arc;
/// use goulette_client::{Acks, Bytes, Cluster, Partitioner, Producer, ProducerConfig, ProducerRecord};
///
/// # async fn run() -> goulette_client::Result<()> {
/// let cluster = Arc::new(Cluster::new(vec!["127.0.0.1:50052".into()])?);
/// let config = ProducerConfig { acks: Acks::All, ..ProducerConfig::default() };
/// let producer = Producer::new(cluster, config, Partitioner::KeyHash);
/// let delivery = producer
///     .send(ProducerRecord {
///         topic: "orders".into(),
///         key: Some(Bytes::from_static(b"customer-42")),
///         value: Bytes::from_static(b"{\"total\": 12}"),
///         ..ProducerRecord::default()
///     })
///     .await?;
/// // Resolves once the in-sync replicas hold the record.
/// let landed = delivery.wait().await?;
/// println!("partition {} offset {:?}", landed.partition, landed.offset);
/// producer.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Producer {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    picker: Picker,
    /// Topic → partition → its accumulator (its sender task runs once created).
    accumulators: std::sync::Mutex<HashMap<String, HashMap<u32, Arc<Accumulator>>>>,
    tasks: tokio_util::task::TaskTracker,
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Dropped without `close`: the senders still send what was queued.
        self.close_accumulators();
    }
}

impl Producer {
    /// A producer using `cluster`.
    pub fn new(cluster: Arc<Cluster>, config: ProducerConfig, partitioner: Partitioner) -> Producer {
        Producer {
            cluster,
            config,
            picker: Picker::new(partitioner),
            accumulators: std::sync::Mutex::new(HashMap::new()),
            tasks: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Queues a record; the returned [`Delivery`] resolves on acknowledgement.
    /// Waits (backpressure) when the partition's queue is full.
    pub async fn send(&self, record: ProducerRecord) -> Result<Delivery> {
        let count = match self.cluster.cached_partition_count(&record.topic) {
            Some(n) => n,
            // Checked once, before the name reaches the metadata cache.
            None => {
                goulette_proto::validate_topic_name(&record.topic).map_err(ClientError::InvalidArgument)?;
                self.cluster.topic(&record.topic, self.config.auto_create_topics).await?.partitions.len() as u32
            }
        };
        if count == 0 {
            return Err(ClientError::Server {
                code: ErrorCode::UnknownTopic,
                message: format!("topic {} has no partitions", record.topic),
            });
        }
        let partition = match record.partition {
            Some(p) if p < count => p,
            Some(p) => {
                return Err(ClientError::InvalidArgument(format!("partition {p} of a topic with {count} partitions")));
            }
            None => self.picker.pick(record.key.as_deref(), count),
        };
        let acc = self.accumulator(&record.topic, partition);
        let topic = record.topic;
        if record.tombstone && !record.value.is_empty() {
            return Err(ClientError::InvalidArgument("a tombstone has no value".into()));
        }
        let tombstone = record.tombstone;
        let record = Record {
            timestamp: record.timestamp.unwrap_or_else(goulette_batch::now_ms),
            key: record.key,
            value: record.value,
            headers: record.headers,
        };
        loop {
            let room = acc.room.notified();
            let mut room = std::pin::pin!(room);
            // Registered before the check, so a wake-up in between is not lost.
            room.as_mut().enable();
            {
                let mut state = acc.lock();
                if state.closed {
                    return Err(ClientError::Closed);
                }
                if state.sealed.len() < self.config.window.max(1) {
                    // No batch passes the limit (a batch of one record
                    // aside): a record that does not fit seals the batch
                    // and starts the next.
                    let limit = self.batch_limit();
                    let compression = self.config.compression;
                    let began = state.filling.is_none();
                    let pushed =
                        state.filling.as_mut().is_some_and(|f| f.0.push_record_within(&record, tombstone, limit));
                    let sealed_one = !began && !pushed;
                    if sealed_one && let Some(full) = state.filling.take() {
                        state.sealed.push_back(full);
                    }
                    let filling = match state.filling.as_mut() {
                        Some(f) => f,
                        None => {
                            let mut builder = BatchBuilder::new(compression);
                            builder.push_record(&record, tombstone);
                            let waiters = completion::Waiters::new(&topic, partition);
                            state.filling.insert((builder, waiters, Instant::now()))
                        }
                    };
                    let (batch, index) = filling.1.push();
                    let full = filling.0.encoded_len() >= limit;
                    if full && let Some(f) = state.filling.take() {
                        state.sealed.push_back(f);
                    }
                    drop(state);
                    if full || began || sealed_one {
                        acc.wake.notify_one();
                    }
                    return Ok(Delivery { batch, index });
                }
            }
            room.await;
        }
    }

    /// The most bytes a batch may encode to: the configured `batch_bytes`,
    /// or less when a broker accepts less.
    fn batch_limit(&self) -> usize {
        self.config.batch_bytes.min(self.cluster.max_batch_bytes())
    }

    /// Closes every partition's accumulator: its sender sends what it holds, then ends.
    fn close_accumulators(&self) {
        for partitions in self.accumulators.lock().unwrap_or_else(|p| p.into_inner()).values() {
            for acc in partitions.values() {
                acc.close();
            }
        }
    }

    /// The accumulator of a partition, starting its sender on first use.
    fn accumulator(&self, topic: &str, partition: u32) -> Arc<Accumulator> {
        let mut all = self.accumulators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(acc) = all.get(topic).and_then(|t| t.get(&partition)) {
            return acc.clone();
        }
        let acc = Arc::new(Accumulator::default());
        let sender = PartitionSender::new(self.cluster.clone(), self.config.clone(), topic.to_owned(), partition);
        self.tasks.spawn(sender.run(acc.clone()));
        all.entry(topic.to_owned()).or_default().insert(partition, acc.clone());
        acc
    }

    /// Sends everything queued and waits until every record is resolved.
    pub async fn close(self) {
        self.close_accumulators();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
