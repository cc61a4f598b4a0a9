//! The codec's error type.
//!
//! Its messages are those the storage engine reported before the codec had a
//! crate of its own (the storage error wraps it), so logs and the errors
//! clients see read the same.

/// What encoding or decoding a batch can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A record batch is malformed (bad length, CRC, count, codec, …).
    #[error("invalid record batch: {reason}")]
    InvalidBatch {
        /// Which check failed.
        reason: String,
    },

    /// A batch (or its decompressed records) is larger than its maximum.
    #[error("record batch of {size} bytes exceeds the maximum of {max} bytes")]
    BatchTooLarge {
        /// Size of the offending batch (or of its decompressed records).
        size: usize,
        /// The limit it exceeded.
        max: usize,
    },

    /// A compressor failed while encoding.
    #[error("{context}: {source}")]
    Compress {
        /// What was being done ("compress with Gzip").
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for the codec.
pub type Result<T, E = BatchError> = std::result::Result<T, E>;

impl BatchError {
    pub(crate) fn invalid_batch(reason: impl Into<String>) -> Self {
        BatchError::InvalidBatch { reason: reason.into() }
    }
}
