//! What loading TLS files can fail with.

use std::path::PathBuf;

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no usable PEM item of the kind expected.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong (no certificate, no private key, bad PEM).
        what: String,
    },
    /// rustls refused the combination (a key that does not match the
    /// certificate, an unsupported key type, a bad CA certificate).
    #[error("{0}")]
    Config(String),
}
