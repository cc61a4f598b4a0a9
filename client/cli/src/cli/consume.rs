//! `goulette consume`: records to stdout, alone or as a group member.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use goulette_client::ClientError;
use goulette_client::cluster::Cluster;
use goulette_client::consumer::{Consumer, ConsumerConfig, StartAt};
use goulette_client::membership::GroupOptions;

use goulette_proto::v1::ErrorCode;

use super::record_format::{Encoding, RecordFormat, write_record};

/// `consume` options.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    pub topic: String,
    pub start: StartAt,
    pub partition: Option<u32>,
    pub max_messages: Option<u64>,
    pub timeout: Option<Duration>,
    pub window_bytes: u64,
    pub format: RecordFormat,
    pub encoding: Encoding,
    /// Stop once every partition read reached the end it had at the start.
    pub exit_at_end: bool,
    /// Consume as a member of this group (or, with `partition`, only
    /// resume at and commit its offsets).
    pub group: Option<String>,
    pub strategy: String,
    pub session_timeout: Duration,
    /// Wait for a topic that does not exist yet (it is created by its
    /// first producer) instead of failing.
    pub wait_for_topic: bool,
}

/// `consume`: prints records until `max_messages`, `timeout` of silence,
/// or SIGINT/SIGTERM. Output is flushed whenever no record is ready without
/// waiting (once per batch at most), so a watcher sees each record as it
/// comes. With a group, what is printed is committed: auto-commit commits
/// what earlier calls delivered (every second, records or not), everything
/// is flushed before a commit can include it, and a stop by signal commits
/// what was printed and leaves the group (at-least-once, nothing printed
/// twice after a clean stop).
pub async fn consume(cluster: Arc<Cluster>, options: ConsumeOptions) -> anyhow::Result<bool> {
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
        ..ConsumerConfig::default()
    };
    // SIGINT (Ctrl-C) and SIGTERM (timeout, systemd, Kubernetes) end the
    // run like a timeout: what was printed is committed.
    let mut interrupted = std::pin::pin!(super::stop_signal());
    let partitions = tokio::select! {
        found = wait_for_topic(&cluster, &options.topic, options.wait_for_topic, options.timeout) => match found? {
            Some(partitions) => partitions,
            None => return Ok(true), // nothing arrived within the timeout
        },
        _ = &mut interrupted => return Ok(true),
    };
    check_start(&cluster, &options, partitions).await?;
    let mut ends = match options.exit_at_end {
        true => Some(ends_at_start(&cluster, &options, partitions).await?),
        false => None,
    };
    let mut consumer = Consumer::subscribe(cluster, &options.topic, config).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut count = 0u64;
    let mut failed = None;
    while options.max_messages.is_none_or(|max| count < max) && ends.as_ref().is_none_or(|e| !e.is_empty()) {
        // Flushed before the consumer can wait (and, in a group, commit).
        if !consumer.has_buffered() {
            out.flush()?;
        }
        let wait = async {
            match options.timeout {
                Some(t) => tokio::time::timeout(t, consumer.recv()).await.ok(),
                None => Some(consumer.recv().await),
            }
        };
        let next = tokio::select! {
            next = wait => match next {
                Some(next) => next,
                None => break, // nothing arrived within the timeout
            },
            _ = &mut interrupted => break,
        };
        let record = match next {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                failed = Some(e);
                break;
            }
            None => break,
        };
        write_record(&mut out, &options.format, options.encoding, &record)?;
        if let Some(ends) = &mut ends
            && ends.get(&record.partition).is_some_and(|&end| record.offset + 1 >= end)
        {
            ends.remove(&record.partition);
        }
        count += 1;
    }
    out.flush()?;
    // Commits what was printed and leaves the group.
    let closed = consumer.close().await;
    if let Some(e) = failed {
        anyhow::bail!(e);
    }
    closed?;
    Ok(true)
}

/// For `--exit-at-end`: each partition read that has something to read
/// from the start position, with its high watermark now (where the run ends).
async fn ends_at_start(
    cluster: &Cluster,
    options: &ConsumeOptions,
    partitions: u32,
) -> anyhow::Result<BTreeMap<u32, u64>> {
    if options.group.is_some() && options.partition.is_none() {
        anyhow::bail!(
            "--exit-at-end needs --partition with --group: a member's partitions change as members come and go"
        );
    }
    let mut ends = BTreeMap::new();
    for p in options.partition.map_or_else(|| (0..partitions).collect(), |p| vec![p]) {
        let timestamp = match options.start {
            StartAt::Timestamp(ts) => Some(ts),
            _ => None,
        };
        let offsets = cluster.list_offsets(&options.topic, p, timestamp).await?;
        let start = match options.start {
            StartAt::Beginning => offsets.log_start_offset,
            StartAt::End => offsets.high_watermark,
            StartAt::Offset(o) => o.max(offsets.log_start_offset),
            StartAt::Timestamp(_) => offsets.timestamp_offset.unwrap_or(offsets.high_watermark),
        };
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
async fn check_start(cluster: &Cluster, options: &ConsumeOptions, partitions: u32) -> anyhow::Result<()> {
    let StartAt::Offset(offset) = options.start else { return Ok(()) };
    let topic = &options.topic;
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
