//! The producer when it cannot send: its partition's only broker is gone,
//! or no sentinel hands it a producer id. Records queued behind a full
//! window fail after the retries instead of hanging the producer (its sender
//! once panicked on a `select!` with every branch off, leaving `send`
//! blocked).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Env;
use goulette_client::{Partitioner, Producer, ProducerConfig, ProducerRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_its_broker_gone_a_producer_should_fail_queued_records_not_hang() {
    let mut env = Env::start(1, &[]).await;
    env.create_topic("lonely", 1, 1).await;
    env.wait_serving("lonely").await;
    let config = ProducerConfig {
        window: 2,
        batch_bytes: 512,
        linger: Duration::ZERO,
        max_attempts: 3,
        retry_backoff: Duration::from_millis(20),
        max_retry_backoff: Duration::from_millis(100),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    let record = || ProducerRecord { topic: "lonely".into(), value: Bytes::from(vec![7u8; 600]), ..Default::default() };
    producer.send(record()).await.unwrap().wait().await.unwrap();
    env.brokers[0].kill();
    // Many more batches than the window: they queue, every retry fails.
    let sending = async {
        let mut deliveries = Vec::new();
        for _ in 0..40 {
            deliveries.push(producer.send(record()).await.unwrap());
        }
        let mut failed = 0;
        for d in deliveries {
            failed += usize::from(d.wait().await.is_err());
        }
        failed
    };
    let failed = tokio::time::timeout(Duration::from_secs(120), sending).await.expect("the producer hung");
    assert!(failed > 0, "with its only broker dead, records must fail");
    tokio::time::timeout(Duration::from_secs(60), producer.close()).await.expect("close hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_no_sentinel_for_its_producer_id_a_producer_should_fail_queued_records_not_hang() {
    let mut env = Env::start(1, &[]).await;
    env.create_topic("orphan", 1, 1).await;
    env.wait_serving("orphan").await;
    let cluster = env.cluster();
    // Metadata cached (the broker stays reachable), then the only sentinel
    // dies: the idempotent sender connects but cannot get a producer id,
    // and its retry finds no metadata either.
    cluster.topic("orphan", false).await.unwrap();
    let config = ProducerConfig {
        window: 2,
        batch_bytes: 512,
        linger: Duration::ZERO,
        max_attempts: 2,
        retry_backoff: Duration::from_millis(20),
        max_retry_backoff: Duration::from_millis(100),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(cluster, config, Partitioner::KeyHash);
    env.sentinel.kill();
    let record = || ProducerRecord { topic: "orphan".into(), value: Bytes::from(vec![7u8; 600]), ..Default::default() };
    // Two batches go to the sender, two wait in the accumulator.
    let mut deliveries = Vec::new();
    for _ in 0..4 {
        deliveries.push(producer.send(record()).await.unwrap());
    }
    let waiting = async {
        let mut failed = 0;
        for d in deliveries {
            failed += usize::from(d.wait().await.is_err());
        }
        failed
    };
    let failed = tokio::time::timeout(Duration::from_secs(90), waiting).await.expect("the producer hung");
    assert_eq!(failed, 4, "without a producer id nothing is sent");
    drop(producer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_broker_limit_equal_to_the_batch_size_every_message_should_be_acknowledged() {
    // The producer's default batch is 256 KiB: the broker accepts exactly that.
    let env = Env::start(1, &["--max-batch-bytes", "262144"]).await;
    env.create_topic("limited", 1, 1).await;
    env.wait_serving("limited").await;
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::RoundRobin);
    let mut deliveries = Vec::new();
    for i in 0..60_000 {
        let value = Bytes::from(format!("{i:0200}"));
        deliveries.push(
            producer.send(ProducerRecord { topic: "limited".into(), value, ..Default::default() }).await.unwrap(),
        );
    }
    let mut failed = 0;
    for d in deliveries {
        failed += usize::from(d.wait().await.is_err());
    }
    producer.close().await;
    assert_eq!(failed, 0, "messages refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_batches_larger_than_a_broker_accepts_the_producer_should_keep_under_its_reported_limit() {
    let env = Env::start(1, &["--max-batch-bytes", "16384", "--fragment-bytes", "65536"]).await;
    env.create_topic("small", 1, 1).await;
    env.wait_serving("small").await;
    // The producer asks for 1 MiB batches; the broker's 16 KiB limit,
    // learnt from the metadata, wins.
    let config = ProducerConfig { batch_bytes: 1 << 20, ..ProducerConfig::default() };
    let producer = Producer::new(env.cluster(), config, Partitioner::RoundRobin);
    let mut deliveries = Vec::new();
    for i in 0..5_000 {
        let value = Bytes::from(format!("{i:0100}"));
        deliveries
            .push(producer.send(ProducerRecord { topic: "small".into(), value, ..Default::default() }).await.unwrap());
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
    assert_eq!(common::consume_all(env.cluster(), "small", 5_000).await.len(), 5_000);
}
