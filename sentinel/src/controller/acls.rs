//! ACL bindings: added and removed in transactions of at most etcd's
//! operation limit (each with its op-log entry), so a request with
//! thousands of bindings lands in several commits, never half of one.

use goulette_auth::acl::{AclBinding, AclFilter};

use super::Controller;
use crate::acls::AclRecord;
use crate::error::Result;
use crate::store::{Change, Fence};
use crate::view::ClusterView;

impl Controller {
    /// Bindings per transaction: etcd's limit, less the op-log entry and
    /// counter the commit adds.
    fn acls_per_commit(&self) -> usize {
        self.config.max_txn_ops.saturating_sub(2).max(1)
    }

    /// Adds `bindings` (checked by the caller) that are not stored yet;
    /// the revision of the last commit (`None`: nothing was new).
    pub async fn create_acls(&self, fence: &Fence, view: &ClusterView, bindings: &[AclBinding]) -> Result<Option<i64>> {
        let mut new: Vec<(String, &AclBinding)> =
            bindings.iter().map(|b| (b.id(), b)).filter(|(id, _)| !view.acls.contains_key(id)).collect();
        new.sort_by(|a, b| a.0.cmp(&b.0));
        new.dedup_by(|a, b| a.0 == b.0);
        let mut revision = None;
        for chunk in new.chunks(self.acls_per_commit()) {
            let detail = chunk.iter().map(|(_, b)| b.to_string()).collect::<Vec<_>>().join("; ");
            let mut change = Change::new("create-acls", detail);
            for (id, binding) in chunk {
                change = change.put_json(self.store.keys().acl(id), &AclRecord::from(*binding), None);
            }
            revision = Some(self.store.commit_at(fence, change).await?.1);
        }
        Ok(revision)
    }

    /// Removes every stored binding a filter matches; the bindings removed
    /// and the revision of the last commit.
    pub async fn delete_acls(
        &self,
        fence: &Fence,
        view: &ClusterView,
        filters: &[AclFilter],
    ) -> Result<(Vec<AclBinding>, Option<i64>)> {
        let doomed: Vec<(&String, &AclBinding)> =
            view.acls.iter().filter(|(_, b)| filters.iter().any(|f| f.matches(b))).collect();
        let mut revision = None;
        for chunk in doomed.chunks(self.acls_per_commit()) {
            let detail = chunk.iter().map(|(_, b)| b.to_string()).collect::<Vec<_>>().join("; ");
            let mut change = Change::new("delete-acls", detail);
            change.deletes.extend(chunk.iter().map(|(id, _)| (self.store.keys().acl(id), false)));
            revision = Some(self.store.commit_at(fence, change).await?.1);
        }
        Ok((doomed.into_iter().map(|(_, b)| b.clone()).collect(), revision))
    }
}
