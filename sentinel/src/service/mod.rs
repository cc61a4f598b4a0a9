//! The sentinel's gRPC services, over the state they share ([`Sentinel`]):
//!
//! - `client.rs`: `SentinelService`, what clients ask;
//! - `internal.rs`: `SentinelInternal`, what brokers ask, and their
//!   assignment streams;
//! - `forward.rs`: where a leader-only request runs, and its forwarding;
//! - `topic_changes.rs`: changing a topic's settings and partition count;
//! - `users.rs`: users, and the security stream brokers follow;
//! - `login.rs`: `AuthService`, logins that issue gRPC tokens;
//! - `acls.rs`: ACL bindings;
//! - `authorize.rs`: the ACL checks of the client API.
//!
//! Reads are answered from this sentinel's [`ClusterView`]. Writes run on the
//! leader; a follower forwards them to it, once.

use std::collections::BTreeMap;
use std::sync::Arc;

use goulette_proto::v1::sentinel_service_client::SentinelServiceClient;
use goulette_proto::v1::{self as pb};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::Response;

use crate::assignments::state_of;
use crate::config::SentinelConfig;
use crate::controller::Controller;
use crate::election::Role;
use crate::error::{Result, SentinelError};
use crate::groups::Groups;
use crate::model::TopicRecord;
use crate::view::ClusterView;

mod acls;
mod audit;
mod authorize;
mod client;
mod forward;
mod internal;
mod login;
mod topic_changes;
mod users;

use forward::{Forwarder, Route, forward_request, status_to_error};

/// Shared state behind both services.
pub struct Sentinel {
    config: SentinelConfig,
    controller: Arc<Controller>,
    groups: Arc<Groups>,
    views: watch::Receiver<Arc<ClusterView>>,
    /// Where leader-only requests run (it follows the role).
    forward: Forwarder,
    /// The security updates brokers applied (used while leading).
    security_acks: crate::security_acks::SecurityAcks,
    /// Logins on the gRPC API.
    logins: login::Logins,
    /// The index of the ACLs, for the checks of `authorize.rs`.
    acl_index: authorize::AclIndex,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sentinel").field("id", &self.config.id).finish_non_exhaustive()
    }
}

impl Sentinel {
    /// Shared state for the services.
    pub fn new(
        config: SentinelConfig,
        controller: Arc<Controller>,
        groups: Arc<Groups>,
        views: watch::Receiver<Arc<ClusterView>>,
        role: watch::Receiver<Role>,
        shutdown: CancellationToken,
    ) -> Sentinel {
        let forward = Forwarder::new(config.address.to_string(), views.clone(), role);
        let security_acks = crate::security_acks::SecurityAcks::default();
        let logins = login::Logins::new(&config.auth);
        let acl_index = authorize::AclIndex::default();
        Sentinel { config, controller, groups, views, forward, security_acks, logins, acl_index, shutdown }
    }

    /// This sentinel's current view.
    fn view(&self) -> Arc<ClusterView> {
        self.views.borrow().clone()
    }

    /// Every broker with a live session or a replica, as clients and brokers see them.
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
                        kafka_address: b.kafka_address.clone(),
                        default_retention_ms: b.default_retention_ms,
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

    /// Creates a topic on the leader (here, or forwarded); answers once
    /// this sentinel's view shows it.
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
            cleanup_policy: config.cleanup_policy,
            delete_retention_ms: config.delete_retention_ms,
            min_compaction_lag_ms: config.min_compaction_lag_ms,
            min_cleanable_dirty_ratio_permille: config.min_cleanable_dirty_ratio_permille,
            segment_bytes: config.segment_bytes,
            segment_ms: config.segment_ms,
        };
        match self.forward.route(already_forwarded)? {
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
                let leader = self.forward.leader_address();
                let req = pb::CreateTopicRequest { config: Some((&topic).into()) };
                SentinelServiceClient::new(channel)
                    .create_topic(forward_request(req))
                    .await
                    .map(Response::into_inner)
                    .map_err(|s| status_to_error(&leader, s))
            }
        }
    }

    /// Has the leader probe brokers that clients report unreachable,
    /// without holding up the metadata answer.
    fn probe_in_background(self: &Arc<Self>, brokers: Vec<u32>, already_forwarded: bool) {
        if brokers.is_empty() {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            match me.forward.route(already_forwarded) {
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

#[tonic::async_trait]
impl goulette_proto::v1::auth_service_server::AuthService for SentinelGrpc {
    type LoginStream = tokio_stream::wrappers::ReceiverStream<std::result::Result<pb::LoginResponse, tonic::Status>>;

    async fn login(
        &self,
        req: tonic::Request<tonic::Streaming<pb::LoginRequest>>,
    ) -> std::result::Result<Response<Self::LoginStream>, tonic::Status> {
        let peer = req.remote_addr();
        Ok(Response::new(self.0.login(peer, req.into_inner())))
    }
}
