//! Goulette's wire protocol: generated prost/tonic types.
//!
//! - `errors.proto`: the typed error codes every response carries.
//! - `cluster.proto`: topics, partition states, brokers, sentinels.
//! - `client.proto`: `BrokerService` (produce, fetch) and `SentinelService`
//!   (metadata, topic admin, cluster status).
//! - `internal.proto`: `SentinelInternal` (broker registration, heartbeats,
//!   the assignment stream).
//!
//! All four share the package `goulette.v1`; the client-facing and internal
//! services live in separate files.

#![allow(missing_debug_implementations, clippy::all)]

/// Version 1 of the protocol.
pub mod v1 {
    tonic::include_proto!("goulette.v1");
}

/// Metadata key set on a request that one sentinel forwards to the leader.
pub const FORWARDED_HEADER: &str = "goulette-forwarded";

impl v1::Error {
    /// An error with a code and a message.
    pub fn new(code: v1::ErrorCode, message: impl Into<String>) -> Self {
        v1::Error { code: code as i32, message: message.into(), leader_hint: String::new() }
    }

    /// The code, `Internal` for a value this build does not know.
    pub fn error_code(&self) -> v1::ErrorCode {
        v1::ErrorCode::try_from(self.code).unwrap_or(v1::ErrorCode::Internal)
    }
}
