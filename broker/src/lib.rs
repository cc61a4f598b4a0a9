//! Goulette's broker: the data plane over the partition log.
//!
//! - [`partition`]: the replicas held here, their logs, states and high watermarks.
//! - [`produce`], [`fetch`]: the two streams of `BrokerService`.
//! - [`group_commit`]: produce requests and follower appends waiting, as tasks, for storage's group-commit rounds.
//! - [`offsets`]: committed consumer offsets in the internal topic `__offsets`.
//! - [`service`]: the gRPC service.
//! - [`link`]: registration, heartbeats and assignments from the sentinels.
//! - [`replication`]: followers copying from leaders; leaders managing the ISR.
//! - [`server`]: `run`, wiring it all together.
//! - [`shutdown`]: controlled shutdown (leaderships handed over before stopping).
//! - [`config`], [`error`]: settings and protocol error mapping.
//! - [`metrics`]: the Prometheus metrics served on `--http-address`.
//! - [`failpoint`]: faults tests inject through the environment.

pub mod config;
pub mod error;
pub mod failpoint;
pub mod failures;
pub mod fetch;
pub mod fetch_budget;
pub mod group_commit;
pub mod kept;
pub mod link;
pub mod metrics;
pub mod offsets;
pub mod partition;
pub mod produce;
pub mod replication;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod timestamps;
