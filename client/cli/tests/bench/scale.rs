//! Rows of scale in partitions: creating many, and what idle ones cost.

use std::path::Path;

use crate::common::Env;
use crate::table::{MIB, bench, f, row};

/// Topics of `PER_TOPIC` partitions created for the partition-scale rows:
/// one etcd transaction writes a topic with all its partitions, and the
/// test cluster's etcd takes at most 4,096 operations in one.
const PER_TOPIC: u32 = 1000;

/// Creates `partitions` RF=3 partitions (topics `many-N` of [`PER_TOPIC`]
/// each, created at once); rows for the time until every partition has a
/// leader that serves it, and for the brokers' resident memory per idle
/// partition (open logs, replication sessions, indexes), before and 5 s
/// after.
pub async fn many_partitions(env: &Env, partitions: u32) -> Vec<String> {
    use goulette_proto::v1 as pb;
    let rss = |env: &Env| env.brokers.iter().map(|b| b.memory("VmRSS").unwrap_or(0)).max().unwrap_or(0);
    let before = rss(env);
    let cluster = env.cluster();
    let admin = goulette_client::Admin::new(cluster.clone());
    let topics: Vec<String> = (0..partitions.div_ceil(PER_TOPIC)).map(|t| format!("many-{t}")).collect();
    let started = std::time::Instant::now();
    let mut creations = tokio::task::JoinSet::new();
    for name in &topics {
        let config = pb::TopicConfig {
            name: name.clone(),
            partitions: PER_TOPIC.min(partitions),
            replication_factor: 3,
            ..Default::default()
        };
        let admin = admin.clone();
        creations.spawn(async move { admin.create_topic(config).await });
    }
    while let Some(created) = creations.join_next().await {
        created.unwrap().unwrap();
    }
    // Every partition answers ListOffsets from its leader (opened, leading);
    // after 5 min the row says how many did.
    let limit = std::time::Duration::from_secs(300);
    let mut served = 0;
    'topics: for topic in &topics {
        let mut partition = 0;
        while partition < PER_TOPIC.min(partitions) {
            match cluster.list_offsets(topic, partition, None).await {
                Ok(_) => {
                    partition += 1;
                    served += 1;
                }
                Err(_) if started.elapsed() >= limit => break 'topics,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    let all = served == partitions;
    // Followers need a moment to open their copies and start fetching.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let grown = rss(env).saturating_sub(before) as f64;
    // RF=3 on 3 brokers: each broker holds a replica of every partition.
    let per_partition = grown / 1024.0 / f64::from(partitions);
    vec![
        row(
            &format!("{partitions} partitions, RF=3, 3 brokers: created until all served by a leader"),
            &format!(
                "`Admin::create_topic` ({} topics of {PER_TOPIC}, at once), then `ListOffsets` on each",
                topics.len()
            ),
            if all { format!("{took:.1} s") } else { format!("{served} of {partitions} served after {took:.0} s") },
            "≤ 30 s",
            all && took <= 30.0,
        ),
        row(
            &format!("broker RSS per idle partition, {partitions} partitions (largest of 3 brokers)"),
            "`VmRSS` growth before and 5 s after, over the partitions",
            format!("{per_partition:.1} KiB (+{:.0} MiB)", grown / MIB),
            "≤ 40 KiB",
            per_partition <= 40.0,
        ),
    ]
}

/// 1 KiB durable produce to 1,000 partitions from 10 producers, against the
/// one-partition, one-producer figure of the same broker (`durable-0` in
/// `dir`): what spreading the same traffic over many logs costs.
pub fn wide_producers(env: &Env, dir: &Path) -> String {
    let args = [
        "produce",
        "--topic",
        "wide",
        "--partitions",
        "1000",
        "--producers",
        "10",
        "--message-size",
        "1024",
        "--duration",
        "15s",
        "--delete-topic",
    ];
    let wide = f(&bench(env, &args, dir, "wide"), "messages_per_sec");
    let single = f(&crate::table::read_json(dir, "durable-0"), "messages_per_sec");
    row(
        "1,000 partitions, 10 producers, 1 KiB, durable",
        &format!("`{}`", args.join(" ")),
        format!("{wide:.0} msg/s, {:.0} % of one partition's {single:.0}", 100.0 * wide / single),
        "≥ 70 % of one partition",
        wide >= 0.7 * single,
    )
}
