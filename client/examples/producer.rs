//! Sends a few keyed records to topic `demo` and prints where each landed.
//!
//! ```text
//! make run-all                                  # a local cluster
//! cargo run -p goulette-client --example producer
//! ```
//!
//! `GOULETTE_SENTINELS` (comma-separated `host:port`) names the sentinels;
//! the default is the one `make run-all` starts.

use std::sync::Arc;

use goulette_client::{
    Acks, Bytes, Cluster, Compression, Partitioner, Producer, ProducerConfig, ProducerRecord, Result,
};

#[tokio::main]
async fn main() -> Result<()> {
    let sentinels = std::env::var("GOULETTE_SENTINELS").unwrap_or_else(|_| "127.0.0.1:50052".into());
    let cluster = Arc::new(Cluster::new(sentinels.split(',').map(str::to_owned).collect())?);
    let config = ProducerConfig { acks: Acks::All, compression: Compression::Lz4, ..ProducerConfig::default() };
    // The topic is created on first use (`auto_create_topics`).
    let producer = Producer::new(cluster, config, Partitioner::KeyHash);

    // `send` returns once the record is batched; the delivery resolves when
    // the brokers acknowledge it, so many records can be in flight at once.
    let mut deliveries = Vec::new();
    for i in 0..10 {
        let record = ProducerRecord {
            topic: "demo".into(),
            key: Some(Bytes::from(format!("user-{}", i % 3))),
            value: Bytes::from(format!("hello {i}")),
            headers: vec![("source".into(), Bytes::from_static(b"example"))],
            ..ProducerRecord::default()
        };
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        let metadata = delivery.wait().await?;
        println!("{}/{} at offset {:?}", metadata.topic, metadata.partition, metadata.offset);
    }
    producer.close().await;
    Ok(())
}
