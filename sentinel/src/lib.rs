//! Goulette's sentinel: the control plane.
//!
//! - [`keys`], [`model`]: the etcd key layout and the JSON records stored there.
//! - [`store`]: every etcd read and write; each change is one transaction
//!   with its operation-log entry, fenced by the writer's election key.
//! - [`view`]: the in-memory copy of the prefix every sentinel answers from.
//! - [`ring`]: the consistent hash ring that places replicas on brokers.
//! - [`error`]: the crate's error type and its protocol codes.

pub mod error;
pub mod keys;
pub mod model;
pub mod ring;
pub mod store;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod view;
