//! Where `goulette consume` starts, as users write it: `-o/--start`
//! (kcat's `-o`) and `--from-timestamp`.
//!
//! - `beginning` (or `earliest`), `end` (or `latest`);
//! - `N`: offset N (with `--partition` on a topic of several);
//! - `-N`: the last N records of each partition;
//! - `@TIME`: the first record at or after TIME, where TIME is RFC 3339
//!   (`2026-12-01T10:00:00Z`, `2026-12-01T10:00`; without a zone it is UTC)
//!   or a duration ago (`-1h`, `-90m`, `-2d`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use goulette_client::StartAt;

/// Parses `-o/--start`.
pub fn parse_start(s: &str) -> Result<StartAt, String> {
    parse_start_at(s, SystemTime::now())
}

/// Parses a time of `--from-timestamp` or `@TIME` into ms since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    parse_time_at(s, SystemTime::now())
}

/// A delivery time: ms since the Unix epoch, or RFC 3339.
pub fn parse_deliver_at(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(ms) => Ok(ms),
        Err(_) => parse_time_at(s, SystemTime::now()).map_err(|e| format!("{e} (or ms since the Unix epoch)")),
    }
}

fn parse_start_at(s: &str, now: SystemTime) -> Result<StartAt, String> {
    match s {
        "beginning" | "earliest" => return Ok(StartAt::Beginning),
        "end" | "latest" => return Ok(StartAt::End),
        _ => {}
    }
    if let Some(time) = s.strip_prefix('@') {
        return parse_time_at(time, now).map(StartAt::Timestamp);
    }
    if let Some(n) = s.strip_prefix('-') {
        return n.parse().map(StartAt::Last).map_err(|_| format!("{s:?}: -N is the last N records, N a count"));
    }
    s.parse().map(StartAt::Offset).map_err(|_| {
        format!("{s:?} is not a start: beginning, end, an offset N, -N (the last N), @TIME or @-DURATION (e.g. @-1h)")
    })
}

fn parse_time_at(s: &str, now: SystemTime) -> Result<i64, String> {
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    if let Some(ago) = s.strip_prefix('-') {
        let ago: Duration =
            humantime::parse_duration(ago).map_err(|e| format!("{s:?}: a duration ago like -1h or -30m: {e}"))?;
        return Ok(ms(now.checked_sub(ago).unwrap_or(UNIX_EPOCH)));
    }
    // RFC 3339, with the seconds and the zone optional (no zone: UTC).
    let mut text = s.trim_end_matches('Z').replace(' ', "T");
    if text.len() == "2026-12-01T10:00".len() {
        text.push_str(":00");
    }
    if text.len() == "2026-12-01".len() {
        text.push_str("T00:00:00");
    }
    match humantime::parse_rfc3339_weak(&text) {
        Ok(t) => Ok(ms(t)),
        // A zone offset (+02:00): the strict parser takes it.
        Err(_) => humantime::parse_rfc3339(s)
            .map(ms)
            .map_err(|e| format!("{s:?} is not a time: RFC 3339 like 2026-12-01T10:00:00Z, or -1h (ago): {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_start_is_understood() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |s| parse_start_at(s, now).unwrap();
        assert_eq!(at("beginning"), StartAt::Beginning);
        assert_eq!(at("latest"), StartAt::End);
        assert_eq!(at("42"), StartAt::Offset(42));
        assert_eq!(at("-10"), StartAt::Last(10));
        assert_eq!(at("@-1h"), StartAt::Timestamp(1_800_000_000_000 - 3_600_000));
        assert_eq!(at("@2026-12-01T10:00"), StartAt::Timestamp(1_796_119_200_000));
        assert_eq!(at("@2026-12-01T10:00:00Z"), StartAt::Timestamp(1_796_119_200_000));
        assert_eq!(at("@2026-12-01"), StartAt::Timestamp(1_796_083_200_000));
        for bad in ["soon", "-x", "@yesterday", "@-1 fortnight", ""] {
            assert!(parse_start_at(bad, now).is_err(), "{bad}");
        }
    }
}
