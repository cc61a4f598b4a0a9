//! A sealed, immutable log file, read through a lazily created mmap.
//!
//! Only a fragment's summary (offsets, length, newest timestamp) stays in
//! memory; its map and index entries are loaded on the first read and dropped
//! again when the log unmaps idle fragments, so a broker with thousands of
//! partitions holds neither thousands of maps nor their indexes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;

use crate::error::{Result, StorageError};
use crate::index::SparseIndex;
use crate::read::{self, Gathered, ReadRange};
use crate::{recovery, sys};

/// Suffix of sealed fragment files.
pub const FRAGMENT_SUFFIX: &str = "frag";
/// Suffix of fragment index files.
pub const INDEX_SUFFIX: &str = "index";

/// The file name of a log file: `{base_offset:020}.{suffix}`.
pub(crate) fn file_name(base_offset: u64, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}

/// What is kept while a fragment is mapped.
#[derive(Debug)]
struct Loaded {
    map: Bytes,
    index: Arc<SparseIndex>,
}

/// One sealed fragment.
#[derive(Debug)]
pub(crate) struct Fragment {
    pub base_offset: u64,
    pub next_offset: u64,
    pub len: u64,
    pub max_timestamp: i64,
    /// When its last record was appended, by this broker's wall clock (the
    /// file's mtime): what time retention judges it by (see `clock`).
    pub appended_ms: i64,
    pub path: PathBuf,
    pub index_path: PathBuf,
    interval: u32,
    loaded: Mutex<Option<Loaded>>,
    /// Mirrors `loaded.is_some()` without taking its lock, which a first read
    /// holds while it maps the file (and perhaps rebuilds the index).
    mapped: AtomicBool,
    /// Set by retention, truncation or compaction before the files are
    /// unlinked or replaced.
    deleted: AtomicBool,
    /// Microseconds since `epoch` of the last read, for LRU unmapping.
    last_used: AtomicU64,
    epoch: Instant,
}

impl Fragment {
    /// A fragment just sealed from a WAL whose index is known.
    pub fn sealed(dir: &Path, index: &SparseIndex, interval: u32, epoch: Instant) -> Fragment {
        let path = dir.join(file_name(index.base_offset, FRAGMENT_SUFFIX));
        Fragment {
            base_offset: index.base_offset,
            next_offset: index.next_offset,
            len: index.file_len,
            max_timestamp: index.max_timestamp,
            // Unknown: counted as appended now, so retention waits a full period.
            appended_ms: crate::clock::modified_ms(&path).unwrap_or_else(crate::clock::now_ms),
            path,
            index_path: dir.join(file_name(index.base_offset, INDEX_SUFFIX)),
            interval,
            loaded: Mutex::new(None),
            mapped: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            last_used: AtomicU64::new(0),
            epoch,
        }
    }

    /// Opens a fragment found on disk: checks its index against it and
    /// rebuilds the index by scanning when it is missing or inconsistent.
    pub fn open(dir: &Path, base_offset: u64, interval: u32, epoch: Instant) -> Result<Fragment> {
        let path = dir.join(file_name(base_offset, FRAGMENT_SUFFIX));
        let index_path = dir.join(file_name(base_offset, INDEX_SUFFIX));
        let len = std::fs::metadata(&path)
            .map_err(|e| StorageError::io(format!("stat fragment {}", path.display()), e))?
            .len();
        let index = match SparseIndex::load(&index_path, base_offset, len)? {
            Some(index) => {
                // The index is trusted for lookups only after the fragment's
                // own header confirms it is the file the index describes.
                crate::frame::check_file_header_of(&path, base_offset)?;
                index
            }
            None => recovery::rebuild_fragment_index(&path, &index_path, base_offset, len, interval)?,
        };
        Ok(Fragment::sealed(dir, &index, interval, epoch))
    }

    fn load(&self) -> Result<(Bytes, Arc<SparseIndex>)> {
        self.last_used.store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = &*loaded {
            return Ok((l.map.clone(), l.index.clone()));
        }
        // Checked under `loaded`, which `mark_deleted` takes: once a
        // compaction replaced this fragment, its path names the new file,
        // which must not be mapped as this one.
        if self.is_deleted() {
            let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(StorageError::io(format!("map {}: removed from the log", self.path.display()), gone));
        }
        let map = sys::map_file(&self.path, self.len)?;
        let index = match SparseIndex::load(&self.index_path, self.base_offset, self.len)? {
            Some(index) => index,
            None => recovery::rebuild_fragment_index(
                &self.path,
                &self.index_path,
                self.base_offset,
                self.len,
                self.interval,
            )?,
        };
        if index.next_offset != self.next_offset {
            return Err(StorageError::corruption(
                &self.index_path,
                0,
                format!("index now ends at offset {}, {} when opened", index.next_offset, self.next_offset),
            ));
        }
        let index = Arc::new(index);
        *loaded = Some(Loaded { map: map.clone(), index: index.clone() });
        self.mapped.store(true, Ordering::Relaxed);
        Ok((map, index))
    }

    /// True when the fragment is mapped.
    pub fn is_mapped(&self) -> bool {
        self.mapped.load(Ordering::Relaxed)
    }

    /// Marks the fragment as removed from the log (its files are about to go).
    pub fn mark_deleted(&self) {
        let _loading = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        self.deleted.store(true, Ordering::Relaxed);
    }

    /// True once retention or truncation removed the fragment.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Relaxed)
    }

    /// Microseconds (since the log's epoch) of the last read.
    pub fn last_used_micros(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Drops the map and index; slices handed out stay valid.
    pub fn unmap(&self) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        *loaded = None;
        self.mapped.store(false, Ordering::Relaxed);
    }

    /// Reads whole batches for `range` into `out`.
    pub fn read(&self, range: ReadRange, out: &mut Gathered) -> Result<()> {
        let (map, index) = self.load()?;
        let pos = index.position_for_offset(range.offset) as usize;
        read::carve(&map, pos, range, out, &self.path, 0, true)
    }

    /// The file's bytes up to the first batch that is not wholly before
    /// `offset`, every frame CRC-checked: the kept part of a truncation.
    pub fn verified_prefix(&self, offset: u64) -> Result<Bytes> {
        let (map, _) = self.load()?;
        let mut pos = crate::frame::FILE_HEADER_LEN;
        while pos < map.len() {
            let info = crate::frame::check_frame(&map[pos..])
                .map_err(|reason| StorageError::corruption(&self.path, pos as u64, reason))?;
            if info.next_offset > offset {
                break;
            }
            pos += info.frame_len();
        }
        Ok(map.slice(..pos))
    }

    /// The first offset whose batch has a timestamp at or after `ts`, if any
    /// batch in this fragment has one.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let (map, index) = self.load()?;
        let pos = index.position_for_timestamp(ts) as usize;
        crate::timestamp::first_at_or_after(&map, pos, ts, &self.path)
    }
}
