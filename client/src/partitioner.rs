//! Choosing a partition for a record.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How records without an explicit partition are spread.
#[derive(Debug, Default)]
pub enum Partitioner {
    /// By a stable hash of the key (records without a key go round-robin):
    /// the same key always lands on the same partition.
    #[default]
    KeyHash,
    /// Round-robin over partitions, ignoring keys.
    RoundRobin,
}

/// Picks partitions; shared by a producer's senders.
#[derive(Debug, Default)]
pub struct Picker {
    pub partitioner: Partitioner,
    next: AtomicUsize,
}

pub use goulette_proto::hashing::key_hash;

impl Picker {
    /// A picker using `partitioner`.
    pub fn new(partitioner: Partitioner) -> Picker {
        Picker { partitioner, next: AtomicUsize::new(0) }
    }

    /// The partition for a record with `key` among `partitions` (> 0).
    pub fn pick(&self, key: Option<&[u8]>, partitions: u32) -> u32 {
        match (&self.partitioner, key) {
            (Partitioner::KeyHash, Some(key)) => (key_hash(key) % u64::from(partitions)) as u32,
            _ => (self.next.fetch_add(1, Ordering::Relaxed) % partitions as usize) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_fixed_partitions_and_spread() {
        let p = Picker::new(Partitioner::KeyHash);
        assert_eq!(p.pick(Some(b"user-42"), 3), p.pick(Some(b"user-42"), 3));
        // Pinned: changing the hash would move every keyed stream.
        assert_eq!(key_hash(b"user-42") % 3, GOLDEN);
        let mut counts = [0; 3];
        for i in 0..3000 {
            counts[p.pick(Some(format!("k{i}").as_bytes()), 3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
        let rr = Picker::new(Partitioner::RoundRobin);
        assert_eq!((0..6).map(|_| rr.pick(Some(b"k"), 3)).collect::<Vec<_>>(), [0, 1, 2, 0, 1, 2]);
    }

    const GOLDEN: u64 = 2;
}
