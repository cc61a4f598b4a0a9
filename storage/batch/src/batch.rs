//! Record batches: the unit of write, replication, storage and fetch.
//!
//! A producer builds a batch, the broker validates it, stamps the base offset and
//! the partition leader epoch, and stores the bytes as they are, so a fetch can be
//! served straight from the file. All integers are little-endian.
//!
//! ```text
//! offset len field
//!      0   8 base_offset             u64  stamped by the partition leader
//!      8   4 batch_len               u32  total bytes of the batch, this header included
//!     12   4 partition_leader_epoch  u32  stamped by the partition leader
//!     16   1 magic                   u8   BATCH_MAGIC (format version)
//!     17   4 crc                     u32  CRC-32 (IEEE) of bytes [21, batch_len)
//!     21   2 attributes              u16  bits 0-2 compression, bit 3 timestamp type
//!     23   8 first_timestamp         i64  ms since the Unix epoch
//!     31   8 max_timestamp           i64
//!     39   8 producer_id             i64  -1 when not idempotent
//!     47   2 producer_epoch          i16
//!     49   4 base_sequence           i32  -1 when not idempotent
//!     53   4 record_count            u32  >= 1
//!     57     records                      compressed as a whole per `attributes`
//! ```
//!
//! The CRC leaves out the fields the leader rewrites (offset, length, epoch,
//! magic), so stamping a batch never recomputes it; the WAL frame CRC covers
//! the whole batch on disk. Each record (varints are LEB128, `zz` = zigzag):
//!
//! ```text
//! length            varint   bytes of the record after this field
//! attributes        u8       0 (reserved)
//! timestamp_delta   zz       from first_timestamp
//! offset_delta      varint   0, 1, 2, … in order
//! key_length        zz       -1 = no key
//! key
//! value_length      varint
//! value
//! header_count      varint
//! headers           (key_length varint, key UTF-8, value_length varint, value) …
//! ```

use bytes::{Bytes, BytesMut};

use crate::compression::Compression;
use crate::error::{BatchError, Result};
use crate::varint;

/// Size of the fixed batch header.
pub const HEADER_LEN: usize = 57;
/// The batch format version this code reads and writes.
pub const BATCH_MAGIC: u8 = 1;
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

pub(crate) const OFF_BASE_OFFSET: usize = 0;
pub(crate) const OFF_BATCH_LEN: usize = 8;
pub(crate) const OFF_LEADER_EPOCH: usize = 12;
pub(crate) const OFF_MAGIC: usize = 16;
pub(crate) const OFF_CRC: usize = 17;
pub(crate) const OFF_ATTRIBUTES: usize = 21;
pub(crate) const OFF_FIRST_TS: usize = 23;
pub(crate) const OFF_MAX_TS: usize = 31;
pub(crate) const OFF_PRODUCER_ID: usize = 39;
pub(crate) const OFF_PRODUCER_EPOCH: usize = 47;
pub(crate) const OFF_BASE_SEQUENCE: usize = 49;
pub(crate) const OFF_RECORD_COUNT: usize = 53;

pub(crate) const COMPRESSION_MASK: u16 = 0b111;
pub(crate) const LOG_APPEND_TIME_BIT: u16 = 1 << 3;
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
    /// The payload.
    pub value: Bytes,
    /// Ordered headers; names are UTF-8, values are bytes.
    pub headers: Vec<(String, Bytes)>,
}

/// A record read back from a batch, with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The record itself.
    pub record: Record,
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

/// A validated view of one encoded batch. Cheap to clone; holds the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    bytes: Bytes,
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Reads `batch_len` from the front of a buffer holding (at least the start of)
/// a batch, without validating anything else. Used to split a byte stream of
/// concatenated batches.
pub fn peek_batch_len(bytes: &[u8]) -> Option<usize> {
    (bytes.len() >= OFF_BATCH_LEN + 4).then(|| le_u32(bytes, OFF_BATCH_LEN) as usize)
}

impl Batch {
    /// Checks the header, the length and the CRC of `bytes`, which must hold
    /// exactly one batch. Records are not decoded (see [`Batch::records`]).
    pub fn parse(bytes: Bytes) -> Result<Batch> {
        if bytes.len() < HEADER_LEN {
            return Err(BatchError::invalid_batch(format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            )));
        }
        if bytes.len() > MAX_BATCH_LEN {
            return Err(BatchError::BatchTooLarge { size: bytes.len(), max: MAX_BATCH_LEN });
        }
        let declared = le_u32(&bytes, OFF_BATCH_LEN) as usize;
        if declared != bytes.len() {
            return Err(BatchError::invalid_batch(format!("batch_len says {declared} bytes, {} present", bytes.len())));
        }
        if bytes[OFF_MAGIC] != BATCH_MAGIC {
            return Err(BatchError::invalid_batch(format!("unknown magic {}", bytes[OFF_MAGIC])));
        }
        let stored = le_u32(&bytes, OFF_CRC);
        let actual = crc32fast::hash(&bytes[OFF_ATTRIBUTES..]);
        if stored != actual {
            return Err(BatchError::invalid_batch(format!(
                "CRC mismatch: stored {stored:#010x}, computed {actual:#010x}"
            )));
        }
        let batch = Batch { bytes };
        if batch.compression().is_none() {
            return Err(BatchError::invalid_batch(format!(
                "unknown compression id {}",
                batch.attributes() & COMPRESSION_MASK
            )));
        }
        if batch.record_count() == 0 {
            return Err(BatchError::invalid_batch("record_count is 0"));
        }
        // Records must fit in the bytes present, or for a compressed batch in
        // the largest records section decompression may produce: a batch
        // cannot claim (and burn) more offsets than it could hold.
        let room = match batch.compression() {
            Some(Compression::None) => batch.bytes.len() - HEADER_LEN,
            _ => MAX_UNCOMPRESSED_LEN,
        };
        if (batch.record_count() as usize).saturating_mul(MIN_RECORD_LEN) > room {
            return Err(BatchError::invalid_batch(format!(
                "{} records cannot fit in {room} bytes",
                batch.record_count()
            )));
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
        le_u64(&self.bytes, OFF_BASE_OFFSET)
    }

    /// Offset after the last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset() + u64::from(self.record_count())
    }

    /// Leader epoch stamped by the leader that appended it.
    pub fn partition_leader_epoch(&self) -> u32 {
        le_u32(&self.bytes, OFF_LEADER_EPOCH)
    }

    /// The raw attributes field.
    pub fn attributes(&self) -> u16 {
        le_u16(&self.bytes, OFF_ATTRIBUTES)
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

    /// Timestamp of the first record.
    pub fn first_timestamp(&self) -> i64 {
        le_u64(&self.bytes, OFF_FIRST_TS) as i64
    }

    /// The batch's CRC (of its records and producer fields).
    pub fn crc(&self) -> u32 {
        le_u32(&self.bytes, OFF_CRC)
    }

    /// Largest record timestamp.
    pub fn max_timestamp(&self) -> i64 {
        le_u64(&self.bytes, OFF_MAX_TS) as i64
    }

    /// Idempotent-producer identity, if any.
    pub fn producer(&self) -> Option<ProducerInfo> {
        let producer_id = le_u64(&self.bytes, OFF_PRODUCER_ID) as i64;
        (producer_id >= 0).then(|| ProducerInfo {
            producer_id,
            producer_epoch: le_u16(&self.bytes, OFF_PRODUCER_EPOCH) as i16,
            base_sequence: le_u32(&self.bytes, OFF_BASE_SEQUENCE) as i32,
        })
    }

    /// Number of records.
    pub fn record_count(&self) -> u32 {
        le_u32(&self.bytes, OFF_RECORD_COUNT)
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
        buf[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_le_bytes());
        buf[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&leader_epoch.to_le_bytes());
        Batch { bytes: buf.freeze() }
    }

    /// Returns a copy of this batch under idempotent producer `info` (its
    /// id, epoch and base sequence), with the CRC recomputed since it covers
    /// them. A producer numbers a batch when it first sends it.
    pub fn with_producer(&self, info: ProducerInfo) -> Batch {
        let mut buf = BytesMut::from(&self.bytes[..]);
        buf[OFF_PRODUCER_ID..OFF_PRODUCER_ID + 8].copy_from_slice(&info.producer_id.to_le_bytes());
        buf[OFF_PRODUCER_EPOCH..OFF_PRODUCER_EPOCH + 2].copy_from_slice(&info.producer_epoch.to_le_bytes());
        buf[OFF_BASE_SEQUENCE..OFF_BASE_SEQUENCE + 4].copy_from_slice(&info.base_sequence.to_le_bytes());
        let crc = crc32fast::hash(&buf[OFF_ATTRIBUTES..]);
        buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_le_bytes());
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

impl RecordIter {
    fn decode_one(&mut self) -> Result<StoredRecord> {
        let i = self.index;
        let bad = |what: &str| BatchError::invalid_batch(format!("record {i}: {what}"));
        let records = &self.records;
        let mut rest: &[u8] = &records[self.pos..];
        let len = varint::get_u64(&mut rest).ok_or_else(|| bad("bad length"))? as usize;
        if len > rest.len() {
            return Err(bad("length runs past the batch"));
        }
        let start = records.len() - rest.len();
        self.pos = start + len;
        let mut rec: &[u8] = &rest[..len];
        // Absolute position in `records` of the next byte of `rec`.
        let at = |rec: &[u8]| start + (len - rec.len());

        let (_attributes, tail) = rec.split_first().ok_or_else(|| bad("missing attributes"))?;
        rec = tail;
        let ts_delta = varint::get_i64(&mut rec).ok_or_else(|| bad("bad timestamp delta"))?;
        let offset_delta = varint::get_u64(&mut rec).ok_or_else(|| bad("bad offset delta"))?;
        if offset_delta != u64::from(i) {
            return Err(bad(&format!("offset delta {offset_delta} out of order")));
        }
        let key_len = varint::get_i64(&mut rec).ok_or_else(|| bad("bad key length"))?;
        let key = match key_len {
            -1 => None,
            n if n >= 0 && (n as u64) <= rec.len() as u64 => {
                let from = at(rec);
                rec = &rec[n as usize..];
                Some(records.slice(from..from + n as usize))
            }
            _ => return Err(bad("bad key length")),
        };
        let value_len = varint::get_u64(&mut rec).ok_or_else(|| bad("bad value length"))?;
        if value_len > rec.len() as u64 {
            return Err(bad("value runs past the record"));
        }
        let from = at(rec);
        let value = records.slice(from..from + value_len as usize);
        rec = &rec[value_len as usize..];
        let header_count = varint::get_u64(&mut rec).ok_or_else(|| bad("bad header count"))?;
        // Each header takes at least two bytes.
        if header_count > (rec.len() / 2) as u64 {
            return Err(bad("header count exceeds the record"));
        }
        let mut headers = Vec::with_capacity((header_count as usize).min(64));
        for _ in 0..header_count {
            let name_len = varint::get_u64(&mut rec).ok_or_else(|| bad("bad header name length"))?;
            if name_len > rec.len() as u64 {
                return Err(bad("header name runs past the record"));
            }
            let name =
                std::str::from_utf8(&rec[..name_len as usize]).map_err(|_| bad("header name is not UTF-8"))?.to_owned();
            rec = &rec[name_len as usize..];
            let value_len = varint::get_u64(&mut rec).ok_or_else(|| bad("bad header value length"))?;
            if value_len > rec.len() as u64 {
                return Err(bad("header value runs past the record"));
            }
            let from = at(rec);
            headers.push((name, records.slice(from..from + value_len as usize)));
            rec = &rec[value_len as usize..];
        }
        if !rec.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(StoredRecord {
            offset: self.base_offset + u64::from(i),
            record: Record { timestamp: self.first_timestamp.wrapping_add(ts_delta), key, value, headers },
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
            // Offsets, length and epoch are outside the batch CRC (the WAL frame CRC covers them).
            let i = OFF_ATTRIBUTES + at.index(bytes.len() - OFF_ATTRIBUTES);
            bytes[i] ^= flip;
            prop_assert!(Batch::parse(Bytes::from(bytes)).is_err());
        }
    }

    /// A one-record batch whose header claims `count` records, with the CRC
    /// recomputed so that only the lie itself can be caught.
    fn lying_about_count(codec: Compression, count: u32) -> Bytes {
        let mut builder = BatchBuilder::new(codec);
        builder.push(&Record { value: Bytes::from_static(b"v"), ..Record::default() });
        let mut bytes = builder.build().unwrap().to_vec();
        bytes[OFF_RECORD_COUNT..OFF_RECORD_COUNT + 4].copy_from_slice(&count.to_le_bytes());
        let crc = crc32fast::hash(&bytes[OFF_ATTRIBUTES..]);
        bytes[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        Bytes::from(bytes)
    }

    /// Lying counts are rejected at parse, before anything is allocated for
    /// them: for an uncompressed batch against its bytes, for a compressed one
    /// against the largest records section it could decompress to (a batch
    /// must not burn offsets it does not use).
    #[test]
    fn impossible_record_counts_are_rejected_at_parse() {
        assert!(Batch::parse(lying_about_count(Compression::None, u32::MAX)).is_err());
        assert!(Batch::parse(lying_about_count(Compression::Zstd, u32::MAX)).is_err());
    }

    #[test]
    fn a_count_larger_than_the_records_is_an_error_from_the_iterator() {
        let batch = Batch::parse(lying_about_count(Compression::Lz4, 2)).unwrap();
        let results: Vec<_> = batch.iter_records().unwrap().collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok() && results[1].is_err());
        assert!(batch.records().is_err());
    }

    #[test]
    fn empty_batches_cannot_be_built() {
        assert!(BatchBuilder::new(Compression::None).build().is_err());
    }
}
