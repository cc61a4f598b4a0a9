//! The broker's link to the sentinels: registration, heartbeats and the
//! assignment stream, moving to the next sentinel when one fails.

use std::sync::Arc;
use std::time::Duration;

use goulette_proto::channel::ChannelOptions;
use goulette_proto::v1::sentinel_internal_client::SentinelInternalClient;
use goulette_proto::v1::sentinel_service_client::SentinelServiceClient;
use goulette_proto::v1::{self as pb, ErrorCode};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::config::BrokerConfig;
use crate::partition::Partitions;

/// A lazily connected channel; `timeout` bounds each unary call (never set
/// it for the long-lived assignment stream, whose pings notice a sentinel
/// that vanished without closing the connection).
fn channel(address: &str, timeout: Option<Duration>) -> anyhow::Result<Channel> {
    let options = ChannelOptions::INTERNAL;
    let options = if let Some(t) = timeout { options.with_request_timeout(t) } else { options };
    Ok(goulette_proto::channel::lazy(address, options)?)
}

/// Rotates through the configured sentinels.
#[derive(Debug)]
pub(crate) struct Sentinels {
    addresses: Vec<String>,
    next: usize,
    timeout: Option<Duration>,
}

impl Sentinels {
    /// For long-lived streams: no per-request timeout (their pings notice
    /// a sentinel that vanished).
    pub(crate) fn for_streams(addresses: &[String]) -> Sentinels {
        Sentinels { addresses: addresses.to_vec(), next: 0, timeout: None }
    }

    pub(crate) fn client(&mut self) -> anyhow::Result<(String, SentinelInternalClient<Channel>)> {
        let address = self.addresses[self.next % self.addresses.len()].clone();
        self.next += 1;
        Ok((address.clone(), SentinelInternalClient::new(channel(&address, self.timeout)?)))
    }
}

pub(crate) async fn pause(token: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = token.cancelled() => false,
    }
}

/// Registers and heartbeats until `token` is cancelled, re-registering when
/// the session is lost and moving between sentinels when one fails.
pub async fn run_session(config: Arc<BrokerConfig>, partitions: Arc<Partitions>, token: CancellationToken) {
    // Calls must fail well within a session timeout (3 s by default), so
    // that a hung sentinel is left for another before the session expires.
    let mut sentinels =
        Sentinels { addresses: config.sentinels.clone(), next: 0, timeout: Some(Duration::from_secs(1)) };
    let mut session: Option<(i64, Duration, Duration)> = None;
    let data_dir_id = crate::layout::DataDir::new(config.data_dir.clone()).id().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read or create the data directory's identity; registering without it");
        String::new()
    });
    let mut last_ok = tokio::time::Instant::now();
    let (mut address, mut client) = match sentinels.client() {
        Ok(c) => c,
        Err(e) => return tracing::error!(error = %e, "bad sentinel address"),
    };
    while !token.is_cancelled() {
        let Some((id, interval, timeout)) = session else {
            let req = pb::RegisterBrokerRequest {
                broker_id: config.id,
                address: config.address.to_string(),
                http_address: config.http_address.map(|a| a.to_string()).unwrap_or_default(),
                max_batch_bytes: config.log.max_batch_bytes as u64,
                kafka_address: config.kafka_advertised().unwrap_or_default(),
                default_retention_ms: Some(
                    config.log.retention_age.map_or(u64::MAX, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                ),
                data_dir_id: data_dir_id.clone(),
                ..Default::default()
            };
            let sent = std::time::Instant::now();
            match client.register_broker(req).await.map(tonic::Response::into_inner) {
                Ok(pb::RegisterBrokerResponse {
                    error: None,
                    session_id,
                    heartbeat_interval_ms,
                    session_timeout_ms,
                    data_dir_warning,
                }) => {
                    if !data_dir_warning.is_empty() {
                        tracing::error!(data_dir = %config.data_dir.display(), warning = %data_dir_warning, "the metadata and this data directory disagree");
                    }
                    tracing::info!(sentinel = %address, session = format!("{session_id:x}"), "registered with the sentinels");
                    let interval = Duration::from_millis(heartbeat_interval_ms.max(50));
                    let timeout = Duration::from_millis(session_timeout_ms.max(1000));
                    session = Some((session_id, interval, timeout));
                    partitions.set_session(session_id);
                    last_ok = tokio::time::Instant::now();
                    partitions.sentinel_contact(sent, timeout);
                }
                Ok(r) => {
                    tracing::warn!(sentinel = %address, error = ?r.error, "registration refused; retrying");
                    if !pause(&token, Duration::from_millis(500)).await {
                        return;
                    }
                }
                Err(status) => {
                    tracing::warn!(sentinel = %address, %status, "sentinel unreachable; trying the next one");
                    (address, client) = match sentinels.client() {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                    if !pause(&token, Duration::from_millis(200)).await {
                        return;
                    }
                }
            }
            continue;
        };
        if !pause(&token, interval).await {
            return;
        }
        // The session is fresh from when the heartbeat was sent, not answered.
        let sent = std::time::Instant::now();
        let beat = client.broker_heartbeat(pb::BrokerHeartbeatRequest { broker_id: config.id, session_id: id }).await;
        match beat.map(tonic::Response::into_inner) {
            Ok(pb::BrokerHeartbeatResponse { error: None }) => {
                last_ok = tokio::time::Instant::now();
                partitions.sentinel_contact(sent, timeout);
            }
            Ok(pb::BrokerHeartbeatResponse { error: Some(e) }) if e.error_code() == ErrorCode::UnknownBroker => {
                tracing::warn!("session expired; registering again");
                session = None;
            }
            Ok(pb::BrokerHeartbeatResponse { error: Some(e) }) if e.error_code() == ErrorCode::Unavailable => {
                // The sentinel is alive but cannot reach etcd. Leadership
                // stands: moving it needs an etcd write, and a leader
                // deposed through another sentinel cannot acknowledge
                // `acks=all` alone (its followers stop fetching from it and
                // an ISR shrink needs etcd too). So this counts as contact;
                // the next heartbeat tries another sentinel, which refreshes
                // the session if it can reach etcd.
                tracing::debug!(sentinel = %address, error = %e.message, "sentinel cannot reach etcd");
                last_ok = tokio::time::Instant::now();
                partitions.sentinel_contact(sent, timeout);
                if let Ok(next) = sentinels.client() {
                    (address, client) = next;
                }
            }
            other => {
                match other {
                    Ok(r) => {
                        tracing::warn!(sentinel = %address, error = ?r.error, "heartbeat refused; trying the next sentinel")
                    }
                    Err(status) => {
                        tracing::warn!(sentinel = %address, %status, "heartbeat failed; trying the next sentinel")
                    }
                }
                if let Ok(next) = sentinels.client() {
                    (address, client) = next;
                }
                // Past the session timeout the lease is surely gone.
                if last_ok.elapsed() > timeout {
                    tracing::warn!("no heartbeat succeeded within the session timeout; registering again");
                    session = None;
                }
            }
        }
    }
}

/// Follows the assignment stream until `token` is cancelled, applying every
/// update, and reconnecting (to the next sentinel) when the stream ends.
pub async fn run_assignments(config: Arc<BrokerConfig>, partitions: Arc<Partitions>, token: CancellationToken) {
    let open = |mut client: SentinelInternalClient<Channel>| {
        // Asked at each (re)connection: what this broker holds now.
        let req = pb::WatchAssignmentsRequest { broker_id: config.id, held: partitions.held() };
        async move { client.watch_assignments(req).await }
    };
    let apply = |update| async {
        let changes = partitions.apply(update).await;
        tracing::debug!(?changes, "applied an assignment update");
    };
    follow(Sentinels::for_streams(&config.sentinels), "assignment", &token, open, apply).await;
}

/// Follows a stream of the sentinels (`what` names it in the log) until
/// `token` is cancelled: opens it with `open` on a sentinel, hands each
/// message to `apply` in order, and when the stream ends or breaks opens
/// it again on the next sentinel after a pause.
pub(crate) async fn follow<T, Open, Opened, Apply, Applied>(
    mut sentinels: Sentinels,
    what: &str,
    token: &CancellationToken,
    mut open: Open,
    mut apply: Apply,
) where
    Open: FnMut(SentinelInternalClient<Channel>) -> Opened,
    Opened: Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>,
    Apply: FnMut(T) -> Applied,
    Applied: Future<Output = ()>,
{
    while !token.is_cancelled() {
        let Ok((address, client)) = sentinels.client() else { return };
        let opened = tokio::select! {
            r = open(client) => r,
            _ = token.cancelled() => return,
        };
        match opened {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    let message = tokio::select! {
                        m = stream.message() => m,
                        _ = token.cancelled() => return,
                    };
                    match message {
                        Ok(Some(message)) => apply(message).await,
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(sentinel = %address, %status, "{what} stream broke; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(status) => tracing::warn!(sentinel = %address, %status, "cannot open the {what} stream"),
        }
        if !pause(token, Duration::from_millis(300)).await {
            return;
        }
    }
}

/// Calls the sentinels for a partition leader (ISR changes) and the offsets
/// coordinator (group generations): one lazily
/// connected channel per sentinel, starting with the one that answered
/// last, so a dead sentinel early in the list costs one timeout only once.
#[derive(Debug)]
pub struct SentinelClient {
    sentinels: Vec<(String, Channel)>,
    /// Index of the sentinel that answered last.
    preferred: std::sync::atomic::AtomicUsize,
}

impl SentinelClient {
    /// A client over `addresses`.
    pub fn new(addresses: &[String]) -> anyhow::Result<SentinelClient> {
        let sentinels = addresses
            .iter()
            .map(|a| Ok((a.clone(), channel(a, Some(Duration::from_secs(3)))?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(SentinelClient { sentinels, preferred: std::sync::atomic::AtomicUsize::new(0) })
    }

    /// Asks the sentinel leader to change an ISR.
    pub async fn alter_isr(&self, req: pb::AlterIsrRequest) -> anyhow::Result<pb::AlterIsrResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelInternalClient::new(channel).alter_isr(req).await }
        })
        .await
    }

    /// Tells the sentinel leader this broker is stopping (see `shutdown`).
    pub async fn controlled_shutdown(
        &self,
        req: pb::ControlledShutdownRequest,
    ) -> anyhow::Result<pb::ControlledShutdownResponse> {
        self.call(|channel| async move { SentinelInternalClient::new(channel).controlled_shutdown(req).await }).await
    }

    /// Tells the sentinel leader this broker cannot serve its replica of a
    /// partition (see `Partitions::fail`).
    pub async fn report_replica_failure(
        &self,
        req: pb::ReportReplicaFailureRequest,
    ) -> anyhow::Result<pb::ReportReplicaFailureResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelInternalClient::new(channel).report_replica_failure(req).await }
        })
        .await
    }

    /// A consumer group's generation and members, as a sentinel that has
    /// seen `min_generation` knows them: a sentinel whose view lags
    /// (`UNAVAILABLE`) is passed over for the next one.
    pub async fn describe_group(&self, group: &str, min_generation: i64) -> anyhow::Result<pb::DescribeGroupResponse> {
        let req = pb::DescribeGroupRequest { group: group.to_owned(), min_generation };
        let lagging =
            |r: &pb::DescribeGroupResponse| r.error.as_ref().is_some_and(|e| e.code == ErrorCode::Unavailable as i32);
        self.call_until(lagging, |channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).describe_group(req).await }
        })
        .await
    }

    /// The cluster's brokers and topics (creating missing ones if asked and
    /// the cluster allows it), as a sentinel sees them: for Kafka clients'
    /// Metadata requests.
    pub async fn metadata(&self, req: pb::MetadataRequest) -> anyhow::Result<pb::MetadataResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).metadata(req).await }
        })
        .await
    }

    /// Creates a topic (through the sentinel leader).
    pub async fn create_topic(&self, config: pb::TopicConfig) -> anyhow::Result<pb::CreateTopicResponse> {
        let req = pb::CreateTopicRequest { config: Some(config) };
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).create_topic(req).await }
        })
        .await
    }

    /// Deletes a topic (through the sentinel leader).
    pub async fn delete_topic(&self, name: &str) -> anyhow::Result<pb::DeleteTopicResponse> {
        let req = pb::DeleteTopicRequest { name: name.to_owned() };
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).delete_topic(req).await }
        })
        .await
    }

    /// Changes a topic's settings (through the sentinel leader).
    pub async fn alter_topic(&self, req: pb::AlterTopicRequest) -> anyhow::Result<pb::AlterTopicResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).alter_topic(req).await }
        })
        .await
    }

    /// Grows a topic to more partitions (through the sentinel leader).
    pub async fn add_partitions(&self, req: pb::AddPartitionsRequest) -> anyhow::Result<pb::AddPartitionsResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).add_partitions(req).await }
        })
        .await
    }

    /// Tells the sentinel leader this broker applied the security update
    /// of `revision`.
    pub async fn security_applied(
        &self,
        req: pb::SecurityAppliedRequest,
    ) -> anyhow::Result<pb::SecurityAppliedResponse> {
        self.call(|channel| async move { SentinelInternalClient::new(channel).security_applied(req).await }).await
    }

    /// Creates, changes or deletes a user (through the sentinel leader).
    pub async fn alter_user(&self, req: pb::AlterUserRequest) -> anyhow::Result<pb::AlterUserResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).alter_user(req).await }
        })
        .await
    }

    /// Users and their mechanisms (no keys).
    pub async fn list_users(&self, req: pb::ListUsersRequest) -> anyhow::Result<pb::ListUsersResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).list_users(req).await }
        })
        .await
    }

    /// Adds ACL bindings (through the sentinel leader).
    pub async fn create_acls(&self, req: pb::CreateAclsRequest) -> anyhow::Result<pb::CreateAclsResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).create_acls(req).await }
        })
        .await
    }

    /// Removes the ACL bindings a filter matches (through the sentinel leader).
    pub async fn delete_acls(&self, req: pb::DeleteAclsRequest) -> anyhow::Result<pb::DeleteAclsResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).delete_acls(req).await }
        })
        .await
    }

    /// The ACL bindings a filter selects.
    pub async fn describe_acls(&self, req: pb::DescribeAclsRequest) -> anyhow::Result<pb::DescribeAclsResponse> {
        self.call(|channel| {
            let req = req.clone();
            async move { SentinelServiceClient::new(channel).describe_acls(req).await }
        })
        .await
    }

    /// A new idempotent-producer id, allocated by the sentinel leader.
    pub async fn init_producer_id(&self) -> anyhow::Result<pb::InitProducerIdResponse> {
        self.call(|channel| async move {
            SentinelServiceClient::new(channel).init_producer_id(pb::InitProducerIdRequest {}).await
        })
        .await
    }

    /// Tries each sentinel in turn, from the one that answered last.
    async fn call<T, F, Fut>(&self, call: F) -> anyhow::Result<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_until(|_| false, call).await
    }

    /// Like `call`, also moving on from a sentinel whose answer `next` rejects
    /// (the last answer is returned if every one does).
    async fn call_until<T, F, Fut>(&self, next: impl Fn(&T) -> bool, mut call: F) -> anyhow::Result<T>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        use std::sync::atomic::Ordering;
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last = Err(anyhow::anyhow!("no sentinel configured"));
        for k in 0..self.sentinels.len() {
            let i = (start + k) % self.sentinels.len();
            let (address, channel) = &self.sentinels[i];
            match call(channel.clone()).await {
                Ok(r) => {
                    let r = r.into_inner();
                    if !next(&r) {
                        self.preferred.store(i, Ordering::Relaxed);
                        return Ok(r);
                    }
                    last = Ok(r);
                }
                Err(status) => {
                    if last.is_err() {
                        last = Err(anyhow::anyhow!("sentinel {address}: {status}"));
                    }
                }
            }
        }
        last
    }
}
