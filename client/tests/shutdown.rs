//! Controlled shutdown: SIGTERM on a partition leader hands its leadership
//! to an in-sync follower before the broker stops, so a producer with few
//! retries sees no failed `acks=all` write, and the broker's session ends at
//! once (op log: `controlled-shutdown`, then `deregister-broker`, never a
//! failover after a lost session). With `--controlled-shutdown-timeout 0s`
//! the op-log checks fail (checked when this was written): clients then ride
//! the failover that follows their reports of an unreachable broker.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Env;
use goulette_client::{Admin, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1 as pb;
use goulette_sentinel::testkit::bin_dir;

async fn state(env: &Env, topic: &str) -> (Option<u32>, u64, Vec<u32>) {
    let d = Admin::new(env.cluster()).describe_topic(topic).await.unwrap();
    let p = &d.partition_details[0];
    (p.leader, p.leader_epoch, p.isr.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_sigterm_on_a_leader_it_should_hand_over_first_and_no_acks_all_write_should_fail() {
    let mut env = Env::start(3, &[]).await;
    env.create_topic("rolling", 1, 3).await;
    env.wait_serving("rolling").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while state(&env, "rolling").await.2.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the ISR never filled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (leader, epoch, _) = state(&env, "rolling").await;
    let leader = leader.unwrap();

    // Few retries with short backoffs: riding out a session timeout (2 s
    // here) would exhaust them; a leader switch does not.
    let config = ProducerConfig {
        max_attempts: 4,
        retry_backoff: Duration::from_millis(20),
        max_retry_backoff: Duration::from_millis(100),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(env.cluster(), config, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    let stopping = &mut env.brokers[leader as usize - 1];
    for i in 0..400 {
        let r = ProducerRecord { topic: "rolling".into(), value: Bytes::from(format!("m{i}")), ..Default::default() };
        deliveries.push(producer.send(r).await.unwrap());
        if i == 150 {
            stopping.terminate();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut offsets = Vec::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = d.wait().await.unwrap_or_else(|e| panic!("write {i} failed: {e}"));
        offsets.push(meta.offset.unwrap());
    }
    producer.close().await;
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "acknowledged offsets go backwards");
    let status = tokio::task::block_in_place(|| stopping.wait()).unwrap();
    assert!(status.success(), "the broker exits cleanly after SIGTERM: {status}");

    let (new_leader, new_epoch, isr) = state(&env, "rolling").await;
    assert!(new_leader.is_some_and(|l| l != leader) && new_epoch > epoch, "{new_leader:?} {new_epoch}");
    assert!(!isr.contains(&leader), "the stopped broker left the ISR: {isr:?}");
    let status = Admin::new(env.cluster()).cluster_status().await.unwrap();
    assert_eq!(
        status.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count(),
        2,
        "its session ended: {status:?}"
    );

    let ops = std::process::Command::new(bin_dir().join("goulette"))
        .args(["etcd", "ops", "--etcd-endpoints", &env.etcd.endpoint()])
        .output()
        .unwrap();
    let ops = String::from_utf8_lossy(&ops.stdout);
    assert!(ops.contains("controlled-shutdown") && ops.contains("deregister-broker"), "{ops}");
    assert!(!ops.contains("broker-unreachable") && !ops.contains("elect-leader"), "no failover: {ops}");
}

/// Brokers stopping together must not wait on each other (each would hand
/// its partitions to another that is leaving too): they pass each other
/// over, and what no one can take is left offline at once, not after the
/// controlled-shutdown timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_every_broker_stopping_at_once_none_should_wait_for_the_others() {
    let mut env = Env::start(3, &["--controlled-shutdown-timeout", "20s"]).await;
    env.create_topic("together", 6, 3).await;
    env.wait_serving("together").await;
    common::produce_values(env.cluster(), "together", &["a", "b", "c"]).await;
    let started = std::time::Instant::now();
    for b in &env.brokers {
        b.terminate();
    }
    for b in &mut env.brokers {
        let status = tokio::task::block_in_place(|| b.wait()).unwrap();
        assert!(status.success(), "broker {} exits cleanly: {status}", b.id);
    }
    let took = started.elapsed();
    let logs: Vec<String> = env
        .brokers
        .iter()
        .map(|b| {
            let log = b.log();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains("shutdown") || l.contains("WARN")).collect();
            format!("--- broker {}:\n{}", b.id, lines[lines.len().saturating_sub(12)..].join("\n"))
        })
        .collect();
    let ops = std::process::Command::new(bin_dir().join("goulette"))
        .args(["etcd", "ops", "--etcd-endpoints", &env.etcd.endpoint()])
        .output()
        .unwrap();
    let ops = String::from_utf8_lossy(&ops.stdout);
    assert!(took < Duration::from_secs(15), "stopping together took {took:?}\n{}\n{ops}", logs.join("\n"));
}
