//! The logic behind the `goulette` command line (`src/main.rs` parses the
//! arguments and calls into these modules).
//!
//! - [`cli`]: the commands that talk to a cluster through the client
//!   library (`goulette-client`), one file per command group: topic,
//!   produce, consume, group, cluster.
//! - [`etcd_admin`]: `goulette etcd …`, the metadata read and administered
//!   directly in etcd: status, topics, op log, backup, restore, clean.
//! - [`inspect`]: `goulette storage inspect`, offline inspection of a
//!   partition directory with the storage engine.
//! - [`bench`]: `goulette bench`, the load generator.
//! - [`profile`]: connection profiles (`goulette profile …`), stored in the user's configuration directory.
//!
//! The operator-only dependencies (etcd, the storage engine, histograms,
//! argument parsing) live in this crate so that the client library does not
//! carry them.

pub mod bench;
pub mod cli;
pub mod etcd_admin;
pub mod inspect;
pub mod profile;
