//! The SCRAM message syntax (RFC 5802 §7): comma-separated `a=value`
//! attributes, base64 fields, and user names with `,` and `=` escaped.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::AuthError;

pub(crate) const SCRAM: &str = "SCRAM";

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn unb64(field: &str, value: &str) -> Result<Vec<u8>, AuthError> {
    STANDARD.decode(value).map_err(|_| AuthError::malformed(SCRAM, format!("{field} is not base64")))
}

/// A user name as SCRAM sends it: `,` as `=2C` and `=` as `=3D`.
pub(crate) fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A user name from its SCRAM form; any other `=` escape is malformed.
pub(crate) fn unescape_name(escaped: &str) -> Result<String, AuthError> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(AuthError::malformed(SCRAM, "a user name holds a bad '=' escape")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of attribute `name` (`name=value`) in `part`.
pub(crate) fn attribute(part: Option<&str>, name: char) -> Result<&str, AuthError> {
    part.and_then(|p| p.strip_prefix(name))
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(|| AuthError::malformed(SCRAM, format!("expected the '{name}=' attribute")))
}

/// A message as UTF-8.
pub(crate) fn text(message: &[u8]) -> Result<&str, AuthError> {
    std::str::from_utf8(message).map_err(|_| AuthError::malformed(SCRAM, "not UTF-8"))
}

/// A new random nonce, in hex: SCRAM allows any printable character but
/// `,`; letters and digits only, as Kafka's own nonces, leave nothing for a
/// client's parser to get wrong.
pub(crate) fn new_nonce() -> String {
    crate::credential::random_bytes(24).iter().map(|b| format!("{b:02x}")).collect()
}

/// A nonce: printable ASCII without `,` (RFC 5802 §7).
pub(crate) fn check_nonce(nonce: &str) -> Result<(), AuthError> {
    if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',') {
        return Err(AuthError::malformed(SCRAM, "the nonce must be printable ASCII without ','"));
    }
    Ok(())
}

/// a XOR b (same lengths).
pub(crate) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_escape_and_unescape() {
        for name in ["alice", "a,b", "a=b", "=2C", ",=,", ""] {
            assert_eq!(unescape_name(&escape_name(name)).unwrap(), name);
        }
        assert_eq!(escape_name("a,b=c"), "a=2Cb=3Dc");
        assert!(unescape_name("a=2").is_err());
        assert!(unescape_name("a=41").is_err());
    }

    #[test]
    fn nonces_are_printable_without_commas() {
        assert!(check_nonce("rOprNGfwEbeRWgbNEkqO").is_ok());
        assert!(check_nonce("a,b").is_err());
        assert!(check_nonce("a b").is_err());
        assert!(check_nonce("").is_err());
    }
}
