//! The sentinel's error type and its mapping to protocol errors.

use goulette_proto::v1::{self as pb, ErrorCode};

/// Everything a sentinel operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SentinelError {
    /// etcd could not be reached or refused the request. Nothing was written
    /// (every write is one transaction).
    #[error("etcd unavailable while trying to {context}: {source}")]
    Etcd {
        /// What was being done.
        context: String,
        /// The client error.
        #[source]
        source: etcd_client::Error,
    },
    /// etcd did not answer in time (a hung or overloaded etcd behaves like
    /// an unreachable one). Nothing was written.
    #[error("etcd did not answer within {after:?} while trying to {context}")]
    EtcdTimeout {
        /// What was being done.
        context: String,
        /// How long it was given.
        after: std::time::Duration,
    },
    /// This sentinel is not the leader (or lost leadership mid-write).
    #[error("this sentinel is not the leader{}", leader.as_ref().map(|l| format!(" (leader: {l})")).unwrap_or_default())]
    NotLeader {
        /// The leader's address, when known.
        leader: Option<String>,
    },
    /// No sentinel leader is known right now.
    #[error("no sentinel leader is known right now; retry shortly")]
    NoLeader,
    /// A request argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The topic does not exist.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The topic exists already.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// The user does not exist (or has no credential of the mechanism named).
    #[error("user {0:?} not found")]
    UserNotFound(String),
    /// The ACLs do not allow the caller this.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// The user exists already.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// Fewer live brokers than the replication factor asks for.
    #[error("replication factor {wanted} needs {wanted} live brokers, {live} are up")]
    NotEnoughBrokers {
        /// Requested replication factor.
        wanted: u32,
        /// Live brokers.
        live: usize,
    },
    /// The caller acted on a leadership it no longer holds.
    #[error("fenced: {0}")]
    Fenced(String),
    /// The broker session is unknown or expired: register again.
    #[error("unknown broker session for broker {0}; register again")]
    UnknownBroker(u32),
    /// The group member is unknown (expired, left, or never joined): join again.
    #[error("unknown member {member:?} of group {group:?}; join again")]
    UnknownMember {
        /// The group.
        group: String,
        /// The member id.
        member: String,
    },
    /// This sentinel's view has not caught up with what the request needs
    /// (just started, or lagging): ask again, or ask another sentinel.
    #[error("this sentinel's view is behind: {0}")]
    Lagging(String),
    /// The group has members; the operation needs an empty group.
    #[error("group {0:?} has members; stop its consumers first")]
    GroupNotEmpty(String),
    /// A compare in the write transaction failed: the state changed under us.
    #[error("concurrent change: {0}")]
    Conflict(String),
    /// Other writers kept committing between this write's read of the op
    /// counter and its transaction (a leadership change in progress): nothing
    /// was written; retry.
    #[error("metadata write contended: {0}; retry")]
    Contended(String),
    /// Stored data could not be decoded.
    #[error("corrupt value at {key}: {reason}")]
    CorruptValue {
        /// The etcd key.
        key: String,
        /// Why it could not be decoded.
        reason: String,
    },
    /// Forwarding a write to the leader failed.
    #[error("forwarding to the sentinel leader at {leader} failed: {reason}")]
    Forward {
        /// The leader's address.
        leader: String,
        /// What failed.
        reason: String,
    },
}

/// Result alias for the sentinel crate.
pub type Result<T, E = SentinelError> = std::result::Result<T, E>;

impl SentinelError {
    /// An etcd request failed. The failure is counted where the request is
    /// made (`crate::etcd_metrics::Counted`), not here: building an error has
    /// no side effect.
    pub(crate) fn etcd(context: impl Into<String>, source: etcd_client::Error) -> Self {
        SentinelError::Etcd { context: context.into(), source }
    }

    /// The protocol error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SentinelError::Etcd { .. } | SentinelError::EtcdTimeout { .. } | SentinelError::Forward { .. } => {
                ErrorCode::Unavailable
            }
            SentinelError::NotLeader { .. } | SentinelError::NoLeader => ErrorCode::NoLeader,
            SentinelError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            SentinelError::UnknownTopic(_) => ErrorCode::UnknownTopic,
            SentinelError::TopicExists(_) => ErrorCode::TopicExists,
            SentinelError::UserNotFound(_) => ErrorCode::UserNotFound,
            SentinelError::UserExists(_) => ErrorCode::UserExists,
            SentinelError::NotAuthorized(_) => ErrorCode::NotAuthorized,
            SentinelError::NotEnoughBrokers { .. } => ErrorCode::NotEnoughReplicas,
            SentinelError::UnknownBroker(_) => ErrorCode::UnknownBroker,
            SentinelError::Fenced(_) => ErrorCode::Fenced,
            SentinelError::UnknownMember { .. } => ErrorCode::UnknownMember,
            SentinelError::GroupNotEmpty(_) => ErrorCode::GroupNotEmpty,
            SentinelError::Lagging(_) => ErrorCode::Unavailable,
            SentinelError::Conflict(_) | SentinelError::Contended(_) => ErrorCode::Unavailable,
            SentinelError::CorruptValue { .. } => ErrorCode::Internal,
        }
    }

    /// The error as carried in a response.
    pub fn to_proto(&self) -> pb::Error {
        let mut e = pb::Error::new(self.code(), self.to_string());
        if let SentinelError::NotLeader { leader: Some(l) } = self {
            e.leader_hint = l.clone();
        }
        e
    }
}
