//! `goulette bench`: a load generator in the spirit of
//! `kafka-producer-perf-test`, `nats bench` and `iggy-bench`.
//!
//! - `produce`: producers (each with its own connections) send random,
//!   incompressible payloads; the latency of a message runs from its
//!   intended send time to its acknowledgement.
//! - `consume`: consumers read the topic's existing backlog from the start
//!   up to the high watermarks found when the run begins (a catch-up read).
//! - `e2e`: consumers follow the topic's end while producers send; the
//!   latency of a message runs from its intended send time (stamped in the
//!   payload) to its delivery to a consumer.
//!
//! Latency is per message and comes from an HDR histogram (microsecond
//! precision, 3 significant digits). With `--rate` the run is open-loop: each
//! message has an intended send time on a fixed schedule and its latency is
//! measured from that time, so a stall counts against every message it
//! delays (no coordinated omission). Without it, producers send as fast as
//! their window allows and the latency is from the `send` call; at most
//! `window × (batch size / message size) × partitions` messages are
//! outstanding per producer, so a closed-loop latency is a message's time
//! through the system, not its time queued behind earlier ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use goulette_client::Compression;
use goulette_proto::v1::{self as pb, Acks};
use hdrhistogram::Histogram;
use rand::RngCore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use goulette_client::admin::Admin;
use goulette_client::cluster::Cluster;
use goulette_client::consumer::{Consumer, ConsumerConfig, StartAt};
use goulette_client::error::ClientError;
use goulette_client::partitioner::Partitioner;
use goulette_client::producer::{Producer, ProducerConfig, ProducerRecord};

/// What a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Produce,
    Consume,
    E2e,
}

/// A run's settings.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub mode: Mode,
    pub topic: String,
    /// Partitions of the topic when the run creates it.
    pub partitions: u32,
    pub replication_factor: u32,
    pub producers: u32,
    pub consumers: u32,
    pub message_size: usize,
    pub batch_bytes: usize,
    pub linger: Duration,
    /// Batches in flight per partition.
    pub window: usize,
    pub acks: Acks,
    pub compression: Compression,
    pub idempotent: bool,
    /// Messages to send (produce, e2e) or read at most (consume).
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    /// Messages per second over all producers (open loop).
    pub rate: Option<u64>,
    /// Print progress to stderr every second.
    pub progress: bool,
    /// Delete the topic after the run if the run created it.
    pub delete_topic: bool,
    /// Messages are keyed over this many keys in turn; 0: keyless.
    pub keys: u64,
    /// The topic's cleanup policy when the run creates it.
    pub cleanup_policy: pb::CleanupPolicy,
    /// Every message delayed this long (`docs/delayed.md`).
    pub delay: Option<Duration>,
    /// Consume: every consumer reads every partition (as consumers in
    /// different groups do) instead of a share of them.
    pub fanout: bool,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// What a run measured (`--json` writes it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub mode: Mode,
    pub topic: String,
    pub messages: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub messages_per_sec: f64,
    pub mb_per_sec: f64,
    /// Per message (see `latency_of`); null when not measured (consume).
    pub latency_us: Option<Percentiles>,
    /// What one latency sample is.
    pub latency_of: String,
    /// Sends or reads that failed.
    pub errors: u64,
    pub settings: serde_json::Value,
}

/// The size of the send-time stamp at the start of an e2e payload.
const STAMP: usize = 8;
/// Random payloads rotated through (one allocation per run, not per message).
const PAYLOADS: usize = 64;

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 1 h, 3 significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).expect("3 digits is valid"))
}

/// Counters shared by the tasks of a run, for progress and the result.
#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// Runs a benchmark against `sentinels` (each producer and consumer gets a
/// client of its own, so its own connections).
pub async fn run(sentinels: &[String], options: &BenchOptions) -> anyhow::Result<BenchResult> {
    anyhow::ensure!(options.message_size >= STAMP || options.mode != Mode::E2e, "e2e needs --message-size >= {STAMP}");
    anyhow::ensure!(options.count.is_some() || options.duration.is_some(), "give --count or --duration");
    let admin = Admin::new(Arc::new(Cluster::new(sentinels.to_vec())?));
    let created = ensure_topic(&admin, options).await?;
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let progress = options.progress.then(|| tokio::spawn(report_progress(options.mode, counters.clone())));
    let started = Instant::now();
    let histogram = match options.mode {
        Mode::Produce => produce_all(sentinels, options, &counters, &stop, None).await?,
        Mode::Consume => {
            consume_backlog(sentinels, options, &counters).await?;
            histogram()
        }
        Mode::E2e => e2e(sentinels, options, &counters, &stop).await?,
    };
    let seconds = started.elapsed().as_secs_f64();
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    let messages = counters.messages.load(Ordering::Relaxed);
    let bytes = counters.bytes.load(Ordering::Relaxed);
    if options.delete_topic && created {
        admin.delete_topic(&options.topic).await?;
    }
    Ok(BenchResult {
        mode: options.mode,
        topic: options.topic.clone(),
        messages,
        bytes,
        seconds,
        messages_per_sec: messages as f64 / seconds,
        mb_per_sec: bytes as f64 / seconds / 1e6,
        latency_us: (options.mode != Mode::Consume).then(|| percentiles(&histogram)),
        latency_of: match options.mode {
            Mode::Produce => "message: intended send time to acknowledgement",
            Mode::Consume => "not measured (catch-up read)",
            Mode::E2e => "message: intended send time to delivery to a consumer",
        }
        .into(),
        errors: counters.errors.load(Ordering::Relaxed),
        settings: serde_json::json!({
            "partitions": options.partitions,
            "replication_factor": options.replication_factor,
            "producers": options.producers,
            "consumers": options.consumers,
            "message_size": options.message_size,
            "batch_bytes": options.batch_bytes,
            "linger_ms": options.linger.as_millis() as u64,
            "window": options.window,
            "acks": format!("{:?}", options.acks).to_lowercase(),
            "compression": format!("{:?}", options.compression).to_lowercase(),
            "idempotent": options.idempotent,
            "rate": options.rate,
            "fanout": options.fanout,
        }),
    })
}

/// Creates the topic unless it exists (produce and e2e only need it to
/// exist); true when this run created it.
async fn ensure_topic(admin: &Admin, options: &BenchOptions) -> anyhow::Result<bool> {
    let config = pb::TopicConfig {
        name: options.topic.clone(),
        partitions: options.partitions,
        replication_factor: options.replication_factor,
        cleanup_policy: options.cleanup_policy as i32,
        ..Default::default()
    };
    match admin.create_topic(config).await {
        Ok(_) => Ok(true),
        Err(ClientError::Server { code: pb::ErrorCode::TopicExists, .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn report_progress(mode: Mode, counters: Arc<Counters>) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        let now = counters.messages.load(Ordering::Relaxed);
        let mb = counters.bytes.load(Ordering::Relaxed) as f64 / 1e6;
        eprint!(
            "\r{mode:?}: {:>5.1} s  {now:>12} messages  {:>10.0} msg/s now  {mb:>10.1} MB",
            started.elapsed().as_secs_f64(),
            (now - last) as f64
        );
        last = now;
    }
}

/// Random payloads of the run's size (incompressible).
fn payloads(size: usize) -> Vec<Bytes> {
    let mut rng = rand::rng();
    (0..PAYLOADS)
        .map(|_| {
            let mut b = vec![0u8; size];
            rng.fill_bytes(&mut b);
            Bytes::from(b)
        })
        .collect()
}

/// Runs the producers; with `clock`, stamps each payload with its intended
/// send time (µs since `clock`) for e2e. Returns the per-message latency
/// histogram from intended send time to acknowledgement.
async fn produce_all(
    sentinels: &[String],
    options: &BenchOptions,
    counters: &Arc<Counters>,
    stop: &Arc<AtomicBool>,
    clock: Option<Instant>,
) -> anyhow::Result<Histogram<u64>> {
    let mut tasks = JoinSet::new();
    let producers = options.producers.max(1);
    for i in 0..producers {
        let cluster = Arc::new(Cluster::new(sentinels.to_vec())?);
        let count =
            options.count.map(|c| c / u64::from(producers) + u64::from(u64::from(i) < c % u64::from(producers)));
        let rate = options.rate.map(|r| (r as f64 / f64::from(producers)).max(1.0));
        let run = produce_one(cluster, options.clone(), count, rate, counters.clone(), stop.clone(), clock);
        if rate.is_some() {
            // Paced on a thread of its own: tokio's timer rounds every sleep
            // up to the next millisecond, which would send a burst per
            // millisecond and add up to 1 ms to every measured latency.
            let handle = tokio::runtime::Handle::current();
            tasks.spawn_blocking(move || handle.block_on(run));
        } else {
            tasks.spawn(run);
        }
    }
    if let Some(d) = options.duration {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.store(true, Ordering::Relaxed);
        });
    }
    let mut all = histogram();
    while let Some(done) = tasks.join_next().await {
        all.add(done??).map_err(|e| anyhow::anyhow!("merging histograms: {e}"))?;
    }
    Ok(all)
}

async fn produce_one(
    cluster: Arc<Cluster>,
    options: BenchOptions,
    count: Option<u64>,
    rate: Option<f64>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    clock: Option<Instant>,
) -> anyhow::Result<Histogram<u64>> {
    let config = ProducerConfig {
        acks: options.acks,
        window: options.window,
        batch_bytes: options.batch_bytes,
        linger: options.linger,
        compression: options.compression,
        idempotent: options.idempotent,
        ..ProducerConfig::default()
    };
    let partitions = cluster.topic(&options.topic, false).await?.partitions.len().max(1);
    let producer = Producer::new(cluster, config, Partitioner::RoundRobin);
    let payloads = payloads(options.message_size);
    // At most what the windows hold is outstanding (sent, not acknowledged):
    // a closed-loop run then measures the time a message takes, not how long
    // it queued behind everything sent before it.
    let per_batch = (options.batch_bytes / options.message_size.max(1)).max(1);
    let outstanding =
        Arc::new(tokio::sync::Semaphore::new((options.window.max(1) * per_batch * partitions).min(1 << 20)));
    // Acknowledgements are awaited by a task of their own, in send order:
    // one that arrives before an earlier message's (another partition) is
    // counted when that earlier one is, which can only overstate latency.
    type Outstanding = (Instant, goulette_client::producer::Delivery, tokio::sync::OwnedSemaphorePermit);
    let (acks_tx, mut acks_rx) = tokio::sync::mpsc::channel::<Outstanding>(1 << 16);
    let size = options.message_size as u64;
    let waiter = {
        let counters = counters.clone();
        tokio::spawn(async move {
            let mut h = histogram();
            while let Some((intended, delivery, permit)) = acks_rx.recv().await {
                let outcome = delivery.wait().await;
                drop(permit);
                match outcome {
                    Ok(_) => {
                        let _ = h.record((intended.elapsed().as_micros() as u64).max(1));
                        counters.messages.fetch_add(1, Ordering::Relaxed);
                        counters.bytes.fetch_add(size, Ordering::Relaxed);
                    }
                    Err(_) => {
                        counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            h
        })
    };
    let started = Instant::now();
    let mut sent = 0u64;
    while count.is_none_or(|c| sent < c) && !stop.load(Ordering::Relaxed) {
        let intended = match rate {
            Some(r) => {
                let at = started + Duration::from_secs_f64(sent as f64 / r);
                let now = Instant::now();
                if at > now {
                    // On the pacing thread (`produce_all`): microsecond sleeps.
                    std::thread::sleep(at - now);
                }
                at
            }
            None => Instant::now(),
        };
        let value = match clock {
            Some(clock) => {
                let mut v = BytesMut::from(&payloads[(sent as usize) % PAYLOADS][..]);
                v[..STAMP]
                    .copy_from_slice(&(intended - clock).as_micros().min(u64::MAX as u128).to_le_bytes()[..STAMP]);
                v.freeze()
            }
            None => payloads[(sent as usize) % PAYLOADS].clone(),
        };
        let key = (options.keys > 0).then(|| Bytes::from(format!("k{}", sent % options.keys)));
        let mut record = ProducerRecord { topic: options.topic.clone(), key, value, ..Default::default() };
        if let Some(delay) = options.delay {
            record = record.delay(delay);
        }
        let Ok(permit) = outstanding.clone().acquire_owned().await else { break };
        match producer.send(record).await {
            Ok(delivery) => {
                if acks_tx.send((intended, delivery, permit)).await.is_err() {
                    break;
                }
            }
            Err(_) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        sent += 1;
    }
    drop(acks_tx);
    producer.close().await;
    Ok(waiter.await?)
}

/// The partitions of the topic split among `consumers`.
fn split(partitions: u32, consumers: u32) -> Vec<Vec<u32>> {
    let consumers = consumers.clamp(1, partitions.max(1));
    (0..consumers).map(|c| (0..partitions).filter(|p| p % consumers == c).collect()).collect()
}

/// Reads every partition from its start to the high watermark it had when
/// the run began (or `count` messages, or until `duration`): the partitions
/// split among the consumers, or with `fanout` all of them read by each.
async fn consume_backlog(sentinels: &[String], options: &BenchOptions, counters: &Arc<Counters>) -> anyhow::Result<()> {
    let cluster = Arc::new(Cluster::new(sentinels.to_vec())?);
    let info = cluster.topic(&options.topic, false).await?;
    let mut ends = BTreeMap::new();
    for p in &info.partitions {
        let o = cluster.list_offsets(&options.topic, p.partition, None).await?;
        ends.insert(p.partition, (o.log_start_offset, o.high_watermark));
    }
    let backlog: u64 = ends.values().map(|(s, e)| e - s).sum();
    anyhow::ensure!(backlog > 0, "topic {} is empty: produce a backlog first (bench produce)", options.topic);
    let deadline = options.duration.map(|d| Instant::now() + d);
    let limit = options.count.unwrap_or(u64::MAX).min(backlog);
    let partitions = info.partitions.len() as u32;
    let shares = if options.fanout {
        (0..options.consumers.max(1)).map(|_| (0..partitions).collect()).collect()
    } else {
        split(partitions, options.consumers)
    };
    let mut tasks = JoinSet::new();
    for share in shares {
        let cluster = Arc::new(Cluster::new(sentinels.to_vec())?);
        let targets: BTreeMap<u32, u64> = share.iter().map(|p| (*p, ends[p].1)).collect();
        let (topic, counters) = (options.topic.clone(), counters.clone());
        // Split, the consumers share `limit`; fanned out, each reads that many.
        let fanout = options.fanout;
        tasks.spawn(async move {
            let config = ConsumerConfig {
                partitions: Some(targets.keys().copied().collect()),
                start: StartAt::Beginning,
                window_bytes: 32 << 20,
                max_bytes: 4 << 20,
                ..ConsumerConfig::default()
            };
            let mut consumer = Consumer::subscribe(cluster, &topic, config).await?;
            let mut open: BTreeMap<u32, u64> = targets.into_iter().filter(|(_, end)| *end > 0).collect();
            let mut mine = 0u64;
            let read = |mine: u64| if fanout { mine } else { counters.messages.load(Ordering::Relaxed) };
            while !open.is_empty() && read(mine) < limit && deadline.is_none_or(|d| Instant::now() < d) {
                let Some(next) = consumer.recv().await else { break };
                let r = next?;
                mine += 1;
                counters.messages.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(r.value.len() as u64, Ordering::Relaxed);
                if open.get(&r.partition).is_some_and(|end| r.offset + 1 >= *end) {
                    open.remove(&r.partition);
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Consumers follow the end of the topic while producers send stamped
/// messages; returns the publish-to-delivery latency histogram.
async fn e2e(
    sentinels: &[String],
    options: &BenchOptions,
    counters: &Arc<Counters>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Histogram<u64>> {
    let clock = Instant::now();
    let cluster = Arc::new(Cluster::new(sentinels.to_vec())?);
    let partitions = cluster.topic(&options.topic, false).await?.partitions.len() as u32;
    // Where each partition ends now: only what this run sends is measured.
    let mut starts = BTreeMap::new();
    for p in 0..partitions {
        starts.insert(p, cluster.list_offsets(&options.topic, p, None).await?.high_watermark);
    }
    // Producer-side counters are kept apart: the result counts deliveries.
    let sent = Arc::new(Counters::default());
    let expected = Arc::new(AtomicU64::new(u64::MAX));
    let mut consumers = JoinSet::new();
    for group in split(partitions, options.consumers) {
        let cluster = Arc::new(Cluster::new(sentinels.to_vec())?);
        let (topic, counters, stop, expected) =
            (options.topic.clone(), counters.clone(), stop.clone(), expected.clone());
        let starts: Vec<(u32, u64)> = group.iter().map(|p| (*p, starts[p])).collect();
        consumers.spawn(async move {
            let mut h = histogram();
            let mut readers = Vec::new();
            for (p, start) in starts {
                let config = ConsumerConfig {
                    partitions: Some(vec![p]),
                    start: StartAt::Offset(start),
                    ..ConsumerConfig::default()
                };
                readers.push(Consumer::subscribe(cluster.clone(), &topic, config).await?);
            }
            let mut merged = merge(readers);
            loop {
                let done = counters.messages.load(Ordering::Relaxed) >= expected.load(Ordering::Relaxed);
                if done || (stop.load(Ordering::Relaxed) && expected.load(Ordering::Relaxed) == u64::MAX) {
                    break;
                }
                let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(200), merged.recv()).await else {
                    continue;
                };
                let r = r?;
                let mut stamp = [0u8; STAMP];
                stamp.copy_from_slice(&r.value[..STAMP]);
                let intended = clock + Duration::from_micros(u64::from_le_bytes(stamp));
                let _ = h.record((intended.elapsed().as_micros() as u64).max(1));
                counters.messages.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(r.value.len() as u64, Ordering::Relaxed);
            }
            anyhow::Ok(h)
        });
    }
    // Give the consumers' fetch streams a moment to open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let produced = produce_all(sentinels, options, &sent, stop, Some(clock)).await;
    // Everything acknowledged must be delivered; then the consumers stop.
    expected.store(sent.messages.load(Ordering::Relaxed), Ordering::Relaxed);
    let drain = tokio::time::timeout(Duration::from_secs(30), async {
        let mut all = histogram();
        while let Some(done) = consumers.join_next().await {
            all.add(done??).map_err(|e| anyhow::anyhow!("merging histograms: {e}"))?;
        }
        anyhow::Ok(all)
    })
    .await;
    produced?;
    counters.errors.fetch_add(sent.errors.load(Ordering::Relaxed), Ordering::Relaxed);
    drain.map_err(|_| anyhow::anyhow!("consumers did not receive every acknowledged message within 30 s"))?
}

/// One receiver over several single-partition consumers.
fn merge(
    readers: Vec<Consumer>,
) -> tokio::sync::mpsc::Receiver<goulette_client::error::Result<goulette_client::consumer::ConsumedRecord>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    for mut reader in readers {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(r) = reader.recv().await {
                if tx.send(r).await.is_err() {
                    return;
                }
            }
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_split_evenly_among_consumers() {
        assert_eq!(split(4, 2), vec![vec![0, 2], vec![1, 3]]);
        assert_eq!(split(2, 5), vec![vec![0], vec![1]], "no consumer without a partition");
        assert_eq!(split(3, 1), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = histogram();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let p = percentiles(&h);
        assert!((495..=505).contains(&p.p50), "{p:?}");
        assert!((985..=995).contains(&p.p99), "{p:?}");
        assert_eq!(p.max, 1000);
        assert_eq!(percentiles(&histogram()), Percentiles::default());
    }
}
