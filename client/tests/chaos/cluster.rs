//! The cluster under test: one etcd, 3 sentinels, 4 brokers, each a real
//! process on loopback with its own directory. Each broker keeps its data on
//! a tmpfs of its own (so the nemesis can fill its disk) and reads the wall
//! clock through libfaketime from a file the nemesis can step (root and
//! Debian's `faketime`, which `make deps` installs, are needed).

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
    /// Each broker's data disk, by index (dropped after the brokers).
    pub disks: Vec<Tmpfs>,
    /// Each broker's libfaketime offset file ("+0", "+1h", "-30m").
    pub clocks: Vec<tempfile::NamedTempFile>,
    addresses: Vec<String>,
}

/// Where Debian's `faketime` package puts the library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Each broker's data disk: room for the workload, small enough to fill.
const DISK_MIB: u64 = 256;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
pub struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs (the chaos run needs root, as CI has)");
        Tmpfs(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

impl ChaosCluster {
    /// Every broker's Kafka address, as a Kafka client's bootstrap list.
    pub fn kafka_bootstrap(&self) -> String {
        self.brokers.iter().map(|b| b.kafka_address.to_string()).collect::<Vec<_>>().join(",")
    }

    /// Starts every process and waits until all brokers are up.
    pub async fn start() -> ChaosCluster {
        let etcd = EtcdProcess::start();
        let sentinels: Vec<SentinelProcess> =
            (1..=SENTINELS).map(|i| SentinelProcess::start(&format!("s{i}"), &etcd.endpoint(), &[])).collect();
        let addresses: Vec<String> = sentinels.iter().map(|s| s.address.to_string()).collect();
        let list = addresses.join(",");
        assert!(std::path::Path::new(LIBFAKETIME).exists(), "{LIBFAKETIME} is missing: run `make deps`");
        let disks: Vec<Tmpfs> = (1..=BROKERS).map(|_| Tmpfs::mount(DISK_MIB)).collect();
        let clocks: Vec<tempfile::NamedTempFile> = (1..=BROKERS)
            .map(|_| {
                let clock = tempfile::NamedTempFile::new().expect("clock file");
                std::fs::write(clock.path(), "+0").expect("write the clock file");
                clock
            })
            .collect();
        let brokers = (1..=BROKERS)
            .map(|id| {
                let i = id as usize - 1;
                let data = disks[i].path().join("data");
                let clock = clocks[i].path().to_string_lossy().into_owned();
                // A short replica_lag_max so that pauses shrink and expand the ISR.
                let args = ["--replica-lag-max", "2s", "--data", data.to_str().expect("utf-8 path")];
                // Only the wall clock moves, as with `date -s`.
                let env = [
                    ("LD_PRELOAD", LIBFAKETIME),
                    ("FAKETIME_TIMESTAMP_FILE", clock.as_str()),
                    ("FAKETIME_CACHE_DURATION", "1"),
                    ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                ];
                BrokerProcess::start_with_env(id, &list, &args, &env)
            })
            .collect();
        let cluster = ChaosCluster { _etcd: etcd, sentinels, brokers, disks, clocks, addresses };
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
