//! The internal topic `__offsets`: committed consumer offsets, native and
//! Kafka-protocol alike. Clients and brokers agree here on its settings and
//! on which of its partitions (and so which coordinator, that partition's
//! leader) a group belongs to.

use crate::hashing::key_hash;
use crate::v1 as pb;

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__offsets";
/// Its partitions when it is created.
pub const OFFSETS_PARTITIONS: u32 = 16;

/// The `__offsets` partition of `group` among `partitions` (stable).
pub fn group_partition(group: &str, partitions: u32) -> u32 {
    (key_hash(group.as_bytes()) % u64::from(partitions.max(1))) as u32
}

/// The settings `__offsets` is created with, by whoever needs it first,
/// with `brokers_up` brokers up: a replication factor of 3 (as many as
/// there are brokers up, if fewer — fixed from then on), compacted (each
/// group's latest commit per partition is what counts) and no retention,
/// since a group's last commit must outlive any time limit. Brokers
/// compact `__offsets` whatever its stored settings say, so a topic created
/// before compaction existed is compacted too.
pub fn config(brokers_up: usize) -> pb::TopicConfig {
    pb::TopicConfig {
        name: OFFSETS_TOPIC.to_owned(),
        partitions: OFFSETS_PARTITIONS,
        replication_factor: brokers_up.clamp(1, 3) as u32,
        retention_ms: u64::MAX,
        retention_bytes: 0,
        cleanup_policy: pb::CleanupPolicy::Compact as i32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_spread_over_the_partitions_stably() {
        assert_eq!(group_partition("orders-app", 16), group_partition("orders-app", 16));
        assert!(group_partition("orders-app", 16) < 16);
        let spread: std::collections::BTreeSet<u32> = (0..64).map(|i| group_partition(&format!("g{i}"), 16)).collect();
        assert!(spread.len() > 8);
    }
}
