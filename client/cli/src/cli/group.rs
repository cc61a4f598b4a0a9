//! `goulette group list|describe|reset|delete`.

use std::sync::Arc;

use goulette_proto::v1::{self as pb};

use goulette_client::admin::Admin;
use goulette_client::cluster::Cluster;

use super::Format;

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
    let mut described = Admin::new(cluster.clone()).describe_group(group).await?;
    // A group of Kafka-protocol clients: its members are in its coordinator.
    let mut protocol = "goulette";
    if described.members.is_empty()
        && let Some(kafka) = goulette_client::offsets::describe_kafka_group(&cluster, group).await?
        && (!kafka.members.is_empty() || kafka.state != "Dead")
    {
        protocol = "kafka";
        described.generation = kafka.generation;
        described.strategy = format!("{} ({})", kafka.protocol, kafka.state);
        described.members = kafka.members;
    }
    let committed = goulette_client::offsets::fetch_all(&cluster, group).await?;
    let max_deliveries = described.settings.as_ref().map_or(0, |s| s.max_deliveries);
    if described.members.is_empty() && protocol == "goulette" && committed.is_empty() && max_deliveries == 0 {
        anyhow::bail!("unknown group {group}: it has no members and no committed offsets (see `goulette group list`)");
    }
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
            let json = serde_json::json!({"group": group, "protocol": protocol, "generation": described.generation,
                "strategy": described.strategy, "max_deliveries": (max_deliveries > 0).then_some(max_deliveries),
                "members": members, "partitions": partitions});
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        Format::Text => {
            let strategy = if described.strategy.is_empty() { "-" } else { described.strategy.as_str() };
            println!("group {group}: {protocol} protocol, generation {}, strategy {strategy}", described.generation);
            if max_deliveries > 0 {
                println!("  max_deliveries {max_deliveries}");
            }
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

/// `group alter`: sets the group's settings.
pub async fn group_alter(cluster: Arc<Cluster>, group: &str, max_deliveries: u32) -> anyhow::Result<bool> {
    Admin::new(cluster).alter_group(group, pb::GroupSettings { max_deliveries }).await?;
    println!("group {group}: max_deliveries {max_deliveries}");
    Ok(true)
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
/// `group redrive`.
pub async fn group_redrive(
    cluster: Arc<Cluster>,
    group: &str,
    dead_letter_topic: Option<String>,
    max: Option<u64>,
) -> anyhow::Result<bool> {
    use goulette_client::redrive;
    let topic = dead_letter_topic.unwrap_or_else(|| redrive::dead_letter_topic(group));
    let report = redrive::redrive(cluster, group, &topic, max).await?;
    let total: u64 = report.moved.values().sum();
    println!("{group}: {total} dead letters sent back from {topic}");
    for (source, count) in &report.moved {
        println!("  {count:>8}  to {source}");
    }
    Ok(true)
}

pub async fn group_reset(
    cluster: Arc<Cluster>,
    group: &str,
    topic: &str,
    to: ResetTo,
    dry_run: bool,
) -> anyhow::Result<bool> {
    if !dry_run {
        require_no_members(&cluster, group).await?;
    }
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
    if dry_run {
        let committed = goulette_client::offsets::fetch(&cluster, group, topic).await?;
        for (p, o) in &offsets {
            let now = committed.get(p).map_or_else(|| "none".to_owned(), u64::to_string);
            println!("{group} {topic}/{p}: {now} -> {o} (dry run: not committed)");
        }
        return Ok(true);
    }
    goulette_client::offsets::commit(&cluster, group, topic, &offsets, None).await?;
    for (p, o) in &offsets {
        println!("{group} {topic}/{p} -> {o}");
    }
    Ok(true)
}
