//! `Consumer`: reads partitions of one topic in offset order.
//!
//! One task per partition keeps a fetch stream open to the partition's
//! leader, granting credit (`window_bytes`) as delivered records are taken,
//! so at most one window per partition is buffered. Records of a partition
//! are delivered in offset order; a broken stream or a leader change
//! reconnects and resumes at the next offset not yet delivered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_proto::v1::{self as pb, ErrorCode, broker_service_client::BrokerServiceClient, fetch_request::Kind};
use goulette_storage::Batch;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cluster::{Cluster, MAX_MESSAGE, backoff};
use crate::error::{ClientError, Result};

/// Where a consumer starts in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The log start (oldest retained record).
    Beginning,
    /// The high watermark: only records produced from now on.
    End,
    /// This offset (clamped into the readable range).
    Offset(u64),
    /// The first record at or after this timestamp (ms).
    Timestamp(i64),
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Partitions to read; all when `None`.
    pub partitions: Option<Vec<u32>>,
    pub start: StartAt,
    /// Bytes each partition may have fetched but not yet delivered.
    pub window_bytes: u64,
    /// Upper bound of one fetch response.
    pub max_bytes: u32,
    /// Resume each partition at the offset this group committed (`start`
    /// applies to partitions it has not committed), and commit with
    /// [`Consumer::commit`].
    pub group: Option<String>,
    /// With a group: commit what was delivered so far at most this often,
    /// when the next record is asked for (at-least-once).
    pub auto_commit: Option<Duration>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            partitions: None,
            start: StartAt::End,
            window_bytes: 4 << 20,
            max_bytes: 1 << 20,
            group: None,
            auto_commit: None,
        }
    }
}

/// A record as delivered to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
}

/// Reads a topic.
#[derive(Debug)]
pub struct Consumer {
    records: mpsc::Receiver<Result<ConsumedRecord>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cluster: Arc<Cluster>,
    topic: String,
    group: Option<String>,
    auto_commit: Option<Duration>,
    /// Per partition, the offset after the last record delivered.
    positions: BTreeMap<u32, u64>,
    /// What was last committed (or found committed).
    committed: BTreeMap<u32, u64>,
    last_commit: tokio::time::Instant,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Consumer {
    /// Starts reading `topic` through `cluster`.
    pub async fn subscribe(cluster: Arc<Cluster>, topic: &str, config: ConsumerConfig) -> Result<Consumer> {
        goulette_proto::validate_topic_name(topic).map_err(ClientError::InvalidArgument)?;
        let info = cluster.topic(topic, false).await?;
        let all: Vec<u32> = info.partitions.iter().map(|p| p.partition).collect();
        let partitions = match &config.partitions {
            Some(chosen) => {
                if let Some(bad) = chosen.iter().find(|p| !all.contains(p)) {
                    return Err(ClientError::InvalidArgument(format!("topic {topic} has no partition {bad}")));
                }
                chosen.clone()
            }
            None => all,
        };
        let committed = match &config.group {
            Some(group) => crate::offsets::fetch(&cluster, group, topic).await?,
            None => BTreeMap::new(),
        };
        let (tx, records) = mpsc::channel(1024);
        let tasks = partitions
            .into_iter()
            .map(|p| {
                let fetcher = Fetcher {
                    cluster: cluster.clone(),
                    topic: topic.to_owned(),
                    partition: p,
                    config: config.clone(),
                    committed: committed.get(&p).copied(),
                    out: tx.clone(),
                };
                tokio::spawn(fetcher.run())
            })
            .collect();
        Ok(Consumer {
            records,
            tasks,
            cluster,
            topic: topic.to_owned(),
            group: config.group,
            auto_commit: config.auto_commit,
            positions: committed.clone(),
            committed,
            last_commit: tokio::time::Instant::now(),
        })
    }

    /// The next record (from any partition; each partition in order), or an
    /// error that stopped a partition. `None` once every partition stopped.
    /// With a group and `auto_commit`, first commits what earlier calls
    /// delivered if the interval has passed (a failed auto-commit is logged
    /// and tried again on a later call).
    pub async fn recv(&mut self) -> Option<Result<ConsumedRecord>> {
        if self.group.is_some()
            && self.auto_commit.is_some_and(|every| self.last_commit.elapsed() >= every)
            && let Err(e) = self.commit().await
        {
            tracing::warn!(topic = %self.topic, error = %e, "auto-commit failed; will retry");
        }
        let next = self.records.recv().await;
        if let Some(Ok(r)) = &next {
            self.positions.insert(r.partition, r.offset + 1);
        }
        next
    }

    /// Commits, for this consumer's group, the offset after the last record
    /// delivered in each partition. Call it once those records are handled
    /// (at-least-once). An error without a group.
    pub async fn commit(&mut self) -> Result<()> {
        let Some(group) = &self.group else {
            return Err(ClientError::InvalidArgument("commit needs a consumer group".into()));
        };
        self.last_commit = tokio::time::Instant::now();
        let changed: BTreeMap<u32, u64> =
            self.positions.iter().filter(|(p, o)| self.committed.get(p) != Some(o)).map(|(p, o)| (*p, *o)).collect();
        if changed.is_empty() {
            return Ok(());
        }
        crate::offsets::commit(&self.cluster, group, &self.topic, &changed).await?;
        self.committed.extend(changed);
        Ok(())
    }

    /// Per partition, the offset after the last record delivered.
    pub fn positions(&self) -> &BTreeMap<u32, u64> {
        &self.positions
    }
}

/// Asks a partition's leader for its offsets.
pub async fn list_offsets(
    cluster: &Cluster,
    topic: &str,
    partition: u32,
    timestamp: Option<i64>,
) -> Result<pb::ListOffsetsResponse> {
    let mut unreachable = None;
    let mut last = None;
    for attempt in 0..8 {
        let (broker, address) = match cluster.find_leader(topic, partition, unreachable.take(), false).await {
            Ok(l) => l,
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(backoff(attempt, Duration::from_millis(50), Duration::from_secs(1))).await;
                continue;
            }
        };
        let mut client = BrokerServiceClient::new(cluster.channel(&address)?);
        let req = pb::ListOffsetsRequest { topic: topic.to_owned(), partition, timestamp };
        match client.list_offsets(req).await {
            Ok(r) => {
                let r = r.into_inner();
                match &r.error {
                    None => return Ok(r),
                    Some(e) => {
                        let error = ClientError::from_proto(e);
                        if !error.is_retriable() {
                            return Err(error);
                        }
                        cluster.invalidate(topic);
                        last = Some(error);
                    }
                }
            }
            Err(status) => {
                unreachable = Some(broker);
                last = Some(ClientError::transport(format!("list offsets at broker {broker}"), &status));
            }
        }
        tokio::time::sleep(backoff(attempt, Duration::from_millis(50), Duration::from_secs(1))).await;
    }
    Err(last.unwrap_or(ClientError::Closed))
}

struct Fetcher {
    cluster: Arc<Cluster>,
    topic: String,
    partition: u32,
    config: ConsumerConfig,
    /// The group's committed offset here: where to start instead of `config.start`.
    committed: Option<u64>,
    out: mpsc::Sender<Result<ConsumedRecord>>,
}

enum Outcome {
    /// Reconnect (after a backoff), reporting this broker if it was unreachable.
    Reconnect(Option<u32>),
    /// The consumer is gone or the partition failed for good.
    Stop,
}

impl Fetcher {
    async fn start_offset(&self) -> Result<u64> {
        let start = self.committed.map_or(self.config.start, StartAt::Offset);
        let ts = match start {
            StartAt::Timestamp(ts) => Some(ts),
            _ => None,
        };
        let offsets = list_offsets(&self.cluster, &self.topic, self.partition, ts).await?;
        Ok(match start {
            StartAt::Beginning => offsets.log_start_offset,
            StartAt::End => offsets.high_watermark,
            StartAt::Offset(o) => o.clamp(offsets.log_start_offset, offsets.high_watermark),
            StartAt::Timestamp(_) => offsets.timestamp_offset.unwrap_or(offsets.high_watermark),
        })
    }

    async fn run(self) {
        // Where to start may be unknown for a while (an election): retry.
        let mut attempt = 0;
        let mut next = loop {
            match self.start_offset().await {
                Ok(o) => break o,
                Err(e) if e.is_retriable() && !self.out.is_closed() => {
                    attempt += 1;
                    self.cluster.invalidate(&self.topic);
                    tokio::time::sleep(backoff(attempt.min(6), Duration::from_millis(50), Duration::from_secs(2)))
                        .await;
                }
                Err(e) => {
                    let _ = self.out.send(Err(e)).await;
                    return;
                }
            }
        };
        attempt = 0;
        let mut unreachable = None;
        loop {
            match self.stream(&mut next, unreachable.take()).await {
                Outcome::Stop => return,
                Outcome::Reconnect(broker) => {
                    unreachable = broker;
                    attempt += 1;
                    self.cluster.invalidate(&self.topic);
                    tokio::time::sleep(backoff(attempt.min(6), Duration::from_millis(50), Duration::from_secs(2)))
                        .await;
                }
            }
        }
    }

    /// One fetch stream from `next` on, until it breaks.
    async fn stream(&self, next: &mut u64, unreachable: Option<u32>) -> Outcome {
        let (broker, address) = match self.cluster.find_leader(&self.topic, self.partition, unreachable, false).await {
            Ok(l) => l,
            Err(e) if e.is_retriable() => return Outcome::Reconnect(None),
            Err(e) => {
                let _ = self.out.send(Err(e)).await;
                return Outcome::Stop;
            }
        };
        let channel = match self.cluster.channel(&address) {
            Ok(c) => c,
            Err(e) => {
                let _ = self.out.send(Err(e)).await;
                return Outcome::Stop;
            }
        };
        let mut client = BrokerServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let (requests, rx) = mpsc::channel(16);
        let start = pb::FetchStart {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: *next,
            max_bytes: self.config.max_bytes,
            credit_bytes: self.config.window_bytes,
            replica_id: None,
            leader_epoch: None,
        };
        let _ = requests.send(pb::FetchRequest { kind: Some(Kind::Start(start)) }).await;
        let mut responses = match client.fetch(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(_) => return Outcome::Reconnect(Some(broker)),
        };
        loop {
            let response = match responses.message().await {
                Ok(Some(r)) => r,
                Ok(None) | Err(_) => return Outcome::Reconnect(Some(broker)),
            };
            if let Some(e) = &response.error {
                let error = ClientError::from_proto(e);
                if e.error_code() == ErrorCode::OffsetOutOfRange {
                    // Retention moved the start past us, or we are ahead of
                    // a truncated log: resume inside the readable range.
                    *next = (*next).clamp(response.log_start_offset, response.high_watermark);
                    return Outcome::Reconnect(None);
                }
                if error.is_retriable() {
                    return Outcome::Reconnect(None);
                }
                let _ = self.out.send(Err(error)).await;
                return Outcome::Stop;
            }
            let mut bytes = 0u64;
            for raw in response.batches {
                bytes += raw.len() as u64;
                let batch = match Batch::parse(raw).and_then(|b| b.records().map(|r| (b, r))) {
                    Ok((_, records)) => records,
                    Err(e) => {
                        let error = ClientError::CorruptBatch {
                            topic: self.topic.clone(),
                            partition: self.partition,
                            reason: e.to_string(),
                        };
                        let _ = self.out.send(Err(error)).await;
                        return Outcome::Stop;
                    }
                };
                for r in batch {
                    if r.offset < *next {
                        continue;
                    }
                    let record = ConsumedRecord {
                        topic: self.topic.clone(),
                        partition: self.partition,
                        offset: r.offset,
                        timestamp: r.record.timestamp,
                        key: r.record.key,
                        value: r.record.value,
                        headers: r.record.headers,
                    };
                    if self.out.send(Ok(record)).await.is_err() {
                        return Outcome::Stop;
                    }
                    *next = r.offset + 1;
                }
            }
            // The records were handed on: the broker may send that much again.
            if bytes > 0
                && requests
                    .send(pb::FetchRequest {
                        kind: Some(Kind::Credit(pb::FetchCredit { bytes, replica_log_end: None })),
                    })
                    .await
                    .is_err()
            {
                return Outcome::Reconnect(Some(broker));
            }
        }
    }
}
