//! One partition's fetcher: keeps a fetch stream open to the partition's
//! leader, grants credit as delivered records are taken, and on a broken
//! stream or a leader change reconnects and resumes at the next offset not
//! yet delivered (see `consumer`).

use std::sync::Arc;
use std::time::Duration;

use goulette_batch::Batch;
use goulette_proto::v1::{self as pb, ErrorCode, broker_service_client::BrokerServiceClient, fetch_request::Kind};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{ConsumedRecord, ConsumerConfig, Event, Item, StartAt};
use crate::cluster::{Cluster, MAX_MESSAGE, backoff};
use crate::error::{ClientError, Result};

pub(super) struct Fetcher {
    pub(super) cluster: Arc<Cluster>,
    /// Shared by the records delivered.
    pub(super) topic: Arc<str>,
    pub(super) partition: u32,
    pub(super) run: u64,
    pub(super) config: ConsumerConfig,
    /// The group's committed offset here: where to start instead of `config.start`.
    pub(super) committed: Option<u64>,
    pub(super) out: mpsc::Sender<Item>,
}

enum Outcome {
    /// Reconnect (after a backoff), reporting this broker if it was unreachable.
    Reconnect(Option<u32>),
    /// The consumer is gone or the partition failed for good.
    Stop,
}

impl Fetcher {
    async fn fail(&self, error: ClientError) {
        let _ = self.out.send((self.partition, self.run, Event::Failed(error))).await;
    }

    async fn start_offset(&self) -> Result<u64> {
        let start = self.committed.map_or(self.config.start, StartAt::Offset);
        let offsets = self.cluster.list_offsets(&self.topic, self.partition, start.timestamp()).await?;
        Ok(start.resolve(&offsets))
    }

    pub(super) async fn run(self) {
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
                    self.fail(e).await;
                    return;
                }
            }
        };
        if self.out.send((self.partition, self.run, Event::Started(next))).await.is_err() {
            return;
        }
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
                self.fail(e).await;
                return Outcome::Stop;
            }
        };
        let channel = match self.cluster.channel(&address) {
            Ok(c) => c,
            Err(e) => {
                self.fail(e).await;
                return Outcome::Stop;
            }
        };
        let mut client = BrokerServiceClient::new(goulette_proto::channel::authorized(channel))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let (requests, rx) = mpsc::channel(16);
        let start = pb::FetchStart {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: *next,
            max_bytes: self.config.max_bytes,
            credit_bytes: self.config.window_bytes,
            replica_id: None,
            leader_epoch: None,
            tag_filter: self.config.tag_filter.clone(),
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
                self.fail(error).await;
                return Outcome::Stop;
            }
            let mut bytes = 0u64;
            for raw in response.batches {
                bytes += raw.len() as u64;
                // Sparse when a tag filter left records out.
                let (end, batch) = match Batch::parse_sparse(raw).and_then(|b| b.records().map(|r| (b, r))) {
                    Ok((batch, records)) => (batch.next_offset(), records),
                    Err(e) => {
                        let error = ClientError::CorruptBatch {
                            topic: self.topic.to_string(),
                            partition: self.partition,
                            reason: e.to_string(),
                        };
                        self.fail(error).await;
                        return Outcome::Stop;
                    }
                };
                let records: Vec<ConsumedRecord> = batch
                    .into_iter()
                    .filter(|r| r.offset >= *next)
                    .map(|r| ConsumedRecord {
                        topic: self.topic.clone(),
                        partition: self.partition,
                        offset: r.offset,
                        timestamp: r.record.timestamp,
                        key: r.record.key,
                        value: r.record.value,
                        headers: r.record.headers,
                        tombstone: r.null_value,
                    })
                    .collect();
                let delivered_to = records.last().map(|r| r.offset + 1);
                if delivered_to.is_some()
                    && self.out.send((self.partition, self.run, Event::Records(records.into_iter()))).await.is_err()
                {
                    return Outcome::Stop;
                }
                if end > delivered_to.unwrap_or(*next)
                    && self.out.send((self.partition, self.run, Event::Skipped(end))).await.is_err()
                {
                    return Outcome::Stop;
                }
                *next = (*next).max(end);
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
