//! Cutting whole batches out of log-file bytes for a read.

use std::path::Path;

use bytes::Bytes;

use crate::error::{Result, StorageError};
use crate::frame::{self, FRAME_HEADER_LEN};

/// What a read asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadRange {
    /// First offset wanted; the batch holding it is the first returned.
    pub offset: u64,
    /// Stop before a batch that would take the total past this, except that
    /// the first batch is always returned whole, so a reader makes progress.
    pub max_bytes: usize,
    /// Never return a batch starting at or after this offset (the high
    /// watermark, or the log end).
    pub upper: u64,
}

/// Batches gathered by a read, as zero-copy slices.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    pub batches: Vec<Bytes>,
    pub bytes: usize,
}

/// Appends to `out` the batches of `region` (bytes of the file at `path`,
/// starting at file position `region_start`) from region position `pos` on.
/// When `complete` is true the region runs to the end of valid data and a
/// frame cut short is corruption; otherwise the region is a window and a
/// frame cut short simply ends it.
pub(crate) fn carve(
    region: &Bytes,
    mut pos: usize,
    range: ReadRange,
    out: &mut Gathered,
    path: &Path,
    region_start: u64,
    complete: bool,
) -> Result<()> {
    let corrupt = |pos: usize, reason: String| StorageError::corruption(path, region_start + pos as u64, reason);
    while pos < region.len() {
        let rest = &region[pos..];
        let info = match frame::peek_frame(rest) {
            Ok(info) if info.frame_len() <= rest.len() => info,
            Ok(_) | Err(_) if !complete => return Ok(()),
            Ok(info) => return Err(corrupt(pos, format!("frame of {} bytes runs past the end", info.frame_len()))),
            Err(reason) => return Err(corrupt(pos, reason)),
        };
        if info.next_offset <= range.offset {
            pos += info.frame_len();
            continue;
        }
        if info.base_offset >= range.upper || (!out.batches.is_empty() && out.bytes + info.len > range.max_bytes) {
            break;
        }
        let start = pos + FRAME_HEADER_LEN;
        // Nothing on disk is served unchecked: a flipped bit or a zeroed
        // sector under a sealed fragment is found here, by the broker, not
        // by every consumer (crc32fast runs at several GB/s).
        let actual = crc32fast::hash(&region[start..start + info.len]);
        if actual != info.crc {
            return Err(corrupt(
                pos,
                format!("frame CRC mismatch: stored {:#010x}, computed {actual:#010x}", info.crc),
            ));
        }
        out.batches.push(region.slice(start..start + info.len));
        out.bytes += info.len;
        pos += info.frame_len();
        if out.bytes >= range.max_bytes {
            break;
        }
    }
    Ok(())
}
