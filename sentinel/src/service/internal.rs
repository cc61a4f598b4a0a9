//! `SentinelInternal`: what brokers ask (sessions, controlled shutdown,
//! replica failures, ISR changes) and their assignment streams.

use goulette_proto::v1::sentinel_internal_client::SentinelInternalClient;
use goulette_proto::v1::sentinel_internal_server::SentinelInternal;
use goulette_proto::v1::{self as pb};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::forward::{Route, forward_request, forwarded, status_to_error};
use super::{Sentinel, SentinelGrpc};
use crate::assignments::{AssignmentStream, state_of};
use crate::controller::partitions::IsrChange;
use crate::model::{BrokerRecord, PartitionRecord};

#[tonic::async_trait]
impl SentinelInternal for SentinelGrpc {
    async fn register_broker(
        &self,
        req: Request<pb::RegisterBrokerRequest>,
    ) -> std::result::Result<Response<pb::RegisterBrokerResponse>, Status> {
        let s = &self.0;
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move {
                    let record = BrokerRecord {
                        id: req.broker_id,
                        address: req.address,
                        http_address: req.http_address,
                        rack: req.rack,
                        max_batch_bytes: req.max_batch_bytes,
                        kafka_address: req.kafka_address,
                        default_retention_ms: req.default_retention_ms,
                    };
                    let (session, warning) = s.controller.register_broker(&fence, record, &req.data_dir_id).await?;
                    Ok(pb::RegisterBrokerResponse {
                        error: None,
                        data_dir_warning: warning.unwrap_or_default(),
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
            .forward
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
            .forward
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
        let result = match s.forward.route(already_forwarded) {
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
                let leader = s.forward.leader_address();
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

    type WatchSecurityStream = ReceiverStream<std::result::Result<pb::SecurityUpdate, Status>>;

    async fn watch_security(
        &self,
        _req: Request<pb::WatchSecurityRequest>,
    ) -> std::result::Result<Response<Self::WatchSecurityStream>, Status> {
        Ok(Response::new(self.0.watch_security()))
    }

    async fn security_applied(
        &self,
        req: Request<pb::SecurityAppliedRequest>,
    ) -> std::result::Result<Response<pb::SecurityAppliedResponse>, Status> {
        let s = &self.0;
        let result = s
            .forward
            .on_leader(
                req,
                |_fence, req| async move {
                    s.security_acks.applied(req.broker_id, req.revision);
                    Ok(pb::SecurityAppliedResponse { error: None })
                },
                |channel, req| async move { SentinelInternalClient::new(channel).security_applied(req).await },
            )
            .await;
        Ok(Response::new(result.unwrap_or_else(|e| pb::SecurityAppliedResponse { error: Some(e.to_proto()) })))
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
            let mut stream = AssignmentStream::new(broker, held);
            loop {
                let view = views.borrow_and_update().clone();
                if let Some(update) = stream.next(&view, Sentinel::brokers(&view))
                    && tx.send(Ok(update)).await.is_err()
                {
                    return; // the broker hung up
                }
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
