//! The RabbitMQ source against a real `rabbitmq-server` and a real
//! cluster: 100,000 messages published to a queue, the mirror killed -9 in
//! the middle and restarted: every message reaches the topic, duplicates
//! only within what was in flight at the kill (none with dedup on), the
//! queue's order kept, and the queue empty at the end (every message
//! acknowledged to RabbitMQ only once Goulette held it).

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;
mod rabbit;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::Env;
use goulette_client::{Consumer, ConsumerConfig, StartAt};
use goulette_sentinel::testkit::{free_port, http_get};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use process::Mirror;
use rabbit::RabbitProcess;

const MESSAGES: usize = 100_000;
const PREFETCH: usize = 2000;
const IN_FLIGHT: usize = 5000;

async fn channel(url: &str) -> (Connection, lapin::Channel) {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = Connection::connect(url, properties).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// Publishes `count` persistent messages `m{i}` with confirms.
async fn publish(url: &str, queue: &str, count: usize) {
    let (_connection, channel) = channel(url).await;
    let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(queue, options, FieldTable::default()).await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let mut confirms = Vec::with_capacity(1000);
    for i in 0..count {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(format!("id-{i}").into())
            .with_content_type("text/plain".into());
        let payload = format!("m{i}");
        confirms.push(
            channel
                .basic_publish("", queue, BasicPublishOptions::default(), payload.as_bytes(), properties)
                .await
                .unwrap(),
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

/// Messages still in `queue`.
async fn queued(url: &str, queue: &str) -> u32 {
    let (_connection, channel) = channel(url).await;
    let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    channel.queue_declare(queue, options, FieldTable::default()).await.unwrap().message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_queue_every_message_should_arrive_in_order_across_a_kill_and_be_acknowledged_only_then() {
    let duplicates = mirror_across_a_kill("").await;
    // Only what was unacknowledged at the kill: delivered ahead (prefetch)
    // and in the pipeline (in flight), at most.
    assert!(duplicates <= PREFETCH + IN_FLIGHT, "{duplicates} duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_dedup_by_message_id_a_kill_should_leave_no_duplicate() {
    let duplicates = mirror_across_a_kill("dedup = { by = \"key\", ttl = \"10m\" }").await;
    assert_eq!(duplicates, 0);
}

/// Publishes the messages, mirrors them with `extra` source settings
/// across a kill -9, checks every message arrived in the queue's order and
/// the queue emptied; the duplicates.
async fn mirror_across_a_kill(extra: &str) -> usize {
    let rabbit = RabbitProcess::start();
    let env = Env::start(1, &[]).await;
    // One partition: the topic keeps the queue's order.
    env.create_topic("orders", 1, 1).await;
    publish(&rabbit.url(), "orders", MESSAGES).await;

    let work = tempfile::tempdir().unwrap();
    let http = free_port();
    let config = work.path().join("mirror.toml");
    let text = format!(
        r#"
[target]
sentinels = ["{}"]
max-in-flight = {IN_FLIGHT}

[http]
address = "127.0.0.1:{http}"

[[source]]
name = "orders"
kind = "rabbitmq"
url = "{}"
queue = "orders"
topic = "orders"
prefetch = {PREFETCH}
key = "message-id"
{extra}
"#,
        env.sentinel.address,
        rabbit.url()
    );
    std::fs::write(&config, text).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("mirror.log"));
    let log = || std::fs::read_to_string(work.path().join("mirror.log")).unwrap_or_default();

    // Killed in the middle.
    let address = format!("127.0.0.1:{http}").parse().unwrap();
    let out = |page: &str| common::metric(page, "goulette_mirror_records_out_total{source=\"orders\"}").unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(90);
    while http_get(address, "/metrics").is_none_or(|(_, page)| out(&page) < (MESSAGES / 3) as f64) {
        assert!(Instant::now() < deadline, "too little mirrored: {}", log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mirror.kill();
    let left_at_kill = queued(&rabbit.url(), "orders").await as usize;
    mirror.spawn();

    // Every message written, then acknowledged: the queue empties.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = queued(&rabbit.url(), "orders").await;
        let written = http_get(address, "/metrics").map_or(0.0, |(_, page)| out(&page));
        if left == 0 && written > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} messages still queued: {}", log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let config = ConsumerConfig { start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "orders", config).await.unwrap();
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut first_order = Vec::with_capacity(MESSAGES);
    while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        let record = record.unwrap();
        let value = String::from_utf8(record.value.to_vec()).unwrap();
        let n: usize = value.strip_prefix('m').unwrap().parse().unwrap();
        assert_eq!(record.key.as_deref(), Some(format!("id-{n}").as_bytes()), "the key is the message id");
        let header = |name: &str| record.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(header("amqp-routing-key").as_deref(), Some(&b"orders"[..]));
        assert_eq!(header("amqp-content-type").as_deref(), Some(&b"text/plain"[..]));
        let count = seen.entry(n).or_default();
        if *count == 0 {
            first_order.push(n);
        }
        *count += 1;
    }
    assert_eq!(seen.len(), MESSAGES, "messages missing: {}", MESSAGES - seen.len());
    // The queue's order: each message's first copy comes after the one before it.
    assert!(first_order.windows(2).all(|w| w[0] < w[1]), "the queue's order was not kept");
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!("{left_at_kill} messages queued at the kill; {duplicates} duplicates after the restart");
    let status = mirror.terminate().expect("the mirror did not stop within 20 s of SIGTERM");
    assert!(status.success(), "{status:?}: {}", log());
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_rabbitmq_down_at_start_the_mirror_should_say_so_retry_and_lose_nothing_once_it_is_up() {
    let env = Env::start(1, &[]).await;
    env.create_topic("late", 1, 1).await;
    let port = free_port();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let (work, http) = (tempfile::tempdir().unwrap(), free_port());
    let config = work.path().join("mirror.toml");
    let text = format!(
        "[target]\nsentinels = [\"{}\"]\n\n[http]\naddress = \"127.0.0.1:{http}\"\n\n\
         [[source]]\nname = \"late\"\nkind = \"rabbitmq\"\nurl = \"{url}\"\nqueue = \"late\"\ntopic = \"late\"\ndeclare = true\n",
        env.sentinel.address
    );
    std::fs::write(&config, text).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("mirror.log"));
    let log = || std::fs::read_to_string(work.path().join("mirror.log")).unwrap_or_default();
    let address = format!("127.0.0.1:{http}").parse().unwrap();

    // Not ready, and saying why; the log names the broker, not the password.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((503, why)) = http_get(address, "/ready")
            && why.contains("cannot consume from RabbitMQ")
        {
            break;
        }
        assert!(Instant::now() < deadline, "/ready does not say RabbitMQ is out of reach: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log().contains(&format!("guest:***@127.0.0.1:{port}")) && !log().contains("guest:guest"), "{}", log());

    // RabbitMQ comes up: the mirror connects on its own, and nothing is lost.
    let rabbit = RabbitProcess::start_on(port);
    publish(&rabbit.url(), "late", 1000).await;
    let out = |page: &str| common::metric(page, "goulette_mirror_records_out_total{source=\"late\"}").unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(90);
    while http_get(address, "/metrics").is_none_or(|(_, page)| out(&page) < 1000.0) {
        assert!(Instant::now() < deadline, "not mirrored once RabbitMQ was up: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(address, "/ready").map(|(code, _)| code), Some(200));
    let records = common::consume_all(env.cluster(), "late", 1000).await;
    let mut values: Vec<String> = records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
    values.dedup();
    assert_eq!(values.len(), 1000);
    assert!(mirror.terminate().is_some_and(|s| s.success()));
}
