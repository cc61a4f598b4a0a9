//! Offset translation, for a Kafka source mirrored partition to partition
//! (`partition = "same"`): which target offset a consumer group that
//! committed source offset C resumes from, exactly.
//!
//! The mirror learns the target offset of every record it writes. It
//! keeps them as runs: source offsets `s..s+n` written at target offsets
//! `t..t+n`. A run ends where either side jumps: a gap in the source
//! (compaction, transaction markers), a record not written (dead letter,
//! dedup), or a replay after a restart (the target then holds some records
//! twice). Memory is a few runs per partition, not one entry per record.
//!
//! Committed source offset C (the next record the group would read)
//! translates to one past the target offset of the newest copy of the
//! last record below C. The newest copy matters: after a replay, the
//! records from C on follow it in the target, in order, so a consumer
//! resuming there reads each of them, none skipped, and none it already
//! read in the source before them. While the mirror has not yet written
//! everything below C, C is not translated (a later round does it):
//! guessing would give a gap or a negative lag (KAFKA-12468).
//!
//! The runs are saved with the source's progress, before the source's
//! commit covers them, so a restarted mirror translates what the last one
//! wrote.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Runs kept per partition at most (the oldest go first; a group
/// committed that far back is not translated any more).
const MAX_RUNS: usize = 1024;

/// Source offsets `source..source+len` at target offsets `target..target+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    source: u64,
    target: u64,
    len: u64,
}

impl Run {
    fn last_source(&self) -> u64 {
        self.source + self.len - 1
    }
}

/// One source partition's translation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMap {
    /// Oldest first.
    runs: VecDeque<Run>,
    /// One past the highest source offset acknowledged (written or
    /// skipped), over every run.
    next: u64,
    /// Runs were dropped (over [`MAX_RUNS`]): offsets below the oldest
    /// kept one are not translated.
    #[serde(default)]
    forgotten: bool,
    /// One past the highest source offset acknowledged in this reading
    /// pass. A pass ends when the source rewinds (a restart, a rebalance):
    /// the next pass writes again what the last one wrote from there.
    #[serde(skip)]
    pass_next: Option<u64>,
}

impl PartitionMap {
    /// Source offset `source` was written at target offset `target`.
    pub fn written(&mut self, source: u64, target: u64) {
        self.advance(source);
        if let Some(last) = self.runs.back_mut()
            && last.source + last.len == source
            && last.target + last.len == target
        {
            last.len += 1;
            return;
        }
        self.runs.push_back(Run { source, target, len: 1 });
        if self.runs.len() > MAX_RUNS {
            self.runs.pop_front();
            self.forgotten = true;
        }
    }

    /// Source offset `source` was acknowledged without being written to
    /// its partition (dead-lettered, or dropped as a duplicate).
    pub fn skipped(&mut self, source: u64) {
        self.advance(source);
    }

    fn advance(&mut self, source: u64) {
        // Acknowledgements come in order within a pass; a lower offset is
        // a rewind, the start of a new pass.
        self.pass_next = Some(source + 1);
        self.next = self.next.max(source + 1);
    }

    /// The target offset to resume from for committed source offset
    /// `committed`; none while that is not known exactly yet.
    pub fn translate(&self, committed: u64) -> Option<u64> {
        // This pass (or, before it wrote anything, the last one) must have
        // acknowledged everything below `committed`: what it writes next
        // would otherwise come before the copy chosen here.
        if committed > self.pass_next.unwrap_or(self.next) {
            return None;
        }
        if let Some(run) = self.runs.iter().rev().find(|r| r.source < committed) {
            let last = (committed - 1).min(run.last_source());
            return Some(run.target + (last - run.source) + 1);
        }
        if self.forgotten {
            return None;
        }
        // Nothing below it was written: the first record at or after it.
        self.runs.iter().filter(|r| r.source >= committed).map(|r| r.target).min()
    }
}

/// Source offsets to target offsets, for [`super::groups`].
pub trait Translate {
    /// The source partitions mirrored so far.
    fn mirrored(&self) -> Vec<(String, u32)>;
    /// The target offset of committed source offset `committed`; none
    /// while it is not known exactly.
    fn translate(&self, topic: &str, partition: u32, committed: u64) -> Option<u64>;
}

/// Exactly-once mode: target offsets are the source's, for everything
/// the target holds (partition by partition, where it ends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity(pub BTreeMap<(String, u32), u64>);

impl Translate for Identity {
    fn mirrored(&self) -> Vec<(String, u32)> {
        self.0.keys().cloned().collect()
    }

    fn translate(&self, topic: &str, partition: u32, committed: u64) -> Option<u64> {
        let end = *self.0.get(&(topic.to_owned(), partition))?;
        (committed <= end).then_some(committed)
    }
}

/// Every mirrored partition's translation, by source topic and partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    pub partitions: BTreeMap<String, BTreeMap<u32, PartitionMap>>,
}

impl Translation {
    /// The map of `topic`'s `partition`.
    pub fn partition(&mut self, topic: &str, partition: u32) -> &mut PartitionMap {
        self.partitions.entry(topic.to_owned()).or_default().entry(partition).or_default()
    }
}

impl Translate for Translation {
    fn mirrored(&self) -> Vec<(String, u32)> {
        self.partitions.iter().flat_map(|(t, ps)| ps.keys().map(move |p| (t.clone(), *p))).collect()
    }

    fn translate(&self, topic: &str, partition: u32, committed: u64) -> Option<u64> {
        self.partitions.get(topic)?.get(&partition)?.translate(committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(map: &mut PartitionMap, sources: std::ops::Range<u64>, first_target: u64) {
        for (i, s) in sources.enumerate() {
            map.written(s, first_target + i as u64);
        }
    }

    #[test]
    fn a_dense_copy_is_one_run_and_translates_with_its_shift() {
        let mut m = PartitionMap::default();
        write(&mut m, 0..100, 5);
        assert_eq!(m.runs.len(), 1);
        assert_eq!(m.translate(0), Some(5));
        assert_eq!(m.translate(40), Some(45));
        assert_eq!(m.translate(100), Some(105));
        assert_eq!(m.translate(101), None, "not read yet");
    }

    #[test]
    fn gaps_and_skipped_records_resume_at_the_next_written_record() {
        let mut m = PartitionMap::default();
        write(&mut m, 0..10, 0);
        m.skipped(10); // dead-lettered
        write(&mut m, 20..30, 10); // source gap 11..20 (compacted)
        assert_eq!(m.translate(11), Some(10));
        assert_eq!(m.translate(15), Some(10));
        assert_eq!(m.translate(21), Some(11));
        assert_eq!(m.translate(30), Some(20));
    }

    #[test]
    fn after_a_replay_the_newest_copy_is_used_once_this_pass_has_reached_it() {
        let mut m = PartitionMap::default();
        write(&mut m, 0..10, 0); // first pass: s0..s9 at t0..t9
        let saved: PartitionMap = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        let mut m = saved; // a restart, replaying from s5
        assert_eq!(m.translate(8), Some(8), "before the replay writes anything");
        write(&mut m, 5..7, 10); // s5, s6 again at t10, t11
        assert_eq!(m.translate(6), Some(11), "the newest copy of s5");
        assert_eq!(m.translate(8), None, "s7 of this pass is not written yet");
        write(&mut m, 7..12, 12);
        assert_eq!(m.translate(8), Some(13), "after s7's second copy, at t12");
        assert_eq!(m.translate(3), Some(3), "below the replay: the only copy");
        assert_eq!(m.translate(12), Some(17));
    }

    #[test]
    fn runs_are_bounded() {
        let mut m = PartitionMap::default();
        for s in 0..(MAX_RUNS as u64 + 10) {
            m.written(s * 2, s); // every other source offset: a run each
        }
        assert_eq!(m.runs.len(), MAX_RUNS);
        assert_eq!(m.translate(1), None, "dropped: not translated");
        let last = (MAX_RUNS as u64 + 9) * 2;
        assert_eq!(m.translate(last + 1), Some(MAX_RUNS as u64 + 10));
    }
}
