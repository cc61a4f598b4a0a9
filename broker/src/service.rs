//! The broker's gRPC face: `BrokerService` (produce and fetch streams).

use std::sync::Arc;

use goulette_proto::v1::{self as pb, broker_service_server::BrokerService};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use goulette_auth::acl::model::CLUSTER_NAME;
use goulette_auth::acl::{Caller, Operation, ResourceType};

use crate::config::BrokerConfig;
use crate::error::{not_leader, storage_error};
use crate::partition::{Partitions, Replica};
use crate::security::acls::Check;
use crate::{fetch, produce};

/// Serves produce and fetch for the partitions this broker leads.
#[derive(Debug, Clone)]
pub struct BrokerGrpc {
    pub partitions: Arc<Partitions>,
    pub config: Arc<BrokerConfig>,
    /// Ends every stream on shutdown (graceful shutdown waits for them).
    pub shutdown: tokio_util::sync::CancellationToken,
    pub offsets: Arc<crate::offsets::Coordinator>,
    /// The memory all fetch streams may hold (`fetch_budget`).
    pub fetch_budget: crate::fetch_budget::FetchBudget,
    /// The Kafka consumer groups this broker coordinates.
    pub kafka_groups: Arc<crate::kafka::groups::Groups>,
    /// Users and ACLs.
    pub security: Arc<crate::security::Security>,
}

impl BrokerGrpc {
    /// Who makes `req`, as the ACLs see it: unchecked (as a server) unless
    /// gRPC requests are checked (`--acl-enabled` with `--auth-required`).
    fn caller<T>(&self, req: &Request<T>) -> Caller {
        if self.config.auth.grpc_acls() { Caller::of(req) } else { Caller::server() }
    }

    /// `Ok` when `caller` may do `operation` on `resource_type` `name`.
    fn permit(
        &self,
        caller: &Caller,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<(), pb::Error> {
        permit(&self.security, caller, operation, resource_type, name)
    }

    /// The replica of a partition this broker leads, or the error to answer:
    /// `INVALID_ARGUMENT` for a bad topic name, `NOT_LEADER` (with the
    /// leader's address when known) otherwise.
    fn led_replica(&self, topic: &str, partition: u32) -> Result<Arc<Replica>, pb::Error> {
        goulette_proto::validate_topic_name(topic).map_err(|r| pb::Error::new(pb::ErrorCode::InvalidArgument, r))?;
        match self.partitions.get(topic, partition) {
            Some(r) if r.is_leader() => Ok(r),
            Some(r) => {
                Err(not_leader(topic, partition, r.state().leader.and_then(|l| self.partitions.broker_address(l))))
            }
            None => Err(self.partitions.unavailable(topic, partition)),
        }
    }
}

/// `Ok` when `caller` may do `operation` on `resource_type` `name`, else
/// the NOT_AUTHORIZED error to answer.
fn permit(
    security: &crate::security::Security,
    caller: &Caller,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> Result<(), pb::Error> {
    if security.acls.allows(caller, operation, resource_type, name) {
        return Ok(());
    }
    let what = format!("{} may not {} {} {name}", caller.principal, operation.name(), resource_type.name());
    Err(pb::Error::new(pb::ErrorCode::NotAuthorized, what))
}

#[tonic::async_trait]
impl BrokerService for BrokerGrpc {
    type ProduceStream = ReceiverStream<Result<pb::ProduceResponse, Status>>;
    type FetchStream = crate::fetch_budget::ResponseStream;

    async fn produce(
        &self,
        req: Request<Streaming<pb::ProduceRequest>>,
    ) -> Result<Response<Self::ProduceStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        let (partitions, config) = (self.partitions.clone(), self.config.clone());
        let (security, caller) = (self.security.clone(), self.caller(&req));
        let writable =
            Box::new(move |topic: &str, ()| permit(&security, &caller, Operation::Write, ResourceType::Topic, topic));
        let stream = produce::ProduceStream::new(partitions, &config, self.shutdown.clone(), writable);
        tokio::spawn(stream.run(req.into_inner(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn list_offsets(
        &self,
        req: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        let caller = self.caller(&req);
        let req = req.into_inner();
        let error = |e| Ok(Response::new(pb::ListOffsetsResponse { error: Some(e), ..Default::default() }));
        if let Err(e) = self.permit(&caller, Operation::Describe, ResourceType::Topic, &req.topic) {
            return error(e);
        }
        let replica = match self.led_replica(&req.topic, req.partition) {
            Ok(r) => r,
            Err(e) => return error(e),
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
        let caller = self.caller(&req);
        let req = req.into_inner();
        let error = |e| Ok(Response::new(pb::OffsetForLeaderEpochResponse { error: Some(e), ..Default::default() }));
        if let Err(e) = self.permit(&caller, Operation::Describe, ResourceType::Topic, &req.topic) {
            return error(e);
        }
        let replica = match self.led_replica(&req.topic, req.partition) {
            Ok(r) => r,
            Err(e) => return error(e),
        };
        let found = replica.log.end_offset_for_epoch(req.leader_epoch);
        Ok(Response::new(pb::OffsetForLeaderEpochResponse {
            error: None,
            leader_epoch: found.map(|f| f.0),
            end_offset: found.map(|f| f.1),
        }))
    }

    async fn commit_offsets(
        &self,
        req: Request<pb::CommitOffsetsRequest>,
    ) -> Result<Response<pb::CommitOffsetsResponse>, Status> {
        if let Err(e) = self.permit(&self.caller(&req), Operation::Read, ResourceType::Group, &req.get_ref().group) {
            return Ok(Response::new(pb::CommitOffsetsResponse { error: Some(e) }));
        }
        Ok(Response::new(self.offsets.commit(req.into_inner()).await))
    }

    async fn fetch_offsets(
        &self,
        req: Request<pb::FetchOffsetsRequest>,
    ) -> Result<Response<pb::FetchOffsetsResponse>, Status> {
        if let Err(e) = self.permit(&self.caller(&req), Operation::Describe, ResourceType::Group, &req.get_ref().group)
        {
            return Ok(Response::new(pb::FetchOffsetsResponse { error: Some(e), ..Default::default() }));
        }
        Ok(Response::new(self.offsets.fetch(req.into_inner()).await))
    }

    async fn list_groups(
        &self,
        req: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let caller = self.caller(&req);
        let mut answer = self.offsets.list_groups(req.into_inner()).await;
        if self.permit(&caller, Operation::Describe, ResourceType::Cluster, CLUSTER_NAME).is_err() {
            answer.groups.retain(|g| self.permit(&caller, Operation::Describe, ResourceType::Group, g).is_ok());
        }
        Ok(Response::new(answer))
    }

    async fn delete_group(
        &self,
        req: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        if let Err(e) = self.permit(&self.caller(&req), Operation::Delete, ResourceType::Group, &req.get_ref().group) {
            return Ok(Response::new(pb::DeleteGroupResponse { error: Some(e) }));
        }
        Ok(Response::new(self.offsets.delete_group(req.into_inner()).await))
    }

    async fn describe_kafka_group(
        &self,
        req: Request<pb::DescribeKafkaGroupRequest>,
    ) -> Result<Response<pb::DescribeKafkaGroupResponse>, Status> {
        if let Err(e) = self.permit(&self.caller(&req), Operation::Describe, ResourceType::Group, &req.get_ref().group)
        {
            return Ok(Response::new(pb::DescribeKafkaGroupResponse { error: Some(e), ..Default::default() }));
        }
        Ok(Response::new(crate::kafka::groups::native_view::describe(&self.kafka_groups, &req.into_inner())))
    }

    async fn replica_problems(
        &self,
        req: Request<pb::ReplicaProblemsRequest>,
    ) -> Result<Response<pb::ReplicaProblemsResponse>, Status> {
        if let Err(e) = self.permit(&self.caller(&req), Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
            return Err(Status::permission_denied(e.message));
        }
        Ok(Response::new(pb::ReplicaProblemsResponse { problems: self.partitions.problems() }))
    }

    async fn fetch(&self, req: Request<Streaming<pb::FetchRequest>>) -> Result<Response<Self::FetchStream>, Status> {
        let (out, responses) = crate::fetch_budget::channel(self.config.fetch_send_timeout);
        let (partitions, budget) = (self.partitions.clone(), self.fetch_budget.clone());
        let max = self.config.max_fetch_bytes;
        let (security, caller) = (self.security.clone(), self.caller(&req));
        // Consumers need READ on the topic; followers are servers (Kafka's
        // CLUSTER_ACTION), so a user cannot pose as a replica.
        let readable: Check<bool> = Box::new(move |topic: &str, replica: bool| match replica {
            true => permit(&security, &caller, Operation::ClusterAction, ResourceType::Cluster, CLUSTER_NAME),
            false => permit(&security, &caller, Operation::Read, ResourceType::Topic, topic),
        });
        tokio::spawn(fetch::serve(partitions, req.into_inner(), out, budget, max, self.shutdown.clone(), readable));
        Ok(Response::new(responses))
    }
}
