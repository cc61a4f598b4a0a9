//! One topic read by `goulette consume`: waiting for it to exist,
//! checking the start options against it, and, with `--exit-at-end`,
//! stopping at the end its partitions had at the start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use goulette_client::ClientError;
use goulette_client::cluster::Cluster;
use goulette_client::consumer::{ConsumedRecord, Consumer, ConsumerConfig, StartAt};
use goulette_client::membership::GroupOptions;
use goulette_proto::v1::ErrorCode;

use super::consume_options::ConsumeOptions;

/// A subscribed topic.
pub(super) struct TopicReader {
    consumer: Consumer,
    /// With `--exit-at-end`: the partitions not read to their end yet.
    ends: Option<BTreeMap<u32, u64>>,
}

impl TopicReader {
    /// Subscribes to `topic`, waiting for it to exist unless told not to;
    /// `None` when `options.timeout` passed first.
    pub(super) async fn open(
        cluster: Arc<Cluster>,
        options: &ConsumeOptions,
        topic: &str,
    ) -> anyhow::Result<Option<TopicReader>> {
        let Some(partitions) = wait_for_topic(&cluster, topic, options.wait_for_topic, options.timeout).await? else {
            return Ok(None);
        };
        check_start(&cluster, options, topic, partitions).await?;
        let ends = match options.exit_at_end {
            true => Some(ends_at_start(&cluster, options, topic, partitions).await?),
            false => None,
        };
        let grouped = options.group.is_some();
        let membership = (grouped && options.partition.is_none()).then(|| GroupOptions {
            strategy: options.strategy.clone(),
            session_timeout: options.session_timeout,
            client_id: "goulette-cli".into(),
        });
        let config = ConsumerConfig {
            partitions: options.partition.map(|p| vec![p]),
            start: options.start,
            window_bytes: options.window_bytes,
            group: options.group.clone(),
            auto_commit: grouped.then_some(Duration::from_secs(1)),
            membership,
            tag_filter: options.tags.clone(),
            ..ConsumerConfig::default()
        };
        let consumer = Consumer::subscribe(cluster, topic, config).await?;
        Ok(Some(TopicReader { consumer, ends }))
    }

    /// The next record; `None` once every partition reached its end (with
    /// `--exit-at-end`) or the consumer stopped.
    pub(super) async fn next(&mut self) -> Option<goulette_client::Result<ConsumedRecord>> {
        if self.ends.as_ref().is_some_and(BTreeMap::is_empty) {
            return None;
        }
        let next = match &mut self.ends {
            None => self.consumer.recv().await,
            // A tag filter may leave a partition's last records out: the
            // consumer's position, not a record, then says it reached its
            // end (recv is cancel-safe).
            Some(ends) => loop {
                tokio::select! {
                    next = self.consumer.recv() => break next,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {
                        let positions = self.consumer.positions();
                        ends.retain(|p, end| positions.get(p).is_none_or(|position| position < end));
                        if ends.is_empty() {
                            return None;
                        }
                    }
                }
            },
        };
        if let (Some(Ok(record)), Some(ends)) = (&next, &mut self.ends)
            && ends.get(&record.partition).is_some_and(|&end| record.offset + 1 >= end)
        {
            ends.remove(&record.partition);
        }
        next
    }

    /// Whether a record is ready without waiting.
    pub(super) fn has_buffered(&self) -> bool {
        self.consumer.has_buffered()
    }

    /// Commits what was delivered (in a group) and leaves.
    pub(super) async fn close(self) -> goulette_client::Result<()> {
        self.consumer.close().await
    }
}

/// For `--exit-at-end`: each partition read that has something to read
/// from the start position, with its high watermark now (where the run ends).
async fn ends_at_start(
    cluster: &Cluster,
    options: &ConsumeOptions,
    topic: &str,
    partitions: u32,
) -> anyhow::Result<BTreeMap<u32, u64>> {
    if options.group.is_some() && options.partition.is_none() {
        anyhow::bail!(
            "--exit-at-end needs --partition with --group: a member's partitions change as members come and go"
        );
    }
    let mut ends = BTreeMap::new();
    for p in options.partition.map_or_else(|| (0..partitions).collect(), |p| vec![p]) {
        let offsets = cluster.list_offsets(topic, p, options.start.timestamp()).await?;
        let start = options.start.resolve(&offsets);
        if start < offsets.high_watermark {
            ends.insert(p, offsets.high_watermark);
        }
    }
    Ok(ends)
}

/// Waits until `topic` exists, saying so once (a consumer may start before
/// the producer that creates the topic); its partition count, or `None`
/// when `timeout` passed first. Without `wait`, a missing topic is an error.
async fn wait_for_topic(
    cluster: &Cluster,
    topic: &str,
    wait: bool,
    timeout: Option<Duration>,
) -> anyhow::Result<Option<u32>> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut said = false;
    loop {
        match cluster.topic(topic, false).await {
            Ok(info) => return Ok(Some(info.partitions.len() as u32)),
            Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. }) if wait => {}
            Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. }) => {
                anyhow::bail!("topic {topic} does not exist (without --no-wait, consume waits for it to be created)")
            }
            Err(e) => return Err(e.into()),
        }
        if !said {
            eprintln!("waiting for topic {topic} to be created (--no-wait: fail instead)");
            said = true;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Refuses start options that cannot mean what they say, and tells when
/// an offset asked for is not where the log is.
async fn check_start(cluster: &Cluster, options: &ConsumeOptions, topic: &str, partitions: u32) -> anyhow::Result<()> {
    let StartAt::Offset(offset) = options.start else { return Ok(()) };
    let partition = match options.partition {
        Some(p) => p,
        None if partitions == 1 => 0,
        None => anyhow::bail!(
            "--offset {offset} needs --partition: an offset is a position in one partition, and topic {topic} has {partitions}"
        ),
    };
    if options.group.is_some() {
        return Ok(()); // the group's committed offset wins where it has one
    }
    let offsets = cluster.list_offsets(topic, partition, None).await?;
    if offset > offsets.high_watermark {
        eprintln!(
            "offset {offset} is past the end of {topic}/{partition} (its next offset is {}): waiting for new messages from there",
            offsets.high_watermark
        );
    } else if offset < offsets.log_start_offset {
        eprintln!(
            "offset {offset} of {topic}/{partition} is no longer held (deleted by retention or on request): starting at {}",
            offsets.log_start_offset
        );
    }
    Ok(())
}
