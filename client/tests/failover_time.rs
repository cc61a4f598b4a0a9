//! Failover time: from kill -9 of a partition leader to the first successful
//! `acks=all` produce on that partition, over repeated kills, with the
//! sentinel's default timeouts. A measurement, not a pass/fail test:
//! `make bench-failover` runs it and prints p50 and max.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use goulette_client::{Admin, Cluster, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1 as pb;
use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess};

async fn describe(cluster: &Arc<Cluster>) -> Option<goulette_client::admin::PartitionReport> {
    Admin::new(cluster.clone()).describe_topic("failover").await.ok().map(|d| d.partition_details[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with `make bench-failover`"]
async fn measure_failover_time() {
    let kills: usize = std::env::var("FAILOVER_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let etcd = EtcdProcess::start();
    // Default settings: no --session-timeout / --heartbeat-interval / --lease-ttl.
    let sentinel = SentinelProcess::start_with("s1", vec!["--etcd-endpoints".into(), etcd.endpoint()]);
    let sentinels = sentinel.address.to_string();
    let mut brokers: Vec<BrokerProcess> = (1..=3).map(|id| BrokerProcess::start(id, &sentinels, &[])).collect();
    let cluster = Arc::new(Cluster::new(vec![sentinels.clone()]).unwrap());
    let admin = Admin::new(cluster.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin
        .cluster_status()
        .await
        .map_or(true, |s| s.brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32).count() < 3)
    {
        assert!(Instant::now() < deadline, "brokers never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let config =
        pb::TopicConfig { name: "failover".into(), partitions: 1, replication_factor: 3, ..Default::default() };
    admin.create_topic(config).await.unwrap();

    let mut times = Vec::new();
    for round in 0..kills {
        // Wait for a full ISR, then a successful write, before each kill.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if describe(&cluster).await.is_some_and(|p| p.isr.len() == 3) && produce_one(&cluster, round).await {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: no full ISR");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let leader = describe(&cluster).await.unwrap().leader.unwrap();
        brokers[leader as usize - 1].kill();
        let killed = Instant::now();
        while !produce_one(&cluster, round).await {
            assert!(killed.elapsed() < Duration::from_secs(60), "round {round}: no failover in 60 s");
        }
        let took = killed.elapsed();
        println!("round {round}: leader {leader} killed, acks=all write succeeded after {took:?}");
        times.push(took);
        brokers[leader as usize - 1].restart();
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let max = times[times.len() - 1];
    println!("failover over {} kills: p50 {p50:?}, max {max:?}, min {:?}", times.len(), times[0]);
    if std::env::var_os("FAILOVER_DEBUG").is_some() {
        for line in
            sentinel.log().lines().filter(|l| l.contains("probe") || l.contains("elect") || l.contains("unreachable"))
        {
            println!("{line}");
        }
    }
}

/// One `acks=all` write with a fresh producer (fresh metadata) that gives up
/// after a short while; true if it was acknowledged.
async fn produce_one(cluster: &Arc<Cluster>, round: usize) -> bool {
    cluster.invalidate("failover");
    let config = ProducerConfig {
        max_attempts: 3,
        retry_backoff: Duration::from_millis(20),
        max_retry_backoff: Duration::from_millis(100),
        ..ProducerConfig::default()
    };
    let producer = Producer::new(cluster.clone(), config, Partitioner::KeyHash);
    let record =
        ProducerRecord { topic: "failover".into(), value: Bytes::from(format!("r{round}")), ..Default::default() };
    let sent = match producer.send(record).await {
        Ok(d) => tokio::time::timeout(Duration::from_secs(5), d.wait()).await.is_ok_and(|r| r.is_ok()),
        Err(_) => false,
    };
    producer.close().await;
    sent
}
