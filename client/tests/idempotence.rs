//! Idempotent producers: a batch whose response was lost, or whose leader
//! died after storing and replicating it, is retried and stored once, with
//! the offsets of the original. Faults come from the broker's failpoints.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Env, consume_all};
use goulette_client::{Admin, Partitioner, Producer, ProducerConfig, ProducerRecord};

const FAILPOINT: &str = "GOULETTE_FAILPOINT_PRODUCE_RESPONSE";

/// Sends `n` messages one at a time (each waits for its acknowledgement);
/// returns their offsets.
async fn send_each(env: &Env, topic: &str, n: usize, idempotent: bool) -> Vec<u64> {
    let config = ProducerConfig { idempotent, ..ProducerConfig::default() };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    let mut offsets = Vec::new();
    for i in 0..n {
        let r = ProducerRecord { topic: topic.into(), value: Bytes::from(format!("m{i}")), ..Default::default() };
        offsets.push(producer.send(r).await.unwrap().wait().await.unwrap().offset.unwrap());
    }
    producer.close().await;
    offsets
}

async fn wait_full_isr(env: &Env, topic: &str) {
    let admin = Admin::new(env.cluster());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !admin.describe_topic(topic).await.unwrap().partition_details.iter().all(|p| p.isr.len() == 3) {
        assert!(tokio::time::Instant::now() < deadline, "ISR never full");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn values(records: &[goulette_client::ConsumedRecord]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_lost_responses_an_idempotent_producer_should_store_each_batch_once() {
    // Each broker drops its first two produce responses (only the leader answers).
    let env = Env::start_with_env(3, &[], &[(FAILPOINT, "drop:2")]).await;
    env.create_topic("once", 1, 3).await;
    env.wait_serving("once").await;
    wait_full_isr(&env, "once").await;

    let offsets = send_each(&env, "once", 10, true).await;
    assert_eq!(offsets, (0..10).collect::<Vec<_>>(), "retries answered with the original offsets");
    let stored = consume_all(env.cluster(), "once", 10).await;
    assert_eq!(values(&stored), (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    let log = env.brokers.iter().map(|b| b.log()).collect::<String>();
    assert!(log.contains("failpoint: dropping a produce response"), "the fault never fired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_lost_responses_a_producer_without_idempotence_should_store_a_batch_twice() {
    // The control: the same fault without idempotence duplicates.
    let env = Env::start_with_env(1, &[], &[(FAILPOINT, "drop:1")]).await;
    env.create_topic("twice", 1, 1).await;
    env.wait_serving("twice").await;
    let offsets = send_each(&env, "twice", 3, false).await;
    assert_eq!(offsets, vec![1, 2, 3], "the first message was stored twice (offsets 0 and 1)");
    let stored = consume_all(env.cluster(), "twice", 4).await;
    assert_eq!(values(&stored), ["m0", "m0", "m1", "m2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_leader_that_dies_before_answering_the_retry_to_the_new_leader_should_not_duplicate() {
    let marker = tempfile::tempdir().unwrap();
    let spec = format!("crash-once:{}", marker.path().join("crashed").display());
    let env = Env::start_with_env(3, &[], &[(FAILPOINT, spec.as_str())]).await;
    env.create_topic("survive", 1, 3).await;
    env.wait_serving("survive").await;
    wait_full_isr(&env, "survive").await;
    let before = Admin::new(env.cluster()).describe_topic("survive").await.unwrap().partition_details[0].clone();

    // The leader stores and replicates m0, then exits instead of answering;
    // the producer retries m0 at the new leader, which has it.
    let offsets = send_each(&env, "survive", 5, true).await;
    assert_eq!(offsets, (0..5).collect::<Vec<_>>());
    let after = Admin::new(env.cluster()).describe_topic("survive").await.unwrap().partition_details[0].clone();
    assert!(after.leader != before.leader && after.leader_epoch > before.leader_epoch, "{before:?} -> {after:?}");
    let stored = consume_all(env.cluster(), "survive", 5).await;
    assert_eq!(values(&stored), (0..5).map(|i| format!("m{i}")).collect::<Vec<_>>());
}
