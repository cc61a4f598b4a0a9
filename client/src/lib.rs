//! The Goulette client library and the logic behind the `goulette` CLI.
//!
//! - [`inspect`]: offline inspection of a partition directory (the storage
//!   engine's view of it: offsets, files, records).
//! - [`etcd_admin`]: `goulette etcd …`, the metadata read and administered
//!   directly in etcd: status, topics, op log, backup, restore, clean.
//!
//! Producer, consumer and admin clients arrive with the cluster (issue 3).

pub mod etcd_admin;
pub mod inspect;
