//! Goulette's broker: the data plane over the partition log.
//!
//! - [`partition`]: the registry of the replicas held here.
//! - [`replica`]: one replica: its log, state and high watermark;
//!   `replica_files` opens its log and timer index.
//! - [`leader_state`]: what only a leader keeps, and the pure high-watermark rule.
//! - [`produce`], [`fetch`]: the two streams of `BrokerService`.
//! - [`tag_filter`]: a consumer's tag filter applied to a fetch's batches.
//! - [`compaction`], [`compactor`]: compacted topics (settings, keyless
//!   records refused) and the thread that compacts their partitions.
//! - [`delayed`]: delayed delivery: originals marked at produce, hidden at
//!   fetch, and delivered as copies by one task when due.
//! - [`group_commit`]: produce requests and follower appends waiting, as tasks, for storage's group-commit rounds.
//! - [`offsets`]: committed consumer offsets in the internal topic `__offsets`.
//! - [`service`]: the gRPC service.
//! - [`kafka`]: the Kafka protocol listener, over the same partitions.
//! - [`security`]: users learnt from the sentinels, and what a failed login costs.
//! - [`link`]: registration, heartbeats and assignments from the sentinels.
//! - [`follower`]: a follower copying a partition from its leader.
//! - [`isr`]: a leader shrinking and expanding the ISR.
//! - [`peers`]: the other brokers' addresses.
//! - [`supervisor`]: starting and stopping the follower tasks.
//! - [`session`]: this broker's session with the sentinels (contact, readiness).
//! - [`layout`]: the data directory's layout (a directory and topic id per replica).
//! - [`failures`], [`failure_reports`]: replicas that cannot be served, and the task reporting and reopening them.
//! - [`server`]: `run`, wiring it all together.
//! - [`shutdown`]: controlled shutdown (leaderships handed over before stopping).
//! - [`config`], [`error`]: settings and protocol error mapping.
//! - [`metrics`]: the Prometheus metrics served on `--http-address`.
//! - [`failpoint`]: faults tests inject through the environment.

pub mod changes;
pub mod compaction;
pub mod compactor;
pub mod config;
pub mod delayed;
pub mod error;
pub mod failpoint;
pub mod failure_reports;
pub mod failures;
pub mod fetch;
pub mod fetch_budget;
pub mod follower;
pub mod group_commit;
pub mod isr;
pub mod kafka;
pub mod kept;
pub mod layout;
pub mod leader_state;
pub mod link;
pub mod metrics;
pub mod offsets;
pub mod partition;
pub mod peers;
pub mod produce;
pub mod replica;
mod replica_files;
pub mod security;
pub mod server;
pub mod service;
pub mod session;
pub mod shutdown;
pub mod supervisor;
pub mod tag_filter;
pub mod timestamps;
