//! Fault injection: a workload of `acks=all` producers, consumers and the
//! members of a consumer group (native clients, and a confluent-kafka
//! producer and consumer through the brokers' Kafka listeners) runs
//! against 3 sentinels and 4 brokers while a seeded nemesis kills, pauses
//! and restarts them; a checker then verifies that no acknowledged message
//! was lost, reordered or missed by the group, and nothing delivered
//! disappeared.
//!
//! `make test` runs a short version with a fixed seed; `make chaos` runs
//! `DURATION` seconds (default 300) with `SEED` (random by default).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod checker;
mod cluster;
mod kafka;
mod nemesis;
mod workload;

use std::time::Duration;

use cluster::ChaosCluster;
use goulette_proto::v1 as pb;

const TOPIC: &str = "chaos";
const PARTITIONS: u32 = 6;
/// The seed of the short run in `make test` (its plan is checked in `nemesis`).
const SHORT_SEED: u64 = 8920;

async fn run(seed: u64, duration: Duration) {
    println!("chaos: seed {seed}, {duration:?} of faults");
    let mut cluster = ChaosCluster::start().await;
    let client = cluster.client();
    let config =
        pb::TopicConfig { name: TOPIC.into(), partitions: PARTITIONS, replication_factor: 3, ..Default::default() };
    goulette_client::Admin::new(client.clone()).create_topic(config).await.unwrap();
    let before = cluster.wait_healthy(TOPIC, Duration::from_secs(30)).await;

    let workload = workload::Workload::start(&client, TOPIC, PARTITIONS, 3, 2, 2, 150);
    let mut kafka = kafka::KafkaWorkload::start(&cluster.kafka_bootstrap(), TOPIC, PARTITIONS, 150);
    let until = std::time::Instant::now() + duration;
    let runtime = tokio::runtime::Handle::current();
    let (cluster_back, journal) = tokio::task::spawn_blocking(move || {
        let journal = nemesis::run(&mut cluster, seed, until, TOPIC, &runtime);
        (cluster, journal)
    })
    .await
    .expect("the nemesis panicked");
    cluster = cluster_back;
    println!("{}", journal.join("\n"));

    // Everything is back: let the workload see the healed cluster, then stop it.
    let after = cluster.wait_healthy(TOPIC, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (kafka_acks, kafka_sent, kafka_failed) = kafka.stop_producer();
    let mut history = workload.finish(kafka_acks).await;
    history.operations += kafka_sent;
    history.failed += kafka_failed;
    kafka.finish(&mut history);
    cluster.wait_healthy(TOPIC, Duration::from_secs(60)).await;
    for p in 0..PARTITIONS {
        // A leader that just took over learns its high watermark back from
        // its followers: read only once it covers every acknowledgement.
        let acked_end = history.acks.iter().filter(|a| a.partition == p).map(|a| a.offset + 1).max().unwrap_or(0);
        history.final_logs.insert(p, workload::read_partition(&client, TOPIC, p, acked_end).await);
        history.epochs.insert(p, (before[&p].1, after[&p].1));
    }
    let report = checker::check(&history);
    let summary = checker::summary(seed, &history, &report);
    println!("{summary}");
    // Guards against a run that proves nothing.
    assert!(history.acks.len() as u64 > history.operations / 2, "too little got through to prove anything\n{summary}");
    assert!(history.epochs.values().any(|(b, a)| a > b), "no leader ever changed\n{summary}");
    assert!(history.observed.values().all(|seen| !seen.is_empty()), "a consumer saw nothing\n{summary}");
    let kafka_acks = history.acks.iter().filter(|a| a.producer == kafka::PRODUCER_ID).count();
    assert!(kafka_acks > 100, "the Kafka producer got only {kafka_acks} acknowledgements\n{summary}");
    assert!(report.passed(), "{summary}\n{}", cluster.log_tails());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_minute_of_faults_no_acknowledged_message_should_be_lost_or_reordered() {
    let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SHORT_SEED);
    run(seed, Duration::from_secs(45)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run with `make chaos`"]
async fn chaos() {
    let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let seconds = std::env::var("DURATION").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    run(seed, Duration::from_secs(seconds)).await;
}
