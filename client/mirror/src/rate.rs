//! Optional rate limits of a source (`rate = { messages-per-second = …,
//! bytes-per-second = …, burst = "1s" }`): token buckets holding `burst`
//! worth of each rate. A batch takes its records and bytes from them; when
//! a bucket runs short the pipeline waits until it has refilled, so a
//! source never goes faster than its rates over any `burst`-long window
//! (a batch larger than the bucket is let through and paid off after).

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

/// A source's rate settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RateConfig {
    #[serde(default)]
    pub messages_per_second: Option<f64>,
    #[serde(default)]
    pub bytes_per_second: Option<f64>,
    /// How much above the rate a burst may go, as time at the rate.
    #[serde(default = "default_burst", with = "crate::config::duration")]
    pub burst: Duration,
}

fn default_burst() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: Duration) -> Bucket {
        let capacity = (rate * burst.as_secs_f64()).max(1.0);
        Bucket { rate, capacity, tokens: capacity, at: Instant::now() }
    }

    /// Takes `n` tokens; how long to wait before going on.
    fn take(&mut self, n: f64) -> Duration {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.capacity);
        self.at = now;
        self.tokens -= n;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }
}

/// The limits of one source.
#[derive(Debug)]
pub struct RateLimit {
    messages: Option<Bucket>,
    bytes: Option<Bucket>,
}

impl RateLimit {
    pub fn new(config: &RateConfig) -> RateLimit {
        let bucket = |rate: Option<f64>| rate.filter(|r| *r > 0.0).map(|r| Bucket::new(r, config.burst));
        RateLimit { messages: bucket(config.messages_per_second), bytes: bucket(config.bytes_per_second) }
    }

    /// Waits until `records` records of `bytes` bytes may go.
    pub async fn admit(&mut self, records: usize, bytes: usize) {
        let wait_messages = self.messages.as_mut().map_or(Duration::ZERO, |b| b.take(records as f64));
        let wait_bytes = self.bytes.as_mut().map_or(Duration::ZERO, |b| b.take(bytes as f64));
        let wait = wait_messages.max(wait_bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Admits `batches` of (`records`, `bytes`); how long it took.
    async fn pace(config: RateConfig, batches: usize, records: usize, bytes: usize) -> Duration {
        let mut limit = RateLimit::new(&config);
        let started = Instant::now();
        for _ in 0..batches {
            limit.admit(records, bytes).await;
        }
        started.elapsed()
    }

    #[tokio::test]
    async fn a_source_goes_no_faster_than_its_rate_after_its_burst() {
        // The burst (50) goes at once; 250 more take 0.25 s at 1,000/s.
        let config =
            RateConfig { messages_per_second: Some(1000.0), bytes_per_second: None, burst: Duration::from_millis(50) };
        let took = pace(config, 10, 30, 0).await;
        assert!(took >= Duration::from_millis(240) && took <= Duration::from_millis(800), "{took:?}");
    }

    #[tokio::test]
    async fn the_tighter_of_the_two_rates_wins() {
        // 1,000 bytes at 4,000 B/s, less the 200-byte burst: 0.2 s.
        let config = RateConfig {
            messages_per_second: Some(1_000_000.0),
            bytes_per_second: Some(4000.0),
            burst: Duration::from_millis(50),
        };
        let took = pace(config, 5, 1, 200).await;
        assert!(took >= Duration::from_millis(190) && took <= Duration::from_millis(700), "{took:?}");
    }
}
