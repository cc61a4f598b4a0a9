//! Bounds on the timestamps producers choose (Kafka's
//! `message.timestamp.after.max.ms` and `message.timestamp.before.max.ms`).
//!
//! Retention does not depend on record timestamps (it counts from when this
//! broker appended the data; see `goulette_storage::clock`), so a wrong
//! producer clock cannot delete data or pin a log. The bounds keep the
//! timestamps consumers see, and time lookups, meaningful: a batch stamped
//! by its producer (create time) further ahead of the broker's clock than
//! `max_ahead`, or further behind than `max_behind`, is refused with
//! `INVALID_TIMESTAMP` and nothing of it is stored.

use std::time::Duration;

use goulette_storage::{Batch, TimestampType};

/// How far producer timestamps may stray from the broker's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampBounds {
    /// Largest lead of a record timestamp over the broker's clock; `None`:
    /// unbounded.
    pub max_ahead: Option<Duration>,
    /// Largest lag behind it; `None`: unbounded.
    pub max_behind: Option<Duration>,
}

impl Default for TimestampBounds {
    /// One hour ahead (Kafka's default since 3.6), any time behind (old
    /// records replayed or mirrored keep their timestamps).
    fn default() -> Self {
        TimestampBounds { max_ahead: Some(Duration::from_secs(3600)), max_behind: None }
    }
}

impl TimestampBounds {
    /// Checks a batch's first and largest timestamps against `now_ms`.
    pub fn check(&self, batch: &Batch, now_ms: i64) -> Result<(), String> {
        if batch.timestamp_type() != TimestampType::CreateTime {
            return Ok(());
        }
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if let Some(ahead) = self.max_ahead {
            let latest = batch.max_timestamp().max(batch.first_timestamp());
            if latest > now_ms.saturating_add(ms(ahead)) {
                return Err(format!(
                    "record timestamp {latest} is {} ms ahead of the broker's clock; at most {} ms allowed \
                     (--max-timestamp-ahead)",
                    latest - now_ms,
                    ms(ahead)
                ));
            }
        }
        if let Some(behind) = self.max_behind {
            let earliest = batch.first_timestamp().min(batch.max_timestamp());
            if earliest < now_ms.saturating_sub(ms(behind)) {
                return Err(format!(
                    "record timestamp {earliest} is {} ms behind the broker's clock; at most {} ms allowed \
                     (--max-timestamp-behind)",
                    now_ms - earliest,
                    ms(behind)
                ));
            }
        }
        Ok(())
    }
}

/// Parses a bound flag: a duration (`1h`, `30m`), or `off` (or `0s`) for
/// none, as zero; see [`bound`].
pub fn parse_bound(s: &str) -> Result<Duration, String> {
    if s == "off" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(s).map_err(|e| e.to_string())
}

/// A parsed bound flag as a bound: zero is none.
pub fn bound(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use goulette_storage::{BatchBuilder, Record};

    fn batch_at(ts: i64) -> Batch {
        let mut b = BatchBuilder::new(goulette_storage::Compression::None);
        b.push(&Record { timestamp: ts, value: bytes::Bytes::from_static(b"v"), ..Default::default() });
        Batch::parse(b.build().unwrap()).unwrap()
    }

    #[test]
    fn refuses_what_strays_past_a_bound_and_accepts_the_rest() {
        let now = 1_700_000_000_000;
        let bounds =
            TimestampBounds { max_ahead: Some(Duration::from_secs(60)), max_behind: Some(Duration::from_secs(60)) };
        assert!(bounds.check(&batch_at(now), now).is_ok());
        assert!(bounds.check(&batch_at(now + 60_000), now).is_ok());
        assert!(bounds.check(&batch_at(now + 60_001), now).unwrap_err().contains("ahead"));
        assert!(bounds.check(&batch_at(now - 60_001), now).unwrap_err().contains("behind"));
        let unbounded = TimestampBounds { max_ahead: None, max_behind: None };
        assert!(unbounded.check(&batch_at(i64::MAX / 2), now).is_ok());
        // Ten years ahead is refused by default; ten years behind is not.
        let ten_years = 10 * 365 * 86_400_000;
        assert!(TimestampBounds::default().check(&batch_at(now + ten_years), now).is_err());
        assert!(TimestampBounds::default().check(&batch_at(now - ten_years), now).is_ok());
    }

    #[test]
    fn parses_durations_and_off() {
        assert_eq!(parse_bound("1h").map(bound), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(parse_bound("0s").map(bound), Ok(None));
        assert_eq!(parse_bound("off").map(bound), Ok(None));
        assert!(parse_bound("soon").is_err());
    }
}
