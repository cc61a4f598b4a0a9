//! The broker's gRPC face: `BrokerService` (produce and fetch streams).

use std::sync::Arc;

use goulette_proto::v1::{self as pb, broker_service_server::BrokerService};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::config::BrokerConfig;
use crate::partition::Partitions;
use crate::{fetch, produce};

/// Serves produce and fetch for the partitions this broker leads.
#[derive(Debug, Clone)]
pub struct BrokerGrpc {
    pub partitions: Arc<Partitions>,
    pub config: Arc<BrokerConfig>,
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
        ));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn fetch(&self, req: Request<Streaming<pb::FetchRequest>>) -> Result<Response<Self::FetchStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let (partitions, config) = (self.partitions.clone(), self.config.clone());
        tokio::spawn(fetch::serve(partitions, req.into_inner(), tx, config.max_fetch_bytes));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
