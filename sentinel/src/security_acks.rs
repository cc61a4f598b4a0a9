//! Which security update each broker has applied, as brokers report it to
//! the sentinel leader: a user change is answered once every live broker
//! has applied a revision at least as new as the change, so the user can
//! log in on any broker as soon as the call returns.
//!
//! Held in memory by the leader only. A new leader starts empty; brokers
//! report again on the next update they apply, which the change that is
//! waited for always causes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::watch;

/// Broker id → the newest revision it applied.
#[derive(Debug)]
pub struct SecurityAcks {
    applied: watch::Sender<BTreeMap<u32, u64>>,
}

impl Default for SecurityAcks {
    fn default() -> SecurityAcks {
        SecurityAcks { applied: watch::Sender::new(BTreeMap::new()) }
    }
}

impl SecurityAcks {
    /// Broker `broker` applied the update of `revision`.
    pub fn applied(&self, broker: u32, revision: u64) {
        self.applied.send_modify(|m| {
            let at = m.entry(broker).or_insert(0);
            *at = (*at).max(revision);
        });
    }

    /// Waits up to `within` until every broker of `live` applied `revision`;
    /// the ones that had not by then (empty: all had).
    pub async fn wait(&self, live: &BTreeSet<u32>, revision: u64, within: Duration) -> Vec<u32> {
        let lagging = |m: &BTreeMap<u32, u64>| -> Vec<u32> {
            live.iter().copied().filter(|b| m.get(b).is_none_or(|&r| r < revision)).collect()
        };
        let mut rx = self.applied.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|m| lagging(m).is_empty())).await;
        lagging(&rx.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_every_live_broker() {
        let acks = std::sync::Arc::new(SecurityAcks::default());
        let live: BTreeSet<u32> = [1, 2].into();
        acks.applied(1, 10);
        assert_eq!(acks.wait(&live, 10, Duration::from_millis(20)).await, vec![2]);
        let later = acks.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            later.applied(2, 12);
        });
        assert!(acks.wait(&live, 10, Duration::from_secs(5)).await.is_empty());
        // An older report never lowers what a broker applied.
        acks.applied(2, 3);
        assert!(acks.wait(&live, 12, Duration::from_millis(1)).await.contains(&1));
        assert!(acks.wait(&[2].into(), 12, Duration::from_millis(1)).await.is_empty());
    }
}
