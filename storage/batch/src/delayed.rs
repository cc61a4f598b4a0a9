//! Delayed delivery, as the bytes carry it.
//!
//! A producer asks for a record to be delivered later with a header:
//! [`DELIVER_AT_HEADER`] (milliseconds since the Unix epoch, in decimal) or
//! [`DELAY_HEADER`] (milliseconds after the record's own timestamp). The
//! leader stores such a record at once (the *original*) and marks its batch
//! with [`DELAYED_BIT`], an attribute bit Kafka leaves unused; consumers are
//! never sent an original. When it is due, the leader appends a *copy* to
//! the same partition: the same key, value, timestamp and headers, plus
//! [`DELAYED_FROM_HEADER`] naming the original's offset, in a batch marked
//! [`COPIES_BIT`]. What is hidden and what is delivered is therefore read
//! off the log itself, the same on every replica.
//!
//! A record is an original exactly when its batch carries [`DELAYED_BIT`]
//! and the record has a delivery time and no [`DELAYED_FROM_HEADER`]:
//! nothing depends on the clock of whoever reads it.

use bytes::{BufMut, BytesMut};

use crate::batch::{Batch, HEADER_LEN, MAX_UNCOMPRESSED_LEN, OFF_ATTRIBUTES, OFF_CRC, Record, batch_crc};

/// The header giving a record's delivery time: ms since the Unix epoch.
pub const DELIVER_AT_HEADER: &str = "goulette-deliver-at";
/// The header giving a record's delay: ms after the record's timestamp.
pub const DELAY_HEADER: &str = "goulette-delay-ms";
/// The header a delivered copy carries: its original's offset.
pub const DELAYED_FROM_HEADER: &str = "goulette-delayed-from";

/// The batch holds originals (records to deliver later), hidden from
/// consumers.
pub const DELAYED_BIT: u16 = 1 << 8;
/// The batch holds delivered copies.
pub const COPIES_BIT: u16 = 1 << 9;
/// Both of Goulette's delayed-delivery bits.
pub const DELAY_BITS: u16 = DELAYED_BIT | COPIES_BIT;

/// The common prefix of the three header names: a batch whose records do
/// not contain it has no delayed record, found without decoding them.
pub const HEADER_PREFIX: &[u8] = b"goulette-del";

/// What a record's headers say about its delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// When it is due (ms since the Unix epoch); `None`: when written.
    pub due: Option<i64>,
    /// The original it is a copy of, per [`DELAYED_FROM_HEADER`]. Only the
    /// broker's copies (in a batch marked [`COPIES_BIT`]) are taken for
    /// copies: a record a consumer forwards keeps the header, and is an
    /// ordinary record (or, due later, an original) where it is written.
    pub copy_of: Option<u64>,
}

/// Reads `record`'s delivery headers; the error says which is malformed.
pub fn delivery(record: &Record) -> Result<Delivery, String> {
    let mut out = Delivery::default();
    for (name, value) in &record.headers {
        read_header(&mut out, name.as_bytes(), value, record.timestamp)?;
    }
    Ok(out)
}

/// Takes one header into `out` (of a record stamped `timestamp`).
fn read_header(out: &mut Delivery, name: &[u8], value: &[u8], timestamp: i64) -> Result<(), String> {
    if !name.starts_with(HEADER_PREFIX) {
        return Ok(());
    }
    let name = std::str::from_utf8(name).unwrap_or_default();
    let number = || {
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .ok_or_else(|| format!("header {name} must be a decimal number of milliseconds"))
    };
    match name {
        DELIVER_AT_HEADER | DELAY_HEADER if out.due.is_some() => {
            return Err(format!("a record may carry one of {DELIVER_AT_HEADER} and {DELAY_HEADER}, once"));
        }
        DELIVER_AT_HEADER => out.due = Some(number()?),
        DELAY_HEADER => {
            let delay = number()?;
            if delay < 0 {
                return Err(format!("header {DELAY_HEADER} is negative ({delay})"));
            }
            out.due = Some(timestamp.saturating_add(delay));
        }
        DELAYED_FROM_HEADER => {
            out.copy_of = Some(u64::try_from(number()?).map_err(|_| format!("header {name} is negative"))?);
        }
        _ => {}
    }
    Ok(())
}

/// Each record's offset and what its headers say about its delivery (the
/// error: a malformed delivery header), read straight off the records'
/// bytes: no record is decoded into values, nothing allocated per record.
/// What the produce path and the timer index need of every batch holding
/// delayed records. A malformed record is an error, as for
/// [`Batch::records`].
pub fn deliveries(batch: &Batch) -> crate::Result<Vec<(u64, Result<Delivery, String>)>> {
    use crate::BatchError;
    use crate::varint::{get_varint, get_varlong};
    let body = &batch.as_bytes()[HEADER_LEN..];
    let decompressed;
    let mut rest: &[u8] = match batch.compression() {
        Some(crate::Compression::None) => body,
        Some(codec) => {
            decompressed = codec.decompress(body, MAX_UNCOMPRESSED_LEN)?;
            &decompressed
        }
        None => return Err(BatchError::invalid_batch("unknown compression")),
    };
    // A length-prefixed field (-1: null) off the front of `rec`.
    fn field<'a>(rec: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
        let n = get_varint(rec)?;
        if n == -1 {
            return Some(None);
        }
        let n = usize::try_from(n).ok().filter(|&n| n <= rec.len())?;
        let (taken, tail) = rec.split_at(n);
        *rec = tail;
        Some(Some(taken))
    }
    let count = batch.record_count();
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let bad = |what: &str| BatchError::invalid_batch(format!("record {i}: {what}"));
        let len = get_varint(&mut rest).and_then(|l| usize::try_from(l).ok()).filter(|&l| l <= rest.len());
        let (mut rec, tail) = rest.split_at(len.ok_or_else(|| bad("bad length"))?);
        rest = tail;
        rec = rec.get(1..).ok_or_else(|| bad("missing attributes"))?;
        let timestamp =
            batch.first_timestamp().wrapping_add(get_varlong(&mut rec).ok_or_else(|| bad("bad timestamp"))?);
        let delta = get_varint(&mut rec).and_then(|d| u64::try_from(d).ok()).ok_or_else(|| bad("bad offset delta"))?;
        field(&mut rec).ok_or_else(|| bad("bad key length"))?;
        field(&mut rec).ok_or_else(|| bad("bad value length"))?;
        let headers = get_varint(&mut rec).filter(|&h| h >= 0).ok_or_else(|| bad("bad header count"))?;
        let mut delivery = Ok(Delivery::default());
        for _ in 0..headers {
            let name = field(&mut rec).flatten().ok_or_else(|| bad("bad header name"))?;
            let value = field(&mut rec).ok_or_else(|| bad("bad header value"))?.unwrap_or_default();
            if let Ok(d) = &mut delivery
                && let Err(why) = read_header(d, name, value, timestamp)
            {
                delivery = Err(why);
            }
        }
        out.push((batch.base_offset().wrapping_add(delta), delivery));
    }
    Ok(out)
}

/// Whether `record`, in `batch`, is an original: never sent to consumers.
pub fn is_original(batch: &Batch, record: &Record) -> bool {
    batch.attributes() & DELAYED_BIT != 0 && delivery(record).is_ok_and(|d| d.due.is_some())
}

/// The delayed-delivery bits of the batch at the front of `bytes`, read
/// without validating anything else (0 when its header is incomplete): a
/// reader of stored batches decodes only those with bits set.
pub fn peek_delay_bits(bytes: &[u8]) -> u16 {
    bytes.get(OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2).map_or(0, |a| u16::from_be_bytes([a[0], a[1]]) & DELAY_BITS)
}

/// Whether `records` (a batch's records section, decoded) may hold a
/// delivery header: false is certain (the header names' common prefix is
/// absent), true means decode and look.
pub fn may_hold_delivery_headers(records: &[u8]) -> bool {
    memchr::memmem::find(records, HEADER_PREFIX).is_some()
}

impl Batch {
    /// This batch with its delayed-delivery bits set to `bits` (a subset of
    /// [`DELAY_BITS`]) and its CRC-32C recomputed, since it covers them.
    pub fn with_delay_bits(&self, bits: u16) -> Batch {
        let attributes = (self.attributes() & !DELAY_BITS) | (bits & DELAY_BITS);
        let mut buf = BytesMut::with_capacity(self.len());
        buf.put_slice(self.as_bytes());
        buf[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = batch_crc(&buf);
        buf[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Batch::from_checked(buf.freeze())
    }

    /// Its delayed-delivery bits.
    pub fn delay_bits(&self) -> u16 {
        self.attributes() & DELAY_BITS
    }

    /// What a consumer is sent of this batch: itself when it holds no
    /// original, otherwise a copy without its originals (each offset still
    /// covered, as a filtered fetch's) and without the delay bits.
    pub fn without_originals(&self) -> crate::Result<Batch> {
        if self.delay_bits() == 0 {
            return Ok(self.clone());
        }
        let kept = if self.attributes() & DELAYED_BIT != 0 {
            self.retain(|r| !is_original(self, &r.record))?
        } else {
            self.clone()
        };
        Ok(kept.with_delay_bits(0))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{BatchBuilder, Compression};

    fn record(headers: &[(&str, &str)]) -> Record {
        Record {
            timestamp: 1_000,
            key: Some(Bytes::from_static(b"k")),
            value: Bytes::from_static(b"v"),
            headers: headers.iter().map(|(n, v)| ((*n).to_owned(), Bytes::from((*v).to_owned()))).collect(),
        }
    }

    #[test]
    fn headers_give_the_delivery() {
        let due = |due| Ok(Delivery { due: Some(due), copy_of: None });
        assert_eq!(delivery(&record(&[])), Ok(Delivery::default()));
        assert_eq!(delivery(&record(&[(DELIVER_AT_HEADER, "5000")])), due(5000));
        assert_eq!(delivery(&record(&[(DELAY_HEADER, "250")])), due(1250));
        assert_eq!(
            delivery(&record(&[(DELAY_HEADER, "250"), (DELAYED_FROM_HEADER, "7")])),
            Ok(Delivery { due: Some(1250), copy_of: Some(7) })
        );
        assert!(delivery(&record(&[(DELIVER_AT_HEADER, "soon")])).unwrap_err().contains("decimal"));
        assert!(delivery(&record(&[(DELAY_HEADER, "-1")])).unwrap_err().contains("negative"));
        assert!(delivery(&record(&[(DELAY_HEADER, "1"), (DELIVER_AT_HEADER, "2")])).unwrap_err().contains("once"));
        assert!(may_hold_delivery_headers(b"..goulette-delay-ms.."));
        assert!(!may_hold_delivery_headers(b"goulette-tag"));
    }

    #[test]
    fn deliveries_read_off_the_bytes_agree_with_decoded_records() {
        for codec in [Compression::None, Compression::Gzip] {
            let mut builder = BatchBuilder::new(codec);
            let cases: &[&[(&str, &str)]] = &[
                &[],
                &[("goulette-tag", "A"), (DELAY_HEADER, "250")],
                &[(DELIVER_AT_HEADER, "9000"), (DELAYED_FROM_HEADER, "7")],
                &[(DELAY_HEADER, "x")],
                &[(DELAY_HEADER, "1"), (DELIVER_AT_HEADER, "2")],
            ];
            for headers in cases {
                builder.push(&record(headers));
            }
            let batch = Batch::parse(builder.build().unwrap()).unwrap().stamped(100, 1);
            let scanned = deliveries(&batch).unwrap();
            let decoded: Vec<_> = batch.records().unwrap().iter().map(|r| (r.offset, delivery(&r.record))).collect();
            assert_eq!(scanned, decoded);
            assert_eq!(scanned[1].1, Ok(Delivery { due: Some(1250), copy_of: None }));
        }
    }

    proptest::proptest! {
        /// Damaged records under a valid CRC (a hostile producer's batch):
        /// errors, never a panic.
        #[test]
        fn damaged_records_under_a_valid_crc_never_panic(at in 0usize..400, flip in 1u8..=255) {
            let mut builder = BatchBuilder::new(Compression::None);
            for i in 0..4 {
                builder.push(&record(&[(DELAY_HEADER, "10"), ("n", &i.to_string())]));
            }
            let mut bytes = builder.build().unwrap().to_vec();
            let i = HEADER_LEN + at % (bytes.len() - HEADER_LEN);
            bytes[i] ^= flip;
            let batch = Batch::from_checked(bytes::Bytes::from(bytes)).with_delay_bits(DELAYED_BIT);
            if let Ok(batch) = Batch::parse(batch.as_bytes().clone()) {
                let _ = deliveries(&batch);
                let _ = batch.without_originals();
            }
        }
    }

    #[test]
    fn consumers_get_marked_batches_without_their_originals() {
        for codec in [Compression::None, Compression::Lz4] {
            let mut builder = BatchBuilder::new(codec);
            builder.push(&record(&[]));
            builder.push(&record(&[(DELAY_HEADER, "10")]));
            builder.push(&record(&[(DELAYED_FROM_HEADER, "0")]));
            let batch = Batch::parse(builder.build().unwrap()).unwrap().stamped(40, 1);
            // Unmarked, nothing is hidden: the header alone does not make an original.
            assert_eq!(batch.without_originals().unwrap().records().unwrap().len(), 3);
            let copies = batch.with_delay_bits(COPIES_BIT);
            assert_eq!(copies.without_originals().unwrap().records().unwrap().len(), 3, "copies all go out");
            assert_eq!(copies.without_originals().unwrap().delay_bits(), 0);
            let marked = batch.with_delay_bits(DELAYED_BIT);
            assert_eq!(Batch::parse(marked.as_bytes().clone()).unwrap().delay_bits(), DELAYED_BIT, "CRC still valid");
            let served = marked.without_originals().unwrap();
            assert_eq!(served.delay_bits(), 0);
            let offsets: Vec<u64> = served.records().unwrap().iter().map(|r| r.offset).collect();
            assert_eq!(offsets, [40, 42]);
            assert_eq!(served.next_offset(), 43, "the batch still covers its offsets");
        }
    }
}
