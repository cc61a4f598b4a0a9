//! Topic administration at its edges, against real processes: the longest
//! legal name is stored and served, reserved `__` names are refused,
//! concurrent creations of distinct topics all succeed; a topic's settings
//! change at runtime (brokers apply them without a restart) and a topic
//! grows to more partitions that producers and consumers reach.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Env, consume_all, produce_acked};
use goulette_client::ClientError;
use goulette_proto::v1::{self as pb, ErrorCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_249_character_name_should_create_produce_and_consume() {
    let env = Env::start(1, &[]).await;
    let name = "n".repeat(goulette_proto::MAX_TOPIC_NAME_LEN);
    env.create_topic(&name, 2, 1).await;
    env.wait_serving(&name).await;
    produce_acked(env.cluster(), &name, (0..10).map(|i| format!("m{i}"))).await;
    assert_eq!(consume_all(env.cluster(), &name, 10).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_reserved_name_should_refuse_it_and_create_nothing() {
    let env = Env::start(1, &[]).await;
    match env.create_topic_result("__foo").await {
        Err(ClientError::Server { code: ErrorCode::InvalidArgument, message }) => {
            assert!(message.contains("reserved"), "{message}")
        }
        other => panic!("__foo was not refused: {other:?}"),
    }
    let topics = goulette_client::Admin::new(env.cluster()).list_topics().await.unwrap();
    assert!(topics.iter().all(|t| t.name != "__foo"), "{topics:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_20_concurrent_creations_of_distinct_topics_should_all_succeed() {
    let env = Env::start(1, &[]).await;
    let mut creations = tokio::task::JoinSet::new();
    for i in 0..20 {
        let admin = goulette_client::Admin::new(env.cluster());
        let config =
            pb::TopicConfig { name: format!("c{i}"), partitions: 1, replication_factor: 1, ..Default::default() };
        creations.spawn(async move { admin.create_topic(config).await });
    }
    let results = creations.join_all().await;
    let failed: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    assert!(failed.is_empty(), "{} of 20 failed: {failed:?}", failed.len());
    // A second creation of one of them is the one true TopicExists.
    match env.create_topic_result("c3").await {
        Err(ClientError::Server { code: ErrorCode::TopicExists, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_topic_altered_at_runtime_its_broker_should_apply_the_new_retention_without_a_restart() {
    let env = Env::start(1, &["--fragment-bytes", "65536", "--max-batch-bytes", "16384"]).await;
    env.create_topic("shrink", 1, 1).await;
    env.wait_serving("shrink").await;
    // About 600 KB: several sealed fragments, none old enough to go.
    produce_acked(env.cluster(), "shrink", (0..3000).map(|i| format!("{i:0>200}"))).await;
    let admin = goulette_client::Admin::new(env.cluster());
    let start = |report: goulette_client::admin::TopicReport| report.partition_details[0].log_start_offset;
    assert_eq!(start(admin.describe_topic("shrink").await.unwrap()), Some(0));

    let req = pb::AlterTopicRequest { name: "shrink".into(), retention_bytes: Some(100_000), ..Default::default() };
    let altered = admin.alter_topic(req).await.unwrap();
    assert_eq!(altered.config.as_ref().map(|c| c.retention_bytes), Some(100_000));
    assert_eq!(altered.config.as_ref().map(|c| c.min_insync_replicas), Some(1), "the rest is kept");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let report = admin.describe_topic("shrink").await.unwrap();
        if start(report).is_some_and(|s| s > 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the broker never applied retention_bytes=100000");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Refusals: more in-sync replicas than replicas, an internal topic, an unknown one.
    let too_many = pb::AlterTopicRequest { name: "shrink".into(), min_insync_replicas: Some(2), ..Default::default() };
    assert!(matches!(
        admin.alter_topic(too_many).await,
        Err(ClientError::Server { code: ErrorCode::InvalidArgument, .. })
    ));
    let internal = pb::AlterTopicRequest { name: "__offsets".into(), retention_ms: Some(1), ..Default::default() };
    assert!(matches!(
        admin.alter_topic(internal).await,
        Err(ClientError::Server { code: ErrorCode::InvalidArgument, .. })
    ));
    let unknown = pb::AlterTopicRequest { name: "nope".into(), retention_ms: Some(1), ..Default::default() };
    assert!(matches!(admin.alter_topic(unknown).await, Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_topic_grown_to_more_partitions_producers_and_consumers_should_reach_the_new_ones() {
    let env = Env::start(2, &[]).await;
    env.create_topic("grow", 2, 2).await;
    env.wait_serving("grow").await;
    let admin = goulette_client::Admin::new(env.cluster());
    let grown = admin.add_partitions("grow", 5).await.unwrap();
    assert_eq!(grown.partitions.len(), 5);
    assert!(grown.partitions.iter().all(|p| p.replicas.len() == 2), "{:?}", grown.partitions);
    env.wait_serving("grow").await;

    // Round robin over a fresh client's metadata reaches every partition.
    produce_acked(env.cluster(), "grow", (0..50).map(|i| format!("m{i}"))).await;
    let consumed = consume_all(env.cluster(), "grow", 50).await;
    let partitions: std::collections::BTreeSet<u32> = consumed.iter().map(|r| r.partition).collect();
    assert_eq!(partitions, (0..5).collect(), "every partition, the new ones included");

    for total in [5, 3] {
        match admin.add_partitions("grow", total).await {
            Err(ClientError::Server { code: ErrorCode::InvalidArgument, message }) => {
                assert!(message.contains("must be more"), "{message}")
            }
            other => panic!("growing to {total} was not refused: {other:?}"),
        }
    }
    assert!(matches!(
        admin.add_partitions("__offsets", 100).await,
        Err(ClientError::Server { code: ErrorCode::InvalidArgument, .. })
    ));
    assert!(matches!(
        admin.add_partitions("nope", 3).await,
        Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. })
    ));
}
