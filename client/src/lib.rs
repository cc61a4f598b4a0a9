//! The Goulette client library and the logic behind the `goulette` CLI.
//!
//! - [`inspect`]: offline inspection of a partition directory (the storage
//!   engine's view of it: offsets, files, records).
//!
//! Producer, consumer and admin clients arrive with the cluster (issue 3).

pub mod inspect;
