//! The cluster under test: one etcd, 3 sentinels, 4 brokers, each a real
//! process on loopback with its own directory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use goulette_client::{Admin, Cluster};
use goulette_proto::v1 as pb;
use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess};

pub const SENTINELS: usize = 3;
pub const BROKERS: u32 = 4;

pub struct ChaosCluster {
    /// Held so that etcd lives as long as the cluster.
    _etcd: EtcdProcess,
    pub sentinels: Vec<SentinelProcess>,
    pub brokers: Vec<BrokerProcess>,
    addresses: Vec<String>,
}

impl ChaosCluster {
    /// Starts every process and waits until all brokers are up.
    pub async fn start() -> ChaosCluster {
        let etcd = EtcdProcess::start();
        let sentinels: Vec<SentinelProcess> =
            (1..=SENTINELS).map(|i| SentinelProcess::start(&format!("s{i}"), &etcd.endpoint(), &[])).collect();
        let addresses: Vec<String> = sentinels.iter().map(|s| s.address.to_string()).collect();
        let list = addresses.join(",");
        // A short replica_lag_max so that pauses shrink and expand the ISR.
        let brokers = (1..=BROKERS).map(|id| BrokerProcess::start(id, &list, &["--replica-lag-max", "2s"])).collect();
        let cluster = ChaosCluster { _etcd: etcd, sentinels, brokers, addresses };
        cluster.wait_brokers_up().await;
        cluster
    }

    /// A client of the cluster (knows every sentinel).
    pub fn client(&self) -> Arc<Cluster> {
        Arc::new(Cluster::new(self.addresses.clone()).expect("sentinel addresses"))
    }

    async fn wait_brokers_up(&self) {
        let admin = Admin::new(self.client());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(s) = admin.cluster_status().await {
                let up = s.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count();
                if up == BROKERS as usize && s.sentinels.iter().any(|s| s.leader) {
                    return;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "brokers never all came up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every partition of `topic` has a leader and a full ISR;
    /// returns each partition's `(replicas, leader epoch)`.
    pub async fn wait_healthy(&self, topic: &str, timeout: Duration) -> BTreeMap<u32, (Vec<u32>, u64)> {
        let admin = Admin::new(self.client());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(d) = admin.describe_topic(topic).await {
                if d.partition_details.iter().all(|p| p.leader.is_some() && p.isr.len() == p.replicas.len()) {
                    return d
                        .partition_details
                        .into_iter()
                        .map(|p| (p.partition, (p.replicas, p.leader_epoch)))
                        .collect();
                }
                if tokio::time::Instant::now() >= deadline {
                    panic!("{topic} not healthy after {timeout:?}: {:?}\n{}", d.partition_details, self.log_tails());
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "{topic} not describable after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines of every process's log, for failure messages.
    pub fn log_tails(&self) -> String {
        let tail = |log: String| {
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        let sentinels = self.sentinels.iter().map(|s| format!("--- sentinel {}:\n{}", s.id, tail(s.log())));
        let brokers = self.brokers.iter().map(|b| format!("--- broker {}:\n{}", b.id, tail(b.log())));
        sentinels.chain(brokers).collect::<Vec<_>>().join("\n")
    }
}
