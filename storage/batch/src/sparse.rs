//! Batches with offsets left out: what a broker serves a consumer whose
//! filter (tags) takes some records out of a stored batch.
//!
//! A filtered batch keeps the stored batch's header: its base offset, its
//! `last_offset_delta` (so it still covers every offset the stored one
//! did, and the consumer moves past the records left out), its
//! timestamps and producer fields. Its records are the kept ones, their
//! encoded bytes copied unchanged, so each keeps its own offset and
//! timestamp deltas. The records section is written uncompressed: a
//! filtered read decompresses anyway, and the consumer's cost of an
//! uncompressed section is a copy. A batch whose records all go is still
//! sent, empty, to move the consumer on.
//!
//! Compaction writes such batches too ([`Batch::compacted`]): a compacted
//! fragment keeps each batch's header, with the records that are still the
//! latest of their key, compressed again with the batch's codec. Produce
//! takes only dense batches ([`Batch::parse`]); storage, replication and
//! consumers take sparse ones ([`Batch::parse_sparse`]).

use bytes::{BufMut, BytesMut};

use crate::batch::{
    Batch, COMPRESSION_MASK, HEADER_LEN, LOG_OVERHEAD, OFF_ATTRIBUTES, OFF_BATCH_LEN, OFF_CRC, OFF_LAST_OFFSET_DELTA,
    OFF_MAX_TIMESTAMP, OFF_RECORD_COUNT, StoredRecord, batch_crc,
};
use crate::compression::Compression;
use crate::error::Result;

/// How a rebuilt batch's records section is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Uncompressed: a filtered read, sent once and decoded at once.
    Plain,
    /// With the stored batch's codec: a compacted batch, stored for good.
    SameCodec,
}

impl Batch {
    /// This batch with only the records `keep` accepts, its records section
    /// uncompressed; itself (no copy) when it accepts them all.
    pub fn retain(&self, keep: impl FnMut(&StoredRecord) -> bool) -> Result<Batch> {
        self.rebuild(keep, Section::Plain)
    }

    /// Like [`Batch::retain`], for compaction: the kept records are
    /// compressed again with the batch's codec (a batch left with no record
    /// is written uncompressed, as its header alone).
    pub fn compacted(&self, keep: impl FnMut(&StoredRecord) -> bool) -> Result<Batch> {
        self.rebuild(keep, Section::SameCodec)
    }

    fn rebuild(&self, mut keep: impl FnMut(&StoredRecord) -> bool, section: Section) -> Result<Batch> {
        let mut records = self.iter_records()?;
        let mut kept = Vec::new();
        let (mut total, mut body) = (0usize, 0usize);
        while let Some(next) = records.next_with_bytes() {
            let (record, bytes) = next?;
            total += 1;
            if keep(&record) {
                body += bytes.len();
                kept.push(bytes);
            }
        }
        if kept.len() == total {
            return Ok(self.clone());
        }
        let mut plain = Vec::with_capacity(body);
        for bytes in &kept {
            plain.extend_from_slice(bytes);
        }
        let codec = match (section, self.compression()) {
            (Section::SameCodec, Some(codec)) if !kept.is_empty() => codec,
            _ => Compression::None,
        };
        let records = match codec {
            Compression::None => plain,
            codec => codec.compress(&plain)?,
        };
        let mut out = BytesMut::with_capacity(HEADER_LEN + records.len());
        out.put_slice(&self.as_bytes()[..HEADER_LEN]);
        out.put_slice(&records);
        let length = (out.len() - LOG_OVERHEAD) as i32;
        out[OFF_BATCH_LEN..OFF_BATCH_LEN + 4].copy_from_slice(&length.to_be_bytes());
        let attributes = (self.attributes() & !COMPRESSION_MASK) | codec.id();
        out[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        out[OFF_RECORD_COUNT..OFF_RECORD_COUNT + 4].copy_from_slice(&(kept.len() as i32).to_be_bytes());
        let crc = batch_crc(&out);
        out[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Batch::parse_sparse(out.freeze())
    }
}

impl Batch {
    /// Whether `next`, an empty batch right after this empty one, can join
    /// it in one empty batch ([`Batch::merged_empty`]) without losing what
    /// a header says: the same leader epoch (the epoch history is rebuilt
    /// from headers), timestamp type and producer (id and epoch) with
    /// sequences that run on (a producer's sequences follow offsets), and
    /// offsets an `i32` delta still spans.
    pub fn joins_empty(&self, next: &Batch) -> bool {
        let contiguous_sequences = match (self.producer(), next.producer()) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.producer_id == b.producer_id
                    && a.producer_epoch == b.producer_epoch
                    && b.base_sequence == a.base_sequence.wrapping_add(self.offset_count() as i32)
            }
            _ => false,
        };
        self.record_count() == 0
            && next.record_count() == 0
            && next.base_offset() == self.next_offset()
            && self.partition_leader_epoch() == next.partition_leader_epoch()
            && self.timestamp_type() == next.timestamp_type()
            && contiguous_sequences
            && next.next_offset() - self.base_offset() <= i32::MAX as u64
    }

    /// One empty batch covering this empty batch and `next` (which
    /// [`Batch::joins_empty`] accepted): this one's header, stretched to
    /// `next`'s end, with the larger of their timestamps.
    pub fn merged_empty(&self, next: &Batch) -> Result<Batch> {
        let mut out = BytesMut::from(&self.as_bytes()[..HEADER_LEN]);
        let delta = (next.next_offset() - self.base_offset() - 1) as i32;
        out[OFF_LAST_OFFSET_DELTA..OFF_LAST_OFFSET_DELTA + 4].copy_from_slice(&delta.to_be_bytes());
        let max = self.max_timestamp().max(next.max_timestamp());
        out[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8].copy_from_slice(&max.to_be_bytes());
        let crc = batch_crc(&out);
        out[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Batch::parse_sparse(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::batch::HEADER_LEN;
    use crate::{Batch, BatchBuilder, Compression, Record};

    fn batch(n: usize, compression: Compression) -> Batch {
        let mut builder = BatchBuilder::new(compression);
        for i in 0..n {
            let headers = if i % 3 == 0 { vec![("t".to_owned(), Bytes::from("a"))] } else { Vec::new() };
            builder.push(&Record {
                timestamp: 1_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Bytes::from(format!("v{i}")),
                headers,
            });
        }
        Batch::parse(builder.build().unwrap()).unwrap().stamped(100, 7)
    }

    #[test]
    fn kept_records_keep_their_offsets_and_the_batch_still_covers_every_offset() {
        for compression in [Compression::None, Compression::Zstd, Compression::Lz4] {
            let full = batch(10, compression);
            let some = full.retain(|r| r.record.headers.iter().any(|(k, _)| k == "t")).unwrap();
            let offsets: Vec<u64> = some.records().unwrap().iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [100, 103, 106, 109], "{compression:?}");
            let values: Vec<Bytes> = some.records().unwrap().into_iter().map(|r| r.record.value).collect();
            assert_eq!(values, ["v0", "v3", "v6", "v9"].map(Bytes::from), "{compression:?}");
            assert_eq!((some.base_offset(), some.next_offset(), some.record_count()), (100, 110, 4));
            assert_eq!(some.partition_leader_epoch(), 7);
            assert_eq!(some.compression(), Some(Compression::None));
            assert!(Batch::parse(some.as_bytes().clone()).is_err(), "a sparse batch is never taken as produced");
            assert_eq!(Batch::parse_sparse(some.as_bytes().clone()).unwrap(), some);

            let none = full.retain(|_| false).unwrap();
            assert_eq!((none.record_count(), none.next_offset()), (0, 110), "an empty batch still moves consumers on");
            assert!(none.records().unwrap().is_empty());
            let all = full.retain(|_| true).unwrap();
            assert_eq!(all.as_bytes(), full.as_bytes(), "nothing left out: the stored bytes as they are");
        }
    }

    #[test]
    fn a_compacted_batch_keeps_its_codec_and_offsets() {
        for compression in [Compression::None, Compression::Zstd, Compression::Gzip, Compression::Snappy] {
            let full = batch(10, compression);
            let some = full.compacted(|r| r.offset % 4 == 1).unwrap();
            assert_eq!(some.compression(), Some(compression));
            let offsets: Vec<u64> = some.records().unwrap().iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [101, 105, 109], "{compression:?}");
            assert_eq!((some.base_offset(), some.next_offset(), some.producer()), (100, 110, full.producer()));
            let none = full.compacted(|_| false).unwrap();
            assert_eq!((none.record_count(), none.len(), none.compression()), (0, HEADER_LEN, Some(Compression::None)));
        }
    }

    #[test]
    fn runs_of_empty_batches_merge_unless_a_header_would_lose_something() {
        let producer = |seq| crate::ProducerInfo { producer_id: 7, producer_epoch: 1, base_sequence: seq };
        let empty = |base, epoch, info: Option<crate::ProducerInfo>| {
            let full = batch(4, Compression::None);
            let full = info.map_or(full.clone(), |i| full.with_producer(i));
            full.stamped(base, epoch).compacted(|_| false).unwrap()
        };
        let (a, b) = (empty(100, 3, None), empty(104, 3, None));
        assert!(a.joins_empty(&b));
        let merged = a.merged_empty(&b).unwrap();
        assert_eq!((merged.base_offset(), merged.next_offset(), merged.record_count()), (100, 108, 0));
        assert_eq!(merged.len(), HEADER_LEN);
        assert!(!a.joins_empty(&empty(104, 4, None)), "another leader epoch");
        assert!(!a.joins_empty(&empty(105, 3, None)), "not adjacent");
        let (p, q) = (empty(100, 3, Some(producer(10))), empty(104, 3, Some(producer(14))));
        assert!(p.joins_empty(&q));
        assert_eq!(p.merged_empty(&q).unwrap().producer(), Some(producer(10)));
        assert!(!p.joins_empty(&empty(104, 3, Some(producer(20)))), "sequences that do not run on");
        assert!(!p.joins_empty(&b), "another producer");
        assert!(!batch(4, Compression::None).stamped(100, 3).joins_empty(&b), "a batch with records");
    }

    #[test]
    fn a_sparse_batch_whose_deltas_do_not_rise_or_pass_its_end_is_refused() {
        let full = batch(4, Compression::None);
        let some = full.retain(|r| r.offset == 101 || r.offset == 103).unwrap();
        // Claim fewer offsets than the kept records span: the last record's
        // delta (3) is now past last_offset_delta.
        let mut bytes = some.as_bytes().to_vec();
        bytes[crate::batch::OFF_LAST_OFFSET_DELTA..crate::batch::OFF_LAST_OFFSET_DELTA + 4]
            .copy_from_slice(&2i32.to_be_bytes());
        let crc = crate::batch::batch_crc(&bytes);
        bytes[crate::batch::OFF_CRC..crate::batch::OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        let damaged = Batch::parse_sparse(Bytes::from(bytes)).unwrap();
        assert!(damaged.records().unwrap_err().to_string().contains("out of order"));
        // More records than offsets: refused at once.
        let mut bytes = full.as_bytes().to_vec();
        bytes[crate::batch::OFF_LAST_OFFSET_DELTA..crate::batch::OFF_LAST_OFFSET_DELTA + 4]
            .copy_from_slice(&1i32.to_be_bytes());
        let crc = crate::batch::batch_crc(&bytes);
        bytes[crate::batch::OFF_CRC..crate::batch::OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(Batch::parse_sparse(Bytes::from(bytes)).is_err());
    }
}
