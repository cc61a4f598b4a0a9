//! Encoding a batch: [`BatchBuilder`] gathers records (with their deltas
//! and varints), compresses them as a whole, and writes the header and its
//! CRC, in the format documented in [`crate::batch`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::batch::{BATCH_MAGIC, HEADER_LEN, MAX_BATCH_LEN, OFF_ATTRIBUTES, OFF_CRC, ProducerInfo, Record};
use crate::compression::Compression;
use crate::error::{BatchError, Result};
use crate::varint;

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
        if self.count == 0 {
            self.push(record);
            return true;
        }
        let body_len = self.encoded_body_len(record);
        if self.encoded_len() + varint::len_u64(body_len as u64) + body_len > limit {
            return false;
        }
        self.push_encoded(record, body_len);
        true
    }

    /// Appends a record.
    pub fn push(&mut self, record: &Record) {
        if self.count == 0 {
            self.first_timestamp = record.timestamp;
        }
        let body_len = self.encoded_body_len(record);
        self.push_encoded(record, body_len);
    }

    /// Appends a record whose body encodes to `body_len` bytes (computed
    /// once `first_timestamp` is set).
    fn push_encoded(&mut self, record: &Record, body_len: usize) {
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        varint::put_u64(&mut self.records, body_len as u64);
        let start = self.records.len();
        self.records.push(0);
        varint::put_i64(&mut self.records, record.timestamp.wrapping_sub(self.first_timestamp));
        varint::put_u64(&mut self.records, u64::from(self.count));
        match &record.key {
            Some(key) => {
                varint::put_i64(&mut self.records, key.len() as i64);
                self.records.extend_from_slice(key);
            }
            None => varint::put_i64(&mut self.records, -1),
        }
        varint::put_u64(&mut self.records, record.value.len() as u64);
        self.records.extend_from_slice(&record.value);
        varint::put_u64(&mut self.records, record.headers.len() as u64);
        for (name, value) in &record.headers {
            varint::put_u64(&mut self.records, name.len() as u64);
            self.records.extend_from_slice(name.as_bytes());
            varint::put_u64(&mut self.records, value.len() as u64);
            self.records.extend_from_slice(value);
        }
        debug_assert_eq!(self.records.len() - start, body_len);
        self.count += 1;
    }

    fn encoded_body_len(&self, record: &Record) -> usize {
        let zz = |v: i64| varint::len_u64(((v << 1) ^ (v >> 63)) as u64);
        let key = match &record.key {
            Some(k) => zz(k.len() as i64) + k.len(),
            None => 1,
        };
        let headers: usize = record
            .headers
            .iter()
            .map(|(n, v)| varint::len_u64(n.len() as u64) + n.len() + varint::len_u64(v.len() as u64) + v.len())
            .sum();
        1 + zz(record.timestamp.wrapping_sub(self.first_timestamp))
            + varint::len_u64(u64::from(self.count))
            + key
            + varint::len_u64(record.value.len() as u64)
            + record.value.len()
            + varint::len_u64(record.headers.len() as u64)
            + headers
    }

    /// Encodes the batch (base offset 0, leader epoch 0: the leader stamps both).
    pub fn build(self) -> Result<Bytes> {
        if self.count == 0 {
            return Err(BatchError::invalid_batch("a batch needs at least one record"));
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
        let mut buf = BytesMut::with_capacity(total);
        buf.put_u64_le(0);
        buf.put_u32_le(total as u32);
        buf.put_u32_le(0);
        buf.put_u8(BATCH_MAGIC);
        buf.put_u32_le(0); // CRC, filled below
        buf.put_u16_le(self.compression.id());
        buf.put_i64_le(self.first_timestamp);
        buf.put_i64_le(self.max_timestamp);
        buf.put_i64_le(producer.producer_id);
        buf.put_i16_le(producer.producer_epoch);
        buf.put_i32_le(producer.base_sequence);
        buf.put_u32_le(self.count);
        buf.extend_from_slice(&body);
        let crc = crc32fast::hash(&buf[OFF_ATTRIBUTES..]);
        buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(buf.freeze())
    }
}
