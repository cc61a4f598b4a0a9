//! A RabbitMQ queue (AMQP 0-9-1, `lapin`): one consumer with `prefetch`
//! messages delivered ahead, in the queue's order.
//!
//! A message is acknowledged to RabbitMQ only after Goulette acknowledged
//! it: the pipeline's acknowledged position is the delivery tag of a
//! batch's last message, acknowledged with `multiple`. A connection lost,
//! or the mirror killed, leaves the unacknowledged messages in the queue,
//! where RabbitMQ delivers them again (at least once). Delivery tags count
//! per channel, so positions carry the channel's generation: an
//! acknowledgement for a channel that is gone is dropped (RabbitMQ already
//! put those messages back).
//!
//! Record: the body as value; the routing key, exchange, the AMQP
//! properties and the message's headers as `amqp-*` headers; the AMQP
//! timestamp (seconds) as the record's; the key as `key` says.
//!
//! `amqps://` urls connect over TLS (rustls with `ring`, the one crypto
//! provider Goulette links), trusting the system's CAs and `tls-ca`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use super::SourceEnds;
use crate::config::{RabbitConfig, RabbitKey};
use crate::metrics::SourceMetrics;
use crate::record::{Batch, MirrorRecord};

/// Messages per batch at most…
const BATCH_RECORDS: usize = 500;
/// …and how long a batch waits for more.
const BATCH_WAIT: Duration = Duration::from_millis(5);
/// A lost connection is tried again after this, doubling up to 30 s.
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Why the source stopped.
#[derive(Debug, thiserror::Error)]
pub enum RabbitError {
    #[error("{what} ({url}): {error}")]
    Amqp { what: &'static str, url: String, error: lapin::Error },
    #[error("read TLS file {}: {error}", path.display())]
    TlsFile { path: PathBuf, error: std::io::Error },
}

/// A batch handed to the pipeline: its position, the channel it came on
/// and its last delivery tag.
#[derive(Debug)]
struct Sent {
    position: u64,
    generation: u64,
    tag: u64,
}

/// The URL without its password (for logs and errors).
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

struct RabbitSource {
    config: RabbitConfig,
    batches: Option<tokio::sync::mpsc::Sender<Batch>>,
    acks: tokio::sync::mpsc::UnboundedReceiver<super::Acked>,
    sent: VecDeque<Sent>,
    next_position: u64,
    generation: u64,
    metrics: SourceMetrics,
}

/// Runs the source until `token` is cancelled and the pipeline let go.
pub async fn run(
    config: RabbitConfig,
    ends: SourceEnds,
    metrics: SourceMetrics,
    token: CancellationToken,
) -> Result<(), RabbitError> {
    let mut source = RabbitSource {
        config,
        batches: Some(ends.batches),
        acks: ends.acks,
        sent: VecDeque::new(),
        next_position: 1,
        generation: 0,
        metrics,
    };
    let mut pause = RECONNECT_FIRST;
    loop {
        match source.connect().await {
            Ok((connection, channel, consumer)) => {
                pause = RECONNECT_FIRST;
                source.set_problem(None);
                let outcome = source.consume(&channel, consumer, &token).await;
                if outcome.is_ok() {
                    // Stopped: unacknowledged messages go back to the queue.
                    let _ = channel.close(200, "goulette-mirror stopping").await;
                    let _ = connection.close(200, "goulette-mirror stopping").await;
                    return Ok(());
                }
                if let Err(e) = outcome {
                    tracing::warn!(source = %source.config.name, error = %e, "the RabbitMQ connection broke; reconnecting");
                    source.set_problem(Some(format!("the RabbitMQ connection broke: {e}")));
                }
            }
            Err(e) => {
                tracing::warn!(source = %source.config.name, error = %e, retry_in_ms = pause.as_millis() as u64, "cannot consume from RabbitMQ; retrying");
                source.set_problem(Some(format!("cannot consume from RabbitMQ: {e}")));
            }
        }
        source.metrics.errors.inc();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = token.cancelled() => return source.drain().await,
        }
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

impl RabbitSource {
    fn set_problem(&self, why: Option<String>) {
        *self.metrics.problem.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    fn amqp(&self, what: &'static str) -> impl Fn(lapin::Error) -> RabbitError + '_ {
        move |error| RabbitError::Amqp { what, url: shown(&self.config.url), error }
    }

    /// The TLS files of an `amqps://` url, read at each connection (so a
    /// renewed certificate is used from the next one on).
    fn tls(&self) -> Result<OwnedTLSConfig, RabbitError> {
        let read =
            |path: &PathBuf| std::fs::read(path).map_err(|error| RabbitError::TlsFile { path: path.clone(), error });
        let cert_chain = match &self.config.tls_ca {
            Some(path) => Some(String::from_utf8_lossy(&read(path)?).into_owned()),
            None => None,
        };
        let identity = match (&self.config.tls_cert, &self.config.tls_key) {
            (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 { pem: read(cert)?, key: read(key)? }),
            _ => None,
        };
        Ok(OwnedTLSConfig { identity, cert_chain })
    }

    /// A connection, a channel with the prefetch, the queue declared and
    /// bound if asked, and a consumer on it.
    async fn connect(&mut self) -> Result<(Connection, Channel, lapin::Consumer), RabbitError> {
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let tls = self.tls()?;
        let connection =
            Connection::connect_with_config(&self.config.url, properties, tls).await.map_err(self.amqp("connect"))?;
        let channel = connection.create_channel().await.map_err(self.amqp("open a channel"))?;
        channel
            .basic_qos(self.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(self.amqp("set the prefetch"))?;
        let queue = self.config.queue.as_str();
        if self.config.declare {
            let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
            channel
                .queue_declare(queue, options, FieldTable::default())
                .await
                .map_err(self.amqp("declare the queue"))?;
        }
        if let Some(exchange) = &self.config.exchange {
            channel
                .queue_bind(
                    queue,
                    exchange,
                    &self.config.routing_key,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(self.amqp("bind the queue"))?;
        }
        let tag = format!("goulette-mirror-{}", self.config.name);
        let consumer = channel
            .basic_consume(queue, &tag, BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(self.amqp("consume the queue"))?;
        self.generation += 1;
        tracing::info!(source = %self.config.name, url = %shown(&self.config.url), queue, "consuming from RabbitMQ");
        Ok((connection, channel, consumer))
    }

    /// Consumes until the connection breaks (`Err`) or the source stopped
    /// and the pipeline let go (`Ok`).
    async fn consume(
        &mut self,
        channel: &Channel,
        mut consumer: lapin::Consumer,
        token: &CancellationToken,
    ) -> Result<(), RabbitError> {
        let mut batch: Vec<MirrorRecord> = Vec::new();
        let mut last_tag = 0;
        let mut deadline = tokio::time::Instant::now();
        loop {
            tokio::select! {
                biased;
                ack = self.acks.recv() => match ack {
                    Some(acked) => self.acknowledge(channel, acked.position).await?,
                    // The pipeline is done (after a stop): nothing more will come.
                    None => return Ok(()),
                },
                _ = token.cancelled(), if self.batches.is_some() => {
                    // Read no further; the open batch was never sent, so its
                    // messages go back to the queue with the channel.
                    self.batches = None;
                    batch.clear();
                }
                _ = tokio::time::sleep_until(deadline), if !batch.is_empty() && self.batches.is_some() => {
                    self.send(std::mem::take(&mut batch), last_tag).await;
                }
                delivery = consumer.next(), if self.batches.is_some() => match delivery {
                    Some(Ok(delivery)) => {
                        if batch.is_empty() {
                            deadline = tokio::time::Instant::now() + BATCH_WAIT;
                        }
                        last_tag = delivery.delivery_tag;
                        batch.push(self.record(&delivery));
                        if batch.len() >= BATCH_RECORDS {
                            self.send(std::mem::take(&mut batch), last_tag).await;
                        }
                    }
                    Some(Err(error)) => return Err(RabbitError::Amqp { what: "receive", url: shown(&self.config.url), error }),
                    None => return Err(RabbitError::Amqp {
                        what: "receive",
                        url: shown(&self.config.url),
                        error: lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed)),
                    }),
                },
            }
        }
    }

    /// Hands a batch to the pipeline (waiting while it is full).
    async fn send(&mut self, records: Vec<MirrorRecord>, tag: u64) {
        let Some(batches) = &self.batches else { return };
        let position = self.next_position;
        self.next_position += 1;
        let batch = Batch { records, position };
        self.metrics.records_in.inc_by(batch.records.len() as u64);
        self.metrics.bytes_in.inc_by(batch.bytes() as u64);
        if batches.send(batch).await.is_ok() {
            self.sent.push_back(Sent { position, generation: self.generation, tag });
        } else {
            // The pipeline stopped: these messages stay unacknowledged.
            self.batches = None;
        }
    }

    /// Acknowledges to RabbitMQ every message up to `position`.
    async fn acknowledge(&mut self, channel: &Channel, position: u64) -> Result<(), RabbitError> {
        let mut upto = None;
        while self.sent.front().is_some_and(|s| s.position <= position) {
            upto = self.sent.pop_front();
        }
        match upto {
            Some(s) if s.generation == self.generation => channel
                .basic_ack(s.tag, BasicAckOptions { multiple: true })
                .await
                .map_err(|error| RabbitError::Amqp { what: "acknowledge", url: shown(&self.config.url), error }),
            // From a channel that is gone: RabbitMQ delivers those again.
            _ => Ok(()),
        }
    }

    /// After a stop while disconnected: take the pipeline's last
    /// acknowledgements (they cannot reach RabbitMQ; it redelivers).
    async fn drain(&mut self) -> Result<(), RabbitError> {
        self.batches = None;
        while self.acks.recv().await.is_some() {}
        Ok(())
    }

    fn record(&self, delivery: &lapin::message::Delivery) -> MirrorRecord {
        let p = &delivery.properties;
        let key = match self.config.key {
            RabbitKey::None => None,
            RabbitKey::RoutingKey => Some(Bytes::from(delivery.routing_key.as_str().to_owned())),
            RabbitKey::MessageId => p.message_id().as_ref().map(|id| Bytes::from(id.as_str().to_owned())),
        };
        MirrorRecord {
            topic: self.config.topic.clone(),
            partition: None,
            key,
            value: Bytes::from(delivery.data.clone()),
            headers: headers_of(delivery.exchange.as_str(), delivery.routing_key.as_str(), p),
            timestamp: p.timestamp().map(|seconds| seconds as i64 * 1000),
            refused: None,
            tombstone: false,
        }
    }
}

/// The AMQP routing, properties and headers of a message as record headers.
fn headers_of(exchange: &str, routing_key: &str, p: &BasicProperties) -> Vec<(String, Bytes)> {
    let mut headers = vec![
        ("amqp-exchange".to_owned(), Bytes::from(exchange.to_owned())),
        ("amqp-routing-key".to_owned(), Bytes::from(routing_key.to_owned())),
    ];
    let mut add = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            headers.push((format!("amqp-{name}"), Bytes::from(v)));
        }
    };
    add("message-id", p.message_id().as_ref().map(|v| v.to_string()));
    add("correlation-id", p.correlation_id().as_ref().map(|v| v.to_string()));
    add("content-type", p.content_type().as_ref().map(|v| v.to_string()));
    add("content-encoding", p.content_encoding().as_ref().map(|v| v.to_string()));
    add("type", p.kind().as_ref().map(|v| v.to_string()));
    add("app-id", p.app_id().as_ref().map(|v| v.to_string()));
    add("user-id", p.user_id().as_ref().map(|v| v.to_string()));
    add("reply-to", p.reply_to().as_ref().map(|v| v.to_string()));
    add("expiration", p.expiration().as_ref().map(|v| v.to_string()));
    add("delivery-mode", p.delivery_mode().map(|v| v.to_string()));
    add("priority", p.priority().map(|v| v.to_string()));
    if let Some(table) = p.headers() {
        for (name, value) in table.inner() {
            headers.push((format!("amqp-header-{name}"), Bytes::from(value_text(value))));
        }
    }
    headers
}

/// An AMQP header value as text (strings as they are).
fn value_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(shown("amqp://guest:secret@host:5672/%2f"), "amqp://guest:***@host:5672/%2f");
        assert_eq!(shown("amqp://host:5672"), "amqp://host:5672");
    }
}
