//! `goulette consume`: records of one topic or several to stdout, alone or
//! as a group member (one topic).

use std::io::Write;
use std::sync::Arc;

use goulette_client::cluster::Cluster;
use goulette_client::consumer::ConsumedRecord;

pub use super::consume_options::ConsumeOptions;
use super::record_format::write_record;
use super::topic_reader::TopicReader;

/// `consume`: prints records until `max_messages`, `timeout` of silence,
/// or SIGINT/SIGTERM. Output is flushed whenever no record is ready without
/// waiting (once per batch at most), so a watcher sees each record as it
/// comes. With a group, what is printed is committed: auto-commit commits
/// what earlier calls delivered (every second, records or not), everything
/// is flushed before a commit can include it, and a stop by signal commits
/// what was printed and leaves the group (at-least-once, nothing printed
/// twice after a clean stop). Several topics are read at once, each by its
/// own task, interleaved as their records arrive (not with a group: a
/// member commits what it printed, and a record handed over by a task is
/// not printed yet).
pub async fn consume(cluster: Arc<Cluster>, options: ConsumeOptions) -> anyhow::Result<bool> {
    if options.topics.is_empty() {
        anyhow::bail!("name a topic (--topic)");
    }
    if options.topics.len() > 1 && options.group.is_some() {
        anyhow::bail!("a group member reads one topic: run one consumer per topic (or drop --group)");
    }
    // SIGINT (Ctrl-C) and SIGTERM (timeout, systemd, Kubernetes) end the
    // run like a timeout: what was printed is committed.
    let mut interrupted = std::pin::pin!(super::stop_signal());
    let mut reader = tokio::select! {
        opened = Reader::open(cluster, &options) => match opened? {
            Some(reader) => reader,
            None => return Ok(true), // nothing arrived within the timeout
        },
        _ = &mut interrupted => return Ok(true),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut count = 0u64;
    let mut failed = None;
    while options.max_messages.is_none_or(|max| count < max) {
        // Flushed before the consumer can wait (and, in a group, commit).
        if !reader.has_buffered() {
            out.flush()?;
        }
        let wait = async {
            match options.timeout {
                Some(t) => tokio::time::timeout(t, reader.next()).await.ok(),
                None => Some(reader.next().await),
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
        count += 1;
    }
    out.flush()?;
    // Commits what was printed and leaves the group.
    let closed = reader.close().await;
    if let Some(e) = failed {
        anyhow::bail!(e);
    }
    closed?;
    Ok(true)
}

/// What the loop reads: one topic directly, or several through a channel
/// their tasks feed.
enum Reader {
    One(Box<TopicReader>),
    Many(tokio::sync::mpsc::Receiver<anyhow::Result<ConsumedRecord>>, tokio::task::JoinSet<()>),
}

impl Reader {
    async fn open(cluster: Arc<Cluster>, options: &ConsumeOptions) -> anyhow::Result<Option<Reader>> {
        if let [topic] = options.topics.as_slice() {
            return Ok(TopicReader::open(cluster, options, topic).await?.map(|r| Reader::One(Box::new(r))));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut tasks = tokio::task::JoinSet::new();
        for topic in &options.topics {
            let (cluster, options, topic, tx) = (cluster.clone(), options.clone(), topic.clone(), tx.clone());
            tasks.spawn(async move {
                let mut reader = match TopicReader::open(cluster, &options, &topic).await {
                    Ok(Some(reader)) => reader,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(next) = reader.next().await {
                    let failed = next.is_err();
                    if tx.send(next.map_err(anyhow::Error::from)).await.is_err() || failed {
                        break;
                    }
                }
                let _ = reader.close().await;
            });
        }
        Ok(Some(Reader::Many(rx, tasks)))
    }

    async fn next(&mut self) -> Option<anyhow::Result<ConsumedRecord>> {
        match self {
            Reader::One(reader) => reader.next().await.map(|r| r.map_err(anyhow::Error::from)),
            Reader::Many(rx, _) => rx.recv().await,
        }
    }

    fn has_buffered(&self) -> bool {
        match self {
            Reader::One(reader) => reader.has_buffered(),
            Reader::Many(rx, _) => !rx.is_empty(),
        }
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Reader::One(reader) => Ok((*reader).close().await?),
            // No group, so nothing to commit: the tasks just stop.
            Reader::Many(_, mut tasks) => {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                Ok(())
            }
        }
    }
}
