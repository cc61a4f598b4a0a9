//! Delayed delivery against a real cluster: 10,000 records with random
//! delays up to 30 s are each delivered once, never early, and within 1 s
//! of their time, across a kill -9 of the partition's leader while they
//! are pending (records due while no leader serves are delivered as soon
//! as the new one does); consumers never see an original; the CLI sends
//! with `--delay`, and delays past the maximum are refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::{Env, metric};
use goulette_client::delayed::{DELAYED_FROM_HEADER, DELIVER_AT_HEADER};
use goulette_client::{
    Acks, ClientError, Consumer, ConsumerConfig, ErrorCode, Partitioner, Producer, ProducerConfig, ProducerRecord,
    StartAt,
};
use goulette_proto::v1 as pb;
use goulette_sentinel::testkit::http_get;

const RECORDS: usize = 10_000;
const MAX_DELAY_MS: i64 = 30_000;
/// From the kill until a new leader delivers: the session timeout, the
/// election, and the new leader's wait for its log to be committed.
const FAILOVER_MS: i64 = 12_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn header<'a>(headers: &'a [(String, Bytes)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| std::str::from_utf8(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_delayed_records_are_each_delivered_once_on_time_across_a_leader_kill() {
    let mut env = Env::start(3, &["--max-delivery-delay", "1h"]).await;
    let topic = env.create_topic("later", 1, 3).await;
    env.wait_serving("later").await;
    let leader = topic.partitions[0].leader.unwrap();

    // Consumers see nothing until a record is due: start one now.
    let config = ConsumerConfig { start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "later", config).await.unwrap();

    let producer =
        Producer::new(env.cluster(), ProducerConfig { acks: Acks::All, ..Default::default() }, Partitioner::KeyHash);
    let mut due_of = HashMap::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let start = now_ms();
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let due = start + 2_000 + (seed % (MAX_DELAY_MS as u64 - 2_000)) as i64;
        due_of.insert(i.to_string(), due);
        let record = ProducerRecord {
            topic: "later".into(),
            partition: Some(0),
            key: Some(Bytes::from(format!("k{}", i % 100))),
            value: Bytes::from(i.to_string()),
            ..Default::default()
        }
        .deliver_at(due);
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
    let acknowledged = now_ms();
    assert!(acknowledged < start + 2_000, "producing took {} ms: the first records are due", acknowledged - start);

    // Kill the leader 10 s in, with about two thirds of the records pending.
    let kill_at = start + 10_000;
    let mut killed = false;
    let mut arrived: HashMap<String, i64> = HashMap::new();
    let deadline = start + MAX_DELAY_MS + FAILOVER_MS + 10_000;
    while arrived.len() < RECORDS {
        let now = now_ms();
        assert!(now < deadline, "{} of {RECORDS} delivered", arrived.len());
        if !killed && now >= kill_at {
            killed = true;
            let (_, page) = http_get(env.brokers[leader as usize - 1].http_address, "/metrics").unwrap();
            let pending = metric(&page, "goulette_broker_delayed_pending").unwrap();
            assert!(pending > 1_000.0, "{pending} pending at the kill");
            env.brokers[leader as usize - 1].kill();
        }
        let Ok(next) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await else { continue };
        let r = next.unwrap().unwrap();
        let received = now_ms();
        let value = String::from_utf8(r.value.to_vec()).unwrap();
        assert!(header(&r.headers, DELAYED_FROM_HEADER).is_some(), "an original was sent at offset {}", r.offset);
        let due = due_of[&value];
        assert_eq!(header(&r.headers, DELIVER_AT_HEADER).map(|h| h.parse::<i64>().unwrap()), Some(due));
        assert!(received >= due, "record {value} delivered {} ms early", due - received);
        assert!(arrived.insert(value.clone(), received).is_none(), "record {value} delivered twice");
    }
    // Nothing more arrives: each was delivered once.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        panic!("a record beyond the {RECORDS}: {:?}", extra.map(|r| r.value));
    }

    let (mut late_outside, mut late_inside, mut inside) = (0i64, 0i64, 0usize);
    for (value, received) in &arrived {
        let due = due_of[value];
        let late = received - due;
        if (kill_at..kill_at + FAILOVER_MS).contains(&due) {
            late_inside = late_inside.max(late);
            inside += 1;
            assert!(*received <= kill_at + FAILOVER_MS + 1_000, "record {value} due {due} came {late} ms late");
        } else {
            late_outside = late_outside.max(late);
            assert!(late <= 1_000, "record {value} came {late} ms late, away from the failover");
        }
    }
    println!(
        "{RECORDS} delivered once: at most {late_outside} ms late away from the failover; \
         {inside} due within {FAILOVER_MS} ms of the kill, at most {late_inside} ms late"
    );
    env.brokers[leader as usize - 1].restart();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_delays_and_too_long_or_compacted_delays_are_refused() {
    let env = Env::start(1, &["--max-delivery-delay", "1h"]).await;
    env.create_topic("soon", 1, 1).await;
    env.wait_serving("soon").await;
    let cli = |args: &[&str]| env.cli(args, "");
    let sent = now_ms();
    let (ok, _, err) = cli(&["produce", "--topic", "soon", "--delay", "2s", "--message", "later"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["produce", "--topic", "soon", "--message", "now"]);
    assert!(ok, "{err}");
    // At once: only the plain record, at offset 1 (the original, offset 0, is hidden).
    let (ok, out, err) =
        cli(&["consume", "--topic", "soon", "-e", "--from-beginning", "--format", "%o %v\\n", "--timeout", "10s"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1 now");
    tokio::time::sleep(Duration::from_millis((sent + 3_000 - now_ms()).max(0) as u64)).await;
    let (ok, out, err) =
        cli(&["consume", "--topic", "soon", "-e", "--from-beginning", "--format", "%o %v\\n", "--timeout", "10s"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1 now\n2 later", "the copy comes after what was produced before it was due");

    let (ok, _, err) = cli(&["produce", "--topic", "soon", "--delay", "2h", "--message", "x"]);
    assert!(!ok && err.contains("maximum delay"), "{err}");
    let admin = goulette_client::Admin::new(env.cluster());
    let config = pb::TopicConfig {
        name: "table".into(),
        partitions: 1,
        replication_factor: 1,
        cleanup_policy: pb::CleanupPolicy::Compact as i32,
        ..Default::default()
    };
    admin.create_topic(config).await.unwrap();
    env.wait_serving("table").await;
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    let record = ProducerRecord {
        topic: "table".into(),
        key: Some(Bytes::from("k")),
        value: Bytes::from("v"),
        ..Default::default()
    }
    .delay(Duration::from_secs(5));
    let refused = producer.send(record).await.unwrap().wait().await.unwrap_err();
    assert!(matches!(&refused, ClientError::Server { code: ErrorCode::InvalidRecord, .. }), "{refused}");
    producer.close().await;
}
