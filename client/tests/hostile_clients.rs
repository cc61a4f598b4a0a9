//! Clients that try to exhaust a broker: fetch streams that ask for huge
//! responses and never read. The broker's memory stays within its fetch
//! budget, the stuck streams are closed, and a well-behaved reader gets
//! everything.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Env, consume_all, produce_acked};
use goulette_proto::v1::{self as pb, broker_service_client::BrokerServiceClient, fetch_request::Kind};
use tokio_stream::wrappers::ReceiverStream;

const STUCK_STREAMS: usize = 100;
const MESSAGES: usize = 40_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_100_fetch_streams_that_never_read_the_broker_should_stay_within_its_fetch_memory() {
    let fetch_memory: u64 = 64 << 20;
    let args = ["--fetch-memory", &fetch_memory.to_string(), "--fetch-send-timeout", "4s"];
    let env = Env::start(1, &args).await;
    env.create_topic("hoarded", 1, 1).await;
    env.wait_serving("hoarded").await;
    produce_acked(env.cluster(), "hoarded", (0..MESSAGES).map(|i| format!("{i:01000}"))).await;
    let broker = &env.brokers[0];
    let before = broker.memory("VmRSS").unwrap();

    // Each on its own connection, asking for 16 MiB responses and all the
    // credit there is, and never reading a byte.
    let mut stuck = Vec::new();
    for _ in 0..STUCK_STREAMS {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", broker.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let (requests, rx) = tokio::sync::mpsc::channel(1);
        let start = pb::FetchStart {
            topic: "hoarded".into(),
            partition: 0,
            offset: 0,
            max_bytes: 16 << 20,
            credit_bytes: u64::MAX / 2,
            ..Default::default()
        };
        requests.send(pb::FetchRequest { kind: Some(Kind::Start(start)) }).await.unwrap();
        let responses = BrokerServiceClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .fetch(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        stuck.push((requests, responses));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let peak = broker.memory("VmHWM").unwrap();
    let grown = peak.saturating_sub(before);
    // The budget, plus what the transport holds per stream (at most one
    // response of --max-fetch-bytes, 1 MiB) and slack; without the budget
    // this grew by ~48 MiB per stream (4.8 GiB).
    let bound = fetch_memory + STUCK_STREAMS as u64 * (1 << 20) + (64 << 20);
    eprintln!("broker memory grew by {} MiB (bound {} MiB)", grown >> 20, bound >> 20);
    assert!(grown < bound, "the broker grew by {} MiB (bound {} MiB)", grown >> 20, bound >> 20);

    // The stuck streams are closed after the send timeout; a reader that
    // reads gets everything.
    assert_eq!(consume_all(env.cluster(), "hoarded", MESSAGES).await.len(), MESSAGES);
    drop(stuck);
}

/// Opens `n` TCP connections to `address` that never send a byte.
fn idle_connections(address: std::net::SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    (0..n).filter_map(|_| std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_its_descriptors_used_up_by_idle_connections_a_broker_should_back_off_keep_serving_and_recover() {
    let mut env = Env::start(0, &[]).await;
    let sentinels = env.sentinel.address.to_string();
    let args = ["--connection-idle-timeout", "3s"];
    env.brokers.push(goulette_sentinel::testkit::BrokerProcess::start_with_fd_limit(1, &sentinels, &args, 256));
    env.wait_brokers_up().await;
    env.create_topic("flooded", 1, 1).await;
    env.wait_serving("flooded").await;
    // A producer and a consumer connected before the flood.
    let producer = goulette_client::Producer::new(
        env.cluster(),
        goulette_client::ProducerConfig::default(),
        goulette_client::Partitioner::RoundRobin,
    );
    let send = |v: &str| {
        let record = goulette_client::ProducerRecord {
            topic: "flooded".into(),
            value: bytes::Bytes::from(v.to_owned()),
            ..Default::default()
        };
        producer.send(record)
    };
    send("before").await.unwrap().wait().await.unwrap();
    let config = goulette_client::ConsumerConfig { start: goulette_client::StartAt::Beginning, ..Default::default() };
    let mut consumer = goulette_client::Consumer::subscribe(env.cluster(), "flooded", config).await.unwrap();
    assert_eq!(&consumer.recv().await.unwrap().unwrap().value[..], b"before");

    let broker = &env.brokers[0];
    let flood = idle_connections(broker.address, 400);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = broker.cpu_time().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = broker.cpu_time().unwrap() - cpu_before;
    assert!(spent < Duration::from_millis(600), "the broker spun for {spent:?} of 2 s");
    assert!(broker.log().contains("cannot accept connections"), "{}", broker.log());

    // Streams opened before the flood keep working.
    send("during").await.unwrap().wait().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(&got.value[..], b"during");

    // Idle connections are closed, and new clients get in again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    produce_acked(env.cluster(), "flooded", ["after".to_owned()]).await;
    drop(flood);
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_more_connections_from_one_address_than_allowed_the_extra_ones_should_be_closed() {
    let env = Env::start(1, &["--max-connections-per-address", "50"]).await;
    let flood = idle_connections(env.brokers[0].address, 80);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The broker closed what it would not keep: reading those gives EOF.
    let closed = flood
        .iter()
        .filter(|c| {
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            matches!(std::io::Read::read(&mut &**c, &mut [0u8; 1]), Ok(0))
        })
        .count();
    assert!(closed >= 30, "only {closed} of 80 connections closed");
    assert!(env.brokers[0].log().contains("too many connections"));
    // Goulette's own clients still get in once the flood is gone.
    drop(flood);
    env.create_topic("after", 1, 1).await;
    env.wait_serving("after").await;
}
