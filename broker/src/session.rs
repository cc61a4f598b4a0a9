//! This broker's standing with the sentinels: its session (the etcd lease
//! it registered under), when a sentinel last confirmed it, and whether the
//! first assignment snapshot was applied. Readiness and `acks=all` depend
//! on it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Session {
    /// The current sentinel session (etcd lease id; 0 before registering).
    id: AtomicI64,
    /// When a sentinel last confirmed the session, and the session timeout:
    /// past it, the sentinels may have handed this broker's partitions to
    /// others.
    contact: Mutex<Option<(Instant, Duration)>>,
    /// Set once the first assignment snapshot is applied (its logs opened
    /// and recovered): until then the broker is not ready.
    assigned: AtomicBool,
}

impl Session {
    /// Records the sentinel session this broker holds.
    pub fn set_id(&self, id: i64) {
        self.id.store(id, Ordering::Relaxed);
    }

    /// The sentinel session this broker holds (0 before registering).
    pub fn id(&self) -> i64 {
        self.id.load(Ordering::Relaxed)
    }

    /// A sentinel confirmed the session (registration or heartbeat) with a
    /// request sent at `sent`.
    pub fn confirmed(&self, sent: Instant, session_timeout: Duration) {
        *self.contact.lock().unwrap_or_else(|p| p.into_inner()) = Some((sent, session_timeout));
    }

    /// False once no sentinel has confirmed the session for a session
    /// timeout: the sentinels may have elected other leaders, so this broker
    /// must not acknowledge `acks=all` writes as leader.
    pub fn in_contact(&self) -> bool {
        self.contact.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|(at, timeout)| at.elapsed() < timeout)
    }

    /// The first assignment snapshot was applied.
    pub fn mark_assigned(&self) {
        self.assigned.store(true, Ordering::Release);
    }

    /// Whether the first assignment snapshot was applied.
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_lapses_after_the_session_timeout() {
        let session = Session::default();
        assert!(!session.in_contact(), "never confirmed");
        session.confirmed(Instant::now(), Duration::from_secs(60));
        assert!(session.in_contact());
        session.confirmed(Instant::now() - Duration::from_secs(2), Duration::from_secs(1));
        assert!(!session.in_contact());
    }
}
