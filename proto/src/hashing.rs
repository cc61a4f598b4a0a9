//! The stable hash clients and brokers agree on: which partition a keyed
//! record goes to (native producers), and which `__offsets` partition a
//! consumer group belongs to (`offsets_topic`).

/// FNV-1a 64 with murmur3's finalizer: stable across builds and platforms,
/// so keyed records keep their partition when clients are upgraded.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
