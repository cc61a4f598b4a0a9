//! Opening a log and recovering it: refusing files of another format
//! version before anything is changed, completing an interrupted seal or
//! truncation, checking every fragment (rebuilding a missing index),
//! checking that the files are contiguous, scanning the WAL (cutting only a
//! torn tail), then rebuilding the leader-epoch history and the idempotent
//! producers' state.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::compact;
use super::durability::Durability;
use super::{Inner, LogState, Offsets, PartitionLog};
use crate::batch::Batch;
use crate::clock::now_ms;
use crate::config::LogConfig;
use crate::crashsafe::{self, TMP_SUFFIX};
use crate::dir_lock::DirLock;
use crate::epochs::{EPOCHS_FILE, EpochHistory};
use crate::error::{IoContext, Result, StorageError};
use crate::fragment::{FRAGMENT_SUFFIX, Fragment, INDEX_SUFFIX, file_name};
use crate::frame;
use crate::producers::{ProducerStates, SNAPSHOT_SUFFIX};
use crate::wal::{WAL_SUFFIX, Wal};

/// A file name of the partition directory, parsed.
pub(crate) fn parse_name(name: &str) -> Option<(u64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

/// The files of a partition directory, by kind and base offset.
#[derive(Default)]
struct Listing {
    wals: BTreeSet<u64>,
    frags: BTreeSet<u64>,
    indexes: BTreeSet<u64>,
    snapshots: BTreeSet<u64>,
    /// Cleaned files committed by a compaction, and their indexes.
    compacted: BTreeSet<u64>,
    cindexes: BTreeSet<u64>,
    /// Leftover `*.tmp` files, deleted once the format is known to be ours.
    tmps: Vec<PathBuf>,
}

/// Lists `dir`, changing nothing.
fn list(dir: &Path) -> Result<Listing> {
    let mut found = Listing::default();
    for entry in std::fs::read_dir(dir).context(|| format!("list {}", dir.display()))? {
        let entry = entry.context(|| format!("list {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_SUFFIX) {
            found.tmps.push(entry.path());
            continue;
        }
        if name == EPOCHS_FILE
            || name == crate::identity::IDENTITY_FILE
            || name == crate::log_start::LOG_START_FILE
            || name == compact::CLEANER_STATE_FILE
            || name == crate::timers::TIMERS_DIR
        {
            continue;
        }
        match parse_name(name) {
            Some((base, WAL_SUFFIX)) => found.wals.insert(base),
            Some((base, FRAGMENT_SUFFIX)) => found.frags.insert(base),
            Some((base, INDEX_SUFFIX)) => found.indexes.insert(base),
            Some((offset, SNAPSHOT_SUFFIX)) => found.snapshots.insert(offset),
            Some((base, compact::COMPACTED_SUFFIX)) => found.compacted.insert(base),
            Some((base, compact::COMPACTED_INDEX_SUFFIX)) => found.cindexes.insert(base),
            _ => {
                tracing::warn!(dir = %dir.display(), file = name, "ignoring unexpected file in partition directory");
                false
            }
        };
    }
    Ok(found)
}

/// Fails with `UnsupportedFormat` if any WAL or fragment has a sound header
/// of another format version (an older Goulette's). Runs before recovery
/// changes anything: recovery would take such a file for corruption, and
/// corruption may be cut (see `repair`); this leaves it untouched.
fn check_versions(dir: &Path, found: &Listing) -> Result<()> {
    let wals = found.wals.iter().map(|&base| file_name(base, WAL_SUFFIX));
    let frags = found.frags.iter().map(|&base| file_name(base, FRAGMENT_SUFFIX));
    for name in wals.chain(frags) {
        frame::check_file_version_of(&dir.join(name))?;
    }
    Ok(())
}

/// Completes a seal interrupted after its switch (see `seal`): exactly two
/// WALs, no fragment at or after the lower one, and the lower one, once
/// recovered, ending where the higher one starts. The lower one becomes a
/// fragment; a higher one whose header never reached the disk (created, not
/// yet synced, when the power went) is written anew, empty. Any other pair
/// is left to [`complete_truncation`].
fn complete_seal(dir: &Path, found: &mut Listing, interval: u32) -> Result<()> {
    let (Some(&lower), Some(&higher), 2) = (found.wals.first(), found.wals.last(), found.wals.len()) else {
        return Ok(());
    };
    if found.frags.range(lower..).next().is_some() {
        return Ok(());
    }
    let lower_path = dir.join(file_name(lower, WAL_SUFFIX));
    frame::check_file_header_of(&lower_path, lower)?;
    let wal = Wal::open(dir, lower, interval)?;
    if wal.index.next_offset != higher {
        return Ok(());
    }
    tracing::warn!(dir = %dir.display(), wal = lower, next = higher, "completing an interrupted seal");
    // A prepared WAL's unused room is cut: a fragment is as long as its data.
    if wal.capacity() > wal.len() {
        wal.file.set_len(wal.len()).context(|| format!("trim {}", lower_path.display()))?;
    }
    wal.sync()?;
    restore_unwritten_header(dir, higher)?;
    let frag_path = dir.join(file_name(lower, FRAGMENT_SUFFIX));
    std::fs::rename(&lower_path, &frag_path)
        .context(|| format!("rename {} to {}", lower_path.display(), frag_path.display()))?;
    crashsafe::write_atomic_no_dir_sync(&dir.join(file_name(lower, INDEX_SUFFIX)), &[&wal.index.encode()])?;
    crashsafe::fsync_dir(dir)?;
    found.wals.remove(&lower);
    found.frags.insert(lower);
    found.indexes.insert(lower);
    Ok(())
}

/// Writes the header of the WAL starting at `base` again when it never
/// reached the disk: a seal's switch writes it unsynced, so a power loss
/// can leave the new WAL empty or, when it was prepared, all zeros. Frames
/// behind a bad header are damage, not a torn creation, and an error.
fn restore_unwritten_header(dir: &Path, base: u64) -> Result<()> {
    let path = dir.join(file_name(base, WAL_SUFFIX));
    if frame::check_file_header_of(&path, base).is_ok() {
        return Ok(());
    }
    let len = std::fs::metadata(&path).context(|| format!("stat {}", path.display()))?.len();
    if len > frame::FILE_HEADER_LEN as u64 && !crate::prealloc::all_zero(&crate::sys::map_file(&path, len)?) {
        return frame::check_file_header_of(&path, base);
    }
    tracing::warn!(wal = %path.display(), "writing the header of a new WAL that never reached the disk");
    crashsafe::write_atomic_no_dir_sync(&path, &[&frame::file_header(base)])
}

/// Completes an interrupted truncation (every fragment at or after the
/// lowest WAL, and every other WAL, goes) and drops indexes without a
/// fragment.
fn complete_truncation(dir: &Path, found: &mut Listing) -> Result<()> {
    let mut changed = false;
    if let Some(&lowest_wal) = found.wals.first() {
        // Only a WAL with a sound header may decide what else is deleted.
        frame::check_file_header_of(&dir.join(file_name(lowest_wal, WAL_SUFFIX)), lowest_wal)?;
        let stale_frags: Vec<u64> = found.frags.range(lowest_wal..).copied().collect();
        let stale_wals: Vec<u64> = found.wals.iter().skip(1).copied().collect();
        if !stale_frags.is_empty() || !stale_wals.is_empty() {
            tracing::warn!(dir = %dir.display(), wal = lowest_wal, "completing an interrupted truncation");
        }
        for base in stale_frags {
            crashsafe::remove_if_exists(&dir.join(file_name(base, FRAGMENT_SUFFIX)))?;
            found.frags.remove(&base);
            changed = true;
        }
        for base in stale_wals {
            crashsafe::remove_if_exists(&dir.join(file_name(base, WAL_SUFFIX)))?;
            found.wals.remove(&base);
            changed = true;
        }
    }
    for base in found.indexes.difference(&found.frags) {
        crashsafe::remove_if_exists(&dir.join(file_name(*base, INDEX_SUFFIX)))?;
        changed = true;
    }
    if changed {
        crashsafe::fsync_dir(dir)?;
    }
    Ok(())
}

impl PartitionLog {
    /// Opens (creating if needed) the log in `dir` and recovers it: completes
    /// an interrupted truncation, checks every fragment's index (rebuilding
    /// it if needed), checks that the files are contiguous, and scans the WAL,
    /// truncating a torn tail.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig) -> Result<PartitionLog> {
        config.validate()?;
        let dir = dir.into();
        crashsafe::create_dir_durably(&dir)?;
        // Before anything is read or changed: recovery by two processes at
        // once (a broker and an inspection) would cut each other's files.
        let dir_lock = DirLock::acquire(&dir)?;
        let epoch = Instant::now();
        let interval = config.index_interval_bytes;
        let mut found = list(&dir)?;
        check_versions(&dir, &found)?;
        for tmp in &found.tmps {
            crashsafe::remove_if_exists(tmp)?;
        }
        compact::complete_installs(
            &dir,
            &found.compacted,
            &found.cindexes,
            &mut found.frags,
            &mut found.indexes,
            interval,
        )?;
        complete_seal(&dir, &mut found, interval)?;
        // A seal that completed but whose new WAL's header was lost with the
        // power: only that WAL is left, empty or zeros.
        if found.wals.len() == 1
            && let Some(&base) = found.wals.first()
        {
            restore_unwritten_header(&dir, base)?;
        }
        complete_truncation(&dir, &mut found)?;

        let mut fragments: Vec<Arc<Fragment>> = Vec::with_capacity(found.frags.len());
        for &base in &found.frags {
            let fragment = Fragment::open(&dir, base, interval, epoch)?;
            if let Some(prev) = fragments.last()
                && prev.next_offset != base
            {
                return Err(StorageError::corruption(
                    &fragment.path,
                    0,
                    format!("previous fragment ends at offset {}, this one starts at {base}", prev.next_offset),
                ));
            }
            fragments.push(Arc::new(fragment));
        }

        let expected_wal_base = fragments.last().map_or(0, |f| f.next_offset);
        let wal = match found.wals.first() {
            Some(&base) if fragments.is_empty() || base == expected_wal_base => Wal::open(&dir, base, interval)?,
            Some(&base) => {
                return Err(StorageError::corruption(
                    dir.join(file_name(base, WAL_SUFFIX)),
                    0,
                    format!("WAL starts at offset {base}, the last fragment ends at {expected_wal_base}"),
                ));
            }
            None => {
                let wal = Wal::create(&dir, expected_wal_base, interval)?;
                crashsafe::fsync_dir(&dir)?;
                wal
            }
        };
        // After a process crash the recovered WAL may hold bytes that are
        // still only in the page cache: make them durable before anything is
        // reported as such.
        wal.sync()?;
        let inner = Inner {
            fragments,
            sealing: None,
            wal,
            wal_entry_synced: true,
            state: LogState::Open,
            last_flush_ms: now_ms(),
            epochs: EpochHistory::default(),
            producers: ProducerStates::default(),
            snapshots: found.snapshots,
            last_crc: 0,
            appended_batches: 0,
            presync_asked: None,
            deleted_before: crate::log_start::load(&dir)?,
            rolling: config.rolling(),
            prepared: None,
            preparing: false,
            failed_prepare_at: 0,
        };
        tracing::debug!(
            dir = %dir.display(),
            fragments = inner.fragments.len(),
            log_start = inner.log_start(),
            log_end = inner.log_end(),
            "opened partition log"
        );
        let cleaner = compact::Compactor::new(compact::load_state(&dir)?);
        let opened_end = inner.log_end();
        let log = PartitionLog {
            dir,
            dir_lock: Mutex::new(Some(dir_lock)),
            retention: Mutex::new(config.retention()),
            config,
            durability: Durability::new(inner.log_end()),
            offsets: Offsets::default(),
            inner: Mutex::new(inner),
            seal_lock: Mutex::new(()),
            epoch,
            compactor: cleaner,
            hold: std::sync::atomic::AtomicU64::new(u64::MAX),
            marked_until: std::sync::atomic::AtomicU64::new(opened_end),
        };
        log.publish(&log.lock());
        log.recover_epochs()?;
        log.recover_producers()?;
        Ok(log)
    }

    /// Loads the leader-epoch history (rebuilding it from the batch headers
    /// when missing or damaged) and fits it to the recovered log.
    fn recover_epochs(&self) -> Result<()> {
        let (mut history, rebuilt) = match EpochHistory::load(&self.dir)? {
            Some(h) => (h, false),
            None => (self.scan_epochs()?, true),
        };
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let trimmed = history.truncate_from_end(end) | history.truncate_from_start(start);
        if rebuilt || trimmed {
            history.store(&self.dir)?;
        }
        self.lock().epochs = history;
        Ok(())
    }

    /// Rebuilds the idempotent producers' state: the newest snapshot that
    /// decodes and still matches the log (the batch ending where it ends has
    /// the CRC it names), plus the batches after it; or else the last
    /// fragment and the WAL (see `producers`). Snapshots past the log end
    /// (left by an interrupted truncation) are deleted.
    fn recover_producers(&self) -> Result<()> {
        let (log_start, end, fallback, candidates) = {
            let mut inner = self.lock();
            let (log_start, end) = (inner.log_start(), inner.log_end());
            self.drop_snapshots_from(&mut inner, end + 1)?;
            // Never below the log start: records deleted on request below
            // it may still be in the file, but are not read again.
            let fallback = inner.fragments.last().map_or(inner.wal.index.base_offset, |f| f.base_offset).max(log_start);
            // A snapshot at the log start has no batch left to check it by.
            let candidates: Vec<u64> = inner.snapshots.range(log_start + 1..).rev().copied().collect();
            (log_start, end, fallback, candidates)
        };
        let mut states = ProducerStates::default();
        let mut offset = fallback;
        for snapshot in candidates {
            let path = self.dir.join(file_name(snapshot, SNAPSHOT_SUFFIX));
            let loaded = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| ProducerStates::decode(&b))
                .and_then(|(loaded, covered, crc)| {
                    let ends_there = self.batch_ending_at(snapshot).map_err(|e| e.to_string())?;
                    match ends_there {
                        Some(last) if covered == snapshot && last == crc => Ok(loaded),
                        _ => Err("it does not match the log (the log was truncated after it)".into()),
                    }
                });
            match loaded {
                Ok(loaded) => {
                    states = loaded;
                    offset = snapshot;
                    break;
                }
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring a producer-state snapshot"),
            }
        }
        self.scan_batches(offset, end, "producers", |batch| {
            if let Some(info) = batch.producer() {
                states.record(&info, batch.offset_count(), batch.base_offset(), batch.next_offset());
            }
        })?;
        // Retention may have deleted what a snapshot remembers.
        states.expire_before(log_start);
        let last_crc = if end > log_start { self.batch_ending_at(end)?.unwrap_or(0) } else { 0 };
        let mut inner = self.lock();
        inner.producers = states;
        inner.last_crc = last_crc;
        Ok(())
    }

    /// The epoch history as the batch headers of the whole log tell it.
    fn scan_epochs(&self) -> Result<EpochHistory> {
        let mut history = EpochHistory::default();
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        self.scan_batches(start, end, "epochs", |batch| {
            history.assign(batch.partition_leader_epoch(), batch.base_offset());
        })?;
        tracing::info!(dir = %self.dir.display(), epochs = history.entries().len(), "rebuilt leader-epoch history");
        Ok(history)
    }

    /// Calls `each` with every batch from `from` to `end`, in order; a batch
    /// that does not parse is corruption (while rebuilding `what`).
    fn scan_batches(&self, from: u64, end: u64, what: &str, mut each: impl FnMut(&Batch)) -> Result<()> {
        let mut offset = from;
        while offset < end {
            let batches = self.read(offset, 16 << 20)?;
            if batches.is_empty() {
                break;
            }
            for bytes in batches {
                let batch = Batch::parse_sparse(bytes).map_err(|e| {
                    StorageError::corruption(&self.dir, offset, format!("while rebuilding {what}: {e}"))
                })?;
                each(&batch);
                offset = batch.next_offset();
            }
        }
        Ok(())
    }
}
