//! Running an application's message handler with retries, and a dead-letter
//! topic for the messages it keeps failing on.
//!
//! Each record is given to the handler up to `max_attempts` times, with
//! exponential backoff and jitter between attempts. A record that still
//! fails goes to the dead-letter topic (same key and value, the original
//! headers plus headers naming its source and the last error), and only
//! once that write is acknowledged does the consumer move on: a failed
//! message is never dropped silently. Without a dead-letter topic the last
//! error is returned and processing stops.
//!
//! [`process_redelivering`] does not wait between attempts: a failed record
//! is nacked ([`crate::nack`]), delivered again later from the group's
//! retry topic, and the rest of its partition goes on meanwhile; after
//! `max_deliveries` it is dead-lettered. Counts and delays are kept by the
//! brokers (in the log, and by delayed delivery), not in this process.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cluster::backoff;
use crate::consumer::{ConsumedRecord, Consumer};
use crate::error::{ClientError, Result};
use crate::producer::{Producer, ProducerRecord};

pub use crate::dead_letter::{
    HEADER_ATTEMPTS, HEADER_ERROR, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TIMESTAMP,
    HEADER_SOURCE_TOPIC,
};

/// How often and how patiently a handler is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per record, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles after each failure…
    pub initial_backoff: Duration,
    /// …up to this.
    pub max_backoff: Duration,
    /// An attempt still running after this long counts as failed (and is
    /// dropped); `None` lets it run.
    pub attempt_timeout: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            attempt_timeout: None,
        }
    }
}

/// Where records the handler gave up on are sent.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub producer: Arc<Producer>,
    pub topic: String,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded on attempt `attempts`.
    Handled { attempts: u32 },
    /// Every attempt failed; the record is in the dead-letter topic.
    DeadLettered { attempts: u32, error: String },
    /// Its delivery failed and it was handed back ([`process_redelivering`]):
    /// it comes again, from the group's retry topic, for the
    /// `deliveries`-th time.
    Redelivered { deliveries: u32, error: String },
}

/// One run of `handler` on `record`, failed if it outlives the policy's
/// `attempt_timeout`.
async fn attempt_once<F, Fut, E>(
    record: &ConsumedRecord,
    policy: &RetryPolicy,
    handler: &mut F,
) -> std::result::Result<(), String>
where
    F: FnMut(&ConsumedRecord) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: std::fmt::Display,
{
    match policy.attempt_timeout {
        Some(limit) => match tokio::time::timeout(limit, handler(record)).await {
            Ok(done) => done.map_err(|e| e.to_string()),
            Err(_) => Err(format!("timed out after {limit:?}")),
        },
        None => handler(record).await.map_err(|e| e.to_string()),
    }
}

/// Runs `handler` on `record` under `policy`, dead-lettering it if every
/// attempt fails. Errors: the handler's last error when there is no
/// dead-letter topic (`ClientError::Handler`), or the dead-letter write's.
pub async fn handle_with_retries<F, Fut, E>(
    record: &ConsumedRecord,
    policy: &RetryPolicy,
    dead_letter: Option<&DeadLetter>,
    mut handler: F,
) -> Result<Outcome>
where
    F: FnMut(&ConsumedRecord) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: std::fmt::Display,
{
    let attempts = policy.max_attempts.max(1);
    let mut last_error = String::new();
    for attempt in 1..=attempts {
        match attempt_once(record, policy, &mut handler).await {
            Ok(()) => return Ok(Outcome::Handled { attempts: attempt }),
            Err(e) => last_error = e,
        }
        if attempt < attempts {
            tokio::time::sleep(backoff(attempt - 1, policy.initial_backoff, policy.max_backoff)).await;
        }
    }
    let Some(dead_letter) = dead_letter else {
        return Err(ClientError::Handler {
            topic: record.topic.to_string(),
            partition: record.partition,
            offset: record.offset,
            attempts,
            error: last_error,
        });
    };
    let mut headers = record.headers.clone();
    headers.extend([
        (HEADER_SOURCE_TOPIC.to_owned(), Bytes::from(record.topic.to_string())),
        (HEADER_SOURCE_PARTITION.to_owned(), Bytes::from(record.partition.to_string())),
        (HEADER_SOURCE_OFFSET.to_owned(), Bytes::from(record.offset.to_string())),
        (HEADER_ERROR.to_owned(), Bytes::from(last_error.clone())),
        (HEADER_ATTEMPTS.to_owned(), Bytes::from(attempts.to_string())),
        (HEADER_SOURCE_TIMESTAMP.to_owned(), Bytes::from(record.timestamp.to_string())),
    ]);
    let letter = ProducerRecord {
        topic: dead_letter.topic.clone(),
        partition: None,
        key: record.key.clone(),
        value: record.value.clone(),
        headers,
        timestamp: None,
        tombstone: false,
    };
    dead_letter.producer.send(letter).await?.wait().await?;
    Ok(Outcome::DeadLettered { attempts, error: last_error })
}

/// Feeds every record `consumer` delivers to `handler` (see
/// [`handle_with_retries`]), reporting each outcome to `on_outcome`, until
/// the consumer ends or an error stops it.
pub async fn process<F, Fut, E>(
    consumer: &mut Consumer,
    policy: &RetryPolicy,
    dead_letter: Option<&DeadLetter>,
    mut handler: F,
    mut on_outcome: impl FnMut(&ConsumedRecord, &Outcome),
) -> Result<()>
where
    F: FnMut(&ConsumedRecord) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: std::fmt::Display,
{
    while let Some(record) = consumer.recv().await {
        let record = record?;
        let outcome = handle_with_retries(&record, policy, dead_letter, &mut handler).await?;
        on_outcome(&record, &outcome);
    }
    Ok(())
}

/// Feeds the records of a group's consumer of its topic (`source`) and of
/// its consumer of the group's retry topic (`retries`) to `handler`, once
/// each: a failure is nacked through `redelivery`, to come again after a
/// backoff that grows with its deliveries (`policy`'s backoffs; its
/// `max_attempts` is not used: `redelivery` has the most deliveries). The
/// consumer a nacked record came from commits at once, past it.
pub async fn process_redelivering<F, Fut, E>(
    source: &mut Consumer,
    retries: &mut Consumer,
    redelivery: &crate::nack::Redelivery,
    policy: &RetryPolicy,
    mut handler: F,
    mut on_outcome: impl FnMut(&ConsumedRecord, &Outcome),
) -> Result<()>
where
    F: FnMut(&ConsumedRecord) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: std::fmt::Display,
{
    loop {
        let (record, from_retries) = tokio::select! {
            r = source.recv() => (r, false),
            r = retries.recv() => (r, true),
        };
        let Some(record) = record else { return Ok(()) };
        let record = record?;
        let outcome = attempt_once(&record, policy, &mut handler).await;
        let deliveries = crate::nack::deliveries(&record);
        let outcome = match outcome {
            Ok(()) => Outcome::Handled { attempts: deliveries },
            Err(error) => {
                let delay = backoff(deliveries.saturating_sub(1), policy.initial_backoff, policy.max_backoff);
                let outcome = match redelivery.nack(&record, delay, &error).await? {
                    crate::nack::Nacked::Redelivered { deliveries, .. } => Outcome::Redelivered { deliveries, error },
                    crate::nack::Nacked::DeadLettered { deliveries } => {
                        Outcome::DeadLettered { attempts: deliveries, error }
                    }
                };
                commit_until_done(if from_retries { &mut *retries } else { &mut *source }).await?;
                outcome
            }
        };
        on_outcome(&record, &outcome);
    }
}

/// Commits, retrying while the coordinator is away (it moves when its
/// broker fails); a fenced member stops trying (its partitions moved on,
/// and their new owner resumes from the last commit).
async fn commit_until_done(consumer: &mut Consumer) -> Result<()> {
    let mut attempt = 0;
    loop {
        match consumer.commit().await {
            Ok(()) => return Ok(()),
            Err(ClientError::Server { code: goulette_proto::v1::ErrorCode::Fenced, .. }) => return Ok(()),
            Err(e) if e.is_retriable() && attempt < 60 => {
                tracing::debug!(error = %e, "commit after a nack failed; trying again");
                tokio::time::sleep(backoff(attempt, Duration::from_millis(100), Duration::from_secs(2))).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
