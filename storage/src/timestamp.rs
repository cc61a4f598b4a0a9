//! Finding the first record at or after a timestamp.

use std::path::Path;

use bytes::Bytes;

use crate::batch::Batch;
use crate::error::{Result, StorageError};
use crate::frame::{self, FRAME_HEADER_LEN};

/// The offset of the first record with a timestamp `>= ts` in `batch`.
/// Only batches whose header promises such a record are decoded, one record
/// at a time, so the answer is exact to the record. `None` when no record
/// reaches `ts` (the header's `max_timestamp` is the producer's claim).
pub(crate) fn first_in_batch(batch: Bytes, ts: i64, path: &Path, position: u64) -> Result<Option<u64>> {
    let corrupt = |e: goulette_batch::BatchError| StorageError::corruption(path, position, e.to_string());
    let batch = Batch::parse_sparse(batch).map_err(corrupt)?;
    for record in batch.iter_records().map_err(corrupt)? {
        let record = record.map_err(corrupt)?;
        if record.record.timestamp >= ts {
            return Ok(Some(record.offset));
        }
    }
    Ok(None)
}

/// Walks the frames of a complete log-file region from `pos` and returns the
/// first offset whose timestamp is `>= ts`.
pub(crate) fn first_at_or_after(region: &Bytes, mut pos: usize, ts: i64, path: &Path) -> Result<Option<u64>> {
    while pos < region.len() {
        let info = frame::peek_frame(&region[pos..])
            .and_then(|info| {
                if pos + info.frame_len() <= region.len() { Ok(info) } else { Err("frame runs past the end".into()) }
            })
            .map_err(|reason| StorageError::corruption(path, pos as u64, reason))?;
        let start = pos + FRAME_HEADER_LEN;
        if info.max_timestamp >= ts
            && let Some(offset) = first_in_batch(region.slice(start..start + info.len), ts, path, pos as u64)?
        {
            return Ok(Some(offset));
        }
        pos += info.frame_len();
    }
    Ok(None)
}
