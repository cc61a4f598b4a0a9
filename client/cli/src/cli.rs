//! The `goulette` commands that talk to a cluster: topic, produce, consume,
//! cluster status. Each returns whether it fully succeeded (the exit status).

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_proto::v1::{self as pb, Acks};

use goulette_client::admin::Admin;
use goulette_client::cluster::Cluster;
use goulette_client::consumer::{Consumer, ConsumerConfig, StartAt};
use goulette_client::membership::GroupOptions;
use goulette_client::partitioner::Partitioner;
use goulette_client::producer::{Producer, ProducerConfig, ProducerRecord};

/// Output format of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable table.
    Text,
    /// Machine-readable JSON.
    Json,
}

/// Output format of `consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordFormat {
    /// Each value on a line.
    Value,
    /// One JSON object per record.
    Json,
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
    let l = &r.latency_us;
    let mut out = format!(
        "{:?} {}: {} messages, {:.1} MB in {:.2} s = {:.0} msg/s, {:.1} MB/s ({} errors)\n",
        r.mode,
        r.topic,
        r.messages,
        r.bytes as f64 / 1e6,
        r.seconds,
        r.messages_per_sec,
        r.mb_per_sec,
        r.errors
    );
    if l.max > 0 {
        out.push_str(&format!(
            "latency (µs; {}): p50 {} p90 {} p99 {} p99.9 {} max {}\n",
            r.latency_of, l.p50, l.p90, l.p99, l.p999, l.max
        ));
    }
    out
}

fn leader(l: Option<u32>) -> String {
    l.map_or_else(|| "none".to_owned(), |l| l.to_string())
}

fn ids(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// `topic create`.
pub async fn topic_create(cluster: Arc<Cluster>, config: pb::TopicConfig) -> anyhow::Result<bool> {
    let topic = Admin::new(cluster).create_topic(config).await?;
    println!("created topic {} with {} partitions", topic.name, topic.partitions.len());
    for p in &topic.partitions {
        println!("  partition {:>4}  leader {:>4}  replicas {}", p.partition, leader(p.leader), ids(&p.replicas));
    }
    Ok(true)
}

/// `topic list`.
pub async fn topic_list(cluster: Arc<Cluster>, format: Format) -> anyhow::Result<bool> {
    let topics = Admin::new(cluster).list_topics().await?;
    match format {
        Format::Json => {
            let list: Vec<serde_json::Value> = topics
                .iter()
                .map(|t| {
                    let c = t.config.clone().unwrap_or_default();
                    serde_json::json!({"name": t.name, "partitions": c.partitions, "replication_factor": c.replication_factor})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Format::Text => {
            for t in topics {
                let c = t.config.unwrap_or_default();
                println!("{}\tpartitions={}\treplication_factor={}", t.name, c.partitions, c.replication_factor);
            }
        }
    }
    Ok(true)
}

/// `topic describe`.
pub async fn topic_describe(cluster: Arc<Cluster>, name: &str, format: Format) -> anyhow::Result<bool> {
    let report = Admin::new(cluster).describe_topic(name).await?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => {
            println!(
                "topic {}  partitions {}  replication factor {}  retention {} ms / {} bytes",
                report.name, report.partitions, report.replication_factor, report.retention_ms, report.retention_bytes
            );
            println!(
                "{:>9}  {:>6}  {:>8}  {:>8}  {:>5}  {:>12}  {:>12}",
                "partition", "leader", "replicas", "isr", "epoch", "start", "end"
            );
            let off = |o: Option<u64>| o.map_or_else(|| "?".to_owned(), |o| o.to_string());
            for p in &report.partition_details {
                println!(
                    "{:>9}  {:>6}  {:>8}  {:>8}  {:>5}  {:>12}  {:>12}",
                    p.partition,
                    leader(p.leader),
                    ids(&p.replicas),
                    ids(&p.isr),
                    p.leader_epoch,
                    off(p.log_start_offset),
                    off(p.log_end_offset)
                );
            }
        }
    }
    Ok(true)
}

/// `topic delete`.
pub async fn topic_delete(cluster: Arc<Cluster>, name: &str) -> anyhow::Result<bool> {
    Admin::new(cluster).delete_topic(name).await?;
    println!("deleted topic {name}");
    Ok(true)
}

/// `broker decommission` (or with `undo`, `broker recommission`).
pub async fn broker_decommission(cluster: Arc<Cluster>, id: u32, undo: bool) -> anyhow::Result<bool> {
    Admin::new(cluster).decommission_broker(id, undo).await?;
    if undo {
        println!("broker {id} may hold replicas again");
    } else {
        println!(
            "broker {id} decommissioned: its replicas are moving; `goulette cluster status` shows how many it still holds"
        );
    }
    Ok(true)
}

/// `produce` options.
#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub topic: String,
    pub key: Option<String>,
    pub partition: Option<u32>,
    pub acks: Acks,
    pub window: usize,
    pub message: Option<String>,
    pub print_offsets: bool,
    pub idempotent: bool,
}

/// `produce`: `--message`, or each line of stdin, batched and pipelined.
/// Succeeds only if every message was acknowledged.
pub async fn produce(cluster: Arc<Cluster>, options: ProduceOptions) -> anyhow::Result<bool> {
    let config = ProducerConfig {
        acks: options.acks,
        window: options.window.max(1),
        idempotent: options.idempotent,
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(cluster, config, Partitioner::KeyHash));
    let (results_tx, mut results_rx) = tokio::sync::mpsc::channel(65536);
    // Print outcomes in send order while more lines are read.
    let print_offsets = options.print_offsets;
    let printer = tokio::spawn(async move {
        let mut ok = true;
        let mut out = std::io::BufWriter::new(std::io::stdout());
        while let Some(delivery) = results_rx.recv().await {
            let delivery: goulette_client::producer::Delivery = delivery;
            match delivery.wait().await {
                Ok(meta) if print_offsets => {
                    let offset = meta.offset.map_or_else(|| "-".to_owned(), |o| o.to_string());
                    let _ = writeln!(out, "{}\t{offset}", meta.partition);
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("error: {e}");
                    ok = false;
                }
            }
        }
        let _ = out.flush();
        ok
    });
    let record = |value: String| ProducerRecord {
        topic: options.topic.clone(),
        partition: options.partition,
        key: options.key.clone().map(Bytes::from),
        value: Bytes::from(value),
        ..ProducerRecord::default()
    };
    let mut sent_ok = true;
    let send = |value: String| {
        let producer = producer.clone();
        let results_tx = results_tx.clone();
        let rec = record(value);
        async move {
            match producer.send(rec).await {
                Ok(d) => results_tx.send(d).await.is_ok(),
                Err(e) => {
                    eprintln!("error: {e}");
                    false
                }
            }
        }
    };
    match &options.message {
        Some(m) => sent_ok &= send(m.clone()).await,
        None => {
            let (lines_tx, mut lines_rx) = tokio::sync::mpsc::channel::<String>(8192);
            // stdin is blocking: read it on its own thread.
            std::thread::spawn(move || {
                for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                    if lines_tx.blocking_send(line).is_err() {
                        return;
                    }
                }
            });
            while let Some(line) = lines_rx.recv().await {
                if !send(line).await {
                    sent_ok = false;
                    break;
                }
            }
        }
    }
    drop(results_tx);
    let printed_ok = printer.await.unwrap_or(false);
    if let Ok(producer) = Arc::try_unwrap(producer) {
        producer.close().await;
    }
    Ok(sent_ok && printed_ok)
}

/// `consume` options.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    pub topic: String,
    pub start: StartAt,
    pub partition: Option<u32>,
    pub max_messages: Option<u64>,
    pub timeout: Option<Duration>,
    pub window_bytes: u64,
    pub format: RecordFormat,
    /// Consume as a member of this group (or, with `partition`, only
    /// resume at and commit its offsets).
    pub group: Option<String>,
    pub strategy: String,
    pub session_timeout: Duration,
}

/// `consume`: prints records until `max_messages` or `timeout` of silence.
/// With a group, what is printed is committed: auto-commit commits what
/// earlier calls delivered, and everything is flushed before asking for
/// more, so delivered means printed (at-least-once).
pub async fn consume(cluster: Arc<Cluster>, options: ConsumeOptions) -> anyhow::Result<bool> {
    let grouped = options.group.is_some();
    let membership = (grouped && options.partition.is_none()).then(|| GroupOptions {
        strategy: options.strategy.clone(),
        session_timeout: options.session_timeout,
        client_id: "goulette-cli".into(),
    });
    let config = ConsumerConfig {
        partitions: options.partition.map(|p| vec![p]),
        start: options.start,
        window_bytes: options.window_bytes,
        group: options.group.clone(),
        auto_commit: grouped.then_some(Duration::from_secs(1)),
        membership,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::subscribe(cluster, &options.topic, config).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut count = 0u64;
    // Ctrl-C ends the run like a timeout: what was printed is committed.
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let mut failed = None;
    while options.max_messages.is_none_or(|max| count < max) {
        if grouped || options.timeout.is_none() || count.is_multiple_of(1024) {
            out.flush()?;
        }
        let wait = async {
            match options.timeout {
                Some(t) => tokio::time::timeout(t, consumer.recv()).await.ok(),
                None => Some(consumer.recv().await),
            }
        };
        let next = tokio::select! {
            next = wait => match next {
                Some(next) => next,
                None => break, // nothing arrived within the timeout
            },
            _ = &mut interrupted => break,
        };
        let record = match next {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
            None => break,
        };
        match options.format {
            RecordFormat::Value => {
                out.write_all(&record.value)?;
                out.write_all(b"\n")?;
            }
            RecordFormat::Json => {
                let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
                let headers: serde_json::Map<String, serde_json::Value> =
                    record.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(text(v)))).collect();
                let line = serde_json::json!({
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": record.timestamp,
                    "key": record.key.as_ref().map(text),
                    "value": text(&record.value),
                    "headers": headers,
                });
                writeln!(out, "{line}")?;
            }
        }
        count += 1;
    }
    out.flush()?;
    // Commits what was printed and leaves the group.
    let closed = consumer.close().await;
    if let Some(e) = failed {
        anyhow::bail!(e);
    }
    closed?;
    Ok(true)
}

/// Where `group reset` moves a group's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(u64),
    /// The first record at or after this time (ms).
    Timestamp(i64),
}

/// Parses `earliest`, `latest`, an offset, or an RFC 3339 time.
pub fn parse_reset_to(s: &str) -> Result<ResetTo, String> {
    match s {
        "earliest" => Ok(ResetTo::Earliest),
        "latest" => Ok(ResetTo::Latest),
        _ => match s.parse::<u64>() {
            Ok(o) => Ok(ResetTo::Offset(o)),
            Err(_) => humantime::parse_rfc3339_weak(s)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| ResetTo::Timestamp(d.as_millis() as i64))
                .ok_or_else(|| format!("{s:?}: expected earliest, latest, an offset or an RFC 3339 time")),
        },
    }
}

/// `group describe`: the members with their partitions, then per
/// partition of the group's topics (or of `topic`) the committed offset, the
/// high watermark and the lag.
pub async fn group_describe(
    cluster: Arc<Cluster>,
    group: &str,
    topic: Option<&str>,
    format: Format,
) -> anyhow::Result<bool> {
    let described = Admin::new(cluster.clone()).describe_group(group).await?;
    let committed = goulette_client::offsets::fetch_all(&cluster, group).await?;
    let topics: std::collections::BTreeSet<String> = match topic {
        Some(t) => [t.to_owned()].into(),
        None => described
            .members
            .iter()
            .flat_map(|m| m.topics.iter().cloned())
            .chain(committed.keys().map(|(t, _)| t.clone()))
            .collect(),
    };
    let mut rows = Vec::new();
    for t in &topics {
        let info = cluster.topic(t, false).await?;
        for p in &info.partitions {
            let end = cluster.list_offsets(t, p.partition, None).await?.high_watermark;
            let done = committed.get(&(t.clone(), p.partition)).copied();
            let owner = described
                .members
                .iter()
                .find(|m| m.assigned.iter().any(|tp| tp.topic == *t && tp.partition == p.partition))
                .map(|m| m.member_id.clone());
            rows.push((t.clone(), p.partition, done, end, done.map(|c| end.saturating_sub(c)), owner));
        }
    }
    let tps = |list: &[pb::TopicPartition]| -> Vec<String> {
        list.iter().map(|tp| format!("{}/{}", tp.topic, tp.partition)).collect()
    };
    match format {
        Format::Json => {
            let members: Vec<serde_json::Value> = described
                .members
                .iter()
                .map(|m| {
                    serde_json::json!({"member_id": m.member_id, "client_id": m.client_id, "topics": m.topics,
                        "assigned": tps(&m.assigned), "owned": tps(&m.owned)})
                })
                .collect();
            let partitions: Vec<serde_json::Value> = rows
                .iter()
                .map(|(t, p, c, e, l, o)| {
                    serde_json::json!({"topic": t, "partition": p, "committed": c, "log_end": e, "lag": l, "member": o})
                })
                .collect();
            let json = serde_json::json!({"group": group, "generation": described.generation,
                "strategy": described.strategy, "members": members, "partitions": partitions});
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Text => {
            let strategy = if described.strategy.is_empty() { "-" } else { described.strategy.as_str() };
            println!("group {group}: generation {}, strategy {strategy}", described.generation);
            if described.members.is_empty() {
                println!("  no members");
            }
            for m in &described.members {
                println!("  member {} ({}): {}", m.member_id, m.topics.join(","), tps(&m.assigned).join(" "));
            }
            println!(
                "  {:<24} {:>9}  {:>12}  {:>12}  {:>10}  member",
                "topic", "partition", "committed", "log end", "lag"
            );
            let dash = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
            for (t, p, c, e, l, o) in rows {
                let member = o.unwrap_or_else(|| "-".into());
                println!("  {t:<24} {p:>9}  {:>12}  {e:>12}  {:>10}  {member}", dash(c), dash(l));
            }
        }
    }
    Ok(true)
}

/// `group list`: groups with members or committed offsets.
pub async fn group_list(cluster: Arc<Cluster>) -> anyhow::Result<bool> {
    let mut groups: std::collections::BTreeSet<String> =
        goulette_client::offsets::list_groups(&cluster).await?.into_iter().collect();
    groups.extend(Admin::new(cluster).member_groups().await?);
    for group in groups {
        println!("{group}");
    }
    Ok(true)
}

/// Refuses (`GROUP_NOT_EMPTY`) when `group` has members.
async fn require_no_members(cluster: &Arc<Cluster>, group: &str) -> anyhow::Result<()> {
    let described = Admin::new(cluster.clone()).describe_group(group).await?;
    if !described.members.is_empty() {
        let members: Vec<&str> = described.members.iter().map(|m| m.member_id.as_str()).collect();
        anyhow::bail!("group {group} has members ({}): stop its consumers first", members.join(", "));
    }
    Ok(())
}

/// `group delete`: its committed offsets and membership state.
pub async fn group_delete(cluster: Arc<Cluster>, group: &str) -> anyhow::Result<bool> {
    require_no_members(&cluster, group).await?;
    goulette_client::offsets::delete_group(&cluster, group).await?;
    Admin::new(cluster).remove_group(group).await?;
    println!("deleted group {group}");
    Ok(true)
}

/// `group reset`: commits, for every partition of `topic`, the offset `to` names.
/// Refused while the group has members (they would overwrite it).
pub async fn group_reset(cluster: Arc<Cluster>, group: &str, topic: &str, to: ResetTo) -> anyhow::Result<bool> {
    require_no_members(&cluster, group).await?;
    let info = cluster.topic(topic, false).await?;
    let mut offsets = std::collections::BTreeMap::new();
    for p in &info.partitions {
        let ts = match to {
            ResetTo::Timestamp(t) => Some(t),
            _ => None,
        };
        let o = cluster.list_offsets(topic, p.partition, ts).await?;
        let offset = match to {
            ResetTo::Earliest => o.log_start_offset,
            ResetTo::Latest => o.high_watermark,
            ResetTo::Offset(n) => n.clamp(o.log_start_offset, o.high_watermark),
            ResetTo::Timestamp(_) => o.timestamp_offset.unwrap_or(o.high_watermark),
        };
        offsets.insert(p.partition, offset);
    }
    goulette_client::offsets::commit(&cluster, group, topic, &offsets, None).await?;
    for (p, o) in &offsets {
        println!("{group} {topic}/{p} -> {o}");
    }
    Ok(true)
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// Each sentinel's own report of whether it reaches etcd: `None` when it
/// did not answer within 2 s.
async fn sentinels_etcd(cluster: &Cluster, sentinels: &[pb::SentinelInfo]) -> Vec<Option<bool>> {
    let ask = |address: String| async move {
        let channel = cluster.channel(&address).ok()?;
        let mut client = pb::sentinel_service_client::SentinelServiceClient::new(channel);
        let call = client.cluster_status(pb::ClusterStatusRequest {});
        let status = tokio::time::timeout(Duration::from_secs(2), call).await.ok()?.ok()?;
        Some(status.into_inner().etcd_reachable)
    };
    let mut out = Vec::new();
    for s in sentinels {
        out.push(ask(s.address.clone()).await);
    }
    out
}

/// Each up broker's replicas that it holds but does not serve (failed, or
/// kept without metadata), asked of each broker; brokers that do not answer
/// within 2 s are left out.
async fn replica_problems(cluster: &Cluster, brokers: &[pb::BrokerInfo]) -> Vec<(u32, pb::ReplicaProblem)> {
    let ask = |address: String| async move {
        let channel = cluster.channel(&address).ok()?;
        let mut client = pb::broker_service_client::BrokerServiceClient::new(channel);
        let call = client.replica_problems(pb::ReplicaProblemsRequest {});
        Some(tokio::time::timeout(Duration::from_secs(2), call).await.ok()?.ok()?.into_inner().problems)
    };
    let mut out = Vec::new();
    for b in brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32) {
        out.extend(ask(b.address.clone()).await.unwrap_or_default().into_iter().map(|p| (b.id, p)));
    }
    out
}

/// `cluster status`: succeeds only when a sentinel leader is known and
/// every registered broker is up.
pub async fn cluster_status(cluster: Arc<Cluster>, format: Format) -> anyhow::Result<bool> {
    let status = Admin::new(cluster.clone()).cluster_status().await?;
    let etcd = sentinels_etcd(&cluster, &status.sentinels).await;
    let problems = replica_problems(&cluster, &status.brokers).await;
    let leader_known = status.sentinels.iter().any(|s| s.leader);
    let brokers_up = status.brokers.iter().all(|b| b.state == pb::BrokerState::Up as i32);
    let state = |b: &pb::BrokerInfo| if b.state == pb::BrokerState::Up as i32 { "up" } else { "down" };
    let etcd_word = |e: &Option<bool>| match e {
        Some(true) => "ok",
        Some(false) => "unreachable",
        None => "no answer",
    };
    let partition_json = |p: &pb::PartitionState| serde_json::json!({"topic": p.topic, "partition": p.partition, "leader": p.leader, "replicas": p.replicas, "isr": p.isr});
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "sentinels": status.sentinels.iter().zip(&etcd).map(|(s, e)| serde_json::json!({
                    "id": s.id, "address": s.address, "http_address": s.http_address, "leader": s.leader, "etcd": etcd_word(e),
                })).collect::<Vec<_>>(),
                "brokers": status.brokers.iter().map(|b| serde_json::json!({
                    "id": b.id, "address": b.address, "http_address": b.http_address, "state": state(b),
                    "replicas": b.replicas, "leader_partitions": b.leader_partitions,
                    "under_replicated": b.under_replicated, "decommissioned": b.decommissioned,
                })).collect::<Vec<_>>(),
                "offline_partitions": status.offline_partitions.iter().map(partition_json).collect::<Vec<_>>(),
                "under_replicated_partitions": status.under_replicated_partitions.iter().map(partition_json).collect::<Vec<_>>(),
                "replicas_not_served": problems.iter().map(|(broker, p)| serde_json::json!({
                    "broker": broker, "topic": p.topic, "partition": p.partition, "state": p.state, "reason": p.reason,
                })).collect::<Vec<_>>(),
                "metadata_version": status.metadata_version,
                "healthy": leader_known && brokers_up,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Text => {
            println!("sentinels:");
            for (s, e) in status.sentinels.iter().zip(&etcd) {
                let role = if s.leader { "leader" } else { "follower" };
                println!(
                    "  {:<16} {:<22} http {:<22} {role:<8} etcd {}",
                    s.id,
                    s.address,
                    or_dash(&s.http_address),
                    etcd_word(e)
                );
            }
            if !leader_known {
                println!("  (no sentinel leader known)");
            }
            println!("brokers:");
            for b in &status.brokers {
                let decommissioned = if b.decommissioned { "  decommissioned" } else { "" };
                println!(
                    "  {:<6} {:<22} http {:<22} {:<5} {:>5} replicas {:>5} led {:>5} under-replicated{decommissioned}",
                    b.id,
                    b.address,
                    or_dash(&b.http_address),
                    state(b),
                    b.replicas,
                    b.leader_partitions,
                    b.under_replicated,
                );
            }
            for (title, list) in [
                ("partitions without a leader", &status.offline_partitions),
                ("under-replicated partitions", &status.under_replicated_partitions),
            ] {
                if list.is_empty() {
                    println!("{title}: none");
                } else {
                    println!("{title}:");
                    for p in list {
                        println!("  {}/{} (replicas {}, isr {})", p.topic, p.partition, ids(&p.replicas), ids(&p.isr));
                    }
                }
            }
            if problems.is_empty() {
                println!("replicas not served: none");
            } else {
                println!("replicas not served:");
                for (broker, p) in &problems {
                    println!("  broker {broker} {}/{} {}: {}", p.topic, p.partition, p.state, p.reason);
                }
            }
        }
    }
    Ok(leader_known && brokers_up)
}
