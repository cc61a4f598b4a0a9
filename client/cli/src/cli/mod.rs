//! The `goulette` commands that talk to a cluster, one file per command
//! group: `topic`, `produce`, `consume`, `group`, `cluster` (status and
//! broker decommissioning). Each returns whether it fully succeeded (the
//! exit status). This file holds what they share: output formats and
//! argument parsers.

mod acl;
mod cluster;
mod consume;
mod consume_options;
mod format_tokens;
mod group;
mod input_format;
mod produce;
mod record_format;
mod start;
mod topic;
mod topic_options;
mod topic_reader;
mod user;

pub use acl::{AclCommand, acl};
pub use cluster::{broker_decommission, cluster_status};
pub use consume::{ConsumeOptions, consume};
pub use group::{
    ResetTo, group_alter, group_delete, group_describe, group_list, group_redrive, group_reset, parse_reset_to,
};
pub use input_format::{InputFormat, parse_input_format};
pub use produce::{ProduceInput, ProduceOptions, produce};
pub use record_format::{Encoding, RecordFormat, parse_record_format};
pub use start::{parse_deliver_at, parse_start, parse_time};
pub use topic::{topic_add_partitions, topic_alter, topic_create, topic_delete, topic_describe, topic_list};
pub use topic_options::CleanupOptions;
pub use user::{UserCommand, user};

use goulette_proto::v1::Acks;

/// Output format of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable table.
    Text,
    /// Machine-readable JSON.
    Json,
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (how `timeout`, systemd and
/// Kubernetes stop a process): commands that hold state (a group's
/// commits) end as they would on their own.
pub async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            // Without a SIGTERM handler, only Ctrl-C ends the run early.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// `--acks` values.
pub fn parse_acks(s: &str) -> Result<Acks, String> {
    match s {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        _ => Err(format!("{s:?}: expected 0, 1 or all")),
    }
}

/// Parses a compression codec name.
/// Checks a tag of `produce --tag`.
pub fn parse_tag(s: &str) -> Result<String, String> {
    goulette_client::tags::check_tag(s).map(|()| s.to_owned())
}

/// Checks a filter of `consume --tags`.
pub fn parse_tag_filter(s: &str) -> Result<String, String> {
    goulette_client::tags::TagFilter::parse(s).map(|_| s.to_owned())
}

/// Parses `name=value` (a header of `produce -H`).
pub fn parse_header(s: &str) -> Result<(String, bytes::Bytes), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), bytes::Bytes::from(value.to_owned()))),
        _ => Err(format!("{s:?} is not name=value")),
    }
}

pub fn parse_compression(s: &str) -> Result<goulette_client::Compression, String> {
    use goulette_client::Compression;
    Ok(match s {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return Err(format!("{s:?}: expected none, gzip, snappy, lz4 or zstd")),
    })
}

/// The human summary of a `goulette bench` run.
pub fn bench_summary(r: &crate::bench::BenchResult) -> String {
    let setting = |key: &str| r.settings.get(key).map_or_else(|| "?".to_owned(), |v| v.to_string().replace('"', ""));
    let rate = match r.settings.get("rate").and_then(serde_json::Value::as_u64) {
        Some(rate) => format!("open loop at {rate} msg/s"),
        None => "closed loop".to_owned(),
    };
    let count = |key: &str, noun: &str| {
        let n = setting(key);
        if n == "1" { format!("1 {noun}") } else { format!("{n} {noun}s") }
    };
    let mut out = format!(
        "bench {mode}: topic {topic} ({partitions}, RF {rf}), {producers}, {consumers}, \
         {size} B messages, acks={acks}, compression {compression}, {rate}\n",
        mode = format!("{:?}", r.mode).to_lowercase(),
        topic = r.topic,
        partitions = count("partitions", "partition"),
        rf = setting("replication_factor"),
        producers = count("producers", "producer"),
        consumers = count("consumers", "consumer"),
        size = setting("message_size"),
        acks = setting("acks"),
        compression = setting("compression"),
    );
    out.push_str(&format!(
        "  {} messages, {:.1} MB in {:.2} s: {:.0} msg/s, {:.1} MB/s, {} errors\n",
        r.messages,
        r.bytes as f64 / 1e6,
        r.seconds,
        r.messages_per_sec,
        r.mb_per_sec,
        r.errors
    ));
    let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
    match &r.latency_us {
        Some(l) => out.push_str(&format!(
            "  latency ({}): p50 {}, p90 {}, p99 {}, p99.9 {}, max {}\n",
            r.latency_of,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max)
        )),
        None => out.push_str(&format!("  latency: {}\n", r.latency_of)),
    }
    out
}

fn leader(l: Option<u32>) -> String {
    l.map_or_else(|| "none".to_owned(), |l| l.to_string())
}

fn ids(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}
