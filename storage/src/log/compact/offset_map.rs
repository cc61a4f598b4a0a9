//! The compactor's map from a key to the offset of its latest record,
//! bounded in bytes.
//!
//! Keys are kept whole, not hashed: a hash collision would let one key's
//! update delete another key's latest record, and acknowledged data must
//! never go that way. Memory is counted as each key's length plus a fixed
//! per-entry overhead; once the budget is spent the map says so, and the
//! compactor stops mapping at that batch and leaves the rest to a later pass.

use std::collections::HashMap;

use bytes::Bytes;

/// What an entry costs beyond its key: the offset, the `Bytes` handle and
/// the hash table's slot (a measured round figure, not an exact one).
const ENTRY_OVERHEAD: usize = 64;

/// Key → offset of its latest record, within a byte budget.
#[derive(Debug)]
pub struct OffsetMap {
    latest: HashMap<Bytes, u64>,
    used: usize,
    budget: usize,
}

impl OffsetMap {
    /// An empty map that holds about `budget` bytes of keys and entries.
    pub fn new(budget: usize) -> OffsetMap {
        OffsetMap { latest: HashMap::new(), used: 0, budget }
    }

    /// Forgets every key (the memory stays reserved for the next pass).
    pub fn clear(&mut self) {
        self.latest.clear();
        self.used = 0;
    }

    /// Records that `key`'s latest record (so far) is at `offset`.
    pub fn insert(&mut self, key: &Bytes, offset: u64) {
        match self.latest.get_mut(key) {
            Some(at) => *at = (*at).max(offset),
            None => {
                self.used += key.len() + ENTRY_OVERHEAD;
                // A copy: the key must not pin the whole decompressed batch.
                self.latest.insert(Bytes::copy_from_slice(key), offset);
            }
        }
    }

    /// The latest offset of `key`, if mapped.
    pub fn get(&self, key: &[u8]) -> Option<u64> {
        self.latest.get(key).copied()
    }

    /// Whether the budget is spent.
    pub fn is_full(&self) -> bool {
        self.used >= self.budget
    }

    /// Keys mapped.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether no key is mapped.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_counts_its_bytes() {
        let mut map = OffsetMap::new(2 * (3 + ENTRY_OVERHEAD));
        map.insert(&Bytes::from("abc"), 5);
        map.insert(&Bytes::from("abc"), 3);
        assert_eq!((map.get(b"abc"), map.len(), map.is_full()), (Some(5), 1, false));
        map.insert(&Bytes::from("xyz"), 9);
        assert!(map.is_full());
        map.clear();
        assert!(map.is_empty() && !map.is_full());
    }
}
