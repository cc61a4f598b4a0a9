//! Encoding a batch: [`BatchBuilder`] gathers records (with their deltas
//! and varints), compresses them as a whole, and writes the header and its
//! CRC-32C, in the format documented in [`crate::batch`] (Kafka's RecordBatch
//! v2). Values are written non-null, except a tombstone's
//! ([`BatchBuilder::push_tombstone`]).

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{
    BATCH_MAGIC, HEADER_LEN, LOG_OVERHEAD, MAX_BATCH_LEN, MAX_UNCOMPRESSED_LEN, OFF_CRC, ProducerInfo, Record,
    batch_crc,
};
use crate::compression::Compression;
use crate::error::{BatchError, Result};
use crate::varint;

/// Whether a record's value is written, or written as null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Present,
    Null,
}

/// Builds a batch from records on the client side.
#[derive(Debug)]
pub struct BatchBuilder {
    compression: Compression,
    producer: Option<ProducerInfo>,
    records: Vec<u8>,
    count: u32,
    first_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// A builder for a batch whose records will be compressed with `compression`.
    pub fn new(compression: Compression) -> Self {
        BatchBuilder {
            compression,
            producer: None,
            records: Vec::new(),
            count: 0,
            first_timestamp: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Marks the batch as sent by an idempotent producer.
    pub fn producer(mut self, info: ProducerInfo) -> Self {
        self.producer = Some(info);
        self
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed bytes of the records pushed so far (for size-based batching).
    pub fn records_len(&self) -> usize {
        self.records.len()
    }

    /// The encoded batch's length before compression, as it stands.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.records.len()
    }

    /// Appends `record` unless the batch holds records already and would
    /// then encode (before compression, an upper bound of its length after)
    /// to more than `limit` bytes; returns whether it was appended. A
    /// producer batches with it so that no batch passes a broker's limit.
    pub fn push_within(&mut self, record: &Record, limit: usize) -> bool {
        self.push_record_within(record, false, limit)
    }

    /// [`BatchBuilder::push_within`], or for a tombstone
    /// [`BatchBuilder::push_tombstone`], within `limit`.
    pub fn push_record_within(&mut self, record: &Record, tombstone: bool, limit: usize) -> bool {
        let value = if tombstone { Value::Null } else { Value::Present };
        if self.count == 0 {
            self.push_value(record, value);
            return true;
        }
        let body_len = self.encoded_body_len(record, value);
        if self.encoded_len() + varint::varint_len(body_len as i32) + body_len > limit {
            return false;
        }
        self.push_encoded(record, body_len, value);
        true
    }

    /// Appends a record, or a tombstone ([`BatchBuilder::push_tombstone`]).
    pub fn push_record(&mut self, record: &Record, tombstone: bool) {
        if tombstone { self.push_tombstone(record) } else { self.push(record) }
    }

    /// Appends a record.
    pub fn push(&mut self, record: &Record) {
        self.push_value(record, Value::Present);
    }

    /// Appends a record with a null value (its `value` must be empty): a
    /// tombstone, which compaction removes with the key's older records.
    pub fn push_tombstone(&mut self, record: &Record) {
        debug_assert!(record.value.is_empty(), "a tombstone has no value");
        self.push_value(record, Value::Null);
    }

    fn push_value(&mut self, record: &Record, value: Value) {
        if self.count == 0 {
            self.first_timestamp = record.timestamp;
        }
        let body_len = self.encoded_body_len(record, value);
        self.push_encoded(record, body_len, value);
    }

    /// Appends a record whose body encodes to `body_len` bytes (computed
    /// once `first_timestamp` is set). Lengths and counts are written as
    /// `i32` varints, exact for anything below `MAX_UNCOMPRESSED_LEN`;
    /// [`BatchBuilder::build`] refuses records beyond it.
    fn push_encoded(&mut self, record: &Record, body_len: usize, value: Value) {
        let out = &mut self.records;
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        varint::put_varint(out, body_len as i32);
        let start = out.len();
        out.push(0);
        varint::put_varlong(out, record.timestamp.wrapping_sub(self.first_timestamp));
        varint::put_varint(out, self.count as i32);
        match &record.key {
            Some(key) => {
                varint::put_varint(out, key.len() as i32);
                out.extend_from_slice(key);
            }
            None => varint::put_varint(out, -1),
        }
        match value {
            Value::Present => {
                varint::put_varint(out, record.value.len() as i32);
                out.extend_from_slice(&record.value);
            }
            Value::Null => varint::put_varint(out, -1),
        }
        varint::put_varint(out, record.headers.len() as i32);
        for (name, value) in &record.headers {
            varint::put_varint(out, name.len() as i32);
            out.extend_from_slice(name.as_bytes());
            varint::put_varint(out, value.len() as i32);
            out.extend_from_slice(value);
        }
        debug_assert_eq!(out.len() - start, body_len);
        self.count += 1;
    }

    fn encoded_body_len(&self, record: &Record, value: Value) -> usize {
        // A length-prefixed field.
        let field = |len: usize| varint::varint_len(len as i32) + len;
        let key = record.key.as_ref().map_or(varint::varint_len(-1), |k| field(k.len()));
        let headers: usize = record.headers.iter().map(|(n, v)| field(n.len()) + field(v.len())).sum();
        1 + varint::varlong_len(record.timestamp.wrapping_sub(self.first_timestamp))
            + varint::varint_len(self.count as i32)
            + key
            + match value {
                Value::Present => field(record.value.len()),
                Value::Null => varint::varint_len(-1),
            }
            + varint::varint_len(record.headers.len() as i32)
            + headers
    }

    /// Encodes the batch (base offset 0, leader epoch 0: the leader stamps both).
    pub fn build(self) -> Result<Bytes> {
        if self.count == 0 {
            return Err(BatchError::invalid_batch("a batch needs at least one record"));
        }
        // No reader would decompress more (and the record lengths and count
        // written as i32 varints are only exact below it).
        if self.records.len() > MAX_UNCOMPRESSED_LEN {
            return Err(BatchError::BatchTooLarge { size: self.records.len(), max: MAX_UNCOMPRESSED_LEN });
        }
        let body = match self.compression {
            Compression::None => self.records,
            codec => codec.compress(&self.records)?,
        };
        let total = HEADER_LEN + body.len();
        if total > MAX_BATCH_LEN {
            return Err(BatchError::BatchTooLarge { size: total, max: MAX_BATCH_LEN });
        }
        let producer = self.producer.unwrap_or(ProducerInfo { producer_id: -1, producer_epoch: -1, base_sequence: -1 });
        let count = self.count as i32;
        let mut buf = BytesMut::with_capacity(total);
        buf.put_i64(0); // base offset
        buf.put_i32((total - LOG_OVERHEAD) as i32);
        buf.put_i32(0); // partition leader epoch
        buf.put_u8(BATCH_MAGIC);
        buf.put_u32(0); // CRC, filled below
        buf.put_i16(self.compression.id() as i16);
        buf.put_i32(count - 1); // last offset delta
        buf.put_i64(self.first_timestamp);
        buf.put_i64(self.max_timestamp);
        buf.put_i64(producer.producer_id);
        buf.put_i16(producer.producer_epoch);
        buf.put_i32(producer.base_sequence);
        buf.put_i32(count);
        buf.extend_from_slice(&body);
        debug_assert_eq!(buf.len(), total);
        let crc = batch_crc(&buf);
        buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(buf.freeze())
    }
}
