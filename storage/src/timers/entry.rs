//! One timer-index entry on disk: 32 bytes, checksummed on its own so
//! that a damaged entry is found wherever it lies.
//!
//! ```text
//!      0   1 kind      1 = scheduled (an original), 2 = delivered (a copy)
//!      1   3 zero
//!      4   4 crc       CRC-32 of bytes 0..4 and 8..32
//!      8   8 due       i64, ms since the Unix epoch
//!     16   8 original  u64, the original's offset
//!     24   8 source    u64, the offset of the record this entry was read from
//! ```
//!
//! `source` is the original's own offset for a scheduled entry and the
//! copy's for a delivered one: entries are written in `source` order, so a
//! truncation of the log cuts each bucket at one place.

/// Bytes per entry.
pub const ENTRY_LEN: usize = 32;

/// What the log says about one delayed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The original was written: deliver it at `due`.
    Scheduled,
    /// A copy of the original was written (at `source`).
    Delivered,
}

/// One entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub due: i64,
    pub original: u64,
    pub source: u64,
}

fn crc(bytes: &[u8; ENTRY_LEN]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..4]);
    hasher.update(&bytes[8..]);
    hasher.finalize()
}

impl Entry {
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[0] = match self.kind {
            Kind::Scheduled => 1,
            Kind::Delivered => 2,
        };
        out[8..16].copy_from_slice(&self.due.to_le_bytes());
        out[16..24].copy_from_slice(&self.original.to_le_bytes());
        out[24..32].copy_from_slice(&self.source.to_le_bytes());
        let crc = crc(&out);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// The entry in `bytes`, or why it cannot be trusted.
    pub fn decode(bytes: &[u8; ENTRY_LEN]) -> Result<Entry, &'static str> {
        if u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) != crc(bytes) {
            return Err("CRC mismatch");
        }
        let kind = match bytes[0] {
            1 => Kind::Scheduled,
            2 => Kind::Delivered,
            _ => return Err("unknown entry kind"),
        };
        let field = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            b
        };
        Ok(Entry {
            kind,
            due: i64::from_le_bytes(field(8)),
            original: u64::from_le_bytes(field(16)),
            source: u64::from_le_bytes(field(24)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_any_flipped_bit_is_found() {
        let entry = Entry { kind: Kind::Delivered, due: 1_700_000_000_123, original: 42, source: 99 };
        let bytes = entry.encode();
        assert_eq!(Entry::decode(&bytes), Ok(entry));
        for bit in 0..ENTRY_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(Entry::decode(&damaged).is_err(), "bit {bit}");
        }
    }
}
