//! The fetch stream: one partition, credit-based flow control, long polling.
//!
//! The consumer opens with `start` (offset, per-response `max_bytes`, initial
//! credit) and tops the credit up with `credit` messages. The broker sends
//! batches below the high watermark while it has credit, and when it has
//! caught up it waits on the high watermark's change notification (no
//! polling) until new data is visible, more credit arrives, or the consumer
//! hangs up.

use std::sync::Arc;

use futures_util::StreamExt;
use goulette_proto::v1::{self as pb, ErrorCode, fetch_request::Kind};
use goulette_storage::batch::peek_next_offset;
use goulette_storage::tags::TagFilter;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

use crate::error::{not_leader, storage_error};
use crate::fetch_budget::{FetchBudget, FetchOut};
use crate::partition::Partitions;

async fn send_error(out: &FetchOut, error: pb::Error) {
    out.send(pb::FetchResponse { error: Some(error), ..Default::default() }, None).await;
}

/// Serves one fetch stream.
pub async fn serve(
    partitions: Arc<Partitions>,
    mut requests: Streaming<pb::FetchRequest>,
    out: FetchOut,
    budget: FetchBudget,
    max_fetch_bytes: usize,
    shutdown: CancellationToken,
    readable: crate::security::acls::Check<bool>,
) {
    let start = match requests.next().await {
        Some(Ok(pb::FetchRequest { kind: Some(Kind::Start(start)) })) => start,
        Some(Ok(_)) => {
            return send_error(
                &out,
                pb::Error::new(ErrorCode::InvalidArgument, "the first fetch message must be `start`"),
            )
            .await;
        }
        _ => return,
    };
    if let Err(reason) = goulette_proto::validate_topic_name(&start.topic) {
        return send_error(&out, pb::Error::new(ErrorCode::InvalidArgument, reason)).await;
    }
    if let Err(e) = readable(&start.topic, start.replica_id.is_some()) {
        return send_error(&out, e).await;
    }
    let filter = match start.tag_filter.as_deref().map(TagFilter::parse).transpose() {
        _ if start.tag_filter.is_some() && start.replica_id.is_some() => {
            let message = "a follower replicates every record: no tag filter";
            return send_error(&out, pb::Error::new(ErrorCode::InvalidArgument, message)).await;
        }
        Ok(filter) => filter.filter(|f| *f != TagFilter::All).map(Arc::new),
        Err(why) => return send_error(&out, pb::Error::new(ErrorCode::InvalidArgument, why)).await,
    };
    let Some(replica) = partitions.get(&start.topic, start.partition) else {
        return send_error(&out, partitions.unavailable(&start.topic, start.partition)).await;
    };
    let max_bytes = match start.max_bytes as usize {
        0 => 1 << 20,
        n => n.min(max_fetch_bytes),
    };
    // A follower is served up to the leader's log end, and its progress
    // moves the high watermark; a consumer is served up to the high watermark.
    let follower = start.replica_id;
    // A follower's stream belongs to one leadership term: it ends when the
    // epoch changes, and the follower starts over (truncating first).
    let term = replica.state().leader_epoch;
    let stream_id = NEXT_STREAM.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(f) = follower
        && (f == partitions.broker_id() || !replica.state().replicas.contains(&f))
    {
        let message = format!("broker {f} is not a follower of this partition");
        return send_error(&out, pb::Error::new(ErrorCode::InvalidArgument, message)).await;
    }
    if let Some(wanted) = start.leader_epoch
        && wanted != term
    {
        let message = format!("the follower follows epoch {wanted}; this broker leads at epoch {term}");
        let code = if wanted > term { ErrorCode::Fenced } else { ErrorCode::NotLeader };
        return send_error(&out, pb::Error::new(code, message)).await;
    }
    let metrics = partitions.metrics().clone();
    let _open = metrics.stream_opened(if follower.is_some() { "replica-fetch" } else { "fetch" });
    // However the stream ends, the leader learns the follower stopped fetching.
    let _closed = follower.map(|f| StreamGuard { replica: replica.clone(), follower: f, stream: stream_id });
    let mut registered = false;
    // The leader's log end when this stream last sent everything up to it:
    // a follower that reports at least that much was caught up.
    let mut served_through: Option<u64> = None;
    let mut credit = start.credit_bytes;
    let mut offset = start.offset;
    let mut hw_changes = if follower.is_some() { replica.watch_log_end() } else { replica.watch_high_watermark() };
    // A follower also learns every move of the high watermark, data or not:
    // one that is caught up on an idle partition would otherwise keep the
    // high watermark it restarted with (its log start) and, made leader,
    // hide everything acknowledged before (consumers would see offsets go
    // back). `sent_hw` is the high watermark the last response carried.
    let mut hw_moves = replica.watch_high_watermark();
    let mut sent_hw: Option<u64> = None;
    // Likewise the log start (followers follow it: records deleted on request).
    let mut sent_start = 0u64;
    let mut reading = true;
    loop {
        // The replica may have been closed or replaced (moved, topic
        // re-created) or lost its leadership: the consumer must look again.
        let current = partitions.get(&replica.topic, replica.partition);
        let epoch_changed = follower.is_some() && replica.state().leader_epoch != term;
        if !replica.is_leader() || epoch_changed || !current.is_some_and(|c| Arc::ptr_eq(&c, &replica)) {
            let hint = replica.state().leader.and_then(|l| partitions.broker_address(l));
            return send_error(&out, not_leader(&replica.topic, replica.partition, hint)).await;
        }
        let upper = *hw_changes.borrow_and_update();
        let hw = replica.high_watermark();
        if offset > upper || offset < replica.log.log_start_offset() {
            let response = pb::FetchResponse {
                error: Some(pb::Error::new(
                    ErrorCode::OffsetOutOfRange,
                    format!("offset {offset} is outside the readable range"),
                )),
                batches: Vec::new(),
                high_watermark: hw,
                log_start_offset: replica.log.log_start_offset(),
            };
            out.send(response, None).await;
            return;
        }
        if let Some(f) = follower
            && !registered
        {
            registered = true;
            replica.record_follower(f, offset, offset >= upper);
            replica.follower_stream(f, stream_id, true);
        }
        if credit > 0 && offset < upper {
            let want = max_bytes.min(usize::try_from(credit).unwrap_or(usize::MAX));
            // The budget first: the read may hold `want` bytes (a single
            // batch larger than that is read whole and counted as `want`).
            let mut permit = tokio::select! {
                permit = budget.acquire(want) => permit,
                _ = out.closed() => return,
                _ = shutdown.cancelled() => return,
            };
            let reading_started = std::time::Instant::now();
            let log = replica.log.clone();
            let filter = filter.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut batches = log.read_bounded(offset, want, upper)?;
                // A follower copies the log as it is; consumers are never
                // sent a delayed record before it is due.
                let mut next = None;
                if follower.is_none() {
                    next = batches.last().and_then(|b| peek_next_offset(b));
                    batches = crate::delayed::hide::hide(batches);
                }
                Ok::<_, goulette_storage::StorageError>(match filter {
                    Some(filter) => crate::tag_filter::apply(batches, &filter),
                    None => (batches, next),
                })
            })
            .await;
            let (batches, next_unfiltered) = match read {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    if let goulette_storage::StorageError::Corruption { .. } = e {
                        // Never served, and never led from again until repaired.
                        partitions.fail(&replica, format!("a read found damage: {e}"), true).await;
                    }
                    let response = pb::FetchResponse {
                        error: Some(storage_error(&e)),
                        batches: Vec::new(),
                        high_watermark: hw,
                        log_start_offset: replica.log.log_start_offset(),
                    };
                    out.send(response, None).await;
                    return;
                }
                Err(e) => return send_error(&out, pb::Error::new(ErrorCode::Internal, e.to_string())).await,
            };
            if let Some(next) = next_unfiltered.or_else(|| batches.last().and_then(|b| peek_next_offset(b))) {
                let bytes: u64 = batches.iter().map(|b| b.len() as u64).sum();
                // Give back what the read did not fill.
                drop(permit.split(want.saturating_sub(bytes as usize)));
                let records = next.saturating_sub(offset);
                credit = credit.saturating_sub(bytes);
                offset = next;
                if offset >= upper {
                    served_through = Some(upper);
                }
                let response = pb::FetchResponse {
                    error: None,
                    batches,
                    high_watermark: hw,
                    log_start_offset: replica.log.log_start_offset(),
                };
                sent_start = response.log_start_offset;
                if !out.send(response, Some(permit)).await {
                    return;
                }
                sent_hw = Some(hw);
                metrics.fetch_latency.observe(reading_started.elapsed().as_secs_f64());
                replica.counters.sent(follower.is_some(), records, bytes);
                continue;
            }
        }
        let start = replica.log.log_start_offset();
        if follower.is_some() && (sent_hw.is_none_or(|sent| sent < hw) || sent_start < start) {
            let response =
                pb::FetchResponse { error: None, batches: Vec::new(), high_watermark: hw, log_start_offset: start };
            sent_start = start;
            if !out.send(response, None).await {
                return;
            }
            sent_hw = Some(hw);
            continue;
        }
        if !reading && credit == 0 {
            return;
        }
        // Caught up or out of credit: wait for data, credit, or the end.
        tokio::select! {
            changed = hw_changes.changed() => if changed.is_err() { return },
            changed = hw_moves.changed(), if follower.is_some() => if changed.is_err() { return },
            message = requests.next(), if reading => match message {
                Some(Ok(pb::FetchRequest { kind: Some(Kind::Credit(c)) })) => {
                    credit = credit.saturating_add(c.bytes);
                    if let (Some(f), Some(end)) = (follower, c.replica_log_end) {
                        // A report cannot exceed what this stream served.
                        let end = end.min(offset);
                        replica.record_follower(f, end, served_through.is_some_and(|s| end >= s));
                    }
                }
                Some(Ok(_)) => return send_error(&out, pb::Error::new(ErrorCode::InvalidArgument, "`start` may only come first")).await,
                Some(Err(_)) | None => reading = false,
            },
            _ = out.closed() => return,
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Ids of fetch streams, so that a follower's streams are told apart.
static NEXT_STREAM: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Marks a follower's fetch stream closed when dropped.
struct StreamGuard {
    replica: Arc<crate::partition::Replica>,
    follower: u32,
    stream: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.replica.follower_stream(self.follower, self.stream, false);
    }
}
