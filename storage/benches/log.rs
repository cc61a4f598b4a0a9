//! Criterion benchmarks of the partition log: appends by record size, batch
//! size, flush policy and number of concurrent appenders; sequential reads
//! from sealed, mmap'd fragments.
//!
//! `make bench-storage`; figures go to docs/benchmarks.md.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use goulette_storage::{Batch, BatchBuilder, Compression, FlushPolicy, LogConfig, PartitionLog, Record};
use rand::RngCore;

/// A batch of `count` records of `size` random (incompressible) bytes.
fn make_batch(size: usize, count: usize) -> Batch {
    let mut rng = rand::rng();
    let mut b = BatchBuilder::new(Compression::None);
    for _ in 0..count {
        let mut value = vec![0u8; size];
        rng.fill_bytes(&mut value);
        b.push(&Record { timestamp: 1_700_000_000_000, value: Bytes::from(value), ..Record::default() });
    }
    Batch::parse(b.build().unwrap()).unwrap()
}

fn config(flush: FlushPolicy) -> LogConfig {
    LogConfig { flush, retention_age: None, ..LogConfig::default() }
}

/// Appends `iters` batches from `appenders` threads into a fresh log and
/// returns the wall time. A fresh directory per sample keeps disk use bounded.
fn timed_appends(batch: &Batch, flush: FlushPolicy, appenders: u64, iters: u64) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(PartitionLog::open(dir.path(), config(flush)).unwrap());
    let per_thread = iters.div_ceil(appenders);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..appenders {
            let log = log.clone();
            s.spawn(move || {
                for _ in 0..per_thread {
                    log.append(batch, 0).unwrap();
                }
            });
        }
    });
    let elapsed = start.elapsed();
    // Scale back to `iters` batches when threads rounded up.
    elapsed.mul_f64(iters as f64 / (per_thread * appenders) as f64)
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    for (size, size_name) in [(1024, "1KiB"), (100, "100B")] {
        for count in [1usize, 100, 1000] {
            let batch = make_batch(size, count);
            group.throughput(Throughput::Bytes(batch.len() as u64));
            group.bench_function(
                BenchmarkId::new(format!("flush=never/record={size_name}/batch={count}"), "appenders=1"),
                |b| b.iter_custom(|iters| timed_appends(&batch, FlushPolicy::Never, 1, iters)),
            );
            for appenders in [1u64, 4, 16] {
                group.bench_function(
                    BenchmarkId::new(
                        format!("flush=always/record={size_name}/batch={count}"),
                        format!("appenders={appenders}"),
                    ),
                    |b| b.iter_custom(|iters| timed_appends(&batch, FlushPolicy::Always, appenders, iters)),
                );
            }
        }
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        dir.path(),
        LogConfig { fragment_bytes: 64 << 20, flush: FlushPolicy::Never, retention_age: None, ..LogConfig::default() },
    )
    .unwrap();
    let batch = make_batch(1024, 100);
    while log.size_bytes() < 512 << 20 {
        log.append(&batch, 0).unwrap();
    }
    // Seal what is in the WAL too, so every read below comes from fragments.
    log.maintain(goulette_storage::now_ms() + 2 * 24 * 3600 * 1000, Duration::from_secs(3600)).unwrap();
    let end = log.log_end_offset();
    let total = log.size_bytes();

    let mut group = c.benchmark_group("read");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Bytes(total));
    let scan = |verify: bool| {
        let mut offset = 0;
        let mut bytes = 0usize;
        while offset < end {
            for b in log.read(offset, 1 << 20).unwrap() {
                bytes += b.len();
                let next = if verify {
                    Batch::parse(b).unwrap().next_offset()
                } else {
                    // Header fields only: the payload is handed on untouched.
                    goulette_storage::batch::peek_next_offset(&b).unwrap()
                };
                offset = next;
            }
        }
        bytes
    };
    group.bench_function("fragments/sequential/zero-copy", |b| b.iter(|| scan(false)));
    group.bench_function("fragments/sequential/crc-verified", |b| b.iter(|| scan(true)));
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
