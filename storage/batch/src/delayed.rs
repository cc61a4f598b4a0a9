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

use crate::batch::{Batch, OFF_ATTRIBUTES, OFF_CRC, Record, batch_crc};

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

/// What a record says about its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// No delivery header: delivered when written.
    Now,
    /// To be delivered at this time (ms since the Unix epoch).
    At(i64),
    /// A delivered copy of the original at this offset, which was due at
    /// `due` (ms since the Unix epoch).
    CopyOf { original: u64, due: i64 },
}

/// Reads `record`'s delivery headers; the error says which is malformed.
pub fn delivery(record: &Record) -> Result<Delivery, String> {
    let mut at = None;
    let mut from = None;
    for (name, value) in &record.headers {
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .ok_or_else(|| format!("header {name} must be a decimal number of milliseconds"))
        };
        match name.as_str() {
            DELIVER_AT_HEADER if at.is_none() => at = Some(number()?),
            DELAY_HEADER if at.is_none() => {
                let delay = number()?;
                if delay < 0 {
                    return Err(format!("header {DELAY_HEADER} is negative ({delay})"));
                }
                at = Some(record.timestamp.saturating_add(delay));
            }
            DELIVER_AT_HEADER | DELAY_HEADER => {
                return Err(format!("a record may carry one of {DELIVER_AT_HEADER} and {DELAY_HEADER}, once"));
            }
            DELAYED_FROM_HEADER => {
                let offset = number()?;
                from = Some(u64::try_from(offset).map_err(|_| format!("header {name} is negative"))?);
            }
            _ => {}
        }
    }
    Ok(match (at, from) {
        (None, _) => Delivery::Now,
        (Some(due), Some(original)) => Delivery::CopyOf { original, due },
        (Some(due), None) => Delivery::At(due),
    })
}

/// Whether `record`, in `batch`, is an original: never sent to consumers.
pub fn is_original(batch: &Batch, record: &Record) -> bool {
    batch.attributes() & DELAYED_BIT != 0 && matches!(delivery(record), Ok(Delivery::At(_)))
}

/// Whether the records of `batch` may hold a delivery header: false is
/// certain (the header names' common prefix is absent from the decoded
/// records), true means decode and look.
pub fn may_hold_delivery_headers(records: &[u8]) -> bool {
    records.windows(HEADER_PREFIX.len()).any(|w| w == HEADER_PREFIX)
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
        assert_eq!(delivery(&record(&[])), Ok(Delivery::Now));
        assert_eq!(delivery(&record(&[(DELIVER_AT_HEADER, "5000")])), Ok(Delivery::At(5000)));
        assert_eq!(delivery(&record(&[(DELAY_HEADER, "250")])), Ok(Delivery::At(1250)));
        assert_eq!(
            delivery(&record(&[(DELAY_HEADER, "250"), (DELAYED_FROM_HEADER, "7")])),
            Ok(Delivery::CopyOf { original: 7, due: 1250 })
        );
        assert!(delivery(&record(&[(DELIVER_AT_HEADER, "soon")])).unwrap_err().contains("decimal"));
        assert!(delivery(&record(&[(DELAY_HEADER, "-1")])).unwrap_err().contains("negative"));
        assert!(delivery(&record(&[(DELAY_HEADER, "1"), (DELIVER_AT_HEADER, "2")])).unwrap_err().contains("once"));
        assert!(may_hold_delivery_headers(b"..goulette-delay-ms.."));
        assert!(!may_hold_delivery_headers(b"goulette-tag"));
    }

    #[test]
    fn consumers_get_marked_batches_without_their_originals() {
        for codec in [Compression::None, Compression::Lz4] {
            let mut builder = BatchBuilder::new(codec);
            builder.push(&record(&[]));
            builder.push(&record(&[(DELAY_HEADER, "10")]));
            builder.push(&record(&[(DELAY_HEADER, "10"), (DELAYED_FROM_HEADER, "0")]));
            let batch = Batch::parse(builder.build().unwrap()).unwrap().stamped(40, 1);
            // Unmarked, nothing is hidden: the header alone does not make an original.
            assert_eq!(batch.without_originals().unwrap().records().unwrap().len(), 3);
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
