//! What authentication fails with.

/// A failed authentication step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Wrong credentials, or an unknown user: deliberately one case, with
    /// one message, so an answer never tells which.
    #[error("authentication failed: invalid credentials")]
    Failed,
    /// A message that does not follow the mechanism's syntax.
    #[error("malformed {mechanism} message: {reason}")]
    Malformed {
        /// The mechanism whose grammar was broken.
        mechanism: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A feature of the mechanism Goulette does not offer (channel
    /// binding, delegation tokens, mandatory extensions).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A credential that cannot be stored or used (too few iterations, keys
    /// of the wrong length, an empty salt).
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
    /// The server's answer fails the client's check (a server that does not
    /// know the credential, or a man in the middle).
    #[error("the server failed to prove it knows the credential: {0}")]
    ServerNotVerified(String),
}

impl AuthError {
    pub(crate) fn malformed(mechanism: &'static str, reason: impl Into<String>) -> AuthError {
        AuthError::Malformed { mechanism, reason: reason.into() }
    }
}
