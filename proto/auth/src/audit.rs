//! The audit log's line for a change a caller asked for (metadata or
//! security), on the tracing target [`AUDIT`]: the same fields on every
//! server, so that one query finds a principal's changes whichever server
//! or protocol took them. Failed logins and refusals have their own lines
//! ([`crate::guard`], [`crate::acl::denials`]).

pub use crate::guard::AUDIT;

/// Logs that `principal` (from `address`) asked for `event` on `what`,
/// and how it ended (`done`, or `refused: …`).
pub fn change(event: &str, what: &str, principal: &str, address: &str, outcome: &str) {
    tracing::info!(target: AUDIT, event, what, principal, address, outcome);
}

/// The outcome of a change made of several parts (`(name, error)` each,
/// `None` when it was done): `done`, or which parts were refused and why.
pub fn outcome_of<'a>(parts: impl IntoIterator<Item = (&'a str, Option<String>)>) -> String {
    let refused: Vec<String> =
        parts.into_iter().filter_map(|(name, error)| error.map(|e| format!("{name} ({e})"))).collect();
    if refused.is_empty() { "done".to_owned() } else { format!("refused: {}", refused.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_names_the_refused_parts() {
        assert_eq!(outcome_of([("a", None), ("b", None)]), "done");
        assert_eq!(outcome_of([("a", None), ("b", Some("code 36".into()))]), "refused: b (code 36)");
    }
}
