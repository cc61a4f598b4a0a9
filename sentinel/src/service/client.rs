//! `SentinelService`: what clients ask (metadata, topic admin, producer
//! ids, decommissions, consumer groups, cluster status).

use goulette_proto::v1::sentinel_service_client::SentinelServiceClient;
use goulette_proto::v1::sentinel_service_server::SentinelService;
use goulette_proto::v1::{self as pb};
use tonic::{Request, Response, Status};

use super::audit::{self, Audit};
use super::forward::forwarded;
use super::{Sentinel, SentinelGrpc};
use crate::error::SentinelError;
use goulette_auth::acl::model::CLUSTER_NAME;
use goulette_auth::acl::{Operation, ResourceType};

/// `e` carried in the response's `error` field: the RPC itself succeeds.
/// Answers `$build(error)` unless `$caller` may `$op` on `$rt` `$name`.
macro_rules! permit_or_refuse {
    ($s:expr, $caller:expr, $op:expr, $rt:expr, $name:expr, $build:expr) => {
        if let Err(e) = $s.permit(&$caller, $op, $rt, $name) {
            return error_response(&e, $build);
        }
    };
}

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
        let s = &self.0;
        let caller = s.caller(&req);
        let req = req.into_inner();
        s.probe_in_background(req.unreachable_brokers.clone(), already_forwarded);
        let mut view = s.view();
        if req.allow_auto_create && s.config.auto_create_topics {
            // Created only with CREATE on the cluster or the topic.
            let may_create = |name: &String| {
                s.may(&caller, Operation::Create, ResourceType::Cluster, CLUSTER_NAME)
                    || s.may(&caller, Operation::Create, ResourceType::Topic, name)
            };
            let missing: Vec<String> = req
                .topics
                .iter()
                .filter(|t| !view.topics.contains_key(*t))
                .filter(|t| may_create(t))
                .cloned()
                .collect();
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
        // Topics without DESCRIBE: left out of a listing, refused when named.
        let describable = |n: &String| s.may(&caller, Operation::Describe, ResourceType::Topic, n);
        let topics = match req.topics.is_empty() {
            true => view.topics.keys().filter(|n| describable(n)).map(|n| Sentinel::topic_metadata(&view, n)).collect(),
            false => req
                .topics
                .iter()
                .map(|n| match s.permit(&caller, Operation::Describe, ResourceType::Topic, n) {
                    Ok(()) => Sentinel::topic_metadata(&view, n),
                    Err(e) => pb::TopicMetadata { name: n.clone(), error: Some(e.to_proto()), ..Default::default() },
                })
                .collect(),
        };
        Ok(Response::new(pb::MetadataResponse {
            error: None,
            brokers: Sentinel::brokers(&view),
            topics,
            metadata_version: view.revision as u64,
        }))
    }

    async fn create_topic(
        &self,
        req: Request<pb::CreateTopicRequest>,
    ) -> std::result::Result<Response<pb::CreateTopicResponse>, Status> {
        // CREATE on the cluster, or on the topic.
        let caller = self.0.caller(&req);
        if !self.0.may(&caller, Operation::Create, ResourceType::Cluster, CLUSTER_NAME) {
            permit_or_refuse!(
                self.0,
                caller,
                Operation::Create,
                ResourceType::Topic,
                req.get_ref().config.as_ref().map(|c| c.name.as_str()).unwrap_or_default(),
                |e| pb::CreateTopicResponse { error: Some(e), topic: None }
            );
        }
        let already_forwarded = forwarded(&req);
        let audit = Audit::of(&req);
        let name = req.get_ref().config.as_ref().map(|c| c.name.clone()).unwrap_or_default();
        let result = self.0.create_topic(req.into_inner(), already_forwarded).await;
        audit::record(&audit, "create-topic", &name, &result);
        match result {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => error_response(&e, |e| pb::CreateTopicResponse { error: Some(e), topic: None }),
        }
    }

    async fn delete_topic(
        &self,
        req: Request<pb::DeleteTopicRequest>,
    ) -> std::result::Result<Response<pb::DeleteTopicResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::Delete,
            ResourceType::Topic,
            &req.get_ref().name,
            |e| pb::DeleteTopicResponse { error: Some(e) }
        );
        let s = &self.0;
        let (audit, name) = (Audit::of(&req), req.get_ref().name.clone());
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move {
                    s.controller.delete_topic(&fence, &s.view(), &req.name).await?;
                    Ok(pb::DeleteTopicResponse { error: None })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).delete_topic(req).await },
            )
            .await;
        audit::record(&audit, "delete-topic", &name, &result);
        Ok(Response::new(result.unwrap_or_else(|e| pb::DeleteTopicResponse { error: Some(e.to_proto()) })))
    }

    async fn alter_topic(
        &self,
        req: Request<pb::AlterTopicRequest>,
    ) -> std::result::Result<Response<pb::AlterTopicResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::AlterConfigs,
            ResourceType::Topic,
            &req.get_ref().name,
            |e| pb::AlterTopicResponse { error: Some(e), topic: None }
        );
        let s = &self.0;
        let (audit, name) = (Audit::of(&req), req.get_ref().name.clone());
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move {
                    let topic = s.alter_topic_here(fence, req).await?;
                    Ok(pb::AlterTopicResponse { error: None, topic: Some(topic) })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).alter_topic(req).await },
            )
            .await;
        audit::record(&audit, "alter-topic", &name, &result);
        Ok(Response::new(result.unwrap_or_else(|e| pb::AlterTopicResponse { error: Some(e.to_proto()), topic: None })))
    }

    async fn add_partitions(
        &self,
        req: Request<pb::AddPartitionsRequest>,
    ) -> std::result::Result<Response<pb::AddPartitionsResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::Alter,
            ResourceType::Topic,
            &req.get_ref().name,
            |e| pb::AddPartitionsResponse { error: Some(e), topic: None }
        );
        let s = &self.0;
        let audit = Audit::of(&req);
        let what = format!("{} to {} partitions", req.get_ref().name, req.get_ref().total);
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move {
                    let topic = s.add_partitions_here(fence, req).await?;
                    Ok(pb::AddPartitionsResponse { error: None, topic: Some(topic) })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).add_partitions(req).await },
            )
            .await;
        audit::record(&audit, "add-partitions", &what, &result);
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::AddPartitionsResponse { error: Some(e.to_proto()), topic: None }),
        ))
    }

    async fn init_producer_id(
        &self,
        req: Request<pb::InitProducerIdRequest>,
    ) -> std::result::Result<Response<pb::InitProducerIdResponse>, Status> {
        let s = &self.0;
        let result = s
            .forward
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
        permit_or_refuse!(self.0, self.0.caller(&req), Operation::Alter, ResourceType::Cluster, CLUSTER_NAME, |e| {
            pb::DecommissionBrokerResponse { error: Some(e) }
        });
        let s = &self.0;
        let audit = Audit::of(&req);
        let (id, undo) = (req.get_ref().broker_id, req.get_ref().undo);
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move {
                    s.controller.decommission(&fence, &s.view(), req.broker_id, req.undo).await?;
                    Ok(pb::DecommissionBrokerResponse { error: None })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).decommission_broker(req).await },
            )
            .await;
        let event = if undo { "recommission-broker" } else { "decommission-broker" };
        audit::record(&audit, event, &format!("broker {id}"), &result);
        Ok(Response::new(result.unwrap_or_else(|e| pb::DecommissionBrokerResponse { error: Some(e.to_proto()) })))
    }

    async fn join_group(
        &self,
        req: Request<pb::JoinGroupRequest>,
    ) -> std::result::Result<Response<pb::JoinGroupResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::Read,
            ResourceType::Group,
            &req.get_ref().group,
            |e| pb::JoinGroupResponse { error: Some(e), ..Default::default() }
        );
        let result = self.0.groups.join(req.into_inner()).await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::JoinGroupResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn group_heartbeat(
        &self,
        req: Request<pb::GroupHeartbeatRequest>,
    ) -> std::result::Result<Response<pb::GroupHeartbeatResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::Read,
            ResourceType::Group,
            &req.get_ref().group,
            |e| pb::GroupHeartbeatResponse { error: Some(e), ..Default::default() }
        );
        let result = self.0.groups.heartbeat(req.into_inner()).await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::GroupHeartbeatResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn leave_group(
        &self,
        req: Request<pb::LeaveGroupRequest>,
    ) -> std::result::Result<Response<pb::LeaveGroupResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::Read,
            ResourceType::Group,
            &req.get_ref().group,
            |e| pb::LeaveGroupResponse { error: Some(e) }
        );
        let result = self.0.groups.leave(req.into_inner()).await;
        Ok(Response::new(pb::LeaveGroupResponse { error: result.err().map(|e| e.to_proto()) }))
    }

    async fn describe_group(
        &self,
        req: Request<pb::DescribeGroupRequest>,
    ) -> std::result::Result<Response<pb::DescribeGroupResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::Describe,
            ResourceType::Group,
            &req.get_ref().group,
            |e| pb::DescribeGroupResponse { error: Some(e), ..Default::default() }
        );
        let req = req.into_inner();
        let result = self.0.groups.describe(&req.group, req.min_generation).await;
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::DescribeGroupResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn list_member_groups(
        &self,
        req: Request<pb::ListMemberGroupsRequest>,
    ) -> std::result::Result<Response<pb::ListMemberGroupsResponse>, Status> {
        let (s, caller) = (&self.0, self.0.caller(&req));
        let mut groups = s.groups.list();
        if !s.may(&caller, Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
            groups.retain(|g| s.may(&caller, Operation::Describe, ResourceType::Group, g));
        }
        Ok(Response::new(pb::ListMemberGroupsResponse { error: None, groups }))
    }

    async fn alter_group(
        &self,
        req: Request<pb::AlterGroupRequest>,
    ) -> std::result::Result<Response<pb::AlterGroupResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::AlterConfigs,
            ResourceType::Group,
            &req.get_ref().group,
            |e| pb::AlterGroupResponse { error: Some(e) }
        );
        let s = &self.0;
        let (audit, group) = (Audit::of(&req), req.get_ref().group.clone());
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move {
                    s.groups.alter(&fence, &req.group, &req.settings.unwrap_or_default()).await?;
                    Ok(pb::AlterGroupResponse { error: None })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).alter_group(req).await },
            )
            .await;
        audit::record(&audit, "alter-group", &group, &result);
        Ok(Response::new(result.unwrap_or_else(|e| pb::AlterGroupResponse { error: Some(e.to_proto()) })))
    }

    async fn remove_group(
        &self,
        req: Request<pb::RemoveGroupRequest>,
    ) -> std::result::Result<Response<pb::RemoveGroupResponse>, Status> {
        permit_or_refuse!(
            self.0,
            self.0.caller(&req),
            Operation::Delete,
            ResourceType::Group,
            &req.get_ref().group,
            |e| pb::RemoveGroupResponse { error: Some(e) }
        );
        let s = &self.0;
        let (audit, group) = (Audit::of(&req), req.get_ref().group.clone());
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move {
                    s.groups.remove(&fence, &req.group).await?;
                    Ok(pb::RemoveGroupResponse { error: None })
                },
                |channel, req| async move { SentinelServiceClient::new(channel).remove_group(req).await },
            )
            .await;
        audit::record(&audit, "delete-group", &group, &result);
        Ok(Response::new(result.unwrap_or_else(|e| pb::RemoveGroupResponse { error: Some(e.to_proto()) })))
    }

    async fn alter_user(
        &self,
        req: Request<pb::AlterUserRequest>,
    ) -> std::result::Result<Response<pb::AlterUserResponse>, Status> {
        permit_or_refuse!(self.0, self.0.caller(&req), Operation::Alter, ResourceType::Cluster, CLUSTER_NAME, |e| {
            pb::AlterUserResponse { error: Some(e), ..Default::default() }
        });
        let s = &self.0;
        let audit = Audit::of(&req);
        let (name, event) = (req.get_ref().name.clone(), super::users::what(req.get_ref()));
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move { s.alter_user_here(fence, req).await },
                |channel, req| async move { SentinelServiceClient::new(channel).alter_user(req).await },
            )
            .await;
        audit::record(&audit, event, &name, &result);
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::AlterUserResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> std::result::Result<Response<pb::ListUsersResponse>, Status> {
        permit_or_refuse!(self.0, self.0.caller(&req), Operation::Describe, ResourceType::Cluster, CLUSTER_NAME, |e| {
            pb::ListUsersResponse { error: Some(e), ..Default::default() }
        });
        Ok(Response::new(self.0.list_users(&req.into_inner())))
    }

    async fn create_acls(
        &self,
        req: Request<pb::CreateAclsRequest>,
    ) -> std::result::Result<Response<pb::CreateAclsResponse>, Status> {
        permit_or_refuse!(self.0, self.0.caller(&req), Operation::Alter, ResourceType::Cluster, CLUSTER_NAME, |e| {
            pb::CreateAclsResponse { error: Some(e), ..Default::default() }
        });
        let s = &self.0;
        let audit = Audit::of(&req);
        let count = req.get_ref().acls.len();
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move { s.create_acls_here(fence, req).await },
                |channel, req| async move { SentinelServiceClient::new(channel).create_acls(req).await },
            )
            .await;
        audit::record(&audit, "create-acls", &format!("{count} bindings"), &result);
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::CreateAclsResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn delete_acls(
        &self,
        req: Request<pb::DeleteAclsRequest>,
    ) -> std::result::Result<Response<pb::DeleteAclsResponse>, Status> {
        permit_or_refuse!(self.0, self.0.caller(&req), Operation::Alter, ResourceType::Cluster, CLUSTER_NAME, |e| {
            pb::DeleteAclsResponse { error: Some(e), ..Default::default() }
        });
        let s = &self.0;
        let audit = Audit::of(&req);
        let result = s
            .forward
            .on_leader(
                req,
                |fence, req| async move { s.delete_acls_here(fence, req).await },
                |channel, req| async move { SentinelServiceClient::new(channel).delete_acls(req).await },
            )
            .await;
        let what = result.as_ref().map(|r| format!("{} bindings", r.deleted.len())).unwrap_or_default();
        audit::record(&audit, "delete-acls", &what, &result);
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::DeleteAclsResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn describe_acls(
        &self,
        req: Request<pb::DescribeAclsRequest>,
    ) -> std::result::Result<Response<pb::DescribeAclsResponse>, Status> {
        permit_or_refuse!(self.0, self.0.caller(&req), Operation::Describe, ResourceType::Cluster, CLUSTER_NAME, |e| {
            pb::DescribeAclsResponse { error: Some(e), ..Default::default() }
        });
        let result = self.0.describe_acls(req.get_ref());
        Ok(Response::new(
            result.unwrap_or_else(|e| pb::DescribeAclsResponse { error: Some(e.to_proto()), ..Default::default() }),
        ))
    }

    async fn cluster_status(
        &self,
        req: Request<pb::ClusterStatusRequest>,
    ) -> std::result::Result<Response<pb::ClusterStatusResponse>, Status> {
        permit_or_refuse!(self.0, self.0.caller(&req), Operation::Describe, ResourceType::Cluster, CLUSTER_NAME, |e| {
            pb::ClusterStatusResponse { error: Some(e), ..Default::default() }
        });
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
