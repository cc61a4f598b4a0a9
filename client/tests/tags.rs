//! Tag filters against a real cluster: the broker sends a filtered
//! consumer exactly the records carrying one of its tags, at their own
//! offsets, across batches (compressed or not) where some, all or none
//! match; a group's committed offset still moves past a tail left out;
//! `*` reads everything; a bad filter is refused before anything is read;
//! and the CLI's `produce --tag` and `consume --tags -e` do the same.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Env;
use goulette_client::tags::TAG_HEADER;
use goulette_client::{
    ClientError, Compression, Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, ProducerRecord, StartAt,
};
use goulette_sentinel::testkit::bin_dir;

/// The tag of record `i` (none for some): 3 in 4 records carry one; the
/// last 50 all carry C, so that a filter without C ends on a tail it
/// leaves out.
fn tag_of(i: usize) -> Option<&'static str> {
    match i {
        i if i >= 350 => Some("C"),
        i => [Some("A"), Some("B"), Some("C"), None][i % 4],
    }
}

async fn produce(env: &Env, topic: &str, compression: Compression) {
    let config = ProducerConfig { compression, ..ProducerConfig::default() };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..400 {
        let headers = tag_of(i).map(|t| vec![(TAG_HEADER.to_owned(), Bytes::from(t))]).unwrap_or_default();
        let record = ProducerRecord {
            topic: topic.into(),
            partition: Some(0),
            value: Bytes::from(format!("m{i}")),
            headers,
            ..Default::default()
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
}

/// Reads `topic` through `filter` until `expected` records came and a
/// short quiet spell; the consumer is returned to look at its positions.
async fn read(
    env: &Env,
    topic: &str,
    filter: Option<&str>,
    group: Option<&str>,
    expected: usize,
) -> (Vec<u64>, Consumer) {
    let config = ConsumerConfig {
        start: StartAt::Beginning,
        partitions: Some(vec![0]),
        group: group.map(str::to_owned),
        tag_filter: filter.map(str::to_owned),
        window_bytes: 4096, // many fetch responses, so batches split across them
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::subscribe(env.cluster(), topic, config).await.unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < expected {
        match tokio::time::timeout(Duration::from_secs(20), consumer.recv()).await {
            Ok(Some(Ok(r))) => {
                let value = String::from_utf8_lossy(&r.value).into_owned();
                assert_eq!(value, format!("m{}", r.offset), "a record at its own offset");
                offsets.push(r.offset);
            }
            other => panic!("after {} records: {other:?}", offsets.len()),
        }
    }
    assert!(tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await.is_err(), "nothing more");
    (offsets, consumer)
}

fn wanted(tags: &[&str]) -> Vec<u64> {
    (0..400).filter(|&i| tag_of(i).is_some_and(|t| tags.contains(&t))).map(|i| i as u64).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_tag_filters_consumers_should_get_exactly_their_tags_and_move_past_the_rest() {
    let env = Env::start(1, &[]).await;
    for (topic, compression) in [("tagged", Compression::None), ("tagged-zstd", Compression::Zstd)] {
        env.create_topic(topic, 1, 1).await;
        env.wait_serving(topic).await;
        produce(&env, topic, compression).await;

        let (offsets, _) = read(&env, topic, Some("A || B"), None, wanted(&["A", "B"]).len()).await;
        assert_eq!(offsets, wanted(&["A", "B"]), "{topic}: exactly A and B, in order");
        let (offsets, _) = read(&env, topic, Some("C"), None, wanted(&["C"]).len()).await;
        assert_eq!(offsets, wanted(&["C"]), "{topic}");
        let (offsets, _) = read(&env, topic, Some("*"), None, 400).await;
        assert_eq!(offsets, (0..400).collect::<Vec<u64>>(), "{topic}: * is everything, untagged too");

        // A group member filtering out the tail: its position, and so its
        // commit, reaches the end of the partition anyway.
        let group = format!("{topic}-billing");
        let (_, mut consumer) = read(&env, topic, Some("A"), Some(&group), wanted(&["A"]).len()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while consumer.positions().get(&0) != Some(&400) {
            assert!(tokio::time::Instant::now() < deadline, "position {:?}", consumer.positions());
            let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
        }
        consumer.commit().await.unwrap();
        let committed = goulette_client::offsets::fetch(&env.cluster(), &group, topic).await.unwrap();
        assert_eq!(committed.get(&0), Some(&400), "{topic}: committed past the records left out");
    }

    let config = ConsumerConfig { tag_filter: Some("A && B".into()), ..ConsumerConfig::default() };
    match Consumer::subscribe(env.cluster(), "tagged", config).await {
        Err(ClientError::InvalidArgument(why)) => assert!(why.contains("A || B"), "{why}"),
        other => panic!("a bad filter was taken: {:?}", other.map(|_| ())),
    }

    // The CLI: tags on produce, a filter on consume that exits at the end
    // even though the partition ends on records it leaves out.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(bin_dir().join("goulette"))
            .args(args)
            .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    cli(&["produce", "--topic", "cli-tags", "--tag", "red", "--message", "one"]);
    cli(&["produce", "--topic", "cli-tags", "--tag", "blue", "--tag", "red", "--message", "two"]);
    cli(&["produce", "--topic", "cli-tags", "--tag", "blue", "--message", "three"]);
    let read = |filter: &str| {
        let args = ["consume", "--topic", "cli-tags", "--from-beginning", "-e", "--tags", filter, "--timeout", "20s"];
        cli(&args)
    };
    assert_eq!(read("red"), "one\ntwo\n");
    assert_eq!(read("blue || green"), "two\nthree\n");
    assert_eq!(read("*"), "one\ntwo\nthree\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_group_reading_some_tags_a_member_with_another_filter_should_be_refused_clearly() {
    let env = Env::start(1, &[]).await;
    env.create_topic("mixed", 2, 1).await;
    env.wait_serving("mixed").await;
    produce(&env, "mixed", Compression::None).await;
    let member = |filter: Option<&str>| ConsumerConfig {
        start: StartAt::Beginning,
        group: Some("shipping".into()),
        membership: Some(goulette_client::GroupOptions::default()),
        tag_filter: filter.map(str::to_owned),
        ..ConsumerConfig::default()
    };
    // The first member reads A || B (written another way: normalized).
    let mut first = Consumer::subscribe(env.cluster(), "mixed", member(Some("B||A || B"))).await.unwrap();
    let record = tokio::time::timeout(Duration::from_secs(20), first.recv()).await.unwrap().unwrap().unwrap();
    assert!(["A", "B"].contains(&tag_of(record.offset as usize).unwrap()), "{record:?}");

    for (filter, shown) in [(Some("C"), "tags `C`"), (None, "every record")] {
        let mut other = Consumer::subscribe(env.cluster(), "mixed", member(filter)).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(20), other.recv()).await {
            Ok(Some(Err(e))) => {
                let message = e.to_string();
                assert!(message.contains("reads tags `A || B`") && message.contains(shown), "{message}");
            }
            other => panic!("a member with another filter ({filter:?}) was not refused: {other:?}"),
        }
    }
    // The same filter, however written, joins: no refusal (which comes
    // at once, as above) while it waits for its share.
    let mut same = Consumer::subscribe(env.cluster(), "mixed", member(Some("A||B"))).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(3), same.recv()).await {
        Err(_) | Ok(Some(Ok(_))) => {}
        other => panic!("the member with the same filter was refused: {other:?}"),
    }
    drop(first);
}
