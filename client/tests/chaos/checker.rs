//! The checker: compares what the workload was told (acknowledgements) and
//! what it saw (live consumers) with the final content of every partition.
//!
//! A message is identified by its value, `p{producer}-{seq}`, unique per run.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A message the cluster acknowledged (`acks=all`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub producer: u32,
    pub seq: u64,
    pub partition: u32,
    pub offset: u64,
}

/// Everything the checker needs, gathered by the workload and the final read.
#[derive(Debug, Default)]
pub struct History {
    /// Sends attempted.
    pub operations: u64,
    pub acks: Vec<Ack>,
    /// Sends that failed definitively (their fate is unknown: they may or may not be stored).
    pub failed: u64,
    /// Per partition, `(offset, value)` as live consumers delivered them.
    pub observed: BTreeMap<u32, Vec<(u64, String)>>,
    /// Per partition, the whole log read after the faults, from offset 0 to
    /// the high watermark.
    pub final_logs: BTreeMap<u32, Vec<(u64, String)>>,
    /// Per partition, the leader epoch before and after the run.
    pub epochs: BTreeMap<u32, (u64, u64)>,
    /// Per partition, the longest time without an acknowledgement while producing.
    pub unavailable: BTreeMap<u32, Duration>,
    /// The producers were idempotent: a duplicate is a failure.
    pub idempotent: bool,
    /// Values the consumer group's members (which crash and rejoin during
    /// the run) received; `None` when the run had no group.
    pub group_seen: Option<std::collections::HashSet<String>>,
}

/// The verdict.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Acknowledged messages not found at their acknowledged offset.
    pub lost: Vec<String>,
    /// Acknowledged messages stored before an earlier-acknowledged message of
    /// the same producer and partition.
    pub reordered: Vec<String>,
    /// Extra copies of a message (a retried batch whose first answer was lost).
    pub duplicated: u64,
    /// Whether duplicates fail the run (idempotent producers).
    pub duplicates_fail: bool,
    /// Offsets missing from a partition (`partition@offset`).
    pub gaps: Vec<String>,
    /// Records a consumer delivered that are no longer at their offset.
    pub vanished: Vec<String>,
    /// Acknowledged messages the consumer group never delivered (its
    /// members commit and hand partitions over: at-least-once).
    pub group_missed: Vec<String>,
}

impl Report {
    /// No acknowledged message was lost or reordered, nothing delivered
    /// vanished, and (with idempotent producers) nothing was stored twice.
    pub fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.reordered.is_empty()
            && self.gaps.is_empty()
            && self.vanished.is_empty()
            && self.group_missed.is_empty()
            && !(self.duplicates_fail && self.duplicated > 0)
    }
}

/// Checks `history`.
pub fn check(history: &History) -> Report {
    let mut report = Report { duplicates_fail: history.idempotent, ..Report::default() };
    // Index of the final logs: partition → offset → value.
    let mut at: HashMap<u32, HashMap<u64, &str>> = HashMap::new();
    let mut copies: HashMap<&str, u64> = HashMap::new();
    for (p, log) in &history.final_logs {
        let index = at.entry(*p).or_default();
        for (i, (offset, value)) in log.iter().enumerate() {
            if *offset != i as u64 {
                report.gaps.push(format!("{p}@{i} (next stored offset {offset})"));
            }
            index.insert(*offset, value);
            *copies.entry(value).or_default() += 1;
        }
    }
    report.duplicated = copies.values().map(|n| n - 1).sum();

    for ack in &history.acks {
        let want = format!("p{}-{}", ack.producer, ack.seq);
        if at.get(&ack.partition).and_then(|idx| idx.get(&ack.offset)) != Some(&want.as_str()) {
            report.lost.push(format!("{want} acknowledged at {}@{}", ack.partition, ack.offset));
        }
    }

    // Per producer and partition, acknowledged sequence order = offset order.
    let mut streams: BTreeMap<(u32, u32), Vec<&Ack>> = BTreeMap::new();
    for ack in &history.acks {
        streams.entry((ack.producer, ack.partition)).or_default().push(ack);
    }
    for acks in streams.values_mut() {
        acks.sort_by_key(|a| a.seq);
        for pair in acks.windows(2) {
            if pair[1].offset <= pair[0].offset {
                report.reordered.push(format!(
                    "p{}-{} at {}@{} before p{}-{} at offset {}",
                    pair[1].producer,
                    pair[1].seq,
                    pair[1].partition,
                    pair[1].offset,
                    pair[0].producer,
                    pair[0].seq,
                    pair[0].offset
                ));
            }
        }
    }

    for (p, seen) in &history.observed {
        for (offset, value) in seen {
            if at.get(p).and_then(|idx| idx.get(offset)) != Some(&value.as_str()) {
                report.vanished.push(format!("{value} delivered at {p}@{offset}"));
            }
        }
    }
    if let Some(seen) = &history.group_seen {
        for ack in &history.acks {
            let want = format!("p{}-{}", ack.producer, ack.seq);
            if !seen.contains(&want) {
                report.group_missed.push(format!("{want} at {}@{}", ack.partition, ack.offset));
            }
        }
    }
    report
}

/// The one-paragraph summary printed at the end of a run.
pub fn summary(seed: u64, history: &History, report: &Report) -> String {
    let leader_changes: u64 = history.epochs.values().map(|(before, after)| after.saturating_sub(*before)).sum();
    let unavailable: Vec<String> =
        history.unavailable.iter().map(|(p, d)| format!("{p}: {:.1} s", d.as_secs_f64())).collect();
    let mut out = format!(
        "chaos seed {seed}: {} operations, {} acknowledged, {} failed, {} lost, {} reordered, {} duplicated, \
         {} gaps, {} vanished, {} missed by the group, {leader_changes} leader changes\nlongest unavailability per partition: {}\n",
        history.operations,
        history.acks.len(),
        history.failed,
        report.lost.len(),
        report.reordered.len(),
        report.duplicated,
        report.gaps.len(),
        report.vanished.len(),
        report.group_missed.len(),
        unavailable.join(", "),
    );
    for (what, items) in [
        ("lost", &report.lost),
        ("reordered", &report.reordered),
        ("gap", &report.gaps),
        ("vanished", &report.vanished),
        ("missed by the group", &report.group_missed),
    ] {
        for item in items.iter().take(10) {
            out.push_str(&format!("  {what}: {item}\n"));
        }
    }
    if !report.passed() {
        out.push_str(&format!("replay with: make chaos SEED={seed}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(producer: u32, seq: u64, partition: u32, offset: u64) -> Ack {
        Ack { producer, seq, partition, offset }
    }

    fn log(values: &[&str]) -> Vec<(u64, String)> {
        values.iter().enumerate().map(|(i, v)| (i as u64, v.to_string())).collect()
    }

    fn history(acks: Vec<Ack>, final_log: Vec<(u64, String)>) -> History {
        History { acks, final_logs: BTreeMap::from([(0, final_log)]), ..Default::default() }
    }

    #[test]
    fn given_every_ack_at_its_offset_it_should_pass_and_count_duplicates() {
        // p0-1 was stored twice (a retry); the ack names the second copy.
        let h = history(vec![ack(0, 0, 0, 0), ack(0, 1, 0, 2)], log(&["p0-0", "p0-1", "p0-1", "p1-0"]));
        let r = check(&h);
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.duplicated, 1);
    }

    #[test]
    fn given_idempotent_producers_a_duplicate_should_fail_the_run() {
        let mut h = history(vec![ack(0, 0, 0, 1)], log(&["p0-0", "p0-0"]));
        h.idempotent = true;
        let r = check(&h);
        assert_eq!(r.duplicated, 1);
        assert!(!r.passed());
    }

    #[test]
    fn given_an_ack_missing_or_moved_it_should_report_it_lost() {
        let h = history(vec![ack(0, 0, 0, 0), ack(0, 1, 0, 1), ack(0, 2, 0, 5)], log(&["p0-0", "p0-2"]));
        let r = check(&h);
        assert_eq!(r.lost.len(), 2, "{r:?}");
        assert!(!r.passed());
    }

    #[test]
    fn given_acks_whose_offsets_go_backwards_it_should_report_a_reordering() {
        let h = history(vec![ack(0, 0, 0, 1), ack(0, 1, 0, 0)], log(&["p0-1", "p0-0"]));
        let r = check(&h);
        assert!(r.lost.is_empty());
        assert_eq!(r.reordered.len(), 1, "{r:?}");
    }

    #[test]
    fn given_a_hole_in_the_offsets_it_should_report_a_gap() {
        let h = history(vec![], vec![(0, "a".into()), (2, "b".into())]);
        assert_eq!(check(&h).gaps.len(), 1);
    }

    #[test]
    fn given_a_delivered_record_no_longer_there_it_should_report_it_vanished() {
        let mut h = history(vec![], log(&["p0-0", "p0-9"]));
        h.observed.insert(0, vec![(0, "p0-0".into()), (1, "p0-1".into())]);
        let r = check(&h);
        assert_eq!(r.vanished, vec!["p0-1 delivered at 0@1".to_string()]);
    }

    #[test]
    fn given_an_ack_the_group_never_received_it_should_report_it_missed() {
        let mut h = history(vec![ack(0, 0, 0, 0), ack(0, 1, 0, 1)], log(&["p0-0", "p0-1"]));
        h.group_seen = Some(["p0-0".to_string()].into());
        let r = check(&h);
        assert_eq!(r.group_missed, vec!["p0-1 at 0@1".to_string()]);
        assert!(!r.passed());
    }
}
