//! Topic creation at its edges, against real processes: the longest legal
//! name is stored and served, reserved `__` names are refused, and
//! concurrent creations of distinct topics all succeed.

#![allow(clippy::unwrap_used)]

mod common;

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
