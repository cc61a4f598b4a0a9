//! Ring changes move replicas without losing data: a decommissioned broker's
//! replicas and those of a broker gone past `--replica-reassign-after` are
//! rebuilt on other brokers by copying from the leaders (sealed fragments
//! included); a broker that comes back gets its share again.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Env, consume_all};
use goulette_client::admin::PartitionReport;
use goulette_client::{Admin, Partitioner, Producer, ProducerConfig, ProducerRecord};

const TOPIC: &str = "moving";
const PARTITIONS: u32 = 4;
// Small fragments, so that what is copied is mostly sealed fragment files.
const BROKER_ARGS: &[&str] = &["--fragment-bytes", "262144", "--max-batch-bytes", "262144", "--replica-lag-max", "3s"];

async fn partitions(env: &Env) -> Vec<PartitionReport> {
    Admin::new(env.cluster()).describe_topic(TOPIC).await.unwrap().partition_details
}

/// Waits until every partition has `rf` replicas, all in sync, satisfying `placed`.
async fn wait_placed(env: &Env, what: &str, placed: impl Fn(&PartitionReport) -> bool) -> Vec<PartitionReport> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ps = partitions(env).await;
        if ps.iter().all(|p| p.replicas.len() == 3 && p.isr.len() == 3 && p.leader.is_some() && placed(p)) {
            return ps;
        }
        if tokio::time::Instant::now() >= deadline {
            let logs: Vec<String> = env.brokers.iter().map(|b| format!("--- broker {}:\n{}", b.id, b.log())).collect();
            panic!("never {what}: {ps:?}\n{}\n{}", env.sentinel.log(), logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Produces `n` messages of about 1 KiB; returns their values by partition, in order.
async fn produce(env: &Env, n: usize) -> BTreeMap<u32, Vec<Bytes>> {
    let config = ProducerConfig { batch_bytes: 64 << 10, ..ProducerConfig::default() };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..n {
        let value = Bytes::from(format!("m{i}-{}", "x".repeat(1000)));
        let r = ProducerRecord {
            topic: TOPIC.into(),
            key: Some(Bytes::from(format!("k{i}"))),
            value: value.clone(),
            ..Default::default()
        };
        deliveries.push((producer.send(r).await.unwrap(), value));
    }
    let mut by_partition: BTreeMap<u32, Vec<Bytes>> = BTreeMap::new();
    for (d, value) in deliveries {
        by_partition.entry(d.wait().await.unwrap().partition).or_default().push(value);
    }
    producer.close().await;
    by_partition
}

/// Reads everything and compares with what was acknowledged.
async fn assert_all_there(env: &Env, want: &BTreeMap<u32, Vec<Bytes>>) {
    let total = want.values().map(Vec::len).sum();
    let mut got: BTreeMap<u32, Vec<Bytes>> = BTreeMap::new();
    for r in consume_all(env.cluster(), TOPIC, total).await {
        got.entry(r.partition).or_default().push(r.value);
    }
    assert!(got == *want, "the partitions' contents changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_decommissioned_broker_its_replicas_should_be_copied_elsewhere_before_it_leaves() {
    let mut env = Env::start(4, BROKER_ARGS).await;
    env.create_topic(TOPIC, PARTITIONS, 3).await;
    env.wait_serving(TOPIC).await;
    wait_placed(&env, "in sync", |_| true).await;
    let want = produce(&env, 2000).await;

    // The broker holding the most replicas leaves.
    let before = partitions(&env).await;
    let gone = (1..=4).max_by_key(|b| before.iter().filter(|p| p.replicas.contains(b)).count()).unwrap();
    let admin = Admin::new(env.cluster());
    admin.decommission_broker(gone, false).await.unwrap();
    let after = wait_placed(&env, "moved off the decommissioned broker", |p| !p.replicas.contains(&gone)).await;
    let status = admin.cluster_status().await.unwrap();
    let info = status.brokers.iter().find(|b| b.id == gone).unwrap();
    assert!(info.decommissioned && info.replicas == 0, "{info:?}");
    // Its copies are deleted.
    let data = env.brokers[gone as usize - 1].data_dir();
    for p in before.iter().filter(|p| p.replicas.contains(&gone)) {
        let dir = data.join(format!("{TOPIC}-{}", p.partition));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while dir.exists() {
            assert!(tokio::time::Instant::now() < deadline, "{} still exists", dir.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    env.brokers[gone as usize - 1].stop();

    // Nothing was lost, and a moved replica holds everything by itself:
    // stop the others of one moved partition; it alone is read.
    assert_all_there(&env, &want).await;
    let moved = after.iter().find(|p| before[p.partition as usize].replicas.contains(&gone)).unwrap();
    let newcomer = *moved.replicas.iter().find(|b| !before[moved.partition as usize].replicas.contains(b)).unwrap();
    for b in moved.replicas.iter().filter(|b| **b != newcomer) {
        env.brokers[*b as usize - 1].kill();
    }
    let config = goulette_client::ConsumerConfig {
        partitions: Some(vec![moved.partition]),
        start: goulette_client::StartAt::Beginning,
        ..Default::default()
    };
    let mut consumer = goulette_client::Consumer::subscribe(env.cluster(), TOPIC, config).await.unwrap();
    let mut values = Vec::new();
    while values.len() < want[&moved.partition].len() {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(Some(Ok(r))) => values.push(r.value),
            other => panic!("reading from broker {newcomer} alone stopped after {}: {other:?}", values.len()),
        }
    }
    assert!(values == want[&moved.partition], "broker {newcomer}'s copy differs");

    // Undo is refused for nobody: recommissioning makes it eligible again.
    admin.decommission_broker(gone, true).await.unwrap();
    assert!(admin.decommission_broker(99, false).await.is_err(), "an unknown broker cannot be decommissioned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_broker_gone_past_the_reassign_delay_its_replicas_should_be_rebuilt_and_move_back_when_it_returns() {
    let mut env = Env::start_with(4, &["--replica-reassign-after", "3s"], BROKER_ARGS).await;
    env.create_topic(TOPIC, PARTITIONS, 3).await;
    env.wait_serving(TOPIC).await;
    let placed = wait_placed(&env, "in sync", |_| true).await;
    let mut want = produce(&env, 1000).await;

    let gone = (1..=4).max_by_key(|b| placed.iter().filter(|p| p.replicas.contains(b)).count()).unwrap();
    env.brokers[gone as usize - 1].kill();
    wait_placed(&env, "rebuilt without the dead broker", |p| !p.replicas.contains(&gone)).await;
    for (p, more) in produce(&env, 500).await {
        want.entry(p).or_default().extend(more);
    }
    assert_all_there(&env, &want).await;

    // It returns: the ring gives it its partitions back, each copied (or
    // caught up from its old data) before the other replica leaves.
    env.brokers[gone as usize - 1].restart();
    wait_placed(&env, "back to the original placement", |p| {
        placed.iter().any(|q| q.partition == p.partition && sorted(&q.replicas) == sorted(&p.replicas))
    })
    .await;
    assert_all_there(&env, &want).await;
}

fn sorted(v: &[u32]) -> Vec<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}
