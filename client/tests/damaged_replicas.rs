//! Damaged replicas are found, never served, never lead while a clean
//! in-sync replica exists, and repair themselves from the leader; a damaged
//! sole copy is reported as such (to clients, `/ready` and metrics), never
//! silently shortened.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Env, consume_all, metric, produce_acked};
use goulette_client::{Admin, ClientError};
use goulette_proto::v1::ErrorCode;
use goulette_sentinel::testkit::http_get;

/// Small fragments, so that the data spans several sealed ones.
const BROKER_ARGS: &[&str] = &["--fragment-bytes", "1048576", "--max-batch-bytes", "524288", "--replica-lag-max", "3s"];

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn values(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:01000}")).collect()
}

async fn describe(env: &Env, topic: &str) -> goulette_client::admin::PartitionReport {
    Admin::new(env.cluster()).describe_topic(topic).await.unwrap().partition_details[0].clone()
}

async fn wait_for(env: &Env, what: &str, mut check: impl FnMut(&goulette_client::admin::PartitionReport) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let p = describe(env, "damaged").await;
        if check(&p) {
            return;
        }
        let logs: String = env.brokers.iter().map(|b| format!("--- broker {}:\n{}", b.id, b.log())).collect();
        assert!(tokio::time::Instant::now() < deadline, "never: {what}; last {p:?}\n{logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_flipped_bit_on_the_leader_it_should_hand_over_repair_from_the_new_leader_and_lose_nothing() {
    let mut env = Env::start(3, BROKER_ARGS).await;
    env.create_topic("damaged", 1, 3).await;
    env.wait_serving("damaged").await;
    let want = values(5000);
    produce_acked(env.cluster(), "damaged", want.clone()).await;
    wait_for(&env, "ISR of 3", |p| p.isr.len() == 3).await;
    let leader = describe(&env, "damaged").await.leader.unwrap();
    let damaged = &env.brokers[leader as usize - 1];
    let frags = files(&damaged.data_dir().join("damaged-0"), ".frag");
    assert!(frags.len() >= 2, "the test needs sealed fragments: {frags:?}");
    // One bit, in the middle of the first fragment's data.
    let mut bytes = std::fs::read(&frags[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x04;
    std::fs::write(&frags[0], &bytes).unwrap();

    // A reader finds the damage through the leader; it is never served,
    // the leadership moves, and the reader gets everything intact.
    let got = consume_all(env.cluster(), "damaged", want.len()).await;
    let got: Vec<String> = got.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect();
    assert_eq!(got, want);
    wait_for(&env, "another leader", |p| p.leader.is_some_and(|l| l != leader)).await;
    assert!(env.brokers[leader as usize - 1].log().contains("replica failed"));

    // The damaged broker cuts its log before the bad batch, fetches the
    // rest from the new leader and rejoins the ISR.
    wait_for(&env, "the repaired replica back in the ISR", |p| p.isr.contains(&leader)).await;
    assert!(env.brokers[leader as usize - 1].log().contains("repaired a damaged replica"));

    // Its copy is whole: with the other two gone, it leads and serves it all.
    for b in env.brokers.iter_mut().filter(|b| b.id != leader) {
        b.kill();
    }
    wait_for(&env, "the repaired replica to lead", |p| p.leader == Some(leader)).await;
    let got = consume_all(env.cluster(), "damaged", want.len()).await;
    assert_eq!(got.len(), want.len());
    assert!(got.iter().zip(&want).all(|(r, w)| r.value == w.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_zeroed_sector_in_a_sole_copy_it_should_be_reported_not_shortened() {
    let mut env = Env::start(1, BROKER_ARGS).await;
    env.create_topic("damaged", 1, 1).await;
    env.wait_serving("damaged").await;
    produce_acked(env.cluster(), "damaged", values(300)).await;
    env.brokers[0].stop();
    let wal = files(&env.brokers[0].data_dir().join("damaged-0"), ".wal").pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    assert!(bytes.len() > 64 * 1024, "the WAL holds the batches");
    // A whole sector in the middle of acknowledged data reads back as zeros.
    let sector = bytes.len() / 2 / 512 * 512;
    bytes[sector..sector + 512].fill(0);
    std::fs::write(&wal, &bytes).unwrap();
    env.brokers[0].restart();

    // Clients are told the replica is damaged (not NOT_LEADER, not an
    // empty or shortened partition).
    let cluster = env.cluster();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match cluster.list_offsets("damaged", 0, None).await {
            Err(ClientError::Server { code: ErrorCode::CorruptStorage, .. }) => break,
            Ok(o) => panic!("a damaged sole copy was served: {o:?}"),
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "never reported as damaged: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = http_get(env.brokers[0].http_address, "/ready").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("damaged/0"), "{body}");
    let (_, page) = http_get(env.brokers[0].http_address, "/metrics").unwrap();
    assert_eq!(metric(&page, "goulette_broker_partitions_failed"), Some(1.0), "{page}");
    assert_eq!(std::fs::read(&wal).unwrap(), bytes, "nothing was cut");
    // `cluster status` names it too.
    let out = std::process::Command::new(goulette_sentinel::testkit::bin_dir().join("goulette"))
        .args(["--sentinels", &env.sentinel.address.to_string(), "cluster", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("broker 1 damaged/0 failed: "), "{text}");
}
