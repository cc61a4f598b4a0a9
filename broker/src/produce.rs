//! The produce stream of one connection.
//!
//! Requests are validated and appended in arrival order (so one producer's
//! batches to a partition keep their order), but a request does not wait
//! for its fdatasync before the next one is appended: each append's
//! durability wait runs concurrently, so the requests in a producer's window
//! share fdatasyncs (group commit). Responses go out in request order. At
//! most `max_in_flight` requests are pending per connection; beyond that the
//! stream is not read (backpressure, bounded memory).
//!
//! Once a request to a partition is refused before its append (not leader,
//! too few in-sync replicas, a bad batch, an idempotent producer's sequence
//! out of order, …), every later request to that partition on the same
//! stream is refused with `NOT_LEADER`: the client re-sends them, in order,
//! on a new stream, and none of them may have been appended in the meantime
//! (that would reorder the partition, or leave a hole in a producer's
//! sequence).

use std::collections::HashSet;
use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, StreamExt};
use goulette_proto::v1::{self as pb, Acks, ErrorCode};
use goulette_storage::{Batch, StorageError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::config::{BrokerConfig, ProduceLimits};
use crate::error::{not_leader, storage_error};
use crate::partition::Partitions;
use crate::security::acls::Check;

/// How long a stopping broker keeps answering the requests in flight.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Option<pb::ProduceResponse>> + Send>>;

fn answer(correlation_id: u64, error: pb::Error) -> Pending {
    Box::pin(std::future::ready(Some(pb::ProduceResponse { correlation_id, error: Some(error), ..Default::default() })))
}

/// One connection's produce stream (see the module documentation).
pub struct ProduceStream {
    partitions: Arc<Partitions>,
    /// Requests pending at most; beyond, the stream is not read.
    max_in_flight: usize,
    limits: ProduceLimits,
    shutdown: CancellationToken,
    /// Partitions refused on this stream: later requests to them are too.
    refused: HashSet<(String, u32)>,
    /// Whether the stream's caller may write a topic (its ACLs).
    writable: Check<()>,
}

impl std::fmt::Debug for ProduceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProduceStream").field("max_in_flight", &self.max_in_flight).finish_non_exhaustive()
    }
}

impl ProduceStream {
    /// A stream of this broker's, with its produce settings.
    pub fn new(
        partitions: Arc<Partitions>,
        config: &BrokerConfig,
        shutdown: CancellationToken,
        writable: Check<()>,
    ) -> ProduceStream {
        ProduceStream {
            partitions,
            max_in_flight: config.max_in_flight,
            limits: config.produce_limits(),
            shutdown,
            refused: HashSet::new(),
            writable,
        }
    }

    /// Serves the stream until the client closes it (or the broker stops
    /// and what was in flight is answered).
    pub async fn run(
        mut self,
        mut requests: Streaming<pb::ProduceRequest>,
        responses: mpsc::Sender<Result<pb::ProduceResponse, Status>>,
    ) {
        let metrics = self.partitions.metrics().clone();
        let _open = metrics.stream_opened("produce");
        let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
        // When each pending request arrived (for the latency histogram).
        let mut arrivals = std::collections::VecDeque::new();
        let mut reading = true;
        let mut drain_until = None;
        while reading || !pending.is_empty() {
            tokio::select! {
                request = requests.next(), if reading && pending.len() < self.max_in_flight => match request {
                    Some(Ok(request)) => {
                        arrivals.push_back(std::time::Instant::now());
                        let response = self.accept(request).await;
                        pending.push_back(response);
                    }
                    Some(Err(status)) => {
                        tracing::debug!(%status, "produce stream broke");
                        reading = false;
                    }
                    None => reading = false,
                },
                Some(response) = pending.next(), if !pending.is_empty() => {
                    // Responses come in request order, as the arrivals were queued.
                    if let Some(arrived) = arrivals.pop_front() {
                        metrics.produce_latency.observe(arrived.elapsed().as_secs_f64());
                    }
                    let Some(response) = response else { continue };
                    if !respond(&responses, response).await {
                        return;
                    }
                }
                // Stopping: read no more requests, but answer those in flight
                // (their appends are done; durability and replication are
                // awaited, or refused NOT_LEADER once the leadership moved) for
                // at most DRAIN: a partition that kept its leadership has no
                // followers fetching any more, and its acks=all waits would last
                // the replication timeout. The client retries what is cut off.
                _ = self.shutdown.cancelled(), if reading => {
                    reading = false;
                    drain_until = Some(tokio::time::Instant::now() + DRAIN);
                }
                _ = tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)), if drain_until.is_some() => return,
            }
        }
    }

    /// Takes one request in arrival order: refused at once, or appended
    /// (its durability and replication awaited by the returned future).
    async fn accept(&mut self, request: pb::ProduceRequest) -> Pending {
        let key = (request.topic.clone(), request.partition);
        if let Err(error) = client_writable(&key.0).and_then(|()| (self.writable)(&key.0, ())) {
            return answer(request.correlation_id, error);
        }
        if self.refused.contains(&key) {
            let mut e = not_leader(&key.0, key.1, None);
            e.message = format!("{}; an earlier request on this stream was refused: reconnect", e.message);
            return answer(request.correlation_id, e);
        }
        let (response, refused_now) = handle(&self.partitions, request, self.limits).await;
        if refused_now {
            self.refused.insert(key);
        }
        response
    }
}

/// Sends one response (or, under a failpoint, drops the stream or crashes
/// instead); false once the stream is over.
async fn respond(responses: &mpsc::Sender<Result<pb::ProduceResponse, Status>>, response: pb::ProduceResponse) -> bool {
    match crate::failpoint::produce_response() {
        crate::failpoint::ProduceResponse::Send => {}
        crate::failpoint::ProduceResponse::Drop => {
            tracing::warn!(
                correlation_id = response.correlation_id,
                "failpoint: dropping a produce response and the stream"
            );
            return false;
        }
        crate::failpoint::ProduceResponse::Crash => {
            tracing::warn!(correlation_id = response.correlation_id, "failpoint: exiting instead of answering");
            std::process::exit(crate::failpoint::CRASH_EXIT_CODE);
        }
    }
    // An error: the client is gone.
    responses.send(Ok(response)).await.is_ok()
}

/// The one topic check of the produce path: a valid name, and not an
/// internal topic (`__offsets` is written by the broker itself, through
/// [`handle`]).
pub(crate) fn client_writable(topic: &str) -> Result<(), pb::Error> {
    goulette_proto::validate_topic_name(topic).map_err(|reason| pb::Error::new(ErrorCode::InvalidArgument, reason))?;
    if topic.starts_with("__") {
        let message = format!("{topic} is an internal topic");
        return Err(pb::Error::new(ErrorCode::InvalidArgument, message));
    }
    Ok(())
}

/// The acknowledgement a request asks for; unspecified means all.
fn acks_of(req: &pb::ProduceRequest) -> Acks {
    match Acks::try_from(req.acks) {
        Ok(Acks::None) => Acks::None,
        Ok(Acks::Leader) => Acks::Leader,
        _ => Acks::All,
    }
}

/// Validates and appends one request (its topic name was checked by the
/// caller); returns the future of its response, and whether it was refused
/// before its append.
pub(crate) async fn handle(
    partitions: &Arc<Partitions>,
    req: pb::ProduceRequest,
    limits: ProduceLimits,
) -> (Pending, bool) {
    handle_from(partitions, req, limits, Origin::Client).await
}

/// Who wrote a batch: what its delayed-delivery marks may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A producer (or the broker writing `__offsets`): marked here, and
    /// never with copies.
    Client,
    /// The delayed-delivery task, appending copies it marked itself.
    DelayedDelivery,
}

/// [`handle`] for a batch from `origin`.
pub(crate) async fn handle_from(
    partitions: &Arc<Partitions>,
    req: pb::ProduceRequest,
    limits: ProduceLimits,
    origin: Origin,
) -> (Pending, bool) {
    let id = req.correlation_id;
    let Some(replica) = partitions.get(&req.topic, req.partition) else {
        return (answer(id, partitions.unavailable(&req.topic, req.partition)), true);
    };
    // One snapshot decides leadership and the epoch stamped on the batch.
    let state = replica.state();
    if state.leader != Some(partitions.broker_id()) {
        let hint = state.leader.and_then(|l| partitions.broker_address(l));
        return (answer(id, not_leader(&req.topic, req.partition, hint)), true);
    }
    let acks = acks_of(&req);
    if acks == Acks::All && !partitions.in_contact() {
        let mut e = not_leader(&req.topic, req.partition, None);
        e.message = format!("{}: no sentinel has confirmed this broker's session for a session timeout", e.message);
        return (answer(id, e), true);
    }
    append(replica, state, req, acks, limits, origin).await
}

/// Appends a request's batch to a partition this broker leads; also says
/// whether it was refused before its append.
async fn append(
    replica: Arc<crate::partition::Replica>,
    state: pb::PartitionState,
    req: pb::ProduceRequest,
    acks: Acks,
    limits: ProduceLimits,
    origin: Origin,
) -> (Pending, bool) {
    let id = req.correlation_id;
    let (max_batch_bytes, replication_timeout) = (limits.max_batch_bytes, limits.replication_timeout);
    let refuse = |error: pb::Error| (answer(id, error), true);
    if req.batch.len() > max_batch_bytes {
        let message = format!("batch of {} bytes exceeds the maximum of {max_batch_bytes}", req.batch.len());
        return refuse(pb::Error::new(ErrorCode::TooLarge, message));
    }
    let batch = match Batch::parse(req.batch) {
        Ok(batch) => batch,
        Err(e) => return refuse(storage_error(&e.into())),
    };
    // A delayed record's copy keeps its original's timestamp, which may be
    // as old as the longest delay.
    if origin == Origin::Client
        && let Err(reason) = limits.timestamps.check(&batch, goulette_storage::now_ms())
    {
        return refuse(pb::Error::new(ErrorCode::InvalidTimestamp, reason));
    }
    if replica.log.compaction().is_some()
        && let Err(reason) = crate::compaction::check_keys(&batch)
    {
        return refuse(pb::Error::new(
            ErrorCode::InvalidRecord,
            format!("{}/{}: {reason}", replica.topic, replica.partition),
        ));
    }
    let batch = match origin {
        Origin::DelayedDelivery => batch,
        Origin::Client => {
            let rules = crate::delayed::mark::Rules {
                compacted: replica.log.compaction().is_some(),
                now_ms: goulette_storage::now_ms(),
                max_delay_ms: i64::try_from(limits.max_delivery_delay.as_millis()).unwrap_or(i64::MAX),
            };
            match crate::delayed::mark::mark(batch, rules) {
                Ok(batch) => batch,
                Err(reason) => {
                    let message = format!("{}/{}: {reason}", replica.topic, replica.partition);
                    return refuse(pb::Error::new(ErrorCode::InvalidRecord, message));
                }
            }
        }
    };
    if acks == Acks::All && state.isr.len() < replica.min_insync() {
        let message = format!(
            "{} in-sync replicas of {}/{}, acks=all needs {}",
            state.isr.len(),
            replica.topic,
            replica.partition,
            replica.min_insync()
        );
        return refuse(pb::Error::new(ErrorCode::NotEnoughReplicas, message));
    }
    // Epochs start at 1 and grow by one per leadership change.
    let epoch = state.leader_epoch as u32;
    // The append itself (a write into the page cache) happens now, in order.
    let (records, bytes) = (batch.record_count(), batch.len());
    let pending = match append_now(&replica.log, batch, epoch, req.expected_offset).await {
        Ok(pending) => pending,
        Err(StorageError::LogEndMismatch { expected, log_end }) => {
            let error = storage_error(&StorageError::LogEndMismatch { expected, log_end });
            let response = pb::ProduceResponse {
                correlation_id: id,
                error: Some(error),
                log_end_offset: log_end,
                ..Default::default()
            };
            return (Box::pin(std::future::ready(Some(response))), true);
        }
        Err(error) => return refuse(storage_error(&error)),
    };
    if !pending.duplicate {
        replica.appended();
        replica.counters.appended(records, bytes);
    }
    if pending.presync_due {
        let log = replica.log.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = log.presync() {
                tracing::warn!(error = %e, "presync before a seal failed");
            }
        });
    }
    // Its durability wait runs concurrently with later appends. A producer's
    // retry of a stored batch waits the same way for the original, and is
    // answered with its offsets.
    let response = Box::pin(async move {
        let error = match crate::group_commit::wait_durable(&replica.log, &pending).await {
            Ok(()) => {
                replica.advance_high_watermark();
                if acks == Acks::All {
                    wait_replicated(&replica, state.leader_epoch, pending.info.next_offset, replication_timeout).await
                } else {
                    None
                }
            }
            // After the append, a failure (truncated by a new leader, the log
            // closed or failed) is retriable: the batch may be stored, and an
            // idempotent producer's retry will find it, where giving up would
            // make it number its next batches afresh and store them twice.
            Err(e) => {
                let mut error = storage_error(&e);
                if error.error_code() != ErrorCode::NotLeader {
                    error.code = ErrorCode::Unavailable as i32;
                }
                Some(error)
            }
        };
        if error.is_none() && acks == Acks::None {
            return None;
        }
        Some(pb::ProduceResponse {
            correlation_id: id,
            error,
            base_offset: pending.info.base_offset,
            log_start_offset: replica.log.log_start_offset(),
            log_end_offset: 0,
        })
    });
    (response, false)
}

/// Batches up to this size are appended on the executor when the log can
/// take them at once (`PartitionLog::try_append_deferred`): handing a small
/// write to a blocking thread and back costs more than the write (two
/// thread wake-ups, measured at ~15–45 % of a one-message round trip).
/// Larger batches, and appends that must seal or record a new epoch, go to a
/// blocking thread. The cost: on ext4 a `writev` that grows the WAL can wait
/// 10–16 ms for a running fdatasync of it (`flush=always`), and it then
/// holds an executor thread. Measured against appending on a blocking
/// thread under `flush=always` at 20k msg/s, inline still wins (p50 1.0–1.2
/// against 1.7–3.0 ms, p99 18 against 19–45 ms); a WAL preallocated ahead
/// (no growth, no journal commit per fdatasync) would remove the wait.
const INLINE_APPEND_BYTES: usize = 64 << 10;

/// Appends `batch` as leader at `epoch` (only where the log ends at
/// `expected`, when given), inline when it is small and the log needs
/// nothing else, else on a blocking thread.
async fn append_now(
    log: &Arc<goulette_storage::PartitionLog>,
    batch: Batch,
    epoch: u32,
    expected: Option<u64>,
) -> Result<goulette_storage::PendingAppend, StorageError> {
    if batch.len() <= INLINE_APPEND_BYTES {
        let inline = match expected {
            None => log.try_append_deferred(&batch, epoch),
            Some(at) => log.try_append_deferred_at(&batch, at, epoch),
        };
        if let Some(appended) = inline {
            return appended;
        }
    }
    let log = log.clone();
    let appended = tokio::task::spawn_blocking(move || match expected {
        None => log.append_deferred(&batch, epoch),
        Some(at) => log.append_deferred_at(&batch, at, epoch),
    })
    .await;
    appended
        .unwrap_or_else(|e| Err(StorageError::Io { context: "append task".into(), source: std::io::Error::other(e) }))
}

/// Waits until the high watermark passes `next_offset` (every in-sync
/// replica holds the batch). Leadership is checked first on every wake: once
/// the epoch the batch was appended under is over, the batch may have been
/// truncated (and the high watermark raised past it by other data), so it is
/// refused with `NOT_LEADER`. An ISR that shrank below `min_insync_replicas`
/// while waiting refuses it too (`NOT_ENOUGH_REPLICAS`, after the append).
async fn wait_replicated(
    replica: &crate::partition::Replica,
    epoch: u64,
    next_offset: u64,
    timeout: std::time::Duration,
) -> Option<pb::Error> {
    let mut hw = replica.watch_high_watermark();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let state = replica.state();
        if !replica.is_leader() || state.leader_epoch != epoch {
            let message =
                format!("lost leadership of {}/{} before the batch was replicated", replica.topic, replica.partition);
            return Some(pb::Error::new(ErrorCode::NotLeader, message));
        }
        if *hw.borrow_and_update() >= next_offset {
            if state.isr.len() < replica.min_insync() {
                let message = format!(
                    "the ISR shrank to {} while waiting, below min_insync_replicas {}",
                    state.isr.len(),
                    replica.min_insync()
                );
                return Some(pb::Error::new(ErrorCode::NotEnoughReplicas, message));
            }
            return None;
        }
        tokio::select! {
            changed = hw.changed() => if changed.is_err() {
                return Some(pb::Error::new(ErrorCode::NotLeader, "the partition was closed"));
            },
            _ = tokio::time::sleep_until(deadline) => {
                let message = format!("in-sync replicas did not confirm within {timeout:?}");
                return Some(pb::Error::new(ErrorCode::NotEnoughReplicas, message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_write_valid_names_only_and_never_internal_topics() {
        assert!(client_writable("orders").is_ok());
        for bad in ["", "..", "a/b", "__offsets", "__anything"] {
            let error = client_writable(bad).expect_err(bad);
            assert_eq!(error.error_code(), ErrorCode::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn unspecified_acks_mean_all() {
        let with = |acks: i32| acks_of(&pb::ProduceRequest { acks, ..Default::default() });
        assert_eq!(with(Acks::None as i32), Acks::None);
        assert_eq!(with(Acks::Leader as i32), Acks::Leader);
        assert_eq!(with(Acks::All as i32), Acks::All);
        assert_eq!(with(0), Acks::All);
        assert_eq!(with(42), Acks::All);
    }
}
