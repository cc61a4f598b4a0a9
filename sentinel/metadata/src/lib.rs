//! Goulette's cluster metadata as it is stored in etcd.
//!
//! - [`keys`]: the key layout under a prefix (default `/goulette`), with
//!   the parser that tells which record a key holds.
//! - [`model`]: the JSON records stored under those keys.
//! - [`users`]: users and their SCRAM credentials.
//! - [`acls`]: ACL bindings.
//!
//! The sentinel writes these keys and `goulette etcd …` reads, backs up and
//! restores them: both use this crate so the layout has one definition.

pub mod acls;
pub mod keys;
pub mod model;
pub mod users;
