//! The produce side of delayed delivery: which batches hold originals.

use goulette_storage::Batch;
use goulette_storage::batch::HEADER_LEN;
use goulette_storage::delayed::{DELAY_BITS, DELAYED_BIT, deliveries};

/// What the produce path checks a client's batch against.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The partition's topic is compacted (no delayed records there).
    pub compacted: bool,
    /// The broker's clock, ms since the Unix epoch.
    pub now_ms: i64,
    /// The latest delivery time accepted is `now_ms + max_delay_ms`.
    pub max_delay_ms: i64,
}

/// `batch` as it is stored: marked with [`DELAYED_BIT`] when one of its
/// records is due after `now`, unchanged otherwise (a record whose time
/// has come is delivered at once, as any). A record forwarded from a
/// delayed one keeps its headers and is judged by its delivery time like
/// any other. The error says why the batch is refused; nothing of a
/// refused batch is stored.
pub fn mark(batch: Batch, rules: Rules) -> Result<Batch, String> {
    if batch.attributes() & DELAY_BITS != 0 {
        return Err("attribute bits 8 and 9 are reserved for the broker's delayed delivery".into());
    }
    // The common case costs a scan of the raw bytes: no header name, no
    // delayed record. (A compressed batch is decoded to be sure.)
    let plain = batch.compression() == Some(goulette_storage::Compression::None);
    if plain && !goulette_storage::delayed::may_hold_delivery_headers(&batch.as_bytes()[HEADER_LEN..]) {
        return Ok(batch);
    }
    let mut delayed = false;
    for (i, (_, delivery)) in deliveries(&batch).map_err(|e| e.to_string())?.into_iter().enumerate() {
        let due = delivery.map_err(|why| format!("record {i} of the batch: {why}"))?.due;
        let Some(due) = due.filter(|&due| due > rules.now_ms) else { continue };
        if rules.compacted {
            return Err(format!(
                "record {i} of the batch asks for delayed delivery, which a compacted topic does not offer"
            ));
        }
        if due - rules.now_ms > rules.max_delay_ms {
            return Err(format!(
                "record {i} of the batch is due in {} ms, past the maximum delay of {} ms",
                due - rules.now_ms,
                rules.max_delay_ms
            ));
        }
        delayed = true;
    }
    Ok(if delayed { batch.with_delay_bits(DELAYED_BIT) } else { batch })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use goulette_storage::delayed::{DELAY_HEADER, DELAYED_FROM_HEADER, DELIVER_AT_HEADER};
    use goulette_storage::{BatchBuilder, Compression, Record};

    use super::*;

    const NOW: i64 = 1_000_000;

    fn batch(codec: Compression, headers: &[&[(&str, &str)]]) -> Batch {
        let mut builder = BatchBuilder::new(codec);
        for h in headers {
            let headers = h.iter().map(|(n, v)| ((*n).to_owned(), Bytes::from((*v).to_owned()))).collect();
            builder.push(&Record { timestamp: NOW, key: None, value: Bytes::from_static(b"v"), headers });
        }
        Batch::parse(builder.build().unwrap()).unwrap()
    }

    fn rules(compacted: bool) -> Rules {
        Rules { compacted, now_ms: NOW, max_delay_ms: 60_000 }
    }

    #[test]
    fn only_batches_with_a_record_not_yet_due_are_marked() {
        for codec in [Compression::None, Compression::Zstd] {
            let plain = batch(codec, &[&[], &[("goulette-tag", "A")]]);
            assert_eq!(mark(plain, rules(false)).unwrap().delay_bits(), 0);
            let due = batch(codec, &[&[(DELIVER_AT_HEADER, &(NOW - 1).to_string())], &[(DELAY_HEADER, "0")]]);
            assert_eq!(mark(due, rules(false)).unwrap().delay_bits(), 0, "already due: delivered at once");
            let later = batch(codec, &[&[], &[(DELAY_HEADER, "5000")]]);
            assert_eq!(mark(later, rules(false)).unwrap().delay_bits(), DELAYED_BIT);
        }
    }

    #[test]
    fn a_forwarded_copy_is_an_ordinary_record_unless_due_later() {
        let forwarded = |due: i64| {
            let due = due.to_string();
            batch(Compression::None, &[&[(DELIVER_AT_HEADER, due.as_str()), (DELAYED_FROM_HEADER, "3")]])
        };
        assert_eq!(mark(forwarded(NOW - 5), rules(false)).unwrap().delay_bits(), 0);
        assert_eq!(mark(forwarded(NOW + 5), rules(false)).unwrap().delay_bits(), DELAYED_BIT);
    }

    #[test]
    fn bad_headers_long_delays_compacted_topics_and_broker_bits_are_refused() {
        let refused =
            |headers: &[(&str, &str)], compacted| mark(batch(Compression::None, &[headers]), rules(compacted));
        assert!(refused(&[(DELAY_HEADER, "soon")], false).unwrap_err().contains("decimal"));
        assert!(refused(&[(DELAY_HEADER, "60001")], false).unwrap_err().contains("maximum delay"));
        assert!(refused(&[(DELAY_HEADER, "10")], true).unwrap_err().contains("compacted"));
        assert!(refused(&[(DELAYED_FROM_HEADER, "-3")], false).unwrap_err().contains("negative"));
        let marked = batch(Compression::None, &[&[]]).with_delay_bits(DELAYED_BIT);
        assert!(mark(marked, rules(false)).unwrap_err().contains("reserved"));
    }
}
