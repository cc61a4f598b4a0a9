//! The Kafka-protocol rows: librdkafka (kcat) beside the native figures.

use std::path::Path;
use std::process::Command;

use crate::common::Env;
use crate::table::{f, read_json};

/// The Kafka-protocol rows, beside the native ones of the same broker
/// (their JSON in `dir`): librdkafka through kcat, a C client, so that the
/// client is not the limit (confluent-kafka's Python loop, ~100k msg/s per
/// core, would be).
pub fn kafka_rows(env: &Env, dir: &Path) -> Vec<String> {
    let native = |name: &str| read_json(dir, name);
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
