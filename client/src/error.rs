//! The client library's error type.

use goulette_proto::v1::{self as pb, ErrorCode};

/// Everything a client call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No sentinel in the list answered.
    #[error(
        "no sentinel reachable at {addresses}: {last} (is the cluster running? --sentinels or \
         GOULETTE_SENTINELS must name sentinels' gRPC addresses, host:port; a cluster with TLS needs \
         --tls-ca, one without it must not get it)"
    )]
    NoSentinel {
        /// The addresses tried.
        addresses: String,
        /// The last failure.
        last: String,
    },
    /// A broker or sentinel answered with a typed error.
    #[error("{}", server_text(.code, .message))]
    Server {
        /// The protocol error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// A call failed in transport (connection refused, reset, timeout).
    #[error("{context}: {status}")]
    Transport {
        /// What was being done.
        context: String,
        /// The gRPC status.
        status: String,
    },
    /// The request was invalid before it was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A received batch failed its checks.
    #[error("corrupt batch from {topic}/{partition}: {reason}")]
    CorruptBatch {
        /// Topic.
        topic: String,
        /// Partition.
        partition: u32,
        /// What failed.
        reason: String,
    },
    /// The producer or consumer was closed.
    #[error("the client was closed")]
    Closed,
    /// A message handler failed on every attempt and no dead-letter topic
    /// was configured.
    #[error("handler failed {attempts} times on {topic}/{partition}@{offset}: {error}")]
    Handler {
        /// Where the record came from.
        topic: String,
        /// Its partition.
        partition: u32,
        /// Its offset.
        offset: u64,
        /// Attempts made.
        attempts: u32,
        /// The handler's last error.
        error: String,
    },
}

/// A server's error as shown: `message`, after the code's name unless the
/// message already starts by saying it (`invalid argument: …`, not
/// `InvalidArgument: invalid argument: …`).
fn server_text(code: &ErrorCode, message: &str) -> String {
    let name = format!("{code:?}");
    let mut words = String::new();
    for c in name.chars() {
        if c.is_uppercase() && !words.is_empty() {
            words.push(' ');
        }
        words.push(c.to_ascii_lowercase());
    }
    if message.to_lowercase().starts_with(&words) { message.to_owned() } else { format!("{name}: {message}") }
}

/// Result alias for the client crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    /// The error a server answered with.
    pub fn from_proto(e: &pb::Error) -> ClientError {
        ClientError::Server { code: e.error_code(), message: e.message.clone() }
    }

    pub(crate) fn transport(context: impl Into<String>, status: &tonic::Status) -> ClientError {
        ClientError::Transport { context: context.into(), status: format!("{:?}: {}", status.code(), status.message()) }
    }

    /// True when retrying after a metadata refresh may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Server { code, .. } => matches!(
                code,
                ErrorCode::NotLeader
                    | ErrorCode::Unavailable
                    | ErrorCode::NoLeader
                    | ErrorCode::NotEnoughReplicas
                    | ErrorCode::UnknownTopic
                    | ErrorCode::UnknownPartition
                    | ErrorCode::OutOfOrderSequence
                    // The broker's replica is damaged: its leadership moves.
                    | ErrorCode::CorruptStorage
                    | ErrorCode::StorageUnavailable
            ),
            ClientError::Transport { .. } | ClientError::NoSentinel { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_error_names_its_code_once() {
        let shown = |code, message: &str| ClientError::Server { code, message: message.into() }.to_string();
        assert_eq!(shown(ErrorCode::InvalidArgument, "invalid argument: bad name"), "invalid argument: bad name");
        assert_eq!(shown(ErrorCode::NotLeader, "broker 2 leads t/0"), "NotLeader: broker 2 leads t/0");
        assert_eq!(shown(ErrorCode::UnknownTopic, "Unknown topic \"t\""), "Unknown topic \"t\"");
    }
}
