//! Credentials as the `ScramCredential` message of Goulette's protocol
//! (`security.proto`), checked on the way in.

use goulette_proto::v1 as pb;

use crate::credential::ScramCredential;
use crate::error::AuthError;
use crate::mechanism::Mechanism;

/// The protocol's number for `mechanism`.
pub fn mechanism_to_proto(mechanism: Mechanism) -> pb::ScramMechanism {
    match mechanism {
        Mechanism::ScramSha256 => pb::ScramMechanism::ScramSha256,
        Mechanism::ScramSha512 => pb::ScramMechanism::ScramSha512,
    }
}

/// The mechanism of a protocol number.
pub fn mechanism_from_proto(value: i32) -> Result<Mechanism, AuthError> {
    match pb::ScramMechanism::try_from(value) {
        Ok(pb::ScramMechanism::ScramSha256) => Ok(Mechanism::ScramSha256),
        Ok(pb::ScramMechanism::ScramSha512) => Ok(Mechanism::ScramSha512),
        _ => Err(AuthError::InvalidCredential(format!("unknown SCRAM mechanism {value}"))),
    }
}

impl From<&ScramCredential> for pb::ScramCredential {
    fn from(c: &ScramCredential) -> pb::ScramCredential {
        pb::ScramCredential {
            mechanism: mechanism_to_proto(c.mechanism) as i32,
            salt: c.salt.clone().into(),
            iterations: c.iterations,
            stored_key: c.stored_key.clone().into(),
            server_key: c.server_key.clone().into(),
        }
    }
}

impl TryFrom<&pb::ScramCredential> for ScramCredential {
    type Error = AuthError;

    fn try_from(c: &pb::ScramCredential) -> Result<ScramCredential, AuthError> {
        let credential = ScramCredential {
            mechanism: mechanism_from_proto(c.mechanism)?,
            salt: c.salt.to_vec(),
            iterations: c.iterations,
            stored_key: c.stored_key.to_vec(),
            server_key: c.server_key.to_vec(),
        };
        credential.validate()?;
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_and_bad_ones_are_refused() {
        let c = ScramCredential::new(Mechanism::ScramSha512, "pw", 4096).unwrap();
        let message = pb::ScramCredential::from(&c);
        assert_eq!(ScramCredential::try_from(&message).unwrap(), c);
        let unknown = pb::ScramCredential { mechanism: 0, ..message.clone() };
        assert!(ScramCredential::try_from(&unknown).is_err());
        let weak = pb::ScramCredential { iterations: 1, ..message };
        assert!(ScramCredential::try_from(&weak).is_err());
    }
}
