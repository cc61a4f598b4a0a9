//! Replicated throughput: one producer, 1 KiB messages, `acks=all`, an RF=3
//! topic on 3 brokers (`flush=always`), 1 and 3 partitions, against RF=1. A measurement,
//! not a pass/fail test: `make bench-replicated` runs it on release builds
//! and prints messages/s and MB/s.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Env;
use goulette_client::{Partitioner, Producer, ProducerConfig, ProducerRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with `make bench-replicated`"]
async fn measure_replicated_throughput() {
    let messages: usize = std::env::var("BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let env = Env::start(3, &[]).await;
    // RF=1 is the baseline without replication.
    for (rf, partitions) in [(1, 1), (3, 1), (3, 3)] {
        let topic = format!("rf{rf}-{partitions}p");
        env.create_topic(&topic, partitions, rf).await;
        env.wait_serving(&topic).await;
        // Full ISR first: acks=all then waits for both followers.
        let admin = goulette_client::Admin::new(env.cluster());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !admin.describe_topic(&topic).await.unwrap().partition_details.iter().all(|p| p.isr.len() == rf as usize)
        {
            assert!(Instant::now() < deadline, "ISR never full");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::RoundRobin);
        let payload = Bytes::from(vec![0x5au8; 1024]);
        let started = Instant::now();
        let mut last = None;
        for _ in 0..messages {
            let r = ProducerRecord { topic: topic.clone(), value: payload.clone(), ..Default::default() };
            last = Some(producer.send(r).await.unwrap());
        }
        // Closing drains every partition's sender: all records answered.
        last.unwrap().wait().await.unwrap();
        producer.close().await;
        let took = started.elapsed().as_secs_f64();
        let rate = messages as f64 / took;
        println!(
            "RF={rf} acks=all 1 KiB, {partitions} partition(s), 1 producer: {messages} messages in {took:.2} s = {rate:.0} msg/s, {:.1} MB/s",
            rate * 1024.0 / 1e6
        );
    }
}
