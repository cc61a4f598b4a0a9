//! Reads: whole batches by offset (zero-copy from mapped fragments, one
//! buffer per call from the WAL) and offsets by timestamp; the fragments'
//! maps are limited in number and dropped when idle.
//!
//! The log's lock is held only to pick the file; the I/O runs without it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::batch::Batch;

use super::PartitionLog;
use crate::error::{Result, StorageError};
use crate::fragment::Fragment;
use crate::read::{Gathered, ReadRange};
use crate::wal::WalView;

/// Where a read is served from, picked under the lock.
enum Source {
    Fragment(Arc<Fragment>),
    Wal(WalView),
}

impl PartitionLog {
    /// Reads whole batches starting with the one holding `offset`, up to
    /// about `max_bytes` (at least one batch). Fragment batches are zero-copy
    /// slices of the map; WAL batches slices of one buffer read per call.
    /// Reads stay within one file; an empty result means `offset` is the log end.
    pub fn read(&self, offset: u64, max_bytes: usize) -> Result<Vec<Bytes>> {
        self.read_bounded(offset, max_bytes, u64::MAX)
    }

    /// Like [`PartitionLog::read`], but returns no batch that starts at or
    /// after `upper` (e.g. the high watermark).
    pub fn read_bounded(&self, offset: u64, max_bytes: usize, upper: u64) -> Result<Vec<Bytes>> {
        let range = ReadRange { offset, max_bytes, upper };
        loop {
            let source = {
                let inner = self.lock();
                let (start, end) = (inner.log_start(), inner.log_end());
                if offset < start || offset > end {
                    return Err(StorageError::OffsetOutOfRange { offset, log_start: start, log_end: end });
                }
                let sealing = inner.sealing.as_ref().map(|s| &s.wal).filter(|w| offset >= w.index.base_offset);
                if offset >= inner.wal.index.base_offset {
                    Source::Wal(inner.wal.view_from(inner.wal.index.position_for_offset(offset)))
                } else if let Some(wal) = sealing {
                    Source::Wal(wal.view_from(wal.index.position_for_offset(offset)))
                } else {
                    let i = inner.fragments.partition_point(|f| f.next_offset <= offset);
                    Source::Fragment(inner.fragments[i].clone())
                }
            };
            let mut out = Gathered::default();
            match source {
                Source::Wal(view) => view.read(range, &mut out)?,
                Source::Fragment(fragment) => {
                    match self.with_fragment(&fragment, |f| f.read(range, &mut out)) {
                        // Retention or truncation removed it after the lookup:
                        // look again (the answer is now out of range or elsewhere).
                        Err(_) if fragment.is_deleted() => continue,
                        result => result?,
                    }
                }
            }
            return Ok(out.batches);
        }
    }

    /// The offset of the first record (in log order) whose timestamp is at
    /// or after `ts`, or `None` if there is none. A record found below the
    /// log start (deleted on request, sharing a file with records kept)
    /// gives the log start: a consumer positioned there misses nothing.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>> {
        let (fragments, sealing, wal, start) = {
            let inner = self.lock();
            let view = |w: &crate::wal::Wal| w.view_from(w.index.position_for_timestamp(ts));
            let (sealing, wal) = (inner.sealing.as_ref().map(|s| view(&s.wal)), view(&inner.wal));
            (inner.fragments.clone(), sealing, wal, inner.log_start())
        };
        self.first_at_or_after(ts, &fragments, sealing, wal).map(|found| found.map(|o| o.max(start)))
    }

    fn first_at_or_after(
        &self,
        ts: i64,
        fragments: &[Arc<Fragment>],
        sealing: Option<WalView>,
        wal: WalView,
    ) -> Result<Option<u64>> {
        for fragment in fragments {
            match self.with_fragment(fragment, |f| f.offset_for_timestamp(ts)) {
                Ok(Some(offset)) => return Ok(Some(offset)),
                Ok(None) => {}
                // Deleted by retention meanwhile: its records are gone, look on.
                Err(_) if fragment.is_deleted() => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(sealing) = sealing
            && let Some(offset) = sealing.offset_for_timestamp(ts)?
        {
            return Ok(Some(offset));
        }
        wal.offset_for_timestamp(ts)
    }

    /// Runs `op` on a fragment (which may map it), then keeps the number of
    /// mapped fragments within `max_mapped_fragments`.
    fn with_fragment<T>(&self, fragment: &Arc<Fragment>, op: impl FnOnce(&Fragment) -> Result<T>) -> Result<T> {
        let was_mapped = fragment.is_mapped();
        let result = op(fragment);
        if !was_mapped && fragment.is_mapped() {
            self.limit_maps(fragment);
        }
        result
    }

    /// Unmaps the least recently read fragments beyond `max_mapped_fragments`.
    fn limit_maps(&self, keep: &Arc<Fragment>) {
        let inner = self.lock();
        let mut mapped: Vec<&Arc<Fragment>> =
            inner.fragments.iter().filter(|f| f.is_mapped() && !Arc::ptr_eq(f, keep)).collect();
        let excess = (mapped.len() + 1).saturating_sub(self.config.max_mapped_fragments);
        mapped.sort_by_key(|f| f.last_used_micros());
        for f in mapped.into_iter().take(excess) {
            f.unmap();
        }
    }

    /// The largest record timestamp in the log (`None` while it holds no
    /// record): from the fragments' and WALs' indexes, without a read.
    pub fn max_timestamp(&self) -> Option<i64> {
        let inner = self.lock();
        let max = inner
            .fragments
            .iter()
            .map(|f| f.max_timestamp)
            .chain(inner.sealing.as_ref().map(|s| s.wal.index.max_timestamp))
            .chain([inner.wal.index.max_timestamp])
            .max()?;
        (max != i64::MIN).then_some(max)
    }

    /// Unmaps fragments not read for `idle`. Slices already handed out stay valid.
    pub fn unmap_idle(&self, idle: Duration) {
        let now = self.epoch.elapsed().as_micros() as u64;
        let idle = idle.as_micros() as u64;
        for f in self.lock().fragments.iter().filter(|f| f.is_mapped()) {
            if now.saturating_sub(f.last_used_micros()) >= idle {
                f.unmap();
            }
        }
    }

    /// The CRC of the batch that ends exactly at `offset`, if one does.
    pub(super) fn batch_ending_at(&self, offset: u64) -> Result<Option<u32>> {
        let Some(bytes) = self.read(offset - 1, 1)?.into_iter().next() else { return Ok(None) };
        let batch = Batch::parse_sparse(bytes)?;
        Ok((batch.next_offset() == offset).then(|| batch.crc()))
    }
}
