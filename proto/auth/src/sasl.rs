//! The SASL mechanisms a listener offers, by their names.

use crate::mechanism::Mechanism;

/// A SASL mechanism Goulette serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SaslMechanism {
    /// The password itself, checked against the SCRAM credential: only
    /// over TLS.
    Plain,
    Scram(Mechanism),
}

impl SaslMechanism {
    /// The SASL name (`PLAIN`, `SCRAM-SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
        }
    }

    /// The mechanism of a SASL name (case-insensitive).
    pub fn parse(name: &str) -> Option<SaslMechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            return Some(SaslMechanism::Plain);
        }
        Mechanism::parse(name).map(SaslMechanism::Scram)
    }
}

impl std::fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = String;

    fn from_str(s: &str) -> Result<SaslMechanism, String> {
        SaslMechanism::parse(s)
            .ok_or_else(|| format!("unknown SASL mechanism {s:?}: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are served"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        for m in [
            SaslMechanism::Plain,
            SaslMechanism::Scram(Mechanism::ScramSha256),
            SaslMechanism::Scram(Mechanism::ScramSha512),
        ] {
            assert_eq!(m.name().parse::<SaslMechanism>(), Ok(m));
        }
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
        assert_eq!(SaslMechanism::parse("plain"), Some(SaslMechanism::Plain));
    }
}
