//! The principal a client certificate stands for, by configurable rules
//! (`--tls-principal-rules san-email,cn`): the first field, in the order
//! given, that the certificate has names the user (`User:VALUE`). Without
//! rules, a certificate signed by the cluster's CA is one of the cluster's
//! servers.

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
            _ => Err(format!("{s:?}: a rule is cn, san-dns, san-email or san-uri")),
        }
    }
}

/// The rules of `--tls-principal-rules`, checked.
pub fn parse_rules(rules: &[String]) -> Result<Vec<CertField>, String> {
    rules.iter().map(|r| r.parse().map_err(|e| format!("--tls-principal-rules: {e}"))).collect()
}

/// The principal (`User:VALUE`) `der` stands for by `rules`, if one finds a value.
pub fn principal_of(der: &[u8], rules: &[CertField]) -> Option<String> {
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    let sans: Vec<GeneralName> =
        cert.subject_alternative_name().ok().flatten().map(|ext| ext.value.general_names.clone()).unwrap_or_default();
    let value = rules.iter().find_map(|rule| match rule {
        CertField::Cn => cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_owned),
        CertField::SanDns => sans.iter().find_map(|n| match n {
            GeneralName::DNSName(v) => Some(v.to_string()),
            _ => None,
        }),
        CertField::SanEmail => sans.iter().find_map(|n| match n {
            GeneralName::RFC822Name(v) => Some(v.to_string()),
            _ => None,
        }),
        CertField::SanUri => sans.iter().find_map(|n| match n {
            GeneralName::URI(v) => Some(v.to_string()),
            _ => None,
        }),
    })?;
    (!value.is_empty()).then(|| format!("User:{value}"))
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

    #[test]
    fn rules_pick_the_first_field_found() {
        let ca = goulette_tls::testing::TestCa::new("test CA");
        // TestCa names the subject by its first name and puts every name in the SANs.
        let cert = der(&ca.issue(&["alice.users.example"]).cert);
        assert_eq!(principal_of(&cert, &[CertField::Cn]).as_deref(), Some("User:alice.users.example"));
        assert_eq!(principal_of(&cert, &[CertField::SanDns]).as_deref(), Some("User:alice.users.example"));
        assert_eq!(
            principal_of(&cert, &[CertField::SanEmail, CertField::Cn]).as_deref(),
            Some("User:alice.users.example")
        );
        assert_eq!(principal_of(&cert, &[CertField::SanEmail, CertField::SanUri]), None);
        assert_eq!(principal_of(b"not a certificate", &[CertField::Cn]), None);
        assert_eq!("SAN-DNS".parse::<CertField>(), Ok(CertField::SanDns));
        assert!("ou".parse::<CertField>().is_err());
    }
}
