//! Redelivery with dead letters against a real cluster: a group whose
//! `max_deliveries` is set to 3 with `goulette group alter`, and whose
//! handler keeps failing, nacks each record; every record comes back from
//! the group's retry topic after its delay, without holding up the others,
//! and after its third delivery lands in the dead-letter topic exactly
//! once, with its source and count, across a kill -9 of the group's
//! coordinator.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::Env;
use goulette_client::handler::{self, Outcome, RetryPolicy};
use goulette_client::nack::Redelivery;
use goulette_client::{
    Consumer, ConsumerConfig, GroupOptions, Partitioner, Producer, ProducerConfig, ProducerRecord, StartAt,
};

const RECORDS: usize = 20;
const MAX_DELIVERIES: u32 = 3;

fn header(r: &goulette_client::ConsumedRecord, name: &str) -> String {
    r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8(v.to_vec()).unwrap()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacked_records_come_back_and_land_in_the_dead_letter_topic_once_across_a_coordinator_kill() {
    let mut env = Env::start(3, &[]).await;
    env.create_topic("orders", 2, 3).await;
    env.wait_serving("orders").await;
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    for i in 0..RECORDS {
        let record = ProducerRecord {
            topic: "orders".into(),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Bytes::from(format!("v{i}")),
            ..Default::default()
        };
        producer.send(record).await.unwrap().wait().await.unwrap();
    }
    producer.close().await;

    // The group's setting, kept by the sentinels; every member reads it.
    env.cli_ok(&["group", "alter", "billing", "--max-deliveries", &MAX_DELIVERIES.to_string()]);
    assert!(env.cli_ok(&["group", "describe", "billing"]).contains("max_deliveries 3"));
    let redelivery = Arc::new(Redelivery::for_group(env.cluster(), "billing").await.unwrap());
    redelivery.prepare("orders").await.unwrap();
    env.wait_serving("billing.retry").await;
    env.wait_serving("billing.dlq").await;
    let config = |_: &str| ConsumerConfig {
        start: StartAt::Beginning,
        group: Some("billing".into()),
        membership: Some(GroupOptions::default()),
        auto_commit: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let mut source = Consumer::subscribe(env.cluster(), "orders", config("orders")).await.unwrap();
    let mut retries = Consumer::subscribe(env.cluster(), "billing.retry", config("billing.retry")).await.unwrap();
    // Deliveries of each record, and when; outcomes counted.
    let seen: Arc<Mutex<HashMap<String, Vec<std::time::Instant>>>> = Arc::default();
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(400),
        max_backoff: Duration::from_secs(1),
        ..Default::default()
    };
    let worker = {
        let (seen, outcomes, redelivery) = (seen.clone(), outcomes.clone(), redelivery.clone());
        tokio::spawn(async move {
            handler::process_redelivering(
                &mut source,
                &mut retries,
                &redelivery,
                &policy,
                |r| {
                    let value = String::from_utf8(r.value.to_vec()).unwrap();
                    seen.lock().unwrap().entry(value).or_default().push(std::time::Instant::now());
                    async { Err::<(), _>("boom") }
                },
                |_, outcome| outcomes.lock().unwrap().push(outcome.clone()),
            )
            .await
        })
    };

    // Kill the coordinator of the group once redelivery is under way.
    let dead_lettered =
        || outcomes.lock().unwrap().iter().filter(|o| matches!(o, Outcome::DeadLettered { .. })).count();
    let redelivered = || outcomes.lock().unwrap().iter().filter(|o| matches!(o, Outcome::Redelivered { .. })).count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while redelivered() < RECORDS + 5 {
        assert!(tokio::time::Instant::now() < deadline, "{} redelivered", redelivered());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cluster = env.cluster();
    let offsets = cluster.topic("__offsets", false).await.unwrap();
    let partition = goulette_client::offsets::partition_for("billing", offsets.partitions.len() as u32);
    let coordinator = offsets.partitions[partition as usize].leader.unwrap();
    assert!(dead_lettered() < RECORDS, "the kill comes while records are still being redelivered");
    env.brokers[coordinator as usize - 1].kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.brokers[coordinator as usize - 1].restart();

    while dead_lettered() < RECORDS {
        assert!(tokio::time::Instant::now() < deadline + Duration::from_secs(60), "{} dead-lettered", dead_lettered());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.abort();

    // Each record was delivered three times, the later ones no sooner than
    // their backoff after the one before.
    for (value, times) in seen.lock().unwrap().iter() {
        assert_eq!(times.len(), MAX_DELIVERIES as usize, "{value} delivered {} times", times.len());
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(150), "{value} came back too soon");
        }
    }
    // The dead-letter topic holds each record once, with its source.
    let dlq = common::consume_all(env.cluster(), "billing.dlq", RECORDS).await;
    let mut letters: HashMap<String, goulette_client::ConsumedRecord> = HashMap::new();
    for r in dlq {
        let value = String::from_utf8(r.value.to_vec()).unwrap();
        assert_eq!(header(&r, handler::HEADER_SOURCE_TOPIC), "orders");
        assert_eq!(header(&r, handler::HEADER_ATTEMPTS), MAX_DELIVERIES.to_string());
        assert_eq!(header(&r, handler::HEADER_ERROR), "boom");
        assert!(!header(&r, handler::HEADER_SOURCE_OFFSET).is_empty());
        assert!(letters.insert(value.clone(), r).is_none(), "{value} dead-lettered twice");
    }
    assert_eq!(letters.len(), RECORDS);
}
