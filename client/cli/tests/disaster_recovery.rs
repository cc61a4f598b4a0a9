//! The disaster-recovery path of `docs/operations.md` on the default layout,
//! whose metadata lives in the sentinel's embedded etcd: with the cluster
//! stopped there is no etcd to talk to, so `goulette etcd --etcd-data-dir`
//! opens the stopped etcd's data directory through a temporary etcd. Stop,
//! back up, lose etcd, restore, start: every acknowledged message is served
//! again. A broker that then comes back with another data directory is told
//! that the metadata knew another one.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{consume_all, produce_acked};
use goulette_client::{Admin, Cluster};
use goulette_proto::v1 as pb;
use goulette_sentinel::testkit::{BrokerProcess, SentinelProcess, free_port, wait_for};

const TOPIC: &str = "survivor";

fn goulette(args: &[&str], etcd_dir: &Path, peer_port: u16) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["etcd", "--etcd-data-dir", etcd_dir.to_str().unwrap(), "--etcd-peer-port", &peer_port.to_string()])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "goulette etcd {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_serving(cluster: &Arc<Cluster>, brokers: usize) {
    let admin = Admin::new(cluster.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let up = match admin.cluster_status().await {
            Ok(s) => {
                s.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count() == brokers
                    && s.offline_partitions.is_empty()
            }
            Err(_) => false,
        };
        if up
            && cluster.list_offsets(TOPIC, 0, None).await.is_ok()
            && cluster.list_offsets(TOPIC, 1, None).await.is_ok()
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the cluster did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_default_layout_stopped_backup_loss_and_restore_of_its_etcd_should_serve_every_message_again() {
    let root = tempfile::tempdir().unwrap();
    let etcd_dir = root.path().join("etcd-sentinel-1");
    let (client_port, peer_port) = (free_port(), free_port());
    let mut sentinel = SentinelProcess::start_with(
        "sentinel-1",
        [
            "--embedded-etcd",
            "--etcd-port",
            &client_port.to_string(),
            "--etcd-peer-port",
            &peer_port.to_string(),
            "--etcd-data-dir",
            etcd_dir.to_str().unwrap(),
            "--session-timeout",
            "2s",
            "--heartbeat-interval",
            "300ms",
            "--lease-ttl",
            "2s",
        ]
        .map(String::from)
        .to_vec(),
    );
    let sentinels = sentinel.address.to_string();
    let mut brokers: Vec<BrokerProcess> = (1..=2).map(|id| BrokerProcess::start(id, &sentinels, &[])).collect();
    let cluster = Arc::new(Cluster::new(vec![sentinels.clone()]).unwrap());
    let config = pb::TopicConfig { name: TOPIC.into(), partitions: 2, replication_factor: 2, ..Default::default() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while let Err(e) = Admin::new(cluster.clone()).create_topic(config.clone()).await {
        assert!(tokio::time::Instant::now() < deadline, "cannot create the topic: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_serving(&cluster, 2).await;
    let values: Vec<String> = (0..500).map(|i| format!("v{i}")).collect();
    assert_eq!(produce_acked(cluster.clone(), TOPIC, values.clone()).await.len(), values.len());

    // Stop everything: the embedded etcd stops with its sentinel.
    for b in &mut brokers {
        b.stop();
    }
    sentinel.stop();
    let backup = root.path().join("backup.json");
    let report = goulette(&["backup", backup.to_str().unwrap()], &etcd_dir, peer_port);
    assert!(report.starts_with("wrote "), "{report}");
    assert!(goulette(&["topics"], &etcd_dir, peer_port).contains(&format!("topic {TOPIC}:")));

    // etcd is lost; restore into a new data directory, then start.
    std::fs::remove_dir_all(&etcd_dir).unwrap();
    goulette(&["restore", backup.to_str().unwrap()], &etcd_dir, peer_port);
    sentinel.restart();
    for b in &mut brokers {
        b.restart();
    }
    wait_serving(&cluster, 2).await;
    let mut got: Vec<String> = consume_all(cluster.clone(), TOPIC, values.len())
        .await
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect();
    got.sort();
    let mut want = values.clone();
    want.sort();
    assert_eq!(got, want);
    for b in &brokers {
        assert!(!b.log().contains("data directory disagree"), "{}", b.log());
    }

    // Broker 2 comes back with another (empty) data directory: it is told.
    brokers[1].stop();
    let stranger = BrokerProcess::start(2, &sentinels, &[]);
    wait_for("the data-directory warning", Duration::from_secs(30), || {
        stranger.log().contains("the metadata and this data directory disagree")
    });
    assert!(sentinel.log().contains("a broker registered with another data directory"), "{}", sentinel.log());
}
