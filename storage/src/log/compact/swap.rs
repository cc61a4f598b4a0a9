//! Installing a cleaned file in place of the fragments it was cleaned from,
//! and completing an install a crash interrupted.
//!
//! Protocol, for a cleaned file replacing fragments `b = b1 < b2 < … < bn`
//! (which end at `e`):
//! 1. `{b}.compacted.tmp` is written and fsynced (`rewrite`), then its
//!    index as `{b}.cindex` (not synced: an index is rebuilt when it does
//!    not match its file);
//! 2. **commit point**: rename it to `{b}.compacted` and fsync the
//!    directory. Before this, a crash leaves the old fragments and a
//!    `.tmp`, which open deletes; from here on, open finishes the install;
//! 3. delete `{b}.index` and `{b2..bn}.frag` with their indexes, fsync the
//!    directory;
//! 4. rename `{b}.compacted` to `{b}.frag` (replacing the old one
//!    atomically) and `{b}.cindex` to `{b}.index`, fsync the directory.
//!
//! Open finds a `{b}.compacted` only between 2 and 4 and redoes 3 and 4
//! (each is idempotent): the file's frames, all CRC-checked, say where it
//! ends, and every fragment inside its range goes. A stray `.cindex`
//! (a crash between the two renames of 4) is deleted. Steps 2 to 4 run
//! under the log's locks, after checking that the fragments cleaned are
//! still the log's: retention or a truncation that removed one meanwhile
//! makes the install give up (and the cleaned file is deleted), so a stale
//! cleaning can never bring back what a truncation cut.
//!
//! Readers holding one of the replaced fragments are told it is deleted
//! and look again, exactly as after retention; maps they already hold stay
//! valid (the old files' inodes live on until unmapped).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use crate::crashsafe;
use crate::error::{IoContext, Result, StorageError};
use crate::fragment::{FRAGMENT_SUFFIX, Fragment, INDEX_SUFFIX, file_name};
use crate::log::{PartitionLog, Step};

use super::rewrite::{COMPACTED_INDEX_SUFFIX, COMPACTED_SUFFIX, Cleaned};

/// Where a test makes an install stop, as if the process died there.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The cleaned file is written, not committed.
    BeforeCommit,
    /// Committed (step 2), nothing removed.
    AfterCommit,
    /// The replaced files removed (step 3), nothing renamed.
    AfterRemove,
    /// `.compacted` renamed to `.frag`, its index not yet.
    BetweenRenames,
}

fn crash(at: CrashPoint) -> StorageError {
    StorageError::io(format!("compaction stopped {at:?} (injected crash)"), std::io::Error::other("injected"))
}

/// Steps 3 and 4 for a committed `{base}.compacted` replacing the
/// fragments `others` after `base`.
fn replace(dir: &Path, base: u64, others: &[u64], crash_at: Option<CrashPoint>) -> Result<()> {
    crashsafe::remove_if_exists(&dir.join(file_name(base, INDEX_SUFFIX)))?;
    for &other in others {
        crashsafe::remove_if_exists(&dir.join(file_name(other, FRAGMENT_SUFFIX)))?;
        crashsafe::remove_if_exists(&dir.join(file_name(other, INDEX_SUFFIX)))?;
    }
    crashsafe::fsync_dir(dir)?;
    if crash_at == Some(CrashPoint::AfterRemove) {
        return Err(crash(CrashPoint::AfterRemove));
    }
    let rename = |from: &str, to: &str| {
        let (from, to) = (dir.join(file_name(base, from)), dir.join(file_name(base, to)));
        std::fs::rename(&from, &to).context(|| format!("rename {} to {}", from.display(), to.display()))
    };
    rename(COMPACTED_SUFFIX, FRAGMENT_SUFFIX)?;
    if crash_at == Some(CrashPoint::BetweenRenames) {
        return Err(crash(CrashPoint::BetweenRenames));
    }
    if dir.join(file_name(base, COMPACTED_INDEX_SUFFIX)).exists() {
        rename(COMPACTED_INDEX_SUFFIX, INDEX_SUFFIX)?;
    }
    crashsafe::fsync_dir(dir)
}

/// On open: finishes every committed install (`{b}.compacted`) and deletes
/// stray cleaned indexes. `frags` and `indexes` are updated to match.
pub(crate) fn complete_installs(
    dir: &Path,
    compacted: &BTreeSet<u64>,
    cindexes: &BTreeSet<u64>,
    frags: &mut BTreeSet<u64>,
    indexes: &mut BTreeSet<u64>,
    interval: u32,
) -> Result<()> {
    for &base in compacted {
        let path = dir.join(file_name(base, COMPACTED_SUFFIX));
        let len = std::fs::metadata(&path).context(|| format!("stat {}", path.display()))?.len();
        // Durable since the commit point, so every frame must check out.
        let index = crate::recovery::rebuild_fragment_index(
            &path,
            &dir.join(file_name(base, COMPACTED_INDEX_SUFFIX)),
            base,
            len,
            interval,
        )?;
        let others: Vec<u64> = frags.range(base + 1..index.next_offset).copied().collect();
        tracing::warn!(dir = %dir.display(), base, end = index.next_offset, replaced = others.len() + 1, "completing an interrupted compaction");
        replace(dir, base, &others, None)?;
        for other in others {
            frags.remove(&other);
            indexes.remove(&other);
        }
        frags.insert(base);
        indexes.insert(base);
    }
    for base in cindexes.difference(compacted) {
        crashsafe::remove_if_exists(&dir.join(file_name(*base, COMPACTED_INDEX_SUFFIX)))?;
    }
    Ok(())
}

impl PartitionLog {
    /// Installs `cleaned` in place of `group`. False, with nothing changed,
    /// when `group` is no longer a run of the log's fragments. A failure
    /// after the commit point fails the log (reopening finishes the install).
    pub(super) fn install(&self, group: &[Arc<Fragment>], cleaned: Cleaned) -> Result<bool> {
        let crash_at = self.compaction_crash_point();
        let base = group[0].base_offset;
        let _sealing = self.seal_lock();
        let mut inner = self.lock();
        let at = inner.fragments.iter().position(|f| Arc::ptr_eq(f, &group[0]));
        let intact = at.is_some_and(|i| {
            inner
                .fragments
                .get(i..i + group.len())
                .is_some_and(|run| run.iter().zip(group).all(|(a, b)| Arc::ptr_eq(a, b)))
        });
        if !intact || self.check_open(&inner).is_err() || crash_at == Some(CrashPoint::BeforeCommit) {
            drop(inner);
            crashsafe::remove_if_exists(&cleaned.tmp)?;
            if crash_at == Some(CrashPoint::BeforeCommit) {
                return Err(crash(CrashPoint::BeforeCommit));
            }
            return Ok(false);
        }
        let at = at.unwrap_or_default();
        let result = (|| {
            crashsafe::write_atomic_no_dir_sync(
                &self.dir().join(file_name(base, COMPACTED_INDEX_SUFFIX)),
                &[&cleaned.index.encode()],
            )?;
            let committed = self.dir().join(file_name(base, COMPACTED_SUFFIX));
            std::fs::rename(&cleaned.tmp, &committed)
                .context(|| format!("rename {} to {}", cleaned.tmp.display(), committed.display()))?;
            crashsafe::fsync_dir(self.dir())?;
            if crash_at == Some(CrashPoint::AfterCommit) {
                return Err(crash(CrashPoint::AfterCommit));
            }
            for fragment in group {
                fragment.mark_deleted();
            }
            let others: Vec<u64> = group[1..].iter().map(|f| f.base_offset).collect();
            replace(self.dir(), base, &others, crash_at)
        })();
        if let Err(e) = result {
            self.fail(&mut inner, Step::Compact, &e);
            return Err(e);
        }
        let fragment = Fragment::sealed(self.dir(), &cleaned.index, self.config().index_interval_bytes, self.epoch);
        inner.fragments.splice(at..at + group.len(), [Arc::new(fragment)]);
        Ok(true)
    }
}
