//! Goulette's sentinel: the control plane.
//!
//! - [`keys`], [`model`]: the etcd key layout and the JSON records stored
//!   there, re-exported from `goulette-metadata` (shared with the CLI).
//! - [`store`]: every etcd read and write; each change is one transaction
//!   with its operation-log entry, fenced by the writer's election key.
//! - [`view`]: the in-memory copy of the prefix every sentinel answers from.
//! - [`ring`]: the consistent hash ring that places replicas on brokers.
//! - [`election`]: sentinel leader election (campaign, keep-alive, step down).
//! - [`watcher`]: keeps the view current with one read and a watch.
//! - [`controller`]: the leader's writes, by concept (topics, brokers,
//!   partitions, producer ids, users), and the leader loop beside them.
//! - [`security_acks`]: which security update each broker applied, so
//!   that a user change is answered once every live broker has it.
//! - [`assignments`]: what each broker must serve, and the pure diff of the
//!   assignment stream (with the evidence every removal carries).
//! - [`placement`]: where a partition's replicas go and who leads.
//! - [`groups`], [`assignor`]: consumer-group membership and assignment.
//! - [`leases`]: keeping broker and member session leases alive.
//! - [`etcd_metrics`]: process-wide etcd request counters and reachability.
//! - [`tls_metrics`]: process-wide TLS counters (failed handshakes and reloads).
//! - [`metrics`]: Prometheus metrics and readiness on `--http-address`.
//! - [`service`]: the gRPC services (client-facing, internal) and, in
//!   `service/forward.rs`, forwarding of writes to the leader.
//! - [`embedded`]: the supervised `etcd` child of `--embedded-etcd`.
//! - [`server`]: `run`, which wires all of the above together.
//! - [`config`]: the validated settings.
//! - [`error`]: the crate's error type and its protocol codes.

pub use goulette_metadata::{acls, keys, model, users};

pub mod assignments;
pub mod assignor;
pub mod config;
pub mod controller;
pub mod election;
pub mod embedded;
pub mod error;
pub mod etcd_metrics;
pub mod groups;
pub mod leases;
pub mod metrics;
pub mod placement;
pub mod ring;
pub mod security_acks;
pub mod server;
pub mod service;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls_metrics;
pub mod view;
pub mod watcher;
