//! Compaction: a log that keeps, of every key, at least its latest record.
//!
//! A compacted topic is a table whose history may be forgotten: a consumer
//! reading it from the start sees, for every key, the latest value (or its
//! tombstone, for a while), in offset order, with gaps in offsets where
//! superseded records were. Offsets never change and records are never
//! reordered; only sealed fragments are compacted, never the WAL, and only
//! fragments sealed at least `min_lag` ago.
//!
//! A pass ([`PartitionLog::compact`]):
//! 1. picks the sealed fragments old enough and wholly committed (below
//!    the high watermark the broker passes), and runs only when the part
//!    not yet compacted ("dirty", from `clean_to` on) is at least
//!    `min_dirty_ratio` of them, or when tombstones are due to go;
//! 2. maps each key of the dirty part to its latest offset, batch by
//!    batch, until the map's byte budget is spent: `map_end` is where it
//!    stopped (a later pass maps the rest: memory is bounded whatever the
//!    number of keys);
//! 3. rewrites the fragments from the log start through `map_end`, in
//!    groups of at most `fragment_bytes`, oldest first: a record below
//!    `map_end` goes when its key has a later record, a tombstone (null
//!    value) when its fragment was appended more than `delete_retention`
//!    ago; keyless records always stay (nothing supersedes them);
//! 4. installs each group's file in place of its sources (`swap`: atomic,
//!    crash-safe, and abandoned if the log changed meanwhile), then records
//!    `clean_to = map_end` (`cleaner_state`).
//!
//! Groups are cleaned oldest first, so an older record of a key always goes
//! before (or with) the tombstone that deletes it: a crash between two
//! groups can leave a key's tombstone, never bring back its older value.
//! Every batch is kept, with no records if need be (`rewrite`), and
//! keeps its producer fields, so idempotent producers' sequences and the
//! leader-epoch history read from batch headers stay right.

mod cleaner_state;
mod offset_map;
mod rewrite;
mod swap;
mod throttle;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use cleaner_state::load as load_state;
pub use cleaner_state::{CLEANER_STATE_FILE, CleanerState};
pub use offset_map::OffsetMap;
pub use rewrite::CleanStats;
pub(crate) use rewrite::{COMPACTED_INDEX_SUFFIX, COMPACTED_SUFFIX};
#[doc(hidden)]
pub use swap::CrashPoint;
pub(crate) use swap::complete_installs;
pub use throttle::Throttle;

use super::{PartitionLog, millis};
use crate::error::{Result, StorageError};
use crate::fragment::Fragment;
use crate::frame::{self, FILE_HEADER_LEN};
use crate::{Batch, sys};

/// How a compacted log is compacted (Kafka's topic settings of the same
/// meaning in parentheses).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    /// A tombstone stays at least this long after it was appended
    /// (`delete.retention.ms`): a consumer reading from the start within
    /// that time sees it.
    pub delete_retention: Duration,
    /// A record is compacted only once its fragment was sealed at least
    /// this long ago (`min.compaction.lag.ms`).
    pub min_lag: Duration,
    /// A pass runs when at least this share of the sealed bytes is dirty
    /// (`min.cleanable.dirty.ratio`).
    pub min_dirty_ratio: f64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            delete_retention: Duration::from_secs(24 * 3600),
            min_lag: Duration::ZERO,
            min_dirty_ratio: 0.5,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Fragments replaced, and the files that replaced them.
    pub fragments_in: usize,
    pub fragments_out: usize,
    pub stats: CleanStats,
    /// Offsets below were compacted.
    pub clean_to: u64,
    /// The log changed under the pass (retention, truncation), which
    /// stopped; the next one starts over.
    pub abandoned: bool,
}

/// A log's compaction settings and progress.
#[derive(Debug, Default)]
pub(crate) struct Compactor {
    policy: Mutex<Option<CompactionPolicy>>,
    state: Mutex<Progress>,
    /// Held by a pass: one at a time per log.
    running: Mutex<()>,
    crash_at: Mutex<Option<CrashPoint>>,
}

/// The cleaner state, and how many truncations lowered it: a pass that
/// began before a truncation must not record its own end over it.
#[derive(Debug, Default)]
struct Progress {
    state: CleanerState,
    truncations: u64,
}

impl Compactor {
    pub(crate) fn new(state: CleanerState) -> Compactor {
        Compactor { state: Mutex::new(Progress { state, truncations: 0 }), ..Compactor::default() }
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PartitionLog {
    /// Compacts the log from now on (`None`: never; the default).
    pub fn set_compaction(&self, policy: Option<CompactionPolicy>) {
        *locked(&self.compactor.policy) = policy;
    }

    /// How the log is compacted, if it is.
    pub fn compaction(&self) -> Option<CompactionPolicy> {
        *locked(&self.compactor.policy)
    }

    /// The compactor's progress.
    pub fn cleaner_state(&self) -> CleanerState {
        locked(&self.compactor.state).state
    }

    /// Makes the next install stop at `at`, failing the log as if the
    /// process died there (crash tests).
    #[doc(hidden)]
    pub fn inject_compaction_crash(&self, at: CrashPoint) {
        *locked(&self.compactor.crash_at) = Some(at);
    }

    pub(super) fn compaction_crash_point(&self) -> Option<CrashPoint> {
        *locked(&self.compactor.crash_at)
    }

    /// A truncation cut the log at `end`: what was compacted past it is
    /// gone, and what comes there next is dirty. Durable before the
    /// truncation returns, so no crash can make new records look compacted.
    pub(super) fn cleaned_before(&self, end: u64) -> Result<()> {
        let mut progress = locked(&self.compactor.state);
        progress.truncations += 1;
        if progress.state.clean_to > end {
            progress.state.clean_to = end;
            cleaner_state::store(&self.dir, progress.state)?;
        }
        Ok(())
    }

    /// Runs one compaction pass if one is due (see the module doc), with
    /// `map` for keys and `throttle` on its I/O, over the fragments wholly
    /// below `committed` (the high watermark): a record a truncation may
    /// still cut must neither be compacted nor supersede an older one (the
    /// older one would be gone from this replica when the newer one is cut).
    /// Nothing at or above the log's hold ([`PartitionLog::set_hold`]) is
    /// compacted either. `None` when the log is not compacted or no pass
    /// was due.
    pub fn compact(
        &self,
        map: &mut OffsetMap,
        throttle: &mut Throttle,
        now_ms: i64,
        committed: u64,
    ) -> Result<Option<CompactionReport>> {
        let Some(policy) = self.compaction() else { return Ok(None) };
        let _running = locked(&self.compactor.running);
        let (fragments, group_bytes) = {
            let inner = self.lock();
            self.check_open(&inner)?;
            (inner.fragments.clone(), inner.rolling.bytes)
        };
        let committed = committed.min(self.hold());
        let ready_before = now_ms.saturating_sub(millis(policy.min_lag));
        let eligible =
            fragments.iter().take_while(|f| f.appended_ms <= ready_before && f.next_offset <= committed).count();
        let fragments = &fragments[..eligible];
        let (Some(first), Some(last)) = (fragments.first(), fragments.last()) else { return Ok(None) };
        let (state, truncations) = {
            let progress = locked(&self.compactor.state);
            (progress.state, progress.truncations)
        };
        let clean_to = state.clean_to.clamp(first.base_offset, last.next_offset);
        let total: u64 = fragments.iter().map(|f| f.len).sum();
        let dirty: u64 = fragments.iter().filter(|f| f.next_offset > clean_to).map(|f| f.len).sum();
        let tombstone_deadline_ms = now_ms.saturating_sub(millis(policy.delete_retention));
        let tombstones_due = state.tombstones_ms <= tombstone_deadline_ms;
        if !tombstones_due && (dirty == 0 || (dirty as f64) < policy.min_dirty_ratio * total as f64) {
            return Ok(None);
        }
        let pass = Pass { clean_to, truncations, tombstone_deadline_ms, group_bytes };
        self.compact_pass(fragments, pass, map, throttle).map(Some)
    }

    fn compact_pass(
        &self,
        fragments: &[Arc<Fragment>],
        pass: Pass,
        map: &mut OffsetMap,
        throttle: &mut Throttle,
    ) -> Result<CompactionReport> {
        let Pass { clean_to, truncations, tombstone_deadline_ms, group_bytes } = pass;
        map.clear();
        let abandoned = CompactionReport { abandoned: true, clean_to, ..CompactionReport::default() };
        // A read failing because retention removed a fragment under the
        // pass: the log changed, and the next pass starts over.
        let changed = |_: &StorageError| fragments.iter().any(|f| f.is_deleted());
        let map_end = match build_map(fragments, clean_to, map, throttle) {
            Err(e) if changed(&e) => return Ok(abandoned),
            result => result?,
        };
        // The fragments through the one holding `map_end - 1`; all of them
        // when nothing was mapped (a pass for tombstones alone).
        let last = if map_end > clean_to {
            fragments.partition_point(|f| f.next_offset < map_end)
        } else {
            fragments.len() - 1
        };
        let rules = rewrite::Rules { map, map_end, tombstone_deadline_ms };
        let mut report = CompactionReport { clean_to: map_end, ..CompactionReport::default() };
        let mut tombstones_ms = i64::MAX;
        for group in groups(&fragments[..=last], group_bytes) {
            let cleaned = match rewrite::clean(&self.dir, group, &rules, self.config.index_interval_bytes, throttle) {
                Err(e) if changed(&e) => return Ok(abandoned),
                result => result?,
            };
            report.stats.add(&cleaned.stats);
            if cleaned.holds_tombstones {
                tombstones_ms = tombstones_ms.min(cleaned.appended_ms);
            }
            if group.len() == 1 && cleaned.stats.records_removed == 0 {
                crate::crashsafe::remove_if_exists(&cleaned.tmp)?;
                continue;
            }
            if !self.install(group, cleaned)? {
                report.abandoned = true;
                return Ok(report);
            }
            report.fragments_in += group.len();
            report.fragments_out += 1;
        }
        let mut progress = locked(&self.compactor.state);
        if progress.truncations != truncations {
            // A truncation since the pass began: what it compacted may be
            // cut, and what follows the cut is dirty (`cleaned_before`).
            report.abandoned = true;
            return Ok(report);
        }
        progress.state = CleanerState { clean_to: map_end, tombstones_ms };
        cleaner_state::store(&self.dir, progress.state)?;
        drop(progress);
        tracing::info!(
            dir = %self.dir.display(),
            clean_to = map_end,
            keys = map.len(),
            fragments_in = report.fragments_in,
            fragments_out = report.fragments_out,
            records_removed = report.stats.records_removed,
            tombstones_removed = report.stats.tombstones_removed,
            "compacted"
        );
        Ok(report)
    }
}

/// What a pass starts from.
#[derive(Debug, Clone, Copy)]
struct Pass {
    clean_to: u64,
    /// Truncations seen when the pass began.
    truncations: u64,
    tombstone_deadline_ms: i64,
    /// Sources per group: the fragment size.
    group_bytes: u64,
}

/// Maps every key from offset `from` on to its latest offset, batch by
/// batch, until `map` is full (after at least one batch, so a pass always
/// progresses); returns the offset after the last batch mapped.
fn build_map(fragments: &[Arc<Fragment>], from: u64, map: &mut OffsetMap, throttle: &mut Throttle) -> Result<u64> {
    let mut end = from;
    for fragment in fragments.iter().filter(|f| f.next_offset > from) {
        let bytes = sys::map_file(&fragment.path, fragment.len)?;
        let mut pos = FILE_HEADER_LEN;
        while pos < bytes.len() {
            let corrupt = |reason: String| StorageError::corruption(&fragment.path, pos as u64, reason);
            let info = frame::check_frame(&bytes[pos..]).map_err(corrupt)?;
            let start = pos + frame::FRAME_HEADER_LEN;
            if info.next_offset > from {
                if map.is_full() && end > from {
                    return Ok(end);
                }
                let batch =
                    Batch::parse_sparse(bytes.slice(start..start + info.len)).map_err(|e| corrupt(e.to_string()))?;
                for record in batch.iter_records().map_err(|e| corrupt(e.to_string()))? {
                    let record = record.map_err(|e| corrupt(e.to_string()))?;
                    if let (Some(key), true) = (&record.record.key, record.offset >= from) {
                        map.insert(key, record.offset);
                    }
                }
                end = info.next_offset;
            }
            throttle.account(info.frame_len() as u64);
            pos += info.frame_len();
        }
    }
    Ok(end)
}

/// Splits `fragments` into runs of at most `max_bytes` (a run of one may
/// be larger) whose offsets fit an index's relative offsets.
fn groups(fragments: &[Arc<Fragment>], max_bytes: u64) -> Vec<&[Arc<Fragment>]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, f) in fragments.iter().enumerate() {
        let span = f.next_offset - fragments[start].base_offset;
        if i > start && (bytes + f.len > max_bytes || span > u64::from(u32::MAX)) {
            out.push(&fragments[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += f.len;
    }
    if start < fragments.len() {
        out.push(&fragments[start..]);
    }
    out
}
