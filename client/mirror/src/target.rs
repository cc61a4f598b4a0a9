//! The Goulette cluster records go to: one idempotent producer
//! (`acks=all`, so an acknowledged record is durable and replicated), and
//! the dead-letter topic for records it cannot take.

use std::sync::Arc;

use bytes::Bytes;
use goulette_client::{ClientError, Cluster, Delivery, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1::ErrorCode;

use crate::config::TargetConfig;
use crate::record::MirrorRecord;

/// Header naming why a record is in the dead-letter topic…
pub const HEADER_ERROR: &str = "goulette-mirror-error";
/// …and the topic it was meant for.
pub const HEADER_TOPIC: &str = "goulette-mirror-topic";

/// Where records are written.
#[derive(Debug)]
pub struct Target {
    cluster: Arc<Cluster>,
    producer: Producer,
    dead_letter_topic: Option<String>,
}

impl Target {
    /// A producer to the cluster of `config`.
    pub fn new(config: &TargetConfig) -> Result<Target, ClientError> {
        let cluster = Arc::new(Cluster::new(config.sentinels.clone())?);
        let producer = Producer::new(cluster.clone(), ProducerConfig::default(), Partitioner::KeyHash);
        Ok(Target { cluster, producer, dead_letter_topic: config.dead_letter_topic.clone() })
    }

    /// The cluster written to.
    pub fn cluster(&self) -> Arc<Cluster> {
        self.cluster.clone()
    }

    /// Queues `record` (in call order); the delivery resolves on acknowledgement.
    pub async fn send(&self, record: &MirrorRecord) -> Result<Delivery, ClientError> {
        self.producer.send(producer_record(record)).await
    }

    /// Queues and waits for `record`: its offset.
    pub async fn write(&self, record: &MirrorRecord) -> Result<Option<u64>, ClientError> {
        Ok(self.send(record).await?.wait().await?.offset)
    }

    /// Writes `record` to the dead-letter topic with `error` in its
    /// headers; `None` when there is no dead-letter topic.
    pub async fn dead_letter(&self, record: &MirrorRecord, error: &ClientError) -> Option<Result<(), ClientError>> {
        let topic = self.dead_letter_topic.clone()?;
        let mut letter = record.clone();
        letter.topic = topic;
        // Too large for the topic is too large for the dead letters too:
        // the record goes there without its value.
        if matches!(error, ClientError::Server { code: ErrorCode::TooLarge, .. }) {
            letter.value = Bytes::new();
        }
        letter.headers.push((HEADER_ERROR.into(), Bytes::from(error.to_string())));
        letter.headers.push((HEADER_TOPIC.into(), Bytes::from(record.topic.clone())));
        Some(self.write(&letter).await.map(drop))
    }

    /// Flushes what is queued and stops the producer.
    pub async fn close(self) {
        self.producer.close().await;
    }
}

/// Whether the target will never take the record as it is (sending it
/// again cannot help): it goes to the dead letters.
pub fn unwritable(error: &ClientError) -> bool {
    match error {
        ClientError::Server { code, .. } => matches!(
            code,
            ErrorCode::TooLarge
                | ErrorCode::InvalidBatch
                | ErrorCode::InvalidArgument
                | ErrorCode::InvalidTimestamp
                | ErrorCode::InvalidRecord
        ),
        ClientError::InvalidArgument(_) => true,
        _ => false,
    }
}

fn producer_record(record: &MirrorRecord) -> ProducerRecord {
    ProducerRecord {
        topic: record.topic.clone(),
        partition: record.partition,
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record.headers.clone(),
        timestamp: record.timestamp,
        tombstone: record.tombstone,
    }
}
