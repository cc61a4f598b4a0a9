//! Record batches: the unit of write, replication, storage and fetch.
//!
//! The format is Kafka's RecordBatch v2 (magic 2), byte for byte, so that a
//! Kafka produce is stored as it was sent and a Kafka fetch is served
//! straight from the log's bytes. A producer builds a batch, the broker
//! validates it, stamps the base offset and the partition leader epoch, and
//! stores the bytes as they are. Integers are big-endian, as in Kafka (the
//! file and frame headers Goulette writes around batches are little-endian).
//!
//! ```text
//! offset len field
//!      0   8 base_offset             i64  stamped by the partition leader
//!      8   4 batch_length            i32  bytes after this field (total length - 12)
//!     12   4 partition_leader_epoch  i32  stamped by the partition leader
//!     16   1 magic                   i8   BATCH_MAGIC = 2
//!     17   4 crc                     u32  CRC-32C (Castagnoli) of bytes [21, end)
//!     21   2 attributes              i16  bits 0-2 compression, bit 3 timestamp type
//!                                         (1 = LogAppendTime), bit 4 transactional,
//!                                         bit 5 control, bit 6 delete horizon
//!     23   4 last_offset_delta       i32  record_count - 1
//!     27   8 base_timestamp          i64  ms since the Unix epoch; records hold deltas from it
//!     35   8 max_timestamp           i64
//!     43   8 producer_id             i64  -1 when not idempotent
//!     51   2 producer_epoch          i16  -1 when not idempotent
//!     53   4 base_sequence           i32  -1 when not idempotent
//!     57   4 record_count            i32  >= 1
//!     61     records                      compressed as a whole per `attributes`
//! ```
//!
//! The CRC leaves out the fields the leader rewrites (offset, length, epoch,
//! magic), so stamping a batch never recomputes it; the WAL frame CRC covers
//! the whole batch on disk. Each record (every varint zigzag-encoded, as in
//! protobuf's `sint32`/`sint64`):
//!
//! ```text
//! length            varint   bytes of the record after this field
//! attributes        i8       0 (unused)
//! timestamp_delta   varlong  from base_timestamp
//! offset_delta      varint   0, 1, 2, … in order
//! key_length        varint   -1 = null key
//! key
//! value_length      varint   -1 = null value
//! value
//! header_count      varint
//! headers           (key_length varint, key UTF-8, value_length varint (-1 = null), value) …
//! ```
//!
//! What Goulette accepts is narrower than what Kafka can write: offsets are
//! assigned densely (`last_offset_delta` must be `record_count - 1` and each
//! record's `offset_delta` its index), and transactional and control batches
//! are refused, since Goulette has no transactions yet.
//!
//! Null values: a [`Record`]'s value is `Bytes`, not `Option`, for now. A null
//! value (or null header value) decodes as empty bytes in the [`Record`] view,
//! and [`crate::BatchBuilder`] writes every value non-null; the stored bytes
//! keep a null as it was sent, so a Kafka consumer fetching them sees null.

use bytes::{Bytes, BytesMut};

use crate::compression::Compression;
use crate::error::{BatchError, Result};
use crate::varint;

/// Size of the fixed batch header (Kafka's `RECORD_BATCH_OVERHEAD`).
pub const HEADER_LEN: usize = 61;
/// Bytes before the part of a batch that `batch_length` counts: the base
/// offset and the length itself (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// The batch format version (Kafka's magic) this code reads and writes.
pub const BATCH_MAGIC: u8 = 2;
/// Absolute upper bound of one batch, on the wire and on disk. Configuration
/// may lower it; nothing may raise it (lengths read from disk are checked
/// against it before anything is allocated).
pub const MAX_BATCH_LEN: usize = 64 << 20;
/// Upper bound of a batch's records once decompressed.
pub const MAX_UNCOMPRESSED_LEN: usize = 256 << 20;
/// Batches a partition remembers per idempotent producer, with their
/// offsets: a producer keeps at most this many batches in flight to one
/// partition, so that any retry it sends is one the partition can answer.
pub const CACHED_BATCHES: usize = 32;

/// Position of `base_offset` (i64) in the header.
pub const OFF_BASE_OFFSET: usize = 0;
/// Position of `batch_length` (i32).
pub const OFF_BATCH_LEN: usize = 8;
/// Position of `partition_leader_epoch` (i32).
pub const OFF_LEADER_EPOCH: usize = 12;
/// Position of `magic` (i8).
pub const OFF_MAGIC: usize = 16;
/// Position of `crc` (u32); the CRC covers the bytes from [`OFF_ATTRIBUTES`] on.
pub const OFF_CRC: usize = 17;
/// Position of `attributes` (i16).
pub const OFF_ATTRIBUTES: usize = 21;
/// Position of `last_offset_delta` (i32).
pub const OFF_LAST_OFFSET_DELTA: usize = 23;
/// Position of `base_timestamp` (i64).
pub const OFF_BASE_TIMESTAMP: usize = 27;
/// Position of `max_timestamp` (i64).
pub const OFF_MAX_TIMESTAMP: usize = 35;
/// Position of `producer_id` (i64).
pub const OFF_PRODUCER_ID: usize = 43;
/// Position of `producer_epoch` (i16).
pub const OFF_PRODUCER_EPOCH: usize = 51;
/// Position of `base_sequence` (i32).
pub const OFF_BASE_SEQUENCE: usize = 53;
/// Position of `record_count` (i32).
pub const OFF_RECORD_COUNT: usize = 57;

pub(crate) const COMPRESSION_MASK: u16 = 0b111;
pub(crate) const LOG_APPEND_TIME_BIT: u16 = 1 << 3;
const TRANSACTIONAL_BIT: u16 = 1 << 4;
const CONTROL_BIT: u16 = 1 << 5;
/// The smallest possible encoded record: seven one-byte fields.
pub(crate) const MIN_RECORD_LEN: usize = 7;

/// Wall-clock milliseconds since the Unix epoch: the unit of record
/// timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Whose clock the record timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's clock.
    #[default]
    CreateTime,
    /// The broker's clock at append.
    LogAppendTime,
}

/// A message inside a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Optional key (used for partitioning by the client).
    pub key: Option<Bytes>,
    /// The payload (empty for a null value; see the module doc).
    pub value: Bytes,
    /// Ordered headers; names are UTF-8, values are bytes (empty for null).
    pub headers: Vec<(String, Bytes)>,
}

/// A record read back from a batch, with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The record itself.
    pub record: Record,
    /// Its value is null (read as empty bytes in `record`): on a compacted
    /// topic, a tombstone deleting its key.
    pub null_value: bool,
}

/// Idempotent-producer identity carried by a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id handed out by the sentinels.
    pub producer_id: i64,
    /// Producer epoch (fences older incarnations).
    pub producer_epoch: i16,
    /// Sequence number of the first record.
    pub base_sequence: i32,
}

/// Whether a batch's records must hold every offset it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Density {
    /// Produced and stored batches: offset deltas `0..record_count`.
    Dense,
    /// Served through a filter: offset deltas may skip.
    Sparse,
}

/// A validated view of one encoded batch. Cheap to clone; holds the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    bytes: Bytes,
}

impl Batch {
    /// A batch from bytes this crate just derived from a parsed batch,
    /// changing only fields it rewrote (their CRC recomputed).
    pub(crate) fn from_checked(bytes: Bytes) -> Batch {
        Batch { bytes }
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the total length of the batch at the front of `bytes` (holding at
/// least its first 12 bytes), that is [`LOG_OVERHEAD`] + `batch_length`,
/// without validating anything else. `None` when fewer than 12 bytes are
/// present or `batch_length` is negative. Used to split a byte stream of
/// concatenated batches.
pub fn peek_batch_len(bytes: &[u8]) -> Option<usize> {
    let field = bytes.get(OFF_BATCH_LEN..LOG_OVERHEAD)?;
    let length = i32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    usize::try_from(length).ok()?.checked_add(LOG_OVERHEAD)
}

/// Reads the offset after the last record of the batch at the front of
/// `bytes` (holding at least its header) from its base offset and
/// `last_offset_delta` (a compacted or filtered batch covers offsets it no
/// longer holds records for), without validating anything else. `None`
/// when the header is incomplete, the delta negative or the sum overflows.
pub fn peek_next_offset(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let base = u64::try_from(be_i64(bytes, OFF_BASE_OFFSET)).ok()?;
    let last_delta = u64::try_from(be_i32(bytes, OFF_LAST_OFFSET_DELTA)).ok()?;
    base.checked_add(last_delta)?.checked_add(1)
}

/// The CRC-32C a batch header carries: of everything from the attributes on.
pub(crate) fn batch_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(&bytes[OFF_ATTRIBUTES..])
}

impl Batch {
    /// Checks the header, the length and the CRC of `bytes`, which must hold
    /// exactly one batch, and that it is one Goulette accepts (see the module
    /// doc). Records are not decoded (see [`Batch::records`]).
    pub fn parse(bytes: Bytes) -> Result<Batch> {
        Batch::parse_with(bytes, Density::Dense)
    }

    /// Like [`Batch::parse`], for a batch a broker served through a filter
    /// (see `sparse`): its records may skip offsets, and it may hold none,
    /// but it still covers `base_offset ..= base_offset + last_offset_delta`.
    pub fn parse_sparse(bytes: Bytes) -> Result<Batch> {
        Batch::parse_with(bytes, Density::Sparse)
    }

    fn parse_with(bytes: Bytes, density: Density) -> Result<Batch> {
        if bytes.len() < HEADER_LEN {
            return Err(BatchError::invalid_batch(format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        if bytes.len() > MAX_BATCH_LEN {
            return Err(BatchError::BatchTooLarge { size: bytes.len(), max: MAX_BATCH_LEN });
        }
        let declared = be_i32(&bytes, OFF_BATCH_LEN);
        if i64::from(declared) + LOG_OVERHEAD as i64 != bytes.len() as i64 {
            return Err(BatchError::invalid_batch(format!(
                "batch_length says {declared} bytes after the length field, {} present",
                bytes.len() - LOG_OVERHEAD
            )));
        }
        if bytes[OFF_MAGIC] != BATCH_MAGIC {
            return Err(BatchError::invalid_batch(format!(
                "unsupported magic {} (only RecordBatch v2, magic {BATCH_MAGIC}, is accepted)",
                bytes[OFF_MAGIC] as i8
            )));
        }
        let stored = be_i32(&bytes, OFF_CRC) as u32;
        let actual = batch_crc(&bytes);
        if stored != actual {
            return Err(BatchError::invalid_batch(format!(
                "CRC-32C mismatch: stored {stored:#010x}, computed {actual:#010x}"
            )));
        }
        let batch = Batch { bytes };
        let attributes = batch.attributes();
        if batch.compression().is_none() {
            return Err(BatchError::invalid_batch(format!("unknown compression id {}", attributes & COMPRESSION_MASK)));
        }
        if attributes & TRANSACTIONAL_BIT != 0 {
            return Err(BatchError::invalid_batch("transactional batches are not supported"));
        }
        if attributes & CONTROL_BIT != 0 {
            return Err(BatchError::invalid_batch("control batches are not supported"));
        }
        let count = be_i32(&batch.bytes, OFF_RECORD_COUNT);
        let last_delta = batch.last_offset_delta();
        if density == Density::Sparse {
            if count < 0 || last_delta < 0 || i64::from(last_delta) < i64::from(count) - 1 {
                return Err(BatchError::invalid_batch(format!(
                    "{count} records cannot cover offset deltas 0..={last_delta}"
                )));
            }
        } else if count < 1 {
            return Err(BatchError::invalid_batch(format!("record_count is {count}")));
        } else if i64::from(last_delta) != i64::from(count) - 1 {
            return Err(BatchError::invalid_batch(format!(
                "last_offset_delta is {last_delta} for {count} records: offsets must be dense \
                 (last_offset_delta = record_count - 1)"
            )));
        }
        // Records must fit in the bytes present, or for a compressed batch in
        // the largest records section decompression may produce: a batch
        // cannot claim (and burn) more offsets than it could hold.
        let room = match batch.compression() {
            Some(Compression::None) => batch.bytes.len() - HEADER_LEN,
            _ => MAX_UNCOMPRESSED_LEN,
        };
        if (count as usize).saturating_mul(MIN_RECORD_LEN) > room {
            return Err(BatchError::invalid_batch(format!("{count} records cannot fit in {room} bytes")));
        }
        Ok(batch)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the view, returning the bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        be_i64(&self.bytes, OFF_BASE_OFFSET) as u64
    }

    /// Offset after the last one the batch covers (its last record's,
    /// unless a filter took that record out).
    pub fn next_offset(&self) -> u64 {
        self.base_offset() + self.last_offset_delta() as u64 + 1
    }

    /// Leader epoch stamped by the leader that appended it (a Kafka producer
    /// sends -1, read here as `u32::MAX`, until the leader stamps it).
    pub fn partition_leader_epoch(&self) -> u32 {
        be_i32(&self.bytes, OFF_LEADER_EPOCH) as u32
    }

    /// The raw attributes field.
    pub fn attributes(&self) -> u16 {
        be_i16(&self.bytes, OFF_ATTRIBUTES) as u16
    }

    /// The codec of the records section (`None` for an unknown id; [`Batch::parse`] rejects those).
    pub fn compression(&self) -> Option<Compression> {
        Compression::from_id(self.attributes() & COMPRESSION_MASK)
    }

    /// Whose clock the timestamps come from.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & LOG_APPEND_TIME_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Offset delta of the last offset the batch covers: `record_count - 1`
    /// in a batch parsed by [`Batch::parse`] (dense).
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(&self.bytes, OFF_LAST_OFFSET_DELTA)
    }

    /// Timestamp of the first record (Kafka's `baseTimestamp`).
    pub fn first_timestamp(&self) -> i64 {
        be_i64(&self.bytes, OFF_BASE_TIMESTAMP)
    }

    /// The batch's CRC-32C (of its attributes, producer fields and records).
    pub fn crc(&self) -> u32 {
        be_i32(&self.bytes, OFF_CRC) as u32
    }

    /// Largest record timestamp.
    pub fn max_timestamp(&self) -> i64 {
        be_i64(&self.bytes, OFF_MAX_TIMESTAMP)
    }

    /// Idempotent-producer identity, if any.
    pub fn producer(&self) -> Option<ProducerInfo> {
        let producer_id = be_i64(&self.bytes, OFF_PRODUCER_ID);
        (producer_id >= 0).then(|| ProducerInfo {
            producer_id,
            producer_epoch: be_i16(&self.bytes, OFF_PRODUCER_EPOCH),
            base_sequence: be_i32(&self.bytes, OFF_BASE_SEQUENCE),
        })
    }

    /// Number of records (at least 1 after [`Batch::parse`]; a sparse
    /// batch may have none).
    pub fn record_count(&self) -> u32 {
        be_i32(&self.bytes, OFF_RECORD_COUNT) as u32
    }

    /// Number of offsets the batch covers (`last_offset_delta + 1`): its
    /// record count unless compaction or a filter took records out. A
    /// producer's sequence numbers follow offsets, as in Kafka.
    pub fn offset_count(&self) -> u32 {
        self.last_offset_delta() as u32 + 1
    }

    /// Total encoded length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a parsed batch holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Returns a copy of this batch with the leader's base offset and epoch
    /// stamped in (the CRC does not cover them, so it stays valid).
    pub fn stamped(&self, base_offset: u64, leader_epoch: u32) -> Batch {
        let mut buf = BytesMut::from(&self.bytes[..]);
        buf[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
        buf[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_be_bytes());
        Batch { bytes: buf.freeze() }
    }

    /// Returns a copy of this batch under idempotent producer `info` (its
    /// id, epoch and base sequence), with the CRC-32C recomputed since it
    /// covers them. A producer numbers a batch when it first sends it.
    pub fn with_producer(&self, info: ProducerInfo) -> Batch {
        let mut buf = BytesMut::from(&self.bytes[..]);
        buf[OFF_PRODUCER_ID..OFF_PRODUCER_ID + 8].copy_from_slice(&info.producer_id.to_be_bytes());
        buf[OFF_PRODUCER_EPOCH..OFF_PRODUCER_EPOCH + 2].copy_from_slice(&info.producer_epoch.to_be_bytes());
        buf[OFF_BASE_SEQUENCE..OFF_BASE_SEQUENCE + 4].copy_from_slice(&info.base_sequence.to_be_bytes());
        let crc = batch_crc(&buf);
        buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Batch { bytes: buf.freeze() }
    }

    /// Decodes every record, checking each length and count against the bytes
    /// present. Uncompressed keys and values are zero-copy slices of the batch.
    pub fn records(&self) -> Result<Vec<StoredRecord>> {
        self.iter_records()?.collect()
    }

    /// Decompresses the records section (bounded by `MAX_UNCOMPRESSED_LEN`)
    /// and returns an iterator that decodes one record per step, so a caller
    /// looking for one record never materializes the others.
    pub fn iter_records(&self) -> Result<RecordIter> {
        let body = self.bytes.slice(HEADER_LEN..);
        let codec = self.compression().ok_or_else(|| BatchError::invalid_batch("unknown compression"))?;
        let records = match codec {
            Compression::None => body,
            codec => Bytes::from(codec.decompress(&body, MAX_UNCOMPRESSED_LEN)?),
        };
        Ok(RecordIter {
            pos: 0,
            records,
            index: 0,
            count: self.record_count(),
            base_offset: self.base_offset(),
            first_timestamp: self.first_timestamp(),
            last_delta: i64::from(self.last_offset_delta()),
            previous_delta: -1,
            done: false,
        })
    }
}

/// Decodes a batch's records one at a time. Yields an error (and then stops)
/// at the first malformed record, or when the count and the bytes disagree.
#[derive(Debug)]
pub struct RecordIter {
    records: Bytes,
    pos: usize,
    index: u32,
    count: u32,
    base_offset: u64,
    first_timestamp: i64,
    /// Offset deltas rise strictly up to this one: in a dense batch each
    /// record's delta is its index, in a sparse one some are skipped.
    last_delta: i64,
    previous_delta: i64,
    done: bool,
}

impl Iterator for RecordIter {
    type Item = Result<StoredRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index == self.count {
            self.done = true;
            let rest = self.records.len() - self.pos;
            return (rest != 0).then(|| Err(BatchError::invalid_batch(format!("{rest} bytes after the last record"))));
        }
        let item = self.decode_one();
        self.done = item.is_err();
        self.index += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Never promise more records than the bytes left could hold.
        let left = (self.count - self.index.min(self.count)) as usize;
        (0, Some(left.min((self.records.len() - self.pos) / MIN_RECORD_LEN + 1)))
    }
}

/// Reads a length-prefixed field (`-1` = null) from the front of `rec`, a
/// window of `records` that ends at position `end`, as a zero-copy slice of
/// `records`, advancing `rec` past it. `None` for a bad length.
fn nullable_field(records: &Bytes, end: usize, rec: &mut &[u8]) -> Option<Option<Bytes>> {
    let n = varint::get_varint(rec)?;
    if n == -1 {
        return Some(None);
    }
    let n = usize::try_from(n).ok().filter(|&n| n <= rec.len())?;
    let from = end - rec.len();
    *rec = &rec[n..];
    Some(Some(records.slice(from..from + n)))
}

impl RecordIter {
    /// The next record with its encoded bytes (length prefix included), for
    /// copying it into another batch unchanged.
    pub(crate) fn next_with_bytes(&mut self) -> Option<Result<(StoredRecord, Bytes)>> {
        let from = self.pos;
        let record = self.next()?;
        Some(record.map(|r| (r, self.records.slice(from..self.pos))))
    }

    fn decode_one(&mut self) -> Result<StoredRecord> {
        let i = self.index;
        let bad = |what: &str| BatchError::invalid_batch(format!("record {i}: {what}"));
        let records = &self.records;
        let mut rest: &[u8] = &records[self.pos..];
        let len = varint::get_varint(&mut rest).ok_or_else(|| bad("bad length"))?;
        let len = usize::try_from(len).map_err(|_| bad("negative length"))?;
        if len > rest.len() {
            return Err(bad("length runs past the batch"));
        }
        let start = records.len() - rest.len();
        self.pos = start + len;
        let mut rec: &[u8] = &rest[..len];
        let field = |rec: &mut &[u8], what: &str| {
            nullable_field(records, start + len, rec).ok_or_else(|| bad(&format!("bad {what} length")))
        };

        let (_attributes, tail) = rec.split_first().ok_or_else(|| bad("missing attributes"))?;
        rec = tail;
        let ts_delta = varint::get_varlong(&mut rec).ok_or_else(|| bad("bad timestamp delta"))?;
        let offset_delta = i64::from(varint::get_varint(&mut rec).ok_or_else(|| bad("bad offset delta"))?);
        if offset_delta <= self.previous_delta || offset_delta > self.last_delta {
            return Err(bad(&format!("offset delta {offset_delta} out of order")));
        }
        self.previous_delta = offset_delta;
        let key = field(&mut rec, "key")?;
        let value = field(&mut rec, "value")?;
        let null_value = value.is_none();
        let value = value.unwrap_or_default();
        let header_count = varint::get_varint(&mut rec).ok_or_else(|| bad("bad header count"))?;
        // Each header takes at least two bytes.
        if header_count < 0 || header_count as usize > rec.len() / 2 {
            return Err(bad(&format!("header count {header_count} does not fit the record")));
        }
        let mut headers = Vec::with_capacity((header_count as usize).min(64));
        for _ in 0..header_count {
            let name = field(&mut rec, "header name")?.ok_or_else(|| bad("null header name"))?;
            let name = std::str::from_utf8(&name).map_err(|_| bad("header name is not UTF-8"))?.to_owned();
            let value = field(&mut rec, "header value")?.unwrap_or_default();
            headers.push((name, value));
        }
        if !rec.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(StoredRecord {
            offset: self.base_offset + offset_delta as u64,
            record: Record { timestamp: self.first_timestamp.wrapping_add(ts_delta), key, value, headers },
            null_value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BatchBuilder;
    use proptest::prelude::*;

    fn record_strategy() -> impl Strategy<Value = Record> {
        (
            -1_000_000i64..1_000_000,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(("[a-z]{0,8}", proptest::collection::vec(any::<u8>(), 0..16)), 0..4),
        )
            .prop_map(|(ts, key, value, headers)| Record {
                timestamp: 1_700_000_000_000 + ts,
                key: key.map(Bytes::from),
                value: Bytes::from(value),
                headers: headers.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect(),
            })
    }

    proptest! {
        /// `push_within` never lets a batch of more than one record pass its
        /// limit, and `encoded_len` is exactly the uncompressed encoding's length.
        #[test]
        fn push_within_keeps_a_batch_under_its_limit(
            records in proptest::collection::vec(record_strategy(), 1..20),
            limit in 60usize..2000,
        ) {
            let mut b = BatchBuilder::new(Compression::None);
            let mut pushed = 0;
            for r in &records {
                if !b.push_within(r, limit) {
                    break;
                }
                pushed += 1;
                prop_assert!(pushed == 1 || b.encoded_len() <= limit);
            }
            prop_assert!(pushed >= 1);
            let len = b.encoded_len();
            prop_assert_eq!(b.build().unwrap().len(), len);
        }
    }

    fn codec_strategy() -> impl Strategy<Value = Compression> {
        proptest::sample::select(Compression::ALL.to_vec())
    }

    fn build(records: &[Record], codec: Compression) -> Batch {
        let mut builder = BatchBuilder::new(codec);
        for r in records {
            builder.push(r);
        }
        Batch::parse(builder.build().unwrap()).unwrap()
    }

    proptest! {
        #[test]
        fn batches_round_trip(records in proptest::collection::vec(record_strategy(), 1..20), codec in codec_strategy(),
                              base in 0u64..1 << 40, epoch in any::<u32>()) {
            let batch = build(&records, codec).stamped(base, epoch);
            let batch = Batch::parse(batch.into_bytes()).unwrap();
            prop_assert_eq!(batch.base_offset(), base);
            prop_assert_eq!(batch.partition_leader_epoch(), epoch);
            prop_assert_eq!(batch.compression(), Some(codec));
            prop_assert_eq!(batch.max_timestamp(), records.iter().map(|r| r.timestamp).max().unwrap());
            let decoded = batch.records().unwrap();
            prop_assert_eq!(decoded.len(), records.len());
            for (i, (got, want)) in decoded.iter().zip(&records).enumerate() {
                prop_assert_eq!(got.offset, base + i as u64);
                prop_assert_eq!(&got.record, want);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(batch) = Batch::parse(Bytes::from(bytes)) {
                let _ = batch.records();
            }
        }

        #[test]
        fn flipped_bytes_are_caught_by_the_crc(records in proptest::collection::vec(record_strategy(), 1..5),
                                               at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let mut bytes = build(&records, Compression::None).into_bytes().to_vec();
            // Offsets, length, epoch and magic are outside the batch CRC (the WAL frame CRC covers them).
            let i = OFF_ATTRIBUTES + at.index(bytes.len() - OFF_ATTRIBUTES);
            bytes[i] ^= flip;
            prop_assert!(Batch::parse(Bytes::from(bytes)).is_err());
        }
    }

    /// `bytes` with their CRC recomputed.
    fn with_crc(mut bytes: Vec<u8>) -> Bytes {
        let crc = batch_crc(&bytes);
        bytes[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(bytes)
    }

    /// Rewrites a header field of an encoded batch and recomputes its CRC, so
    /// that only the rewritten field can be caught.
    fn rewritten(mut bytes: Vec<u8>, at: usize, field: &[u8]) -> Bytes {
        bytes[at..at + field.len()].copy_from_slice(field);
        with_crc(bytes)
    }

    fn one_record(codec: Compression) -> Vec<u8> {
        let mut builder = BatchBuilder::new(codec);
        builder.push(&Record { value: Bytes::from_static(b"v"), ..Record::default() });
        builder.build().unwrap().to_vec()
    }

    /// A one-record batch whose header claims `count` records (with a
    /// matching last offset delta), so that only the lie itself can be caught.
    fn lying_about_count(codec: Compression, count: i32) -> Bytes {
        let bytes = rewritten(one_record(codec), OFF_LAST_OFFSET_DELTA, &(count - 1).to_be_bytes());
        rewritten(bytes.to_vec(), OFF_RECORD_COUNT, &count.to_be_bytes())
    }

    fn rejection(bytes: Bytes) -> String {
        match Batch::parse(bytes) {
            Err(BatchError::InvalidBatch { reason }) => reason,
            other => panic!("expected an invalid batch, got {other:?}"),
        }
    }

    /// Lying counts are rejected at parse, before anything is allocated for
    /// them: for an uncompressed batch against its bytes, for a compressed one
    /// against the largest records section it could decompress to (a batch
    /// must not burn offsets it does not use).
    #[test]
    fn impossible_record_counts_are_rejected_at_parse() {
        assert!(rejection(lying_about_count(Compression::None, i32::MAX)).contains("cannot fit"));
        assert!(rejection(lying_about_count(Compression::Zstd, i32::MAX)).contains("cannot fit"));
        assert!(rejection(lying_about_count(Compression::None, 0)).contains("record_count is 0"));
        assert!(rejection(lying_about_count(Compression::None, -5)).contains("record_count is -5"));
    }

    #[test]
    fn a_count_larger_than_the_records_is_an_error_from_the_iterator() {
        let batch = Batch::parse(lying_about_count(Compression::Lz4, 2)).unwrap();
        let results: Vec<_> = batch.iter_records().unwrap().collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok() && results[1].is_err());
        assert!(batch.records().is_err());
    }

    /// Goulette assigns offsets densely: a batch whose last offset delta is
    /// not `record_count - 1` (Kafka's compacted batches can have gaps) is
    /// refused, as is one whose records' offset deltas skip.
    #[test]
    fn sparse_offsets_are_rejected() {
        let gap = rewritten(one_record(Compression::None), OFF_LAST_OFFSET_DELTA, &3i32.to_be_bytes());
        assert!(rejection(gap).contains("last_offset_delta is 3 for 1 records"));
        // The record's offset delta (zigzag 1 = 0x02) in place of 0.
        let mut bytes = one_record(Compression::None);
        assert_eq!(bytes[HEADER_LEN + 3], 0x00);
        bytes[HEADER_LEN + 3] = 0x02;
        let batch = Batch::parse(with_crc(bytes)).unwrap();
        assert!(batch.records().unwrap_err().to_string().contains("offset delta 1 out of order"));
    }

    #[test]
    fn transactional_and_control_batches_are_rejected() {
        let transactional = rewritten(one_record(Compression::None), OFF_ATTRIBUTES, &(1i16 << 4).to_be_bytes());
        assert_eq!(rejection(transactional), "transactional batches are not supported");
        let marker = rewritten(one_record(Compression::None), OFF_ATTRIBUTES, &(3i16 << 4).to_be_bytes());
        assert_eq!(rejection(marker), "transactional batches are not supported");
        let control = rewritten(one_record(Compression::None), OFF_ATTRIBUTES, &(1i16 << 5).to_be_bytes());
        assert_eq!(rejection(control), "control batches are not supported");
        let codec = rewritten(one_record(Compression::None), OFF_ATTRIBUTES, &5i16.to_be_bytes());
        assert!(rejection(codec).contains("unknown compression id 5"));
    }

    /// What an older Goulette (magic 1) or Kafka's legacy message sets
    /// (magic 0 and 1) look like is refused by its magic, and lengths must
    /// agree exactly.
    #[test]
    fn other_magics_and_inconsistent_lengths_are_rejected() {
        let mut old = one_record(Compression::None);
        old[OFF_MAGIC] = 1;
        assert!(rejection(Bytes::from(old)).contains("unsupported magic 1"));
        let mut longer = one_record(Compression::None);
        longer.push(0);
        assert!(rejection(Bytes::from(longer)).contains("batch_length says"));
        let negative = rewritten(one_record(Compression::None), OFF_BATCH_LEN, &(-1i32).to_be_bytes());
        assert!(rejection(negative).contains("batch_length says -1"));
    }

    #[test]
    fn peek_batch_len_reads_the_total_length_and_guards_its_input() {
        let bytes = one_record(Compression::None);
        assert_eq!(peek_batch_len(&bytes), Some(bytes.len()));
        assert_eq!(peek_batch_len(&bytes[..LOG_OVERHEAD]), Some(bytes.len()));
        assert_eq!(peek_batch_len(&bytes[..LOG_OVERHEAD - 1]), None);
        let mut negative = bytes.clone();
        negative[OFF_BATCH_LEN..OFF_BATCH_LEN + 4].copy_from_slice(&(-12i32).to_be_bytes());
        assert_eq!(peek_batch_len(&negative), None);
        let mut largest = bytes.clone();
        largest[OFF_BATCH_LEN..OFF_BATCH_LEN + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(peek_batch_len(&largest), Some(i32::MAX as usize + LOG_OVERHEAD));
    }

    #[test]
    fn peek_next_offset_reads_the_header_only() {
        let batch = Batch::parse(Bytes::from(one_record(Compression::None))).unwrap().stamped(41, 3);
        assert_eq!(peek_next_offset(batch.as_bytes()), Some(42));
        assert_eq!(peek_next_offset(&batch.as_bytes()[..HEADER_LEN - 1]), None);
        let zero = lying_about_count(Compression::None, 0);
        assert_eq!(peek_next_offset(&zero), None);
    }

    /// `with_producer` changes fields the CRC covers, so it must recompute it.
    #[test]
    fn with_producer_keeps_the_batch_valid() {
        let batch = Batch::parse(Bytes::from(one_record(Compression::Gzip))).unwrap();
        let info = ProducerInfo { producer_id: 7, producer_epoch: 2, base_sequence: 40 };
        let numbered = Batch::parse(batch.with_producer(info).into_bytes()).unwrap();
        assert_eq!(numbered.producer(), Some(info));
        assert_ne!(numbered.crc(), batch.crc());
        assert_eq!(numbered.records().unwrap(), batch.records().unwrap());
    }

    #[test]
    fn empty_batches_cannot_be_built() {
        assert!(BatchBuilder::new(Compression::None).build().is_err());
    }
}
