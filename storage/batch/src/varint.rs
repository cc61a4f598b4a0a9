//! LEB128 varints and zigzag signed varints, as used inside record batches.
//!
//! Decoding never reads past the slice and rejects encodings longer than the
//! type allows, so a hostile byte string cannot overflow or loop.

/// Appends `v` as an unsigned LEB128 varint.
pub(crate) fn put_u64(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends `v` zigzag-encoded.
pub(crate) fn put_i64(buf: &mut Vec<u8>, v: i64) {
    put_u64(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Number of bytes `put_u64(v)` writes.
pub(crate) fn len_u64(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads an unsigned varint from the front of `buf`, advancing it.
/// `None` when the input ends early or the encoding exceeds 10 bytes / 64 bits.
pub(crate) fn get_u64(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first()?;
        *buf = rest;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may only carry the single remaining bit.
        if i == 9 && byte > 1 {
            return None;
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Reads a zigzag varint.
pub(crate) fn get_i64(buf: &mut &[u8]) -> Option<i64> {
    let v = get_u64(buf)?;
    Some(((v >> 1) as i64) ^ -((v & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn unsigned_round_trips(v in any::<u64>()) {
            let mut buf = Vec::new();
            put_u64(&mut buf, v);
            prop_assert_eq!(buf.len(), len_u64(v));
            let mut slice = &buf[..];
            prop_assert_eq!(get_u64(&mut slice), Some(v));
            prop_assert!(slice.is_empty());
        }

        #[test]
        fn signed_round_trips(v in any::<i64>()) {
            let mut buf = Vec::new();
            put_i64(&mut buf, v);
            let mut slice = &buf[..];
            prop_assert_eq!(get_i64(&mut slice), Some(v));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut slice = &bytes[..];
            let _ = get_u64(&mut slice);
        }
    }

    #[test]
    fn overlong_encoding_is_rejected() {
        let bytes = [0xffu8; 11];
        assert_eq!(get_u64(&mut &bytes[..]), None);
        let truncated = [0x80u8, 0x80];
        assert_eq!(get_u64(&mut &truncated[..]), None);
    }
}
