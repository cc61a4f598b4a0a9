//! `goulette cluster status` and `goulette broker decommission|recommission`.

use std::sync::Arc;
use std::time::Duration;

use goulette_proto::v1::{self as pb};

use goulette_client::admin::Admin;
use goulette_client::cluster::Cluster;

use super::{Format, ids};

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

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// Each sentinel's own report of whether it reaches etcd: `None` when it
/// did not answer within 2 s.
async fn sentinels_etcd(cluster: &Cluster, sentinels: &[pb::SentinelInfo]) -> Vec<Option<bool>> {
    let ask = |address: String| async move {
        let channel = cluster.channel(&address).ok()?;
        let mut client =
            pb::sentinel_service_client::SentinelServiceClient::new(goulette_proto::channel::authorized(channel));
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
        let mut client =
            pb::broker_service_client::BrokerServiceClient::new(goulette_proto::channel::authorized(channel));
        let call = client.replica_problems(pb::ReplicaProblemsRequest {});
        Some(tokio::time::timeout(Duration::from_secs(2), call).await.ok()?.ok()?.into_inner().problems)
    };
    let mut out = Vec::new();
    for b in brokers.iter().filter(|b| b.state == pb::BrokerState::Up as i32) {
        out.extend(ask(b.address.clone()).await.unwrap_or_default().into_iter().map(|p| (b.id, p)));
    }
    out
}

/// The sentinels this command was given (`--sentinels`) that are not
/// registered: a stopped one no longer registers, so only the list given
/// can tell that it is missing. Each is asked directly; `true`: it answered.
async fn unregistered_sentinels(cluster: &Cluster, registered: &[pb::SentinelInfo]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for address in cluster.sentinel_addresses() {
        if registered.iter().any(|s| &s.address == address) {
            continue;
        }
        let answered = match cluster.channel(address) {
            Ok(channel) => {
                let mut client = pb::sentinel_service_client::SentinelServiceClient::new(
                    goulette_proto::channel::authorized(channel),
                );
                let call = client.cluster_status(pb::ClusterStatusRequest {});
                matches!(tokio::time::timeout(Duration::from_secs(2), call).await, Ok(Ok(_)))
            }
            Err(_) => false,
        };
        out.push((address.clone(), answered));
    }
    out
}

/// `cluster status`: succeeds only when a sentinel leader is known, every
/// sentinel given with `--sentinels` answers, and every registered broker
/// is up.
pub async fn cluster_status(cluster: Arc<Cluster>, format: Format) -> anyhow::Result<bool> {
    let status = Admin::new(cluster.clone()).cluster_status().await?;
    let etcd = sentinels_etcd(&cluster, &status.sentinels).await;
    // A sentinel given but not registered is down, unless it answers (it
    // may be registered under another address, e.g. a hostname).
    let missing = unregistered_sentinels(&cluster, &status.sentinels).await;
    let sentinels_up = missing.iter().all(|(_, answered)| *answered);
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
                "sentinels_not_registered": missing.iter().map(|(address, answered)| serde_json::json!({
                    "address": address, "state": if *answered { "answers" } else { "down" },
                })).collect::<Vec<_>>(),
                "metadata_version": status.metadata_version,
                "healthy": leader_known && brokers_up && sentinels_up,
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
            for (address, answered) in &missing {
                let state = if *answered { "answers, not registered under this address" } else { "down" };
                println!("  {:<16} {:<22} {state}", "(given)", address);
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
    Ok(leader_known && brokers_up && sentinels_up)
}
