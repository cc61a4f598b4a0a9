//! Kafka's varints: zigzag-encoded (protobuf `sint32`/`sint64`) LEB128, as
//! every variable-length field of a record uses them. A `varint` holds an
//! `i32` (at most 5 bytes), a `varlong` an `i64` (at most 10 bytes).
//!
//! Decoding never reads past the slice and rejects encodings longer than the
//! type allows, so a hostile byte string cannot overflow or loop.

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as unsigned LEB128.
fn put_unsigned(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Bytes of `v` as unsigned LEB128.
fn unsigned_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads unsigned LEB128 of at most `max_bytes` bytes whose value fits in
/// `bits` bits, advancing `buf`. `None` when the input ends early or the
/// encoding is too long for the type.
fn get_unsigned(buf: &mut &[u8], max_bytes: usize, bits: u32) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        let shift = 7 * i as u32;
        // The last byte may only carry the bits the type has left.
        if i == max_bytes - 1 && u32::from(byte) >> (bits - shift) != 0 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Appends `v` as a zigzag varint (Kafka `varint`).
pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i32) {
    put_unsigned(buf, zigzag(i64::from(v)));
}

/// Appends `v` as a zigzag varlong (Kafka `varlong`).
pub(crate) fn put_varlong(buf: &mut Vec<u8>, v: i64) {
    put_unsigned(buf, zigzag(v));
}

/// Bytes [`put_varint`] writes for `v`.
pub(crate) fn varint_len(v: i32) -> usize {
    unsigned_len(zigzag(i64::from(v)))
}

/// Bytes [`put_varlong`] writes for `v`.
pub(crate) fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag(v))
}

/// Reads a zigzag varint (at most 5 bytes) from the front of `buf`.
pub(crate) fn get_varint(buf: &mut &[u8]) -> Option<i32> {
    get_unsigned(buf, 5, 32).map(|v| unzigzag(v) as i32)
}

/// Reads a zigzag varlong (at most 10 bytes) from the front of `buf`.
pub(crate) fn get_varlong(buf: &mut &[u8]) -> Option<i64> {
    get_unsigned(buf, 10, 64).map(unzigzag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<i32>()) {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            prop_assert_eq!(buf.len(), varint_len(v));
            let mut slice = &buf[..];
            prop_assert_eq!(get_varint(&mut slice), Some(v));
            prop_assert!(slice.is_empty());
        }

        #[test]
        fn varlongs_round_trip(v in any::<i64>()) {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            prop_assert_eq!(buf.len(), varlong_len(v));
            let mut slice = &buf[..];
            prop_assert_eq!(get_varlong(&mut slice), Some(v));
            prop_assert!(slice.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = get_varint(&mut &bytes[..]);
            let _ = get_varlong(&mut &bytes[..]);
        }
    }

    /// The zigzag mapping, as protobuf and Kafka define it: 0, -1, 1, -2, …
    /// become 0, 1, 2, 3, ….
    #[test]
    fn small_values_have_the_kafka_encoding() {
        for (v, bytes) in [(0, &[0x00][..]), (-1, &[0x01]), (1, &[0x02]), (-2, &[0x03]), (64, &[0x80, 0x01])] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf, bytes, "{v}");
        }
        let mut buf = Vec::new();
        put_varint(&mut buf, i32::MIN);
        assert_eq!(buf, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    }

    #[test]
    fn overlong_encodings_are_rejected() {
        // Six bytes, or a fifth byte carrying more than 32 bits, is no varint.
        assert_eq!(get_varint(&mut &[0x80u8, 0x80, 0x80, 0x80, 0x80, 0x00][..]), None);
        assert_eq!(get_varint(&mut &[0xffu8, 0xff, 0xff, 0xff, 0x1f][..]), None);
        assert_eq!(get_varlong(&mut &[0xffu8; 11][..]), None);
        assert_eq!(get_varlong(&mut &[0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02][..]), None);
        assert_eq!(get_varint(&mut &[0x80u8, 0x80][..]), None);
    }
}
