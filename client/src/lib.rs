//! The Goulette client library: produce to and consume from a Goulette
//! cluster, and administer its topics and consumer groups.
//!
//! - [`producer`]: batching, windowed, retrying `Producer`.
//! - [`consumer`]: `Consumer` with per-partition fetch streams and credit.
//! - [`membership`]: consumer-group membership (join, heartbeat, leave).
//! - [`offsets`]: committed consumer offsets (the `__offsets` coordinator).
//! - [`dead_letter`]: a group's dead-letter topic and the headers naming each
//!   dead letter's source and error.
//! - [`handler`]: a message handler run with retries, and a dead-letter topic.
//! - [`nack`]: a record handed back by a group consumer, delivered again later
//!   from the group's retry topic, and dead-lettered after its last delivery.
//! - [`redrive`]: a group's dead letters sent back to their source topics.
//! - [`login`]: a SCRAM login to a cluster that requires one, and the
//!   bearer token every later call carries.
//! - [`admin`]: topics, groups, partition offsets and cluster status.
//! - [`cluster`]: sentinels (with failover), metadata cache, broker
//!   channels, and the call-the-leader-with-retries loop the others share.
//! - [`partitioner`]: key-hash and round-robin partition choice.
//! - [`error`]: the client's error type.
//!
//! The types a program names to use these are re-exported here, protocol
//! types included (`Acks`, `TopicConfig`, `ErrorCode`, …), so that it needs
//! no other Goulette crate. The `goulette` command line lives in the
//! `goulette-cli` crate; this one carries no etcd, storage or CLI
//! dependency. The `serde` feature derives `Serialize` on the admin reports.
//!
//! Runnable programs: `client/examples/` (`producer`, `consumer`,
//! `group_consumer`); `Producer`, `Consumer` and `Admin` show the calls.

pub mod admin;
pub mod append;
pub mod cluster;
pub mod consumer;
pub mod dead_letter;
pub mod error;
pub mod handler;
pub mod login;
pub mod membership;
pub mod nack;
pub mod offsets;
pub mod partitioner;
pub mod producer;
pub mod redrive;

pub use admin::{Admin, PartitionReport, SettingReport, TopicReport};
pub use cluster::Cluster;
pub use consumer::{ConsumedRecord, Consumer, ConsumerConfig, StartAt};
pub use error::{ClientError, Result};
pub use membership::GroupOptions;
pub use partitioner::Partitioner;
pub use producer::{Delivery, Producer, ProducerConfig, ProducerRecord, RecordMetadata};

/// Record keys, values and header values.
pub use bytes::Bytes;
/// How a producer compresses its batches.
pub use goulette_batch::Compression;
/// Delayed delivery's header names (`docs/delayed.md`).
pub use goulette_batch::delayed;
/// Record tags and the filters consumers read with (`docs/tags.md`).
pub use goulette_batch::tags;
/// Protocol types that appear in this library's API.
pub use goulette_proto::v1::{
    Acks, ClusterStatusResponse, DescribeGroupResponse, ErrorCode, ListOffsetsResponse, TopicConfig, TopicMetadata,
};
