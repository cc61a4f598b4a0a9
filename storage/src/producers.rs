//! Idempotent producers: what a partition remembers of each producer's
//! recent batches, to answer a retried batch with its original offsets
//! instead of appending it twice.
//!
//! A producer numbers the records it sends to a partition (`base_sequence`
//! in the batch header) under an id the sentinels handed out. The partition
//! accepts a batch only at the next sequence of its producer, so the batches
//! of one producer are stored in sequence order without holes: a batch that
//! starts later (an earlier one was refused) is refused as out of order and
//! resent in order by the client; a batch wholly before the next sequence is
//! a retry of a stored one. The last [`CACHED_BATCHES`] batches of each
//! producer are remembered with their offsets, so a retry within the
//! client's window is answered with where the original landed.
//!
//! The state lives in memory. It is kept up to date by every append (the
//! leader's and a follower's), so a follower that becomes leader has it.
//! Each seal writes a snapshot of it, `{offset:020}.producers`, covering
//! every batch before `offset` (the sealed fragment's end); after a restart
//! the state is the newest snapshot plus the batches after it. A truncation
//! forgets the batches it removed and the snapshots past its cut. Without a
//! usable snapshot, the last fragment and the WAL are read, and a producer
//! whose batches are all older than that is unknown: its next batch is
//! accepted whatever its sequence.
//!
//! Snapshot layout (little-endian):
//!
//! ```text
//! magic "GPRODS1\0" | covered u64 | last_crc u32 |
//!   count u32 | count × (producer_id i64 | epoch i16 |
//!   n u16 | n × (first_seq i32 | last_seq i32 | base_offset u64 |
//!   next_offset u64)) | crc32 u32 of everything before
//! ```
//!
//! `covered` is the offset the snapshot covers up to and `last_crc` the CRC
//! of the batch ending there. A snapshot is used only if the log's batch
//! ending at `covered` still has that CRC: a snapshot that outlived a
//! truncation (its deletion lost in a crash) describes batches the log no
//! longer holds, and trusting it could answer a retry "already stored" for
//! a batch that is not.

use std::collections::{HashMap, VecDeque};

/// The suffix of producer-state snapshot files.
pub const SNAPSHOT_SUFFIX: &str = "producers";
const SNAPSHOT_MAGIC: &[u8; 8] = b"GPRODS1\0";

use crate::batch::ProducerInfo;

/// Batches remembered per producer: at least a client's window of batches
/// in flight to one partition (the client caps its window to this, which is
/// why the constant lives in the codec crate both depend on).
pub use goulette_batch::CACHED_BATCHES;

/// Producers remembered per partition; beyond it the tenth whose last batch
/// is oldest are forgotten (they become unknown, see above).
pub const MAX_PRODUCERS: usize = 10_000;

/// One stored batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    first_seq: i32,
    last_seq: i32,
    base_offset: u64,
    next_offset: u64,
}

#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    /// Oldest first.
    batches: VecDeque<Stored>,
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Its sequence is the next one (or the producer is unknown): append it.
    Append,
    /// A retry of a stored batch: answer with where it landed.
    Duplicate { base_offset: u64, next_offset: u64 },
    /// A retry of a batch stored too long ago to be remembered.
    DuplicateUnknown,
    /// It does not start at the next sequence: an earlier batch is missing.
    OutOfOrder { expected: i32 },
    /// An older epoch of the producer than the partition has seen.
    Fenced { current: i16 },
}

/// The producers of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
}

/// The sequence of a batch's last offset: sequences follow offsets (a
/// compacted batch keeps the sequences of the records it lost).
fn last_seq(info: &ProducerInfo, offset_count: u32) -> i32 {
    info.base_sequence.wrapping_add(offset_count as i32 - 1)
}

impl ProducerStates {
    /// Decides on a batch covering `offset_count` offsets from `info`.
    pub fn check(&self, info: &ProducerInfo, offset_count: u32) -> Decision {
        let Some(p) = self.producers.get(&info.producer_id) else { return Decision::Append };
        if info.producer_epoch < p.epoch {
            return Decision::Fenced { current: p.epoch };
        }
        let Some(last) = p.batches.back() else { return Decision::Append };
        if info.producer_epoch > p.epoch {
            return Decision::Append; // a new epoch starts its sequences afresh
        }
        let expected = last.last_seq.wrapping_add(1);
        if info.base_sequence == expected {
            return Decision::Append;
        }
        let end = last_seq(info, offset_count);
        if let Some(s) = p.batches.iter().find(|s| s.first_seq == info.base_sequence && s.last_seq == end) {
            return Decision::Duplicate { base_offset: s.base_offset, next_offset: s.next_offset };
        }
        // Sequences grow without holes, so one wholly before the next was stored.
        if end.wrapping_sub(expected) < 0 {
            return Decision::DuplicateUnknown;
        }
        Decision::OutOfOrder { expected }
    }

    /// Records a stored batch (appended here or copied from the leader).
    pub fn record(&mut self, info: &ProducerInfo, offset_count: u32, base_offset: u64, next_offset: u64) {
        let p = self.producers.entry(info.producer_id).or_default();
        if info.producer_epoch != p.epoch {
            p.epoch = info.producer_epoch;
            p.batches.clear();
        }
        let stored =
            Stored { first_seq: info.base_sequence, last_seq: last_seq(info, offset_count), base_offset, next_offset };
        p.batches.push_back(stored);
        if p.batches.len() > CACHED_BATCHES {
            p.batches.pop_front();
        }
        if self.producers.len() > MAX_PRODUCERS {
            let mut ends: Vec<u64> =
                self.producers.values().filter_map(|p| p.batches.back().map(|s| s.next_offset)).collect();
            ends.sort_unstable();
            let cut = ends[MAX_PRODUCERS / 10];
            self.producers.retain(|_, p| p.batches.back().is_some_and(|s| s.next_offset > cut));
        }
    }

    /// Forgets producers whose last batch lies wholly before `log_start`
    /// (retention deleted it): they would be unknown after a restart anyway.
    pub fn expire_before(&mut self, log_start: u64) {
        self.producers.retain(|_, p| p.batches.back().is_some_and(|s| s.next_offset > log_start));
    }

    /// Forgets the batches at or after `offset` (the log was truncated there).
    pub fn truncate(&mut self, offset: u64) {
        for p in self.producers.values_mut() {
            while p.batches.back().is_some_and(|s| s.next_offset > offset) {
                p.batches.pop_back();
            }
        }
        self.producers.retain(|_, p| !p.batches.is_empty());
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.producers.clear();
    }

    /// The snapshot encoding (see the module docs) of the state covering
    /// every batch before `covered`, the last of which has CRC `last_crc`.
    pub fn encode(&self, covered: u64, last_crc: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(28 + self.producers.len() * 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&covered.to_le_bytes());
        out.extend_from_slice(&last_crc.to_le_bytes());
        out.extend_from_slice(&(self.producers.len() as u32).to_le_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let p = &self.producers[id];
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&p.epoch.to_le_bytes());
            out.extend_from_slice(&(p.batches.len() as u16).to_le_bytes());
            for s in &p.batches {
                out.extend_from_slice(&s.first_seq.to_le_bytes());
                out.extend_from_slice(&s.last_seq.to_le_bytes());
                out.extend_from_slice(&s.base_offset.to_le_bytes());
                out.extend_from_slice(&s.next_offset.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a snapshot, checking its magic, CRC and lengths, and that no
    /// batch ends past what it covers; returns it with `covered` and `last_crc`.
    pub fn decode(bytes: &[u8]) -> Result<(ProducerStates, u64, u32), String> {
        let (body, crc) = bytes.split_at_checked(bytes.len().wrapping_sub(4)).ok_or("snapshot too short")?;
        if bytes.len() < SNAPSHOT_MAGIC.len() + 8 || !body.starts_with(SNAPSHOT_MAGIC) {
            return Err("not a producer-state snapshot".into());
        }
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().map_err(|_| "snapshot too short")?) {
            return Err("snapshot CRC mismatch".into());
        }
        let mut at = SNAPSHOT_MAGIC.len();
        let covered = u64::from_le_bytes(take(body, &mut at)?);
        let last_crc = u32::from_le_bytes(take(body, &mut at)?);
        let count = u32::from_le_bytes(take(body, &mut at)?) as usize;
        let mut states = ProducerStates::default();
        for _ in 0..count {
            let id = i64::from_le_bytes(take(body, &mut at)?);
            let epoch = i16::from_le_bytes(take(body, &mut at)?);
            let n = u16::from_le_bytes(take(body, &mut at)?) as usize;
            if n > CACHED_BATCHES {
                return Err(format!("producer {id} has {n} batches, more than {CACHED_BATCHES}"));
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                let stored = Stored {
                    first_seq: i32::from_le_bytes(take(body, &mut at)?),
                    last_seq: i32::from_le_bytes(take(body, &mut at)?),
                    base_offset: u64::from_le_bytes(take(body, &mut at)?),
                    next_offset: u64::from_le_bytes(take(body, &mut at)?),
                };
                if stored.next_offset > covered || stored.base_offset >= stored.next_offset {
                    return Err(format!("producer {id} has a batch at {}..{}", stored.base_offset, stored.next_offset));
                }
                batches.push_back(stored);
            }
            states.producers.insert(id, Producer { epoch, batches });
        }
        if at != body.len() {
            return Err("trailing bytes in snapshot".into());
        }
        Ok((states, covered, last_crc))
    }
}

/// The next `N` bytes of `body` at `*at`, advancing it.
fn take<const N: usize>(body: &[u8], at: &mut usize) -> Result<[u8; N], String> {
    let bytes = body.get(*at..*at + N).ok_or("snapshot truncated")?;
    *at += N;
    Ok(bytes.try_into().map_err(|_| "snapshot truncated")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: i64, epoch: i16, seq: i32) -> ProducerInfo {
        ProducerInfo { producer_id: id, producer_epoch: epoch, base_sequence: seq }
    }

    #[test]
    fn sequences_must_follow_on_and_retries_get_their_original_offsets() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&info(7, 0, 0), 3), Decision::Append, "an unknown producer");
        s.record(&info(7, 0, 0), 3, 100, 103);
        assert_eq!(s.check(&info(7, 0, 3), 2), Decision::Append);
        s.record(&info(7, 0, 3), 2, 110, 112);
        assert_eq!(s.check(&info(7, 0, 0), 3), Decision::Duplicate { base_offset: 100, next_offset: 103 });
        assert_eq!(s.check(&info(7, 0, 3), 2), Decision::Duplicate { base_offset: 110, next_offset: 112 });
        assert_eq!(s.check(&info(7, 0, 9), 1), Decision::OutOfOrder { expected: 5 }, "a hole");
        assert_eq!(s.check(&info(7, 0, 4), 3), Decision::OutOfOrder { expected: 5 }, "an overlap");
        assert_eq!(s.check(&info(8, 0, 42), 1), Decision::Append, "producers are independent");
    }

    #[test]
    fn retries_older_than_the_cache_are_known_duplicates_without_offsets() {
        let mut s = ProducerStates::default();
        for i in 0..(CACHED_BATCHES as i32 + 5) {
            s.record(&info(1, 0, i), 1, i as u64, i as u64 + 1);
        }
        assert_eq!(s.check(&info(1, 0, 0), 1), Decision::DuplicateUnknown);
        assert_eq!(s.check(&info(1, 0, 10), 1), Decision::Duplicate { base_offset: 10, next_offset: 11 });
    }

    #[test]
    fn epochs_fence_older_incarnations_and_restart_sequences() {
        let mut s = ProducerStates::default();
        s.record(&info(1, 2, 0), 1, 0, 1);
        assert_eq!(s.check(&info(1, 1, 1), 1), Decision::Fenced { current: 2 });
        assert_eq!(s.check(&info(1, 3, 0), 1), Decision::Append);
        s.record(&info(1, 3, 0), 1, 1, 2);
        assert_eq!(s.check(&info(1, 3, 1), 1), Decision::Append);
    }

    #[test]
    fn truncation_forgets_the_removed_batches() {
        let mut s = ProducerStates::default();
        s.record(&info(1, 0, 0), 2, 0, 2);
        s.record(&info(1, 0, 2), 2, 2, 4);
        s.record(&info(2, 0, 0), 1, 4, 5);
        s.truncate(2);
        assert_eq!(s.check(&info(1, 0, 2), 2), Decision::Append, "the truncated batch may come again");
        assert_eq!(s.check(&info(2, 0, 7), 1), Decision::Append, "producer 2 is unknown now");
    }

    #[test]
    fn producers_beyond_the_limit_or_past_retention_are_forgotten_oldest_first() {
        let mut s = ProducerStates::default();
        for id in 0..=MAX_PRODUCERS as i64 {
            s.record(&info(id, 0, 0), 1, id as u64, id as u64 + 1);
        }
        assert!(s.producers.len() <= MAX_PRODUCERS, "{}", s.producers.len());
        assert!(!s.producers.contains_key(&0) && s.producers.contains_key(&(MAX_PRODUCERS as i64)));
        s.expire_before(MAX_PRODUCERS as u64);
        assert_eq!(s.producers.len(), 1);
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_detected() {
        let mut s = ProducerStates::default();
        s.record(&info(7, 3, i32::MAX - 1), 2, 100, 102);
        s.record(&info(-5, 0, 0), 1, 102, 103);
        let bytes = s.encode(103, 0xfeed);
        let (back, covered, crc) = ProducerStates::decode(&bytes).unwrap();
        assert_eq!((covered, crc), (103, 0xfeed));
        assert!(ProducerStates::decode(&s.encode(102, 0)).is_err(), "a batch past what the snapshot covers");
        assert_eq!(
            back.check(&info(7, 3, i32::MAX - 1), 2),
            Decision::Duplicate { base_offset: 100, next_offset: 102 }
        );
        assert_eq!(back.check(&info(-5, 0, 1), 1), Decision::Append);
        assert_eq!(back.check(&info(-5, 0, 5), 1), Decision::OutOfOrder { expected: 1 });
        for cut in [0, 3, 12, bytes.len() - 1] {
            assert!(ProducerStates::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[14] ^= 1;
        assert!(ProducerStates::decode(&flipped).is_err());
    }

    #[test]
    fn sequences_wrap_around() {
        let mut s = ProducerStates::default();
        s.record(&info(1, 0, i32::MAX - 1), 2, 0, 2);
        assert_eq!(s.check(&info(1, 0, i32::MIN), 1), Decision::Append);
    }
}
