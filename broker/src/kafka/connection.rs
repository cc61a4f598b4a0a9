//! One Kafka connection.
//!
//! Frames are read with their 4-byte size checked against
//! `--kafka-max-request-bytes` before anything is allocated for them.
//! Requests are *accepted* one at a time in arrival order (a produce is
//! appended then, so one producer's batches keep their order) and their
//! answers are written in arrival order, as Kafka clients require; what
//! follows an accept (a produce's durability and replication wait, a
//! fetch's long poll) runs concurrently with the next requests, up to
//! [`MAX_IN_FLIGHT`] per connection, beyond which the connection is not
//! read (backpressure, bounded memory).
//!
//! A frame that cannot be read (unknown API, version not served, bad
//! encoding) closes the connection after the answers already due, as
//! Apache Kafka does; the broker and the other connections go on.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use kafka_protocol::messages::ApiKey;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::kafka::answer::{Answer, ready};
use crate::kafka::request::{self, Frame};

use crate::kafka::{Kafka, sasl, versions};

/// Requests one connection may have accepted and not yet answered.
/// Kafka clients keep at most 5 (librdkafka's and Java's default
/// `max.in.flight`) per connection.
pub const MAX_IN_FLIGHT: usize = 32;

/// How long a stopping broker keeps answering what it accepted.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves one connection from `peer` (over TLS or not) until the client
/// closes it, a frame cannot be read, a login fails, or the broker stops.
pub async fn serve<S>(
    stream: S,
    kafka: Arc<Kafka>,
    peer: Option<std::net::SocketAddr>,
    tls: bool,
    by_certificate: Option<String>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (reader, mut writer) = tokio::io::split(stream);
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(kafka.config.kafka_max_request_bytes)
        .new_codec();
    let mut frames = FramedRead::new(reader, codec);
    let mut pending: FuturesOrdered<Answer> = FuturesOrdered::new();
    let mut reading = true;
    let mut drain_until = None;
    let mut session = sasl::Session::new(!kafka.config.kafka_sasl.is_empty(), peer, tls, by_certificate);
    while reading || !pending.is_empty() {
        tokio::select! {
            frame = frames.next(), if reading && pending.len() < MAX_IN_FLIGHT => match frame {
                Some(Ok(frame)) => match accept(&kafka, &mut session, frame.freeze()).await {
                    Ok(answer) => pending.push_back(answer),
                    Err(reason) => {
                        tracing::info!(%reason, "closing a Kafka connection after a request it could not read");
                        reading = false;
                    }
                },
                Some(Err(e)) => {
                    tracing::info!(error = %e, "closing a Kafka connection");
                    reading = false;
                }
                None => reading = false,
            },
            Some(answer) = pending.next(), if !pending.is_empty() => match answer {
                Ok(Some(out)) => {
                    // Bounded: a client that stops reading its answers must
                    // not hold them (and their fetch budget) nor the
                    // broker's shutdown, which waits for this task.
                    let limit = drain_until.unwrap_or_else(|| tokio::time::Instant::now() + kafka.config.fetch_send_timeout);
                    match tokio::time::timeout_at(limit, writer.write_all(&out.frame)).await {
                        Ok(Ok(())) if out.close => break,
                        Ok(Ok(())) => drop(out.permit),
                        Ok(Err(_)) => return,
                        Err(_) => {
                            tracing::info!("closing a Kafka connection whose client stopped reading its answers");
                            return;
                        }
                    }
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::info!(%reason, "closing a Kafka connection");
                    return;
                }
            },
            // Stopping: no more requests; those accepted are answered for at
            // most DRAIN (an acks=all wait would last the replication
            // timeout), then the client retries what was cut off.
            _ = kafka.shutdown.cancelled(), if reading => {
                reading = false;
                drain_until = Some(tokio::time::Instant::now() + DRAIN);
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)), if drain_until.is_some() => break,
        }
    }
    let _ = writer.shutdown().await;
}

/// Reads one frame and starts serving it; `Err` closes the connection.
async fn accept(kafka: &Arc<Kafka>, session: &mut sasl::Session, frame: Bytes) -> Result<Answer, String> {
    let (key, version, header, body) = match request::read(frame)? {
        Frame::Request { key, version, header, body } => (key, version, header, body),
        Frame::UnsupportedApiVersions { correlation_id } => {
            let answer = versions::api_versions(request::UNSUPPORTED_VERSION);
            return Ok(ready(request::encode(ApiKey::ApiVersions, 0, correlation_id, &answer)));
        }
        Frame::Unsupported { answer } => return Ok(ready(Ok(answer))),
    };
    if !session.allows(key) {
        return Err(format!("{key:?} before authentication"));
    }
    crate::kafka::dispatch::dispatch(kafka, session, key, version, header, body).await
}
