//! Metadata lost or restored never deletes acknowledged data: an etcd that
//! comes back empty under a running cluster makes brokers stop serving and
//! raise an alarm, not delete; the documented disaster recovery (stop, back
//! up, lose etcd, restore, start) serves every acknowledged message again.
//! (A topic deleted for real does delete its data: `client/tests/cluster.rs`.)

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Env, consume_all, metric, produce_acked};
use goulette_sentinel::testkit::http_get;

const TOPIC: &str = "precious";
const MESSAGES: usize = 3000;

/// Every partition directory of `topic` under a broker's data directory
/// that still holds log files.
fn dirs_with_data(data: &Path, topic: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(data) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.rsplit_once('-').is_some_and(|(t, _)| t == topic)))
        .filter(|e| {
            std::fs::read_dir(e.path())
                .is_ok_and(|files| files.flatten().any(|f| f.file_name().to_str().is_some_and(|n| n.ends_with(".wal"))))
        })
        .count()
}

fn goulette(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_goulette")).args(args).output().unwrap();
    assert!(out.status.success(), "goulette {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn broker_logs(env: &Env) -> String {
    env.brokers.iter().map(|b| format!("--- broker {}:\n{}", b.id, b.log())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_etcd_restarted_empty_brokers_should_keep_every_replica_and_serve_it_again_after_a_restore() {
    let mut env = Env::start(3, &[]).await;
    env.create_topic(TOPIC, 3, 2).await;
    env.wait_serving(TOPIC).await;
    let values: Vec<String> = (0..MESSAGES).map(|i| format!("m{i}")).collect();
    assert_eq!(produce_acked(env.cluster(), TOPIC, values.clone()).await.len(), MESSAGES);
    let backup = tempfile::tempdir().unwrap();
    let file = backup.path().join("backup.json");
    let endpoints = env.etcd.endpoint();
    goulette(&["etcd", "--etcd-endpoints", &endpoints, "backup", file.to_str().unwrap()]);
    let before: Vec<usize> = env.brokers.iter().map(|b| dirs_with_data(&b.data_dir(), TOPIC)).collect();
    assert_eq!(before.iter().sum::<usize>(), 6, "3 partitions x RF 2");

    // etcd loses everything under the running cluster.
    env.etcd.restart_empty();
    // The brokers learn an empty assignment within seconds (the defect
    // deleted every replica then); each must keep its data and raise the alarm.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let kept: f64 = env
            .brokers
            .iter()
            .filter_map(|b| http_get(b.http_address, "/metrics"))
            .filter_map(|(_, page)| metric(&page, "goulette_broker_partitions_kept_unassigned"))
            .sum();
        if kept as usize == 6 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "kept gauge {kept}, not 6\n{}", broker_logs(&env));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<usize> = env.brokers.iter().map(|b| dirs_with_data(&b.data_dir(), TOPIC)).collect();
    assert_eq!(after, before, "replica data deleted after etcd lost its data\n{}", broker_logs(&env));
    assert!(!broker_logs(&env).contains("replica data deleted"), "{}", broker_logs(&env));
    // `cluster status` names what is kept.
    let status = goulette(&["--sentinels", &env.sentinel.address.to_string(), "cluster", "status"]);
    assert!(status.contains(&format!("{TOPIC}/0 kept: ")), "{status}");

    // The operator restores the backup: stop the cluster, clean what the
    // running processes wrote into the empty etcd, restore, start again.
    for b in &mut env.brokers {
        b.kill();
    }
    env.sentinel.kill();
    goulette(&["etcd", "--etcd-endpoints", &endpoints, "clean", "--yes"]);
    goulette(&["etcd", "--etcd-endpoints", &endpoints, "restore", file.to_str().unwrap()]);
    start_again_and_read_all(&mut env, values).await;
}

/// Starts the stopped sentinel and brokers and reads `TOPIC` through: every
/// value in `values` is served.
async fn start_again_and_read_all(env: &mut Env, mut values: Vec<String>) {
    env.sentinel.restart();
    for b in &mut env.brokers {
        b.restart();
    }
    env.wait_brokers_up().await;
    env.wait_serving(TOPIC).await;
    let got = consume_all(env.cluster(), TOPIC, values.len()).await;
    let mut got: Vec<String> = got.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
    got.sort();
    values.sort();
    assert_eq!(got, values);
    assert!(!broker_logs(env).contains("replica data deleted"), "{}", broker_logs(env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_documented_restore_path_should_serve_every_acknowledged_message() {
    let mut env = Env::start(3, &[]).await;
    env.create_topic(TOPIC, 2, 3).await;
    env.wait_serving(TOPIC).await;
    let values: Vec<String> = (0..MESSAGES).map(|i| format!("v{i}")).collect();
    produce_acked(env.cluster(), TOPIC, values.clone()).await;

    // Stop the cluster, back up, lose etcd, restore, start.
    for b in &mut env.brokers {
        b.stop();
    }
    env.sentinel.stop();
    let backup = tempfile::tempdir().unwrap();
    let file = backup.path().join("backup.json");
    let endpoints = env.etcd.endpoint();
    goulette(&["etcd", "--etcd-endpoints", &endpoints, "backup", file.to_str().unwrap()]);
    env.etcd.restart_empty();
    goulette(&["etcd", "--etcd-endpoints", &endpoints, "restore", file.to_str().unwrap()]);
    start_again_and_read_all(&mut env, values).await;
}
