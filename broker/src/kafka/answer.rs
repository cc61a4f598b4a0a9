//! An accepted Kafka request's answer: a future of the frame to write, so
//! that answers are written in arrival order while their work runs
//! concurrently (see `connection`).

use std::pin::Pin;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

use crate::kafka::request;

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

/// An answer ready now.
pub fn ready(frame: Result<Bytes, String>) -> Answer {
    Box::pin(std::future::ready(frame.map(|frame| Some(Outgoing { frame, permit: None, close: false }))))
}

/// The answer `work` computes, encoded for `key` at `version`.
pub fn later<T, F>(key: ApiKey, version: i16, id: i32, work: F) -> Answer
where
    T: Encodable + Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    Box::pin(async move {
        request::encode(key, version, id, &work.await).map(|frame| Some(Outgoing { frame, permit: None, close: false }))
    })
}
