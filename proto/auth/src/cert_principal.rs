//! The principal a client certificate stands for, by configurable rules
//! (`--tls-principal-rules`), tried in order: the first rule that finds a
//! value names the user (`User:VALUE`). Without rules, a certificate
//! signed by the cluster's CA is one of the cluster's servers.
//!
//! A rule is a field, alone or with a rewrite, as Kafka's
//! `ssl.principal.mapping.rules`:
//!
//! - `cn`, `san-dns`, `san-email`, `san-uri`: the field's value as it is;
//! - `FIELD:/REGEX/REPLACEMENT/` (optionally ending `L` or `U`, to lower
//!   or upper the result): the rule applies only to a value the regular
//!   expression matches whole, and the user is the replacement (`$1`,
//!   `${name}` refer to its groups). A value it does not match passes to
//!   the next value of the field (a certificate has several SANs), then to
//!   the next rule.
//!
//! The flag splits rules at commas, so a regular expression writes a comma
//! as `\x2c`.

use regex::Regex;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// A certificate field that can name a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertField {
    /// The subject's common name.
    Cn,
    /// A DNS name of the subject alternative names.
    SanDns,
    /// An e-mail address of the subject alternative names.
    SanEmail,
    /// A URI of the subject alternative names (SPIFFE ids, for example).
    SanUri,
}

impl std::str::FromStr for CertField {
    type Err = String;

    fn from_str(s: &str) -> Result<CertField, String> {
        match s.to_ascii_lowercase().as_str() {
            "cn" => Ok(CertField::Cn),
            "san-dns" => Ok(CertField::SanDns),
            "san-email" => Ok(CertField::SanEmail),
            "san-uri" => Ok(CertField::SanUri),
            _ => Err(format!("{s:?}: a rule's field is cn, san-dns, san-email or san-uri")),
        }
    }
}

/// What a rewrite does to the case of its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

/// A rule: a field, and how its value becomes a user name.
#[derive(Debug, Clone)]
pub struct CertRule {
    field: CertField,
    /// `None`: the value as it is.
    rewrite: Option<(Regex, String, Case)>,
}

impl CertRule {
    /// A rule taking `field` as it is.
    pub fn field(field: CertField) -> CertRule {
        CertRule { field, rewrite: None }
    }

    /// The user `value` names by this rule, if the rule applies to it.
    fn apply(&self, value: &str) -> Option<String> {
        let Some((regex, replacement, case)) = &self.rewrite else {
            return Some(value.to_owned());
        };
        let captures = regex.captures(value)?;
        let mut user = String::new();
        captures.expand(replacement, &mut user);
        Some(match case {
            Case::Keep => user,
            Case::Lower => user.to_lowercase(),
            Case::Upper => user.to_uppercase(),
        })
    }
}

impl std::str::FromStr for CertRule {
    type Err = String;

    fn from_str(s: &str) -> Result<CertRule, String> {
        let Some((field, rewrite)) = s.split_once(':') else {
            return Ok(CertRule::field(s.trim().parse()?));
        };
        let field = field.trim().parse()?;
        let bad = || format!("{s:?}: a rewrite is FIELD:/REGEX/REPLACEMENT/ with an optional L or U after");
        let body = rewrite.trim().strip_prefix('/').ok_or_else(bad)?;
        let (body, case) = match body.strip_suffix(['L', 'U']) {
            Some(rest) if body.ends_with('L') => (rest, Case::Lower),
            Some(rest) => (rest, Case::Upper),
            None => (body, Case::Keep),
        };
        let body = body.strip_suffix('/').ok_or_else(bad)?;
        // The last slash ends the regex: the replacement holds none, the
        // regex may (a SPIFFE URI's path).
        let (pattern, replacement) = body.rsplit_once('/').ok_or_else(bad)?;
        if pattern.is_empty() {
            return Err(bad());
        }
        // Anchored: the whole value must match, as Kafka's rules.
        let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(CertRule { field, rewrite: Some((regex, replacement.to_owned(), case)) })
    }
}

/// The rules of `--tls-principal-rules`, checked.
pub fn parse_rules(rules: &[String]) -> Result<Vec<CertRule>, String> {
    rules.iter().map(|r| r.parse().map_err(|e| format!("--tls-principal-rules: {e}"))).collect()
}

/// The values of `field` in `cert`.
fn values(cert: &x509_parser::certificate::X509Certificate<'_>, field: CertField) -> Vec<String> {
    if field == CertField::Cn {
        return cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok().map(str::to_owned)).collect();
    }
    let sans = cert.subject_alternative_name().ok().flatten();
    let names = sans.iter().flat_map(|ext| ext.value.general_names.iter());
    names
        .filter_map(|name| match (field, name) {
            (CertField::SanDns, GeneralName::DNSName(v))
            | (CertField::SanEmail, GeneralName::RFC822Name(v))
            | (CertField::SanUri, GeneralName::URI(v)) => Some((*v).to_owned()),
            _ => None,
        })
        .collect()
}

/// The principal (`User:NAME`) `der` stands for by `rules`, if one finds a name.
pub fn principal_of(der: &[u8], rules: &[CertRule]) -> Option<String> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    let user = rules
        .iter()
        .find_map(|rule| values(&cert, rule.field).iter().find_map(|v| rule.apply(v).filter(|u| !u.is_empty())))?;
    Some(format!("User:{user}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        let start = pem.find("-----BEGIN CERTIFICATE-----").unwrap() + "-----BEGIN CERTIFICATE-----".len();
        let end = pem.find("-----END CERTIFICATE-----").unwrap();
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(pem[start..end].replace(['\n', '\r'], "")).unwrap()
    }

    fn rules(text: &[&str]) -> Vec<CertRule> {
        parse_rules(&text.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn rules_pick_the_first_field_found() {
        let ca = goulette_tls::testing::TestCa::new("test CA");
        // TestCa names the subject by its first name and puts every name in the SANs.
        let cert = der(&ca.issue(&["alice.users.example"]).cert);
        assert_eq!(principal_of(&cert, &rules(&["cn"])).as_deref(), Some("User:alice.users.example"));
        assert_eq!(principal_of(&cert, &rules(&["san-dns"])).as_deref(), Some("User:alice.users.example"));
        assert_eq!(principal_of(&cert, &rules(&["san-email", "cn"])).as_deref(), Some("User:alice.users.example"));
        assert_eq!(principal_of(&cert, &rules(&["san-email", "san-uri"])), None);
        assert_eq!(principal_of(b"not a certificate", &rules(&["cn"])), None);
        assert_eq!("SAN-DNS".parse::<CertField>(), Ok(CertField::SanDns));
        assert!("ou".parse::<CertRule>().is_err());
    }

    #[test]
    fn rewrites_apply_to_the_values_they_match_whole() {
        let ca = goulette_tls::testing::TestCa::new("test CA");
        let cert = der(&ca.issue(&["Alice.Users.Example", "svc-ingest.internal"]).cert);
        // The first SAN the regex matches whole; groups in the replacement; case.
        let by_dns = rules(&[r"san-dns:/svc-([a-z]+)\.internal/service-$1/"]);
        assert_eq!(principal_of(&cert, &by_dns).as_deref(), Some("User:service-ingest"));
        let lowered = rules(&[r"cn:/(?P<name>[^.]+)\.Users\.Example/${name}/L"]);
        assert_eq!(principal_of(&cert, &lowered).as_deref(), Some("User:alice"));
        let upper = rules(&[r"cn:/([^.]+)\..*/$1/U"]);
        assert_eq!(principal_of(&cert, &upper).as_deref(), Some("User:ALICE"));
        // No match anywhere: the next rule; none left: no user.
        let fallback = rules(&[r"cn:/.*\.example\.org/x/", "san-dns"]);
        assert_eq!(principal_of(&cert, &fallback).as_deref(), Some("User:Alice.Users.Example"));
        assert_eq!(principal_of(&cert, &rules(&[r"cn:/Alice/x/"])), None, "a partial match is no match");
        // An empty result names no one.
        assert_eq!(principal_of(&cert, &rules(&[r"cn:/.*//"])), None);
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for bad in ["cn:", "cn:/x/", "cn:x/y/", "cn://y/", "cn:/(/y/", "dn:/x/y/"] {
            assert!(bad.parse::<CertRule>().is_err(), "{bad} was taken");
        }
        assert!(r"cn:/a\x2cb/ab/".parse::<CertRule>().is_ok());
        let e = parse_rules(&["cn:/(/y/".to_owned()]).unwrap_err();
        assert!(e.starts_with("--tls-principal-rules:"), "{e}");
    }
}
