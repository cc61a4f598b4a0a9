//! `goulette bench` against a real cluster: the quick check (in `make
//! test`) that each mode runs, counts what it sent or read and writes its
//! JSON, and the fixed suite `make bench` runs on release builds, whose
//! results are appended to `docs/benchmarks.md`.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "bench/features.rs"]
mod features;
#[path = "bench/kafka.rs"]
mod kafka;
#[path = "bench/scale.rs"]
mod scale;
#[path = "bench/table.rs"]
mod table;
#[path = "bench/tls.rs"]
mod tls;

use std::path::Path;
use std::process::Command;

use common::Env;
use table::{MIB, bench, case, f, row, run_cases, us};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_each_mode_bench_should_count_what_it_moved_and_write_its_json() {
    let env = Env::start(1, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let produced = bench(&env, &["produce", "--topic", "b", "--partitions", "2", "--count", "3000"], dir.path(), "p");
    assert_eq!(produced["messages"], 3000);
    assert_eq!(produced["bytes"], 3000 * 1024);
    assert!(produced["messages_per_sec"].as_f64().unwrap() > 0.0);
    let latency = &produced["latency_us"];
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(latency[p].as_u64().unwrap() > 0, "{p}: {latency}");
    }
    assert!(latency["p50"].as_u64() <= latency["p99"].as_u64() && latency["p99"].as_u64() <= latency["max"].as_u64());

    // `--json -`: stdout is the JSON alone (the summary goes to stderr).
    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["bench", "produce", "--topic", "j", "--count", "100", "--quiet", "--json", "-"])
        .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let to_stdout: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(to_stdout["messages"], 100);
    // The summary names the workload and gives latencies in ms; stderr is
    // not a terminal here, so it carries no progress line even without --quiet.
    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["bench", "produce", "--topic", "once", "--count", "100", "--delete-topic"])
        .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        summary.starts_with("bench produce: topic once (1 partition, RF 1), 1 producer, 1 consumer, 1024 B messages"),
        "{summary}"
    );
    assert!(summary.contains(" ms, p90 ") && summary.contains("closed loop"), "{summary}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("msg/s now"), "a progress line off a terminal");
    // --delete-topic deleted the topic the run created (and only that one).
    let listed = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["topic", "list"])
        .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.lines().any(|l| l.split_whitespace().next() == Some("once")), "{listed}");
    assert!(listed.lines().any(|l| l.split_whitespace().next() == Some("j")), "{listed}");

    // acks=0 waits for nothing, and the producer still closes.
    let fire =
        bench(&env, &["produce", "--topic", "z", "--acks", "0", "--count", "500", "--threads", "1"], dir.path(), "z");
    assert_eq!(fire["messages"], 500);

    // A catch-up read of what is there.
    let consumed = bench(&env, &["consume", "--topic", "b", "--consumers", "2", "--count", "100000"], dir.path(), "c");
    assert_eq!(consumed["messages"], 3000);
    assert!(consumed["latency_us"].is_null(), "not measured is null, not zeros: {consumed}");
    assert!(consumed["mb_per_sec"].as_f64().unwrap() > 0.0);
    // Fanned out, each consumer reads the whole backlog (at most --count of it).
    let fanned = bench(
        &env,
        &["consume", "--topic", "b", "--consumers", "3", "--fanout", "--count", "100000"],
        dir.path(),
        "fan",
    );
    assert_eq!(fanned["messages"], 3 * 3000);
    let capped =
        bench(&env, &["consume", "--topic", "b", "--consumers", "2", "--fanout", "--count", "1000"], dir.path(), "cap");
    assert_eq!(capped["messages"], 2 * 1000);

    // Open loop, publish to delivery.
    let e2e = bench(
        &env,
        &["e2e", "--topic", "b", "--count", "500", "--rate", "1000", "--message-size", "64"],
        dir.path(),
        "e",
    );
    assert_eq!(e2e["messages"], 500);
    assert!(e2e["latency_us"]["p50"].as_u64().unwrap() > 0);
    assert!(e2e["seconds"].as_f64().unwrap() >= 0.45, "the rate paces the run: {e2e}");
}

/// `make bench-delayed`: the delayed-delivery row of `make bench` alone,
/// printed (about a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with `make bench-delayed`"]
async fn bench_delayed() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(1, &[]).await;
    for row in features::delayed_rows(&env, dir.path()) {
        println!("{row}");
    }
}

/// `make bench-partitions`: the partition-scale rows of `make bench` alone
/// (10,000 partitions, RF=3, on 3 brokers), printed (about a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with `make bench-partitions`"]
async fn bench_partitions() {
    let env = Env::start_with(3, &["--max-txn-ops", "4096"], &[]).await;
    for row in scale::many_partitions(&env, 10_000).await {
        println!("{row}");
    }
}

/// `make bench`: the fixed suite of issue 6 on release builds, appended to
/// `docs/benchmarks.md` with the commit and the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with `make bench`"]
async fn bench_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    // One broker, flush=always (group commit).
    let durable = vec![
        case(
            "1 KiB, 1 producer, durable, 30 s sustained",
            "≥ 450k msg/s",
            &["produce", "--topic", "kib", "--message-size", "1024", "--duration", "30s"],
            |r| f(r, "messages_per_sec") >= 450_000.0,
        ),
        case(
            "100 B, 1 producer, durable",
            "≥ 1M msg/s",
            &["produce", "--topic", "small", "--message-size", "100", "--duration", "10s"],
            |r| f(r, "messages_per_sec") >= 1_000_000.0,
        ),
        case(
            "catch-up read of the 1 KiB backlog",
            "≥ 800 MB/s (of 2 GB)",
            &["consume", "--topic", "kib", "--count", "2000000"],
            |r| f(r, "mb_per_sec") >= 800.0,
        ),
        case(
            "10 consumers of the 1 KiB backlog at once, each reading 2 GB of it",
            "≥ 1.5 GB/s together",
            &["consume", "--topic", "kib", "--consumers", "10", "--fanout", "--count", "2000000"],
            |r| f(r, "mb_per_sec") >= 1500.0,
        ),
        case(
            "1 KiB open loop 20k msg/s, e2e, durable",
            "p99 ≤ 2 ms, p99.9 ≤ 5 ms",
            &["e2e", "--topic", "lat", "--rate", "20000", "--linger", "0ms", "--duration", "10s"],
            |r| us(r, "p99") <= 2000 && us(r, "p999") <= 5000,
        ),
    ];
    {
        let env = Env::start(1, &[]).await;
        let mut durable = durable.into_iter();
        // The first case alone, so that the broker's peak RSS is that run's.
        rows.extend(run_cases(&env, durable.by_ref().take(1).collect(), dir.path(), "durable"));
        let peak = env.brokers[0].memory("VmHWM").unwrap_or(0) as f64 / MIB;
        rows.push(row(
            "broker peak RSS during the 1 KiB durable run",
            "`VmHWM` of the broker",
            format!("{peak:.0} MiB"),
            "≤ 256 MiB",
            peak <= 256.0,
        ));
        rows.extend(run_cases(&env, durable.collect(), dir.path(), "durable-rest"));
        rows.push(scale::wide_producers(&env, dir.path()));
        rows.extend(features::compacted_rows(&env, dir.path()));
        rows.extend(features::delayed_rows(&env, dir.path()));
        rows.extend(kafka::kafka_rows(&env, dir.path()));
    }
    // One broker, flush=never.
    let memory = vec![
        case(
            "1 KiB open loop 20k msg/s, e2e, flush=never",
            "p99 ≤ 1 ms, p99.9 ≤ 3 ms",
            &["e2e", "--topic", "lat", "--rate", "20000", "--linger", "0ms", "--duration", "10s"],
            |r| us(r, "p99") <= 1000 && us(r, "p999") <= 3000,
        ),
        case(
            "one message in flight, flush=never",
            "≥ 10k round trips/s",
            &[
                "produce",
                "--topic",
                "rtt",
                "--window",
                "1",
                "--linger",
                "0ms",
                "--batch-size",
                "1",
                "--message-size",
                "100",
                "--threads",
                "1",
                "--duration",
                "10s",
            ],
            |r| f(r, "messages_per_sec") >= 10_000.0,
        ),
    ];
    rows.extend(run_cases(&Env::start(1, &["--flush", "never"]).await, memory, dir.path(), "memory"));
    // Three brokers, RF=3, acks=all.
    let replicated = vec![case(
        "RF=3, acks=all, 1 KiB, 3 partitions",
        "≥ 200 MB/s, p99 ≤ 50 ms",
        &["produce", "--topic", "rf3", "--partitions", "3", "--replication-factor", "3", "--duration", "15s"],
        |r| f(r, "mb_per_sec") >= 200.0 && us(r, "p99") <= 50_000,
    )];
    {
        // One transaction writes a topic of 1,000 partitions (see --max-txn-ops).
        let env = Env::start_with(3, &["--max-txn-ops", "4096"], &[]).await;
        rows.extend(run_cases(&env, replicated, dir.path(), "replicated"));
        rows.extend(scale::many_partitions(&env, 10_000).await);
    }
    rows.push(tls::tls_row());

    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map_or_else(|_| "unknown".into(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    let commit = if dirty { format!("{commit} + uncommitted changes") } else { commit };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map_or_else(|_| String::new(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut section = format!(
        "\n### `make bench` at {commit}, {date}, {cpus} CPUs ({cpu}), release build, loopback\n\n\
         | Benchmark | Command (`goulette bench …`) | msg/s | MB/s | latency µs p50 / p99 / p99.9 / max | Target | Met |\n\
         |---|---|---|---|---|---|---|\n"
    );
    for row in &rows {
        section.push_str(row);
        section.push('\n');
    }
    print!("{section}");
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
    let mut text = std::fs::read_to_string(&doc).unwrap();
    text.push_str(&section);
    std::fs::write(&doc, text).unwrap();
}
