//! A user's SCRAM credential: what a server stores to check logins.
//!
//! RFC 5802: SaltedPassword = Hi(password, salt, i); ClientKey =
//! HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey);
//! ServerKey = HMAC(SaltedPassword, "Server Key"). Only the salt, `i`,
//! StoredKey and ServerKey are kept. StoredKey checks a client's proof but
//! cannot produce one, so a copy of the store does not log anyone in.

use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;

use crate::error::AuthError;
use crate::mechanism::Mechanism;

/// The fewest iterations accepted (RFC 7677 asks for at least 4096).
pub const MIN_ITERATIONS: u32 = 4096;
/// The most iterations accepted (Kafka's bound: each login costs this many
/// HMACs on the client, and a PLAIN login as many on the server).
pub const MAX_ITERATIONS: u32 = 16384;
/// What new credentials use unless told otherwise.
pub const DEFAULT_ITERATIONS: u32 = 8192;
/// Length of the salts Goulette generates.
pub const SALT_LEN: usize = 32;

/// A stored SCRAM credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub mechanism: Mechanism,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    // The keys are secrets enough (they let a server impersonate this one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// `len` random bytes from the system's generator.
pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    // SystemRandom reads the OS generator (getrandom); it fails only where
    // the OS has none, and a server without one must not go on.
    #[allow(clippy::expect_used)]
    ring::rand::SystemRandom::new().fill(&mut out).expect("the operating system's random generator failed");
    out
}

impl ScramCredential {
    /// A credential for `password` with a new random salt.
    pub fn new(mechanism: Mechanism, password: &str, iterations: u32) -> Result<ScramCredential, AuthError> {
        ScramCredential::with_salt(mechanism, password, &random_bytes(SALT_LEN), iterations)
    }

    /// A credential for `password` with `salt`.
    pub fn with_salt(
        mechanism: Mechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, AuthError> {
        check_iterations(iterations)?;
        let salted = mechanism.salted_password(password.as_bytes(), salt, iterations);
        ScramCredential::from_salted_password(mechanism, salt, iterations, &salted)
    }

    /// The credential of an already salted password (what Kafka's
    /// AlterUserScramCredentials sends, so that no password crosses the
    /// network).
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: &[u8],
        iterations: u32,
        salted_password: &[u8],
    ) -> Result<ScramCredential, AuthError> {
        check_iterations(iterations)?;
        if salt.is_empty() {
            return Err(AuthError::InvalidCredential("the salt is empty".into()));
        }
        if salted_password.len() != mechanism.key_len() {
            return Err(AuthError::InvalidCredential(format!(
                "a {mechanism} salted password has {} bytes, not {}",
                mechanism.key_len(),
                salted_password.len()
            )));
        }
        let client_key = mechanism.mac(salted_password, b"Client Key");
        Ok(ScramCredential {
            mechanism,
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.mac(salted_password, b"Server Key"),
        })
    }

    /// Checks a credential read from storage or received from an admin.
    pub fn validate(&self) -> Result<(), AuthError> {
        check_iterations(self.iterations)?;
        let len = self.mechanism.key_len();
        if self.salt.is_empty() || self.stored_key.len() != len || self.server_key.len() != len {
            return Err(AuthError::InvalidCredential(format!(
                "a {} credential needs a salt and keys of {len} bytes",
                self.mechanism
            )));
        }
        Ok(())
    }

    /// Whether `password` is this credential's (for SASL/PLAIN): costs one
    /// salting, as a SCRAM client's login does. Constant time in the keys.
    pub fn verify_password(&self, password: &str) -> bool {
        let salted = self.mechanism.salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = self.mechanism.mac(&salted, b"Client Key");
        self.stored_key.ct_eq(&self.mechanism.hash(&client_key)).into()
    }
}

fn check_iterations(iterations: u32) -> Result<(), AuthError> {
    if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        Ok(())
    } else {
        Err(AuthError::InvalidCredential(format!(
            "{iterations} iterations: between {MIN_ITERATIONS} and {MAX_ITERATIONS} are accepted"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_checks_its_password_only() {
        for m in Mechanism::ALL {
            let c = ScramCredential::new(m, "pencil", MIN_ITERATIONS).unwrap();
            c.validate().unwrap();
            assert!(c.verify_password("pencil"));
            assert!(!c.verify_password("pencil "));
            assert!(!c.verify_password(""));
            let again = ScramCredential::new(m, "pencil", MIN_ITERATIONS).unwrap();
            assert_ne!(c.salt, again.salt, "each credential gets its own salt");
            assert_ne!(c.stored_key, again.stored_key);
        }
    }

    #[test]
    fn weak_or_broken_credentials_are_refused() {
        let m = Mechanism::ScramSha256;
        assert!(matches!(ScramCredential::new(m, "p", 4095), Err(AuthError::InvalidCredential(_))));
        assert!(matches!(ScramCredential::new(m, "p", MAX_ITERATIONS + 1), Err(AuthError::InvalidCredential(_))));
        assert!(ScramCredential::from_salted_password(m, b"salt", 4096, &[0; 64]).is_err());
        assert!(ScramCredential::from_salted_password(m, b"", 4096, &[0; 32]).is_err());
        let mut c = ScramCredential::new(m, "p", 4096).unwrap();
        c.stored_key.pop();
        assert!(c.validate().is_err());
    }

    #[test]
    fn debug_shows_no_key() {
        let c = ScramCredential::new(Mechanism::ScramSha512, "p", 4096).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("ScramSha512") && !shown.contains("stored_key"), "{shown}");
    }
}
