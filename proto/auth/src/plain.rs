//! SASL/PLAIN (RFC 4616): `[authzid] NUL user NUL password`, checked
//! against the user's SCRAM credential. The password crosses the wire, so
//! listeners offer PLAIN only over TLS.

use crate::credential::ScramCredential;
use crate::error::AuthError;
use crate::server::Decoy;

const PLAIN: &str = "PLAIN";

/// A PLAIN message's parts.
#[derive(PartialEq, Eq)]
pub struct PlainMessage {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage").field("user", &self.user).finish_non_exhaustive()
    }
}

/// Reads a PLAIN message; an authorization identity other than the user is
/// not offered (as Kafka).
pub fn parse(message: &[u8]) -> Result<PlainMessage, AuthError> {
    let text = std::str::from_utf8(message).map_err(|_| AuthError::malformed(PLAIN, "not UTF-8"))?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::malformed(PLAIN, "expected `authzid NUL user NUL password`"));
    };
    if user.is_empty() {
        return Err(AuthError::malformed(PLAIN, "the user name is empty"));
    }
    if !authzid.is_empty() && authzid != user {
        return Err(AuthError::Unsupported("an authorization identity other than the user".into()));
    }
    Ok(PlainMessage { user: user.to_owned(), password: password.to_owned() })
}

/// Checks a PLAIN login against the user's credentials (any mechanism;
/// the strongest is used). An unknown user costs the same salting as a
/// known one and fails the same way.
pub fn authenticate(
    message: &[u8],
    credentials_of: impl FnOnce(&str) -> Vec<ScramCredential>,
    decoy: &Decoy,
) -> Result<String, AuthError> {
    let login = parse(message)?;
    let credentials = credentials_of(&login.user);
    let strongest = credentials.iter().max_by_key(|c| c.mechanism);
    let ok = match strongest {
        Some(c) => c.verify_password(&login.password),
        None => {
            // The same salting as a real check, whose answer is always no.
            std::hint::black_box(decoy.plain_decoy(&login.user).verify_password(&login.password));
            false
        }
    };
    if ok { Ok(login.user) } else { Err(AuthError::Failed) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Mechanism;

    #[test]
    fn plain_messages_parse() {
        assert_eq!(parse(b"\0alice\0pw").unwrap(), PlainMessage { user: "alice".into(), password: "pw".into() });
        assert_eq!(parse(b"alice\0alice\0").unwrap().password, "");
        assert!(matches!(parse(b"bob\0alice\0pw"), Err(AuthError::Unsupported(_))));
        assert!(matches!(parse(b"alice\0pw"), Err(AuthError::Malformed { .. })));
        assert!(matches!(parse(b"\0\0pw"), Err(AuthError::Malformed { .. })));
        assert!(matches!(parse(b"\0a\0b\0c"), Err(AuthError::Malformed { .. })));
    }

    #[test]
    fn plain_checks_the_strongest_credential() {
        let decoy = Decoy::random();
        let creds = vec![
            ScramCredential::new(Mechanism::ScramSha256, "old", 4096).unwrap(),
            ScramCredential::new(Mechanism::ScramSha512, "new", 4096).unwrap(),
        ];
        assert_eq!(authenticate(b"\0alice\0new", |_| creds.clone(), &decoy).unwrap(), "alice");
        assert_eq!(authenticate(b"\0alice\0old", |_| creds.clone(), &decoy), Err(AuthError::Failed));
        assert_eq!(authenticate(b"\0ghost\0new", |_| Vec::new(), &decoy), Err(AuthError::Failed));
    }
}
