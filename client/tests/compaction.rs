//! Compacted topics against a real cluster: 100,000 updates of 1,000 keys
//! compact down to one record per key on every replica, through a kill -9
//! of the leader while it compacts; tombstones delete their keys and then
//! go themselves; keyless records are refused; and `__offsets` stays small
//! under a million commits, which a restarted coordinator reads back.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use common::{Env, metric};
use goulette_client::{
    Acks, ClientError, Consumer, ConsumerConfig, ErrorCode, Partitioner, Producer, ProducerConfig, ProducerRecord,
    StartAt,
};
use goulette_proto::v1 as pb;
use goulette_sentinel::testkit::http_get;

const KEYS: usize = 1_000;
const UPDATES: usize = 100_000;

/// Small fragments, a compactor that looks often and, throttled, takes
/// seconds over the topic, so that a kill lands inside a pass.
const BROKER_ARGS: &[&str] = &[
    "--fragment-bytes",
    "65536",
    "--max-batch-bytes",
    "65536",
    "--compaction-interval",
    "100ms",
    "--compaction-io-bytes-per-sec",
    "1048576",
];

async fn send(producer: &Producer, topic: &str, key: String, value: Option<String>) -> goulette_client::Delivery {
    let record = ProducerRecord {
        topic: topic.into(),
        partition: Some(0),
        key: Some(Bytes::from(key)),
        tombstone: value.is_none(),
        value: value.map(Bytes::from).unwrap_or_default(),
        ..Default::default()
    };
    producer.send(record).await.unwrap()
}

/// Every record of partition 0 from the start: key → (offset, value; `None`
/// for a tombstone), asserting offsets only rise and no key comes twice
/// unless `repeats`.
async fn read_table(env: &Env, topic: &str) -> (usize, BTreeMap<String, (u64, Option<String>)>) {
    let end = env.cluster().list_offsets(topic, 0, None).await.unwrap().high_watermark;
    let config = ConsumerConfig { start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), topic, config).await.unwrap();
    let (mut count, mut table, mut last) = (0, BTreeMap::new(), None);
    while consumer.positions().get(&0).is_none_or(|&p| p < end) {
        match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            Ok(Some(Ok(r))) => {
                assert!(last.is_none_or(|l| r.offset > l), "offset {} after {last:?}", r.offset);
                last = Some(r.offset);
                count += 1;
                let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                let value = (!r.tombstone).then(|| String::from_utf8(r.value.to_vec()).unwrap());
                table.insert(key, (r.offset, value));
            }
            Ok(Some(Err(e))) => panic!("consume failed: {e}"),
            Ok(None) => break,
            Err(_) => {} // a filtered-out or emptied tail: the position moves on
        }
    }
    (count, table)
}

/// Waits until a read from the start holds exactly `want` records.
async fn wait_compacted(env: &Env, topic: &str, want: usize) -> BTreeMap<String, (u64, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (count, table) = read_table(env, topic).await;
        if count == want {
            return table;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {count} records, want {want}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_compact_to_the_latest_value_of_each_key_through_a_kill_and_tombstones_expire() {
    let mut env = Env::start(2, BROKER_ARGS).await;
    let admin = goulette_client::Admin::new(env.cluster());
    let config = pb::TopicConfig {
        name: "table".into(),
        partitions: 1,
        replication_factor: 2,
        cleanup_policy: pb::CleanupPolicy::Compact as i32,
        segment_ms: 300,
        min_cleanable_dirty_ratio_permille: 10,
        delete_retention_ms: 3_000,
        ..Default::default()
    };
    let topic = admin.create_topic(config).await.unwrap();
    env.wait_serving("table").await;
    let leader = topic.partitions[0].leader.unwrap();

    let producer =
        Producer::new(env.cluster(), ProducerConfig { acks: Acks::All, ..Default::default() }, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..UPDATES {
        deliveries.push(send(&producer, "table", format!("k{}", i % KEYS), Some(format!("v{i}"))).await);
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    // A keyless record could never be superseded or deleted: refused.
    let keyless =
        ProducerRecord { topic: "table".into(), partition: Some(0), value: Bytes::from("x"), ..Default::default() };
    let refused = producer.send(keyless).await.unwrap().wait().await.unwrap_err();
    assert!(matches!(&refused, ClientError::Server { code: ErrorCode::InvalidRecord, .. }), "{refused}");

    // Kill the leader while its compactor works through ~2 MB at 1 MiB/s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, page) = http_get(env.brokers[leader as usize - 1].http_address, "/metrics").unwrap();
    assert!(metric(&page, "goulette_broker_compaction_bytes_read_total").unwrap_or(0.0) > 0.0, "{page}");
    env.brokers[leader as usize - 1].kill();
    env.brokers[leader as usize - 1].restart();
    env.wait_brokers_up().await;

    // Every replica compacts its own log: whichever leads now serves one
    // record per key, the latest.
    let table = wait_compacted(&env, "table", KEYS).await;
    for k in 0..KEYS {
        let latest = UPDATES - KEYS + k;
        assert_eq!(table[&format!("k{k}")].1.as_deref(), Some(format!("v{latest}").as_str()), "k{k}");
    }

    // Tombstones delete their keys, and go themselves after 3 s.
    let mut deliveries = Vec::new();
    for k in 0..100 {
        deliveries.push(send(&producer, "table", format!("k{k}"), None).await);
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
    let table = wait_compacted(&env, "table", KEYS - 100).await;
    assert!(table.keys().all(|k| k[1..].parse::<usize>().unwrap() >= 100), "deleted keys are gone");
    assert!(table.values().all(|(_, v)| v.is_some()), "and so are their tombstones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_stay_small_under_a_million_commits_and_a_restarted_coordinator_reads_the_last() {
    let mut env = Env::start(1, BROKER_ARGS).await;
    let cluster = env.cluster();
    const PARTITIONS: u32 = 500;
    const ROUNDS: u64 = 2_000; // 2,000 × 500 = 1,000,000 commit records
    for round in 0..ROUNDS {
        let offsets: BTreeMap<u32, u64> = (0..PARTITIONS).map(|p| (p, round * 10 + u64::from(p))).collect();
        goulette_client::offsets::commit(&cluster, "busy", "events", &offsets, None).await.unwrap();
    }
    let data = env.brokers[0].data_dir();
    let offsets_bytes = || -> u64 {
        let mut total = 0;
        for dir in std::fs::read_dir(&data)
            .unwrap()
            .flatten()
            .filter(|d| d.file_name().to_string_lossy().starts_with("__offsets-"))
        {
            // Files come and go under a compaction: count those still there.
            let files = std::fs::read_dir(dir.path()).unwrap().flatten();
            total += files.filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum::<u64>();
        }
        total
    };
    // About 60 MB written; compacted, a few fragments of the latest 500.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while offsets_bytes() > 2 << 20 {
        assert!(tokio::time::Instant::now() < deadline, "__offsets still holds {} bytes", offsets_bytes());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A coordinator starting afresh reads the compacted partition: the last commits.
    env.brokers[0].kill();
    env.brokers[0].restart();
    env.wait_brokers_up().await;
    let committed = goulette_client::offsets::fetch(&cluster, "busy", "events").await.unwrap();
    let want: HashMap<u32, u64> = (0..PARTITIONS).map(|p| (p, (ROUNDS - 1) * 10 + u64::from(p))).collect();
    assert_eq!(committed.len(), want.len());
    for (p, o) in committed {
        assert_eq!(want[&p], o, "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_a_compacted_topic_sends_tombstones_and_shows_them() {
    let env = Env::start(1, &BROKER_ARGS[..6]).await;
    let cli = |args: &[&str], stdin: &str| env.cli(args, stdin);
    let (ok, _, err) = cli(
        &["topic", "create", "prices", "--partitions", "1", "--replication-factor", "1", "--cleanup-policy", "compact"]
            .iter()
            .chain(&["--segment-ms", "200", "--min-cleanable-dirty-ratio", "0.01", "--delete-retention-ms", "600000"])
            .copied()
            .collect::<Vec<_>>(),
        "",
    );
    assert!(ok, "{err}");
    let (_, described, _) = cli(&["topic", "describe", "prices"], "");
    assert!(described.contains("cleanup_policy           compact"), "{described}");
    env.wait_serving("prices").await;

    let lines: String = (0..300).map(|i| format!("k{}={i}\n", i % 3)).collect();
    let (ok, _, err) = cli(&["produce", "--topic", "prices", "--key-separator", "="], &lines);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["produce", "--topic", "prices", "--tombstone", "k1"], "");
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["produce", "--topic", "prices"], "no key\n");
    assert!(!ok && err.contains("InvalidRecord") && err.contains("only keyed records"), "{err}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let args = ["consume", "--topic", "prices", "--from-beginning", "-e", "--format", "json", "--timeout", "20s"];
        let (ok, out, err) = cli(&args, "");
        assert!(ok, "{err}");
        let records: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if records.len() == 3 {
            let table: BTreeMap<String, serde_json::Value> =
                records.iter().map(|r| (r["key"].as_str().unwrap().to_owned(), r["value"].clone())).collect();
            assert_eq!(table["k0"], "297");
            assert_eq!(table["k2"], "299");
            assert!(table["k1"].is_null(), "a tombstone shows a null value: {records:?}");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {} records", records.len());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_a_pass_finds_fails_the_replica_and_the_leader_moves_and_repairs_it() {
    let env = Env::start(2, &BROKER_ARGS[..6]).await;
    let admin = goulette_client::Admin::new(env.cluster());
    let config = pb::TopicConfig { name: "ledger".into(), partitions: 1, replication_factor: 2, ..Default::default() };
    admin.create_topic(config).await.unwrap();
    env.wait_serving("ledger").await;
    let producer =
        Producer::new(env.cluster(), ProducerConfig { acks: Acks::All, ..Default::default() }, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..20_000 {
        deliveries.push(send(&producer, "ledger", format!("k{}", i % 200), Some(format!("v{i}"))).await);
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
    // Both replicas in sync, so that the leadership can move.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while admin.describe_topic("ledger").await.unwrap().partition_details[0].isr.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the follower never caught up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Not compacted yet: flip a bit in a sealed fragment of the leader.
    let leader = admin.describe_topic("ledger").await.unwrap().partition_details[0].leader.unwrap();
    let dir = env.brokers[leader as usize - 1].data_dir().join("ledger-0");
    let mut frags: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "frag"))
        .collect();
    frags.sort();
    assert!(frags.len() >= 2, "{frags:?}");
    let mut bytes = std::fs::read(&frags[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    std::fs::write(&frags[0], &bytes).unwrap();

    // Compaction from now on: its first pass on the leader meets the damage.
    let change = pb::AlterTopicRequest {
        name: "ledger".into(),
        cleanup_policy: Some(pb::CleanupPolicy::Compact as i32),
        min_cleanable_dirty_ratio_permille: Some(10),
        segment_ms: Some(300),
        ..Default::default()
    };
    admin.alter_topic(change).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = admin.describe_topic("ledger").await.unwrap().partition_details[0].leader;
        if now.is_some_and(|l| l != leader) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leadership never moved: {}",
            env.brokers[leader as usize - 1].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = env.brokers[leader as usize - 1].log();
    assert!(log.contains("compaction found damage"), "{log}");

    // The new leader compacts its intact copy: the latest value of each key.
    let table = wait_compacted(&env, "ledger", 200).await;
    for k in 0..200 {
        assert_eq!(table[&format!("k{k}")].1, Some(format!("v{}", 19_800 + k)));
    }
}
