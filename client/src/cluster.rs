//! A client's view of the cluster: the sentinels (tried in turn), cached
//! topic metadata, and one gRPC channel per broker.
//!
//! It also owns the two call loops the rest of the library shares: a call
//! to the sentinels with failover ([`Cluster::with_sentinel`]) and a call to
//! a partition's leader, retried while leadership moves
//! ([`Cluster::with_leader`]), and the sentinel and leader calls that more
//! than one module needs (topic creation, cluster status, partition
//! offsets), so that those modules need not depend on each other.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use goulette_proto::v1::{
    self as pb, broker_service_client::BrokerServiceClient, sentinel_service_client::SentinelServiceClient,
};
use tonic::transport::Channel;

use crate::error::{ClientError, Result};

/// Largest message the client sends or accepts (a maximal batch plus room).
pub const MAX_MESSAGE: usize = goulette_batch::MAX_BATCH_LEN + (1 << 20);

/// One topic as the sentinels last described it.
#[derive(Debug, Clone, Default)]
pub struct TopicInfo {
    pub config: pb::TopicConfig,
    pub partitions: Vec<pb::PartitionState>,
}

/// How long a topic's cached metadata is used before it is asked for
/// again (like Kafka's `metadata.max.age.ms`, shorter): a running producer
/// learns of partitions added to a topic within this.
pub const METADATA_MAX_AGE: Duration = Duration::from_secs(30);

/// A topic's metadata and when it was fetched.
#[derive(Debug)]
struct Cached {
    info: TopicInfo,
    at: std::time::Instant,
}

impl Cached {
    fn fresh(&self) -> bool {
        self.at.elapsed() < METADATA_MAX_AGE
    }
}

/// Sentinels, metadata and broker channels shared by producers, consumers
/// and admins.
#[derive(Debug)]
pub struct Cluster {
    sentinels: Vec<String>,
    /// Index of the sentinel that answered last.
    preferred: Mutex<usize>,
    channels: Mutex<HashMap<String, Channel>>,
    brokers: RwLock<HashMap<u32, String>>,
    topics: RwLock<HashMap<String, Cached>>,
    /// The smallest `max_batch_bytes` the brokers reported (`usize::MAX`
    /// until one did): producers keep their batches under it.
    max_batch_bytes: std::sync::atomic::AtomicUsize,
    /// How many times a topic lookup tries again while no sentinel answers
    /// (a restart in progress); see [`Cluster::fail_fast`].
    unreachable_retries: u32,
}

/// A sentinel address as users write it: `host:port`, or an `http://` URL
/// of one (the scheme and a trailing `/` are dropped).
fn sentinel_address(given: &str) -> Result<String> {
    let trimmed = given.trim();
    if trimmed.starts_with("https://") {
        return Err(ClientError::InvalidArgument(format!(
            "sentinel address {given:?}: TLS to sentinels is not supported yet; give host:port"
        )));
    }
    let address = trimmed.strip_prefix("http://").unwrap_or(trimmed).trim_end_matches('/');
    let port = address.rsplit_once(':').map(|(_, port)| port);
    if address.is_empty() || address.contains('/') || port.is_none_or(|p| p.parse::<u16>().is_err()) {
        return Err(ClientError::InvalidArgument(format!(
            "sentinel address {given:?}: expected host:port (e.g. 127.0.0.1:50052, a sentinel's gRPC address)"
        )));
    }
    Ok(address.to_owned())
}

fn is_transport(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
    )
}

/// A plaintext HTTP/2 client talking to a TLS listener reads the TLS
/// alert as a broken HTTP/2 frame: a protocol error that is really a
/// security mismatch, and is told as one.
fn is_tls_mismatch(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Internal && status.message().contains("h2 protocol error")
}

impl Cluster {
    /// A cluster reached through `sentinels` (`host:port` or
    /// `http://host:port`, tried in turn).
    pub fn new(sentinels: Vec<String>) -> Result<Cluster> {
        if sentinels.is_empty() {
            return Err(ClientError::InvalidArgument("no sentinel address given".into()));
        }
        let sentinels = sentinels.iter().map(|s| sentinel_address(s)).collect::<Result<Vec<_>>>()?;
        Ok(Cluster {
            sentinels,
            preferred: Mutex::new(0),
            channels: Mutex::new(HashMap::new()),
            brokers: RwLock::new(HashMap::new()),
            topics: RwLock::new(HashMap::new()),
            max_batch_bytes: std::sync::atomic::AtomicUsize::new(usize::MAX),
            unreachable_retries: 8,
        })
    }

    /// Gives up at once when no sentinel answers, instead of trying again
    /// for several seconds (what a service rides a sentinel restart out
    /// with): for a command a user waits on.
    pub fn fail_fast(mut self) -> Cluster {
        self.unreachable_retries = 0;
        self
    }

    /// The sentinel addresses this client was given, in order.
    pub fn sentinel_addresses(&self) -> &[String] {
        &self.sentinels
    }

    /// The largest batch every broker accepts, as last reported
    /// (`usize::MAX` before any broker reported one).
    pub fn max_batch_bytes(&self) -> usize {
        self.max_batch_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A (lazily connected, cached) channel to `address`.
    pub fn channel(&self, address: &str) -> Result<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(address) {
            return Ok(c.clone());
        }
        // Pings notice a peer that vanished without closing the connection,
        // so long-lived streams fail over instead of waiting.
        let channel = goulette_proto::channel::lazy(address, goulette_proto::channel::ChannelOptions::CLIENT)
            .map_err(|e| ClientError::InvalidArgument(format!("bad address {address:?}: {e}")))?;
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Runs `call` against the sentinels, moving to the next one on a
    /// transport failure or after 10 s.
    pub async fn with_sentinel<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: FnMut(SentinelServiceClient<goulette_proto::channel::Authorized>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.with_sentinel_within(what, Duration::from_secs(10), call).await
    }

    /// Like `with_sentinel`, giving each sentinel `timeout`.
    pub async fn with_sentinel_within<T, F, Fut>(&self, what: &str, timeout: Duration, mut call: F) -> Result<T>
    where
        F: FnMut(SentinelServiceClient<goulette_proto::channel::Authorized>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let start = *self.preferred.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = String::new();
        for i in 0..self.sentinels.len() {
            let index = (start + i) % self.sentinels.len();
            let address = &self.sentinels[index];
            let client = SentinelServiceClient::new(goulette_proto::channel::authorized(self.channel(address)?));
            match tokio::time::timeout(timeout, call(client)).await {
                Ok(Ok(response)) => {
                    *self.preferred.lock().unwrap_or_else(|p| p.into_inner()) = index;
                    return Ok(response.into_inner());
                }
                Ok(Err(status)) if is_transport(&status) => last = format!("{address}: {}", status.message()),
                Ok(Err(status)) if is_tls_mismatch(&status) => {
                    last = format!("{address}: {} (it seems to speak TLS: give --tls-ca)", status.message())
                }
                Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                    last = format!("{address} does not serve the sentinel API (is it a broker's address?)")
                }
                Ok(Err(status)) => {
                    return Err(ClientError::transport(format!("{what} at sentinel {address}"), &status));
                }
                Err(_) => last = format!("{address}: timed out"),
            }
        }
        Err(ClientError::NoSentinel { addresses: self.sentinels.join(","), last })
    }

    /// A new idempotent producer id from the sentinel leader.
    pub async fn init_producer_id(&self) -> Result<i64> {
        let resp =
            self.with_sentinel("init producer id", |mut c| async move {
                c.init_producer_id(pb::InitProducerIdRequest {}).await
            })
            .await?;
        match resp.error {
            Some(e) => Err(ClientError::from_proto(&e)),
            None => Ok(resp.producer_id),
        }
    }

    /// Asks the sentinels about `topics` (all when empty), reporting brokers
    /// this client could not reach, and caches the answer.
    pub async fn refresh(
        &self,
        topics: &[String],
        auto_create: bool,
        unreachable: &[u32],
    ) -> Result<pb::MetadataResponse> {
        let req = pb::MetadataRequest {
            topics: topics.to_vec(),
            unreachable_brokers: unreachable.to_vec(),
            allow_auto_create: auto_create,
        };
        let resp = self
            .with_sentinel("metadata", |mut c| {
                let req = req.clone();
                async move { c.metadata(req).await }
            })
            .await?;
        if let Some(e) = &resp.error {
            return Err(ClientError::from_proto(e));
        }
        {
            let mut brokers = self.brokers.write().unwrap_or_else(|p| p.into_inner());
            for b in &resp.brokers {
                if !b.address.is_empty() {
                    brokers.insert(b.id, b.address.clone());
                }
            }
            let reported = resp.brokers.iter().map(|b| b.max_batch_bytes as usize).filter(|m| *m > 0).min();
            if let Some(smallest) = reported {
                self.max_batch_bytes.store(smallest, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let mut cache = self.topics.write().unwrap_or_else(|p| p.into_inner());
        for t in &resp.topics {
            if t.error.is_none() {
                let info = TopicInfo { config: t.config.clone().unwrap_or_default(), partitions: t.partitions.clone() };
                cache.insert(t.name.clone(), Cached { info, at: std::time::Instant::now() });
            } else {
                cache.remove(&t.name);
            }
        }
        Ok(resp)
    }

    /// The cached topic, refreshing (and perhaps auto-creating) it if
    /// unknown. Retries with backoff for a few seconds while the cluster has
    /// no sentinel leader or etcd is unavailable (a failover in progress).
    pub async fn topic(&self, name: &str, auto_create: bool) -> Result<TopicInfo> {
        let mut attempt = 0;
        loop {
            match self.lookup_topic(name, auto_create).await {
                Err(ClientError::Server { code: pb::ErrorCode::NoLeader | pb::ErrorCode::Unavailable, .. })
                    if attempt < 8 =>
                {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt, Duration::from_millis(100), Duration::from_secs(2))).await;
                }
                Err(ClientError::NoSentinel { .. }) if attempt < self.unreachable_retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt, Duration::from_millis(100), Duration::from_secs(2))).await;
                }
                other => return other,
            }
        }
    }

    /// A cached topic's partition count, without copying its metadata
    /// (`None` once the cache is older than [`METADATA_MAX_AGE`]).
    pub fn cached_partition_count(&self, name: &str) -> Option<u32> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        topics.get(name).filter(|t| t.fresh()).map(|t| t.info.partitions.len() as u32)
    }

    async fn lookup_topic(&self, name: &str, auto_create: bool) -> Result<TopicInfo> {
        if let Some(t) = self.topics.read().unwrap_or_else(|p| p.into_inner()).get(name).filter(|t| t.fresh()) {
            return Ok(t.info.clone());
        }
        let resp = self.refresh(&[name.to_owned()], auto_create, &[]).await?;
        match resp.topics.iter().find(|t| t.name == name) {
            Some(t) => match &t.error {
                Some(e) => Err(ClientError::from_proto(e)),
                None => {
                    Ok(TopicInfo { config: t.config.clone().unwrap_or_default(), partitions: t.partitions.clone() })
                }
            },
            None => Err(ClientError::Server {
                code: pb::ErrorCode::UnknownTopic,
                message: format!("unknown topic {name:?}"),
            }),
        }
    }

    /// The leader broker (id and address) of a partition, from the cache.
    pub fn leader(&self, topic: &str, partition: u32) -> Option<(u32, String)> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        let leader = topics.get(topic)?.info.partitions.iter().find(|p| p.partition == partition)?.leader?;
        let address = self.brokers.read().unwrap_or_else(|p| p.into_inner()).get(&leader)?.clone();
        Some((leader, address))
    }

    /// Forgets a topic's cached metadata (after NOT_LEADER and the like).
    pub fn invalidate(&self, topic: &str) {
        self.topics.write().unwrap_or_else(|p| p.into_inner()).remove(topic);
    }

    /// Creates a topic (0 partitions or replication factor = cluster default).
    pub async fn create_topic(&self, config: pb::TopicConfig) -> Result<pb::TopicMetadata> {
        goulette_proto::validate_topic_name(&config.name).map_err(ClientError::InvalidArgument)?;
        let req = pb::CreateTopicRequest { config: Some(config) };
        let resp = self
            .with_sentinel("create topic", |mut c| {
                let req = req.clone();
                async move { c.create_topic(req).await }
            })
            .await?;
        match resp.error {
            Some(e) => Err(ClientError::from_proto(&e)),
            None => Ok(resp.topic.unwrap_or_default()),
        }
    }

    /// Sentinels, brokers and offline partitions.
    pub async fn cluster_status(&self) -> Result<pb::ClusterStatusResponse> {
        self.with_sentinel("cluster status", |mut c| async move { c.cluster_status(pb::ClusterStatusRequest {}).await })
            .await
    }

    /// Calls the leader of `topic`/`partition` with `call` until it answers
    /// without error, at most `attempts` times: a retriable error answered
    /// forgets the topic's metadata, an unreachable leader is reported to
    /// the sentinels, and each failed attempt waits a backoff. `what` names
    /// the call in a transport error, followed by the broker id.
    pub async fn with_leader<T, F, Fut>(
        &self,
        what: &str,
        topic: &str,
        partition: u32,
        attempts: u32,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut(BrokerServiceClient<goulette_proto::channel::Authorized>) -> Fut,
        Fut: Future<Output = std::result::Result<(T, Option<pb::Error>), tonic::Status>>,
    {
        let mut unreachable = None;
        let mut last = None;
        for attempt in 0..attempts {
            match self.find_leader(topic, partition, unreachable.take(), false).await {
                Ok((broker, address)) => {
                    match call(BrokerServiceClient::new(goulette_proto::channel::authorized(self.channel(&address)?)))
                        .await
                    {
                        Ok((value, None)) => return Ok(value),
                        Ok((_, Some(e))) => {
                            let error = ClientError::from_proto(&e);
                            if !error.is_retriable() {
                                return Err(error);
                            }
                            self.invalidate(topic);
                            last = Some(error);
                        }
                        Err(status) => {
                            unreachable = Some(broker);
                            last = Some(ClientError::transport(format!("{what} {broker}"), &status));
                        }
                    }
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(backoff(attempt, Duration::from_millis(50), Duration::from_secs(1))).await;
        }
        Err(last.unwrap_or(ClientError::Closed))
    }

    /// Asks a partition's leader for its offsets: log start, high watermark
    /// and, with `timestamp`, the first offset at or after it.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        timestamp: Option<i64>,
    ) -> Result<pb::ListOffsetsResponse> {
        self.with_leader("list offsets at broker", topic, partition, 8, |mut client| {
            let req = pb::ListOffsetsRequest { topic: topic.to_owned(), partition, timestamp };
            async move {
                client.list_offsets(req).await.map(|r| {
                    let r = r.into_inner();
                    let error = r.error.clone();
                    (r, error)
                })
            }
        })
        .await
    }

    /// The leader of a partition, refreshing metadata (and reporting an
    /// unreachable broker) until one is known or `attempts` run out.
    pub async fn find_leader(
        &self,
        topic: &str,
        partition: u32,
        unreachable: Option<u32>,
        auto_create: bool,
    ) -> Result<(u32, String)> {
        if unreachable.is_none()
            && let Some(l) = self.leader(topic, partition)
        {
            return Ok(l);
        }
        let reported: Vec<u32> = unreachable.into_iter().collect();
        self.refresh(&[topic.to_owned()], auto_create, &reported).await?;
        self.leader(topic, partition).ok_or_else(|| ClientError::Server {
            code: pb::ErrorCode::NotLeader,
            message: format!("{topic}/{partition} has no leader right now"),
        })
    }
}

/// Exponential backoff with jitter: a wait in [c/2, c) for
/// c = min(base·2^attempt, max), so that clients retrying together spread out.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    let half = (ceiling.as_nanos() / 2) as u64;
    // A cheap jitter source: the clock's low bits (no shared RNG needed).
    let noise =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as u64);
    Duration::from_nanos(half + if half == 0 { 0 } else { noise % half })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_addresses_are_taken_as_users_write_them() {
        assert_eq!(sentinel_address("127.0.0.1:50052").unwrap(), "127.0.0.1:50052");
        assert_eq!(sentinel_address("http://localhost:50052/").unwrap(), "localhost:50052");
        assert_eq!(sentinel_address(" [::1]:50052 ").unwrap(), "[::1]:50052");
        for bad in ["https://host:50052", "host", "http://host:port", "host:50052/x", ""] {
            assert!(matches!(sentinel_address(bad), Err(ClientError::InvalidArgument(_))), "{bad:?}");
        }
    }
}
