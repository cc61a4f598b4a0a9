//! Consumer-group assignment strategies: which member consumes which
//! partition. Pure functions of the members' subscriptions, the partition
//! counts and (for `sticky`) the previous assignment, so every sentinel
//! computes the same answer and the rules are unit-tested here.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Tp;

/// How a group's partitions are split among its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Per topic, contiguous ranges of partitions to members in id order.
    Range,
    /// Every partition of every topic dealt in turn to the members.
    RoundRobin,
    /// Balanced, moving as few partitions as possible from the previous
    /// generation (the default: a join or leave moves only what it must).
    Sticky,
}

impl Strategy {
    /// Parses a strategy name; empty means the default (`sticky`).
    pub fn parse(name: &str) -> Result<Strategy, String> {
        match name {
            "range" => Ok(Strategy::Range),
            "round-robin" | "roundrobin" => Ok(Strategy::RoundRobin),
            "sticky" | "" => Ok(Strategy::Sticky),
            other => Err(format!("unknown assignment strategy {other:?} (range, round-robin or sticky)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Range => "range",
            Strategy::RoundRobin => "round-robin",
            Strategy::Sticky => "sticky",
        }
    }
}

/// Member → subscribed topics.
pub type Subscriptions = BTreeMap<String, Vec<String>>;
/// Member → partitions.
pub type Assignment = BTreeMap<String, Vec<Tp>>;

/// Splits the partitions of the subscribed topics among `members`. Every
/// member appears in the result; a partition of a topic nobody subscribes
/// to (or that does not exist) is assigned to no one.
pub fn assign(
    strategy: Strategy,
    members: &Subscriptions,
    partitions: &BTreeMap<String, u32>,
    previous: &Assignment,
) -> Assignment {
    let mut out: Assignment = members.keys().map(|m| (m.clone(), Vec::new())).collect();
    match strategy {
        Strategy::Range => range(members, partitions, &mut out),
        Strategy::RoundRobin => round_robin(members, partitions, &mut out),
        Strategy::Sticky => sticky(members, partitions, previous, &mut out),
    }
    for tps in out.values_mut() {
        tps.sort();
    }
    out
}

fn subscribers<'a>(members: &'a Subscriptions, topic: &str) -> Vec<&'a String> {
    members.iter().filter(|(_, topics)| topics.iter().any(|t| t == topic)).map(|(m, _)| m).collect()
}

/// All partitions someone subscribes to, in (topic, partition) order.
fn wanted(members: &Subscriptions, partitions: &BTreeMap<String, u32>) -> Vec<Tp> {
    let topics: BTreeSet<&String> = members.values().flatten().collect();
    topics
        .into_iter()
        .filter_map(|t| partitions.get(t).map(|n| (t, *n)))
        .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
        .collect()
}

fn range(members: &Subscriptions, partitions: &BTreeMap<String, u32>, out: &mut Assignment) {
    for (topic, &count) in partitions {
        let subs = subscribers(members, topic);
        if subs.is_empty() {
            continue;
        }
        let (each, extra) = (count / subs.len() as u32, count % subs.len() as u32);
        let mut next = 0;
        for (i, m) in subs.into_iter().enumerate() {
            let n = each + u32::from((i as u32) < extra);
            out.entry(m.clone()).or_default().extend((next..next + n).map(|p| (topic.clone(), p)));
            next += n;
        }
    }
}

fn round_robin(members: &Subscriptions, partitions: &BTreeMap<String, u32>, out: &mut Assignment) {
    let ids: Vec<&String> = members.keys().collect();
    let mut cursor = 0;
    for tp in wanted(members, partitions) {
        // The next member in turn that subscribes to this topic (one does).
        for step in 0..ids.len() {
            let m = ids[(cursor + step) % ids.len()];
            if members[m].contains(&tp.0) {
                out.entry(m.clone()).or_default().push(tp);
                cursor = (cursor + step + 1) % ids.len();
                break;
            }
        }
    }
}

fn sticky(members: &Subscriptions, partitions: &BTreeMap<String, u32>, previous: &Assignment, out: &mut Assignment) {
    let wanted: BTreeSet<Tp> = wanted(members, partitions).into_iter().collect();
    let subscribes = |m: &str, tp: &Tp| members.get(m).is_some_and(|topics| topics.contains(&tp.0));
    // Keep what each remaining member had, if still valid and not claimed twice.
    let mut taken = BTreeSet::new();
    for (m, tps) in previous {
        if !members.contains_key(m) {
            continue;
        }
        for tp in tps {
            if wanted.contains(tp) && subscribes(m, tp) && taken.insert(tp.clone()) {
                out.entry(m.clone()).or_default().push(tp.clone());
            }
        }
    }
    // Hand out the rest, each to the least-loaded subscriber.
    for tp in wanted.iter().filter(|tp| !taken.contains(*tp)) {
        let least = out.iter().filter(|(m, _)| subscribes(m, tp)).min_by_key(|(m, tps)| (tps.len(), (*m).clone()));
        if let Some((m, _)) = least {
            let m = m.clone();
            out.entry(m).or_default().push(tp.clone());
        }
    }
    // Then even out: move one partition at a time from the most to the
    // least loaded member while they differ by more than one. Each move
    // lowers the spread, so this ends.
    for _ in 0..wanted.len() {
        let mut order: Vec<(&String, usize)> = out.iter().map(|(m, tps)| (m, tps.len())).collect();
        order.sort_by_key(|(m, n)| (*n, (*m).clone()));
        let mut moved = None;
        'pairs: for &(big, big_n) in order.iter().rev() {
            for &(small, small_n) in &order {
                if big_n <= small_n + 1 {
                    break;
                }
                if let Some(tp) = out[big].iter().rev().find(|tp| subscribes(small, tp)) {
                    moved = Some((big.clone(), small.clone(), tp.clone()));
                    break 'pairs;
                }
            }
        }
        let Some((from, to, tp)) = moved else { break };
        out.entry(from).or_default().retain(|x| *x != tp);
        out.entry(to).or_default().push(tp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> Subscriptions {
        members.iter().map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect())).collect()
    }

    fn counts(topics: &[(&str, u32)]) -> BTreeMap<String, u32> {
        topics.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn tps(topic: &str, ps: &[u32]) -> Vec<Tp> {
        ps.iter().map(|p| (topic.to_string(), *p)).collect()
    }

    /// Every wanted partition exactly once, and only to a subscriber.
    fn check_complete(a: &Assignment, members: &Subscriptions, partitions: &BTreeMap<String, u32>) {
        let mut seen = BTreeSet::new();
        for (m, list) in a {
            for tp in list {
                assert!(members[m].contains(&tp.0), "{m} got {tp:?} without subscribing");
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            }
        }
        assert_eq!(seen, wanted(members, partitions).into_iter().collect());
    }

    #[test]
    fn range_gives_contiguous_blocks_and_the_first_members_the_extra() {
        let m = subs(&[("a", &["t"]), ("b", &["t"])]);
        let a = assign(Strategy::Range, &m, &counts(&[("t", 5)]), &Assignment::new());
        assert_eq!(a["a"], tps("t", &[0, 1, 2]));
        assert_eq!(a["b"], tps("t", &[3, 4]));
    }

    #[test]
    fn round_robin_deals_partitions_in_turn() {
        let m = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let a = assign(Strategy::RoundRobin, &m, &counts(&[("t", 7)]), &Assignment::new());
        assert_eq!(a["a"], tps("t", &[0, 3, 6]));
        assert_eq!(a["b"], tps("t", &[1, 4]));
        assert_eq!(a["c"], tps("t", &[2, 5]));
    }

    #[test]
    fn sticky_moves_only_what_a_new_member_needs() {
        let partitions = counts(&[("t", 6)]);
        let two = subs(&[("a", &["t"]), ("b", &["t"])]);
        let first = assign(Strategy::Sticky, &two, &partitions, &Assignment::new());
        assert_eq!(first["a"].len(), 3);
        let three = subs(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let second = assign(Strategy::Sticky, &three, &partitions, &first);
        check_complete(&second, &three, &partitions);
        assert!(second.values().all(|v| v.len() == 2), "{second:?}");
        // a and b each gave up one partition and kept the other two.
        for m in ["a", "b"] {
            assert!(second[m].iter().all(|tp| first[m].contains(tp)), "{m} gained a partition: {second:?}");
        }
        // When c leaves, its two go back and a and b keep theirs.
        let third = assign(Strategy::Sticky, &two, &partitions, &second);
        check_complete(&third, &two, &partitions);
        for m in ["a", "b"] {
            assert!(second[m].iter().all(|tp| third[m].contains(tp)));
            assert_eq!(third[m].len(), 3);
        }
    }

    #[test]
    fn members_with_different_topics_only_get_their_own() {
        let m = subs(&[("a", &["x"]), ("b", &["x", "y"]), ("c", &["z"])]);
        let partitions = counts(&[("x", 4), ("y", 2)]); // z does not exist
        for strategy in [Strategy::Range, Strategy::RoundRobin, Strategy::Sticky] {
            let a = assign(strategy, &m, &partitions, &Assignment::new());
            check_complete(&a, &m, &partitions);
            assert!(a["c"].is_empty());
        }
    }

    #[test]
    fn every_strategy_is_complete_and_balanced_for_equal_subscriptions() {
        for n_members in 1..6 {
            for n_parts in 0..13 {
                let m: Subscriptions = (0..n_members).map(|i| (format!("m{i}"), vec!["t".to_string()])).collect();
                let partitions = counts(&[("t", n_parts)]);
                let mut previous = Assignment::new();
                for strategy in [Strategy::Range, Strategy::RoundRobin, Strategy::Sticky] {
                    let a = assign(strategy, &m, &partitions, &previous);
                    check_complete(&a, &m, &partitions);
                    let sizes: Vec<usize> = a.values().map(Vec::len).collect();
                    let spread = sizes.iter().max().unwrap() - sizes.iter().min().unwrap();
                    assert!(spread <= 1, "{strategy:?} {n_members}x{n_parts}: {a:?}");
                    previous = a;
                }
            }
        }
    }

    #[test]
    fn strategy_names_parse() {
        assert_eq!(Strategy::parse(""), Ok(Strategy::Sticky));
        assert_eq!(Strategy::parse("round-robin"), Ok(Strategy::RoundRobin));
        assert!(Strategy::parse("cooperative").is_err());
    }
}
