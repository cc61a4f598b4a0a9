//! Clocks that lie never delete young data: a broker whose wall clock steps
//! forward an hour keeps data appended seconds ago (libfaketime steps it
//! under the running process), a producer whose clock is hours behind gets
//! its records kept for the full retention period, and a record stamped
//! years ahead is refused instead of stored.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Env, consume_all};
use goulette_client::{ClientError, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1::{self as pb, ErrorCode};

/// Where Debian's `faketime` package puts the library (`make deps` installs it).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const MESSAGES: usize = 5000;
/// Small fragments, so that retention has sealed fragments to judge.
const BROKER_ARGS: &[&str] = &["--fragment-bytes", "1048576", "--max-batch-bytes", "524288"];

async fn create(env: &Env, topic: &str, retention_ms: u64) {
    let config = pb::TopicConfig {
        name: topic.into(),
        partitions: 1,
        replication_factor: 1,
        retention_ms,
        ..Default::default()
    };
    goulette_client::Admin::new(env.cluster()).create_topic(config).await.unwrap();
    env.wait_serving(topic).await;
}

/// Sends `MESSAGES` records of 1 KiB stamped `timestamp` (now when `None`).
async fn produce(env: &Env, topic: &str, timestamp: Option<i64>) -> Result<(), ClientError> {
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::RoundRobin);
    let mut deliveries = Vec::new();
    for i in 0..MESSAGES {
        let value = Bytes::from(format!("{i:01024}"));
        deliveries
            .push(producer.send(ProducerRecord { topic: topic.into(), value, timestamp, ..Default::default() }).await?);
    }
    for d in deliveries {
        d.wait().await?;
    }
    producer.close().await;
    Ok(())
}

fn fragments(env: &Env, topic: &str) -> usize {
    let dir = env.brokers[0].data_dir().join(format!("{topic}-0"));
    std::fs::read_dir(dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".frag")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_brokers_clock_stepped_an_hour_ahead_retention_should_keep_data_appended_seconds_ago() {
    if !std::path::Path::new(LIBFAKETIME).exists() {
        panic!("{LIBFAKETIME} is missing: run `make deps` (Debian package faketime)");
    }
    let clock = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(clock.path(), "+0").unwrap();
    let path = clock.path().to_str().unwrap().to_owned();
    // Only the wall clock moves, as with `date -s` or a bad NTP server.
    let faked = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", path.as_str()),
        ("FAKETIME_CACHE_DURATION", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let env = Env::start_with_env(1, BROKER_ARGS, &faked).await;
    create(&env, "stepped", 30 * 60 * 1000).await;
    produce(&env, "stepped", None).await.unwrap();
    assert!(fragments(&env, "stepped") >= 2, "the test needs sealed fragments");

    std::fs::write(clock.path(), "+1h").unwrap();
    // Several maintenance rounds (every 100 ms) after the step is seen.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(consume_all(env.cluster(), "stepped", MESSAGES).await.len(), MESSAGES);
    let log = env.brokers[0].log();
    assert!(!log.contains("retention deleted fragment"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_producer_timestamps_hours_behind_or_years_ahead_retention_should_neither_delete_nor_be_pinned() {
    let env = Env::start(1, BROKER_ARGS).await;
    // A producer whose clock is two hours behind, on a topic of one hour.
    create(&env, "late", 60 * 60 * 1000).await;
    let two_hours_ago = goulette_storage::now_ms() - 2 * 3_600_000;
    produce(&env, "late", Some(two_hours_ago)).await.unwrap();
    assert!(fragments(&env, "late") >= 2, "the test needs sealed fragments");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = consume_all(env.cluster(), "late", MESSAGES).await;
    assert!(got.iter().all(|r| r.timestamp == two_hours_ago), "timestamps are kept as sent");

    // Ten years ahead: refused, nothing stored.
    create(&env, "future", 0).await;
    let ten_years_ahead = goulette_storage::now_ms() + 10 * 365 * 86_400_000;
    match produce(&env, "future", Some(ten_years_ahead)).await {
        Err(ClientError::Server { code: ErrorCode::InvalidTimestamp, message }) => {
            assert!(message.contains("ahead"), "{message}")
        }
        other => panic!("a record ten years ahead was not refused: {other:?}"),
    }
    let offsets = env.cluster().list_offsets("future", 0, None).await.unwrap();
    assert_eq!((offsets.log_start_offset, offsets.high_watermark), (0, 0), "nothing of the refused batches is stored");
}
