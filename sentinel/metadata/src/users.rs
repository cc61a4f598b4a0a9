//! Users and their SCRAM credentials (`users/{name}`), as JSON with the
//! binary fields in base64, so `etcdctl get` shows them. A record holds no
//! password, only what checks one (see `goulette_auth::credential`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use goulette_auth::{AuthError, Mechanism, ScramCredential};
use goulette_proto::v1 as pb;
use serde::{Deserialize, Serialize};

/// The longest user name accepted, in bytes.
pub const MAX_USER_NAME: usize = 256;

/// A user (`users/{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// At most one per mechanism.
    pub credentials: Vec<CredentialRecord>,
}

/// One stored SCRAM credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// The SASL name (`SCRAM-SHA-512`).
    pub mechanism: String,
    /// Base64.
    pub salt: String,
    pub iterations: u32,
    /// Base64.
    pub stored_key: String,
    /// Base64.
    pub server_key: String,
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl From<&ScramCredential> for CredentialRecord {
    fn from(c: &ScramCredential) -> CredentialRecord {
        CredentialRecord {
            mechanism: c.mechanism.name().to_owned(),
            salt: STANDARD.encode(&c.salt),
            iterations: c.iterations,
            stored_key: STANDARD.encode(&c.stored_key),
            server_key: STANDARD.encode(&c.server_key),
        }
    }
}

impl TryFrom<&CredentialRecord> for ScramCredential {
    type Error = AuthError;

    fn try_from(r: &CredentialRecord) -> Result<ScramCredential, AuthError> {
        let field = |name: &str, value: &str| {
            STANDARD.decode(value).map_err(|_| AuthError::InvalidCredential(format!("{name} is not base64")))
        };
        let credential = ScramCredential {
            mechanism: Mechanism::parse(&r.mechanism)
                .ok_or_else(|| AuthError::InvalidCredential(format!("unknown mechanism {}", r.mechanism)))?,
            salt: field("salt", &r.salt)?,
            iterations: r.iterations,
            stored_key: field("stored_key", &r.stored_key)?,
            server_key: field("server_key", &r.server_key)?,
        };
        credential.validate()?;
        Ok(credential)
    }
}

impl UserRecord {
    /// The credentials that check out (a damaged one is left out: it
    /// could log no one in anyway).
    pub fn scram_credentials(&self) -> Vec<ScramCredential> {
        self.credentials.iter().filter_map(|c| ScramCredential::try_from(c).ok()).collect()
    }

    /// The user as brokers receive it.
    pub fn to_proto(&self) -> pb::User {
        pb::User {
            name: self.name.clone(),
            credentials: self.scram_credentials().iter().map(pb::ScramCredential::from).collect(),
        }
    }

    /// What `ListUsers` shows: mechanisms and iterations, no key.
    pub fn info(&self) -> pb::UserInfo {
        pb::UserInfo {
            name: self.name.clone(),
            credentials: self
                .scram_credentials()
                .iter()
                .map(|c| pb::ScramCredentialInfo {
                    mechanism: goulette_auth::proto::mechanism_to_proto(c.mechanism) as i32,
                    iterations: c.iterations,
                })
                .collect(),
        }
    }
}

/// The keys signing gRPC bearer tokens (`security/token-keys`), newest
/// last. Secrets: whoever holds one can make tokens for any user.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeysRecord {
    pub keys: Vec<TokenKeyRecord>,
    /// Base64: what unknown users' SCRAM salts derive from, made once and
    /// never rotated, so that an unknown user's salt is the same on every
    /// server and across restarts and days, like a real user's (a salt that
    /// changed would tell a stranger from a user). Empty in records written
    /// before it existed; the leader adds it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub decoy_secret: String,
}

impl std::fmt::Debug for TokenKeysRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

/// One token key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenKeyRecord {
    pub id: u32,
    /// Base64.
    pub secret: String,
    /// Wall-clock ms of its creation (keys rotate by age).
    pub created_ms: i64,
}

impl std::fmt::Debug for TokenKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeyRecord")
            .field("id", &self.id)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

impl TokenKeysRecord {
    /// The keys, decoded (a damaged one is left out).
    pub fn keys(&self) -> Vec<goulette_auth::token::TokenKey> {
        self.keys
            .iter()
            .filter_map(|k| {
                let secret = STANDARD.decode(&k.secret).ok().filter(|s| s.len() >= 16)?;
                Some(goulette_auth::token::TokenKey { id: k.id, secret })
            })
            .collect()
    }

    /// The decoy secret, decoded (`None`: not made yet, or damaged).
    pub fn decoy_secret(&self) -> Option<Vec<u8>> {
        STANDARD.decode(&self.decoy_secret).ok().filter(|s| s.len() >= 16)
    }

    /// These keys with a decoy secret, made if missing or damaged.
    pub fn with_decoy_secret(mut self) -> TokenKeysRecord {
        if self.decoy_secret().is_none() {
            self.decoy_secret = STANDARD.encode(goulette_auth::token::TokenKey::generate(0).secret);
        }
        self
    }

    /// The keys as brokers receive them.
    pub fn to_proto(&self) -> Vec<pb::TokenKey> {
        self.keys().into_iter().map(|k| pb::TokenKey { id: k.id, secret: k.secret.into() }).collect()
    }

    /// These keys with a new one added (the oldest dropped beyond `keep`).
    pub fn rotated(&self, now_ms: i64, keep: usize) -> TokenKeysRecord {
        let id = self.keys.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        let key = goulette_auth::token::TokenKey::generate(id);
        let mut keys = self.keys.clone();
        keys.push(TokenKeyRecord { id, secret: STANDARD.encode(&key.secret), created_ms: now_ms });
        let excess = keys.len().saturating_sub(keep.max(1));
        keys.drain(..excess);
        TokenKeysRecord { keys, decoy_secret: self.decoy_secret.clone() }.with_decoy_secret()
    }

    /// When the newest key was made (none: no key).
    pub fn newest_ms(&self) -> Option<i64> {
        self.keys.last().map(|k| k.created_ms)
    }
}

/// Why `name` cannot be a user name, if it cannot.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a user name cannot be empty".into());
    }
    if name.len() > MAX_USER_NAME {
        return Err(format!("a user name has at most {MAX_USER_NAME} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err("a user name cannot hold control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_hold_no_password() {
        let c = ScramCredential::new(Mechanism::ScramSha256, "hunter2", 4096).unwrap();
        let record = UserRecord { name: "alice".into(), credentials: vec![CredentialRecord::from(&c)] };
        let json = serde_json::to_string(&record).unwrap();
        assert!(!json.contains("hunter2"));
        let back: UserRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.scram_credentials(), vec![c]);
        assert_eq!(back.info().credentials[0].iterations, 4096);
    }

    #[test]
    fn damaged_credentials_are_left_out() {
        let c = ScramCredential::new(Mechanism::ScramSha512, "pw", 4096).unwrap();
        let mut bad = CredentialRecord::from(&c);
        bad.stored_key = "not base64!".into();
        let record = UserRecord { name: "u".into(), credentials: vec![bad, CredentialRecord::from(&c)] };
        assert_eq!(record.scram_credentials(), vec![c]);
    }

    #[test]
    fn token_keys_rotate_keeping_the_newest() {
        let none = TokenKeysRecord::default();
        let one = none.rotated(10, 2);
        let three = one.rotated(20, 2).rotated(30, 2);
        assert_eq!(three.keys.iter().map(|k| k.id).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(three.newest_ms(), Some(30));
        assert_eq!(three.keys().len(), 2);
        assert_ne!(three.keys()[0].secret, three.keys()[1].secret);
        assert!(!format!("{three:?}").contains(&three.keys[0].secret));
    }

    #[test]
    fn the_decoy_secret_is_made_once_and_kept_by_rotations() {
        let one = TokenKeysRecord::default().rotated(10, 2);
        let secret = one.decoy_secret().unwrap();
        assert_eq!(one.rotated(20, 2).rotated(30, 2).decoy_secret(), Some(secret.clone()));
        assert!(!format!("{one:?}").contains(&one.decoy_secret), "a secret in a log line");
        // A record written before the field existed gets one.
        let old: TokenKeysRecord = serde_json::from_str(r#"{"keys":[]}"#).unwrap();
        assert_eq!(old.decoy_secret(), None);
        let mended = old.with_decoy_secret();
        assert!(mended.decoy_secret().is_some_and(|s| s.len() >= 16));
        assert_eq!(mended.clone().with_decoy_secret(), mended, "made once");
    }

    #[test]
    fn user_names_are_checked() {
        assert!(check_user_name("alice@example.com").is_ok());
        assert!(check_user_name("").is_err());
        assert!(check_user_name("a\nb").is_err());
        assert!(check_user_name(&"x".repeat(257)).is_err());
    }
}
