//! The ACL checks of the sentinel's client API (with `--acl-enabled` and
//! `--auth-required`): topics and groups as the Kafka listener checks them,
//! the cluster for users, ACLs, broker administration and status. The
//! bindings come from this sentinel's view; their index is rebuilt only
//! when they change.

use std::sync::{Arc, Mutex};

use goulette_auth::acl::{Authorizer, Caller, Operation, ResourceType};
use tonic::Request;

use super::Sentinel;
use crate::error::{Result, SentinelError};

/// The index of the view's bindings, by the view's ACL version.
#[derive(Debug, Default)]
pub(super) struct AclIndex {
    built: Mutex<Option<(u64, Arc<Authorizer>)>>,
    /// The audit of refusals.
    audit: goulette_auth::acl::denials::DenialAudit,
}

impl Sentinel {
    /// Who makes `req`: unchecked (as a server) unless gRPC requests are.
    pub(super) fn caller<T>(&self, req: &Request<T>) -> Caller {
        if self.config.auth.grpc_acls() { Caller::of(req) } else { Caller::server() }
    }

    /// Whether `caller` may do `operation` on `resource_type` `name`.
    pub(super) fn may(&self, caller: &Caller, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        if caller.server {
            return true;
        }
        let view = self.view();
        let authorizer = {
            let mut built = self.acl_index.built.lock().unwrap_or_else(|p| p.into_inner());
            match &*built {
                Some((version, a)) if *version == view.acls_version => a.clone(),
                _ => {
                    let a = Arc::new(Authorizer::new(view.acls.values(), self.config.auth.super_users.clone()));
                    *built = Some((view.acls_version, a.clone()));
                    a
                }
            }
        };
        let allowed = authorizer.authorize(&caller.principal, caller.host, operation, resource_type, name);
        if !allowed {
            crate::tls_metrics::TLS.acl_denials.inc();
            self.acl_index.audit.record(caller, operation, resource_type, name);
        }
        allowed
    }

    /// `Ok` when `caller` may, else NOT_AUTHORIZED.
    pub(super) fn permit(
        &self,
        caller: &Caller,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<()> {
        if self.may(caller, operation, resource_type, name) {
            return Ok(());
        }
        Err(SentinelError::NotAuthorized(format!(
            "{} may not {} {} {name}",
            caller.principal,
            operation.name(),
            resource_type.name()
        )))
    }
}
