//! Optional dedup of a source's records (`dedup = { by = "value" }`): a
//! record whose hash was written within `ttl` is dropped (and acknowledged
//! to its source like any other). The hash is of the key, the value, both,
//! or all of it (`full`: topic, key, value and headers).
//!
//! Memory is bounded: at most `max-entries` hashes (about 40 bytes each),
//! the oldest forgotten first. A kill -9 loses nothing here: at start the
//! set is seeded from the last `max-entries` records of the target topic,
//! so what was written before the crash and comes again is recognised —
//! that is what makes a restart send no duplicate.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::record::MirrorRecord;

/// What two records share to be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DedupBy {
    Key,
    Value,
    KeyValue,
    Full,
}

/// A source's dedup settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DedupConfig {
    pub by: DedupBy,
    #[serde(default = "default_ttl", with = "crate::config::duration")]
    pub ttl: Duration,
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
}

fn default_ttl() -> Duration {
    Duration::from_secs(3600)
}

fn default_max_entries() -> usize {
    1_000_000
}

/// The hashes seen, oldest first.
#[derive(Debug)]
pub struct Dedup {
    config: DedupConfig,
    seen: HashMap<u64, Instant>,
    order: VecDeque<(u64, Instant)>,
}

impl Dedup {
    pub fn new(config: DedupConfig) -> Dedup {
        Dedup { config, seen: HashMap::new(), order: VecDeque::new() }
    }

    pub fn max_entries(&self) -> usize {
        self.config.max_entries
    }

    /// The hash of the parts of a record that `by` compares. SipHash with
    /// fixed keys: the same on every run, so seeded hashes match.
    pub fn hash(&self, topic: &str, key: Option<&[u8]>, value: &[u8], headers: &[(String, bytes::Bytes)]) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        match self.config.by {
            DedupBy::Key => key.hash(&mut h),
            DedupBy::Value => value.hash(&mut h),
            DedupBy::KeyValue => (key, value).hash(&mut h),
            DedupBy::Full => {
                (topic, key, value).hash(&mut h);
                for (name, v) in headers {
                    (name.as_str(), v.as_ref()).hash(&mut h);
                }
            }
        }
        h.finish()
    }

    pub fn hash_record(&self, r: &MirrorRecord) -> u64 {
        self.hash(&r.topic, r.key.as_deref(), &r.value, &r.headers)
    }

    /// Remembers `hash`; whether it is new (not seen within the TTL).
    pub fn first(&mut self, hash: u64, now: Instant) -> bool {
        self.expire(now);
        if self.seen.contains_key(&hash) {
            return false;
        }
        self.seen.insert(hash, now);
        self.order.push_back((hash, now));
        while self.seen.len() > self.config.max_entries {
            let Some((oldest, at)) = self.order.pop_front() else { break };
            if self.seen.get(&oldest) == Some(&at) {
                self.seen.remove(&oldest);
            }
        }
        true
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(hash, at)) = self.order.front() {
            if now.duration_since(at) < self.config.ttl {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&hash) == Some(&at) {
                self.seen.remove(&hash);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dedup(by: DedupBy, ttl: Duration, max_entries: usize) -> Dedup {
        Dedup::new(DedupConfig { by, ttl, max_entries })
    }

    #[test]
    fn a_hash_seen_within_the_ttl_is_a_duplicate_then_forgotten() {
        let mut d = dedup(DedupBy::Value, Duration::from_secs(10), 100);
        let t = Instant::now();
        let h = d.hash("t", None, b"v", &[]);
        assert!(d.first(h, t));
        assert!(!d.first(h, t + Duration::from_secs(9)));
        assert!(d.first(h, t + Duration::from_secs(11)), "forgotten after the TTL");
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let mut d = dedup(DedupBy::Value, Duration::from_secs(3600), 3);
        let t = Instant::now();
        for v in [b"a", b"b", b"c", b"d"] {
            assert!(d.first(d.hash("t", None, v, &[]), t));
        }
        assert_eq!(d.len(), 3);
        assert!(d.first(d.hash("t", None, b"a", &[]), t), "the oldest was forgotten");
        assert!(!d.first(d.hash("t", None, b"d", &[]), t));
    }

    #[test]
    fn what_is_compared_follows_by() {
        let key = dedup(DedupBy::Key, Duration::from_secs(1), 10);
        assert_eq!(key.hash("t", Some(b"k"), b"1", &[]), key.hash("u", Some(b"k"), b"2", &[]));
        let full = dedup(DedupBy::Full, Duration::from_secs(1), 10);
        let h = vec![("h".to_owned(), bytes::Bytes::from_static(b"1"))];
        assert_ne!(full.hash("t", None, b"v", &h), full.hash("t", None, b"v", &[]));
        let kv = dedup(DedupBy::KeyValue, Duration::from_secs(1), 10);
        assert_ne!(kv.hash("t", Some(b"k"), b"v", &[]), kv.hash("t", None, b"v", &[]));
    }
}
