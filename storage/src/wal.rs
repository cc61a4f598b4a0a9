//! The active WAL: the one writable file of a partition, `{base_offset:020}.wal`.
//!
//! Appends go to the end of the file with one `writev` per batch (frame
//! header, restamped batch prefix, the rest of the batch as the producer sent
//! it: no copy of the payload). Reads use `pread` on a shared handle, so they
//! never hold the log's lock while touching the disk. The format is the log
//! file format of [`crate::frame`].

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::Batch;
use crate::crashsafe;
use crate::error::{IoContext, Result, StorageError};
use crate::fragment::file_name;
use crate::frame::{self, FRAME_PEEK_LEN, FrameInfo};
use crate::index::SparseIndex;
use crate::log::state::{LogState, Step};
use crate::prealloc::PreparedWal;
use crate::read::{self, Gathered, ReadRange};
use crate::timestamp;
use crate::{recovery, sys};

/// Suffix of the active WAL file.
pub const WAL_SUFFIX: &str = "wal";

/// Bytes appended between two writeback hints (see [`sys::start_writeback`]).
const WRITEBACK_CHUNK: u64 = 8 << 20;

/// Bytes read past `max_bytes` in one `pread`, so that a read rarely needs a
/// second call for the frame headers it also returns.
const READ_SLACK: usize = 64 << 10;
/// Most bytes one WAL read buffers (beyond a first batch larger than this),
/// whatever `max_bytes` asks for.
const MAX_READ_WINDOW: usize = 16 << 20;

/// The active WAL.
#[derive(Debug)]
pub(crate) struct Wal {
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Offsets, byte length and sparse index of what the file holds.
    pub index: SparseIndex,
    /// Wall-clock ms of the first append since the WAL was created or
    /// recovered; drives sealing by age.
    pub first_append_ms: Option<i64>,
    /// File position up to which writeback has been requested.
    writeback_from: u64,
    /// The file's length when it was prepared (zero-filled ahead: see
    /// `prealloc`), or recovered; appends below it change no file size.
    capacity: u64,
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).open(path).context(|| format!("open WAL {}", path.display()))
}

impl Wal {
    /// Creates an empty WAL starting at `base_offset`. The header is written
    /// tmp → fsync → rename, so a WAL file never exists without a complete
    /// header; the caller fsyncs the directory.
    pub fn create(dir: &Path, base_offset: u64, interval: u32) -> Result<Wal> {
        let path = dir.join(file_name(base_offset, WAL_SUFFIX));
        crashsafe::write_atomic_no_dir_sync(&path, &[&frame::file_header(base_offset)])?;
        Wal::attach(path, SparseIndex::new(base_offset, interval))
    }

    /// Creates an empty WAL starting at `base_offset` without syncing it:
    /// for a seal's switch, under the log's lock. The header is written to
    /// a tmp file renamed into place, so the WAL's name never shows a
    /// partial header while the system runs; after a power loss the file
    /// may lack its header, which recovery repairs (nothing in it was
    /// acknowledged: rounds sync it, and fsync the directory, first).
    pub fn create_unsynced(dir: &Path, base_offset: u64, interval: u32) -> Result<Wal> {
        let path = dir.join(file_name(base_offset, WAL_SUFFIX));
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(crashsafe::TMP_SUFFIX);
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, frame::file_header(base_offset)).context(|| format!("create {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        Wal::attach(path, SparseIndex::new(base_offset, interval))
    }

    /// Opens and recovers an existing WAL.
    pub fn open(dir: &Path, base_offset: u64, interval: u32) -> Result<Wal> {
        let path = dir.join(file_name(base_offset, WAL_SUFFIX));
        let recovered = recovery::recover_wal(&path, base_offset, interval)?;
        let mut wal = Wal::attach(path, recovered.index)?;
        wal.capacity = recovered.capacity;
        Ok(wal)
    }

    fn attach(path: PathBuf, index: SparseIndex) -> Result<Wal> {
        let file = open_rw(&path)?;
        Wal::attach_file(path, file, index)
    }

    fn attach_file(path: PathBuf, mut file: File, index: SparseIndex) -> Result<Wal> {
        file.seek(SeekFrom::Start(index.file_len)).context(|| format!("seek WAL {}", path.display()))?;
        let writeback_from = index.file_len;
        let capacity = index.file_len;
        Ok(Wal { path, file: Arc::new(file), index, first_append_ms: None, writeback_from, capacity })
    }

    /// Makes `prepared` the empty WAL starting at `base_offset`, for a
    /// seal's switch under the log's lock: its header written over the
    /// zeros, then its name, neither synced (as [`Wal::create_unsynced`];
    /// a header that never reached the disk leaves a file of zeros, which
    /// recovery writes the header into again).
    pub fn from_prepared(dir: &Path, prepared: PreparedWal, base_offset: u64, interval: u32) -> Result<Wal> {
        let path = dir.join(file_name(base_offset, WAL_SUFFIX));
        let PreparedWal { path: from, file, capacity } = prepared;
        file.write_all_at(&frame::file_header(base_offset), 0).context(|| format!("write {}", from.display()))?;
        std::fs::rename(&from, &path).context(|| format!("rename {} to {}", from.display(), path.display()))?;
        let mut wal = Wal::attach_file(path, file, SparseIndex::new(base_offset, interval))?;
        wal.capacity = capacity;
        Ok(wal)
    }

    /// The file's zero-filled length (its data length when not prepared).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether appends now grow the file: it was not prepared, or its
    /// zero-filled room is used up.
    pub fn outgrown(&self) -> bool {
        self.index.file_len >= self.capacity
    }

    /// Bytes in the file.
    pub fn len(&self) -> u64 {
        self.index.file_len
    }

    /// True when the WAL holds no batch.
    pub fn is_empty(&self) -> bool {
        self.index.next_offset == self.index.base_offset
    }

    /// Appends `batch` with its base offset and leader epoch restamped.
    /// On a failed write the file is cut back to its previous length, so a
    /// partial frame never sits in front of later appends.
    pub fn append(&mut self, batch: &Batch, base_offset: u64, leader_epoch: u32, now_ms: i64) -> Result<FrameInfo> {
        let bytes = batch.as_bytes();
        // The batch's first 16 bytes with offset and epoch stamped (big-endian, as `Batch::stamped`).
        let mut prefix = [0u8; 16];
        prefix[0..8].copy_from_slice(&base_offset.to_be_bytes());
        prefix[8..12].copy_from_slice(&bytes[8..12]);
        prefix[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        let header = frame::frame_header(&prefix, bytes);
        let mut slices = [IoSlice::new(&header), IoSlice::new(&prefix), IoSlice::new(&bytes[16..])];
        if let Err(e) = write_all_vectored(&self.file, &mut slices) {
            // The room after the data goes too: what the failed write left
            // in it is neither zeros nor a frame.
            self.capacity = self.index.file_len;
            let rollback = self
                .file
                .set_len(self.index.file_len)
                .and_then(|()| (&*self.file).seek(SeekFrom::Start(self.index.file_len)).map(drop));
            if let Err(rollback) = rollback {
                return Err(StorageError::Closed {
                    dir: self.path.clone(),
                    state: LogState::failed(
                        Step::Append,
                        format!("{e}, and the WAL could not be cut back ({rollback})"),
                    ),
                });
            }
            return Err(StorageError::io(format!("append to WAL {}", self.path.display()), e));
        }
        let info = FrameInfo {
            len: bytes.len(),
            crc: 0,
            base_offset,
            next_offset: base_offset + u64::from(batch.offset_count()),
            max_timestamp: batch.max_timestamp(),
        };
        self.index.push(&info);
        self.first_append_ms.get_or_insert(now_ms);
        if self.index.file_len - self.writeback_from >= WRITEBACK_CHUNK {
            sys::start_writeback(&self.file, self.writeback_from, self.index.file_len - self.writeback_from);
            self.writeback_from = self.index.file_len;
        }
        Ok(info)
    }

    /// fdatasync: the file's data (and its size) are durable when it returns.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().context(|| format!("fdatasync WAL {}", self.path.display()))
    }

    /// Cuts the WAL before the batch holding `offset` (which must be at or
    /// after the WAL's base), durably, and rebuilds the index.
    pub fn truncate(&mut self, offset: u64) -> Result<()> {
        let (pos, _) = self.view_from(self.index.position_for_offset(offset)).seek(offset)?;
        self.file.set_len(pos).context(|| format!("truncate WAL {}", self.path.display()))?;
        self.file.sync_all().context(|| format!("fsync WAL {}", self.path.display()))?;
        let recovered = recovery::recover_wal(&self.path, self.index.base_offset, self.index.interval())?;
        self.index = recovered.index;
        self.capacity = recovered.capacity;
        (&*self.file)
            .seek(SeekFrom::Start(self.index.file_len))
            .context(|| format!("seek WAL {}", self.path.display()))?;
        self.writeback_from = self.index.file_len;
        Ok(())
    }

    /// A snapshot that a reader can use without holding the log's lock,
    /// starting its scan at file position `start` (from the sparse index).
    pub fn view_from(&self, start: u64) -> WalView {
        WalView {
            path: self.path.clone(),
            file: self.file.clone(),
            len: self.index.file_len,
            max_timestamp: self.index.max_timestamp,
            start,
        }
    }
}

fn write_all_vectored(mut file: &File, mut slices: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A point-in-time view of the WAL for readers.
#[derive(Debug)]
pub(crate) struct WalView {
    path: PathBuf,
    file: Arc<File>,
    len: u64,
    max_timestamp: i64,
    /// Where scans start: an index position at or before the target.
    start: u64,
}

impl WalView {
    fn pread(&self, pos: u64, len: usize) -> Result<Bytes> {
        let len = len.min(self.len.saturating_sub(pos) as usize);
        let mut buf = BytesMut::zeroed(len);
        let mut filled = 0;
        while filled < len {
            // A concurrent truncation can shorten the file under a reader: a
            // short read then ends the data, it is not an error.
            match self.file.read_at(&mut buf[filled..], pos + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StorageError::io(format!("read WAL {}", self.path.display()), e)),
            }
        }
        buf.truncate(filled);
        Ok(buf.freeze())
    }

    /// Position and header of the frame holding `offset`, or the end of the
    /// data (position `len`, no frame) when no frame holds it.
    fn seek(&self, offset: u64) -> Result<(u64, Option<FrameInfo>)> {
        let mut pos = self.start;
        while pos < self.len {
            let head = self.pread(pos, FRAME_PEEK_LEN)?;
            let info = frame::peek_frame(&head).map_err(|reason| StorageError::corruption(&self.path, pos, reason))?;
            if info.next_offset > offset {
                return Ok((pos, Some(info)));
            }
            pos += info.frame_len() as u64;
        }
        Ok((self.len, None))
    }

    /// Reads whole batches for `range`.
    pub fn read(&self, range: ReadRange, out: &mut Gathered) -> Result<()> {
        let (pos, Some(first)) = self.seek(range.offset)? else {
            return Ok(());
        };
        let window = first.frame_len().max(range.max_bytes.saturating_add(READ_SLACK).min(MAX_READ_WINDOW));
        let chunk = self.pread(pos, window)?;
        read::carve(&chunk, 0, range, out, &self.path, pos, false)
    }

    /// The first offset at or after timestamp `ts`, if the WAL holds one.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let mut pos = self.start;
        while pos < self.len {
            let head = self.pread(pos, FRAME_PEEK_LEN)?;
            let info = frame::peek_frame(&head).map_err(|reason| StorageError::corruption(&self.path, pos, reason))?;
            if info.max_timestamp >= ts {
                let batch = self.pread(pos + frame::FRAME_HEADER_LEN as u64, info.len)?;
                if let Some(offset) = timestamp::first_in_batch(batch, ts, &self.path, pos)? {
                    return Ok(Some(offset));
                }
            }
            pos += info.frame_len() as u64;
        }
        Ok(None)
    }
}
