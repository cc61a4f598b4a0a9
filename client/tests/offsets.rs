//! Committed offsets: a consumer of a group resumes where the last one
//! committed, the offsets survive the death of their coordinator (the
//! leader of the group's `__offsets` partition). (The CLI consuming,
//! describing and resetting a group: `client/cli/tests/cli.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Env, produce_values};
use goulette_client::offsets::{self, OFFSETS_TOPIC};
use goulette_client::{
    Admin, ClientError, Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, ProducerRecord, StartAt,
};
use goulette_proto::v1::ErrorCode;

async fn take(consumer: &mut Consumer, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await {
            Ok(Some(Ok(r))) => out.push(String::from_utf8_lossy(&r.value).into_owned()),
            other => panic!("after {out:?}: {other:?}"),
        }
    }
    out
}

fn group_config(group: &str) -> ConsumerConfig {
    ConsumerConfig { start: StartAt::Beginning, group: Some(group.into()), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_commits_the_next_consumer_should_resume_there_even_after_the_coordinator_dies() {
    let mut env = Env::start(3, &[]).await;
    env.create_topic("work", 1, 3).await;
    env.wait_serving("work").await;
    let values: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    produce_values(env.cluster(), "work", &values.iter().map(String::as_str).collect::<Vec<_>>()).await;

    let mut first = Consumer::subscribe(env.cluster(), "work", group_config("app")).await.unwrap();
    assert_eq!(take(&mut first, 4).await, values[..4]);
    first.commit().await.unwrap();
    drop(first);
    let mut second = Consumer::subscribe(env.cluster(), "work", group_config("app")).await.unwrap();
    assert_eq!(take(&mut second, 6).await, values[4..], "resumes at the committed offset");
    second.commit().await.unwrap();
    drop(second);
    // Another group starts from its own position.
    let mut other = Consumer::subscribe(env.cluster(), "work", group_config("other")).await.unwrap();
    assert_eq!(take(&mut other, 1).await, values[..1]);

    // Auto-commit commits what earlier calls delivered, when asked for more.
    let config = ConsumerConfig { auto_commit: Some(Duration::ZERO), ..group_config("auto") };
    let mut auto = Consumer::subscribe(env.cluster(), "work", config).await.unwrap();
    take(&mut auto, 3).await;
    assert!(offsets::fetch(&env.cluster(), "auto", "work").await.unwrap().get(&0).is_none_or(|o| *o < 3));
    take(&mut auto, 1).await;
    assert_eq!(offsets::fetch(&env.cluster(), "auto", "work").await.unwrap().get(&0), Some(&3));

    // The coordinator dies; its successor rebuilds the offsets from the log.
    let coordinator_partition = offsets::partition_for("app", offsets::OFFSETS_PARTITIONS);
    let meta = Admin::new(env.cluster()).describe_topic(OFFSETS_TOPIC).await.unwrap();
    let p = &meta.partition_details[coordinator_partition as usize];
    assert_eq!(p.replicas.len(), 3, "__offsets is replicated: {p:?}");
    env.brokers[p.leader.unwrap() as usize - 1].kill();
    let committed = offsets::fetch(&env.cluster(), "app", "work").await.unwrap();
    assert_eq!(committed.into_iter().collect::<Vec<_>>(), vec![(0, 10)]);
    let mut third = Consumer::subscribe(env.cluster(), "work", group_config("app")).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(500), third.recv()).await.is_err(), "nothing left for app");

    // Clients can neither write to nor delete the internal topic.
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    let forged =
        ProducerRecord { topic: OFFSETS_TOPIC.into(), partition: Some(0), value: "x".into(), ..Default::default() };
    let refused = producer.send(forged).await.unwrap().wait().await.unwrap_err();
    assert!(matches!(refused, ClientError::Server { code: ErrorCode::InvalidArgument, .. }), "{refused}");
    producer.close().await;
    assert!(Admin::new(env.cluster()).delete_topic(OFFSETS_TOPIC).await.is_err());

    // Without a group there is nothing to commit to.
    let mut plain = Consumer::subscribe(env.cluster(), "work", ConsumerConfig::default()).await.unwrap();
    assert!(matches!(plain.commit().await, Err(ClientError::InvalidArgument(_))));
}
