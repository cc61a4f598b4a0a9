//! The fetch side of delayed delivery: consumers are never sent an
//! original. Only batches carrying a delay bit are decoded; the rest go
//! out as read (zero-copy).

use bytes::Bytes;
use goulette_storage::Batch;
use goulette_storage::batch::OFF_ATTRIBUTES;
use goulette_storage::delayed::DELAY_BITS;

/// `batches` as a consumer gets them: each marked one without its
/// originals (still covering its offsets) and without the delay bits.
pub fn hide(batches: Vec<Bytes>) -> Vec<Bytes> {
    batches.into_iter().map(hide_one).collect()
}

fn hide_one(bytes: Bytes) -> Bytes {
    let marked = bytes
        .get(OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2)
        .is_some_and(|a| u16::from_be_bytes([a[0], a[1]]) & DELAY_BITS != 0);
    if !marked {
        return bytes;
    }
    // A batch that no longer decodes is sent as it is: the consumer cannot
    // decode it either, and reports the damage (as a tag filter's read does).
    match Batch::parse_sparse(bytes.clone()).and_then(|b| b.without_originals()) {
        Ok(batch) => batch.into_bytes(),
        Err(_) => bytes,
    }
}
