//! Reading a partition directory without recovering it and without its
//! lock: what `goulette storage inspect --read-only` shows of a directory a
//! running broker owns.
//!
//! Nothing is written, truncated or deleted, and nothing is mapped: files
//! are read with `read(2)`, because the broker may cut its WAL at any
//! moment (a mapped page past a cut raises SIGBUS; a read just returns
//! less). So the view is a snapshot that can be a little behind, and a
//! frame the broker is writing at that instant shows as a torn tail; every
//! frame is checked against its CRC, and none is trusted without it.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::Batch;
use crate::error::{IoContext, Result};
use crate::fragment::FRAGMENT_SUFFIX;
use crate::frame::{self, FILE_HEADER_LEN};
use crate::wal::WAL_SUFFIX;

/// What one log file holds, as far as its frames check out.
#[derive(Debug, Clone)]
pub struct FileScan {
    /// The file.
    pub path: PathBuf,
    /// True for the WAL (or a WAL a seal left), false for a sealed fragment.
    pub is_wal: bool,
    /// The offset its name (and header) starts at.
    pub base_offset: u64,
    /// The offset after its last good batch.
    pub next_offset: u64,
    /// Its size in bytes.
    pub len: u64,
    /// The first frame that failed a check: its byte position and why.
    pub bad_frame: Option<(u64, String)>,
}

/// A partition directory's files, scanned without changing them.
#[derive(Debug)]
pub struct ReadOnlyLog {
    /// Fragments and WALs in offset order.
    pub files: Vec<FileScan>,
    /// Records below this were deleted on request (the `log-start` file).
    pub deleted_before: u64,
}

impl ReadOnlyLog {
    /// Scans every fragment and WAL of `dir`, checking every frame.
    pub fn scan(dir: &Path) -> Result<ReadOnlyLog> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).context(|| format!("list {}", dir.display()))? {
            let entry = entry.context(|| format!("list {}", dir.display()))?;
            let name = entry.file_name();
            let Some((base, suffix)) = name.to_str().and_then(crate::log::parse_name) else { continue };
            if suffix == FRAGMENT_SUFFIX || suffix == WAL_SUFFIX {
                names.push((base, suffix == WAL_SUFFIX, entry.path()));
            }
        }
        // By offset; of two files at one offset (a seal in flight), the
        // fragment first.
        names.sort_by_key(|(base, is_wal, _)| (*base, *is_wal));
        let mut files = Vec::with_capacity(names.len());
        for (base_offset, is_wal, path) in names {
            let bytes = std::fs::read(&path).context(|| format!("read {}", path.display()))?;
            frame::check_file_header(&bytes, &path, base_offset)?;
            let (next_offset, bad_frame) = walk(&bytes, base_offset, |_, _| true);
            files.push(FileScan { path, is_wal, base_offset, next_offset, len: bytes.len() as u64, bad_frame });
        }
        Ok(ReadOnlyLog { files, deleted_before: crate::log_start::load(dir)? })
    }

    /// The first offset held: the first file's, or where records were deleted up to.
    pub fn log_start_offset(&self) -> u64 {
        let first = self.files.first().map_or(0, |f| f.base_offset);
        first.max(self.deleted_before.min(self.log_end_offset()))
    }

    /// The offset after the last good batch of the last file.
    pub fn log_end_offset(&self) -> u64 {
        self.files.last().map_or(0, |f| f.next_offset)
    }

    /// Where one file does not start where the previous one ends.
    pub fn gaps(&self) -> Vec<(u64, u64)> {
        self.files
            .windows(2)
            .filter(|w| w[0].next_offset != w[1].base_offset)
            .map(|w| (w[0].next_offset, w[1].base_offset))
            .collect()
    }

    /// Calls `each` with every good batch holding offsets at or after
    /// `from`, in order, until it returns false.
    pub fn for_each_batch(&self, from: u64, mut each: impl FnMut(&Batch) -> bool) -> Result<()> {
        for file in self.files.iter().filter(|f| f.next_offset > from) {
            let bytes = std::fs::read(&file.path).context(|| format!("read {}", file.path.display()))?;
            let bytes = Bytes::from(bytes);
            let mut stopped = false;
            walk(&bytes, file.base_offset, |at, len| {
                let batch = Batch::parse_sparse(bytes.slice(at..at + len));
                let go_on = match batch {
                    Ok(batch) if batch.next_offset() <= from => true,
                    Ok(batch) => each(&batch),
                    // The CRC held, so this is a batch the codec refuses; the scan shows it.
                    Err(_) => true,
                };
                stopped = !go_on;
                go_on
            });
            if stopped {
                break;
            }
        }
        Ok(())
    }
}

/// Walks the frames of one log file, calling `each(position, len)` with
/// each good batch's bytes until it returns false; returns the offset after
/// the last good batch and the first bad frame (position, reason).
fn walk(bytes: &[u8], base_offset: u64, mut each: impl FnMut(usize, usize) -> bool) -> (u64, Option<(u64, String)>) {
    let mut pos = FILE_HEADER_LEN;
    let mut next = base_offset;
    while pos < bytes.len() {
        match frame::check_frame(&bytes[pos..]) {
            Ok(info) if info.base_offset == next => {
                next = info.next_offset;
                let batch_at = pos + frame::FRAME_HEADER_LEN;
                pos += info.frame_len();
                if !each(batch_at, info.len) {
                    break;
                }
            }
            Ok(info) => {
                return (
                    next,
                    Some((pos as u64, format!("frame has base offset {}, expected {next}", info.base_offset))),
                );
            }
            // Zeros to the end: a prepared WAL's room, not a bad frame.
            Err(_) if crate::prealloc::all_zero(&bytes[pos..]) => break,
            Err(reason) => return (next, Some((pos as u64, reason))),
        }
    }
    (next, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchBuilder, Compression, LogConfig, PartitionLog, Record};

    fn append(log: &PartitionLog, value: &str) {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(&Record { value: value.as_bytes().to_vec().into(), ..Record::default() });
        log.append(&Batch::parse(b.build().unwrap()).unwrap(), 0).unwrap();
    }

    #[test]
    fn a_locked_log_is_read_and_a_torn_tail_is_shown_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        for v in ["a", "b", "c"] {
            append(&log, v);
        }
        // The log stays open (and locked); a torn frame follows its tail.
        let wal = dir.path().join(format!("{:020}.wal", 0));
        let len = std::fs::metadata(&wal).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&wal)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(&[0x40, 0, 0, 0, 1, 2])
            })
            .unwrap();

        let scan = ReadOnlyLog::scan(dir.path()).unwrap();
        assert_eq!((scan.log_start_offset(), scan.log_end_offset()), (0, 3));
        assert_eq!(scan.files.len(), 1);
        assert_eq!(scan.files[0].bad_frame.as_ref().map(|b| b.0), Some(len));
        let mut values = Vec::new();
        scan.for_each_batch(1, |batch| {
            values.extend(batch.records().unwrap().into_iter().map(|r| r.record.value));
            true
        })
        .unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), len + 6, "nothing was cut");
        drop(log);
    }
}
