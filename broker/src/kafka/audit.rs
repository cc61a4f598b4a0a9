//! The audit line of each change a Kafka client asks this broker for
//! (topics, partitions, configs, records deleted, groups, users, ACLs),
//! with the client's principal and address and, per resource, whether it
//! was done (`goulette_auth::audit`). The broker logs it because only it
//! knows the Kafka client: the sentinel it forwards the change to sees the
//! broker.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use crate::security::acls::Caller;

/// The caller of one request, kept until its answer is known.
#[derive(Debug, Clone)]
pub struct Audit(Arc<Caller>);

impl Audit {
    pub fn new(caller: &Arc<Caller>) -> Audit {
        Audit(caller.clone())
    }

    /// Logs `event` on `parts` (a resource name and its error code each).
    pub fn record<'a>(&self, event: &str, parts: impl IntoIterator<Item = (&'a str, i16)>) {
        let parts: Vec<(&str, i16)> = parts.into_iter().collect();
        let names: Vec<&str> = parts.iter().map(|(name, _)| *name).collect();
        let outcome = goulette_auth::audit::outcome_of(parts.iter().map(|(name, code)| (*name, error_name(*code))));
        let address = self.0.host.map(|h| h.to_string()).unwrap_or_default();
        goulette_auth::audit::change(event, &names.join(","), &self.0.principal, &address, &outcome);
    }
}

/// Kafka's name of a non-zero error code (`None` for 0; a code Kafka
/// does not define is `Unknown(CODE)`).
fn error_name(code: i16) -> Option<String> {
    (code != 0).then(|| match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}"),
        None => format!("Unknown({code})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_named() {
        assert_eq!(error_name(0), None);
        assert_eq!(error_name(29).as_deref(), Some("TopicAuthorizationFailed"));
        assert_eq!(error_name(-42).as_deref(), Some("Unknown(-42)"));
    }
}
