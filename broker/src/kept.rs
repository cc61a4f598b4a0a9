//! Partition directories whose data is kept but not served: the metadata
//! stopped assigning them here (or assigns another incarnation of their
//! topic) without evidence that the data may go (see
//! `sentinel/src/assignments.rs`). Each is an alarm — an ERROR logged once
//! per reason, the `partitions_kept_unassigned` gauge, `cluster status` —
//! until the metadata assigns the same incarnation again, or gives evidence
//! of its deletion or move.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The kept replicas of one broker, with why.
#[derive(Debug, Default)]
pub struct Kept(Mutex<BTreeMap<(String, u32), String>>);

impl Kept {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u32), String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raises the alarm for `topic/partition` (logged once per reason).
    pub fn raise(&self, topic: &str, partition: u32, reason: String) {
        let mut kept = self.lock();
        if kept.get(&(topic.to_owned(), partition)) != Some(&reason) {
            tracing::error!(topic, partition, reason = %reason, "partition data kept but not served; an operator must restore the metadata, or delete the topic");
            kept.insert((topic.to_owned(), partition), reason);
        }
    }

    /// Ends the alarm (the replica opened, or its data went).
    pub fn clear(&self, topic: &str, partition: u32) {
        self.lock().remove(&(topic.to_owned(), partition));
    }

    /// How many replicas are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every kept replica with its reason.
    pub fn list(&self) -> Vec<((String, u32), String)> {
        self.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Why a directory holding data of topic id `held` is not opened for an
/// assignment of topic id `assigned`.
pub fn other_incarnation(assigned: u64, held: u64) -> String {
    format!(
        "assigned as topic id {assigned:016x}, but holds data of topic id {held:016x}, whose deletion is not recorded"
    )
}
