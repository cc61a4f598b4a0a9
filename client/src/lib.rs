//! The Goulette client library and the logic behind the `goulette` CLI.
//!
//! - [`inspect`]: offline inspection of a partition directory (the storage
//!   engine's view of it: offsets, files, records).
//! - [`etcd_admin`]: `goulette etcd …`, the metadata read and administered
//!   directly in etcd: status, topics, op log, backup, restore, clean.
//!
//! - [`producer`]: batching, windowed, retrying `Producer`.
//! - [`consumer`]: `Consumer` with per-partition fetch streams and credit.
//! - [`handler`]: a message handler run with retries, and a dead-letter topic.
//! - [`membership`]: consumer-group membership (join, heartbeat, leave).
//! - [`offsets`]: committed consumer offsets (the `__offsets` coordinator).
//! - [`admin`]: topics and cluster status.
//! - [`bench`]: `goulette bench`, the load generator.
//! - [`cluster`]: sentinels (with failover), metadata cache, broker channels.
//! - [`partitioner`]: key-hash and round-robin partition choice.
//! - [`cli`]: the `goulette` commands that talk to the cluster.
//! - [`error`]: the client's error type.

pub mod admin;
pub mod bench;
pub mod cli;
pub mod cluster;
pub mod consumer;
pub mod error;
pub mod etcd_admin;
pub mod handler;
pub mod inspect;
pub mod membership;
pub mod offsets;
pub mod partitioner;
pub mod producer;

pub use admin::Admin;
pub use cluster::Cluster;
pub use consumer::{ConsumedRecord, Consumer, ConsumerConfig, StartAt};
pub use error::{ClientError, Result};
pub use membership::GroupOptions;
pub use partitioner::Partitioner;
pub use producer::{Delivery, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
