//! The audit of refused requests: one `request-denied` line (target
//! `goulette::audit`) per principal and second at most, so that a client
//! retrying in a loop cannot flood the audit log. Memory stays bounded: the
//! map forgets principals quiet for a second once it holds 10,000.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::caller::Caller;
use super::model::{Operation, ResourceType};

/// A principal's refusals are audited at most this often.
const AUDIT_EVERY: Duration = Duration::from_secs(1);
/// Principals remembered before the quiet ones are forgotten.
const MAX_REMEMBERED: usize = 10_000;

/// When each principal's last refusal was audited.
#[derive(Debug, Default)]
pub struct DenialAudit {
    last: Mutex<HashMap<String, Instant>>,
}

impl DenialAudit {
    /// Audits that `caller` was refused `operation` on `resource_type`
    /// `name` (unless this principal's last line is under a second old).
    pub fn record(&self, caller: &Caller, operation: Operation, resource_type: ResourceType, name: &str) {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.get(&caller.principal).is_some_and(|t| now.duration_since(*t) < AUDIT_EVERY) {
            return;
        }
        if last.len() >= MAX_REMEMBERED {
            last.retain(|_, t| now.duration_since(*t) < AUDIT_EVERY);
        }
        last.insert(caller.principal.clone(), now);
        tracing::warn!(
            target: crate::guard::AUDIT,
            event = "request-denied",
            principal = %caller.principal,
            address = %caller.host.map(|h| h.to_string()).unwrap_or_default(),
            operation = operation.name(),
            resource = %format!("{}:{name}", resource_type.name()),
        );
    }
}
