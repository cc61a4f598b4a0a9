//! What both servers (broker and sentinel) offer operators, shared here
//! because `goulette-proto` is the one crate they both build on (the
//! `ops` feature keeps it out of the client library):
//!
//! - [`http`]: the `/health`, `/ready` and `/metrics` endpoints on `--http-address`.
//! - [`process`]: process-level metrics (resident memory).
//! - [`logging`]: `tracing` set-up from `--log-level` and `--log-file`.

pub mod http;
pub mod logging;
pub mod process;
