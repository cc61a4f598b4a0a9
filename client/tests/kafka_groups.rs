//! One group, one protocol: a native consumer asked to join a group that
//! Kafka-protocol consumers (confluent-kafka, through the brokers' Kafka
//! listeners) hold gets a clear error, and the Kafka members keep the group.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Env;
use goulette_client::{Consumer, ConsumerConfig, GroupOptions, StartAt};
use goulette_sentinel::testkit::signal;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_group_of_kafka_consumers_a_native_member_should_be_refused_with_a_clear_error() {
    let env = Env::start(1, &["--kafka-group-initial-delay", "100ms"]).await;
    let cluster = env.cluster();
    let admin = goulette_client::Admin::new(cluster.clone());
    let topic = goulette_proto::v1::TopicConfig { name: "mixed".into(), partitions: 2, ..Default::default() };
    admin.create_topic(topic).await.unwrap();
    let python = repo().join(".venv/bin/python");
    assert!(python.exists(), "run `make deps`");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("member.txt");
    let member = Command::new(&python)
        .arg(repo().join("broker/tests/kafka/group_member.py"))
        .args([&env.brokers[0].kafka_address.to_string(), "mixed", "shared-group"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the Kafka member holds the group.
    let assigned = work.path().join("member.txt.assigned");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&assigned).unwrap_or_default().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the Kafka member was never assigned partitions");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let described = goulette_client::offsets::describe_kafka_group(&cluster, "shared-group").await.unwrap().unwrap();
    assert_eq!(described.members.len(), 1);
    assert_eq!(described.state, "Stable");
    assert_eq!(described.members[0].topics, vec!["mixed".to_owned()]);
    assert_eq!(described.members[0].assigned.len(), 2, "{described:?}");

    let config = ConsumerConfig {
        start: StartAt::Beginning,
        group: Some("shared-group".into()),
        membership: Some(GroupOptions::default()),
        ..Default::default()
    };
    let mut native = Consumer::subscribe(cluster.clone(), "mixed", config).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(20), native.recv()).await.expect("an answer");
    let error = match refused {
        Some(Err(e)) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(error.contains("Kafka-protocol consumer") && error.contains("one protocol"), "{error}");
    // The Kafka member still holds the group.
    let described = goulette_client::offsets::describe_kafka_group(&cluster, "shared-group").await.unwrap().unwrap();
    assert_eq!(described.members.len(), 1);
    signal(&member, libc::SIGTERM);
    let _ = member.wait_with_output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_group_of_native_consumers_a_kafka_member_should_get_inconsistent_group_protocol() {
    let env = Env::start(1, &["--kafka-group-initial-delay", "100ms"]).await;
    let cluster = env.cluster();
    let admin = goulette_client::Admin::new(cluster.clone());
    let topic = goulette_proto::v1::TopicConfig { name: "held".into(), partitions: 2, ..Default::default() };
    admin.create_topic(topic).await.unwrap();
    let config = ConsumerConfig {
        start: StartAt::Beginning,
        group: Some("native-group".into()),
        membership: Some(GroupOptions::default()),
        ..Default::default()
    };
    let native = Consumer::subscribe(cluster.clone(), "held", config).await.unwrap();
    // The native member is in once the sentinels list it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while admin.describe_group("native-group").await.map(|g| g.members.len()).unwrap_or(0) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the native member never joined");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("broker/tests/kafka/join_refused.py"))
        .args([&env.brokers[0].kafka_address.to_string(), "held", "native-group"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        admin.describe_group("native-group").await.unwrap().members.len(),
        1,
        "the native member keeps the group"
    );
    drop(native);
}
