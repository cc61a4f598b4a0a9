//! What a failed login costs its client, so that guessing passwords is
//! slow: the answer comes only after a delay (Kafka's
//! `connection.failed.authentication.delay.ms`), and an address with too
//! many recent failures is refused without its credentials being looked
//! at until the minute passes. Each failure is counted (by the caller's
//! callback: a metric of the server's) and written to the audit log
//! (target `goulette::audit`). The answer is the same whatever failed.
//! Brokers and sentinels each hold one for all their listeners.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window failures are counted over.
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most (bounded memory under a spray of addresses;
/// beyond it, addresses with no failure in the window are forgotten).
const MAX_ADDRESSES: usize = 65_536;

/// The audit log's tracing target.
pub const AUDIT: &str = "goulette::audit";

/// Why a login failed, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Wrong password or unknown user.
    InvalidCredentials,
    /// Too many failures from this address in the last minute.
    Throttled,
    /// A message that breaks the mechanism's grammar.
    Malformed,
    /// A mechanism or feature not offered.
    Unsupported,
}

impl Failure {
    /// The reason as counted and audited.
    pub fn label(self) -> &'static str {
        match self {
            Failure::InvalidCredentials => "invalid-credentials",
            Failure::Throttled => "throttled",
            Failure::Malformed => "malformed",
            Failure::Unsupported => "unsupported",
        }
    }
}

/// Counts a failure: `(listener, reason)`.
pub type OnFailure = Arc<dyn Fn(&'static str, &'static str) + Send + Sync>;

/// Failed logins by client address.
pub struct LoginGuard {
    delay: Duration,
    per_minute: usize,
    recent: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    on_failure: OnFailure,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard").field("delay", &self.delay).field("per_minute", &self.per_minute).finish()
    }
}

impl LoginGuard {
    /// A guard delaying each failure's answer by `delay`, refusing an
    /// address after `per_minute` failures within a minute, and calling
    /// `on_failure` for each failure.
    pub fn new(delay: Duration, per_minute: u32, on_failure: OnFailure) -> LoginGuard {
        LoginGuard { delay, per_minute: per_minute.max(1) as usize, recent: Mutex::new(HashMap::new()), on_failure }
    }

    /// Whether `peer` may try to log in now.
    pub fn admits(&self, peer: Option<SocketAddr>) -> bool {
        let Some(ip) = peer.map(|p| p.ip()) else { return true };
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match recent.get_mut(&ip) {
            Some(failures) => {
                prune(failures, now);
                failures.len() < self.per_minute
            }
            None => true,
        }
    }

    /// Records a failed login: counted, audited; returns how long to wait
    /// before answering it.
    pub fn failed(
        &self,
        listener: &'static str,
        peer: Option<SocketAddr>,
        user: &str,
        mechanism: &str,
        failure: Failure,
    ) -> Duration {
        (self.on_failure)(listener, failure.label());
        tracing::warn!(
            target: AUDIT,
            event = "authentication-failed",
            listener,
            address = %peer.map(|p| p.to_string()).unwrap_or_default(),
            principal = %format!("User:{user}"),
            mechanism,
            reason = failure.label(),
        );
        if let Some(ip) = peer.map(|p| p.ip()) {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if recent.len() >= MAX_ADDRESSES && !recent.contains_key(&ip) {
                recent.retain(|_, failures| {
                    prune(failures, now);
                    !failures.is_empty()
                });
            }
            if recent.len() < MAX_ADDRESSES || recent.contains_key(&ip) {
                let failures = recent.entry(ip).or_default();
                prune(failures, now);
                failures.push_back(now);
                // Never more than the limit and one: older ones add nothing.
                while failures.len() > self.per_minute + 1 {
                    failures.pop_front();
                }
            }
        }
        self.delay
    }

    /// Records a successful login (debug log only).
    pub fn succeeded(&self, listener: &'static str, peer: Option<SocketAddr>, user: &str, mechanism: &str) {
        tracing::debug!(listener, address = ?peer, user, mechanism, "authenticated");
    }
}

fn prune(failures: &mut VecDeque<Instant>, now: Instant) {
    while failures.front().is_some_and(|&t| now.duration_since(t) >= WINDOW) {
        failures.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_limit_and_others_are_not() {
        let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = counted.clone();
        let on_failure: OnFailure = Arc::new(move |_, reason| {
            assert_eq!(reason, "invalid-credentials");
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        let guard = LoginGuard::new(Duration::from_millis(5), 3, on_failure);
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        for _ in 0..3 {
            assert!(guard.admits(Some(a)));
            assert_eq!(
                guard.failed("kafka", Some(a), "u", "PLAIN", Failure::InvalidCredentials),
                Duration::from_millis(5)
            );
        }
        assert!(!guard.admits(Some(a)));
        // Another port of the same address is the same address.
        assert!(!guard.admits(Some("10.0.0.1:6000".parse().unwrap())));
        assert!(guard.admits(Some(b)));
        assert!(guard.admits(None));
        // The minute passes.
        for t in guard.recent.lock().unwrap().get_mut(&a.ip()).unwrap().iter_mut() {
            *t -= WINDOW;
        }
        assert!(guard.admits(Some(a)));
        assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 3);
    }
}
