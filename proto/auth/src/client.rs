//! The client side of a SCRAM exchange: what `goulette` sends to log in on
//! gRPC, and what the tests use against the Kafka listener's server side.

use subtle::ConstantTimeEq;

use crate::credential::{MAX_ITERATIONS, MIN_ITERATIONS};
use crate::error::AuthError;
use crate::mechanism::Mechanism;
use crate::wire::{self, SCRAM};

/// One login's client state.
pub struct ScramClient {
    mechanism: Mechanism,
    user: String,
    password: String,
    client_nonce: String,
    /// Set by `respond`: the server signature to expect.
    expected_server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient").field("mechanism", &self.mechanism).field("user", &self.user).finish()
    }
}

impl ScramClient {
    /// A login as `user` with a random nonce.
    pub fn new(mechanism: Mechanism, user: &str, password: &str) -> ScramClient {
        ScramClient::with_nonce(mechanism, user, password, &wire::new_nonce())
    }

    /// A login with a given client nonce (test vectors).
    pub fn with_nonce(mechanism: Mechanism, user: &str, password: &str, nonce: &str) -> ScramClient {
        ScramClient {
            mechanism,
            user: user.to_owned(),
            password: password.to_owned(),
            client_nonce: nonce.to_owned(),
            expected_server_signature: None,
        }
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", wire::escape_name(&self.user), self.client_nonce)
    }

    /// The client's first message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare()).into_bytes()
    }

    /// The client's final message, answering the server's first one.
    /// Refuses a server that asks for fewer iterations than Goulette
    /// accepts (a downgrade) or far more (a client made to burn CPU).
    pub fn respond(&mut self, server_first: &[u8]) -> Result<Vec<u8>, AuthError> {
        let text = wire::text(server_first)?;
        let mut parts = text.split(',');
        let nonce = wire::attribute(parts.next(), 'r')?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(AuthError::malformed(SCRAM, "the server's nonce does not extend the client's"));
        }
        let salt = wire::unb64("s", wire::attribute(parts.next(), 's')?)?;
        let iterations: u32 = wire::attribute(parts.next(), 'i')?
            .parse()
            .map_err(|_| AuthError::malformed(SCRAM, "the iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(AuthError::ServerNotVerified(format!("the server asks for {iterations} iterations")));
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.mac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", wire::b64(b"n,,"));
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare());
        let client_signature = m.mac(&stored_key, auth_message.as_bytes());
        let proof = wire::xor(&client_key, &client_signature);
        let server_key = m.mac(&salted, b"Server Key");
        self.expected_server_signature = Some(m.mac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", wire::b64(&proof)).into_bytes())
    }

    /// Checks the server's final message (`v=…`, or `e=…` for an error).
    pub fn verify(&self, server_final: &[u8]) -> Result<(), AuthError> {
        let text = wire::text(server_final)?;
        if let Some(error) = text.strip_prefix("e=") {
            return Err(AuthError::ServerNotVerified(format!("the server answered {error}")));
        }
        let signature = wire::unb64("v", wire::attribute(Some(text), 'v')?)?;
        let expected = self
            .expected_server_signature
            .as_ref()
            .ok_or_else(|| AuthError::malformed(SCRAM, "a server's final message before the client's"))?;
        if bool::from(signature.ct_eq(expected)) {
            Ok(())
        } else {
            Err(AuthError::ServerNotVerified("its signature does not match".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Decoy, ScramServer};
    use crate::wire::unb64;

    /// RFC 7677 §3: the SCRAM-SHA-256 example, both sides.
    #[test]
    fn rfc_7677_test_vector() {
        let m = Mechanism::ScramSha256;
        let mut client = ScramClient::with_nonce(m, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");

        let salt = unb64("s", "W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential = crate::ScramCredential::with_salt(m, "pencil", &salt, 4096).unwrap();
        let (server, server_first) = ScramServer::start_with_nonce(
            m,
            &client.first(),
            |user| (user == "user").then(|| credential.clone()),
            &Decoy::random(),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(server_first.clone()).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let client_final = client.respond(&server_first).unwrap();
        assert_eq!(
            String::from_utf8(client_final.clone()).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let (user, server_final) = server.finish(&client_final).unwrap();
        assert_eq!(user, "user");
        assert_eq!(String::from_utf8(server_final.clone()).unwrap(), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        client.verify(&server_final).unwrap();
    }

    #[test]
    fn a_server_that_downgrades_or_lies_is_refused() {
        let m = Mechanism::ScramSha512;
        let mut client = ScramClient::with_nonce(m, "u", "p", "abc");
        let weak = format!("r=abcxyz,s={},i=1000", wire::b64(b"salt"));
        assert!(matches!(client.respond(weak.as_bytes()), Err(AuthError::ServerNotVerified(_))));
        assert!(client.respond(b"r=other,s=c2FsdA==,i=4096").is_err());
        client.respond(format!("r=abcxyz,s={},i=4096", wire::b64(b"salt")).as_bytes()).unwrap();
        assert!(matches!(client.verify(b"v=AAAA"), Err(AuthError::ServerNotVerified(_))));
        assert!(matches!(client.verify(b"e=invalid-proof"), Err(AuthError::ServerNotVerified(_))));
    }
}
