//! Prints topic `demo` from its first retained record, then follows it
//! (Ctrl-C ends).
//!
//! ```text
//! cargo run -p goulette-client --example consumer
//! ```
//!
//! `GOULETTE_SENTINELS` (comma-separated `host:port`) names the sentinels.

use std::sync::Arc;

use goulette_client::{Cluster, Consumer, ConsumerConfig, Result, StartAt};

#[tokio::main]
async fn main() -> Result<()> {
    let sentinels = std::env::var("GOULETTE_SENTINELS").unwrap_or_else(|_| "127.0.0.1:50052".into());
    let cluster = Arc::new(Cluster::new(sentinels.split(',').map(str::to_owned).collect())?);
    let config = ConsumerConfig { start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(cluster, "demo", config).await?;
    loop {
        tokio::select! {
            record = consumer.recv() => match record {
                Some(record) => {
                    let record = record?;
                    let key = record.key.as_deref().map(String::from_utf8_lossy);
                    println!(
                        "{}/{}@{} key={key:?} {}",
                        record.topic,
                        record.partition,
                        record.offset,
                        String::from_utf8_lossy(&record.value)
                    );
                }
                // Every partition stopped (the topic was deleted).
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    consumer.close().await
}
