//! Replication across real broker processes: followers catch up and join
//! the ISR, `acks=all` survives the leader's death, the ISR shrinks when
//! followers stop and `NOT_ENOUGH_REPLICAS` guards `acks=all` below
//! `min_insync_replicas`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Env, consume_all};
use goulette_client::{Admin, ClientError, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1::ErrorCode;

/// Polls `describe` until the partition's ISR has `n` members (and returns it).
async fn wait_isr(env: &Env, topic: &str, n: usize) -> Vec<u32> {
    let admin = Admin::new(env.cluster());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(d) = admin.describe_topic(topic).await {
            let p = &d.partition_details[0];
            if p.isr.len() == n && p.leader.is_some() {
                return p.isr.clone();
            }
        }
        if tokio::time::Instant::now() >= deadline {
            let logs: Vec<String> =
                env.brokers.iter().map(|b| format!("--- broker {}:\n{}", b.id, tail(&b.log(), 30))).collect();
            panic!("ISR of {topic} never reached {n} members\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leader_of(env: &Env, topic: &str) -> (u32, u64) {
    let d = Admin::new(env.cluster()).describe_topic(topic).await.unwrap();
    let p = &d.partition_details[0];
    (p.leader.unwrap(), p.leader_epoch)
}

async fn produce(env: &Env, topic: &str, values: impl IntoIterator<Item = String>) -> Result<Vec<u64>, ClientError> {
    let config = ProducerConfig { max_attempts: 3, ..ProducerConfig::default() };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for v in values {
        deliveries.push(
            producer.send(ProducerRecord { topic: topic.into(), value: Bytes::from(v), ..Default::default() }).await?,
        );
    }
    let mut offsets = Vec::new();
    for d in deliveries {
        offsets.push(d.wait().await?.offset.unwrap());
    }
    producer.close().await;
    Ok(offsets)
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn index(broker: u32) -> usize {
    broker as usize - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_rf3_acks_all_messages_should_survive_the_leaders_kill() {
    let mut env = Env::start(3, &["--replica-lag-max", "2s"]).await;
    env.create_topic("safe", 1, 3).await;
    env.wait_serving("safe").await;
    wait_isr(&env, "safe", 3).await;
    let offsets = produce(&env, "safe", (0..300).map(|i| format!("m{i}"))).await.unwrap();
    assert_eq!(offsets, (0..300).collect::<Vec<_>>());

    let (leader, epoch) = leader_of(&env, "safe").await;
    env.brokers[index(leader)].kill();
    // A follower from the ISR takes over with a new epoch.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = Admin::new(env.cluster()).describe_topic("safe").await.unwrap();
        let p = &d.partition_details[0];
        if p.leader.is_some_and(|l| l != leader) && p.leader_epoch > epoch {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.wait_serving("safe").await;
    // Writes go on (two in-sync replicas left ≥ min_insync_replicas 2) …
    let more = produce(&env, "safe", (300..350).map(|i| format!("m{i}"))).await.unwrap();
    assert_eq!(more.first(), Some(&300));
    // … and every acknowledged message is there, in order.
    let records = consume_all(env.cluster(), "safe", 350).await;
    let values: Vec<String> = records.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect();
    assert_eq!(values, (0..350).map(|i| format!("m{i}")).collect::<Vec<_>>());

    // The old leader comes back as a follower and rejoins the ISR.
    env.brokers[index(leader)].restart();
    assert_eq!(wait_isr(&env, "safe", 3).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_followers_down_the_isr_should_shrink_and_acks_all_stop_below_min_insync() {
    let mut env = Env::start(3, &["--replica-lag-max", "1s"]).await;
    env.create_topic("guarded", 1, 3).await;
    env.wait_serving("guarded").await;
    wait_isr(&env, "guarded", 3).await;
    let (leader, _) = leader_of(&env, "guarded").await;
    let followers: Vec<u32> = (1..=3).filter(|b| *b != leader).collect();

    env.brokers[index(followers[0])].kill();
    wait_isr(&env, "guarded", 2).await;
    produce(&env, "guarded", (0..20).map(|i| format!("a{i}"))).await.unwrap();

    env.brokers[index(followers[1])].kill();
    wait_isr(&env, "guarded", 1).await;
    let refused = produce(&env, "guarded", ["b".to_string()]).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::Server { code: ErrorCode::NotEnoughReplicas, .. }),
        "expected NOT_ENOUGH_REPLICAS, got {refused}"
    );

    // Both come back, catch up (including what was written without them)
    // and rejoin; writes work again.
    env.brokers[index(followers[0])].restart();
    env.brokers[index(followers[1])].restart();
    wait_isr(&env, "guarded", 3).await;
    produce(&env, "guarded", (0..5).map(|i| format!("c{i}"))).await.unwrap();
    // The leader dies: a former laggard now leads and has it all.
    env.brokers[index(leader)].kill();
    env.wait_serving("guarded").await;
    let want: Vec<String> = (0..20).map(|i| format!("a{i}")).chain((0..5).map(|i| format!("c{i}"))).collect();
    // The refused "b" may still be in the log: when the ISR shrinks while a
    // write waits, it is refused after its append (as Kafka's
    // NOT_ENOUGH_REPLICAS_AFTER_APPEND), and the producer may have retried.
    let config = goulette_client::ConsumerConfig { start: goulette_client::StartAt::Beginning, ..Default::default() };
    let mut consumer = goulette_client::Consumer::subscribe(env.cluster(), "guarded", config).await.unwrap();
    let mut values = Vec::new();
    while let Ok(Some(Ok(r))) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        values.push(String::from_utf8(r.value.to_vec()).unwrap());
    }
    let acknowledged: Vec<String> = values.iter().filter(|v| *v != "b").cloned().collect();
    assert_eq!(acknowledged, want, "every acknowledged message, in order: {values:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_deposed_leader_with_an_unreplicated_suffix_it_should_truncate_it_when_it_returns() {
    let mut env = Env::start(3, &["--replica-lag-max", "10s"]).await;
    env.create_topic("div", 1, 3).await;
    env.wait_serving("div").await;
    wait_isr(&env, "div", 3).await;
    produce(&env, "div", (0..10).map(|i| format!("a{i}"))).await.unwrap();
    let (leader, _) = leader_of(&env, "div").await;
    let followers: Vec<u32> = (1..=3).filter(|b| *b != leader).collect();

    // The followers die; within replica_lag_max they are still in the ISR,
    // and the leader takes acks=1 writes that never reach them, then dies too.
    for f in &followers {
        env.brokers[index(*f)].kill();
    }
    let config = ProducerConfig { acks: goulette_proto::v1::Acks::Leader, ..ProducerConfig::default() };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    for i in 0..3 {
        let r = ProducerRecord { topic: "div".into(), value: Bytes::from(format!("lost{i}")), ..Default::default() };
        producer.send(r).await.unwrap().wait().await.unwrap();
    }
    producer.close().await;
    env.brokers[index(leader)].kill();
    for f in &followers {
        env.brokers[index(*f)].restart();
    }

    // A follower leads at a new epoch, without the suffix; writes go on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while leader_of(&env, "div").await.0 == leader {
        assert!(tokio::time::Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.wait_serving("div").await;
    produce(&env, "div", (0..5).map(|i| format!("b{i}"))).await.unwrap();

    // The old leader returns, truncates its divergent suffix and catches up.
    env.brokers[index(leader)].restart();
    wait_isr(&env, "div", 3).await;
    let want: Vec<String> = (0..10).map(|i| format!("a{i}")).chain((0..5).map(|i| format!("b{i}"))).collect();
    let records = consume_all(env.cluster(), "div", want.len()).await;
    let values: Vec<String> = records.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect();
    assert_eq!(values, want, "acks=1 writes that reached no follower are gone, everything else is there");
    let old = &mut env.brokers[index(leader)];
    assert!(old.log().contains("truncating a suffix the leader does not have"), "{}", tail(&old.log(), 40));
    old.stop();
    let log =
        goulette_storage::PartitionLog::open(old.data_dir().join("div-0"), goulette_storage::LogConfig::default())
            .unwrap();
    let mut held = Vec::new();
    for bytes in log.read(0, 1 << 20).unwrap() {
        for r in goulette_storage::Batch::parse(bytes).unwrap().records().unwrap() {
            held.push(String::from_utf8(r.record.value.to_vec()).unwrap());
        }
    }
    assert_eq!(held, want, "the old leader's log equals the new leader's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_continuous_acks_all_producer_it_should_ride_through_the_leaders_kill() {
    let mut env = Env::start(3, &["--replica-lag-max", "2s"]).await;
    env.create_topic("ride", 1, 3).await;
    env.wait_serving("ride").await;
    wait_isr(&env, "ride", 3).await;
    let (leader, epoch) = leader_of(&env, "ride").await;

    // One producer keeps a window of writes in flight the whole time.
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..600 {
        let r = ProducerRecord { topic: "ride".into(), value: Bytes::from(format!("m{i}")), ..Default::default() };
        deliveries.push(producer.send(r).await.unwrap());
        if i == 200 {
            env.brokers[index(leader)].kill();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Every write is acknowledged, at increasing offsets.
    let mut offsets = Vec::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = d.wait().await.unwrap_or_else(|e| panic!("write {i} failed: {e}"));
        offsets.push(meta.offset.unwrap());
    }
    producer.close().await;
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "acknowledged offsets go backwards: {offsets:?}");
    let (new_leader, new_epoch) = leader_of(&env, "ride").await;
    assert!(new_leader != leader && new_epoch > epoch);

    // Each acknowledged message is at its offset; a batch retried after its
    // answer was lost may be there twice, nothing else.
    let end = *offsets.last().unwrap() as usize + 1;
    let records = consume_all(env.cluster(), "ride", end).await;
    for (i, offset) in offsets.iter().enumerate() {
        assert_eq!(records[*offset as usize].value, Bytes::from(format!("m{i}")), "message {i} at offset {offset}");
    }
    println!("600 writes through a leader kill; {} records stored", records.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_follower_whose_log_ends_before_the_leaders_log_start_it_should_start_over_there_and_rejoin() {
    let args = ["--fragment-bytes", "65536", "--max-batch-bytes", "65536", "--replica-lag-max", "2s"];
    let mut env = Env::start(3, &args).await;
    let config = goulette_proto::v1::TopicConfig {
        name: "short".into(),
        partitions: 1,
        replication_factor: 3,
        retention_bytes: 200_000,
        ..Default::default()
    };
    Admin::new(env.cluster()).create_topic(config).await.unwrap();
    env.wait_serving("short").await;
    wait_isr(&env, "short", 3).await;
    produce(&env, "short", (0..10).map(|i| format!("early{i}"))).await.unwrap();
    let (leader, _) = leader_of(&env, "short").await;
    let follower = (1..=3).find(|b| *b != leader).unwrap();
    env.brokers[index(follower)].kill();
    wait_isr(&env, "short", 2).await;

    // Enough data for retention on the leader to delete the start of the log.
    let config = ProducerConfig { batch_bytes: 16 << 10, ..ProducerConfig::default() };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..1000 {
        let value = Bytes::from(format!("m{i}-{}", "x".repeat(1000)));
        deliveries
            .push(producer.send(ProducerRecord { topic: "short".into(), value, ..Default::default() }).await.unwrap());
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = Admin::new(env.cluster()).describe_topic("short").await.unwrap();
        if d.partition_details[0].log_start_offset.is_some_and(|s| s > 10) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "retention never moved the log start: {d:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The follower returns behind the leader's log start: it empties its log,
    // continues at the leader's start and rejoins the ISR.
    env.brokers[index(follower)].restart();
    wait_isr(&env, "short", 3).await;
    let log = env.brokers[index(follower)].log();
    assert!(log.contains("emptying ours"), "{}", tail(&log, 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_follower_restarted_while_idle_when_it_takes_over_its_high_watermark_should_not_regress() {
    // Sessions long enough that a paused follower stays "live", in the ISR,
    // for a while after the leader's failover: it then holds the new
    // leader's high watermark where the new leader had it.
    let mut env = Env::start_with(3, &["--session-timeout", "8s"], &["--replica-lag-max", "20s"]).await;
    env.create_topic("idle", 1, 3).await;
    env.wait_serving("idle").await;
    wait_isr(&env, "idle", 3).await;
    let acked = produce(&env, "idle", (0..5000).map(|i| format!("m{i}"))).await.unwrap().len() as u64;
    let d = Admin::new(env.cluster()).describe_topic("idle").await.unwrap();
    let replicas = d.partition_details[0].replicas.clone();
    let (leader, next, paused) = (replicas[0], replicas[1], replicas[2]);
    assert_eq!(leader_of(&env, "idle").await.0, leader);

    // The next leader restarts while nothing is written (quicker than
    // replica-lag-max: it stays in the ISR) and fetches again.
    env.brokers[index(next)].restart();
    wait_isr(&env, "idle", 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    env.brokers[index(paused)].pause();
    env.brokers[index(leader)].kill();
    // Asking for offsets reports the dead leader; the sentinel probes it and
    // hands the partition to `next`, with the paused broker still in the ISR.
    let cluster = env.cluster();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let offsets = loop {
        if let Ok(o) = cluster.list_offsets("idle", 0, None).await
            && leader_of(&env, "idle").await.0 == next
        {
            break o;
        }
        assert!(tokio::time::Instant::now() < deadline, "{next} never took over");
        cluster.invalidate("idle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(offsets.high_watermark, acked, "the new leader hides acknowledged messages");
    env.brokers[index(paused)].resume();
}
