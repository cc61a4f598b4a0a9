//! The storage crate's one error type.

use std::path::PathBuf;

use goulette_batch::BatchError;

use crate::log::state::LogState;

/// Everything that can go wrong in the storage crate.
///
/// Corruption is kept apart from plain I/O failure: an I/O error may go away on
/// retry, a corrupt file will not, and an operator must be told which it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, as a verb phrase ("open WAL /data/t-0/…").
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A record batch is malformed, or larger than its limit (the codec's
    /// own error, or the log's `max_batch_bytes` as `BatchTooLarge`).
    #[error(transparent)]
    Batch(#[from] BatchError),

    /// Data on disk failed a check and cannot be trusted. Never repaired silently.
    #[error("corrupt data in {path} at byte {position}: {reason}")]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the first bad byte or frame.
        position: u64,
        /// What was found there.
        reason: String,
    },

    /// A log file is in a format this version does not read: written by an
    /// older (or newer) Goulette. Not corruption: nothing is cut, repaired or
    /// deleted, and the files stay as they were.
    #[error("log file {path} has format version {version}: {}", unsupported_format_advice(*.version, *.supported))]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The format version in its header.
        version: u16,
        /// The only version this build reads (`frame::FILE_VERSION`).
        supported: u16,
    },

    /// A read asked for an offset the log does not hold.
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: u64,
        /// First offset still held.
        log_start: u64,
        /// Next offset to be assigned.
        log_end: u64,
    },

    /// A conditional append expected the log to end elsewhere: nothing was
    /// written.
    #[error("the append expected the log to end at offset {expected}; it ends at {log_end}")]
    LogEndMismatch {
        /// Where the writer expected the log to end.
        expected: u64,
        /// Where it ends.
        log_end: u64,
    },

    /// An idempotent producer's batch does not start at its next sequence
    /// (an earlier batch is missing): resend in order.
    #[error("producer {producer_id}: sequence {got} is out of order, expected {expected}")]
    OutOfOrderSequence {
        /// The producer.
        producer_id: i64,
        /// The next sequence the partition expects.
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },

    /// A retry of a batch stored too long ago for its offsets to be remembered.
    #[error("producer {producer_id}: the batch at sequence {sequence} was already stored")]
    DuplicateSequence {
        /// The producer.
        producer_id: i64,
        /// The batch's base sequence.
        sequence: i32,
    },

    /// A batch from an older epoch of a producer than the partition has seen.
    #[error("producer {producer_id}: epoch {epoch} is fenced by epoch {current}")]
    ProducerFenced {
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The newest epoch seen.
        current: i16,
    },

    /// `reset_to` was asked for an offset below the log end.
    #[error("cannot reset the log to offset {offset}: it already ends at {log_end} (truncate instead)")]
    ResetBeforeEnd {
        /// The requested offset.
        offset: u64,
        /// The log end.
        log_end: u64,
    },

    /// A truncation removed an appended batch before it became durable; the
    /// batch was never acknowledged and is gone.
    #[error("the batch at offset {base_offset} was truncated away before it became durable")]
    Truncated {
        /// Base offset the batch had been given.
        base_offset: u64,
    },

    /// Another process (a running broker, most likely) holds the
    /// directory's lock: its files are in use and are not touched.
    #[error(
        "{dir} is in use by another process (a running broker?): stop it first, or read it with `goulette storage inspect --read-only`"
    )]
    DirectoryInUse {
        /// The locked directory.
        dir: PathBuf,
    },

    /// A configuration value is invalid.
    #[error("invalid log configuration `{key}`: {reason}")]
    InvalidConfig {
        /// The configuration key.
        key: &'static str,
        /// Why it was rejected.
        reason: String,
    },

    /// The log was closed, or an earlier fsync failed and the log refuses more
    /// writes (after a failed fsync the page cache state is unknown).
    #[error("partition log {dir} is not open: {state}")]
    Closed {
        /// The partition directory.
        dir: PathBuf,
        /// Why it stopped accepting work (never [`LogState::Open`]).
        state: LogState,
    },
}

/// Where a log file of format `version` came from, and what an operator can
/// do about it.
fn unsupported_format_advice(version: u16, current: u16) -> String {
    let (origin, remedy) = match version {
        1 => (
            "it was written by a Goulette version with batch format 1 (before the Kafka RecordBatch v2 switch)",
            "drain it with the older version",
        ),
        v if v > current => ("it was written by a newer Goulette version", "open it with that version"),
        _ => ("no Goulette version writes it", "open it with the program that wrote it"),
    };
    format!(
        "{origin}, and this version reads only format {current}: {remedy}, or delete the partition directory \
         to start empty; nothing was changed"
    )
}

/// Result alias for the storage crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    /// True when the file system is out of space (or over a quota).
    pub fn is_out_of_space(&self) -> bool {
        // ENOSPC, EDQUOT (Linux).
        matches!(self, StorageError::Io { source, .. } if matches!(source.raw_os_error(), Some(28 | 122)))
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io { context: context.into(), source }
    }

    pub(crate) fn invalid_batch(reason: impl Into<String>) -> Self {
        StorageError::Batch(BatchError::InvalidBatch { reason: reason.into() })
    }

    pub(crate) fn corruption(path: impl Into<PathBuf>, position: u64, reason: impl Into<String>) -> Self {
        StorageError::Corruption { path: path.into(), position, reason: reason.into() }
    }
}

/// Attaches a context (a verb phrase) to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| StorageError::io(context(), source))
    }
}
