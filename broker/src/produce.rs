//! The produce stream of one connection.
//!
//! Requests are validated and appended in arrival order (so one producer's
//! batches to a partition keep their order), but a request does not wait
//! for its fdatasync before the next one is appended: each append's
//! durability wait runs concurrently, so the requests in a producer's window
//! share fdatasyncs (group commit). Responses go out in request order. At
//! most `max_in_flight` requests are pending per connection; beyond that the
//! stream is not read (backpressure, bounded memory).

use std::sync::Arc;

use futures_util::stream::{FuturesOrdered, StreamExt};
use goulette_proto::v1::{self as pb, Acks, ErrorCode};
use goulette_storage::Batch;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::error::{not_leader, storage_error};
use crate::partition::Partitions;

type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Option<pb::ProduceResponse>> + Send>>;

fn answer(correlation_id: u64, error: pb::Error) -> Pending {
    Box::pin(std::future::ready(Some(pb::ProduceResponse { correlation_id, error: Some(error), ..Default::default() })))
}

/// Serves one produce stream until the client closes it.
pub async fn serve(
    partitions: Arc<Partitions>,
    mut requests: Streaming<pb::ProduceRequest>,
    responses: mpsc::Sender<Result<pb::ProduceResponse, Status>>,
    max_in_flight: usize,
    max_batch_bytes: usize,
) {
    let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut reading = true;
    while reading || !pending.is_empty() {
        tokio::select! {
            request = requests.next(), if reading && pending.len() < max_in_flight => match request {
                Some(Ok(request)) => pending.push_back(handle(&partitions, request, max_batch_bytes).await),
                Some(Err(status)) => {
                    tracing::debug!(%status, "produce stream broke");
                    reading = false;
                }
                None => reading = false,
            },
            Some(response) = pending.next(), if !pending.is_empty() => {
                if let Some(response) = response
                    && responses.send(Ok(response)).await.is_err()
                {
                    return; // the client is gone
                }
            }
        }
    }
}

/// Validates and appends one request; returns the future of its response.
async fn handle(partitions: &Arc<Partitions>, req: pb::ProduceRequest, max_batch_bytes: usize) -> Pending {
    let id = req.correlation_id;
    if let Err(reason) = goulette_proto::validate_topic_name(&req.topic) {
        return answer(id, pb::Error::new(ErrorCode::InvalidArgument, reason));
    }
    let Some(replica) = partitions.get(&req.topic, req.partition) else {
        return answer(id, not_leader(&req.topic, req.partition, None));
    };
    if !replica.is_leader() {
        let hint = replica.state().leader.and_then(|l| partitions.broker_address(l));
        return answer(id, not_leader(&req.topic, req.partition, hint));
    }
    if req.batch.len() > max_batch_bytes {
        let message = format!("batch of {} bytes exceeds the maximum of {max_batch_bytes}", req.batch.len());
        return answer(id, pb::Error::new(ErrorCode::TooLarge, message));
    }
    let batch = match Batch::parse(req.batch) {
        Ok(batch) => batch,
        Err(e) => return answer(id, storage_error(&e)),
    };
    let acks = Acks::try_from(req.acks).unwrap_or(Acks::All);
    let epoch = replica.leader_epoch();
    // The append itself (a write into the page cache) happens now, in order.
    let log = replica.log.clone();
    let appended = tokio::task::spawn_blocking(move || log.append_deferred(&batch, epoch)).await;
    let pending = match appended {
        Ok(Ok(pending)) => pending,
        Ok(Err(e)) => return answer(id, storage_error(&e)),
        Err(e) => return answer(id, pb::Error::new(ErrorCode::Internal, format!("append task failed: {e}"))),
    };
    // Its durability wait runs concurrently with later appends.
    Box::pin(async move {
        let log = replica.log.clone();
        let durable = tokio::task::spawn_blocking(move || log.wait_durable_for(&pending)).await;
        let error = match durable {
            Ok(Ok(())) => {
                replica.advance_high_watermark();
                None
            }
            Ok(Err(e)) => Some(storage_error(&e)),
            Err(e) => Some(pb::Error::new(ErrorCode::Internal, format!("fsync task failed: {e}"))),
        };
        if error.is_none() && acks == Acks::None {
            return None;
        }
        Some(pb::ProduceResponse {
            correlation_id: id,
            error,
            base_offset: pending.info.base_offset,
            log_start_offset: replica.log.log_start_offset(),
        })
    })
}
