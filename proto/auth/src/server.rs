//! The server side of a SCRAM exchange (RFC 5802 §3, without channel
//! binding, as Kafka):
//!
//! ```text
//! client-first  n,,n=user,r=cnonce
//! server-first  r=cnonce+snonce,s=salt,i=iterations
//! client-final  c=biws,r=cnonce+snonce,p=proof
//! server-final  v=server-signature
//! ```
//!
//! An unknown user goes through the same two steps with a *decoy*
//! credential (a salt derived from the user name, so asking twice gives the
//! same one, and keys nobody knows) and fails at the same place, after the
//! same work, with the same error as a wrong password.

use subtle::ConstantTimeEq;

use crate::credential::{DEFAULT_ITERATIONS, ScramCredential, random_bytes};
use crate::error::AuthError;
use crate::mechanism::Mechanism;
use crate::wire::{self, SCRAM};

/// What answers logins of users that do not exist: a secret from which
/// their salts are derived.
#[derive(Clone)]
pub struct Decoy {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Decoy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoy")
    }
}

impl Decoy {
    /// A decoy with a random secret.
    pub fn random() -> Decoy {
        Decoy { secret: random_bytes(32) }
    }

    /// A decoy with `secret` (servers sharing one answer an unknown user
    /// with the same salt, as they would a real one).
    pub fn from_secret(secret: &[u8]) -> Decoy {
        Decoy { secret: secret.to_vec() }
    }

    /// What a PLAIN login of an unknown user is checked against.
    pub(crate) fn plain_decoy(&self, user: &str) -> ScramCredential {
        self.credential(Mechanism::ScramSha512, user)
    }

    fn credential(&self, mechanism: Mechanism, user: &str) -> ScramCredential {
        let salt = mechanism.mac(&self.secret, format!("salt:{mechanism}:{user}").as_bytes());
        let key_len = mechanism.key_len();
        ScramCredential {
            mechanism,
            salt: salt[..key_len.min(salt.len())].to_vec(),
            iterations: DEFAULT_ITERATIONS,
            // Random: no client key hashes to it.
            stored_key: random_bytes(key_len),
            server_key: random_bytes(key_len),
        }
    }
}

/// An exchange after the server's first message, waiting for the client's
/// final one.
pub struct ScramServer {
    user: String,
    /// False for a decoy: the exchange fails at its end whatever comes.
    known: bool,
    credential: ScramCredential,
    gs2_header: String,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl std::fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramServer").field("user", &self.user).finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Reads the client's first message, looks the user up with
    /// `credential_of`, and answers with the server's first message.
    pub fn start(
        mechanism: Mechanism,
        client_first: &[u8],
        credential_of: impl FnOnce(&str) -> Option<ScramCredential>,
        decoy: &Decoy,
    ) -> Result<(ScramServer, Vec<u8>), AuthError> {
        let server_nonce = wire::new_nonce();
        ScramServer::start_with_nonce(mechanism, client_first, credential_of, decoy, &server_nonce)
    }

    /// [`ScramServer::start`] with a given server nonce (test vectors).
    pub fn start_with_nonce(
        mechanism: Mechanism,
        client_first: &[u8],
        credential_of: impl FnOnce(&str) -> Option<ScramCredential>,
        decoy: &Decoy,
        server_nonce: &str,
    ) -> Result<(ScramServer, Vec<u8>), AuthError> {
        let text = wire::text(client_first)?;
        let (gs2_header, client_first_bare) = split_gs2_header(text)?;
        let mut parts = client_first_bare.split(',');
        let first = parts.next();
        if first.is_some_and(|p| p.starts_with("m=")) {
            return Err(AuthError::Unsupported("mandatory SCRAM extensions".into()));
        }
        let user = wire::unescape_name(wire::attribute(first, 'n')?)?;
        let client_nonce = wire::attribute(parts.next(), 'r')?;
        wire::check_nonce(client_nonce)?;
        for extension in parts {
            if extension.starts_with("tokenauth") {
                return Err(AuthError::Unsupported("delegation tokens".into()));
            }
        }
        if let Some(authzid) = gs2_header.split(',').nth(1).and_then(|a| a.strip_prefix("a=")) {
            // Kafka's rule: acting as another user is not offered.
            if wire::unescape_name(authzid)? != user {
                return Err(AuthError::Unsupported("an authorization identity other than the user".into()));
            }
        }
        let (credential, known) = match credential_of(&user).filter(|c| c.mechanism == mechanism) {
            Some(c) => (c, true),
            None => (decoy.credential(mechanism, &user), false),
        };
        let nonce = format!("{client_nonce}{server_nonce}");
        let server_first = format!("r={nonce},s={},i={}", wire::b64(&credential.salt), credential.iterations);
        let exchange = ScramServer {
            user,
            known,
            credential,
            gs2_header: gs2_header.to_owned(),
            nonce,
            client_first_bare: client_first_bare.to_owned(),
            server_first: server_first.clone(),
        };
        Ok((exchange, server_first.into_bytes()))
    }

    /// The user the client claims to be.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The exchange's mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.credential.mechanism
    }

    /// Checks the client's proof: the authenticated user and the server's
    /// final message (its own proof), or [`AuthError::Failed`].
    pub fn finish(self, client_final: &[u8]) -> Result<(String, Vec<u8>), AuthError> {
        let text = wire::text(client_final)?;
        let (without_proof, proof) =
            text.rsplit_once(",p=").ok_or_else(|| AuthError::malformed(SCRAM, "the client's proof is missing"))?;
        let mut parts = without_proof.split(',');
        let binding = wire::unb64("c", wire::attribute(parts.next(), 'c')?)?;
        if binding != self.gs2_header.as_bytes() {
            return Err(AuthError::malformed(SCRAM, "the channel binding does not repeat the GS2 header"));
        }
        // The nonce must end with the one the server sent: librdkafka
        // sends its client nonce again in front of it, and Kafka accepts
        // that (its ScramSaslServer checks `endsWith`), so Goulette does.
        if !wire::attribute(parts.next(), 'r')?.ends_with(&self.nonce) {
            return Err(AuthError::malformed(SCRAM, "the nonce is not the one the server sent"));
        }
        let proof = wire::unb64("p", proof)?;
        let m = self.credential.mechanism;
        let auth_message = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
        let client_signature = m.mac(&self.credential.stored_key, auth_message.as_bytes());
        // Same work whatever the proof's length or the user's existence.
        let proof = if proof.len() == client_signature.len() { proof } else { vec![0; client_signature.len()] };
        let client_key = wire::xor(&proof, &client_signature);
        let matches: bool = m.hash(&client_key).ct_eq(&self.credential.stored_key).into();
        let server_signature = m.mac(&self.credential.server_key, auth_message.as_bytes());
        if !(matches && self.known) {
            return Err(AuthError::Failed);
        }
        Ok((self.user, format!("v={}", wire::b64(&server_signature)).into_bytes()))
    }
}

/// Splits `gs2-header client-first-bare`, refusing channel binding.
fn split_gs2_header(text: &str) -> Result<(&str, &str), AuthError> {
    let bad = || AuthError::malformed(SCRAM, "the client's first message must start with a GS2 header (`n,,`)");
    let flag_end = text.find(',').ok_or_else(bad)?;
    let authzid_end = text[flag_end + 1..].find(',').map(|i| flag_end + 1 + i).ok_or_else(bad)?;
    match &text[..flag_end] {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(AuthError::Unsupported("SCRAM channel binding (-PLUS)".into())),
        _ => return Err(bad()),
    }
    let authzid = &text[flag_end + 1..authzid_end];
    if !authzid.is_empty() && !authzid.starts_with("a=") {
        return Err(bad());
    }
    Ok((&text[..=authzid_end], &text[authzid_end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ScramClient;

    fn login(
        mechanism: Mechanism,
        stored: Option<&ScramCredential>,
        user: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let decoy = Decoy::random();
        let mut client = ScramClient::new(mechanism, user, password);
        let (server, server_first) = ScramServer::start(mechanism, &client.first(), |_| stored.cloned(), &decoy)?;
        let client_final = client.respond(&server_first)?;
        let (who, server_final) = server.finish(&client_final)?;
        assert_eq!(who, user);
        client.verify(&server_final)
    }

    #[test]
    fn right_password_logs_in_and_both_sides_are_proven() {
        for m in Mechanism::ALL {
            let c = ScramCredential::new(m, "secret", 4096).unwrap();
            login(m, Some(&c), "a,l=ice", "secret").unwrap();
        }
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        let m = Mechanism::ScramSha512;
        let c = ScramCredential::new(m, "secret", 4096).unwrap();
        assert_eq!(login(m, Some(&c), "alice", "guess"), Err(AuthError::Failed));
        assert_eq!(login(m, None, "nobody", "guess"), Err(AuthError::Failed));
        // A credential of the other mechanism is no credential for this one.
        let other = ScramCredential::new(Mechanism::ScramSha256, "secret", 4096).unwrap();
        assert_eq!(login(m, Some(&other), "alice", "secret"), Err(AuthError::Failed));
    }

    #[test]
    fn an_unknown_user_gets_a_stable_salt_and_the_default_iterations() {
        let decoy = Decoy::from_secret(b"cluster secret");
        let first = |user: &str| {
            let msg = format!("n,,n={user},r=abc");
            ScramServer::start(Mechanism::ScramSha256, msg.as_bytes(), |_| None, &decoy).unwrap().1
        };
        let salt = |answer: Vec<u8>| String::from_utf8(answer).unwrap().split(',').nth(1).unwrap().to_owned();
        assert_eq!(salt(first("ghost")), salt(first("ghost")));
        assert_ne!(salt(first("ghost")), salt(first("phantom")));
        assert!(String::from_utf8(first("ghost")).unwrap().ends_with(&format!(",i={DEFAULT_ITERATIONS}")));
    }

    #[test]
    fn malformed_and_unsupported_messages_are_named() {
        let m = Mechanism::ScramSha256;
        let decoy = Decoy::random();
        let start = |msg: &str| ScramServer::start(m, msg.as_bytes(), |_| None, &decoy).map(|_| ());
        assert!(matches!(start("n=alice,r=abc"), Err(AuthError::Malformed { .. })));
        assert!(matches!(start("p=tls-unique,,n=alice,r=abc"), Err(AuthError::Unsupported(_))));
        assert!(matches!(start("n,,m=x,n=alice,r=abc"), Err(AuthError::Unsupported(_))));
        assert!(matches!(start("n,,n=alice,r=abc,tokenauth=true"), Err(AuthError::Unsupported(_))));
        assert!(matches!(start("n,a=bob,n=alice,r=abc"), Err(AuthError::Unsupported(_))));
        assert!(start("n,a=alice,n=alice,r=abc").is_ok());
        assert!(matches!(start("n,,n=alice"), Err(AuthError::Malformed { .. })));
        assert!(matches!(start("n,,n=alice,r=a b"), Err(AuthError::Malformed { .. })));
        assert!(matches!(ScramServer::start(m, &[0xff, 0xfe], |_| None, &decoy), Err(AuthError::Malformed { .. })));

        let c = ScramCredential::new(m, "secret", 4096).unwrap();
        let (server, _) =
            ScramServer::start_with_nonce(m, b"n,,n=alice,r=abc", |_| Some(c.clone()), &decoy, "xyz").unwrap();
        assert!(matches!(server.finish(b"c=biws,r=abcxyz"), Err(AuthError::Malformed { .. })));
        let (server, _) =
            ScramServer::start_with_nonce(m, b"n,,n=alice,r=abc", |_| Some(c.clone()), &decoy, "xyz").unwrap();
        assert!(matches!(server.finish(b"c=biws,r=abcOTHER,p=AAAA"), Err(AuthError::Malformed { .. })));
        // librdkafka's form (its nonce again in front) reaches the proof check.
        let (server, _) =
            ScramServer::start_with_nonce(m, b"n,,n=alice,r=abc", |_| Some(c.clone()), &decoy, "xyz").unwrap();
        assert_eq!(server.finish(b"c=biws,r=abcabcxyz,p=AAAA").map(|_| ()), Err(AuthError::Failed));
        let (server, _) = ScramServer::start_with_nonce(m, b"n,,n=alice,r=abc", |_| Some(c), &decoy, "xyz").unwrap();
        // A proof of the wrong length is a failed login, not a crash.
        assert_eq!(server.finish(b"c=biws,r=abcxyz,p=AAAA").map(|_| ()), Err(AuthError::Failed));
    }
}
