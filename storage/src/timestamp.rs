//! Finding the first record at or after a timestamp.

use std::path::Path;

use bytes::Bytes;

use crate::batch::Batch;
use crate::error::{Result, StorageError};
use crate::frame::{self, FRAME_HEADER_LEN};

/// The offset of the first record with a timestamp `>= ts` in `batch`, which
/// must have `max_timestamp >= ts`. Batches are decoded only here, once per
/// lookup, so the answer is exact to the record, not just to the batch.
pub(crate) fn first_in_batch(batch: Bytes, ts: i64, path: &Path, position: u64) -> Result<u64> {
    let batch = Batch::parse(batch).map_err(|e| StorageError::corruption(path, position, e.to_string()))?;
    let records = batch.records().map_err(|e| StorageError::corruption(path, position, e.to_string()))?;
    Ok(records.iter().find(|r| r.record.timestamp >= ts).map_or(batch.base_offset(), |r| r.offset))
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
        if info.max_timestamp >= ts {
            let start = pos + FRAME_HEADER_LEN;
            return first_in_batch(region.slice(start..start + info.len), ts, path, pos as u64).map(Some);
        }
        pos += info.frame_len();
    }
    Ok(None)
}
