//! Files dropped into a directory: each line a record (or each file one
//! record), in file order, files oldest first.
//!
//! - A file is taken once it has not changed for `settle` (a writer still
//!   busy with it is waited for; the safest way to drop a file is to write
//!   it elsewhere and rename it in).
//! - Progress is the byte offset the target acknowledged, per file, in a
//!   checkpoint (see [`checkpoint`](super::checkpoint)). A restart resumes
//!   a half-sent file at that offset: what was sent after it but not yet
//!   acknowledged is sent again (at least once).
//! - A file moves to the finished directory only once every record of it
//!   was acknowledged, and only then leaves the checkpoint: a crash before
//!   the move finds it complete and moves it without sending it again; a
//!   crash after finds it gone and forgets it.
//!
//! The source runs on a thread of its own: its work is blocking file I/O.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::SourceEnds;
use super::checkpoint::{Checkpoint, Progress};
use crate::config::{FileMode, FilesConfig};
use crate::metrics::SourceMetrics;
use crate::record::{Batch, MirrorRecord};

/// Records per batch at most…
const BATCH_RECORDS: usize = 1000;
/// …and bytes.
const BATCH_BYTES: usize = 1 << 20;
/// How often acknowledgements are looked for while idle.
const ACK_POLL: Duration = Duration::from_millis(20);
/// Checkpoints are written at most this often (and whenever a file completes).
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// Why the source stopped.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// The pipeline is gone (it stopped): nothing more to send.
    #[error("the pipeline stopped")]
    PipelineGone,
}

/// Header names of the records this source makes.
pub const HEADER_SOURCE: &str = "goulette-mirror-source";
pub const HEADER_FILE: &str = "goulette-mirror-file";
pub const HEADER_OFFSET: &str = "goulette-mirror-offset";

/// A batch sent and not yet acknowledged: where it ends in its file.
#[derive(Debug)]
struct Pending {
    position: u64,
    file: String,
    end: u64,
    /// The file's last batch.
    last: bool,
}

/// The running source.
struct FilesSource {
    config: FilesConfig,
    /// None once the source stops sending.
    batches: Option<tokio::sync::mpsc::Sender<Batch>>,
    acks: tokio::sync::mpsc::UnboundedReceiver<super::Acked>,
    checkpoint: Checkpoint,
    /// Files this run took (sent, or being sent): not taken again.
    taken: std::collections::HashSet<String>,
    pending: VecDeque<Pending>,
    next_position: u64,
    saved_at: std::time::Instant,
    dirty: bool,
    metrics: SourceMetrics,
}

/// Runs the source until `token` is cancelled and every batch it sent has
/// been acknowledged or given up by the pipeline (the acknowledgement
/// channel closed).
pub fn run(
    config: FilesConfig,
    ends: SourceEnds,
    metrics: SourceMetrics,
    token: CancellationToken,
) -> Result<(), FilesError> {
    let state = config.state_directory();
    let checkpoint = Checkpoint::load(&state)?;
    for dir in [&config.directory, &config.finished_directory(), &state] {
        std::fs::create_dir_all(dir).map_err(|e| FilesError::Io { path: dir.clone(), reason: e.to_string() })?;
    }
    let mut source = FilesSource {
        config,
        batches: Some(ends.batches),
        acks: ends.acks,
        checkpoint,
        taken: std::collections::HashSet::new(),
        pending: VecDeque::new(),
        next_position: 1,
        saved_at: std::time::Instant::now(),
        dirty: false,
        metrics,
    };
    source.forget_vanished();
    source.finish_completed()?;
    let result = match source.serve(&token) {
        Err(FilesError::PipelineGone) => Ok(()),
        other => other,
    };
    // Stop sending; take the acknowledgements of what is in flight until
    // the pipeline lets go.
    source.batches = None;
    while let Some(acked) = source.acks.blocking_recv() {
        source.acknowledged(acked.position);
    }
    source.finish_completed()?;
    source.save(true)?;
    result
}

impl FilesSource {
    fn serve(&mut self, token: &CancellationToken) -> Result<(), FilesError> {
        let mut next_scan = std::time::Instant::now();
        while !token.is_cancelled() {
            self.take_acks()?;
            if std::time::Instant::now() < next_scan {
                std::thread::sleep(ACK_POLL);
                continue;
            }
            next_scan = std::time::Instant::now() + self.config.poll_interval;
            for (name, inode, size) in self.settled_files()? {
                if token.is_cancelled() {
                    break;
                }
                self.send_file(&name, inode, size, token)?;
            }
        }
        Ok(())
    }

    /// Applies the acknowledgements received so far; finishes complete files.
    fn take_acks(&mut self) -> Result<(), FilesError> {
        // Empty or closed: either way, nothing more now.
        while let Ok(acked) = self.acks.try_recv() {
            self.acknowledged(acked.position);
        }
        self.finish_completed()?;
        self.save(false)
    }

    fn acknowledged(&mut self, position: u64) {
        while self.pending.front().is_some_and(|p| p.position <= position) {
            let Some(done) = self.pending.pop_front() else { break };
            if let Some(progress) = self.checkpoint.files.get_mut(&done.file) {
                progress.acked = progress.acked.max(done.end);
                if done.last {
                    progress.acked = progress.size;
                }
                self.dirty = true;
            }
        }
    }

    fn save(&mut self, now: bool) -> Result<(), FilesError> {
        if self.dirty && (now || self.saved_at.elapsed() >= SAVE_EVERY) {
            self.checkpoint.save(&self.config.state_directory())?;
            self.saved_at = std::time::Instant::now();
            self.dirty = false;
        }
        Ok(())
    }

    /// Moves every completely acknowledged file to the finished directory
    /// (the checkpoint saying so is saved first), then forgets it.
    fn finish_completed(&mut self) -> Result<(), FilesError> {
        let done: Vec<String> = self
            .checkpoint
            .files
            .iter()
            .filter(|(name, p)| p.done() && !self.pending.iter().any(|q| &q.file == *name))
            .map(|(name, _)| name.clone())
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        self.save(true)?;
        let finished = self.config.finished_directory();
        for name in done {
            let from = self.config.directory.join(&name);
            // Written to after it was taken (a writer that did not wait
            // for `settle`): not moved, the rest is sent once it settles.
            let now = std::fs::metadata(&from).map(|m| (m.ino(), m.len())).ok();
            if let (Some((inode, len)), Some(p)) = (now, self.checkpoint.files.get_mut(&name))
                && inode == p.inode
                && len > p.size
            {
                tracing::warn!(source = %self.config.name, file = %name, "a file grew after it was taken; its new lines will be sent");
                p.size = len;
                self.taken.remove(&name);
                self.dirty = true;
                continue;
            }
            let to = free_name(&finished.join(&name));
            if let Some(parent) = to.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            match std::fs::rename(&from, &to) {
                Ok(()) => {
                    tracing::info!(source = %self.config.name, file = %name, to = %to.display(), "file mirrored and moved");
                    self.metrics.files_finished.inc();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Kept in the checkpoint as complete: never sent again, moved on a later try.
                    tracing::error!(source = %self.config.name, file = %name, error = %e, "cannot move a mirrored file; will retry");
                    self.metrics.errors.inc();
                    continue;
                }
            }
            self.checkpoint.files.remove(&name);
            self.taken.remove(&name);
            self.dirty = true;
        }
        self.save(true)
    }

    /// Forgets checkpoint entries whose file is gone (moved before a crash).
    fn forget_vanished(&mut self) {
        let dir = self.config.directory.clone();
        self.checkpoint.files.retain(|name, _| dir.join(name).exists());
    }

    /// The files to send now, oldest first: matching, settled, not finished.
    fn settled_files(&mut self) -> Result<Vec<(String, u64, u64)>, FilesError> {
        let mut found = Vec::new();
        let finished = self.config.finished_directory();
        walk(&self.config.directory, &self.config.directory, self.config.recursive, &finished, &mut found);
        let now = SystemTime::now();
        let mut taken: Vec<(SystemTime, String, u64, u64)> = found
            .into_iter()
            .filter(|(name, _)| matches(&self.config.pattern, file_name(name)))
            .filter_map(|(name, meta)| {
                let modified = meta.modified().ok()?;
                let age = now.duration_since(modified).unwrap_or_default();
                (age >= self.config.settle).then(|| (modified, name, meta.ino(), meta.len()))
            })
            // A file this run took is not taken again until it is finished
            // (or found to have grown, see `finish_completed`); one a former
            // run took resumes where the target acknowledged it.
            .filter(|(_, name, _, _)| !self.taken.contains(name))
            .collect();
        taken.sort();
        Ok(taken.into_iter().map(|(_, name, inode, size)| (name, inode, size)).collect())
    }

    /// Sends the records of file `name` (from its acknowledged offset).
    fn send_file(&mut self, name: &str, inode: u64, size: u64, token: &CancellationToken) -> Result<(), FilesError> {
        let path = self.config.directory.join(name);
        let io = |e: std::io::Error| FilesError::Io { path: path.clone(), reason: e.to_string() };
        let start = match self.checkpoint.files.get(name) {
            Some(p) if p.inode == inode => p.acked,
            _ => 0,
        };
        self.checkpoint.files.insert(name.to_owned(), Progress { inode, acked: start, size });
        self.taken.insert(name.to_owned());
        self.dirty = true;
        self.save(true)?;
        let mut file = std::fs::File::open(&path).map_err(io)?;
        tracing::info!(source = %self.config.name, file = %name, from = start, size, "mirroring a file");
        if size == 0 || start >= size {
            // Nothing (left) to send: complete as it is.
            if let Some(p) = self.checkpoint.files.get_mut(name) {
                p.acked = size;
            }
            return self.finish_completed();
        }
        if self.config.mode == FileMode::File {
            let max = self.config.max_record_bytes;
            let record = if size > max {
                let mut r = self.record(name, 0, Bytes::new());
                r.refused = Some(format!("a file of {size} bytes is larger than max-record-bytes ({max})"));
                r
            } else {
                let mut value = Vec::with_capacity(size as usize);
                file.by_ref().take(size).read_to_end(&mut value).map_err(io)?;
                self.record(name, 0, Bytes::from(value))
            };
            return self.send(name, vec![record], size, true);
        }
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut reader = BufReader::new(file.take(size - start));
        let mut offset = start;
        let mut records = Vec::new();
        let mut bytes = 0;
        let mut line = Vec::new();
        let max = self.config.max_record_bytes;
        loop {
            line.clear();
            // At most max-record-bytes (and its newline) in memory.
            let mut read = (&mut reader).take(max + 2).read_until(b'\n', &mut line).map_err(io)?;
            if read > 0 {
                let mut value = &line[..];
                value = value.strip_suffix(b"\n").unwrap_or(value);
                value = value.strip_suffix(b"\r").unwrap_or(value);
                let record = if value.len() as u64 > max {
                    // Skipped to its end without keeping it: a dead letter
                    // says where it is (the file keeps it).
                    if !line.ends_with(b"\n") {
                        read += skip_line(&mut reader).map_err(io)?;
                    }
                    let mut r = self.record(name, offset, Bytes::new());
                    r.refused = Some(format!("a line of {read} bytes is larger than max-record-bytes ({max})"));
                    r
                } else {
                    self.record(name, offset, Bytes::copy_from_slice(value))
                };
                records.push(record);
                bytes += read.min(max as usize);
                offset += read as u64;
            }
            let last = read == 0 || offset >= size;
            if !records.is_empty() && (last || records.len() >= BATCH_RECORDS || bytes >= BATCH_BYTES) {
                self.send(name, std::mem::take(&mut records), offset, last)?;
                bytes = 0;
                self.take_acks()?;
                if token.is_cancelled() {
                    return Ok(());
                }
            }
            if last {
                return Ok(());
            }
        }
    }

    fn record(&self, file: &str, offset: u64, value: Bytes) -> MirrorRecord {
        MirrorRecord {
            topic: self.config.topic.clone(),
            partition: None,
            key: None,
            value,
            headers: vec![
                (HEADER_SOURCE.into(), Bytes::from(self.config.name.clone())),
                (HEADER_FILE.into(), Bytes::from(file.to_owned())),
                (HEADER_OFFSET.into(), Bytes::from(offset.to_string())),
            ],
            timestamp: None,
            refused: None,
            tombstone: false,
        }
    }

    /// Hands a batch to the pipeline (waiting while it is full).
    fn send(&mut self, file: &str, records: Vec<MirrorRecord>, end: u64, last: bool) -> Result<(), FilesError> {
        let position = self.next_position;
        self.next_position += 1;
        self.metrics.records_in.inc_by(records.len() as u64);
        let batch = Batch { records, position };
        self.metrics.bytes_in.inc_by(batch.bytes() as u64);
        self.pending.push_back(Pending { position, file: file.to_owned(), end, last });
        let sent = self.batches.as_ref().is_some_and(|b| b.blocking_send(batch).is_ok());
        if !sent {
            // The pipeline stopped: what it did not acknowledge is sent again next time.
            self.pending.pop_back();
            return Err(FilesError::PipelineGone);
        }
        Ok(())
    }
}

/// Reads past the rest of a line (through its newline); the bytes skipped.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<usize> {
    let mut skipped = 0;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(skipped);
        }
        let (n, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buffer.len(), false),
        };
        reader.consume(n);
        skipped += n;
        if done {
            return Ok(skipped);
        }
    }
}

/// The file's name, without its directories.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Every regular file under `dir` (relative to `root`), not hidden, not in `skip`.
fn walk(root: &Path, dir: &Path, recursive: bool, skip: &Path, out: &mut Vec<(String, std::fs::Metadata)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') || path == skip {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && recursive {
            walk(root, &path, recursive, skip, out);
        } else if meta.is_file()
            && let Ok(relative) = path.strip_prefix(root)
        {
            out.push((relative.to_string_lossy().into_owned(), meta));
        }
    }
}

/// Whether `name` matches `pattern` (`*`: any run, `?`: any one character).
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic wildcard matching with one backtrack point.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// `path`, or `path.1`, `path.2`, … : the first that does not exist.
fn free_name(path: &Path) -> PathBuf {
    if !path.exists() {
        return path.to_owned();
    }
    (1..).map(|n| PathBuf::from(format!("{}.{n}", path.display()))).find(|p| !p.exists()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_names() {
        assert!(matches("*", "a.log"));
        assert!(matches("*.log", "a.log") && !matches("*.log", "a.log.1"));
        assert!(matches("a?c*", "abc") && matches("a?c*", "abcdef") && !matches("a?c", "ac"));
        assert!(matches("*a*b", "xxaxxb") && !matches("*a*b", "xxaxxbx"));
    }
}
