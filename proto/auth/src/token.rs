//! Short-lived bearer tokens for the gRPC API: issued by a sentinel after
//! a SCRAM login, checked by every sentinel and broker without a round
//! trip, because each holds the cluster's token keys (from the metadata).
//!
//! `gt1.{key id}.{expiry ms}.{user, base64url}.{HMAC-SHA-256, base64url}`:
//! the MAC covers everything before it, with the key named. Keys rotate;
//! a token is good until its expiry while its key is still held.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;

use crate::credential::random_bytes;

const VERSION: &str = "gt1";

/// One signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey {
    pub id: u32,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl TokenKey {
    /// A new random key with `id`.
    pub fn generate(id: u32) -> TokenKey {
        TokenKey { id, secret: random_bytes(32) }
    }

    fn mac(&self, signed: &str) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &self.secret), signed.as_bytes()).as_ref().to_vec()
    }
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("the token's key is unknown (rotated out, or from another cluster)")]
    UnknownKey,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token expired")]
    Expired,
}

/// A token for `user`, good until `expires_ms` (wall clock, ms).
pub fn issue(key: &TokenKey, user: &str, expires_ms: i64) -> String {
    let signed = format!("{VERSION}.{}.{expires_ms}.{}", key.id, URL_SAFE_NO_PAD.encode(user));
    let mac = URL_SAFE_NO_PAD.encode(key.mac(&signed));
    format!("{signed}.{mac}")
}

/// The user of a valid `token`, checked against `keys` at `now_ms`.
pub fn verify(keys: &[TokenKey], token: &str, now_ms: i64) -> Result<String, TokenError> {
    let (signed, mac) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let mut parts = signed.split('.');
    let (Some(VERSION), Some(id), Some(expiry), Some(user), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let id: u32 = id.parse().map_err(|_| TokenError::Malformed)?;
    let expiry: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| TokenError::Malformed)?;
    let key = keys.iter().find(|k| k.id == id).ok_or(TokenError::UnknownKey)?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &key.secret), signed.as_bytes(), &mac)
        .map_err(|_| TokenError::BadSignature)?;
    if now_ms >= expiry {
        return Err(TokenError::Expired);
    }
    let user = URL_SAFE_NO_PAD.decode(user).map_err(|_| TokenError::Malformed)?;
    String::from_utf8(user).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_until_it_expires_with_a_held_key() {
        let (k1, k2) = (TokenKey::generate(1), TokenKey::generate(2));
        let token = issue(&k1, "a.l,i=ce", 1_000);
        assert_eq!(verify(&[k2.clone(), k1.clone()], &token, 999).unwrap(), "a.l,i=ce");
        assert_eq!(verify(std::slice::from_ref(&k1), &token, 1_000), Err(TokenError::Expired));
        assert_eq!(verify(std::slice::from_ref(&k2), &token, 0), Err(TokenError::UnknownKey));
        let forged = TokenKey { id: 1, secret: k2.secret.clone() };
        assert_eq!(verify(&[forged], &token, 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn altered_tokens_are_refused() {
        let k = TokenKey::generate(7);
        let token = issue(&k, "alice", i64::MAX);
        let longer = token.replace(&format!(".{}.", i64::MAX), ".9223372036854775806.");
        assert_eq!(verify(std::slice::from_ref(&k), &longer, 0), Err(TokenError::BadSignature));
        let other = issue(&k, "bob", i64::MAX);
        let (signed, _) = other.rsplit_once('.').unwrap();
        let (_, mac) = token.rsplit_once('.').unwrap();
        assert_eq!(verify(std::slice::from_ref(&k), &format!("{signed}.{mac}"), 0), Err(TokenError::BadSignature));
        for bad in ["", "gt1", "gt1.x.1.YQ.AA", "gt2.7.1.YQ.AA", "gt1.7.1.YQ.AA.BB"] {
            assert_eq!(verify(std::slice::from_ref(&k), bad, 0), Err(TokenError::Malformed), "{bad}");
        }
    }
}
