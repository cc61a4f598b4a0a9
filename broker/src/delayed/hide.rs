//! The fetch side of delayed delivery: consumers are never sent an
//! original. Only batches carrying a delay bit are decoded; the rest go
//! out as read (zero-copy).

use bytes::Bytes;
use goulette_storage::Batch;
use goulette_storage::delayed::peek_delay_bits;

/// `batches` as a consumer gets them: each marked one without its
/// originals (still covering its offsets) and without the delay bits.
pub fn hide(batches: Vec<Bytes>) -> Vec<Bytes> {
    batches.into_iter().map(hide_one).collect()
}

fn hide_one(bytes: Bytes) -> Bytes {
    if peek_delay_bits(&bytes) == 0 {
        return bytes;
    }
    // A batch that no longer decodes is sent as it is: the consumer cannot
    // decode it either, and reports the damage (as a tag filter's read does).
    match Batch::parse_sparse(bytes.clone()).and_then(|b| b.without_originals()) {
        Ok(batch) => batch.into_bytes(),
        Err(_) => bytes,
    }
}
