//! Goulette's wire protocol: generated prost/tonic types.
//!
//! - `goulette.v1` errors: the typed error codes every response carries.
//!
//! The client-facing and internal services are added in `proto/goulette/v1/`
//! as the broker and sentinel grow them.

#![allow(missing_debug_implementations, clippy::all)]

/// Version 1 of the protocol.
pub mod v1 {
    tonic::include_proto!("goulette.v1");
}
