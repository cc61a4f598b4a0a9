//! The timer index of delayed delivery: which originals of a partition
//! are due when, and which were delivered, kept on disk next to the log
//! (`timers/` in the partition directory).
//!
//! Every replica builds its own from its own log, leader or follower, so
//! a new leader already knows what is pending. A tailer ([`TimerIndex::catch_up`])
//! reads the log from where it stopped, decodes only the batches carrying
//! a delay bit (`goulette_batch::delayed`), and appends one entry per
//! original (scheduled) and per copy (delivered) to the bucket of its due
//! time. Buckets hold [`bucket::SLOT_MS`] of due time each; memory holds a
//! few counters per bucket, never an entry per record, and delivering
//! reads only the due buckets.
//!
//! Durability: bucket entries are synced before the checkpoint
//! (`indexed-to`) that covers them is written, at most every few seconds
//! (the index is rebuilt from the log, so a crash only makes it read more
//! of the log again); on open, entries at or past
//! the checkpoint are cut and read again from the log, a torn last entry
//! is cut, and a damaged entry (a CRC mismatch) makes the index rebuild
//! from the log, which is the truth. A truncation of the log cuts the
//! entries read from what it removed, and lowers the checkpoint durably
//! before anything is appended again.

mod bucket;
mod checkpoint;
mod entry;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use goulette_batch::batch::peek_next_offset;
use goulette_batch::delayed::{COPIES_BIT, DELAYED_BIT, Delivery, deliveries, peek_delay_bits};

pub use self::bucket::SLOT_MS;
use self::entry::{Entry, Kind};
use crate::Batch;
use crate::crashsafe;
use crate::error::{IoContext, Result};
use crate::log::PartitionLog;

/// The index's directory, inside the partition directory.
pub const TIMERS_DIR: &str = "timers";

/// How often, at most, the checkpoint is written (its buckets synced
/// first). Entries past it are only the cost of a longer read of the log
/// after a crash, so this bounds that read, not what is safe: writing it
/// more often competed with the log's own fdatasyncs for the disk.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(5);

/// An original due for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub original: u64,
    pub due: i64,
}

/// Counters of one bucket: what memory holds per bucket.
#[derive(Debug, Clone, Copy)]
struct Meta {
    entries: usize,
    scheduled: u64,
    delivered: u64,
    /// The lowest original scheduled in it (`u64::MAX` when none).
    min_original: u64,
    max_source: u64,
}

impl Default for Meta {
    fn default() -> Meta {
        Meta { entries: 0, scheduled: 0, delivered: 0, min_original: u64::MAX, max_source: 0 }
    }
}

impl Meta {
    fn add(&mut self, e: &Entry) {
        self.entries += 1;
        match e.kind {
            Kind::Scheduled => {
                self.scheduled += 1;
                self.min_original = self.min_original.min(e.original);
            }
            Kind::Delivered => self.delivered += 1,
        }
        self.max_source = self.max_source.max(e.source);
    }

    fn of(entries: &[Entry]) -> Meta {
        let mut meta = Meta::default();
        entries.iter().for_each(|e| meta.add(e));
        meta
    }
}

#[derive(Debug)]
struct Inner {
    buckets: BTreeMap<u64, Meta>,
    indexed_to: u64,
    /// The checkpoint on disk.
    stored: u64,
    stored_at: Instant,
    /// Buckets appended to since the last checkpoint.
    unsynced: BTreeSet<u64>,
}

/// One partition's timer index (see the module documentation).
#[derive(Debug)]
pub struct TimerIndex {
    dir: PathBuf,
    inner: Mutex<Inner>,
    indexed_to: AtomicU64,
}

impl TimerIndex {
    /// Opens (or creates) the index of the log in `log_dir`, which holds
    /// offsets `log_start..log_end`.
    pub fn open(log_dir: &Path, log_start: u64, log_end: u64) -> Result<TimerIndex> {
        let dir = log_dir.join(TIMERS_DIR);
        crashsafe::create_dir_durably(&dir)?;
        let stored = match checkpoint::load(&dir) {
            Ok(stored) => stored.unwrap_or(log_start),
            Err(why) => {
                tracing::error!(dir = %dir.display(), why, "timer index checkpoint damaged: rebuilding from the log");
                log_start
            }
        };
        let indexed_to = stored.clamp(log_start, log_end.max(log_start));
        let buckets = match load(&dir, indexed_to) {
            Ok(buckets) => buckets,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "timer index damaged: rebuilding from the log");
                remove_buckets(&dir)?;
                return TimerIndex::fresh(dir, log_start);
            }
        };
        if indexed_to != stored {
            checkpoint::store(&dir, indexed_to)?;
        }
        let inner =
            Inner { buckets, indexed_to, stored: indexed_to, stored_at: Instant::now(), unsynced: BTreeSet::new() };
        Ok(TimerIndex { dir, inner: Mutex::new(inner), indexed_to: AtomicU64::new(indexed_to) })
    }

    fn fresh(dir: PathBuf, start: u64) -> Result<TimerIndex> {
        checkpoint::store(&dir, start)?;
        let inner = Inner {
            buckets: BTreeMap::new(),
            indexed_to: start,
            stored: start,
            stored_at: Instant::now(),
            unsynced: BTreeSet::new(),
        };
        Ok(TimerIndex { dir, inner: Mutex::new(inner), indexed_to: AtomicU64::new(start) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every delayed record below this offset is indexed.
    pub fn indexed_to(&self) -> u64 {
        self.indexed_to.load(Ordering::Acquire)
    }

    /// Reads the log on from where the index stopped, at most about
    /// `max_bytes` of it; true when there is more to read.
    pub fn catch_up(&self, log: &PartitionLog, max_bytes: usize) -> Result<bool> {
        let mut inner = self.lock();
        let end = log.log_end_offset();
        let mut pos = inner.indexed_to.max(log.log_start_offset());
        // Nothing marked since: skip what lies between without reading it.
        // (A truncation since makes `marked_until` high, never low: read.)
        if log.marked_until() <= pos {
            pos = end.max(pos);
        }
        let mut read = 0usize;
        let mut found: BTreeMap<u64, Vec<Entry>> = BTreeMap::new();
        while pos < end && read < max_bytes {
            let batches = log.read_bounded(pos, (1 << 20).min(max_bytes), end)?;
            if batches.is_empty() {
                break;
            }
            for bytes in batches {
                read += bytes.len();
                let Some(next) = peek_next_offset(&bytes) else { break };
                let bits = peek_delay_bits(&bytes);
                if bits != 0 && next > pos {
                    index_batch(Batch::parse_sparse(bytes)?, bits, pos, &mut found)?;
                }
                pos = pos.max(next);
            }
        }
        for (slot, entries) in &found {
            bucket::append(&bucket::path(&self.dir, *slot), entries)?;
            let meta = inner.buckets.entry(*slot).or_default();
            entries.iter().for_each(|e| meta.add(e));
            inner.unsynced.insert(*slot);
        }
        inner.indexed_to = pos;
        self.indexed_to.store(pos, Ordering::Release);
        let moved = pos > inner.stored || !inner.unsynced.is_empty();
        if moved && inner.stored_at.elapsed() >= CHECKPOINT_EVERY {
            self.store_checkpoint(&mut inner, log.durable_offset())?;
        }
        Ok(pos < end)
    }

    /// Writes the checkpoint now (its buckets synced first), whenever it
    /// was last written, so that the next open reads nothing of the log
    /// again. (The broker does not call it at shutdown yet: a restart reads
    /// at most [`CHECKPOINT_EVERY`] of appends again.)
    pub fn checkpoint(&self, log: &PartitionLog) -> Result<()> {
        let mut inner = self.lock();
        self.store_checkpoint(&mut inner, log.durable_offset())
    }

    /// Syncs the buckets appended to, then writes the checkpoint: at most
    /// `durable`, the log's durable offset, so that after a crash it never
    /// lies past the recovered log (whose lost tail later appends rewrite).
    fn store_checkpoint(&self, inner: &mut Inner, durable: u64) -> Result<()> {
        for slot in std::mem::take(&mut inner.unsynced) {
            if inner.buckets.contains_key(&slot) {
                bucket::sync(&bucket::path(&self.dir, slot))?;
            }
        }
        let offset = inner.indexed_to.min(durable);
        checkpoint::store(&self.dir, offset)?;
        inner.stored = offset;
        inner.stored_at = Instant::now();
        Ok(())
    }

    /// The log was truncated to `offset`: forget what was read from the
    /// records it removed (an original it removed is no longer pending; a
    /// copy it removed leaves its original pending again).
    pub fn truncated(&self, offset: u64) -> Result<()> {
        let mut inner = self.lock();
        let cut: Vec<u64> = inner.buckets.iter().filter(|(_, m)| m.max_source >= offset).map(|(s, _)| *s).collect();
        for slot in cut {
            let path = bucket::path(&self.dir, slot);
            let entries = bucket::read(&path)?.entries;
            let keep = entries.partition_point(|e| e.source < offset);
            if keep == 0 {
                crashsafe::remove_if_exists(&path)?;
                inner.buckets.remove(&slot);
                inner.unsynced.remove(&slot);
            } else {
                bucket::cut(&path, keep)?;
                inner.buckets.insert(slot, Meta::of(&entries[..keep]));
            }
        }
        if inner.indexed_to > offset || inner.stored > offset {
            inner.indexed_to = inner.indexed_to.min(offset);
            self.indexed_to.store(inner.indexed_to, Ordering::Release);
            self.store_checkpoint(&mut inner, u64::MAX)?;
        }
        Ok(())
    }

    /// The log was emptied to start at `start`: nothing is pending.
    pub fn reset(&self, start: u64) -> Result<()> {
        let mut inner = self.lock();
        remove_buckets(&self.dir)?;
        inner.buckets.clear();
        inner.unsynced.clear();
        inner.indexed_to = start;
        self.indexed_to.store(start, Ordering::Release);
        self.store_checkpoint(&mut inner, u64::MAX)
    }

    /// Whether a bucket holding originals due at `now` may exist (cheap:
    /// the bucket counters only).
    pub fn may_have_due(&self, now: i64) -> bool {
        self.lock().buckets.range(..=bucket::slot_of(now)).any(|(_, m)| m.scheduled > m.delivered)
    }

    /// Up to `limit` originals due at `now` and not delivered, earliest
    /// first. Originals below `log_start` were deleted by an operator
    /// (DeleteRecords) and are not delivered.
    pub fn due(&self, now: i64, log_start: u64, limit: usize) -> Result<Vec<Due>> {
        let inner = self.lock();
        let mut out = Vec::new();
        for slot in inner.buckets.range(..=bucket::slot_of(now)).map(|(s, _)| *s) {
            let entries = bucket::read(&bucket::path(&self.dir, slot))?.entries;
            out.extend(
                pending(&entries, log_start).filter(|e| e.due <= now).map(|e| Due { original: e.original, due: e.due }),
            );
            if out.len() >= limit {
                break;
            }
        }
        out.sort_by_key(|d| (d.due, d.original));
        out.truncate(limit);
        Ok(out)
    }

    /// Deletes the buckets whose originals were all delivered (or deleted)
    /// by copies below `committed`, which no truncation can remove.
    pub fn collect(&self, committed: u64, log_start: u64) -> Result<usize> {
        let mut inner = self.lock();
        let candidates: Vec<u64> = inner
            .buckets
            .iter()
            .filter(|(_, m)| m.max_source < committed && (m.delivered >= m.scheduled || m.min_original < log_start))
            .map(|(s, _)| *s)
            .collect();
        let mut removed = 0;
        for slot in candidates {
            let path = bucket::path(&self.dir, slot);
            if pending(&bucket::read(&path)?.entries, log_start).next().is_none() {
                crashsafe::remove_if_exists(&path)?;
                inner.buckets.remove(&slot);
                inner.unsynced.remove(&slot);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Retention may delete records below this offset: no original at or
    /// above it is known delivered, nor anything not yet indexed.
    pub fn retention_floor(&self) -> u64 {
        let inner = self.lock();
        inner.buckets.values().map(|m| m.min_original).fold(inner.indexed_to, u64::min)
    }

    /// Originals indexed and not yet delivered (an upper bound while
    /// deleted ones await collection).
    pub fn pending(&self) -> u64 {
        self.lock().buckets.values().map(|m| m.scheduled.saturating_sub(m.delivered)).sum()
    }
}

/// The entries one marked batch adds, from offset `from` on.
fn index_batch(batch: Batch, bits: u16, from: u64, found: &mut BTreeMap<u64, Vec<Entry>>) -> Result<()> {
    for (offset, delivery) in deliveries(&batch)? {
        if offset < from {
            continue;
        }
        let (kind, original, due) = match delivery {
            Ok(Delivery { due: Some(due), .. }) if bits & DELAYED_BIT != 0 => (Kind::Scheduled, offset, due),
            Ok(Delivery { due: Some(due), copy_of: Some(original) }) if bits & COPIES_BIT != 0 => {
                (Kind::Delivered, original, due)
            }
            _ => continue,
        };
        let entry = Entry { kind, due, original, source: offset };
        found.entry(bucket::slot_of(due)).or_default().push(entry);
    }
    Ok(())
}

/// The scheduled entries of a bucket with no delivered entry, at or above
/// `log_start`.
fn pending(entries: &[Entry], log_start: u64) -> impl Iterator<Item = &Entry> {
    let delivered: HashSet<u64> = entries.iter().filter(|e| e.kind == Kind::Delivered).map(|e| e.original).collect();
    entries
        .iter()
        .filter(move |e| e.kind == Kind::Scheduled && e.original >= log_start && !delivered.contains(&e.original))
}

/// Reads every bucket, cutting torn tails and entries read from at or past
/// `indexed_to`; a damaged entry is an error (the caller rebuilds).
fn load(dir: &Path, indexed_to: u64) -> Result<BTreeMap<u64, Meta>> {
    let mut buckets = BTreeMap::new();
    for entry in std::fs::read_dir(dir).context(|| format!("list {}", dir.display()))? {
        let entry = entry.context(|| format!("list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(slot) = name.to_str().and_then(bucket::parse_name) else {
            if name.to_str().is_some_and(|n| n.ends_with(crashsafe::TMP_SUFFIX)) {
                crashsafe::remove_if_exists(&entry.path())?;
            }
            continue;
        };
        let path = entry.path();
        let read = bucket::read(&path)?;
        let keep = read.entries.partition_point(|e| e.source < indexed_to);
        if keep == 0 {
            crashsafe::remove_if_exists(&path)?;
            continue;
        }
        if keep < read.entries.len() || read.torn_tail > 0 {
            bucket::cut(&path, keep)?;
        }
        buckets.insert(slot, Meta::of(&read.entries[..keep]));
    }
    Ok(buckets)
}

fn remove_buckets(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).context(|| format!("list {}", dir.display()))? {
        let entry = entry.context(|| format!("list {}", dir.display()))?;
        if entry.file_name().to_str().and_then(bucket::parse_name).is_some() {
            crashsafe::remove_if_exists(&entry.path())?;
        }
    }
    crashsafe::fsync_dir(dir)
}
