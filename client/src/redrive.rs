//! Moving a group's dead letters back to where they came from
//! (`goulette group redrive`).
//!
//! A dead letter (written by [`crate::handler`] or [`crate::nack`]) carries its source topic,
//! partition, offset and timestamp in `goulette.dlq.*` headers. A redrive
//! reads the group's dead-letter topic from where the group's last redrive
//! stopped (the group's committed offset on that topic: a group's commits
//! are per topic, so this cursor never touches its position on its source
//! topics) up to the dead-letter topic's end when the redrive began, and
//! produces each record again to its source topic and partition, with its
//! key, value, original timestamp and headers (the `goulette.dlq.*` ones
//! dropped). The cursor is committed once what precedes it is
//! acknowledged (`acks=all`), in steps of [`STEP`] records: a redrive
//! stopped midway resumes where it stopped, and at worst sends again the
//! step it was in (at least once, never skipping a dead letter).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::consumer::{ConsumedRecord, Consumer, ConsumerConfig, StartAt};
use crate::dead_letter::{HEADER_SOURCE_PARTITION, HEADER_SOURCE_TIMESTAMP, HEADER_SOURCE_TOPIC};
use crate::error::{ClientError, Result};
use crate::partitioner::Partitioner;
use crate::producer::{Delivery, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1::Acks;

/// Records acknowledged between two commits of the cursor.
pub const STEP: usize = 1000;

/// The prefix of the headers a dead letter gains (and a redrive drops).
const DLQ_HEADER_PREFIX: &str = "goulette.dlq.";

pub use crate::dead_letter::dead_letter_topic;

/// What a redrive moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Records sent back, per source topic.
    pub moved: BTreeMap<String, u64>,
    /// The cursor committed per dead-letter partition (the next to read).
    pub cursor: BTreeMap<u32, u64>,
}

/// The record to send back for dead letter `r`.
fn source_record(r: &ConsumedRecord) -> Result<ProducerRecord> {
    let header = |name: &str| {
        r.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok().map(str::to_owned))
    };
    let topic = header(HEADER_SOURCE_TOPIC).ok_or_else(|| {
        ClientError::InvalidArgument(format!(
            "{}/{}@{}: a dead letter without a {HEADER_SOURCE_TOPIC} header: it cannot be sent back",
            r.topic, r.partition, r.offset
        ))
    })?;
    Ok(ProducerRecord {
        topic,
        partition: header(HEADER_SOURCE_PARTITION).and_then(|p| p.parse().ok()),
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r.headers.iter().filter(|(k, _)| !k.starts_with(DLQ_HEADER_PREFIX)).cloned().collect(),
        timestamp: header(HEADER_SOURCE_TIMESTAMP).and_then(|t| t.parse().ok()),
        tombstone: r.tombstone,
    })
}

/// Sends `group`'s dead letters in `dead_letters` back to their source
/// topics (see the module doc), at most `max` of them.
pub async fn redrive(
    cluster: Arc<Cluster>,
    group: &str,
    dead_letters: &str,
    max: Option<u64>,
) -> Result<RedriveReport> {
    let info = cluster.topic(dead_letters, false).await?;
    let mut ends = BTreeMap::new();
    for p in &info.partitions {
        ends.insert(p.partition, cluster.list_offsets(dead_letters, p.partition, None).await?.high_watermark);
    }
    let committed = crate::offsets::fetch(&cluster, group, dead_letters).await?;
    let mut report = RedriveReport::default();
    let pending: Vec<u32> =
        ends.iter().filter(|(p, end)| committed.get(p).is_none_or(|c| c < end)).map(|(p, _)| *p).collect();
    if pending.is_empty() {
        return Ok(report);
    }
    let config = ConsumerConfig {
        group: Some(group.to_owned()),
        start: StartAt::Beginning,
        partitions: Some(pending.clone()),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::subscribe(cluster.clone(), dead_letters, config).await?;
    let producer = Producer::new(
        cluster.clone(),
        ProducerConfig { acks: Acks::All, ..ProducerConfig::default() },
        Partitioner::KeyHash,
    );
    let mut step: Vec<(u32, u64, Delivery)> = Vec::new();
    let mut sent = 0u64;
    // A partition's position is known from its first fetch on.
    let done =
        |consumer: &Consumer| pending.iter().all(|p| consumer.positions().get(p).is_some_and(|at| *at >= ends[p]));
    let result: Result<()> = async {
        while !done(&consumer) && max.is_none_or(|m| sent < m) {
            let r = match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
                Ok(Some(r)) => r?,
                Ok(None) => break,
                Err(_) => {
                    let context = format!("reading dead letters from {dead_letters}");
                    return Err(ClientError::Transport { context, status: "nothing arrived for 30 s".into() });
                }
            };
            if r.offset >= ends[&r.partition] {
                continue; // written after the redrive began: the next one's
            }
            let record = source_record(&r)?;
            *report.moved.entry(record.topic.clone()).or_default() += 1;
            step.push((r.partition, r.offset, producer.send(record).await?));
            sent += 1;
            if step.len() >= STEP {
                settle(&cluster, group, dead_letters, &mut step, &mut report).await?;
            }
        }
        Ok(())
    }
    .await;
    // What was sent before a failure is committed as far as acknowledged.
    let settled = settle(&cluster, group, dead_letters, &mut step, &mut report).await;
    producer.close().await;
    result.and(settled).map(|()| report)
}

/// Waits for the step's acknowledgements in order and commits the cursor
/// past the last acknowledged record of each partition.
async fn settle(
    cluster: &Arc<Cluster>,
    group: &str,
    dead_letters: &str,
    step: &mut Vec<(u32, u64, Delivery)>,
    report: &mut RedriveReport,
) -> Result<()> {
    let mut cursor = BTreeMap::new();
    let mut failed = None;
    for (partition, offset, delivery) in step.drain(..) {
        if failed.is_some() {
            continue;
        }
        match delivery.wait().await {
            Ok(_) => {
                cursor.insert(partition, offset + 1);
            }
            Err(e) => failed = Some(e),
        }
    }
    if !cursor.is_empty() {
        crate::offsets::commit(cluster, group, dead_letters, &cursor, None).await?;
        report.cursor.extend(cursor);
    }
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn a_dead_letter_goes_back_as_it_came_without_the_dlq_headers() {
        let r = ConsumedRecord {
            topic: "g.dlq".into(),
            partition: 1,
            offset: 7,
            timestamp: 5,
            key: Some(Bytes::from("k")),
            value: Bytes::from("v"),
            headers: vec![
                ("trace".into(), Bytes::from("t1")),
                (HEADER_SOURCE_TOPIC.into(), Bytes::from("orders")),
                (HEADER_SOURCE_PARTITION.into(), Bytes::from("3")),
                (HEADER_SOURCE_TIMESTAMP.into(), Bytes::from("1234")),
                ("goulette.dlq.error".into(), Bytes::from("boom")),
            ],
            tombstone: false,
        };
        let back = source_record(&r).unwrap();
        assert_eq!((back.topic.as_str(), back.partition, back.timestamp), ("orders", Some(3), Some(1234)));
        assert_eq!(back.headers, vec![("trace".to_owned(), Bytes::from("t1"))]);
        assert_eq!((back.key, back.value), (Some(Bytes::from("k")), Bytes::from("v")));
        let stray = ConsumedRecord { headers: vec![], ..r };
        assert!(source_record(&stray).unwrap_err().to_string().contains("g.dlq/1@7"));
        assert_eq!(dead_letter_topic("shipping"), "shipping.dlq");
    }
}
