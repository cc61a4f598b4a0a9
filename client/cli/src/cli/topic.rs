//! `goulette topic create|list|describe|alter|add-partitions|delete`.

use std::sync::Arc;

use goulette_proto::v1::{self as pb};

use goulette_client::admin::Admin;
use goulette_client::cluster::Cluster;

use super::{Format, ids, leader};

/// `topic create`.
pub async fn topic_create(cluster: Arc<Cluster>, config: pb::TopicConfig) -> anyhow::Result<bool> {
    let topic = Admin::new(cluster).create_topic(config).await?;
    println!("created topic {} with {} partitions", topic.name, topic.partitions.len());
    for p in &topic.partitions {
        println!("  partition {:>4}  leader {:>4}  replicas {}", p.partition, leader(p.leader), ids(&p.replicas));
    }
    Ok(true)
}

/// `topic alter`.
pub async fn topic_alter(cluster: Arc<Cluster>, req: pb::AlterTopicRequest) -> anyhow::Result<bool> {
    let unchanged =
        pb::AlterTopicRequest { name: req.name.clone(), validate_only: req.validate_only, ..Default::default() };
    if req == unchanged {
        anyhow::bail!(
            "nothing to change: give --retention-ms, --retention-bytes, --min-insync-replicas, \
             --unclean-leader-election or a cleanup option (--cleanup-policy, …)"
        );
    }
    let topic = Admin::new(cluster).alter_topic(req).await?;
    let c = topic.config.unwrap_or_default();
    let settings = goulette_client::admin::effective_settings(&c, &[]);
    let shown: Vec<String> = settings.iter().map(|s| format!("{}={}", s.name, s.value)).collect();
    println!("topic {}: {}", topic.name, shown.join(" "));
    Ok(true)
}

/// `topic add-partitions`.
pub async fn topic_add_partitions(cluster: Arc<Cluster>, name: &str, total: u32) -> anyhow::Result<bool> {
    let topic = Admin::new(cluster).add_partitions(name, total).await?;
    println!("topic {} now has {} partitions", topic.name, topic.partitions.len());
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
                "topic {}  partitions {}  replication factor {}",
                report.name, report.partitions, report.replication_factor
            );
            for s in &report.settings {
                let default = if s.default { "  (default)" } else { "" };
                println!("  {:<24} {}{default}", s.name, s.value);
            }
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
