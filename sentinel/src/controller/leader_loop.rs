//! The leader's standing duties, run whenever the view or the role changes
//! (and at least every second, to retry what failed): while this sentinel
//! leads, give partitions whose leader is gone a new one and move replicas
//! towards their placement ([`Controller::reconcile`]), and rebalance
//! consumer groups ([`Groups::rebalance`]), and keep a young key for the
//! gRPC API's tokens ([`Controller::ensure_token_key`]). A follower's
//! loop only waits.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Controller;
use crate::election::Role;
use crate::groups::Groups;
use crate::view::ClusterView;

/// The loop of one sentinel process, leading or not.
#[derive(Debug)]
pub struct LeaderLoop {
    controller: Arc<Controller>,
    groups: Arc<Groups>,
    views: watch::Receiver<Arc<ClusterView>>,
    role: watch::Receiver<Role>,
    shutdown: CancellationToken,
}

impl LeaderLoop {
    /// A loop acting through `controller` and `groups` on the published
    /// views, while `role` says this sentinel leads.
    pub fn new(
        controller: Arc<Controller>,
        groups: Arc<Groups>,
        views: watch::Receiver<Arc<ClusterView>>,
        role: watch::Receiver<Role>,
        shutdown: CancellationToken,
    ) -> LeaderLoop {
        LeaderLoop { controller, groups, views, role, shutdown }
    }

    /// Runs until `shutdown`. Failures are logged and retried on the next
    /// round: each duty looks at the whole view again.
    pub async fn run(mut self) {
        loop {
            let fence = self.role.borrow().fence().cloned();
            if let Some(fence) = fence {
                let view = self.views.borrow().clone();
                if let Err(e) = self.controller.reconcile(&fence, &view).await {
                    tracing::warn!(error = %e, "reconciling partition leaders failed; will retry");
                }
                if let Err(e) = self.groups.rebalance(&fence, &view).await {
                    tracing::warn!(error = %e, "rebalancing consumer groups failed; will retry");
                }
                if let Err(e) = self.controller.ensure_token_key(&fence, &view).await {
                    tracing::warn!(error = %e, "creating or rotating the token key failed; will retry");
                }
            }
            tokio::select! {
                _ = self.views.changed() => {}
                _ = self.role.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }
}
