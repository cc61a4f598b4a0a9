//! What both servers (broker and sentinel) offer operators, shared here
//! because `goulette-proto` is the one crate they both build on (the
//! `ops` feature keeps it out of the client library):
//!
//! - [`auth`]: the login flags (failed-login delay and limit, token lifetime).
//! - [`config`]: settings from a TOML file, `GOULETTE_*` variables and flags.
//! - [`http`]: the `/health`, `/ready` and `/metrics` endpoints on `--http-address`.
//! - [`process`]: process-level metrics (resident memory).
//! - [`logging`], [`rotate`]: `tracing` to the console and/or a rotating file, as text or JSON.
//! - [`serve`]: the gRPC listener's accepted connections (`TCP_NODELAY`).
//! - [`signals`]: SIGTERM/SIGINT, a graceful stop first and an exit at once second.
//! - [`tls`]: the TLS flags of the gRPC listener and of connections to etcd.

pub mod auth;
pub mod config;
pub mod http;
pub mod logging;
pub mod process;
pub mod rotate;
pub mod serve;
pub mod signals;
pub mod tls;
