//! What only a partition's leader keeps: its term, each follower's
//! progress, and the ISR additions it proposed and not yet saw settled;
//! and the high-watermark rule, a pure function of them.
//!
//! The high watermark is the lowest log end over the ISR, counting pending
//! additions (so that nothing is acknowledged without a replica that etcd
//! may already list), where the leader counts only what it can vouch for
//! itself (the durable offset under `flush=always`). A member that has not
//! reported yet holds it at 0. The caller never lets it move down.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// A follower's progress as its leader sees it.
#[derive(Debug, Clone)]
pub struct FollowerProgress {
    /// Its log end after its last append.
    pub log_end: u64,
    /// When its log end last reached the leader's.
    pub caught_up_at: Instant,
    /// Ids of its open fetch streams: a follower with none is not fetching.
    pub streams: HashSet<u64>,
}

/// The current leadership term of this broker for a partition.
#[derive(Debug, Clone, Copy)]
pub struct Term {
    pub epoch: u64,
    pub started: Instant,
    pub start_offset: u64,
}

/// The leader-only state of one replica (empty while it follows).
#[derive(Debug, Default)]
pub struct LeaderState {
    /// This broker's term, while it leads.
    pub term: Option<Term>,
    /// What each follower has reported in this term.
    pub followers: HashMap<u32, FollowerProgress>,
    /// Replicas whose addition to the ISR was requested and not yet settled.
    pub pending_isr: Vec<u32>,
}

impl LeaderState {
    /// The high watermark this state allows (see [`high_watermark`]).
    pub fn high_watermark(&self, me: u32, locally_visible: u64, isr: &[u32]) -> u64 {
        let reported = |member: u32| self.followers.get(&member).map(|f| f.log_end);
        high_watermark(me, locally_visible, isr.iter().chain(&self.pending_isr).copied(), reported)
    }

    /// A follower reported its log end; `caught_up` when it reached the log
    /// end this leader had when it served the data.
    pub fn record_follower(&mut self, follower: u32, log_end: u64, caught_up: bool) {
        let entry = self.followers.entry(follower).or_insert_with(|| FollowerProgress {
            log_end,
            caught_up_at: Instant::now(),
            streams: HashSet::new(),
        });
        entry.log_end = log_end;
        if caught_up {
            entry.caught_up_at = Instant::now();
        }
    }
}

/// The lowest log end over `members` (the ISR and pending additions), this
/// broker (`me`) counting `locally_visible`, a member that has not reported
/// counting 0. A follower's report beyond what the leader vouches for does
/// not raise it past `locally_visible`.
pub fn high_watermark(
    me: u32,
    locally_visible: u64,
    members: impl IntoIterator<Item = u32>,
    reported: impl Fn(u32) -> Option<u64>,
) -> u64 {
    members.into_iter().filter(|m| *m != me).fold(locally_visible, |hw, m| hw.min(reported(m).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(reports: &[(u32, u64)], pending: &[u32]) -> LeaderState {
        let mut s = LeaderState::default();
        for &(f, end) in reports {
            s.record_follower(f, end, false);
        }
        s.pending_isr = pending.to_vec();
        s
    }

    #[test]
    fn alone_in_the_isr_the_leader_counts_what_it_vouches_for() {
        assert_eq!(state(&[], &[]).high_watermark(1, 40, &[1]), 40);
    }

    #[test]
    fn the_slowest_isr_member_holds_it() {
        assert_eq!(state(&[(2, 30), (3, 35)], &[]).high_watermark(1, 40, &[1, 2, 3]), 30);
    }

    #[test]
    fn a_member_that_has_not_reported_holds_it_at_zero() {
        assert_eq!(state(&[(2, 30)], &[]).high_watermark(1, 40, &[1, 2, 3]), 0);
    }

    #[test]
    fn a_shrunk_isr_no_longer_waits_for_the_removed_replica() {
        let s = state(&[(2, 30), (3, 5)], &[]);
        assert_eq!(s.high_watermark(1, 40, &[1, 2, 3]), 5);
        assert_eq!(s.high_watermark(1, 40, &[1, 2]), 30, "3 left the ISR");
    }

    #[test]
    fn a_pending_addition_counts_before_etcd_lists_it() {
        assert_eq!(state(&[(2, 30), (3, 10)], &[3]).high_watermark(1, 40, &[1, 2]), 10);
        assert_eq!(state(&[(2, 30)], &[3]).high_watermark(1, 40, &[1, 2]), 0, "pending and silent");
    }

    #[test]
    fn a_follower_ahead_of_what_the_leader_vouches_for_does_not_raise_it() {
        // Under flush=always the leader's durable offset may trail a
        // follower's report (the follower synced, the leader's round runs).
        assert_eq!(state(&[(2, 50), (3, 60)], &[]).high_watermark(1, 40, &[1, 2, 3]), 40);
    }

    #[test]
    fn the_leader_listed_as_pending_is_not_counted_twice() {
        assert_eq!(state(&[(2, 30)], &[1]).high_watermark(1, 40, &[1, 2]), 30);
    }
}
