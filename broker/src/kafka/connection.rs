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

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use kafka_protocol::messages::ApiKey;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::kafka::request::{self, Frame};
use kafka_protocol::protocol::Encodable;

use crate::kafka::{
    Kafka, alter_configs, configs, create_partitions, delete_records, fetch, groups, leader_epochs, list_offsets,
    metadata, produce, producer_ids, sasl, scram_credentials, topics, versions,
};

/// Requests one connection may have accepted and not yet answered.
/// Kafka clients keep at most 5 (librdkafka's and Java's default
/// `max.in.flight`) per connection.
pub const MAX_IN_FLIGHT: usize = 32;

/// How long a stopping broker keeps answering what it accepted.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// A frame to write, with the fetch budget it holds until it is written.
#[derive(Debug)]
pub struct Outgoing {
    pub frame: Bytes,
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Close the connection once this is written (a failed login).
    pub close: bool,
}

/// An accepted request's answer: a frame to write, nothing (a produce with
/// `acks=0`), or the reason the connection must close.
pub type Answer = Pin<Box<dyn Future<Output = Result<Option<Outgoing>, String>> + Send>>;

fn ready(frame: Result<Bytes, String>) -> Answer {
    Box::pin(std::future::ready(frame.map(|frame| Some(Outgoing { frame, permit: None, close: false }))))
}

/// Serves one connection from `peer` (over TLS or not) until the client
/// closes it, a frame cannot be read, a login fails, or the broker stops.
pub async fn serve<S>(stream: S, kafka: Arc<Kafka>, peer: Option<std::net::SocketAddr>, tls: bool)
where
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
    let mut session = sasl::Session::new(!kafka.config.kafka_sasl.is_empty(), peer, tls);
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

/// The answer `work` computes, encoded for `key` at `version`.
fn later<T, F>(key: ApiKey, version: i16, id: i32, work: F) -> Answer
where
    T: Encodable + Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    Box::pin(async move {
        request::encode(key, version, id, &work.await).map(|frame| Some(Outgoing { frame, permit: None, close: false }))
    })
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
    let id = header.correlation_id;
    let client_id = header.client_id.map(|c| c.to_string()).unwrap_or_default();
    let k = kafka.clone();
    Ok(match key {
        ApiKey::ApiVersions => {
            let _: kafka_protocol::messages::ApiVersionsRequest = request::decode(key, version, body)?;
            ready(request::encode(key, version, id, &versions::api_versions(0)))
        }
        ApiKey::SaslHandshake => {
            let req = request::decode(key, version, body)?;
            ready(request::encode(key, version, id, &session.handshake(kafka, req)))
        }
        ApiKey::SaslAuthenticate => {
            let req = request::decode(key, version, body)?;
            let answer = session.authenticate(kafka, req);
            Box::pin(async move {
                if let Some(delay) = answer.delay {
                    tokio::time::sleep(delay).await;
                }
                let frame = request::encode(key, version, id, &answer.response)?;
                Ok(Some(Outgoing { frame, permit: None, close: answer.close }))
            })
        }
        ApiKey::Metadata => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { metadata::handle(&k, version, req).await })
        }
        ApiKey::Produce => {
            let req = request::decode(key, version, body)?;
            // Appended now, in arrival order; answered once durable and replicated.
            let produced = produce::accept(kafka, req).await;
            Box::pin(async move {
                match produced.await? {
                    Some(answer) => request::encode(key, version, id, &answer)
                        .map(|frame| Some(Outgoing { frame, permit: None, close: false })),
                    None => Ok(None),
                }
            })
        }
        ApiKey::Fetch => {
            let req = request::decode(key, version, body)?;
            // The read's budget is held until the answer is written.
            Box::pin(async move {
                let (answer, permit) = fetch::handle(&k, req).await;
                request::encode(key, version, id, &answer).map(|frame| Some(Outgoing { frame, permit, close: false }))
            })
        }
        ApiKey::ListOffsets => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { list_offsets::handle(&k, version, req).await })
        }
        ApiKey::OffsetForLeaderEpoch => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { leader_epochs::handle(&k, req) })
        }
        ApiKey::DeleteRecords => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { delete_records::handle(&k, req).await })
        }
        ApiKey::InitProducerId => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { producer_ids::handle(&k, req).await })
        }
        ApiKey::FindCoordinator => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::find::handle(&k, req).await })
        }
        ApiKey::JoinGroup => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::membership::join(&k, version, client_id, req).await })
        }
        ApiKey::SyncGroup => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::membership::sync(&k, version, req).await })
        }
        ApiKey::Heartbeat => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::membership::heartbeat(&k, req) })
        }
        ApiKey::LeaveGroup => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::membership::leave(&k, version, req) })
        }
        ApiKey::OffsetCommit => {
            let req = request::decode(key, version, body)?;
            // Its place in the append order is taken now, in arrival order.
            later(key, version, id, groups::commits::accept(kafka, req).await)
        }
        ApiKey::OffsetFetch => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::commits::fetch(&k, version, req).await })
        }
        ApiKey::ListGroups => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::describe::list(&k, req).await })
        }
        ApiKey::DescribeGroups => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::describe::describe(&k, req).await })
        }
        ApiKey::CreateTopics => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { topics::create(&k, version, req).await })
        }
        ApiKey::DeleteTopics => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { topics::delete(&k, version, req).await })
        }
        ApiKey::DescribeConfigs => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { configs::handle(&k, version, req).await })
        }
        ApiKey::AlterConfigs => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { alter_configs::alter(&k, req).await })
        }
        ApiKey::CreatePartitions => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { create_partitions::handle(&k, req).await })
        }
        ApiKey::IncrementalAlterConfigs => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { alter_configs::alter_incrementally(&k, req).await })
        }
        ApiKey::DeleteGroups => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { groups::delete::handle(&k, req).await })
        }
        ApiKey::DescribeUserScramCredentials => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { scram_credentials::describe(&k, req).await })
        }
        ApiKey::AlterUserScramCredentials => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { scram_credentials::alter(&k, req).await })
        }
        other => return Err(format!("{other:?} is not served")),
    })
}
