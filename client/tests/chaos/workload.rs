//! The workload: producers sending sequence-numbered keyed messages with
//! `acks=all` at a steady rate, consumers following every partition, each
//! recording what it was told, and the members of a consumer group, which
//! every 5-15 s leave (cleanly, or as a crash: dropped without a word) and
//! join again, so partitions keep moving between them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use goulette_client::{
    Cluster, Consumer, ConsumerConfig, GroupOptions, Partitioner, Producer, ProducerConfig, ProducerRecord, StartAt,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::checker::{Ack, History};

/// What producers and consumers recorded.
#[derive(Default)]
struct Records {
    acks: Vec<Ack>,
    /// Per partition, when each acknowledgement arrived.
    ack_times: HashMap<u32, Vec<Instant>>,
    observed: BTreeMap<u32, Vec<(u64, String)>>,
    /// Values the group's members received.
    group_seen: std::collections::HashSet<String>,
}

/// The consumer group of the workload.
const GROUP: &str = "chaos-group";

pub struct Workload {
    stop: Arc<AtomicBool>,
    operations: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    records: Arc<Mutex<Records>>,
    producers: JoinSet<()>,
    consumers: JoinSet<()>,
    /// Stops the group members once they have caught up.
    stop_group: Arc<AtomicBool>,
    members: JoinSet<()>,
    members_started: bool,
    started: Instant,
}

impl Workload {
    /// Starts `producers` producers sending `rate` messages/s each,
    /// `consumers` consumers of every one of the `partitions` partitions, and
    /// `members` members of a consumer group.
    pub fn start(
        cluster: &Arc<Cluster>,
        topic: &str,
        partitions: u32,
        producers: u32,
        consumers: u32,
        members: u32,
        rate: u32,
    ) -> Workload {
        let mut w = Workload {
            stop: Arc::new(AtomicBool::new(false)),
            operations: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(AtomicU64::new(0)),
            records: Arc::new(Mutex::new(Records::default())),
            producers: JoinSet::new(),
            consumers: JoinSet::new(),
            stop_group: Arc::new(AtomicBool::new(false)),
            members: JoinSet::new(),
            members_started: members > 0,
            started: Instant::now(),
        };
        for m in 0..members {
            w.members.spawn(w.member(cluster.clone(), topic.to_owned(), m));
        }
        for id in 0..producers {
            w.producers.spawn(w.produce(cluster.clone(), topic.to_owned(), id, rate));
        }
        for _ in 0..consumers {
            for p in 0..partitions {
                w.consumers.spawn(w.consume(cluster.clone(), topic.to_owned(), p));
            }
        }
        w
    }

    fn produce(&self, cluster: Arc<Cluster>, topic: String, id: u32, rate: u32) -> impl Future<Output = ()> + use<> {
        let (stop, operations, failed, records) =
            (self.stop.clone(), self.operations.clone(), self.failed.clone(), self.records.clone());
        async move {
            let producer = Producer::new(cluster, ProducerConfig::default(), Partitioner::KeyHash);
            let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut deliveries = JoinSet::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let record = ProducerRecord {
                    topic: topic.clone(),
                    key: Some(Bytes::from(format!("p{id}-k{}", seq % 64))),
                    value: Bytes::from(format!("p{id}-{seq}")),
                    ..Default::default()
                };
                operations.fetch_add(1, Ordering::Relaxed);
                match producer.send(record).await {
                    Ok(delivery) => {
                        let (failed, records) = (failed.clone(), records.clone());
                        deliveries.spawn(async move {
                            match delivery.wait().await {
                                Ok(meta) => {
                                    let now = Instant::now();
                                    let mut r = records.lock().unwrap();
                                    let offset = meta.offset.expect("acks=all returns an offset");
                                    r.acks.push(Ack { producer: id, seq, partition: meta.partition, offset });
                                    r.ack_times.entry(meta.partition).or_default().push(now);
                                }
                                Err(_) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                seq += 1;
            }
            while let Some(done) = deliveries.join_next().await {
                done.expect("a delivery task failed");
            }
            producer.close().await;
        }
    }

    /// Follows one partition from the beginning, resubscribing after an
    /// error at the next offset not yet delivered.
    fn consume(&self, cluster: Arc<Cluster>, topic: String, partition: u32) -> impl Future<Output = ()> + use<> {
        let (stop, records) = (self.stop.clone(), self.records.clone());
        async move {
            let mut next = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let config = ConsumerConfig {
                    partitions: Some(vec![partition]),
                    start: StartAt::Offset(next),
                    ..Default::default()
                };
                if let Ok(mut consumer) = Consumer::subscribe(cluster.clone(), &topic, config).await {
                    while !stop.load(Ordering::Relaxed) {
                        match tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
                            Ok(Some(Ok(r))) => {
                                let value = String::from_utf8_lossy(&r.value).into_owned();
                                records.lock().unwrap().observed.entry(partition).or_default().push((r.offset, value));
                                next = r.offset + 1;
                            }
                            Ok(Some(Err(_))) | Ok(None) => break,
                            Err(_) => {}
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// A group member that consumes for 5-15 s, then leaves (cleanly on
    /// even rounds, as a crash on odd ones) and joins again.
    fn member(&self, cluster: Arc<Cluster>, topic: String, id: u32) -> impl Future<Output = ()> + use<> {
        let (stop, records) = (self.stop_group.clone(), self.records.clone());
        async move {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let config = ConsumerConfig {
                    start: StartAt::Beginning,
                    group: Some(GROUP.into()),
                    auto_commit: Some(Duration::from_millis(500)),
                    membership: Some(GroupOptions {
                        session_timeout: Duration::from_secs(3),
                        client_id: format!("chaos-{id}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let mut consumer = Consumer::subscribe(cluster.clone(), &topic, config).await.expect("subscribe");
                let lifetime = Duration::from_secs(5 + (u64::from(id) * 7 + round * 3) % 11);
                let until = Instant::now() + lifetime;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    if let Ok(Some(Ok(r))) = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await {
                        records.lock().unwrap().group_seen.insert(String::from_utf8_lossy(&r.value).into_owned());
                    }
                }
                if round.is_multiple_of(2) || stop.load(Ordering::Relaxed) {
                    let _ = consumer.close().await;
                } else {
                    drop(consumer); // a crash: its partitions move after the session timeout
                }
                round += 1;
            }
        }
    }

    /// Stops sending, waits for every outstanding acknowledgement and for
    /// the group to have received every acknowledged message, these
    /// `others` (of producers outside the workload) included (up to a
    /// deadline), stops the consumers and returns what was recorded.
    pub async fn finish(mut self, others: Vec<Ack>) -> History {
        self.stop.store(true, Ordering::Relaxed);
        self.records.lock().unwrap().acks.extend(others);
        let stopped = Instant::now();
        // A panic in a task (a broken expectation) fails the run.
        while let Some(done) = self.producers.join_next().await {
            done.expect("a producer task failed");
        }
        while let Some(done) = self.consumers.join_next().await {
            done.expect("a consumer task failed");
        }
        if !self.members.is_empty() {
            let deadline = Instant::now() + Duration::from_secs(90);
            while Instant::now() < deadline {
                let caught_up = {
                    let r = self.records.lock().unwrap();
                    r.acks.iter().all(|a| r.group_seen.contains(&format!("p{}-{}", a.producer, a.seq)))
                };
                if caught_up {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            self.stop_group.store(true, Ordering::Relaxed);
            while let Some(done) = self.members.join_next().await {
                done.expect("a group member task failed");
            }
        }
        let grouped = self.members_started;
        let mut records = std::mem::take(&mut *self.records.lock().unwrap());
        let unavailable = records
            .ack_times
            .iter_mut()
            .map(|(p, times)| {
                times.sort();
                let mut longest = times.first().map_or(Duration::ZERO, |t| *t - self.started);
                for pair in times.windows(2) {
                    longest = longest.max(pair[1] - pair[0]);
                }
                (*p, longest.max(stopped.saturating_duration_since(*times.last().unwrap_or(&stopped))))
            })
            .collect();
        History {
            operations: self.operations.load(Ordering::Relaxed),
            acks: records.acks,
            failed: self.failed.load(Ordering::Relaxed),
            observed: records.observed,
            unavailable,
            idempotent: ProducerConfig::default().idempotent,
            group_seen: grouped.then_some(records.group_seen),
            ..Default::default()
        }
    }
}

/// Reads partition `partition` from offset 0 to its high watermark, once
/// that is at least `at_least`.
pub async fn read_partition(cluster: &Arc<Cluster>, topic: &str, partition: u32, at_least: u64) -> Vec<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let offsets = loop {
        let offsets = cluster.list_offsets(topic, partition, None).await.expect("list offsets");
        if offsets.high_watermark >= at_least {
            break offsets;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition}: high watermark {} never reached {at_least}",
            offsets.high_watermark
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let config = ConsumerConfig { partitions: Some(vec![partition]), start: StartAt::Beginning, ..Default::default() };
    let mut consumer = Consumer::subscribe(cluster.clone(), topic, config).await.expect("subscribe");
    let mut out = Vec::new();
    let mut next = offsets.log_start_offset;
    while next < offsets.high_watermark {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(Some(Ok(r))) => {
                next = r.offset + 1;
                out.push((r.offset, String::from_utf8_lossy(&r.value).into_owned()));
            }
            other => panic!("reading {topic}/{partition} stopped at {next} of {}: {other:?}", offsets.high_watermark),
        }
    }
    out
}
