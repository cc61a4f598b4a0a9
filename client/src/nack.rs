//! Negative acknowledgement: a group consumer that cannot handle a record
//! now hands it back, to be delivered to the group again later, without
//! holding up the rest of its partition (`docs/redelivery.md`).
//!
//! A nacked record is written to the group's retry topic (`GROUP.retry`)
//! as a delayed record (`docs/delayed.md`) carrying its source and how many
//! times it was delivered. The group reads its retry topic beside its
//! source topics; a record that comes back and fails again is nacked with
//! its count plus one. After `max_deliveries` deliveries it goes to the
//! group's dead-letter topic (`GROUP.dlq`) with the headers of
//! [`crate::dead_letter`], which `goulette group redrive` reads. The count lives
//! in the record, in the log: neither a restart nor a coordinator move
//! resets it.
//!
//! The write is acknowledged by every in-sync replica, idempotently (a
//! retried send is stored once, even across a leader change), before
//! [`Redelivery::nack`] returns; the caller commits past the record only
//! then, so a record is never dropped, and once committed it is never
//! nacked twice.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_proto::v1::{self as pb, ErrorCode};

use crate::cluster::Cluster;
use crate::consumer::ConsumedRecord;
use crate::dead_letter::{
    HEADER_ATTEMPTS, HEADER_ERROR, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TIMESTAMP,
    HEADER_SOURCE_TOPIC, dead_letter_topic,
};
use crate::error::{ClientError, Result};
use crate::partitioner::Partitioner;
use crate::producer::{Producer, ProducerConfig, ProducerRecord};

/// Header of a retry record: how many times its record was delivered.
pub const HEADER_DELIVERIES: &str = "goulette.retry.deliveries";
/// Header of a retry record: the topic its record was first consumed from.
pub const HEADER_RETRY_TOPIC: &str = "goulette.retry.source-topic";
/// Header of a retry record: that record's partition (decimal).
pub const HEADER_RETRY_PARTITION: &str = "goulette.retry.source-partition";
/// Header of a retry record: that record's offset (decimal).
pub const HEADER_RETRY_OFFSET: &str = "goulette.retry.source-offset";
/// Header of a retry record: that record's timestamp (ms, decimal).
pub const HEADER_RETRY_TIMESTAMP: &str = "goulette.retry.source-timestamp";
/// Header of a retry record: the error of its last delivery.
pub const HEADER_RETRY_ERROR: &str = "goulette.retry.error";

/// Deliveries of a record when its group's `max_deliveries` was never set.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// The retry topic of `group`.
pub fn retry_topic(group: &str) -> String {
    format!("{group}.retry")
}

/// What became of a nacked record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nacked {
    /// Written to the retry topic: delivered again, for the
    /// `deliveries`-th time, from `due_ms` on.
    Redelivered { deliveries: u32, due_ms: i64 },
    /// Delivered `deliveries` times, the last allowed: written to the
    /// dead-letter topic.
    DeadLettered { deliveries: u32 },
}

/// A group's redelivery: its retry and dead-letter topics, and the most
/// deliveries a record gets.
#[derive(Debug)]
pub struct Redelivery {
    cluster: Arc<Cluster>,
    producer: Producer,
    group: String,
    max_deliveries: u32,
}

/// Where a consumed record first came from, and how often it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Source {
    topic: String,
    partition: u32,
    offset: u64,
    timestamp: i64,
    deliveries: u32,
}

impl Source {
    /// From a retry record's headers, or the record itself on its first
    /// delivery.
    fn of(record: &ConsumedRecord) -> Source {
        let header = |name: &str| {
            record.headers.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let retried = (|| {
            Some(Source {
                topic: header(HEADER_RETRY_TOPIC)?.to_owned(),
                partition: header(HEADER_RETRY_PARTITION)?.parse().ok()?,
                offset: header(HEADER_RETRY_OFFSET)?.parse().ok()?,
                timestamp: header(HEADER_RETRY_TIMESTAMP)?.parse().ok()?,
                deliveries: header(HEADER_DELIVERIES)?.parse().ok()?,
            })
        })();
        retried.unwrap_or_else(|| Source {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            deliveries: 1,
        })
    }
}

/// How many times `record` was delivered, this delivery included.
pub fn deliveries(record: &ConsumedRecord) -> u32 {
    Source::of(record).deliveries
}

/// The record's own headers, without those of redelivery, dead letters
/// and delayed delivery (they are written afresh).
fn own_headers(record: &ConsumedRecord) -> Vec<(String, Bytes)> {
    record
        .headers
        .iter()
        .filter(|(name, _)| {
            !(name.starts_with("goulette.retry.")
                || name.starts_with("goulette.dlq.")
                || name.starts_with("goulette-deliver")
                || name.starts_with("goulette-delay"))
        })
        .cloned()
        .collect()
}

impl Redelivery {
    /// Redelivery for `group`: at most `max_deliveries` deliveries of a
    /// record (at least 1), the first included.
    pub fn new(cluster: Arc<Cluster>, group: &str, max_deliveries: u32) -> Redelivery {
        let config = ProducerConfig { acks: pb::Acks::All, idempotent: true, ..ProducerConfig::default() };
        Redelivery {
            producer: Producer::new(cluster.clone(), config, Partitioner::KeyHash),
            cluster,
            group: group.to_owned(),
            max_deliveries: max_deliveries.max(1),
        }
    }

    /// Redelivery for `group` with its `max_deliveries` as set with `goulette
    /// group alter` (kept by the cluster), or [`DEFAULT_MAX_DELIVERIES`]
    /// when it was never set.
    pub async fn for_group(cluster: Arc<Cluster>, group: &str) -> Result<Redelivery> {
        let described = crate::Admin::new(cluster.clone()).describe_group(group).await?;
        let max = described.settings.map_or(0, |s| s.max_deliveries);
        Ok(Redelivery::new(cluster, group, if max == 0 { DEFAULT_MAX_DELIVERIES } else { max }))
    }

    /// The group's retry topic, which its members read beside their own.
    pub fn retry_topic(&self) -> String {
        retry_topic(&self.group)
    }

    /// Hands `record` back after a failed delivery (`error` says why): to
    /// be delivered again after `delay`, or, delivered `max_deliveries`
    /// times already, to the dead-letter topic. Returns once the write is
    /// acknowledged; commit past the record only then.
    pub async fn nack(&self, record: &ConsumedRecord, delay: Duration, error: &str) -> Result<Nacked> {
        let source = Source::of(record);
        let mut headers = own_headers(record);
        let (topic, outcome) = if source.deliveries >= self.max_deliveries {
            headers.extend([
                (HEADER_SOURCE_TOPIC.to_owned(), Bytes::from(source.topic.clone())),
                (HEADER_SOURCE_PARTITION.to_owned(), Bytes::from(source.partition.to_string())),
                (HEADER_SOURCE_OFFSET.to_owned(), Bytes::from(source.offset.to_string())),
                (HEADER_ERROR.to_owned(), Bytes::from(error.to_owned())),
                (HEADER_ATTEMPTS.to_owned(), Bytes::from(source.deliveries.to_string())),
                (HEADER_SOURCE_TIMESTAMP.to_owned(), Bytes::from(source.timestamp.to_string())),
            ]);
            (dead_letter_topic(&self.group), Nacked::DeadLettered { deliveries: source.deliveries })
        } else {
            let deliveries = source.deliveries + 1;
            let due_ms = goulette_batch::now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            headers.extend([
                (HEADER_RETRY_TOPIC.to_owned(), Bytes::from(source.topic.clone())),
                (HEADER_RETRY_PARTITION.to_owned(), Bytes::from(source.partition.to_string())),
                (HEADER_RETRY_OFFSET.to_owned(), Bytes::from(source.offset.to_string())),
                (HEADER_RETRY_TIMESTAMP.to_owned(), Bytes::from(source.timestamp.to_string())),
                (HEADER_DELIVERIES.to_owned(), Bytes::from(deliveries.to_string())),
                (HEADER_RETRY_ERROR.to_owned(), Bytes::from(error.to_owned())),
                (goulette_batch::delayed::DELIVER_AT_HEADER.to_owned(), Bytes::from(due_ms.to_string())),
            ]);
            (self.retry_topic(), Nacked::Redelivered { deliveries, due_ms })
        };
        self.ensure_topic(&topic, &source.topic).await?;
        let letter = ProducerRecord {
            topic,
            key: record.key.clone(),
            value: record.value.clone(),
            headers,
            tombstone: record.tombstone,
            ..ProducerRecord::default()
        };
        self.producer.send(letter).await?.wait().await?;
        Ok(outcome)
    }

    /// Creates the group's retry and dead-letter topics, like `source`
    /// (its partitions and replication), unless they exist: before a
    /// consumer subscribes to the retry topic. [`Redelivery::nack`] creates
    /// them too when missing.
    pub async fn prepare(&self, source: &str) -> Result<()> {
        self.ensure_topic(&self.retry_topic(), source).await?;
        self.ensure_topic(&dead_letter_topic(&self.group), source).await
    }

    /// Creates `topic` like `like` (partitions, replication) unless it
    /// exists. Asked of the client's metadata cache, as a produce would:
    /// a nack costs no call to the sentinels once the topic is known.
    async fn ensure_topic(&self, topic: &str, like: &str) -> Result<()> {
        match self.cluster.topic(topic, false).await {
            Ok(_) => return Ok(()),
            Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. }) => {}
            Err(e) => return Err(e),
        }
        let config = self.cluster.topic(like, false).await?.config;
        let wanted = pb::TopicConfig {
            name: topic.to_owned(),
            partitions: config.partitions.max(1),
            replication_factor: config.replication_factor.max(1),
            ..pb::TopicConfig::default()
        };
        match self.cluster.create_topic(wanted).await {
            Ok(_) | Err(ClientError::Server { code: ErrorCode::TopicExists, .. }) => {}
            Err(e) => return Err(e),
        }
        self.cluster.invalidate(topic);
        Ok(())
    }

    /// Sends what is pending and stops.
    pub async fn close(self) {
        self.producer.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumed(headers: &[(&str, &str)]) -> ConsumedRecord {
        ConsumedRecord {
            topic: Arc::from("orders"),
            partition: 2,
            offset: 40,
            timestamp: 7,
            key: None,
            value: Bytes::from_static(b"v"),
            headers: headers.iter().map(|(n, v)| ((*n).to_owned(), Bytes::from((*v).to_owned()))).collect(),
            tombstone: false,
        }
    }

    #[test]
    fn a_first_delivery_is_its_own_source_and_a_retry_names_it() {
        let first = consumed(&[("app", "1")]);
        assert_eq!(
            Source::of(&first),
            Source { topic: "orders".into(), partition: 2, offset: 40, timestamp: 7, deliveries: 1 }
        );
        let retry = consumed(&[
            ("app", "1"),
            (HEADER_RETRY_TOPIC, "payments"),
            (HEADER_RETRY_PARTITION, "0"),
            (HEADER_RETRY_OFFSET, "9"),
            (HEADER_RETRY_TIMESTAMP, "3"),
            (HEADER_DELIVERIES, "2"),
            (goulette_batch::delayed::DELAYED_FROM_HEADER, "12"),
        ]);
        assert_eq!(
            Source::of(&retry),
            Source { topic: "payments".into(), partition: 0, offset: 9, timestamp: 3, deliveries: 2 }
        );
        assert_eq!(own_headers(&retry), [("app".to_owned(), Bytes::from_static(b"1"))]);
    }
}
