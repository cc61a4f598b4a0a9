//! The ACLs this broker enforces: rebuilt from each security update, and
//! asked before a request touches a resource. Refusals are counted
//! (`goulette_broker_acl_denials_total`) and audited (see
//! `goulette_auth::acl::denials`).

use std::sync::{Arc, RwLock};

use goulette_auth::acl::denials::DenialAudit;
pub use goulette_auth::acl::{ANONYMOUS, Caller};
use goulette_auth::acl::{AclBinding, Authorizer, Operation, ResourceType};
use goulette_proto::v1 as pb;
use prometheus_client::metrics::counter::Counter;

/// A check of one request of a stream (with what else it needs, `A`):
/// `Ok`, or the NOT_AUTHORIZED error to answer.
pub type Check<A> = Box<dyn Fn(&str, A) -> Result<(), pb::Error> + Send + Sync>;

/// The ACLs in force.
#[derive(Debug)]
pub struct Acls {
    enabled: bool,
    super_users: Vec<String>,
    current: RwLock<Arc<Authorizer>>,
    denials: Counter,
    audit: DenialAudit,
}

impl Acls {
    /// ACLs enforced when `enabled`, with `super_users` allowed everything.
    pub fn new(enabled: bool, super_users: Vec<String>, denials: Counter) -> Acls {
        let current = RwLock::new(Arc::new(Authorizer::new(&[], super_users.clone())));
        Acls { enabled, super_users, current, denials, audit: DenialAudit::default() }
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the bindings with those of a security update (unusable
    /// ones left out, and logged).
    pub fn apply(&self, bindings: &[pb::AclBinding]) {
        let parsed: Vec<AclBinding> = bindings
            .iter()
            .filter_map(|b| match AclBinding::try_from(b) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::error!(error = %e, "an ACL binding is unusable; left out");
                    None
                }
            })
            .collect();
        let next = Arc::new(Authorizer::new(&parsed, self.super_users.clone()));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Whether `caller` may do `operation` on `resource_type` `name`
    /// (always, when ACLs are off). A refusal is counted and audited.
    pub fn allows(&self, caller: &Caller, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        if !self.enabled || caller.server {
            return true;
        }
        let authorizer = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        if authorizer.authorize(&caller.principal, caller.host, operation, resource_type, name) {
            return true;
        }
        self.denials.inc();
        self.audit.record(caller, operation, resource_type, name);
        false
    }
}
