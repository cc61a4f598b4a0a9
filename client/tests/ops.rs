//! The operator's HTTP endpoints of real broker and sentinel processes:
//! `/metrics` names its series and their values move with traffic;
//! `/ready` is false until a broker is registered with its assignment
//! applied, and false on a sentinel that cannot reach etcd.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Env, consume_all, produce_values};
use goulette_sentinel::testkit::{BrokerProcess, bin_dir, http_get, wait_for};

/// The value of the series whose line starts with `series ` (0 when absent).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn metrics(addr: SocketAddr) -> String {
    let (status, body) = http_get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{body}");
    body
}

fn ready(addr: SocketAddr) -> (u16, String) {
    http_get(addr, "/ready").expect("/ready answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_traffic_metrics_should_name_their_series_and_count_it() {
    let env = Env::start(1, &[]).await;
    let broker = env.brokers[0].http_address;
    let sentinel = env.sentinel.http_address;
    assert_eq!(http_get(broker, "/health").unwrap().0, 200);
    assert_eq!(http_get(sentinel, "/health").unwrap().0, 200);
    wait_for("broker ready", Duration::from_secs(10), || ready(broker).0 == 200);
    wait_for("sentinel ready", Duration::from_secs(10), || ready(sentinel).0 == 200);

    let before = metrics(broker);
    for series in [
        "goulette_broker_partitions",
        "goulette_broker_leader_partitions",
        "goulette_broker_under_replicated_partitions",
        "goulette_process_resident_memory_bytes",
    ] {
        assert!(before.lines().any(|l| l.starts_with(series)), "{series} missing:\n{before}");
    }
    assert!(value(&before, "goulette_process_resident_memory_bytes") > 1e6);

    env.create_topic("m", 1, 1).await;
    env.wait_serving("m").await;
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    produce_values(env.cluster(), "m", &refs).await;
    consume_all(env.cluster(), "m", 10).await;

    let after = metrics(broker);
    assert_eq!(value(&after, "goulette_broker_messages_in_total{topic=\"m\"}"), 10.0, "{after}");
    assert!(value(&after, "goulette_broker_bytes_in_total{topic=\"m\"}") > 0.0);
    assert_eq!(value(&after, "goulette_broker_messages_out_total{topic=\"m\"}"), 10.0, "{after}");
    assert!(value(&after, "goulette_broker_produce_latency_seconds_count") >= 10.0, "{after}");
    // flush=always: each acknowledged produce waited for an fdatasync.
    assert!(value(&after, "goulette_broker_fsync_latency_seconds_count") >= 1.0, "{after}");
    assert!(value(&after, "goulette_broker_fsync_batches_sum") >= 10.0, "{after}");
    assert_eq!(value(&after, "goulette_broker_leader_partitions"), 1.0, "{after}");
    assert!(value(&after, "goulette_broker_leader_changes_total") >= 1.0, "{after}");

    // A group's committed offset (from its coordinator) beside the
    // partition's high watermark (from its leader): their difference is the lag.
    let out = std::process::Command::new(bin_dir().join("goulette"))
        .args(["consume", "--topic", "m", "--group", "g", "--from-beginning", "--max-messages", "6"])
        .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = metrics(broker);
    assert_eq!(value(&m, "goulette_broker_partition_high_watermark{topic=\"m\",partition=\"0\"}"), 10.0, "{m}");
    assert_eq!(
        value(&m, "goulette_broker_group_committed_offset{group=\"g\",topic=\"m\",partition=\"0\"}"),
        6.0,
        "{m}"
    );

    let s = metrics(sentinel);
    assert_eq!(value(&s, "goulette_sentinel_leader"), 1.0, "{s}");
    assert_eq!(value(&s, "goulette_sentinel_etcd_reachable"), 1.0, "{s}");
    assert_eq!(value(&s, "goulette_sentinel_brokers_up"), 1.0, "{s}");
    assert_eq!(value(&s, "goulette_sentinel_topics"), 2.0, "m and __offsets: {s}");
    assert_eq!(value(&s, "goulette_sentinel_offline_partitions"), 0.0, "{s}");
    assert!(value(&s, "goulette_sentinel_etcd_request_duration_seconds_count{request=\"commit\"}") >= 1.0, "{s}");

    // `cluster status` shows each server's HTTP address, the sentinel's etcd
    // health and what each broker leads.
    let out = std::process::Command::new(bin_dir().join("goulette"))
        .args(["cluster", "status", "--format", "json"])
        .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["sentinels"][0]["http_address"], sentinel.to_string(), "{status}");
    assert_eq!(status["sentinels"][0]["etcd"], "ok", "{status}");
    assert_eq!(status["brokers"][0]["http_address"], broker.to_string(), "{status}");
    assert_eq!(status["brokers"][0]["leader_partitions"], 17, "m and the 16 of __offsets: {status}");
    assert_eq!(status["under_replicated_partitions"], serde_json::json!([]), "{status}");

    // A broker that cannot register is alive but not ready; it becomes
    // ready once the sentinel answers and its assignment is applied.
    env.sentinel.pause();
    let late = BrokerProcess::start(2, &env.sentinel.address.to_string(), &[]);
    assert_eq!(http_get(late.http_address, "/health").unwrap().0, 200);
    std::thread::sleep(Duration::from_millis(500));
    let (status, why) = ready(late.http_address);
    assert_eq!(status, 503, "{why}");
    assert!(why.contains("assignment"), "{why}");
    env.sentinel.resume();
    wait_for("the late broker ready", Duration::from_secs(20), || ready(late.http_address).0 == 200);

    // A sentinel that cannot reach etcd is not ready, and says so.
    env.etcd.pause();
    wait_for("sentinel not ready without etcd", Duration::from_secs(10), || ready(sentinel).0 == 503);
    let (_, why) = ready(sentinel);
    assert!(why.contains("etcd"), "{why}");
    assert_eq!(value(&metrics(sentinel), "goulette_sentinel_etcd_reachable"), 0.0);
    env.etcd.resume();
    wait_for("sentinel ready again", Duration::from_secs(10), || ready(sentinel).0 == 200);
}
