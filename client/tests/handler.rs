//! A message handler run with retries: transient failures are retried, and
//! the records it keeps failing on land in the dead-letter topic, with
//! headers naming their source and error, and nothing else does.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Env, consume_all, produce_values};
use goulette_client::handler::{self, DeadLetter, Outcome, RetryPolicy};
use goulette_client::{ClientError, Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, StartAt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_failing_handler_the_dead_letter_topic_should_receive_exactly_the_failed_messages() {
    let env = Env::start(1, &[]).await;
    env.create_topic("orders", 1, 1).await;
    env.create_topic("orders-dlq", 1, 1).await;
    env.wait_serving("orders").await;
    env.wait_serving("orders-dlq").await;
    let values: Vec<String> = (0..12)
        .map(|i| match i % 4 {
            1 => format!("bad{i}"),
            2 => format!("flaky{i}"),
            _ => format!("ok{i}"),
        })
        .collect();
    produce_values(env.cluster(), "orders", &values.iter().map(String::as_str).collect::<Vec<_>>()).await;

    let producer = Arc::new(Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash));
    let dead_letter = DeadLetter { producer: producer.clone(), topic: "orders-dlq".into() };
    let policy = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        attempt_timeout: None,
    };
    let config = ConsumerConfig { start: StartAt::Beginning, ..Default::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "orders", config).await.unwrap();
    // "bad" always fails; "flaky" fails on its first attempt only.
    let mut tries: HashMap<u64, u32> = HashMap::new();
    let mut outcomes = Vec::new();
    let run = handler::process(
        &mut consumer,
        &policy,
        Some(&dead_letter),
        |r| {
            let n = tries.entry(r.offset).or_default();
            *n += 1;
            let value = String::from_utf8_lossy(&r.value).into_owned();
            let fails = value.starts_with("bad") || (value.starts_with("flaky") && *n == 1);
            async move { if fails { Err(format!("cannot handle {value}")) } else { Ok(()) } }
        },
        |r, outcome| outcomes.push((r.offset, outcome.clone())),
    );
    // The consumer never ends by itself: stop once every record was seen.
    let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert_eq!(outcomes.len(), 12, "{outcomes:?}");
    for (offset, outcome) in &outcomes {
        let expected = match offset % 4 {
            1 => Outcome::DeadLettered { attempts: 3, error: format!("cannot handle bad{offset}") },
            2 => Outcome::Handled { attempts: 2 },
            _ => Outcome::Handled { attempts: 1 },
        };
        assert_eq!(outcome, &expected, "offset {offset}");
    }

    let letters = consume_all(env.cluster(), "orders-dlq", 3).await;
    let header = |r: &goulette_client::ConsumedRecord, name: &str| {
        r.headers.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    for (letter, offset) in letters.iter().zip([1u64, 5, 9]) {
        assert_eq!(letter.value, Bytes::from(format!("bad{offset}")));
        assert_eq!(header(letter, handler::HEADER_SOURCE_TOPIC).as_deref(), Some("orders"));
        assert_eq!(header(letter, handler::HEADER_SOURCE_PARTITION).as_deref(), Some("0"));
        assert_eq!(header(letter, handler::HEADER_SOURCE_OFFSET), Some(offset.to_string()));
        assert_eq!(header(letter, handler::HEADER_ATTEMPTS).as_deref(), Some("3"));
        assert_eq!(header(letter, handler::HEADER_ERROR), Some(format!("cannot handle bad{offset}")));
    }

    // Without a dead-letter topic the handler's error stops processing.
    let config = ConsumerConfig { start: StartAt::Beginning, ..Default::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "orders", config).await.unwrap();
    let stopped = handler::process(
        &mut consumer,
        &policy,
        None,
        |r| {
            let bad = r.value.starts_with(b"bad");
            async move { if bad { Err("no") } else { Ok(()) } }
        },
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(stopped, ClientError::Handler { offset: 1, attempts: 3, .. }), "{stopped}");

    // An attempt that outlives attempt_timeout counts as a failure.
    let config = ConsumerConfig { start: StartAt::Beginning, ..Default::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "orders", config).await.unwrap();
    let record = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await.unwrap().unwrap().unwrap();
    let patient = RetryPolicy { attempt_timeout: Some(Duration::from_millis(50)), max_attempts: 2, ..policy };
    let hung = handler::handle_with_retries(&record, &patient, None, |_| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<(), String>(())
    })
    .await
    .unwrap_err();
    assert!(matches!(&hung, ClientError::Handler { error, attempts: 2, .. } if error.contains("timed out")), "{hung}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_dead_letters_group_redrive_should_send_each_back_once_to_its_source_partition() {
    let env = Env::start(1, &[]).await;
    env.create_topic("orders", 2, 1).await;
    env.create_topic("shipping.dlq", 1, 1).await;
    env.wait_serving("orders").await;
    env.wait_serving("shipping.dlq").await;
    let producer = Arc::new(Producer::new(env.cluster(), ProducerConfig::default(), Partitioner::KeyHash));
    for i in 0..20 {
        let record = goulette_client::ProducerRecord {
            topic: "orders".into(),
            partition: Some(i % 2),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Bytes::from(format!("v{i}")),
            headers: vec![("trace".into(), Bytes::from(format!("t{i}")))],
            timestamp: Some(1_700_000_000_000 + i64::from(i)),
            tombstone: false,
        };
        producer.send(record).await.unwrap().wait().await.unwrap();
    }
    // The handler gives up on every fifth record: 4 dead letters.
    let dead_letter =
        DeadLetter { producer: producer.clone(), topic: goulette_client::redrive::dead_letter_topic("shipping") };
    let policy = RetryPolicy { max_attempts: 2, initial_backoff: Duration::from_millis(1), ..RetryPolicy::default() };
    let config = ConsumerConfig { start: StartAt::Beginning, ..Default::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "orders", config).await.unwrap();
    let mut failed = Vec::new();
    for _ in 0..20 {
        let r = tokio::time::timeout(Duration::from_secs(10), consumer.recv()).await.unwrap().unwrap().unwrap();
        let value = String::from_utf8_lossy(&r.value).into_owned();
        let bad = value[1..].parse::<u32>().unwrap() % 5 == 0;
        if bad {
            failed.push((r.partition, value.clone()));
        }
        handler::handle_with_retries(&r, &policy, Some(&dead_letter), |_| async move {
            if bad { Err("refused") } else { Ok(()) }
        })
        .await
        .unwrap();
    }
    assert_eq!(failed.len(), 4);
    let ends: Vec<u64> = [0, 1].iter().map(|_| 10).collect();

    let redrive = |args: &[&str]| {
        let args: Vec<&str> = ["group", "redrive", "shipping"].iter().chain(args).copied().collect();
        env.cli_ok(&args)
    };
    let out = redrive(&["--max", "1"]);
    assert!(out.contains("shipping: 1 dead letters sent back from shipping.dlq"), "{out}");
    let out = redrive(&[]);
    assert!(out.contains("shipping: 3 dead letters sent back") && out.contains("3  to orders"), "{out}");
    assert!(redrive(&[]).contains("shipping: 0 dead letters"), "a second redrive sends nothing again");

    // Each is back in its own partition, after what was there, as it was
    // but for the dead-letter headers.
    let mut back = Vec::new();
    for partition in 0..2u32 {
        let config = ConsumerConfig {
            start: StartAt::Offset(ends[partition as usize]),
            partitions: Some(vec![partition]),
            ..Default::default()
        };
        let mut consumer = Consumer::subscribe(env.cluster(), "orders", config).await.unwrap();
        while let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(1500), consumer.recv()).await {
            let r = r.unwrap();
            let value = String::from_utf8_lossy(&r.value).into_owned();
            let i: i64 = value[1..].parse().unwrap();
            assert_eq!(r.key, Some(Bytes::from(format!("k{i}"))));
            assert_eq!(r.timestamp, 1_700_000_000_000 + i);
            assert_eq!(r.headers, vec![("trace".to_owned(), Bytes::from(format!("t{i}")))]);
            back.push((partition, value));
        }
    }
    back.sort();
    failed.sort();
    assert_eq!(back, failed);
}
