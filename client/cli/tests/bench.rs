//! `goulette bench` against a real cluster: the quick check (in `make
//! test`) that each mode runs, counts what it sent or read and writes its
//! JSON, and the fixed suite `make bench` runs on release builds, whose
//! results are appended to `docs/benchmarks.md`.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::Env;

/// Runs `goulette bench ARGS --json FILE --quiet`; returns the JSON.
fn bench(env: &Env, args: &[&str], dir: &Path, name: &str) -> serde_json::Value {
    let json = dir.join(format!("{name}.json"));
    // Bounded: a run that hangs (it once did at close with acks=0) fails.
    let out = Command::new("timeout")
        .arg("300")
        .arg(env!("CARGO_BIN_EXE_goulette"))
        .arg("bench")
        .args(args)
        .args(["--quiet", "--json"])
        .arg(&json)
        .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "bench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

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

/// One line of the suite: what it runs, against which target.
struct Case {
    name: &'static str,
    target: &'static str,
    args: Vec<&'static str>,
    /// Whether the figure meets the target.
    met: fn(&serde_json::Value) -> bool,
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

fn us(v: &serde_json::Value, key: &str) -> u64 {
    v["latency_us"][key].as_u64().unwrap_or(0)
}

/// Runs `cases` against `env`; returns the table rows.
fn run_cases(env: &Env, cases: Vec<Case>, dir: &Path, tag: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for (i, case) in cases.into_iter().enumerate() {
        let r = bench(env, &case.args, dir, &format!("{tag}-{i}"));
        let latency = if us(&r, "max") > 0 {
            format!("{} / {} / {} / {}", us(&r, "p50"), us(&r, "p99"), us(&r, "p999"), us(&r, "max"))
        } else {
            "–".into()
        };
        rows.push(format!(
            "| {} | `{}` | {:.0} | {:.1} | {latency} | {} | {} |",
            case.name,
            case.args.join(" "),
            f(&r, "messages_per_sec"),
            f(&r, "mb_per_sec"),
            case.target,
            if (case.met)(&r) { "yes" } else { "**no**" }
        ));
    }
    rows
}

/// Runs `a` then `b` (each `(arguments, name)`) `rounds` times over, and
/// returns the median messages per second of each: alternated, so that
/// the machine's drift touches both alike.
fn alternated(env: &Env, dir: &Path, rounds: usize, a: (&[&str], &str), b: (&[&str], &str)) -> (f64, f64) {
    let (mut a_rates, mut b_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        a_rates.push(f(&bench(env, a.0, dir, &format!("{}-{round}", a.1)), "messages_per_sec"));
        b_rates.push(f(&bench(env, b.0, dir, &format!("{}-{round}", b.1)), "messages_per_sec"));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut a_rates), median(&mut b_rates))
}

/// Producing delayed records (each an hour ahead) beside the same plain
/// run, alternated `ROUNDS` times on one broker: what delayed delivery
/// costs a producer (the broker looks for the headers in every batch,
/// marks those holding delayed records, and indexes them).
fn delayed_rows(env: &Env, dir: &Path) -> Vec<String> {
    const ROUNDS: usize = 3;
    let args = |topic: &'static str, delay: &[&'static str]| {
        let base = ["produce", "--topic", topic, "--message-size", "1024", "--duration", "10s", "--delete-topic"];
        base.into_iter().chain(delay.iter().copied()).collect::<Vec<_>>()
    };
    let plain_args = args("plain-now", &[]);
    let delayed_args = args("delayed", &["--delay", "1h"]);
    let (plain, delayed) = alternated(env, dir, ROUNDS, (&plain_args, "plain-now"), (&delayed_args, "delayed"));
    let how = format!(
        "`{}`, against no `--delay` (medians of {ROUNDS}, alternated)",
        args("t", &["--delay", "1h"]).join(" ")
    );
    vec![row(
        "1 KiB, durable: every record delayed 1 h against none",
        &how,
        format!("{delayed:.0} against {plain:.0} msg/s: {:.2}×", delayed / plain),
        "≥ 0.8× plain",
        delayed >= 0.8 * plain,
    )]
}

/// Producing to a compacted topic beside the same keyed run on a plain
/// one, alternated `ROUNDS` times on one broker (whose compactor runs
/// meanwhile): what compaction costs a producer (the broker decodes each
/// batch to check its keys, and passes share the disk).
fn compacted_rows(env: &Env, dir: &Path) -> Vec<String> {
    const ROUNDS: usize = 3;
    let args = |topic: &'static str, policy: &'static str| {
        let keyed = ["--keys", "100000", "--cleanup-policy", policy, "--duration", "10s", "--delete-topic"];
        ["produce", "--topic", topic, "--message-size", "1024"].into_iter().chain(keyed).collect::<Vec<_>>()
    };
    let plain_args = args("keyed-plain", "delete");
    let compact_args = args("keyed-compact", "compact");
    let (plain, compacted) =
        alternated(env, dir, ROUNDS, (&plain_args, "keyed-plain"), (&compact_args, "keyed-compact"));
    let how = format!(
        "`{}`, against `--cleanup-policy delete` (medians of {ROUNDS}, alternated)",
        args("t", "compact").join(" ")
    );
    vec![row(
        "1 KiB keyed (100k keys), durable: compacted topic against plain",
        &how,
        format!("{compacted:.0} against {plain:.0} msg/s: {:.2}×", compacted / plain),
        "≥ 0.8× plain",
        compacted >= 0.8 * plain,
    )]
}

/// A row for a figure that is not a `goulette bench` run.
fn row(name: &str, how: &str, figure: String, target: &str, met: bool) -> String {
    format!("| {name} | {how} | {figure} | | | {target} | {} |", if met { "yes" } else { "**no**" })
}

const MIB: f64 = (1 << 20) as f64;

/// The Kafka-protocol rows, beside the native ones of the same broker
/// (their JSON in `dir`): librdkafka through kcat, a C client, so that the
/// client is not the limit (confluent-kafka's Python loop, ~100k msg/s per
/// core, would be).
fn kafka_rows(env: &Env, dir: &Path) -> Vec<String> {
    let native = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap()
    };
    let bootstrap = env.brokers[0].kafka_address.to_string();
    let mut rows = Vec::new();

    // 1 KiB durable produce: 1,000,000 messages from a file, acks=all.
    let count = 1_000_000u64;
    let input = dir.join("kafka-input.txt");
    let line = format!("{}\n", "x".repeat(1024));
    std::fs::write(&input, line.repeat(count as usize)).unwrap();
    let create = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["topic", "create", "kib-kafka", "--partitions", "1", "--sentinels", &env.sentinel.address.to_string()])
        .output()
        .unwrap();
    assert!(create.status.success(), "{}", String::from_utf8_lossy(&create.stderr));
    let args = [
        "-P",
        "-t",
        "kib-kafka",
        "-X",
        "acks=all",
        "-X",
        "linger.ms=5",
        "-X",
        "batch.size=1000000",
        "-X",
        "queue.buffering.max.kbytes=1048576",
        "-X",
        "queue.buffering.max.messages=2000000",
    ];
    let started = std::time::Instant::now();
    let out = Command::new("kcat").arg("-b").arg(&bootstrap).args(args).arg("-l").arg(&input).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "kcat -P: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(&input);
    let rate = count as f64 / seconds;
    let native_rate = f(&native("durable-0"), "messages_per_sec");
    rows.push(format!(
        "| 1 KiB, librdkafka producer (kcat), durable | `kcat -P {} -l FILE` ({count} messages) | {rate:.0} | {:.1} | – | ≥ 90 % of native ({native_rate:.0}): {:.0} % | {} |",
        args[3..].join(" "),
        rate * 1024.0 / 1e6,
        100.0 * rate / native_rate,
        if rate >= 0.9 * native_rate { "yes" } else { "**no**" }
    ));

    // Catch-up read of the native 1 KiB backlog, 2,000,000 messages.
    let args = ["-C", "-t", "kib", "-o", "beginning", "-c", "2000000", "-e", "-q", "-f", "%o\n"];
    let started = std::time::Instant::now();
    let out = Command::new("kcat").arg("-b").arg(&bootstrap).args(args).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "kcat -C: {}", String::from_utf8_lossy(&out.stderr));
    let messages = out.stdout.iter().filter(|b| **b == b'\n').count() as f64;
    let native_mb = f(&native("durable-rest-1"), "mb_per_sec");
    let mb = messages * 1024.0 / 1e6 / seconds;
    rows.push(format!(
        "| catch-up read of the 1 KiB backlog, librdkafka consumer (kcat) | `kcat {}` | {:.0} | {mb:.1} | – | ≥ 90 % of native ({native_mb:.0} MB/s): {:.0} % | {} |",
        args.join(" ").replace('\n', "\\n"),
        messages / seconds,
        100.0 * mb / native_mb,
        if mb >= 0.9 * native_mb { "yes" } else { "**no**" }
    ));
    rows
}

/// Creates a 1,000-partition RF=3 topic; rows for the time until every
/// partition has a leader that serves it, and for the brokers' resident
/// memory before and after (idle partitions: open logs, replication
/// sessions, indexes).
async fn thousand_partitions(env: &Env) -> Vec<String> {
    use goulette_proto::v1 as pb;
    let rss = |env: &Env| env.brokers.iter().map(|b| b.memory("VmRSS").unwrap_or(0)).max().unwrap_or(0);
    let before = rss(env);
    let cluster = env.cluster();
    let admin = goulette_client::Admin::new(cluster.clone());
    let started = std::time::Instant::now();
    let config = pb::TopicConfig { name: "many".into(), partitions: 1000, replication_factor: 3, ..Default::default() };
    admin.create_topic(config).await.unwrap();
    // Every partition answers ListOffsets from its leader (opened, leading).
    let mut serving = 0;
    while serving < 1000 {
        match cluster.list_offsets("many", serving, None).await {
            Ok(_) => serving += 1,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "1,000 partitions not served in 2 min");
    }
    let took = started.elapsed().as_secs_f64();
    // Followers need a moment to open their copies and start fetching.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let grown = rss(env).saturating_sub(before) as f64 / MIB;
    vec![
        row(
            "1,000 partitions, RF=3, 3 brokers: created until all served by a leader",
            "`Admin::create_topic`, then `ListOffsets` on each",
            format!("{took:.1} s"),
            "≤ 10 s",
            took <= 10.0,
        ),
        row(
            "broker RSS growth with 1,000 idle partitions (largest of 3)",
            "`VmRSS` before and 5 s after",
            format!("+{grown:.0} MiB"),
            "≤ 64 MiB",
            grown <= 64.0,
        ),
    ]
}
/// The cost of TLS on every gRPC hop for a 1 KiB durable producer:
/// `scripts/bench-tls.sh` (`make bench-tls`), which alternates plaintext and
/// TLS clusters in paired rounds, because this machine's fsync-bound
/// throughput drifts more between minutes than TLS moves it.
fn tls_row() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-tls.sh");
    let out = Command::new("bash").arg(script).env("ROUNDS", "5").env("SECONDS_PER_RUN", "10").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench-tls: {text}{}", String::from_utf8_lossy(&out.stderr));
    print!("{text}");
    let (plain, tls, ratio) = tls_medians(&text).unwrap_or_else(|| panic!("no medians line: {text}"));
    row(
        "1 KiB, 1 producer, durable, TLS on every gRPC hop",
        "`make bench-tls` (5 rounds of 10 s, plaintext and TLS alternated)",
        format!("{tls:.0} msg/s with TLS, {plain:.0} without: TLS/plaintext {ratio:.2} (median of the rounds)"),
        "costs ≤ 15 % (ratio ≥ 0.85)",
        ratio >= 0.85,
    )
}

/// The plaintext and TLS medians (msg/s) and the median ratio from the
/// last line of `scripts/bench-tls.sh`: "bench-tls: medians: plaintext P
/// msg/s, TLS T msg/s; TLS/plaintext per round: …, median R".
fn tls_medians(output: &str) -> Option<(f64, f64, f64)> {
    let line = output.lines().find(|l| l.contains("medians:"))?;
    // The number after the first `key ` (with its space: "medians:" is no "median ").
    let number_after = |key: &str| -> Option<f64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?.parse().ok()
    };
    Some((number_after("plaintext ")?, number_after("TLS ")?, number_after("median ")?))
}

#[test]
fn the_tls_medians_are_read_from_the_scripts_last_line() {
    let output = "bench-tls: round 1: plaintext 500 msg/s, TLS 400 msg/s, ratio 0.8\n\
                  bench-tls: medians: plaintext 349724 msg/s, TLS 342649 msg/s; TLS/plaintext per round: 0.685 1.034 1.234, median 1.034\n";
    assert_eq!(tls_medians(output), Some((349724.0, 342649.0, 1.034)));
    assert_eq!(tls_medians("bench-tls: the tls run failed"), None);
}

fn case(name: &'static str, target: &'static str, args: &[&'static str], met: fn(&serde_json::Value) -> bool) -> Case {
    Case { name, target, args: args.to_vec(), met }
}

/// `make bench-delayed`: the delayed-delivery row of `make bench` alone,
/// printed (about a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with `make bench-delayed`"]
async fn bench_delayed() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::start(1, &[]).await;
    for row in delayed_rows(&env, dir.path()) {
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
            "1 KiB, 1 producer, durable",
            "≥ 400k msg/s",
            &["produce", "--topic", "kib", "--message-size", "1024", "--duration", "15s"],
            |r| f(r, "messages_per_sec") >= 400_000.0,
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
            "1 KiB open loop 20k msg/s, e2e, durable",
            "p50 ≤ 1 ms, p99 ≤ 5 ms",
            &["e2e", "--topic", "lat", "--rate", "20000", "--linger", "0ms", "--duration", "10s"],
            |r| us(r, "p50") <= 1000 && us(r, "p99") <= 5000,
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
        rows.extend(compacted_rows(&env, dir.path()));
        rows.extend(delayed_rows(&env, dir.path()));
        rows.extend(kafka_rows(&env, dir.path()));
    }
    // One broker, flush=never.
    let memory = vec![
        case(
            "1 KiB open loop 20k msg/s, e2e, flush=never",
            "p99 ≤ 0.5 ms",
            &["e2e", "--topic", "lat", "--rate", "20000", "--linger", "0ms", "--duration", "10s"],
            |r| us(r, "p99") <= 500,
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
        "≥ 150 MB/s",
        &["produce", "--topic", "rf3", "--partitions", "3", "--replication-factor", "3", "--duration", "15s"],
        |r| f(r, "mb_per_sec") >= 150.0,
    )];
    {
        // One transaction writes all 1,000 partitions (see --max-txn-ops).
        let env = Env::start_with(3, &["--max-txn-ops", "4096"], &[]).await;
        rows.extend(run_cases(&env, replicated, dir.path(), "replicated"));
        rows.extend(thousand_partitions(&env).await);
    }
    rows.push(tls_row());

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
