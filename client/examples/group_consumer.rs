//! A member of consumer group `demo-readers` on topic `demo`: run it in two
//! terminals and the group splits the partitions between them; stop one and
//! the other takes its partitions over. Offsets are committed every second
//! and on exit, so a restarted member resumes where the group left off.
//!
//! ```text
//! cargo run -p goulette-client --example group_consumer
//! ```
//!
//! `GOULETTE_SENTINELS` (comma-separated `host:port`) names the sentinels.

use std::sync::Arc;
use std::time::Duration;

use goulette_client::{ClientError, Cluster, Consumer, ConsumerConfig, ErrorCode, GroupOptions, Result, StartAt};

#[tokio::main]
async fn main() -> Result<()> {
    let sentinels = std::env::var("GOULETTE_SENTINELS").unwrap_or_else(|_| "127.0.0.1:50052".into());
    let cluster = Arc::new(Cluster::new(sentinels.split(',').map(str::to_owned).collect())?);
    let config = ConsumerConfig {
        // Where partitions the group never committed start.
        start: StartAt::Beginning,
        group: Some("demo-readers".into()),
        auto_commit: Some(Duration::from_secs(1)),
        membership: Some(GroupOptions { client_id: format!("example-{}", std::process::id()), ..Default::default() }),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::subscribe(cluster, "demo", config).await?;
    loop {
        tokio::select! {
            record = consumer.recv() => match record {
                Some(Ok(record)) => println!(
                    "generation {}: {}/{}@{} {}",
                    consumer.generation(),
                    record.topic,
                    record.partition,
                    record.offset,
                    String::from_utf8_lossy(&record.value)
                ),
                Some(Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. })) => {
                    eprintln!("no topic demo yet: run the producer example first");
                    break;
                }
                Some(Err(e)) => return Err(e),
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Commits what was printed and leaves the group, so the others take its
    // partitions at once instead of after the session timeout.
    consumer.close().await
}
