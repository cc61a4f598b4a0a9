//! Clocks: the wall clock ([`now_ms`]) and the clock time retention is
//! judged by ([`retention_now_ms`]).
//!
//! Time retention deletes a fragment once this broker appended its last
//! record longer ago than the retention period. "Now" for that purpose is
//! [`retention_now_ms`]: the wall clock, but never further ahead than the
//! wall clock at the first call plus the monotonic time elapsed since. So a
//! wall clock stepped forward while the broker runs (a bad NTP server, an
//! operator's `date -s`) cannot age data: the step is ignored until the
//! broker restarts. A clock stepped back makes retention later, never
//! earlier. Record timestamps, which producers choose, play no part.

use std::sync::OnceLock;
use std::time::Instant;

/// Wall-clock milliseconds since the Unix epoch (defined with the batch
/// codec, which stamps record timestamps with it).
pub use goulette_batch::now_ms;

/// The wall clock and the monotonic clock read together at the first call.
static ANCHOR: OnceLock<(i64, Instant)> = OnceLock::new();

/// Milliseconds since the Unix epoch for retention: `min(wall clock,
/// wall clock at the first call + monotonic time since)`.
pub fn retention_now_ms() -> i64 {
    let wall = now_ms();
    let (anchor_wall, anchor) = *ANCHOR.get_or_init(|| (wall, Instant::now()));
    let steady = anchor_wall.saturating_add(anchor.elapsed().as_millis() as i64);
    wall.min(steady)
}

/// When a file was last written, in wall-clock ms (its mtime): for a
/// fragment, when its last record was appended. `None` when the file
/// system cannot tell.
pub(crate) fn modified_ms(path: &std::path::Path) -> Option<i64> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(modified.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_now_follows_the_wall_clock_and_never_leads_it() {
        let before = now_ms();
        let now = retention_now_ms();
        assert!(now >= before - 1 && now <= now_ms());
    }
}
