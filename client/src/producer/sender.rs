//! A partition's sender task: it takes sealed batches from the partition's
//! accumulator, keeps up to `window` of them in flight on one produce
//! stream to the leader, resolves each record's delivery in order, and on a
//! retriable error refreshes metadata, reconnects and re-sends every
//! unacknowledged batch in the original order (see `producer`).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use goulette_batch::{Batch, BatchBuilder, CACHED_BATCHES, Compression, ProducerInfo};
use goulette_proto::v1::{self as pb, Acks, ErrorCode, broker_service_client::BrokerServiceClient};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use super::ProducerConfig;
use super::accumulator::{Accumulator, Filling};
use super::completion::Waiters;
use crate::cluster::{Cluster, MAX_MESSAGE, backoff};
use crate::error::{ClientError, Result};

/// A built batch and the records waiting on it.
struct Ready {
    bytes: Bytes,
    waiters: Waiters,
    /// Numbered under the sender's producer id (idempotence).
    sequenced: bool,
}

struct InFlight {
    correlation_id: u64,
    ready: Ready,
}

struct Connection {
    broker: u32,
    requests: mpsc::Sender<pb::ProduceRequest>,
    responses: tonic::Streaming<pb::ProduceResponse>,
}

pub(super) struct PartitionSender {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    topic: String,
    partition: u32,
    queue: VecDeque<Ready>,
    inflight: VecDeque<InFlight>,
    connection: Option<Connection>,
    next_correlation: u64,
    attempts: u32,
    /// The broker the last connection attempt went to (reported to the
    /// sentinels as unreachable if that attempt failed in transport).
    last_broker: Option<u32>,
    /// Idempotence: this sender's producer id, and the sequence of the next
    /// record it numbers.
    producer_id: Option<i64>,
    next_sequence: i32,
}

impl PartitionSender {
    pub(super) fn new(cluster: Arc<Cluster>, mut config: ProducerConfig, topic: String, partition: u32) -> Self {
        // acks=0 never retries: nothing to deduplicate, and a refused batch
        // would leave a hole no answer reports.
        if config.acks == Acks::None {
            config.idempotent = false;
        }
        PartitionSender {
            cluster,
            config,
            topic,
            partition,
            queue: VecDeque::new(),
            inflight: VecDeque::new(),
            connection: None,
            next_correlation: 0,
            attempts: 0,
            last_broker: None,
            producer_id: None,
            next_sequence: 0,
        }
    }

    /// Builds a sealed batch and queues it for sending.
    fn seal(&mut self, (builder, waiters, _): Filling) {
        match builder.build() {
            Ok(bytes) => self.queue.push_back(Ready { bytes, waiters, sequenced: false }),
            Err(e) => {
                waiters.resolve(Err(ClientError::InvalidArgument(format!("cannot build a batch: {e}"))));
            }
        }
    }

    /// Takes the sealed batches (and, when `all` — linger passed, or
    /// closing — the one being filled) while fewer than `window` wait here.
    /// Returns whether the producer is closed with nothing left behind, and
    /// when the batch being filled must be sent.
    fn take_batches(&mut self, acc: &Accumulator, all: bool) -> (bool, Option<Instant>) {
        let (taken, closed, drained, linger) = {
            let mut state = acc.lock();
            let room = self.config.window.max(1).saturating_sub(self.queue.len());
            let limit = if state.closed { usize::MAX } else { room };
            let mut taken: Vec<Filling> = Vec::new();
            while taken.len() < limit {
                let Some(f) = state.sealed.pop_front() else { break };
                taken.push(f);
            }
            let linger_passed =
                state.filling.as_ref().is_some_and(|(_, _, first)| first.elapsed() >= self.config.linger);
            if (all || state.closed || linger_passed) && state.sealed.is_empty() {
                taken.extend(state.filling.take());
            }
            let linger = state.filling.as_ref().map(|(_, _, first)| *first + self.config.linger);
            (taken, state.closed, state.sealed.is_empty() && state.filling.is_none(), linger)
        };
        if !taken.is_empty() {
            acc.room.notify_waiters();
        }
        for f in taken {
            self.seal(f);
        }
        (closed && drained, linger)
    }

    fn resolve(&self, ready: Ready, result: std::result::Result<Option<u64>, ClientError>) {
        ready.waiters.resolve(result);
    }

    async fn connect(&mut self, unreachable: Option<u32>) -> Result<()> {
        let (broker, address) =
            self.cluster.find_leader(&self.topic, self.partition, unreachable, self.config.auto_create_topics).await?;
        self.last_broker = Some(broker);
        let channel = self.cluster.channel(&address)?;
        let mut client = BrokerServiceClient::new(goulette_proto::channel::authorized(channel))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let (requests, rx) = mpsc::channel(self.config.window.max(1) * 2);
        let responses = client
            .produce(ReceiverStream::new(rx))
            .await
            .map_err(|s| ClientError::transport(format!("open produce stream to broker {broker}"), &s))?
            .into_inner();
        self.connection = Some(Connection { broker, requests, responses });
        Ok(())
    }

    /// Puts everything unacknowledged back at the head of the queue, in order.
    fn requeue(&mut self) {
        let mut requeued: VecDeque<Ready> = self.inflight.drain(..).map(|f| f.ready).collect();
        requeued.extend(self.queue.drain(..));
        self.queue = requeued;
        self.connection = None;
    }

    fn fail_all(&mut self, error: &ClientError) {
        self.requeue();
        let queue: Vec<Ready> = self.queue.drain(..).collect();
        for ready in queue {
            self.resolve(ready, Err(error.clone()));
        }
        self.restart_sequences();
    }

    /// After a batch failed for good its sequence numbers are a hole the
    /// partition would refuse everything after: number whatever is not
    /// acknowledged afresh under a new producer id.
    fn restart_sequences(&mut self) {
        if !self.config.idempotent {
            return;
        }
        self.requeue();
        self.producer_id = None;
        self.next_sequence = 0;
        for ready in &mut self.queue {
            ready.sequenced = false;
        }
    }

    /// Numbers `ready` under this sender's producer id (fetched on first
    /// use), unless idempotence is off or it was numbered already.
    async fn sequence(&mut self, ready: &mut Ready) -> Result<()> {
        if !self.config.idempotent || ready.sequenced {
            return Ok(());
        }
        let producer_id = match self.producer_id {
            Some(id) => id,
            None => {
                let id = self.cluster.init_producer_id().await?;
                self.producer_id = Some(id);
                id
            }
        };
        let info = ProducerInfo { producer_id, producer_epoch: 0, base_sequence: self.next_sequence };
        let batch = Batch::parse(ready.bytes.clone())
            .map_err(|e| ClientError::InvalidArgument(format!("cannot number a batch: {e}")))?;
        ready.bytes = batch.with_producer(info).into_bytes();
        self.next_sequence = self.next_sequence.wrapping_add(ready.waiters.len() as i32);
        ready.sequenced = true;
        Ok(())
    }

    /// After a retriable failure: back off, refresh, reconnect (or give up).
    async fn retry(&mut self, error: ClientError, unreachable: Option<u32>) {
        self.requeue();
        self.attempts += 1;
        if self.attempts >= self.config.max_attempts {
            tracing::warn!(topic = %self.topic, partition = self.partition, %error, "giving up after {} attempts", self.attempts);
            self.fail_all(&error);
            self.attempts = 0;
            return;
        }
        tracing::debug!(topic = %self.topic, partition = self.partition, %error, attempt = self.attempts, "retrying");
        tokio::time::sleep(backoff(self.attempts, self.config.retry_backoff, self.config.max_retry_backoff)).await;
        self.cluster.invalidate(&self.topic);
        if let Err(e) = self.connect(unreachable).await {
            tracing::debug!(topic = %self.topic, partition = self.partition, error = %e, "reconnect failed");
        }
    }

    pub(super) async fn run(mut self, acc: Arc<Accumulator>) {
        let mut linger_due = false;
        loop {
            let (finished, linger_deadline) = self.take_batches(&acc, linger_due);
            linger_due = false;
            if finished && self.queue.is_empty() && self.inflight.is_empty() {
                return;
            }
            if self.connection.is_none()
                && !(self.queue.is_empty() && self.inflight.is_empty())
                && let Err(e) = self.connect(None).await
            {
                if e.is_retriable() {
                    // A broker that refused the connection is reported, so
                    // that the sentinels check it at once.
                    let unreachable = matches!(e, ClientError::Transport { .. }).then_some(self.last_broker).flatten();
                    self.retry(e, unreachable).await;
                } else {
                    self.fail_all(&e);
                }
                continue;
            }
            self.send_window().await;
            // Closed and everything sent: with acks=0 no answer would wake us.
            if finished && self.queue.is_empty() && self.inflight.is_empty() {
                return;
            }
            // With acks=0 nothing is in flight, but the broker still answers
            // errors: read them, or the stream would fill and stall.
            let awaiting = !self.inflight.is_empty() || (self.config.acks == Acks::None && self.connection.is_some());
            // Batches wait, none could be sent (no connection: a retry has
            // just backed off) and no answer will come: go round and
            // reconnect, rather than wait on branches that may all be off.
            if !self.queue.is_empty() && self.inflight.len() < self.send_cap() && !awaiting {
                continue;
            }
            // Batches are taken only while fewer than `window` wait here.
            let room = self.queue.len() < self.config.window.max(1);
            tokio::select! {
                _ = acc.wake.notified(), if room && !finished => {}
                _ = tokio::time::sleep_until(linger_deadline.unwrap_or_else(Instant::now)), if room && linger_deadline.is_some() => {
                    linger_due = true;
                }
                response = next_response(&mut self.connection), if awaiting => self.on_response(response).await,
            }
        }
    }

    /// Batches in flight at most: the window, capped (with idempotence) to
    /// what a partition remembers per producer, or a retried one might not
    /// be recognised.
    fn send_cap(&self) -> usize {
        let window = self.config.window.max(1);
        if self.config.idempotent { window.min(CACHED_BATCHES) } else { window }
    }

    async fn send_window(&mut self) {
        while self.inflight.len() < self.send_cap() {
            if self.connection.is_none() {
                return;
            }
            let Some(mut ready) = self.queue.pop_front() else { return };
            if let Err(e) = self.sequence(&mut ready).await {
                self.queue.push_front(ready);
                if e.is_retriable() {
                    self.retry(e, None).await;
                } else {
                    self.fail_all(&e);
                }
                return;
            }
            let Some(conn) = &self.connection else {
                self.queue.push_front(ready);
                return;
            };
            let correlation_id = self.next_correlation;
            self.next_correlation += 1;
            let request = pb::ProduceRequest {
                correlation_id,
                topic: self.topic.clone(),
                partition: self.partition,
                acks: self.config.acks as i32,
                batch: ready.bytes.clone(),
                expected_offset: None,
            };
            if conn.requests.send(request).await.is_err() {
                self.queue.push_front(ready);
                let broker = conn.broker;
                self.retry(
                    ClientError::Transport { context: "produce stream closed".into(), status: String::new() },
                    Some(broker),
                )
                .await;
                return;
            }
            if self.config.acks == Acks::None {
                self.resolve(ready, Ok(None));
            } else {
                self.inflight.push_back(InFlight { correlation_id, ready });
            }
        }
    }

    async fn on_response(&mut self, response: std::result::Result<Option<pb::ProduceResponse>, tonic::Status>) {
        let broker = self.connection.as_ref().map(|c| c.broker);
        let response = match response {
            Ok(Some(r)) => r,
            Ok(None) => {
                return self
                    .retry(
                        ClientError::Transport { context: "produce stream ended".into(), status: String::new() },
                        broker,
                    )
                    .await;
            }
            Err(status) => return self.retry(ClientError::transport("produce", &status), broker).await,
        };
        if self.config.acks == Acks::None {
            // Its records were resolved when sent; an error means the
            // leader moved or refused: reconnect for the next batches.
            if let Some(e) = response.error {
                tracing::warn!(topic = %self.topic, partition = self.partition, error = ?e, "acks=0 batch refused");
                self.cluster.invalidate(&self.topic);
                self.connection = None;
            }
            return;
        }
        let Some(front) = self.inflight.front() else { return };
        if front.correlation_id != response.correlation_id {
            let error = ClientError::Server {
                code: ErrorCode::Internal,
                message: format!(
                    "response {} out of order, expected {}",
                    response.correlation_id, front.correlation_id
                ),
            };
            return self.retry(error, None).await;
        }
        let Some(done) = self.inflight.pop_front() else { return };
        // A broker that accepts smaller batches than this one (its limit
        // was not known, or is lower than another's): refused before its
        // append, so it is sent again as two halves, on a new stream, ahead
        // of everything after it (their sequences stay contiguous).
        if response.error.as_ref().is_some_and(|e| e.error_code() == ErrorCode::TooLarge)
            && done.ready.waiters.len() > 1
        {
            match split(done.ready) {
                Ok((first, second)) => {
                    tracing::debug!(topic = %self.topic, partition = self.partition, "batch refused as too large; sending it in halves");
                    self.requeue();
                    self.queue.push_front(second);
                    self.queue.push_front(first);
                    self.cluster.invalidate(&self.topic);
                }
                Err(failed) => {
                    let (ready, e) = *failed;
                    self.resolve(ready, Err(e));
                    self.restart_sequences();
                }
            }
            return;
        }
        match response.error {
            None => {
                self.attempts = 0;
                self.resolve(done.ready, Ok(Some(response.base_offset)));
            }
            Some(e) => {
                let error = ClientError::from_proto(&e);
                if error.is_retriable() {
                    self.inflight.push_front(done);
                    // The leader expects an earlier sequence than our oldest
                    // unacknowledged batch: it lacks one it acknowledged
                    // (acks=1 and a failover). Nothing from here on is
                    // stored there; number it afresh under a new id.
                    if matches!(error, ClientError::Server { code: ErrorCode::OutOfOrderSequence, .. }) {
                        self.restart_sequences();
                    }
                    self.retry(error, None).await;
                } else {
                    self.resolve(done.ready, Err(error.clone()));
                    // A duplicate is stored, so the numbering has no hole.
                    if !matches!(error, ClientError::Server { code: ErrorCode::DuplicateSequence, .. }) {
                        self.restart_sequences();
                    }
                }
            }
        }
    }
}

/// Splits a built batch into two of about half its records each, numbered
/// (when it was) so that the second continues the first's sequences.
fn split(ready: Ready) -> std::result::Result<(Ready, Ready), Box<(Ready, ClientError)>> {
    match split_bytes(&ready.bytes) {
        Ok((first, second, half)) => {
            let mut waiters = ready.waiters;
            let rest = waiters.split_off(half);
            Ok((
                Ready { bytes: first, waiters, sequenced: ready.sequenced },
                Ready { bytes: second, waiters: rest, sequenced: ready.sequenced },
            ))
        }
        Err(e) => Err(Box::new((
            ready,
            ClientError::InvalidArgument(format!("cannot split a batch refused as too large: {e}")),
        ))),
    }
}

/// The two halves of an encoded batch, and how many records the first holds.
fn split_bytes(bytes: &Bytes) -> goulette_batch::Result<(Bytes, Bytes, usize)> {
    let batch = Batch::parse(bytes.clone())?;
    let records = batch.records()?;
    let half = records.len() / 2;
    let compression = batch.compression().unwrap_or(Compression::None);
    let build = |part: &[goulette_batch::StoredRecord], skip: usize| {
        let mut builder = BatchBuilder::new(compression);
        if let Some(info) = batch.producer() {
            let base_sequence = info.base_sequence.wrapping_add(skip as i32);
            builder = builder.producer(ProducerInfo { base_sequence, ..info });
        }
        for r in part {
            builder.push_record(&r.record, r.null_value);
        }
        builder.build()
    };
    Ok((build(&records[..half], 0)?, build(&records[half..], half)?, half))
}

async fn next_response(
    connection: &mut Option<Connection>,
) -> std::result::Result<Option<pb::ProduceResponse>, tonic::Status> {
    match connection {
        Some(c) => c.responses.message().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use goulette_batch::Record;

    #[test]
    fn a_split_batch_keeps_its_records_waiters_and_contiguous_sequences() {
        let mut builder = BatchBuilder::new(Compression::None).producer(ProducerInfo {
            producer_id: 7,
            producer_epoch: 0,
            base_sequence: 100,
        });
        let mut waiters = Waiters::new("t", 0);
        for i in 0..5 {
            builder.push(&Record { timestamp: 1000 + i, value: Bytes::from(format!("v{i}")), ..Default::default() });
            let _ = waiters.push();
        }
        let ready = Ready { bytes: builder.build().unwrap(), waiters, sequenced: true };
        let Ok((a, b)) = split(ready) else { panic!("split failed") };
        let (a_batch, b_batch) = (Batch::parse(a.bytes).unwrap(), Batch::parse(b.bytes).unwrap());
        assert_eq!((a_batch.record_count(), b_batch.record_count()), (2, 3));
        assert_eq!((a.waiters.len(), b.waiters.len()), (2, 3));
        assert_eq!(a_batch.producer().unwrap().base_sequence, 100);
        assert_eq!(b_batch.producer().unwrap().base_sequence, 102);
        let values: Vec<_> =
            a_batch.records().unwrap().into_iter().chain(b_batch.records().unwrap()).map(|r| r.record).collect();
        assert_eq!(values.iter().map(|r| r.timestamp).collect::<Vec<_>>(), vec![1000, 1001, 1002, 1003, 1004]);
        assert_eq!(values[4].value, Bytes::from("v4"));
    }
}
