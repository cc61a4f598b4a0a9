//! Fetch (v4–12): whole record batches from the log's bytes, below the high
//! watermark, with Kafka's long poll.
//!
//! - **Long poll**: with fewer than `min_bytes` ready, the request waits
//!   until a requested partition's high watermark moves (a change
//!   notification, not a timer), then reads again; it answers at
//!   `max_wait_ms` at the latest (capped at [`MAX_WAIT`]), and at once on
//!   an error or when the broker stops. It never spins and never hangs.
//! - **Sizes**: `max_bytes` (capped by `--max-fetch-bytes`) bounds the
//!   answer and `partition_max_bytes` each partition, except that the first
//!   batch of the first partition with data is sent whole however large
//!   (KIP-74), so a consumer always progresses. The read holds that much
//!   of the broker-wide fetch budget (`fetch_budget`), shared with gRPC,
//!   until the answer is written to the connection.
//! - **Batches** are whole: the first one holds the requested offset (the
//!   client skips the records before it). One batch is sent without a copy.
//! - **Isolation**: Goulette has no transactions, so the last stable offset
//!   is the high watermark for both isolation levels, and no transaction
//!   is ever aborted.
//! - **Fencing** (v9+): a `current_leader_epoch` older than the leader's is
//!   FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH. There are no
//!   fetch sessions (KIP-227): every answer has session id 0, which tells
//!   clients to send full requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use goulette_storage::StorageError;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::kafka::{Kafka, errors};
use crate::partition::{Partitions, Replica};

/// The longest a fetch waits for data, whatever it asks for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The topics and partitions of a request, in its order.
type Wanted = Vec<(TopicName, Vec<FetchPartition>)>;

/// One read pass: the answer, the bytes it carries, whether any partition
/// had an error, and the replicas a read found damaged.
struct Pass {
    topics: Vec<FetchableTopicResponse>,
    bytes: usize,
    errors: bool,
    damaged: Vec<(Arc<Replica>, String)>,
}

/// Answers a Fetch request (see the module documentation), with the fetch
/// budget its answer holds until written.
pub async fn handle(kafka: &Arc<Kafka>, req: FetchRequest) -> (FetchResponse, Option<OwnedSemaphorePermit>) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let min_bytes = req.min_bytes.max(0) as usize;
    let max_bytes = match req.max_bytes {
        n if n > 0 => (n as usize).min(kafka.config.max_fetch_bytes),
        _ => kafka.config.max_fetch_bytes,
    };
    let read_committed = req.isolation_level == 1;
    let wanted: Arc<Wanted> = Arc::new(req.topics.into_iter().map(|t| (t.topic, t.partitions)).collect());
    loop {
        // Subscribed before reading, so no move between the read and the
        // wait is missed.
        let mut watches = watches(&kafka.partitions, &wanted);
        // Waiting for budget counts against max_wait too.
        let permit = tokio::select! {
            permit = kafka.fetch_budget.acquire(max_bytes) => permit,
            _ = tokio::time::sleep_until(deadline) => return (FetchResponse::default(), None),
        };
        let (partitions, wanted_now) = (kafka.partitions.clone(), wanted.clone());
        let read = tokio::task::spawn_blocking(move || read_pass(&partitions, &wanted_now, max_bytes, read_committed));
        let pass = match read.await {
            Ok(pass) => pass,
            Err(e) => {
                tracing::error!(error = %e, "a Kafka fetch read failed");
                return (FetchResponse::default(), None);
            }
        };
        for (replica, reason) in &pass.damaged {
            kafka.partitions.fail(replica, format!("a read found damage: {reason}"), true).await;
        }
        let done = pass.errors || pass.bytes >= min_bytes.max(1) || tokio::time::Instant::now() >= deadline;
        if done || min_bytes == 0 {
            return (FetchResponse::default().with_responses(pass.topics), Some(permit));
        }
        drop(permit);
        if !wait(&mut watches, deadline, &kafka.shutdown).await {
            return (FetchResponse::default().with_responses(pass.topics), None);
        }
    }
}

/// The high-watermark watches of the requested partitions led here.
fn watches(partitions: &Partitions, wanted: &Wanted) -> Vec<watch::Receiver<u64>> {
    let mut out = Vec::new();
    for (topic, parts) in wanted {
        for p in parts {
            if let Ok(index) = u32::try_from(p.partition)
                && let Some(replica) = partitions.get(topic.0.as_str(), index)
            {
                out.push(replica.watch_high_watermark());
            }
        }
    }
    out
}

/// Waits until one of `watches` moves; false at the deadline, on shutdown,
/// or when there is nothing to wait on but time.
async fn wait(
    watches: &mut [watch::Receiver<u64>],
    deadline: tokio::time::Instant,
    shutdown: &tokio_util::sync::CancellationToken,
) -> bool {
    if watches.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.cancelled() => {}
        }
        return false;
    }
    let moved = futures_util::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
    tokio::select! {
        (changed, _, _) = moved => changed.is_ok(),
        _ = tokio::time::sleep_until(deadline) => false,
        _ = shutdown.cancelled() => false,
    }
}

/// Reads every requested partition once (on a blocking thread).
fn read_pass(partitions: &Partitions, wanted: &Wanted, max_bytes: usize, read_committed: bool) -> Pass {
    let mut pass = Pass { topics: Vec::with_capacity(wanted.len()), bytes: 0, errors: false, damaged: Vec::new() };
    for (topic, parts) in wanted {
        let mut answers = Vec::with_capacity(parts.len());
        for p in parts {
            let mut answer = read_partition(partitions, topic.0.as_str(), p, max_bytes, &mut pass);
            if read_committed {
                answer.aborted_transactions = Some(Vec::new());
            }
            pass.errors |= answer.error_code != 0;
            answers.push(answer);
        }
        pass.topics.push(FetchableTopicResponse::default().with_topic(topic.clone()).with_partitions(answers));
    }
    pass
}

fn read_partition(
    partitions: &Partitions,
    topic: &str,
    p: &FetchPartition,
    max_bytes: usize,
    pass: &mut Pass,
) -> PartitionData {
    let answer = PartitionData::default().with_partition_index(p.partition);
    let error = |code: i16| answer.clone().with_error_code(code).with_records(Some(Bytes::new()));
    let Some(replica) = u32::try_from(p.partition).ok().and_then(|index| partitions.get(topic, index)) else {
        let code = match goulette_proto::validate_topic_name(topic) {
            Ok(()) if p.partition >= 0 => errors::code(&partitions.unavailable(topic, p.partition as u32)),
            _ => ResponseError::UnknownTopicOrPartition.code(),
        };
        return error(code);
    };
    if !replica.is_leader() {
        return error(ResponseError::NotLeaderOrFollower.code());
    }
    if let Err(code) = errors::check_leader_epoch(p.current_leader_epoch, replica.state().leader_epoch) {
        return error(code);
    }
    let high_watermark = replica.high_watermark();
    let log_start = replica.log.log_start_offset();
    let answer = answer
        .with_high_watermark(high_watermark as i64)
        .with_last_stable_offset(high_watermark as i64)
        .with_log_start_offset(log_start as i64);
    let offset = p.fetch_offset;
    // Out of range only beyond the log end, as Kafka does: a leader that
    // just took over learns the high watermark back from its followers, so
    // for a moment it lies below what consumers already read; they wait.
    if offset < log_start as i64 || offset > replica.log.log_end_offset().max(high_watermark) as i64 {
        return answer.with_error_code(ResponseError::OffsetOutOfRange.code()).with_records(Some(Bytes::new()));
    }
    let room = max_bytes.saturating_sub(pass.bytes);
    let first = pass.bytes == 0;
    let want = (p.partition_max_bytes.max(0) as usize).min(room);
    if offset as u64 >= high_watermark || (want == 0 && !first) {
        return answer.with_records(Some(Bytes::new()));
    }
    // Consumers are never sent a delayed record before it is due.
    let batches = match replica.log.read_bounded(offset as u64, want.max(1), high_watermark) {
        Ok(batches) => crate::delayed::hide::hide(batches),
        Err(e) => {
            if let StorageError::Corruption { .. } = e {
                pass.damaged.push((replica.clone(), e.to_string()));
            }
            return answer
                .with_error_code(errors::code(&crate::error::storage_error(&e)))
                .with_records(Some(Bytes::new()));
        }
    };
    // The first batch of the answer goes whole (KIP-74); after it, only
    // batches that fit.
    let mut taken = 0usize;
    let mut count = 0usize;
    for b in &batches {
        if (count > 0 || !first) && taken + b.len() > room {
            break;
        }
        taken += b.len();
        count += 1;
    }
    pass.bytes += taken;
    answer.with_records(Some(concat(&batches[..count], taken)))
}

/// The batches as one buffer (one batch is passed on as it is).
fn concat(batches: &[Bytes], total: usize) -> Bytes {
    match batches {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut out = BytesMut::with_capacity(total);
            for b in many {
                out.extend_from_slice(b);
            }
            out.freeze()
        }
    }
}
