//! The sentinel's gRPC services: `SentinelService` for clients and
//! `SentinelInternal` for brokers.
//!
//! Reads are answered from this sentinel's [`ClusterView`]. Writes run on the
//! leader; a follower forwards them by re-sending the same RPC to the
//! leader's published address with the `goulette-forwarded` key set, and a
//! forwarded request reaching a non-leader fails with `NO_LEADER` rather than
//! bouncing further.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use goulette_proto::FORWARDED_HEADER;
use goulette_proto::v1::sentinel_internal_client::SentinelInternalClient;
use goulette_proto::v1::sentinel_internal_server::SentinelInternal;
use goulette_proto::v1::sentinel_service_client::SentinelServiceClient;
use goulette_proto::v1::sentinel_service_server::SentinelService;
use goulette_proto::v1::{self as pb};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::assignments::{self, Assignments, assignments_of, state_of};
use crate::config::SentinelConfig;
use crate::controller::{Controller, IsrChange};
use crate::election::Role;
use crate::error::{Result, SentinelError};
use crate::groups::Groups;
use crate::model::{BrokerRecord, PartitionRecord, TopicRecord};
use crate::store::Fence;
use crate::view::ClusterView;

/// Shared state behind both services.
pub struct Sentinel {
    config: SentinelConfig,
    controller: Controller,
    groups: Groups,
    views: watch::Receiver<Arc<ClusterView>>,
    role: watch::Receiver<Role>,
    peers: Mutex<HashMap<String, Channel>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinel").field("id", &self.config.id).finish_non_exhaustive()
    }
}

/// Where a write runs.
enum Route {
    Local(Fence),
    Forward(Channel),
}

fn forwarded<T>(req: &Request<T>) -> bool {
    req.metadata().contains_key(FORWARDED_HEADER)
}

fn forward_request<T>(inner: T) -> Request<T> {
    let mut req = Request::new(inner);
    req.metadata_mut().insert(FORWARDED_HEADER, tonic::metadata::MetadataValue::from_static("1"));
    req
}

fn status_to_error(leader: &str, status: Status) -> SentinelError {
    SentinelError::Forward { leader: leader.to_owned(), reason: status.message().to_owned() }
}

impl Sentinel {
    /// Shared state for the services.
    pub fn new(
        config: SentinelConfig,
        controller: Controller,
        groups: Groups,
        views: watch::Receiver<Arc<ClusterView>>,
        role: watch::Receiver<Role>,
        shutdown: CancellationToken,
    ) -> Sentinel {
        Sentinel { config, controller, groups, views, role, peers: Mutex::new(HashMap::new()), shutdown }
    }

    fn view(&self) -> Arc<ClusterView> {
        self.views.borrow().clone()
    }

    fn channel(&self, address: &str) -> Result<Channel> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = peers.get(address) {
            return Ok(c.clone());
        }
        let channel = Channel::from_shared(format!("http://{address}"))
            .map_err(|e| SentinelError::Forward { leader: address.to_owned(), reason: e.to_string() })?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(10))
            .connect_lazy();
        peers.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    fn route(&self, already_forwarded: bool) -> Result<Route> {
        if let Role::Leader(fence) = &*self.role.borrow() {
            return Ok(Route::Local(fence.clone()));
        }
        let view = self.view();
        let leader = view.leader_address().map(str::to_owned);
        match leader {
            _ if already_forwarded => Err(SentinelError::NotLeader { leader }),
            Some(l) if l != self.config.address.to_string() => Ok(Route::Forward(self.channel(&l)?)),
            _ => Err(SentinelError::NoLeader),
        }
    }

    fn leader_address(&self) -> String {
        self.view().leader_address().unwrap_or_default().to_owned()
    }

    /// Serves a request only the sentinel leader can: with `local` when
    /// this sentinel leads, else by sending it on with `forward` (once: a
    /// forwarded request is never forwarded again).
    async fn on_leader<Req, Resp, LocalFut, ForwardFut>(
        &self,
        req: Request<Req>,
        local: impl FnOnce(Fence, Req) -> LocalFut,
        forward: impl FnOnce(Channel, Request<Req>) -> ForwardFut,
    ) -> Result<Resp>
    where
        LocalFut: Future<Output = Result<Resp>>,
        ForwardFut: Future<Output = std::result::Result<Response<Resp>, Status>>,
    {
        let already_forwarded = forwarded(&req);
        let req = req.into_inner();
        match self.route(already_forwarded)? {
            Route::Local(fence) => local(fence, req).await,
            Route::Forward(channel) => {
                let leader = self.leader_address();
                forward(channel, forward_request(req))
                    .await
                    .map(Response::into_inner)
                    .map_err(|st| status_to_error(&leader, st))
            }
        }
    }

    fn brokers(view: &ClusterView) -> Vec<pb::BrokerInfo> {
        let mut out: BTreeMap<u32, pb::BrokerInfo> = view
            .brokers
            .values()
            .map(|b| {
                (
                    b.id,
                    pb::BrokerInfo {
                        id: b.id,
                        address: b.address.clone(),
                        http_address: b.http_address.clone(),
                        rack: b.rack.clone(),
                        state: pb::BrokerState::Up as i32,
                        decommissioned: view.decommissioned.contains(&b.id),
                        max_batch_bytes: b.max_batch_bytes,
                        ..Default::default()
                    },
                )
            })
            .collect();
        for p in view.partitions.values() {
            for &id in &p.replicas {
                let broker = out.entry(id).or_insert_with(|| pb::BrokerInfo {
                    id,
                    state: pb::BrokerState::Down as i32,
                    decommissioned: view.decommissioned.contains(&id),
                    ..Default::default()
                });
                broker.replicas += 1;
                if p.leader == Some(id) {
                    broker.leader_partitions += 1;
                    broker.under_replicated += u32::from(p.isr.len() < p.replicas.len());
                }
            }
        }
        out.into_values().collect()
    }

    fn topic_metadata(view: &ClusterView, name: &str) -> pb::TopicMetadata {
        match view.topics.get(name) {
            Some(t) => pb::TopicMetadata {
                name: name.to_owned(),
                error: None,
                config: Some(t.into()),
                partitions: view.topic_partitions(name).map(|p| state_of(view, p)).collect(),
            },
            None => pb::TopicMetadata {
                name: name.to_owned(),
                error: Some(SentinelError::UnknownTopic(name.to_owned()).to_proto()),
                config: None,
                partitions: Vec::new(),
            },
        }
    }

    async fn create_topic(
        &self,
        req: pb::CreateTopicRequest,
        already_forwarded: bool,
    ) -> Result<pb::CreateTopicResponse> {
        let config = req.config.ok_or_else(|| SentinelError::InvalidArgument("config is required".into()))?;
        let topic = TopicRecord {
            id: 0,
            name: config.name,
            partitions: config.partitions,
            replication_factor: config.replication_factor,
            retention_ms: config.retention_ms,
            retention_bytes: config.retention_bytes,
            unclean_leader_election: config.unclean_leader_election,
            min_insync_replicas: config.min_insync_replicas,
        };
        match self.route(already_forwarded)? {
            Route::Local(fence) => {
                let topic = self.controller.topic_with_defaults(topic)?;
                let partitions = self.controller.create_topic(&fence, &self.view(), topic.clone()).await?;
                // Answer once this sentinel's view shows the topic, so that a
                // describe right after the create finds it.
                let mut views = self.views.clone();
                let shown = |v: &Arc<ClusterView>| v.topics.contains_key(&topic.name);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), views.wait_for(shown)).await;
                Ok(pb::CreateTopicResponse {
                    error: None,
                    topic: Some(pb::TopicMetadata {
                        name: topic.name.clone(),
                        error: None,
                        config: Some((&topic).into()),
                        partitions: partitions.iter().map(pb::PartitionState::from).collect(),
                    }),
                })
            }
            Route::Forward(channel) => {
                let leader = self.leader_address();
                let req = pb::CreateTopicRequest { config: Some((&topic).into()) };
                SentinelServiceClient::new(channel)
                    .create_topic(forward_request(req))
                    .await
                    .map(Response::into_inner)
                    .map_err(|s| status_to_error(&leader, s))
            }
        }
    }

    /// Runs the leader's duties whenever the view or the role changes:
    /// leaders for partitions whose leader is gone.
    pub async fn run_leader_duties(self: Arc<Self>) {
        let mut views = self.views.clone();
        let mut role = self.role.clone();
        loop {
            let fence = role.borrow().fence().cloned();
            if let Some(fence) = fence {
                let view = self.view();
                if let Err(e) = self.controller.reconcile(&fence, &view).await {
                    tracing::warn!(error = %e, "reconciling partition leaders failed; will retry");
                }
                if let Err(e) = self.groups.rebalance(&fence, &view).await {
                    tracing::warn!(error = %e, "rebalancing consumer groups failed; will retry");
                }
            }
            tokio::select! {
                _ = views.changed() => {}
                _ = role.changed() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    fn probe_in_background(self: &Arc<Self>, brokers: Vec<u32>, already_forwarded: bool) {
        if brokers.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            match me.route(already_forwarded) {
                Ok(Route::Local(fence)) => {
                    for id in brokers {
                        match me.controller.probe_broker(&fence, &me.view(), id).await {
                            Ok(true) => {
                                tracing::warn!(broker = id, "broker reported unreachable failed a probe; session ended")
                            }
                            Ok(false) => {}
                            Err(e) => tracing::warn!(broker = id, error = %e, "probing a broker failed"),
                        }
                    }
                }
                Ok(Route::Forward(channel)) => {
                    let req = pb::MetadataRequest { unreachable_brokers: brokers, ..Default::default() };
                    let _ = SentinelServiceClient::new(channel).metadata(forward_request(req)).await;
                }
                Err(e) => tracing::debug!(error = %e, "cannot pass on unreachable brokers"),
            }
        });
    }
}

/// The gRPC face of a [`Sentinel`].
#[derive(Debug, Clone)]
pub struct SentinelGrpc(pub Arc<Sentinel>);

fn error_response<T>(
    e: &SentinelError,
    build: impl FnOnce(pb::Error) -> T,
) -> std::result::Result<Response<T>, Status> {
    Ok(Response::new(build(e.to_proto())))
}

#[tonic::async_trait]
impl SentinelService for SentinelGrpc {
    async fn metadata(
        &self,
        req: Request<pb::MetadataRequest>,
    ) -> std::result::Result<Response<pb::MetadataResponse>, Status> {
        let already_forwarded = forwarded(&req);
        let req = req.into_inner();
        let s = &self.0;
        s.probe_in_background(req.unreachable_brokers.clone(), already_forwarded);
        let mut view = s.view();
        if req.allow_auto_create && s.config.auto_create_topics {
            let missing: Vec<String> = req.topics.iter().filter(|t| !view.topics.contains_key(*t)).cloned().collect();
            for name in &missing {
                let create = pb::CreateTopicRequest {
                    config: Some(pb::TopicConfig { name: name.clone(), ..Default::default() }),
                };
                match s.create_topic(create, already_forwarded).await {
                    Ok(r) => match r.error {
                        Some(e) if e.error_code() != pb::ErrorCode::TopicExists => {
                            return Ok(Response::new(pb::MetadataResponse { error: Some(e), ..Default::default() }));
                        }
                        _ => {}
                    },
                    Err(SentinelError::TopicExists(_)) => {}
                    Err(e) => {
                        return error_response(&e, |e| pb::MetadataResponse { error: Some(e), ..Default::default() });
                    }
                }
                // Wait (briefly) for the new topic to reach this sentinel's view.
                let mut views = s.views.clone();
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(2),
                    views.wait_for(|v| v.topics.contains_key(name.as_str())),
                )
                .await;
                view = s.view();
            }
        }
        let names: Vec<String> = if req.topics.is_empty() { view.topics.keys().cloned().collect() } else { req.topics };
        Ok(Response::new(pb::MetadataResponse {
            error: None,
            brokers: Sentinel::brokers(&view),
            topics: names.iter().map(|n| Sentinel::topic_metadata(&view, n)).collect(),
            metadata_version: view.revision as u64,
        }))
    }

    async fn create_topic(
        &self,
        req: Request<pb::CreateTopicRequest>,
    ) -> std::result::Result<Response<pb::CreateTopicResponse>, Status> {
        let already_forwarded = forwarded(&req);
        match self.0.create_topic(req.into_inner(), already_forwarded).await {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => error_response(&e, |e| pb::CreateTopicResponse { error: Some(e), topic: None }),
        }
    }

    async fn delete_topic(
        &self,
        req: Request<pb::DeleteTopicRequest>,
    ) -> std::result::Result<Response<pb::DeleteTopicResponse>, Status> {
        let s = &self.0;
        let result = s
            .on_leader(
                req,
                |fence, req| async move {
                    s.controller.delete_topic(&fence, &s.view(), &req.name).await?;
                    Ok(pb::DeleteTopicResponse { error: None })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).delete_topic(req).await },
            )
            .await;
        Ok(Response::new(result.unwrap_or_else(|e| pb::DeleteTopicResponse { error: Some(e.to_proto()) })))
    }

    async fn init_producer_id(
        &self,
        req: Request<pb::InitProducerIdRequest>,
    ) -> std::result::Result<Response<pb::InitProducerIdResponse>, Status> {
        let s = &self.0;
        let result = s
            .on_leader(
                req,
                |fence, _| async move {
                    let producer_id = s.controller.allocate_producer_id(&fence).await?;
                    Ok(pb::InitProducerIdResponse { error: None, producer_id })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).init_producer_id(req).await },
            )
            .await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::InitProducerIdResponse { error: Some(e.to_proto()), producer_id: -1 }),
        ))
    }

    async fn decommission_broker(
        &self,
        req: Request<pb::DecommissionBrokerRequest>,
    ) -> std::result::Result<Response<pb::DecommissionBrokerResponse>, Status> {
        let s = &self.0;
        let result = s
            .on_leader(
                req,
                |fence, req| async move {
                    s.controller.decommission(&fence, &s.view(), req.broker_id, req.undo).await?;
                    Ok(pb::DecommissionBrokerResponse { error: None })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).decommission_broker(req).await },
            )
            .await;
        Ok(Response::new(result.unwrap_or_else(|e| pb::DecommissionBrokerResponse { error: Some(e.to_proto()) })))
    }

    async fn join_group(
        &self,
        req: Request<pb::JoinGroupRequest>,
    ) -> std::result::Result<Response<pb::JoinGroupResponse>, Status> {
        let result = self.0.groups.join(req.into_inner()).await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::JoinGroupResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn group_heartbeat(
        &self,
        req: Request<pb::GroupHeartbeatRequest>,
    ) -> std::result::Result<Response<pb::GroupHeartbeatResponse>, Status> {
        let result = self.0.groups.heartbeat(req.into_inner()).await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::GroupHeartbeatResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn leave_group(
        &self,
        req: Request<pb::LeaveGroupRequest>,
    ) -> std::result::Result<Response<pb::LeaveGroupResponse>, Status> {
        let result = self.0.groups.leave(req.into_inner()).await;
        Ok(Response::new(pb::LeaveGroupResponse { error: result.err().map(|e| e.to_proto()) }))
    }

    async fn describe_group(
        &self,
        req: Request<pb::DescribeGroupRequest>,
    ) -> std::result::Result<Response<pb::DescribeGroupResponse>, Status> {
        let req = req.into_inner();
        let result = self.0.groups.describe(&req.group, req.min_generation).await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::DescribeGroupResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn list_member_groups(
        &self,
        _req: Request<pb::ListMemberGroupsRequest>,
    ) -> std::result::Result<Response<pb::ListMemberGroupsResponse>, Status> {
        Ok(Response::new(pb::ListMemberGroupsResponse { error: None, groups: self.0.groups.list() }))
    }

    async fn remove_group(
        &self,
        req: Request<pb::RemoveGroupRequest>,
    ) -> std::result::Result<Response<pb::RemoveGroupResponse>, Status> {
        let s = &self.0;
        let result = s
            .on_leader(
                req,
                |fence, req| async move {
                    s.groups.remove(&fence, &req.group).await?;
                    Ok(pb::RemoveGroupResponse { error: None })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).remove_group(req).await },
            )
            .await;
        Ok(Response::new(result.unwrap_or_else(|e| pb::RemoveGroupResponse { error: Some(e.to_proto()) })))
    }

    async fn cluster_status(
        &self,
        _req: Request<pb::ClusterStatusRequest>,
    ) -> std::result::Result<Response<pb::ClusterStatusResponse>, Status> {
        let view = self.0.view();
        let leader = view.leader_address().map(str::to_owned);
        let sentinels = view
            .sentinels
            .values()
            .map(|s| pb::SentinelInfo {
                id: s.id.clone(),
                address: s.address.clone(),
                leader: leader.as_deref() == Some(&s.address),
                http_address: s.http_address.clone(),
            })
            .collect();
        let offline = view.offline().map(pb::PartitionState::from).collect();
        let under_replicated = view.under_replicated().map(pb::PartitionState::from).collect();
        let error = leader.is_none().then(|| SentinelError::NoLeader.to_proto());
        Ok(Response::new(pb::ClusterStatusResponse {
            error,
            sentinels,
            brokers: Sentinel::brokers(&view),
            offline_partitions: offline,
            metadata_version: view.revision as u64,
            under_replicated_partitions: under_replicated,
            answered_by: self.0.config.id.clone(),
            etcd_reachable: crate::etcd_metrics::etcd_reachable(),
        }))
    }
}

#[tonic::async_trait]
impl SentinelInternal for SentinelGrpc {
    async fn register_broker(
        &self,
        req: Request<pb::RegisterBrokerRequest>,
    ) -> std::result::Result<Response<pb::RegisterBrokerResponse>, Status> {
        let s = &self.0;
        let result = s
            .on_leader(
                req,
                |fence, req| async move {
                    let record = BrokerRecord {
                        id: req.broker_id,
                        address: req.address,
                        http_address: req.http_address,
                        rack: req.rack,
                        max_batch_bytes: req.max_batch_bytes,
                    };
                    let session = s.controller.register_broker(&fence, record).await?;
                    Ok(pb::RegisterBrokerResponse {
                        error: None,
                        session_id: session,
                        heartbeat_interval_ms: s.config.heartbeat_interval.as_millis() as u64,
                        session_timeout_ms: s.config.session_timeout.as_millis() as u64,
                    })
                },
                |channel, req| async move { SentinelInternalClient::new(channel).register_broker(req).await },
            )
            .await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::RegisterBrokerResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn controlled_shutdown(
        &self,
        req: Request<pb::ControlledShutdownRequest>,
    ) -> std::result::Result<Response<pb::ControlledShutdownResponse>, Status> {
        let s = &self.0;
        let result = s
            .on_leader(
                req,
                |fence, req| async move {
                    if req.finished {
                        s.controller.deregister(&fence, req.broker_id, req.session_id).await?;
                        return Ok(pb::ControlledShutdownResponse::default());
                    }
                    let view = s.view();
                    let handover = s.controller.controlled_shutdown(&fence, &view, req.broker_id).await?;
                    let states = |list: &[PartitionRecord]| list.iter().map(|p| state_of(&view, p)).collect();
                    Ok(pb::ControlledShutdownResponse {
                        error: None,
                        remaining: states(&handover.remaining),
                        stranded: states(&handover.stranded),
                    })
                },
                |channel, req| async move { SentinelInternalClient::new(channel).controlled_shutdown(req).await },
            )
            .await;
        Ok(Response::new(
            result
                .unwrap_or_else(|e| pb::ControlledShutdownResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn report_replica_failure(
        &self,
        req: Request<pb::ReportReplicaFailureRequest>,
    ) -> std::result::Result<Response<pb::ReportReplicaFailureResponse>, Status> {
        let s = &self.0;
        let result = s
            .on_leader(
                req,
                |fence, req| async move {
                    let view = s.view();
                    let moved = s
                        .controller
                        .replica_failed(&fence, &view, req.broker_id, &req.topic, req.partition, &req.reason)
                        .await?;
                    let state = view.partitions.get(&(req.topic.clone(), req.partition)).map(|p| state_of(&view, p));
                    Ok(pb::ReportReplicaFailureResponse { error: None, moved, state })
                },
                |channel, req| async move { SentinelInternalClient::new(channel).report_replica_failure(req).await },
            )
            .await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::ReportReplicaFailureResponse {
                error: Some(e.to_proto()),
                ..Default::default()
            }),
        ))
    }

    /// Any sentinel refreshes the session lease itself (leases are etcd's,
    /// not the leader's), so a broker's session survives a sentinel failover.
    async fn broker_heartbeat(
        &self,
        req: Request<pb::BrokerHeartbeatRequest>,
    ) -> std::result::Result<Response<pb::BrokerHeartbeatResponse>, Status> {
        let req = req.into_inner();
        let result = self.0.controller.heartbeat(req.broker_id, req.session_id).await;
        Ok(Response::new(pb::BrokerHeartbeatResponse { error: result.err().map(|e| e.to_proto()) }))
    }

    async fn alter_isr(
        &self,
        req: Request<pb::AlterIsrRequest>,
    ) -> std::result::Result<Response<pb::AlterIsrResponse>, Status> {
        let already_forwarded = forwarded(&req);
        let req = req.into_inner();
        let s = &self.0;
        let result = match s.route(already_forwarded) {
            Ok(Route::Local(fence)) => {
                let view = s.view();
                let change = IsrChange {
                    broker: req.broker_id,
                    topic: req.topic.clone(),
                    partition: req.partition,
                    leader_epoch: req.leader_epoch,
                    isr: req.isr,
                };
                s.controller
                    .alter_isr(&fence, &view, change)
                    .await
                    .map(|(state, revision)| pb::AlterIsrResponse {
                        error: None,
                        state: Some(pb::PartitionState { revision: revision as u64, ..(&state).into() }),
                    })
                    .map_err(|e| {
                        let current =
                            view.partitions.get(&(req.topic.clone(), req.partition)).map(|p| state_of(&view, p));
                        (e, current)
                    })
            }
            Ok(Route::Forward(channel)) => {
                let leader = s.leader_address();
                SentinelInternalClient::new(channel)
                    .alter_isr(forward_request(req))
                    .await
                    .map(Response::into_inner)
                    .map_err(|st| (status_to_error(&leader, st), None))
            }
            Err(e) => Err((e, None)),
        };
        Ok(Response::new(result.unwrap_or_else(|(e, state)| pb::AlterIsrResponse { error: Some(e.to_proto()), state })))
    }

    type WatchAssignmentsStream = ReceiverStream<std::result::Result<pb::AssignmentUpdate, Status>>;

    async fn watch_assignments(
        &self,
        req: Request<pb::WatchAssignmentsRequest>,
    ) -> std::result::Result<Response<Self::WatchAssignmentsStream>, Status> {
        let req = req.into_inner();
        let broker = req.broker_id;
        let held = req.held;
        let (tx, rx) = mpsc::channel(16);
        let mut views = self.0.views.clone();
        let shutdown = self.0.shutdown.clone();
        tokio::spawn(async move {
            // Never send a snapshot of a view not yet read from etcd: an
            // empty snapshot would close every replica of the broker.
            tokio::select! {
                loaded = views.wait_for(|v| v.revision > 0) => if loaded.is_err() { return },
                _ = tx.closed() => return,
                _ = shutdown.cancelled() => return,
            }
            let mut sent: Option<Assignments> = None;
            let mut sent_brokers = Vec::new();
            loop {
                let view = views.borrow_and_update().clone();
                let now = assignments_of(&view, broker);
                let brokers = Sentinel::brokers(&view);
                let update = match &sent {
                    None => Some(assignments::snapshot(&view, broker, &now, &held, brokers.clone())),
                    Some(before) => {
                        assignments::delta(&view, broker, before, &now, brokers != sent_brokers, brokers.clone())
                    }
                };
                if let Some(update) = update
                    && tx.send(Ok(update)).await.is_err()
                {
                    return; // the broker hung up
                }
                sent = Some(now);
                sent_brokers = brokers;
                tokio::select! {
                    changed = views.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
