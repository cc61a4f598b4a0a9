//! What a `goulette etcd` command can fail with.

use std::path::PathBuf;

use goulette_sentinel::error::SentinelError;

/// Everything a `goulette etcd` command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The flags do not describe a usable etcd target.
    #[error("invalid etcd flags: {0}")]
    InvalidTarget(String),
    /// No endpoint answered.
    #[error("cannot reach etcd at {endpoints} (is it running? see --etcd-endpoints): {errors}")]
    Unreachable {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// Each endpoint's error.
        errors: String,
    },
    /// etcd could not be reached or refused a request.
    #[error("etcd at {endpoints} could not {context}: {source}")]
    Etcd {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// What was being done.
        context: String,
        /// The client error.
        #[source]
        source: etcd_client::Error,
    },
    /// Reading through the sentinel's store failed other than by an etcd error.
    #[error("etcd at {endpoints}: {source}")]
    Store {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// The store error.
        #[source]
        source: SentinelError,
    },
    /// The temporary etcd of `--etcd-data-dir` could not be started.
    #[error("cannot open the etcd data directory {data_dir}: {why}")]
    OfflineEtcd {
        /// The data directory.
        data_dir: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// A key or value under the prefix is not UTF-8 (Goulette writes only UTF-8).
    #[error("{what} {key:?} is not UTF-8; Goulette writes only UTF-8, so it was not written by Goulette")]
    NotUtf8 {
        /// `key` or `the value of key`.
        what: &'static str,
        /// The key (lossily decoded).
        key: String,
    },
    /// Reading or writing a backup file failed.
    #[error("could not {action} {path}: {source}")]
    File {
        /// What was being done (`write`, `read`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a backup file durably failed (the old file, if any, is intact).
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The storage layer's error, with the step that failed.
        #[source]
        source: goulette_storage::StorageError,
    },
    /// The file is not a backup this tool wrote, or it holds keys it must not restore.
    #[error("invalid backup: {0}")]
    BadBackup(String),
    /// The backup was taken from another prefix.
    #[error(
        "the backup holds prefix {backup:?} but --etcd-prefix is {target:?}; restore it with --etcd-prefix {backup}"
    )]
    PrefixMismatch {
        /// The backup's prefix.
        backup: String,
        /// The prefix asked for.
        target: String,
    },
    /// Restore refuses to write into a prefix that already holds keys.
    #[error(
        "refusing to restore: {count} keys already exist under {root}; nothing was written \
         (if they are expendable, run `goulette etcd clean --yes` first)"
    )]
    NotEmpty {
        /// The prefix with its trailing `/`.
        root: String,
        /// How many keys it holds.
        count: i64,
    },
    /// A restore failed after some of its transactions were committed.
    #[error(
        "restore stopped after writing {written} of {total} keys: {source}; {root} now holds a partial restore \
         without its op counter: run `goulette etcd clean --yes`, then restore again"
    )]
    RestoreInterrupted {
        /// The prefix with its trailing `/`.
        root: String,
        /// Keys committed before the failure.
        written: usize,
        /// Keys in the backup.
        total: usize,
        /// What failed.
        #[source]
        source: Box<AdminError>,
    },
    /// `clean` was not confirmed.
    #[error("refusing to delete every key under {root} without --yes")]
    NotConfirmed {
        /// The prefix with its trailing `/`.
        root: String,
    },
}

/// Result alias for this module.
pub type Result<T, E = AdminError> = std::result::Result<T, E>;
