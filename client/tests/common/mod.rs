//! The cluster harness shared by the process tests of the client crate.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_client::{
    Cluster, ConsumedRecord, Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, ProducerRecord, StartAt,
};
use goulette_proto::v1 as pb;
use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess};

pub struct Env {
    pub etcd: EtcdProcess,
    pub sentinel: SentinelProcess,
    pub brokers: Vec<BrokerProcess>,
}

impl Env {
    pub async fn start(brokers: u32, broker_args: &[&str]) -> Env {
        Env::start_with(brokers, &[], broker_args).await
    }

    /// Like `start`, with extra sentinel arguments.
    pub async fn start_with(brokers: u32, sentinel_args: &[&str], broker_args: &[&str]) -> Env {
        Env::launch(brokers, sentinel_args, broker_args, &[]).await
    }

    /// Like `start`, with environment variables for every broker (failpoints).
    pub async fn start_with_env(brokers: u32, broker_args: &[&str], broker_env: &[(&str, &str)]) -> Env {
        Env::launch(brokers, &[], broker_args, broker_env).await
    }

    async fn launch(brokers: u32, sentinel_args: &[&str], broker_args: &[&str], broker_env: &[(&str, &str)]) -> Env {
        let etcd = EtcdProcess::start();
        let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), sentinel_args);
        let sentinels = sentinel.address.to_string();
        let brokers =
            (1..=brokers).map(|id| BrokerProcess::start_with_env(id, &sentinels, broker_args, broker_env)).collect();
        let env = Env { etcd, sentinel, brokers };
        env.wait_brokers_up().await;
        env
    }

    pub fn cluster(&self) -> Arc<Cluster> {
        Arc::new(Cluster::new(vec![self.sentinel.address.to_string()]).unwrap())
    }

    pub async fn wait_brokers_up(&self) {
        let admin = goulette_client::Admin::new(self.cluster());
        let want = self.brokers.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(s) = admin.cluster_status().await {
                let up = s.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count();
                if up == want && s.offline_partitions.is_empty() && s.sentinels.iter().any(|s| s.leader) {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cluster not ready; sentinel log:\n{}",
                self.sentinel.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn create_topic(&self, name: &str, partitions: u32, rf: u32) -> pb::TopicMetadata {
        let config = pb::TopicConfig { name: name.into(), partitions, replication_factor: rf, ..Default::default() };
        goulette_client::Admin::new(self.cluster()).create_topic(config).await.unwrap()
    }

    /// Creates a one-partition RF=1 topic, returning the outcome.
    pub async fn create_topic_result(&self, name: &str) -> goulette_client::Result<pb::TopicMetadata> {
        let config = pb::TopicConfig { name: name.into(), partitions: 1, replication_factor: 1, ..Default::default() };
        goulette_client::Admin::new(self.cluster()).create_topic(config).await
    }

    /// Runs the `goulette` CLI against this cluster with `stdin` as its
    /// input: (exited 0, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        use std::io::Write;
        let mut child = std::process::Command::new(goulette_sentinel::testkit::bin_dir().join("goulette"))
            .args(args)
            .env("GOULETTE_SENTINELS", self.sentinel.address.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    }

    /// [`Env::cli`] that must succeed: its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args, "");
        assert!(ok, "goulette {args:?}: {err}");
        out
    }

    /// Waits until every broker has opened the partitions it leads (the
    /// assignment stream is asynchronous).
    pub async fn wait_serving(&self, topic: &str) {
        let cluster = self.cluster();
        let meta = goulette_client::Admin::new(cluster.clone()).describe_topic(topic).await.unwrap();
        for p in meta.partition_details {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while cluster.list_offsets(topic, p.partition, None).await.is_err() {
                assert!(tokio::time::Instant::now() < deadline, "{topic}/{} never served", p.partition);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

pub async fn consume_all(cluster: Arc<Cluster>, topic: &str, expected: usize) -> Vec<ConsumedRecord> {
    let config = ConsumerConfig { start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(cluster, topic, config).await.unwrap();
    let mut out = Vec::new();
    while out.len() < expected {
        match tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await {
            Ok(Some(Ok(r))) => out.push(r),
            Ok(Some(Err(e))) => panic!("consume failed after {} records: {e}", out.len()),
            Ok(None) | Err(_) => panic!("consumed only {} of {expected}", out.len()),
        }
    }
    // Nothing beyond what was produced.
    assert!(tokio::time::timeout(Duration::from_millis(300), consumer.recv()).await.is_err());
    out
}

pub async fn produce_values(cluster: Arc<Cluster>, topic: &str, values: &[&str]) {
    let producer = Producer::new(cluster, ProducerConfig::default(), Partitioner::KeyHash);
    for v in values {
        let r = ProducerRecord { topic: topic.into(), value: Bytes::from(v.to_string()), ..Default::default() };
        producer.send(r).await.unwrap().wait().await.unwrap();
    }
    producer.close().await;
}

/// Sends `values` with a window of requests in flight and waits for every
/// acknowledgement; returns the offsets.
pub async fn produce_acked(cluster: Arc<Cluster>, topic: &str, values: impl IntoIterator<Item = String>) -> Vec<u64> {
    let producer = Producer::new(cluster, ProducerConfig::default(), Partitioner::RoundRobin);
    let mut deliveries = Vec::new();
    for v in values {
        let r = ProducerRecord { topic: topic.into(), value: Bytes::from(v), ..Default::default() };
        deliveries.push(producer.send(r).await.unwrap());
    }
    let mut offsets = Vec::new();
    for d in deliveries {
        offsets.push(d.wait().await.unwrap().offset.unwrap());
    }
    producer.close().await;
    offsets
}

/// A metric's value in a Prometheus text page (the first series named
/// `name`, labels included in `name` when given).
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
