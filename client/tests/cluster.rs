//! The whole path, produce → store → consume, across real processes: etcd,
//! a sentinel, brokers, and the client library (the same through the
//! `goulette` binary: `client/cli/tests/cli.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, consume_all, produce_values};

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use goulette_client::{Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1::{self as pb, ErrorCode, broker_service_client::BrokerServiceClient};
use goulette_storage::{BatchBuilder, Compression, Record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_keyed_messages_on_three_partitions_should_come_back_complete_and_in_order() {
    let env = Env::start(3, &[]).await;
    env.create_topic("orders", 3, 1).await;
    env.wait_serving("orders").await;
    let producer =
        Producer::new(env.cluster(), ProducerConfig { window: 8, ..ProducerConfig::default() }, Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..3000 {
        let record = ProducerRecord {
            topic: "orders".into(),
            key: Some(Bytes::from(format!("customer-{}", i % 10))),
            value: Bytes::from(format!("{i}")),
            ..ProducerRecord::default()
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    let mut acked: HashMap<u32, Vec<u64>> = HashMap::new();
    for d in deliveries {
        let meta = d.wait().await.unwrap();
        acked.entry(meta.partition).or_default().push(meta.offset.unwrap());
    }
    producer.close().await;
    assert_eq!(acked.len(), 3, "ten keys spread over all three partitions");
    for offsets in acked.values() {
        assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "offsets of a partition are dense and in send order");
    }

    let records = consume_all(env.cluster(), "orders", 3000).await;
    let mut last_offset: HashMap<u32, u64> = HashMap::new();
    let mut per_key: HashMap<Bytes, Vec<u64>> = HashMap::new();
    let mut key_partition: HashMap<Bytes, u32> = HashMap::new();
    for r in &records {
        if let Some(prev) = last_offset.insert(r.partition, r.offset) {
            assert_eq!(r.offset, prev + 1, "partition {} delivered out of order", r.partition);
        }
        let key = r.key.clone().unwrap();
        assert_eq!(
            *key_partition.entry(key.clone()).or_insert(r.partition),
            r.partition,
            "a key stays on one partition"
        );
        per_key.entry(key).or_default().push(std::str::from_utf8(&r.value).unwrap().parse().unwrap());
    }
    let mut all: Vec<u64> = per_key.values().flatten().copied().collect();
    all.sort();
    assert_eq!(all, (0..3000).collect::<Vec<_>>(), "every message exactly once");
    for values in per_key.values() {
        assert!(values.windows(2).all(|w| w[0] < w[1]), "a key's messages keep their send order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_broker_killed_and_restarted_should_still_serve_everything_it_acknowledged() {
    let mut env = Env::start(1, &[]).await;
    env.create_topic("durable", 1, 1).await;
    env.wait_serving("durable").await;
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    let mut deliveries = Vec::new();
    for i in 0..500 {
        let record = ProducerRecord {
            topic: "durable".into(),
            value: Bytes::from(format!("m{i}")),
            ..ProducerRecord::default()
        };
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.wait().await.unwrap();
    }
    producer.close().await;
    env.brokers[0].restart(); // SIGKILL, then start on the same data
    env.wait_brokers_up().await;
    env.wait_serving("durable").await;
    let records = consume_all(env.cluster(), "durable", 500).await;
    let values: Vec<String> = records.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap()).collect();
    assert_eq!(values, (0..500).map(|i| format!("m{i}")).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_consumer_waiting_at_the_end_should_receive_new_messages_by_long_poll() {
    let env = Env::start(1, &[]).await;
    env.create_topic("live", 1, 1).await;
    env.wait_serving("live").await;
    let mut consumer = Consumer::subscribe(env.cluster(), "live", ConsumerConfig::default()).await.unwrap();
    // Let the fetch stream open and park at the end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    let sent = tokio::time::Instant::now();
    producer
        .send(ProducerRecord { topic: "live".into(), value: Bytes::from_static(b"now"), ..Default::default() })
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await.unwrap().unwrap().unwrap();
    assert_eq!(&got.value[..], b"now");
    assert!(sent.elapsed() < Duration::from_secs(2), "delivered in {:?}", sent.elapsed());
}

fn raw_batch(value_len: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(&Record { value: Bytes::from(vec![b'x'; value_len]), ..Record::default() });
    b.build().unwrap()
}

/// Sends `batches` on one produce stream; returns the responses in order.
async fn raw_produce_all(
    address: std::net::SocketAddr,
    topic: &str,
    partition: u32,
    batches: Vec<Bytes>,
) -> Vec<pb::ProduceResponse> {
    raw_produce_with(address, topic, partition, batches, pb::Acks::All).await
}

async fn raw_produce_with(
    address: std::net::SocketAddr,
    topic: &str,
    partition: u32,
    batches: Vec<Bytes>,
    acks: pb::Acks,
) -> Vec<pb::ProduceResponse> {
    let mut client = BrokerServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap()
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    let n = batches.len();
    let requests: Vec<pb::ProduceRequest> = batches
        .into_iter()
        .enumerate()
        .map(|(i, batch)| pb::ProduceRequest {
            correlation_id: 7 + i as u64,
            topic: topic.into(),
            partition,
            acks: acks as i32,
            batch,
            expected_offset: None,
        })
        .collect();
    let mut responses = client.produce(tokio_stream::iter(requests)).await.unwrap().into_inner();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(responses.message().await.unwrap().unwrap());
    }
    out
}

async fn raw_produce(address: std::net::SocketAddr, topic: &str, partition: u32, batch: Bytes) -> pb::ProduceResponse {
    raw_produce_all(address, topic, partition, vec![batch]).await.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_bad_input_should_answer_typed_errors_and_lose_nothing_acknowledged() {
    let env = Env::start(2, &["--max-batch-bytes", "65536"]).await;
    let topic = env.create_topic("strict", 1, 2).await;
    env.wait_serving("strict").await;
    let leader = topic.partitions[0].leader.unwrap();
    let leader_addr = env.brokers.iter().find(|b| b.id == leader).unwrap().address;
    let follower_addr = env.brokers.iter().find(|b| b.id != leader).unwrap().address;

    let ok = raw_produce(leader_addr, "strict", 0, raw_batch(10)).await;
    assert!(ok.error.is_none(), "{:?}", ok.error);
    assert_eq!((ok.correlation_id, ok.base_offset), (7, 0));

    let too_large = raw_produce(leader_addr, "strict", 0, raw_batch(100_000)).await;
    assert_eq!(too_large.error.unwrap().error_code(), ErrorCode::TooLarge);

    let mut garbage = raw_batch(10).to_vec();
    let last = garbage.len() - 1;
    garbage[last] ^= 0xff;
    let invalid = raw_produce(leader_addr, "strict", 0, Bytes::from(garbage)).await;
    assert_eq!(invalid.error.unwrap().error_code(), ErrorCode::InvalidBatch);
    let junk = raw_produce(leader_addr, "strict", 0, Bytes::from_static(b"not a batch at all")).await;
    assert_eq!(junk.error.unwrap().error_code(), ErrorCode::InvalidBatch);

    let bad_name = raw_produce(leader_addr, "../etc", 0, raw_batch(10)).await;
    assert_eq!(bad_name.error.unwrap().error_code(), ErrorCode::InvalidArgument);

    // The follower replica answers NOT_LEADER and points at the leader; once
    // refused, later requests on the same stream are refused too (they must
    // not be appended ahead of the refused one's retry).
    let refused = raw_produce_all(follower_addr, "strict", 0, vec![raw_batch(10), raw_batch(10)]).await;
    let not_leader = refused[0].error.clone().unwrap();
    assert_eq!(not_leader.error_code(), ErrorCode::NotLeader);
    assert_eq!(not_leader.leader_hint, leader_addr.to_string());
    let second = refused[1].error.clone().unwrap();
    assert_eq!(second.error_code(), ErrorCode::NotLeader);
    assert!(second.message.contains("earlier request"), "{}", second.message);

    let records = consume_all(env.cluster(), "strict", 1).await;
    assert_eq!(records[0].value.len(), 10, "the one acknowledged batch is intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_deleted_topic_should_drop_its_data_and_a_new_one_of_that_name_start_at_zero() {
    let env = Env::start(1, &[]).await;
    env.create_topic("gone", 1, 1).await;
    env.wait_serving("gone").await;
    let producer = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    for i in 0..3 {
        let r = ProducerRecord { topic: "gone".into(), value: Bytes::from(format!("old{i}")), ..Default::default() };
        producer.send(r).await.unwrap().wait().await.unwrap();
    }
    let dir = env.brokers[0].data_dir().join("gone-0");
    assert!(dir.exists());
    goulette_client::Admin::new(env.cluster()).delete_topic("gone").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while dir.exists() {
        assert!(tokio::time::Instant::now() < deadline, "partition data not deleted; log:\n{}", env.brokers[0].log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.create_topic("gone", 1, 1).await;
    env.wait_serving("gone").await;
    let fresh = Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash);
    let r = ProducerRecord { topic: "gone".into(), value: Bytes::from_static(b"new"), ..Default::default() };
    let meta = fresh.send(r).await.unwrap().wait().await.unwrap();
    assert_eq!(meta.offset, Some(0));
    let records = consume_all(env.cluster(), "gone", 1).await;
    assert_eq!(&records[0].value[..], b"new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_topic_deleted_and_recreated_at_once_should_serve_only_the_new_incarnation() {
    let env = Env::start(1, &[]).await;
    env.create_topic("again", 1, 1).await;
    env.wait_serving("again").await;
    produce_values(env.cluster(), "again", &["old0", "old1"]).await;
    let admin = goulette_client::Admin::new(env.cluster());
    admin.delete_topic("again").await.unwrap();
    env.create_topic("again", 1, 1).await;
    // The broker may see both changes in one update: the new incarnation
    // must not inherit the old log.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let cluster = env.cluster();
        if let Ok(o) = cluster.list_offsets("again", 0, None).await
            && o.high_watermark == 0
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the re-created topic still shows the old log");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    produce_values(env.cluster(), "again", &["new"]).await;
    let records = consume_all(env.cluster(), "again", 1).await;
    assert_eq!((records[0].offset, &records[0].value[..]), (0, &b"new"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_topic_recreated_while_its_broker_was_down_should_drop_the_old_data_on_restart() {
    let mut env = Env::start(1, &[]).await;
    env.create_topic("while-down", 1, 1).await;
    env.wait_serving("while-down").await;
    produce_values(env.cluster(), "while-down", &["old"]).await;
    env.brokers[0].kill();
    let admin = goulette_client::Admin::new(env.cluster());
    admin.delete_topic("while-down").await.unwrap();
    // Creating needs a live broker: start it, wait, then re-create.
    env.brokers[0].restart();
    env.wait_brokers_up().await;
    env.create_topic("while-down", 1, 1).await;
    env.wait_serving("while-down").await;
    produce_values(env.cluster(), "while-down", &["new"]).await;
    let records = consume_all(env.cluster(), "while-down", 1).await;
    assert_eq!((records[0].offset, &records[0].value[..]), (0, &b"new"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_connected_clients_sigterm_should_stop_the_broker_promptly_and_cleanly() {
    let mut env = Env::start(1, &[]).await;
    env.create_topic("idle", 1, 1).await;
    env.wait_serving("idle").await;
    // An idle consumer parked at the end keeps a fetch stream open.
    let _consumer = Consumer::subscribe(env.cluster(), "idle", ConsumerConfig::default()).await.unwrap();
    produce_values(env.cluster(), "idle", &["x"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let status = tokio::task::block_in_place(|| env.brokers[0].stop()).unwrap();
    assert!(status.success(), "exit status {status:?}; log:\n{}", env.brokers[0].log());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(env.brokers[0].log().contains("broker stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_leader_it_should_say_where_each_leader_epoch_ends() {
    let env = Env::start(1, &[]).await;
    let topic = env.create_topic("epochs", 1, 1).await;
    env.wait_serving("epochs").await;
    produce_values(env.cluster(), "epochs", &["a", "b", "c"]).await;
    let leader = topic.partitions[0].leader.unwrap();
    let address = env.brokers.iter().find(|b| b.id == leader).unwrap().address;
    let mut client = BrokerServiceClient::connect(format!("http://{address}")).await.unwrap();
    let ask = |epoch| pb::OffsetForLeaderEpochRequest { topic: "epochs".into(), partition: 0, leader_epoch: epoch };
    let r = client.offset_for_leader_epoch(ask(1)).await.unwrap().into_inner();
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!((r.leader_epoch, r.end_offset), (Some(1), Some(3)), "epoch 1 is the latest: it ends at the log end");
    let r = client.offset_for_leader_epoch(ask(7)).await.unwrap().into_inner();
    assert_eq!((r.leader_epoch, r.end_offset), (Some(1), Some(3)));
    let r = client.offset_for_leader_epoch(ask(0)).await.unwrap().into_inner();
    assert_eq!((r.leader_epoch, r.end_offset), (None, None), "epoch 0 predates this log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_no_sentinel_contact_for_a_session_timeout_the_broker_should_refuse_acks_all() {
    let env = Env::start(1, &[]).await;
    env.create_topic("cut-off", 1, 1).await;
    env.wait_serving("cut-off").await;
    let address = env.brokers[0].address;
    let ok = raw_produce_with(address, "cut-off", 0, vec![raw_batch(10)], pb::Acks::All).await.remove(0);
    assert!(ok.error.is_none(), "{:?}", ok.error);

    // The sentinel stops answering for longer than the 2 s session timeout.
    env.sentinel.pause();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = raw_produce_with(address, "cut-off", 0, vec![raw_batch(10)], pb::Acks::All).await.remove(0);
    let e = refused.error.expect("acks=all refused while cut off");
    assert_eq!(e.error_code(), ErrorCode::NotLeader);
    assert!(e.message.contains("no sentinel"), "{}", e.message);
    env.sentinel.resume();

    // Back in contact (re-registered if the session expired meanwhile): writes work again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = raw_produce_with(address, "cut-off", 0, vec![raw_batch(10)], pb::Acks::All).await.remove(0);
        if r.error.is_none() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still refused: {:?}", r.error);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
