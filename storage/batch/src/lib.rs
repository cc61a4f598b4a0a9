//! Goulette's record-batch codec: the bytes a producer sends, a broker
//! stores and replicates, and a consumer decodes.
//!
//! - [`batch`]: the batch format, Kafka's RecordBatch v2 byte for byte, and
//!   [`Batch`] (validation and record decoding), with the limits every side
//!   enforces.
//! - `builder`: [`BatchBuilder`], encoding records into a batch.
//! - [`compression`]: gzip, snappy, lz4 and zstd for a batch's records, in
//!   Kafka's framings.
//! - [`delayed`]: delayed delivery's headers and batch bits, and what a
//!   consumer is sent of a batch holding records not yet due.
//! - [`error`]: [`BatchError`], what encoding or decoding can fail with.
//! - `sparse`: [`Batch::retain`], a batch with some records left out (what
//!   a filtered fetch serves).
//! - [`tags`]: record tags and the filters consumers fetch with.
//!
//! Pure computation on bytes: no file or network I/O, so that a client can
//! encode batches without depending on the storage engine.

pub mod batch;
mod builder;
pub mod compression;
pub mod delayed;
pub mod error;
mod sparse;
pub mod tags;
mod varint;

pub use batch::{
    Batch, CACHED_BATCHES, MAX_BATCH_LEN, ProducerInfo, Record, RecordIter, StoredRecord, TimestampType, now_ms,
};
pub use builder::BatchBuilder;
pub use compression::Compression;
pub use error::{BatchError, Result};
pub use tags::{TAG_HEADER, TagFilter};
