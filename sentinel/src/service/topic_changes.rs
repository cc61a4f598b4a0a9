//! Changing a topic after its creation: its settings (`AlterTopic`) and its
//! partition count (`AddPartitions`). Both run on the leader as a
//! compare-and-swap on the topic's key, taken again on a fresh view when
//! another change got there first, and are answered once this sentinel's
//! view shows the result.

use std::sync::Arc;
use std::time::Duration;

use goulette_proto::v1 as pb;

use super::Sentinel;
use crate::controller::topics::TopicChange;
use crate::error::{Result, SentinelError};
use crate::store::Fence;
use crate::view::ClusterView;

/// Times a change is tried on a fresh view after losing a race.
const ATTEMPTS: usize = 5;
/// How long an answer waits for this sentinel's view to show the change.
const SHOWN_WITHIN: Duration = Duration::from_secs(2);

impl Sentinel {
    /// Applies `req` on the leader (`fence`).
    pub(super) async fn alter_topic_here(&self, fence: Fence, req: pb::AlterTopicRequest) -> Result<pb::TopicMetadata> {
        let change = TopicChange {
            retention_ms: req.retention_ms,
            retention_bytes: req.retention_bytes,
            min_insync_replicas: req.min_insync_replicas,
            unclean_leader_election: req.unclean_leader_election,
            cleanup_policy: req.cleanup_policy,
            delete_retention_ms: req.delete_retention_ms,
            min_compaction_lag_ms: req.min_compaction_lag_ms,
            min_cleanable_dirty_ratio_permille: req.min_cleanable_dirty_ratio_permille,
            segment_bytes: req.segment_bytes,
            segment_ms: req.segment_ms,
        };
        let topic = self
            .retry_on_conflict(|view| {
                let (fence, change, name) = (&fence, &change, &req.name);
                async move { self.controller.alter_topic(fence, &view, name, change, req.validate_only).await }
            })
            .await?;
        if req.validate_only {
            let mut answer = Sentinel::topic_metadata(&self.view(), &req.name);
            answer.config = Some((&topic).into());
            return Ok(answer);
        }
        Ok(self.shown(&req.name, |v| v.topics.get(&req.name) == Some(&topic)).await)
    }

    /// Grows a topic on the leader (`fence`).
    pub(super) async fn add_partitions_here(
        &self,
        fence: Fence,
        req: pb::AddPartitionsRequest,
    ) -> Result<pb::TopicMetadata> {
        let (topic, added) = self
            .retry_on_conflict(|view| {
                let (fence, name) = (&fence, &req.name);
                async move { self.controller.add_partitions(fence, &view, name, req.total, req.validate_only).await }
            })
            .await?;
        if req.validate_only {
            let mut answer = Sentinel::topic_metadata(&self.view(), &req.name);
            answer.config = Some((&topic).into());
            answer.partitions.extend(added.iter().map(pb::PartitionState::from));
            return Ok(answer);
        }
        let total = topic.partitions;
        Ok(self.shown(&req.name, |v| v.topics.get(&req.name).is_some_and(|t| t.partitions == total)).await)
    }

    /// Runs `attempt` on the current view, again on a newer one when the
    /// topic changed since (`Conflict`).
    pub(super) async fn retry_on_conflict<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut(Arc<ClusterView>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let view = self.view();
            match attempt(view.clone()).await {
                Err(SentinelError::Conflict(reason)) => {
                    tracing::debug!(%reason, "topic changed since the view was taken; trying again");
                    let mut views = self.views.clone();
                    let newer = |v: &Arc<ClusterView>| v.revision > view.revision;
                    let _ = tokio::time::timeout(SHOWN_WITHIN, views.wait_for(newer)).await;
                    last = Some(SentinelError::Conflict(reason));
                }
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| SentinelError::Conflict("the topic kept changing".into())))
    }

    /// The topic's metadata once this sentinel's view passes `shows` (or
    /// after a short wait, as it is then).
    async fn shown(&self, name: &str, shows: impl Fn(&ClusterView) -> bool) -> pb::TopicMetadata {
        let mut views = self.views.clone();
        let _ = tokio::time::timeout(SHOWN_WITHIN, views.wait_for(|v| shows(v))).await;
        Sentinel::topic_metadata(&self.view(), name)
    }
}
