//! TLS for Goulette's listeners: certificates, keys and CA bundles are PEM
//! files that are watched, so that a renewed certificate or CA is used by
//! new handshakes within seconds, without a restart and without cutting
//! open connections.
//!
//! - [`files`]: the files of one listener, and building a rustls
//!   `ServerConfig` from them (with the `ring` provider, the one crypto
//!   provider Goulette links).
//! - [`reload`]: [`ServerTls`], the current configuration, and the task
//!   that rebuilds it when a file changes, keeping the last good one when a
//!   new file is bad or half-written (logged, and counted).
//! - [`error`]: what loading can fail with.
//! - `testing` (feature): a private CA that issues certificates, for tests.

pub mod error;
pub mod files;
pub mod reload;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::TlsError;
pub use files::TlsFiles;
pub use reload::ServerTls;
