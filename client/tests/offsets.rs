//! Committed offsets: a consumer of a group resumes where the last one
//! committed, the offsets survive the death of their coordinator (the
//! leader of the group's `__offsets` partition), and the CLI consumes,
//! describes and resets a group.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Env, produce_values};
use goulette_client::offsets::{self, OFFSETS_TOPIC};
use goulette_client::{
    Admin, ClientError, Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, ProducerRecord, StartAt,
};
use goulette_proto::v1::ErrorCode;
use goulette_sentinel::testkit::bin_dir;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_cli_a_group_should_consume_in_turns_be_described_and_reset() {
    let env = Env::start(1, &[]).await;
    env.create_topic("jobs", 1, 1).await;
    env.wait_serving("jobs").await;
    produce_values(env.cluster(), "jobs", &["j0", "j1", "j2", "j3", "j4", "j5"]).await;
    let sentinels = env.sentinel.address.to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin_dir().join("goulette"))
            .args(args)
            .env("GOULETTE_SENTINELS", &sentinels)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let consume = ["consume", "--topic", "jobs", "--group", "g", "--from-beginning", "--max-messages", "3"];
    assert_eq!(run(&[&consume[..], &["--timeout", "10s"]].concat()), "j0\nj1\nj2\n");
    assert_eq!(run(&[&consume[..], &["--timeout", "10s"]].concat()), "j3\nj4\nj5\n");

    let described: serde_json::Value =
        serde_json::from_str(&run(&["group", "describe", "g", "--topic", "jobs", "--format", "json"])).unwrap();
    let p0 = &described["partitions"][0];
    assert_eq!((p0["committed"].as_u64(), p0["log_end"].as_u64(), p0["lag"].as_u64()), (Some(6), Some(6), Some(0)));

    run(&["group", "reset", "g", "--topic", "jobs", "--to", "2"]);
    assert_eq!(run(&["consume", "--topic", "jobs", "--group", "g", "--max-messages", "1", "--timeout", "10s"]), "j2\n");
    run(&["group", "reset", "g", "--topic", "jobs", "--to", "earliest"]);
    assert_eq!(run(&["consume", "--topic", "jobs", "--group", "g", "--max-messages", "1", "--timeout", "10s"]), "j0\n");

    // A second group, then deleting the first: it is gone, and starts over.
    run(&["group", "reset", "h", "--topic", "jobs", "--to", "latest"]);
    assert_eq!(run(&["group", "list"]), "g\nh\n");
    run(&["group", "delete", "g"]);
    assert_eq!(run(&["group", "list"]), "h\n");
    let described: serde_json::Value =
        serde_json::from_str(&run(&["group", "describe", "g", "--topic", "jobs", "--format", "json"])).unwrap();
    assert!(described["partitions"][0]["committed"].is_null(), "{described}");
    assert_eq!(
        run(&[
            "consume",
            "--topic",
            "jobs",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "1",
            "--timeout",
            "10s"
        ]),
        "j0\n"
    );

    // Interrupted with Ctrl-C (SIGINT), a consumer commits what it printed.
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin_dir().join("goulette"))
        .args(["consume", "--topic", "jobs", "--group", "int", "--from-beginning"])
        .env("GOULETTE_SENTINELS", &sentinels)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for want in ["j0", "j1", "j2", "j3", "j4", "j5"] {
        assert_eq!(lines.next().unwrap().unwrap(), want);
    }
    goulette_sentinel::testkit::signal(&child, libc::SIGINT);
    assert!(child.wait().unwrap().success(), "Ctrl-C is a clean exit");
    let described: serde_json::Value =
        serde_json::from_str(&run(&["group", "describe", "int", "--topic", "jobs", "--format", "json"])).unwrap();
    assert_eq!(described["partitions"][0]["committed"].as_u64(), Some(6));
}
