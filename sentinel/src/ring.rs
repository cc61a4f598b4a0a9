//! The consistent hash ring that places partition replicas on brokers.
//!
//! Each broker owns `VNODES_PER_BROKER` virtual nodes; a partition `topic/p`
//! hashes to a point and its replicas are the first `replication_factor`
//! distinct brokers met clockwise from there. Adding a broker therefore moves
//! only about 1/N of the replicas, and removing one moves only its own.
//!
//! Placement must not change when Goulette is rebuilt with another Rust
//! version: the hasher is our own (FNV-1a 64 with a murmur3 finalizer) and the
//! hashed types write explicit bytes, never relying on `std::hash::Hash`'s
//! encoding of strings or integers. A golden test pins the output.

use std::hash::{BuildHasher, Hash, Hasher};

/// Virtual nodes per broker.
pub const VNODES_PER_BROKER: u32 = 64;

/// FNV-1a 64 over the bytes written, finished with murmur3's fmix64 so that
/// keys differing in one trailing byte land far apart on the ring.
#[derive(Debug, Clone, Copy)]
pub struct StableHasher(u64);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Builds [`StableHasher`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct StableHash;

impl BuildHasher for StableHash {
    type Hasher = StableHasher;
    fn build_hasher(&self) -> StableHasher {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

/// One virtual node: `broker#index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VNode {
    broker: u32,
    index: u32,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(format!("broker-{}#{}", self.broker, self.index).as_bytes());
    }
}

/// The point a partition hashes to.
struct PartitionKey<'a> {
    topic: &'a str,
    partition: u32,
}

impl Hash for PartitionKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(format!("{}/{}", self.topic, self.partition).as_bytes());
    }
}

/// The ring over a set of brokers.
#[derive(Debug, Clone)]
pub struct Ring {
    ring: hashring::HashRing<VNode, StableHash>,
    brokers: usize,
}

impl Ring {
    /// A ring over `brokers`.
    pub fn new(brokers: impl IntoIterator<Item = u32>) -> Ring {
        let mut ring = hashring::HashRing::with_hasher(StableHash);
        let mut count = 0;
        for broker in brokers {
            count += 1;
            for index in 0..VNODES_PER_BROKER {
                ring.add(VNode { broker, index });
            }
        }
        Ring { ring, brokers: count }
    }

    /// Number of brokers on the ring.
    pub fn broker_count(&self) -> usize {
        self.brokers
    }

    /// The first `replication_factor` distinct brokers clockwise from the
    /// partition's point (fewer if the ring has fewer brokers).
    pub fn replicas(&self, topic: &str, partition: u32, replication_factor: usize) -> Vec<u32> {
        let key = PartitionKey { topic, partition };
        let mut out = Vec::with_capacity(replication_factor);
        // `get_with_replicas(key, len)` yields every vnode clockwise from the key.
        for vnode in self.ring.get_with_replicas(&key, self.ring.len()).unwrap_or_default() {
            if out.len() == replication_factor {
                break;
            }
            if !out.contains(&vnode.broker) {
                out.push(vnode.broker);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn placement_is_pinned_across_builds() {
        // If this changes, every existing cluster would move its partitions.
        let ring = Ring::new([1, 2, 3, 4, 5]);
        let placed: Vec<Vec<u32>> = (0..4).map(|p| ring.replicas("orders", p, 3)).collect();
        assert_eq!(placed, GOLDEN, "ring placement changed: {placed:?}");
    }

    const GOLDEN: [[u32; 3]; 4] = [[1, 2, 3], [3, 4, 5], [4, 2, 3], [5, 1, 2]];

    #[test]
    fn replicas_are_distinct_and_capped_by_the_broker_count() {
        let ring = Ring::new([10, 20, 30]);
        for p in 0..200 {
            let r = ring.replicas("t", p, 3);
            assert_eq!(r.len(), 3);
            assert!(r[0] != r[1] && r[1] != r[2] && r[0] != r[2]);
        }
        assert_eq!(ring.replicas("t", 0, 5).len(), 3);
        assert!(Ring::new([]).replicas("t", 0, 1).is_empty());
    }

    #[test]
    fn leaders_spread_evenly() {
        let ring = Ring::new([1, 2, 3]);
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for p in 0..3000 {
            *counts.entry(ring.replicas("events", p, 1)[0]).or_default() += 1;
        }
        for (broker, n) in counts {
            assert!((700..=1300).contains(&n), "broker {broker} leads {n} of 3000");
        }
    }

    #[test]
    fn adding_a_broker_moves_about_one_nth_and_removing_moves_only_its_own() {
        let three = Ring::new([1, 2, 3]);
        let four = Ring::new([1, 2, 3, 4]);
        let n = 4000;
        let moved = (0..n).filter(|&p| three.replicas("t", p, 1) != four.replicas("t", p, 1)).count();
        assert!(moved > n as usize / 8 && moved < n as usize * 3 / 8, "{moved} of {n} moved");
        // Every partition that moved went to the new broker.
        assert!(
            (0..n).all(|p| three.replicas("t", p, 1) == four.replicas("t", p, 1) || four.replicas("t", p, 1) == [4])
        );
        // Removing broker 4 again restores exactly the old placement.
        assert!((0..n).all(|p| {
            four.replicas("t", p, 3)
                .into_iter()
                .filter(|&b| b != 4)
                .take(2)
                .eq(three.replicas("t", p, 3).into_iter().take(2))
        }));
    }
}
