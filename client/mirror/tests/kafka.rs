//! The Kafka source against a second Goulette cluster through its Kafka
//! listener (librdkafka in the mirror, Goulette's Kafka protocol on the
//! other side): keys, headers and timestamps kept partition by partition;
//! the source's partition leader killed -9 while the mirror runs, nothing
//! lost; a source consumer group's committed offsets translated exactly
//! into the target, where a consumer of that group resumes at the very
//! record the group would have read next on the source.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Env;
use goulette_client::{
    Cluster, Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, ProducerRecord, StartAt,
};
use goulette_sentinel::testkit::{free_port, http_get};
use process::Mirror;

const TOPIC: &str = "orders";
/// Records produced before the leader is killed, and after.
const BEFORE: usize = 4000;
const AFTER: usize = 2000;
/// Foreign records already in the target's partition 0: its offsets are
/// the source's plus this, so a translation that is not done fails.
const SHIFT: u64 = 5;

/// Produces records `from..to` to `topic` of the source: record i goes to
/// partition i % 2 with key `k{i}`, value `v{i}` and header `n: i`; every
/// tenth is a tombstone (a null value) instead.
async fn produce(cluster: Arc<Cluster>, topic: &str, range: std::ops::Range<usize>) {
    let producer = Producer::new(cluster, ProducerConfig::default(), Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in range {
        let record = ProducerRecord {
            topic: topic.into(),
            partition: Some((i % 2) as u32),
            key: Some(Bytes::from(format!("k{i}"))),
            value: if is_tombstone(i) { Bytes::new() } else { Bytes::from(format!("v{i}")) },
            headers: vec![("n".into(), Bytes::from(i.to_string()))],
            timestamp: Some(1_700_000_000_000 + i as i64),
            tombstone: is_tombstone(i),
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
}

fn is_tombstone(i: usize) -> bool {
    i % 10 == 9
}

/// What the target's `partition` holds from `offset` on, until it has
/// been quiet for a while: (offset, value) pairs.
async fn read(cluster: Arc<Cluster>, partition: u32, offset: u64) -> Vec<goulette_client::ConsumedRecord> {
    let config = ConsumerConfig {
        partitions: Some(vec![partition]),
        start: StartAt::Offset(offset),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::subscribe(cluster, TOPIC, config).await.unwrap();
    let mut out = Vec::new();
    while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        out.push(record.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_kafka_source_records_and_group_offsets_should_arrive_exactly_across_a_leader_kill() {
    let mut source = Env::start(2, &[]).await;
    source.create_topic(TOPIC, 2, 2).await;
    source.wait_serving(TOPIC).await;
    let target = Env::start(1, &[]).await;
    target.create_topic(TOPIC, 2, 1).await;
    target.wait_serving(TOPIC).await;
    let foreign: Vec<String> = (0..SHIFT).map(|i| format!("foreign{i}")).collect();
    let producer = Producer::new(target.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    for value in &foreign {
        let r = ProducerRecord {
            topic: TOPIC.into(),
            partition: Some(0),
            value: Bytes::from(value.clone()),
            ..Default::default()
        };
        producer.send(r).await.unwrap().wait().await.unwrap();
    }
    producer.close().await;

    produce(source.cluster(), TOPIC, 0..BEFORE).await;
    // A source group that read some of each partition.
    let billing = BTreeMap::from([(0, 300), (1, 200)]);
    goulette_client::offsets::commit(&source.cluster(), "billing", TOPIC, &billing, None).await.unwrap();

    let work = tempfile::tempdir().unwrap();
    let http = free_port();
    let brokers: Vec<String> = source.brokers.iter().map(|b| b.kafka_address.to_string()).collect();
    let config = work.path().join("mirror.toml");
    let text = format!(
        r#"
[target]
sentinels = ["{}"]

[http]
address = "127.0.0.1:{http}"

[[source]]
name = "legacy"
kind = "kafka"
brokers = "{}"
group = "mirror"
topics = ["{TOPIC}"]
partition = "same"
sync-groups = ["billing"]
sync-interval = "300ms"
state-directory = "{}"
"#,
        target.sentinel.address,
        brokers.join(","),
        work.path().join("state").display()
    );
    std::fs::write(&config, text).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("mirror.log"));
    let log = || std::fs::read_to_string(work.path().join("mirror.log")).unwrap_or_default();
    let address = format!("127.0.0.1:{http}").parse().unwrap();
    let out = |page: &str| common::metric(page, "goulette_mirror_records_out_total{source=\"legacy\"}").unwrap_or(0.0);
    let wait_out = |n: usize, what: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(90);
        while http_get(address, "/metrics").is_none_or(|(_, page)| out(&page) < n as f64) {
            assert!(Instant::now() < deadline, "{what}: too little mirrored: {}", log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_out(BEFORE, "before the kill").await;

    // The group's offsets, translated: partition 0 shifted by the foreign records.
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = BTreeMap::from([(0, 300 + SHIFT), (1, 200)]);
    loop {
        let synced = goulette_client::offsets::fetch(&target.cluster(), "billing", TOPIC).await.unwrap_or_default();
        if synced == want {
            break;
        }
        assert!(Instant::now() < deadline, "group offsets synced: {synced:?}, want {want:?}: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let meta = goulette_client::Admin::new(source.cluster()).describe_topic(TOPIC).await.unwrap();
    let leader = meta.partition_details.iter().find(|p| p.partition == 0).and_then(|p| p.leader).unwrap();
    // Once the mirror committed its progress (librdkafka commits what
    // was acknowledged every second), the leader of partition 0 dies; the
    // other replica takes over.
    let each = (BEFORE / 2) as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while goulette_client::offsets::fetch(&source.cluster(), "mirror", TOPIC).await.unwrap_or_default()
        != BTreeMap::from([(0, each), (1, each)])
    {
        assert!(Instant::now() < deadline, "the mirror's progress is not committed: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    source.brokers[leader as usize - 1].kill();
    produce(source.cluster(), TOPIC, BEFORE..BEFORE + AFTER).await;
    wait_out(BEFORE + AFTER, "after the kill").await;

    // The group moves on at the source: the target follows, forward only.
    let billing = BTreeMap::from([(0, 1000)]);
    goulette_client::offsets::commit(&source.cluster(), "billing", TOPIC, &billing, None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let synced = goulette_client::offsets::fetch(&target.cluster(), "billing", TOPIC).await.unwrap_or_default();
        if synced.get(&0) == Some(&(1000 + SHIFT)) {
            break;
        }
        assert!(Instant::now() < deadline, "group offsets synced: {synced:?}: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Stopped: it exits cleanly, and its own group's progress is committed.
    let status = mirror.terminate().expect("the mirror did not stop within 20 s of SIGTERM");
    assert!(status.success(), "{status:?}: {}", log());
    let progress = goulette_client::offsets::fetch(&source.cluster(), "mirror", TOPIC).await.unwrap();
    let each = ((BEFORE + AFTER) / 2) as u64;
    assert_eq!(progress, BTreeMap::from([(0, each), (1, each)]), "the mirror's committed progress");

    // Every record, in each partition in the source's order, keys,
    // headers and timestamps kept (duplicates only where the leader died).
    let mut duplicates = 0;
    for partition in 0..2u32 {
        let records = read(target.cluster(), partition, 0).await;
        let mut first_order = Vec::new();
        let mut seen: HashMap<usize, usize> = HashMap::new();
        for r in &records {
            let value = String::from_utf8(r.value.to_vec()).unwrap();
            if value.starts_with("foreign") {
                continue;
            }
            let key = String::from_utf8(r.key.as_deref().unwrap().to_vec()).unwrap();
            let i: usize = key.strip_prefix('k').unwrap().parse().unwrap();
            assert_eq!(i % 2, partition as usize, "record {i} in partition {partition}");
            // A null value at the source is a tombstone at the target.
            assert_eq!((r.tombstone, value.is_empty()), (is_tombstone(i), is_tombstone(i)), "record {i}");
            if !is_tombstone(i) {
                assert_eq!(value, format!("v{i}"));
            }
            assert_eq!(r.headers, vec![("n".to_owned(), Bytes::from(i.to_string()))]);
            assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64);
            let count = seen.entry(i).or_default();
            if *count == 0 {
                first_order.push(i);
            }
            *count += 1;
        }
        assert_eq!(seen.len(), (BEFORE + AFTER) / 2, "partition {partition}: records missing");
        assert!(first_order.windows(2).all(|w| w[0] < w[1]), "partition {partition}: the source's order was not kept");
        duplicates += seen.values().map(|c| c - 1).sum::<usize>();
    }
    eprintln!("{duplicates} duplicates after the leader's kill");

    // A consumer of the group on the target resumes exactly where it
    // stopped on the source: partition 0 at source offset 1000 (record
    // 2000), partition 1 at 200 (record 401).
    let config = ConsumerConfig {
        group: Some("billing".into()),
        start: StartAt::Beginning,
        partitions: Some(vec![0, 1]),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::subscribe(target.cluster(), TOPIC, config).await.unwrap();
    let mut first: BTreeMap<u32, String> = BTreeMap::new();
    while first.len() < 2 {
        let r = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await.unwrap().unwrap().unwrap();
        first.entry(r.partition).or_insert_with(|| String::from_utf8(r.value.to_vec()).unwrap());
    }
    assert_eq!(first, BTreeMap::from([(0, "v2000".to_owned()), (1, "v401".to_owned())]));
}

/// Every record of `topic`'s `partition`: (offset, key, value, headers).
async fn partition_records(cluster: Arc<Cluster>, topic: &str, partition: u32) -> Vec<(u64, Option<Bytes>, Bytes)> {
    let end = cluster.list_offsets(topic, partition, None).await.unwrap().high_watermark;
    let config =
        ConsumerConfig { partitions: Some(vec![partition]), start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(cluster, topic, config).await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < end {
        let r = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await.unwrap().unwrap().unwrap();
        out.push((r.offset, r.key, r.value));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_exactly_once_a_kill_should_leave_every_record_once_at_its_source_offset() {
    const LEDGER: &str = "ledger";
    let source = Env::start(1, &[]).await;
    source.create_topic(LEDGER, 2, 1).await;
    source.wait_serving(LEDGER).await;
    let target = Env::start(1, &[]).await;
    target.create_topic(LEDGER, 2, 1).await;
    target.wait_serving(LEDGER).await;
    produce(source.cluster(), LEDGER, 0..20_000).await;
    let audit = BTreeMap::from([(0, 1234), (1, 99)]);
    goulette_client::offsets::commit(&source.cluster(), "audit", LEDGER, &audit, None).await.unwrap();

    let work = tempfile::tempdir().unwrap();
    let http = free_port();
    let config = work.path().join("mirror.toml");
    let text = format!(
        "[target]\nsentinels = [\"{}\"]\n\n[http]\naddress = \"127.0.0.1:{http}\"\n\n[[source]]\nname = \"ledger\"\n\
         kind = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"{LEDGER}\"]\npartition = \"same\"\nexactly-once = true\n\
         sync-groups = [\"audit\"]\nsync-interval = \"300ms\"\n",
        target.sentinel.address, source.brokers[0].kafka_address
    );
    std::fs::write(&config, text).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("mirror.log"));
    let log = || std::fs::read_to_string(work.path().join("mirror.log")).unwrap_or_default();
    let address = format!("127.0.0.1:{http}").parse().unwrap();
    let out = |page: &str| common::metric(page, "goulette_mirror_records_out_total{source=\"ledger\"}").unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(90);
    while http_get(address, "/metrics").is_none_or(|(_, page)| out(&page) < 5000.0) {
        assert!(Instant::now() < deadline, "too little mirrored: {}", log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Killed -9 while it writes; restarted; the source grows meanwhile.
    mirror.kill();
    mirror.spawn();
    produce(source.cluster(), LEDGER, 20_000..25_000).await;

    let deadline = Instant::now() + Duration::from_secs(90);
    for partition in 0..2 {
        let want = source.cluster().list_offsets(LEDGER, partition, None).await.unwrap().high_watermark;
        loop {
            let got = target.cluster().list_offsets(LEDGER, partition, None).await.unwrap().high_watermark;
            if got == want {
                break;
            }
            assert!(got < want, "partition {partition}: the target holds {got} records, the source {want}: {}", log());
            assert!(Instant::now() < deadline, "partition {partition}: {got} of {want} mirrored: {}", log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A group's offsets are the same on both sides.
    let deadline = Instant::now() + Duration::from_secs(30);
    while goulette_client::offsets::fetch(&target.cluster(), "audit", LEDGER).await.unwrap_or_default() != audit {
        assert!(Instant::now() < deadline, "the group's offsets did not reach the target: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = mirror.terminate().expect("the mirror did not stop within 20 s of SIGTERM");
    assert!(status.success(), "{status:?}: {}", log());
    // Offset for offset the same records: none twice, none missing.
    for partition in 0..2 {
        let (from, to) = (
            partition_records(source.cluster(), LEDGER, partition).await,
            partition_records(target.cluster(), LEDGER, partition).await,
        );
        assert_eq!(from.len(), 12_500);
        assert!(from == to, "partition {partition}: the target differs from the source");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_backlog_the_lag_metric_should_count_it_down_to_zero() {
    let source = Env::start(1, &[]).await;
    source.create_topic("backlog", 2, 1).await;
    source.wait_serving("backlog").await;
    let target = Env::start(1, &[]).await;
    produce(source.cluster(), "backlog", 0..1200).await;
    let work = tempfile::tempdir().unwrap();
    let http = free_port();
    // Paced, so that librdkafka's statistics (every 200 ms here) see the lag.
    let text = format!(
        "[target]\nsentinels = [\"{}\"]\n\n[http]\naddress = \"127.0.0.1:{http}\"\n\n[[source]]\nname = \"paced\"\n\
         kind = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"backlog\"]\nrate = {{ messages-per-second = 400, burst = \"100ms\" }}\n\
         properties = {{ \"statistics.interval.ms\" = \"200\" }}\n",
        target.sentinel.address, source.brokers[0].kafka_address
    );
    std::fs::write(work.path().join("mirror.toml"), text).unwrap();
    let mut mirror = Mirror::start(&work.path().join("mirror.toml"), &work.path().join("mirror.log"));
    let address = format!("127.0.0.1:{http}").parse().unwrap();
    let read = |name: &str| {
        let name = format!("goulette_mirror_{name}{{source=\"paced\"}}");
        http_get(address, "/metrics").and_then(|(_, page)| common::metric(&page, &name))
    };
    let (mut most, deadline) = (0.0f64, Instant::now() + Duration::from_secs(60));
    loop {
        let (lag, out) = (read("source_lag").unwrap_or(0.0), read("records_out_total").unwrap_or(0.0));
        most = most.max(lag);
        if out >= 1200.0 && lag == 0.0 && most > 0.0 {
            break;
        }
        let log = std::fs::read_to_string(work.path().join("mirror.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "lag {lag} (most {most}), {out} written: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(most <= 1200.0, "a lag of {most} records, more than the backlog");
    // End to end from the records' source timestamps: the backlog was
    // written before the mirror started and read at 400/s, so its records
    // waited 1.5 s on average, far longer than the mirror's own write.
    let (count, sum) = (read("end_to_end_latency_seconds_count"), read("end_to_end_latency_seconds_sum"));
    assert_eq!(count, Some(1200.0), "every record's end-to-end latency observed once");
    let mean = sum.unwrap_or(0.0) / 1200.0;
    let own = read("ack_latency_seconds_sum").unwrap_or(0.0) / read("ack_latency_seconds_count").unwrap_or(1.0);
    assert!(mean >= 0.5 && mean > own, "mean end-to-end latency {mean} s (the mirror's own: {own} s)");
    assert!(mirror.terminate().is_some_and(|s| s.success()));
}
