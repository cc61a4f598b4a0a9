//! Bounds the compactor's disk traffic: after each batch it sleeps for as
//! long as it ran ahead of its byte rate, so a pass over a large log shares
//! the disk with producers and consumers instead of taking it.

use std::time::{Duration, Instant};

/// A byte-rate limit (`None`: unlimited).
#[derive(Debug)]
pub struct Throttle {
    bytes_per_sec: Option<u64>,
    since: Instant,
    bytes: u64,
}

impl Throttle {
    /// A limit of `bytes_per_sec` read plus written.
    pub fn new(bytes_per_sec: Option<u64>) -> Throttle {
        Throttle { bytes_per_sec: bytes_per_sec.filter(|&r| r > 0), since: Instant::now(), bytes: 0 }
    }

    /// Counts `bytes` of I/O, sleeping while ahead of the rate.
    pub fn account(&mut self, bytes: u64) {
        let Some(rate) = self.bytes_per_sec else { return };
        self.bytes += bytes;
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        let elapsed = self.since.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        // Start a new window now and then, so an idle spell earns no burst.
        if elapsed > Duration::from_secs(1) {
            self.since = Instant::now();
            self.bytes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_io_to_its_rate() {
        let mut throttle = Throttle::new(Some(10 << 20));
        let start = Instant::now();
        for _ in 0..20 {
            throttle.account(256 << 10); // 5 MiB in all: about half a second
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        let mut unlimited = Throttle::new(None);
        let start = Instant::now();
        unlimited.account(1 << 40);
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
