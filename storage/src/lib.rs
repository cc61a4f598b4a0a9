//! Goulette's partition log: the storage engine under every broker.
//!
//! - [`batch`], [`compression`]: the record-batch codec, re-exported from
//!   `goulette-batch` (the crate clients depend on instead of this one).
//! - [`log`]: [`PartitionLog`], one partition's log, one file per concept:
//!   append, read, open and recovery, durability (group commit), seal,
//!   lifecycle (truncation, retention, close), compaction.
//! - `wal`, `fragment`: the active WAL file and the sealed, mmap'd fragments.
//! - [`frame`], [`index`]: the on-disk formats of log files and their indexes.
//! - `recovery`: WAL scanning, torn-tail truncation, index rebuilds.
//! - [`read_only`]: a directory read without recovery or its lock (inspection of a live broker's).
//! - [`repair`]: cutting a damaged log at its first bad batch (a follower then re-fetches the rest).
//! - [`clock`]: the wall clock, and the clock time retention is judged by (immune to wall-clock steps).
//! - [`identity`]: which topic incarnation a partition directory belongs to.
//! - [`epochs`]: the leader-epoch history replication truncates by.
//! - [`producers`]: idempotent producers' recent batches (retries answered, not re-appended).
//! - [`dir_lock`]: one process per directory (a broker's data directory, each partition's).
//! - [`crashsafe`]: the one durable file write (tmp, fsync, rename, fsync directory).
//! - [`config`], [`error`]: settings and the one error type.
//! - [`timers`]: delayed delivery's timer index (what is due when, what was delivered), kept beside the log.
//! - [`observe`]: the hook through which the broker measures fdatasyncs.
//!
//! No networking lives here. The formats are documented in each module and in
//! `docs/storage.md`.

pub use goulette_batch::{batch, compression, delayed, tags};

pub mod clock;
pub mod config;
pub mod crashsafe;
pub mod dir_lock;
pub mod epochs;
pub mod error;
mod fragment;
pub mod frame;
pub mod identity;
pub mod index;
pub mod log;
pub mod log_start;
pub mod observe;
mod prealloc;
pub mod producers;
mod read;
pub mod read_only;
mod recovery;
pub mod repair;
mod sys;
pub mod timers;
mod timestamp;
mod wal;

pub use clock::now_ms;
pub use compression::Compression;
pub use config::{FlushPolicy, LogConfig, Retention, Rolling};
pub use dir_lock::DirLock;
pub use error::{Result, StorageError};
pub use goulette_batch::{
    Batch, BatchBuilder, BatchError, ProducerInfo, Record, RecordIter, StoredRecord, TimestampType,
};
pub use log::compact::{CompactionPolicy, CompactionReport, OffsetMap, Throttle};
pub use log::{AppendInfo, DurableWait, LogState, PartitionLog, PendingAppend};
pub use sys::{free_bytes, raise_open_files_limit};
