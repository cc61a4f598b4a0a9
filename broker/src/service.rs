//! The broker's gRPC face: `BrokerService` (produce and fetch streams).

use std::sync::Arc;

use goulette_proto::v1::{self as pb, broker_service_server::BrokerService};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::config::BrokerConfig;
use crate::error::{not_leader, storage_error};
use crate::partition::Partitions;
use crate::{fetch, produce};

/// Serves produce and fetch for the partitions this broker leads.
#[derive(Debug, Clone)]
pub struct BrokerGrpc {
    pub partitions: Arc<Partitions>,
    pub config: Arc<BrokerConfig>,
    /// Ends every stream on shutdown (graceful shutdown waits for them).
    pub shutdown: tokio_util::sync::CancellationToken,
}

#[tonic::async_trait]
impl BrokerService for BrokerGrpc {
    type ProduceStream = ReceiverStream<Result<pb::ProduceResponse, Status>>;
    type FetchStream = ReceiverStream<Result<pb::FetchResponse, Status>>;

    async fn produce(
        &self,
        req: Request<Streaming<pb::ProduceRequest>>,
    ) -> Result<Response<Self::ProduceStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        let (partitions, config) = (self.partitions.clone(), self.config.clone());
        tokio::spawn(produce::serve(
            partitions,
            req.into_inner(),
            tx,
            config.max_in_flight,
            config.log.max_batch_bytes,
            self.shutdown.clone(),
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn list_offsets(
        &self,
        req: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        let req = req.into_inner();
        let error = |e| Ok(Response::new(pb::ListOffsetsResponse { error: Some(e), ..Default::default() }));
        if let Err(reason) = goulette_proto::validate_topic_name(&req.topic) {
            return error(pb::Error::new(pb::ErrorCode::InvalidArgument, reason));
        }
        let replica = match self.partitions.get(&req.topic, req.partition) {
            Some(r) if r.is_leader() => r,
            Some(r) => {
                return error(not_leader(
                    &req.topic,
                    req.partition,
                    r.state().leader.and_then(|l| self.partitions.broker_address(l)),
                ));
            }
            None => return error(not_leader(&req.topic, req.partition, None)),
        };
        let high_watermark = replica.high_watermark();
        let timestamp_offset = match req.timestamp {
            Some(ts) => {
                let log = replica.log.clone();
                match tokio::task::spawn_blocking(move || log.offset_for_timestamp(ts)).await {
                    Ok(Ok(found)) => found.filter(|o| *o < high_watermark),
                    Ok(Err(e)) => return error(storage_error(&e)),
                    Err(e) => return error(pb::Error::new(pb::ErrorCode::Internal, e.to_string())),
                }
            }
            None => None,
        };
        Ok(Response::new(pb::ListOffsetsResponse {
            error: None,
            log_start_offset: replica.log.log_start_offset(),
            high_watermark,
            timestamp_offset,
        }))
    }

    async fn offset_for_leader_epoch(
        &self,
        req: Request<pb::OffsetForLeaderEpochRequest>,
    ) -> Result<Response<pb::OffsetForLeaderEpochResponse>, Status> {
        let req = req.into_inner();
        let error = |e| Ok(Response::new(pb::OffsetForLeaderEpochResponse { error: Some(e), ..Default::default() }));
        if let Err(reason) = goulette_proto::validate_topic_name(&req.topic) {
            return error(pb::Error::new(pb::ErrorCode::InvalidArgument, reason));
        }
        let replica = match self.partitions.get(&req.topic, req.partition) {
            Some(r) if r.is_leader() => r,
            Some(r) => {
                let hint = r.state().leader.and_then(|l| self.partitions.broker_address(l));
                return error(not_leader(&req.topic, req.partition, hint));
            }
            None => return error(not_leader(&req.topic, req.partition, None)),
        };
        let found = replica.log.end_offset_for_epoch(req.leader_epoch);
        Ok(Response::new(pb::OffsetForLeaderEpochResponse {
            error: None,
            leader_epoch: found.map(|f| f.0),
            end_offset: found.map(|f| f.1),
        }))
    }

    async fn fetch(&self, req: Request<Streaming<pb::FetchRequest>>) -> Result<Response<Self::FetchStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let (partitions, config) = (self.partitions.clone(), self.config.clone());
        tokio::spawn(fetch::serve(partitions, req.into_inner(), tx, config.max_fetch_bytes, self.shutdown.clone()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
