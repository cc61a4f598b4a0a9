//! Whether a partition log accepts work, and why not.
//!
//! A leaf module: the error type names these states, so they depend on
//! nothing else in the crate.

use std::fmt;

/// Whether a log accepts work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogState {
    /// Appends, reads and maintenance run.
    Open,
    /// A step failed: after a failed fsync the kernel may have dropped dirty
    /// pages, and after a failed multi-file step the file set in memory may
    /// not match the directory, so nothing more is accepted. Reopening the
    /// log recovers it (and completes an interrupted seal or truncation).
    Failed {
        /// The step that failed.
        step: Step,
        /// The error it failed with.
        cause: String,
    },
    /// Closed by its owner.
    Closed,
}

/// A step of the log whose failure fails the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Writing a batch into the WAL (and cutting a short write back failed,
    /// or the disk is full).
    Append,
    /// An fdatasync of the WAL.
    Fdatasync,
    /// Sealing the WAL into a fragment.
    Seal,
    /// Truncating the log (replica divergence).
    Truncate,
    /// Emptying the log (a follower behind its leader's log start).
    Reset,
    /// Installing a compacted fragment in place of its sources.
    Compact,
}

impl LogState {
    /// The state after `step` failed with `cause`.
    pub fn failed(step: Step, cause: impl fmt::Display) -> LogState {
        LogState::Failed { step, cause: cause.to_string() }
    }
}

impl fmt::Display for LogState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogState::Open => f.write_str("open"),
            LogState::Failed { step, cause } => write!(f, "{step} failed: {cause}"),
            LogState::Closed => f.write_str("closed"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Append => "append",
            Step::Fdatasync => "fdatasync",
            Step::Seal => "sealing",
            Step::Truncate => "truncation",
            Step::Reset => "reset",
            Step::Compact => "compaction",
        })
    }
}
