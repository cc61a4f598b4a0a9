//! ACL administration on the leader: bindings added or removed are
//! answered once every live broker applied them (as user changes), and
//! described from this sentinel's view.

use goulette_auth::acl::{AclBinding, AclFilter};
use goulette_proto::v1::{self as pb};

use super::Sentinel;
use crate::error::{Result, SentinelError};
use crate::store::Fence;

impl Sentinel {
    /// Adds bindings on the leader (`fence`).
    pub(super) async fn create_acls_here(
        &self,
        fence: Fence,
        req: pb::CreateAclsRequest,
    ) -> Result<pb::CreateAclsResponse> {
        let bindings = req
            .acls
            .iter()
            .map(AclBinding::try_from)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(SentinelError::InvalidArgument)?;
        let revision = self.controller.create_acls(&fence, &self.view(), &bindings).await?;
        let lagging = self.applied_everywhere(revision).await;
        Ok(pb::CreateAclsResponse { error: None, revision: revision.unwrap_or(0) as u64, lagging_brokers: lagging })
    }

    /// Removes bindings on the leader (`fence`).
    pub(super) async fn delete_acls_here(
        &self,
        fence: Fence,
        req: pb::DeleteAclsRequest,
    ) -> Result<pb::DeleteAclsResponse> {
        let filters = req
            .filters
            .iter()
            .map(AclFilter::try_from)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(SentinelError::InvalidArgument)?;
        let (deleted, revision) = self.controller.delete_acls(&fence, &self.view(), &filters).await?;
        let lagging = self.applied_everywhere(revision).await;
        Ok(pb::DeleteAclsResponse {
            error: None,
            deleted: deleted.iter().map(pb::AclBinding::from).collect(),
            lagging_brokers: lagging,
        })
    }

    /// The bindings `req`'s filter selects.
    pub(super) fn describe_acls(&self, req: &pb::DescribeAclsRequest) -> Result<pb::DescribeAclsResponse> {
        let filter = match &req.filter {
            Some(f) => AclFilter::try_from(f).map_err(SentinelError::InvalidArgument)?,
            None => AclFilter::any(),
        };
        let view = self.view();
        let acls = view.acls.values().filter(|b| filter.matches(b)).map(pb::AclBinding::from).collect();
        Ok(pb::DescribeAclsResponse { error: None, acls })
    }
}
