//! `goulette consume`: records to stdout, alone or as a group member.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use goulette_client::cluster::Cluster;
use goulette_client::consumer::{Consumer, ConsumerConfig, StartAt};
use goulette_client::membership::GroupOptions;

use super::RecordFormat;

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
    /// Consume as a member of this group (or, with `partition`, only
    /// resume at and commit its offsets).
    pub group: Option<String>,
    pub strategy: String,
    pub session_timeout: Duration,
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
    let mut consumer = Consumer::subscribe(cluster, &options.topic, config).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut count = 0u64;
    // SIGINT (Ctrl-C) and SIGTERM (timeout, systemd, Kubernetes) end the
    // run like a timeout: what was printed is committed.
    let mut interrupted = std::pin::pin!(super::stop_signal());
    let mut failed = None;
    while options.max_messages.is_none_or(|max| count < max) {
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
        match options.format {
            RecordFormat::Value => {
                out.write_all(&record.value)?;
                out.write_all(b"\n")?;
            }
            RecordFormat::Json => {
                let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
                let headers: serde_json::Map<String, serde_json::Value> =
                    record.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(text(v)))).collect();
                let line = serde_json::json!({
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": record.timestamp,
                    "key": record.key.as_ref().map(text),
                    "value": text(&record.value),
                    "headers": headers,
                });
                writeln!(out, "{line}")?;
            }
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
