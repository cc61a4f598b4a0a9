//! Cleanup policies as users write them: Kafka's spelling (`delete`,
//! `compact`, `compact,delete`), and the defaults and bounds of the
//! compaction settings, shared by the CLI, the sentinels and the broker
//! (its Kafka listener and its compactor).

use std::ops::RangeInclusive;

use crate::v1::CleanupPolicy;

/// How long a tombstone stays when a topic sets nothing (Kafka's
/// `delete.retention.ms` default: 1 day).
pub const DEFAULT_DELETE_RETENTION_MS: u64 = 24 * 3600 * 1000;

/// The share of uncompacted bytes that starts a pass when a topic sets
/// nothing, in thousandths (Kafka's `min.cleanable.dirty.ratio`: 0.5).
pub const DEFAULT_DIRTY_RATIO_PERMILLE: u32 = 500;

/// The fragment sizes a topic may ask for (`segment.bytes`): a log file's
/// index positions are 32-bit.
pub const SEGMENT_BYTES: RangeInclusive<u64> = 4096..=2 << 30;

/// Reads a dirty ratio (0 to 1) into thousandths, at least 1: 0 on the
/// wire means "the default".
pub fn parse_dirty_ratio(value: &str) -> Result<u32, String> {
    let ratio: f64 = value.parse().map_err(|_| format!("{value:?} is not a number"))?;
    if !(0.0..=1.0).contains(&ratio) {
        return Err(format!("{ratio} is outside [0, 1]"));
    }
    Ok(((ratio * 1000.0).round() as u32).max(1))
}

/// The dirty ratio a topic's `min_cleanable_dirty_ratio_permille` means
/// (0: the default).
pub fn dirty_ratio(permille: u32) -> f64 {
    let permille = if permille == 0 { DEFAULT_DIRTY_RATIO_PERMILLE } else { permille.min(1000) };
    f64::from(permille) / 1000.0
}

/// A policy's name.
pub fn name(policy: CleanupPolicy) -> &'static str {
    match policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
        CleanupPolicy::CompactDelete => "compact,delete",
    }
}

/// Reads a policy: `delete`, `compact`, or both in either order.
pub fn parse(value: &str) -> Result<CleanupPolicy, String> {
    let mut parts: Vec<&str> = value.split(',').map(str::trim).collect();
    parts.sort_unstable();
    parts.dedup();
    match parts.as_slice() {
        ["delete"] => Ok(CleanupPolicy::Delete),
        ["compact"] => Ok(CleanupPolicy::Compact),
        ["compact", "delete"] => Ok(CleanupPolicy::CompactDelete),
        _ => Err(format!("cleanup policy {value:?}: use delete, compact or compact,delete")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_either_order() {
        for policy in [CleanupPolicy::Delete, CleanupPolicy::Compact, CleanupPolicy::CompactDelete] {
            assert_eq!(parse(name(policy)), Ok(policy));
        }
        assert_eq!(parse("delete, compact"), Ok(CleanupPolicy::CompactDelete));
        assert!(parse("compact,erase").is_err() && parse("").is_err());
    }

    #[test]
    fn dirty_ratios_are_thousandths_never_zero_and_zero_is_the_default() {
        assert_eq!(parse_dirty_ratio("0.5"), Ok(500));
        assert_eq!(parse_dirty_ratio("0"), Ok(1));
        assert_eq!(parse_dirty_ratio("1"), Ok(1000));
        assert!(parse_dirty_ratio("1.5").is_err() && parse_dirty_ratio("x").is_err());
        assert_eq!((dirty_ratio(0), dirty_ratio(100), dirty_ratio(5000)), (0.5, 0.1, 1.0));
    }
}
