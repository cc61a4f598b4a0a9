//! `make bench-mirror` (part of `make bench`): the mirror's throughput with
//! 1 KiB records, against what the target cluster alone accepts from one
//! producer. Ignored in `make test`; run on release builds:
//!
//! ```sh
//! cargo test -p goulette-mirror --release --test bench -- --ignored --nocapture
//! ```
//!
//! Rows: the target alone (one idempotent `acks=all` producer, as the
//! mirror's); Goulette → Goulette through the Kafka source, at least once
//! and exactly once; RabbitMQ → Goulette. Each mirror run has a backlog
//! waiting in its source and is timed from its first record acknowledged
//! by the target to its last (start-up and the consumer group's join are
//! not counted).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;
mod rabbit;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Env;
use goulette_client::{Cluster, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_sentinel::testkit::{free_port, http_get};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use process::Mirror;
use rabbit::RabbitProcess;

const SIZE: usize = 1024;
/// Records of each Goulette run (`BENCH_MIRROR_RECORDS` to change, for a
/// profile)…
fn records() -> usize {
    std::env::var("BENCH_MIRROR_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}
/// …and of the RabbitMQ run (publishing with confirms is slower).
const MESSAGES: usize = 100_000;

/// Writes `count` 1 KiB records to `topic` with one producer; msg/s.
async fn produce(cluster: Arc<Cluster>, topic: &str, count: usize) -> f64 {
    let producer = Producer::new(cluster, ProducerConfig::default(), Partitioner::KeyHash);
    let value = Bytes::from(vec![b'x'; SIZE]);
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let record = ProducerRecord {
            topic: topic.into(),
            partition: Some(0),
            key: Some(Bytes::from(format!("k{i}"))),
            value: value.clone(),
            ..Default::default()
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    producer.close().await;
    rate
}

/// Runs the mirror on `config_text` until its source wrote `count`
/// records; msg/s from its first acknowledged record to its last.
async fn mirror_rate(work: &Path, config_text: &str, http: u16, source: &str, count: usize) -> f64 {
    let config = work.join(format!("{source}.toml"));
    std::fs::write(&config, config_text).unwrap();
    let log = work.join(format!("{source}.log"));
    let mut mirror = Mirror::start(&config, &log);
    let address: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    let name = format!("goulette_mirror_records_out_total{{source=\"{source}\"}}");
    let out = || http_get(address, "/metrics").map_or(0.0, |(_, page)| common::metric(&page, &name).unwrap_or(0.0));
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first = None;
    loop {
        let written = out();
        if written > 0.0 && first.is_none() {
            first = Some((Instant::now(), written));
        }
        if written >= count as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{source}: {written} of {count}: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (at, from) = first.unwrap();
    let rate = (count as f64 - from) / at.elapsed().as_secs_f64();
    assert!(mirror.terminate().is_some_and(|s| s.success()), "{source} did not stop cleanly");
    rate
}

fn kafka_source(target: &Env, http: u16, name: &str, brokers: &str, topic: &str, extra: &str) -> String {
    format!(
        "[target]\nsentinels = [\"{}\"]\nmax-in-flight = {}\n\n[http]\naddress = \"127.0.0.1:{http}\"\n\n[[source]]\n\
         name = \"{name}\"\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ngroup = \"{name}\"\ntopics = [\"{topic}\"]\npartition = \"same\"\n\
         topic = \"{name}\"\n{extra}",
        target.sentinel.address,
        in_flight()
    )
}

/// The mirror's `max-in-flight` (`BENCH_MIRROR_IN_FLIGHT`; its default).
fn in_flight() -> usize {
    std::env::var("BENCH_MIRROR_IN_FLIGHT").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

/// The mirror's consumer (its librdkafka settings, its group) reading the
/// backlog into nothing; msg/s from its first record to its last.
async fn read_alone(brokers: &str) -> f64 {
    use futures_util::StreamExt;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let text = format!("name = \"alone\"\nbrokers = \"{brokers}\"\ngroup = \"read-alone\"\ntopics = [\"backlog\"]\n");
    let config: goulette_mirror::config::KafkaConfig = toml::from_str(&text).unwrap();
    let context = goulette_mirror::source::kafka::Context::new("alone", Default::default());
    let consumer: StreamConsumer<_> =
        goulette_mirror::source::kafka::client_config(&config, &config.group).create_with_context(context).unwrap();
    consumer.subscribe(&["backlog"]).unwrap();
    let mut stream = consumer.stream();
    let mut first = None;
    for n in 0..records() {
        stream.next().await.unwrap().unwrap();
        if n == 0 {
            first = Some(Instant::now());
        }
    }
    (records() - 1) as f64 / first.unwrap().elapsed().as_secs_f64()
}

/// Consumes `queue` as the mirror does (one consumer, its prefetch, an
/// acknowledgement with `multiple` per 500) into nothing; msg/s.
async fn drain(url: &str, queue: &str) -> f64 {
    use futures_util::StreamExt;
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = Connection::connect(url, properties).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.basic_qos(5000, BasicQosOptions::default()).await.unwrap();
    let mut consumer =
        channel.basic_consume(queue, "drain", BasicConsumeOptions::default(), FieldTable::default()).await.unwrap();
    let mut first = None;
    for n in 1..=MESSAGES {
        let delivery = consumer.next().await.unwrap().unwrap();
        first.get_or_insert_with(Instant::now);
        if n % 500 == 0 || n == MESSAGES {
            channel.basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true }).await.unwrap();
        }
    }
    (MESSAGES - 1) as f64 / first.unwrap().elapsed().as_secs_f64()
}

async fn publish(url: &str, queue: &str, count: usize) {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = Connection::connect(url, properties).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(queue, options, FieldTable::default()).await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let payload = vec![b'x'; SIZE];
    let mut confirms = Vec::with_capacity(1000);
    for _ in 0..count {
        let properties = BasicProperties::default().with_delivery_mode(2);
        confirms.push(
            channel.basic_publish("", queue, BasicPublishOptions::default(), &payload, properties).await.unwrap(),
        );
        if confirms.len() == 1000 {
            for c in confirms.drain(..) {
                c.await.unwrap();
            }
        }
    }
    for c in confirms {
        c.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: make bench-mirror"]
async fn bench_mirror() {
    let source = Env::start(1, &[]).await;
    let target = Env::start(1, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let brokers = source.brokers[0].kafka_address.to_string();

    target.create_topic("alone", 1, 1).await;
    target.wait_serving("alone").await;
    let alone = produce(target.cluster(), "alone", records()).await;

    source.create_topic("backlog", 1, 1).await;
    source.wait_serving("backlog").await;
    produce(source.cluster(), "backlog", records()).await;
    let mut rows = vec![("target alone: one producer, idempotent, acks=all".to_owned(), alone)];
    rows.push((
        "source alone: the mirror's librdkafka consumer reads the backlog".to_owned(),
        read_alone(&brokers).await,
    ));
    for (name, extra) in [("kafka", ""), ("exact", "exactly-once = true\n")] {
        target.create_topic(name, 1, 1).await;
        target.wait_serving(name).await;
        let http = free_port();
        let config = kafka_source(&target, http, name, &brokers, "backlog", extra);
        let rate = mirror_rate(work.path(), &config, http, name, records()).await;
        let what = if extra.is_empty() { "at least once" } else { "exactly once" };
        rows.push((format!("Goulette → Goulette, Kafka source, {what}"), rate));
    }

    let rabbit = RabbitProcess::start();
    publish(&rabbit.url(), "alone", MESSAGES).await;
    rows.push((
        "RabbitMQ alone: one consumer, prefetch 5000, acknowledged by 500".to_owned(),
        drain(&rabbit.url(), "alone").await,
    ));
    publish(&rabbit.url(), "bench", MESSAGES).await;
    target.create_topic("rabbit", 1, 1).await;
    target.wait_serving("rabbit").await;
    let http = free_port();
    let config = format!(
        "[target]\nsentinels = [\"{}\"]\n\n[http]\naddress = \"127.0.0.1:{http}\"\n\n[[source]]\nname = \"rabbit\"\n\
         kind = \"rabbitmq\"\nurl = \"{}\"\nqueue = \"bench\"\ntopic = \"rabbit\"\nprefetch = 5000\n",
        target.sentinel.address,
        rabbit.url()
    );
    rows.push(("RabbitMQ → Goulette".to_owned(), mirror_rate(work.path(), &config, http, "rabbit", MESSAGES).await));

    println!("\n| case (1 KiB records) | msg/s | MB/s | of the target alone |\n|---|---|---|---|");
    for (case, rate) in &rows {
        println!("| {case} | {rate:.0} | {:.1} | {:.0} % |", rate * SIZE as f64 / 1e6, 100.0 * rate / alone);
    }
}
