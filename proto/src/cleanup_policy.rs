//! Cleanup policies as users write them: Kafka's spelling (`delete`,
//! `compact`, `compact,delete`), shared by the CLI and the Kafka listener.

use crate::v1::CleanupPolicy;

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
}
