//! `Admin`: topics, groups, brokers and cluster status through the
//! sentinels, and partition offsets from their leaders.

use std::sync::Arc;

use goulette_proto::cleanup_policy;
use goulette_proto::v1 as pb;

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};

/// A partition as `topic describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PartitionReport {
    pub partition: u32,
    pub leader: Option<u32>,
    pub replicas: Vec<u32>,
    pub isr: Vec<u32>,
    pub leader_epoch: u64,
    /// From the leader; `None` when it could not be asked.
    pub log_start_offset: Option<u64>,
    pub log_end_offset: Option<u64>,
}

/// A topic as `topic describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TopicReport {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u32,
    /// As stored: 0 = the brokers' default, `u64::MAX` = forever.
    pub retention_ms: u64,
    /// As stored: 0 = unlimited.
    pub retention_bytes: u64,
    pub min_insync_replicas: u32,
    pub unclean_leader_election: bool,
    /// Every setting's effective value, and whether it is the default.
    pub settings: Vec<SettingReport>,
    pub partition_details: Vec<PartitionReport>,
}

/// One topic setting as it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SettingReport {
    pub name: &'static str,
    /// The effective value: a number, `unlimited`, or what is known of a
    /// default the brokers hold.
    pub value: String,
    /// Whether the topic leaves it at its default.
    pub default: bool,
}

/// The effective settings of `config`; `brokers` say what retention they
/// apply to topics that set none.
pub fn effective_settings(config: &pb::TopicConfig, brokers: &[pb::BrokerInfo]) -> Vec<SettingReport> {
    let setting = |name, value: String, default| SettingReport { name, value, default };
    let limit = |v: u64| if v == u64::MAX { "unlimited".to_owned() } else { v.to_string() };
    let retention_ms = match config.retention_ms {
        0 => {
            let reported: std::collections::BTreeSet<u64> =
                brokers.iter().filter_map(|b| b.default_retention_ms).collect();
            let value = match reported.len() {
                0 => "the brokers' default (not reported)".to_owned(),
                1 => reported.first().map_or_else(String::new, |v| limit(*v)),
                _ => format!("per broker: {}", reported.iter().map(|v| limit(*v)).collect::<Vec<_>>().join(", ")),
            };
            setting("retention_ms", value, true)
        }
        ms => setting("retention_ms", limit(ms), false),
    };
    let retention_bytes = match config.retention_bytes {
        0 => setting("retention_bytes", "unlimited".to_owned(), true),
        bytes => setting("retention_bytes", bytes.to_string(), false),
    };
    let default_min_insync = if config.replication_factor >= 3 { 2 } else { 1 };
    let min_insync = match config.min_insync_replicas {
        0 => default_min_insync,
        n => n,
    };
    let mut settings = vec![
        retention_ms,
        retention_bytes,
        setting("min_insync_replicas", min_insync.to_string(), min_insync == default_min_insync),
        setting("unclean_leader_election", config.unclean_leader_election.to_string(), !config.unclean_leader_election),
    ];
    let policy = pb::CleanupPolicy::try_from(config.cleanup_policy).unwrap_or_default();
    settings.push(setting(
        "cleanup_policy",
        cleanup_policy::name(policy).to_owned(),
        policy == pb::CleanupPolicy::Delete,
    ));
    // With `compact` alone retention does not apply (`compact,delete` keeps it).
    if policy == pb::CleanupPolicy::Compact {
        settings[0] = setting("retention_ms", "unlimited (compacted)".to_owned(), true);
        settings[1] = setting("retention_bytes", "unlimited (compacted)".to_owned(), true);
    }
    if policy != pb::CleanupPolicy::Delete {
        let or = |v: u64, default: u64| (if v == 0 { default } else { v }, v == 0);
        let (ms, default) = or(config.delete_retention_ms, cleanup_policy::DEFAULT_DELETE_RETENTION_MS);
        settings.push(setting("delete_retention_ms", ms.to_string(), default));
        let (ms, default) = or(config.min_compaction_lag_ms, 0);
        settings.push(setting("min_compaction_lag_ms", ms.to_string(), default));
        let permille = config.min_cleanable_dirty_ratio_permille;
        let ratio = cleanup_policy::dirty_ratio(permille).to_string();
        settings.push(setting("min_cleanable_dirty_ratio", ratio, permille == 0));
    }
    let brokers_own = |v: u64| if v == 0 { "the brokers'".to_owned() } else { v.to_string() };
    settings.push(setting("segment_bytes", brokers_own(config.segment_bytes), config.segment_bytes == 0));
    settings.push(setting("segment_ms", brokers_own(config.segment_ms), config.segment_ms == 0));
    settings
}

/// Administers a cluster.
///
/// ```no_run
/// use std::sync::Arc;
/// use goulette_client::{Admin, ClientError, Cluster, ErrorCode, TopicConfig};
///
/// # async fn run() -> goulette_client::Result<()> {
/// let admin = Admin::new(Arc::new(Cluster::new(vec!["127.0.0.1:50052".into()])?));
/// let config = TopicConfig { name: "orders".into(), partitions: 6, replication_factor: 3, ..Default::default() };
/// match admin.create_topic(config).await {
///     Ok(_) | Err(ClientError::Server { code: ErrorCode::TopicExists, .. }) => {}
///     Err(e) => return Err(e),
/// }
/// for p in admin.describe_topic("orders").await?.partition_details {
///     println!("partition {} led by {:?}, ends at {:?}", p.partition, p.leader, p.log_end_offset);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

fn check<T>(error: Option<pb::Error>, value: T) -> Result<T> {
    match error {
        Some(e) => Err(ClientError::from_proto(&e)),
        None => Ok(value),
    }
}

impl Admin {
    /// An admin over `cluster`.
    pub fn new(cluster: Arc<Cluster>) -> Admin {
        Admin { cluster }
    }

    /// Creates a topic (0 partitions or replication factor = cluster default).
    pub async fn create_topic(&self, config: pb::TopicConfig) -> Result<pb::TopicMetadata> {
        self.cluster.create_topic(config).await
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let req = pb::DeleteTopicRequest { name: name.to_owned() };
        let resp = self
            .cluster
            .with_sentinel("delete topic", |mut c| {
                let req = req.clone();
                async move { c.delete_topic(req).await }
            })
            .await?;
        check(resp.error, ())
    }

    /// Changes a topic's settings (each field of `req` that is set);
    /// brokers apply them without a restart. Returns the topic as changed.
    pub async fn alter_topic(&self, req: pb::AlterTopicRequest) -> Result<pb::TopicMetadata> {
        let resp = self
            .cluster
            .with_sentinel("alter topic", |mut c| {
                let req = req.clone();
                async move { c.alter_topic(req).await }
            })
            .await?;
        self.cluster.invalidate(&req.name);
        check(resp.error, resp.topic.unwrap_or_default())
    }

    /// Grows topic `name` to `total` partitions. Returns the grown topic.
    pub async fn add_partitions(&self, name: &str, total: u32) -> Result<pb::TopicMetadata> {
        let req = pb::AddPartitionsRequest { name: name.to_owned(), total, validate_only: false };
        let resp = self
            .cluster
            .with_sentinel("add partitions", |mut c| {
                let req = req.clone();
                async move { c.add_partitions(req).await }
            })
            .await?;
        self.cluster.invalidate(name);
        check(resp.error, resp.topic.unwrap_or_default())
    }

    /// Decommissions broker `id` (its replicas move away), or with `undo`
    /// makes it eligible for replicas again.
    pub async fn decommission_broker(&self, id: u32, undo: bool) -> Result<()> {
        let req = pb::DecommissionBrokerRequest { broker_id: id, undo };
        let resp = self
            .cluster
            .with_sentinel("decommission broker", |mut c| async move { c.decommission_broker(req).await })
            .await?;
        check(resp.error, ())
    }

    /// A consumer group's generation, strategy and members (with their
    /// assigned and owned partitions).
    pub async fn describe_group(&self, group: &str) -> Result<pb::DescribeGroupResponse> {
        let req = pb::DescribeGroupRequest { group: group.to_owned(), min_generation: 0 };
        let resp = self
            .cluster
            .with_sentinel("describe group", |mut c| {
                let req = req.clone();
                async move { c.describe_group(req).await }
            })
            .await?;
        check(resp.error.clone(), resp)
    }

    /// Groups with membership state, sorted.
    pub async fn member_groups(&self) -> Result<Vec<String>> {
        let resp =
            self.cluster
                .with_sentinel("list groups", |mut c| async move {
                    c.list_member_groups(pb::ListMemberGroupsRequest {}).await
                })
                .await?;
        check(resp.error, resp.groups)
    }

    /// Forgets an empty group's membership state (`GROUP_NOT_EMPTY` while
    /// it has members).
    pub async fn remove_group(&self, group: &str) -> Result<()> {
        let req = pb::RemoveGroupRequest { group: group.to_owned() };
        let resp = self
            .cluster
            .with_sentinel("remove group", |mut c| {
                let req = req.clone();
                async move { c.remove_group(req).await }
            })
            .await?;
        check(resp.error, ())
    }

    /// Sets a group's settings (`docs/redelivery.md`), which
    /// [`Admin::describe_group`] answers until they are set again.
    pub async fn alter_group(&self, group: &str, settings: pb::GroupSettings) -> Result<()> {
        let req = pb::AlterGroupRequest { group: group.to_owned(), settings: Some(settings) };
        let resp = self
            .cluster
            .with_sentinel("alter group", |mut c| {
                let req = req.clone();
                async move { c.alter_group(req).await }
            })
            .await?;
        check(resp.error, ())
    }

    /// Creates, changes or deletes a user (see `AlterUserRequest`);
    /// answered once every live broker applied it (`lagging_brokers`
    /// names those that had not, when the wait ran out).
    pub async fn alter_user(&self, req: pb::AlterUserRequest) -> Result<pb::AlterUserResponse> {
        let resp = self
            .cluster
            .with_sentinel("alter user", |mut c| {
                let req = req.clone();
                async move { c.alter_user(req).await }
            })
            .await?;
        check(resp.error.clone(), resp)
    }

    /// Users and their mechanisms (no key), sorted by name.
    pub async fn list_users(&self) -> Result<Vec<pb::UserInfo>> {
        let resp = self
            .cluster
            .with_sentinel("list users", |mut c| async move {
                c.list_users(pb::ListUsersRequest { names: Vec::new() }).await
            })
            .await?;
        check(resp.error, resp.users)
    }

    /// Adds ACL bindings; answered once every live broker applied them.
    pub async fn create_acls(&self, acls: Vec<pb::AclBinding>) -> Result<pb::CreateAclsResponse> {
        let req = pb::CreateAclsRequest { acls };
        let resp = self
            .cluster
            .with_sentinel("create ACLs", |mut c| {
                let req = req.clone();
                async move { c.create_acls(req).await }
            })
            .await?;
        check(resp.error.clone(), resp)
    }

    /// Removes the ACL bindings any filter matches; those removed.
    pub async fn delete_acls(&self, filters: Vec<pb::AclFilter>) -> Result<pb::DeleteAclsResponse> {
        let req = pb::DeleteAclsRequest { filters };
        let resp = self
            .cluster
            .with_sentinel("delete ACLs", |mut c| {
                let req = req.clone();
                async move { c.delete_acls(req).await }
            })
            .await?;
        check(resp.error.clone(), resp)
    }

    /// The ACL bindings `filter` selects.
    pub async fn describe_acls(&self, filter: pb::AclFilter) -> Result<Vec<pb::AclBinding>> {
        let req = pb::DescribeAclsRequest { filter: Some(filter) };
        let resp = self
            .cluster
            .with_sentinel("describe ACLs", |mut c| {
                let req = req.clone();
                async move { c.describe_acls(req).await }
            })
            .await?;
        check(resp.error, resp.acls)
    }

    /// Every topic's name, sorted.
    pub async fn list_topics(&self) -> Result<Vec<pb::TopicMetadata>> {
        let mut topics = self.cluster.refresh(&[], false, &[]).await?.topics;
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// A topic with its partitions and their offsets (asked of each leader).
    pub async fn describe_topic(&self, name: &str) -> Result<TopicReport> {
        let resp = self.cluster.refresh(&[name.to_owned()], false, &[]).await?;
        let topic = resp.topics.into_iter().next().ok_or(ClientError::Closed)?;
        if let Some(e) = &topic.error {
            return Err(ClientError::from_proto(e));
        }
        let config = topic.config.unwrap_or_default();
        let settings = effective_settings(&config, &resp.brokers);
        let mut partition_details = Vec::new();
        for p in topic.partitions {
            let offsets = match p.leader {
                Some(_) => tokio::time::timeout(
                    std::time::Duration::from_secs(3),
                    self.cluster.list_offsets(name, p.partition, None),
                )
                .await
                .ok()
                .and_then(Result::ok),
                None => None,
            };
            partition_details.push(PartitionReport {
                partition: p.partition,
                leader: p.leader,
                replicas: p.replicas,
                isr: p.isr,
                leader_epoch: p.leader_epoch,
                log_start_offset: offsets.as_ref().map(|o| o.log_start_offset),
                log_end_offset: offsets.as_ref().map(|o| o.high_watermark),
            });
        }
        Ok(TopicReport {
            name: config.name,
            partitions: config.partitions,
            replication_factor: config.replication_factor,
            retention_ms: config.retention_ms,
            retention_bytes: config.retention_bytes,
            min_insync_replicas: config.min_insync_replicas,
            unclean_leader_election: config.unclean_leader_election,
            settings,
            partition_details,
        })
    }

    /// Sentinels, brokers and offline partitions.
    pub async fn cluster_status(&self) -> Result<pb::ClusterStatusResponse> {
        self.cluster.cluster_status().await
    }

    /// A partition's offsets, asked of its leader: log start, high
    /// watermark and, with `timestamp` (ms), the first offset at or after it.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: u32,
        timestamp: Option<i64>,
    ) -> Result<pb::ListOffsetsResponse> {
        self.cluster.list_offsets(topic, partition, timestamp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(retention: Option<u64>) -> pb::BrokerInfo {
        pb::BrokerInfo { default_retention_ms: retention, ..Default::default() }
    }

    fn values(settings: &[SettingReport]) -> Vec<(&str, &str, bool)> {
        settings.iter().map(|s| (s.name, s.value.as_str(), s.default)).collect()
    }

    #[test]
    fn defaults_show_their_effective_values_and_say_so() {
        let config = pb::TopicConfig { replication_factor: 3, min_insync_replicas: 2, ..Default::default() };
        let brokers = [broker(Some(604_800_000)), broker(Some(604_800_000))];
        assert_eq!(
            values(&effective_settings(&config, &brokers)),
            [
                ("retention_ms", "604800000", true),
                ("retention_bytes", "unlimited", true),
                ("min_insync_replicas", "2", true),
                ("unclean_leader_election", "false", true),
                ("cleanup_policy", "delete", true),
                ("segment_bytes", "the brokers'", true),
                ("segment_ms", "the brokers'", true),
            ]
        );
    }

    #[test]
    fn a_compacted_topic_shows_its_compaction_settings_and_no_retention() {
        let config = pb::TopicConfig {
            replication_factor: 1,
            cleanup_policy: pb::CleanupPolicy::Compact as i32,
            min_compaction_lag_ms: 5000,
            segment_ms: 60_000,
            ..Default::default()
        };
        let effective = effective_settings(&config, &[]);
        let settings = values(&effective);
        assert_eq!(settings[0], ("retention_ms", "unlimited (compacted)", true));
        assert!(settings.contains(&("cleanup_policy", "compact", false)));
        assert!(settings.contains(&("delete_retention_ms", "86400000", true)));
        assert!(settings.contains(&("min_compaction_lag_ms", "5000", false)));
        assert!(settings.contains(&("min_cleanable_dirty_ratio", "0.5", true)));
        assert!(settings.contains(&("segment_ms", "60000", false)));
    }

    #[test]
    fn set_values_are_not_defaults_and_broker_defaults_may_differ_or_be_unknown() {
        let config = pb::TopicConfig {
            replication_factor: 3,
            min_insync_replicas: 3,
            retention_ms: u64::MAX,
            retention_bytes: 4096,
            unclean_leader_election: true,
            ..Default::default()
        };
        assert_eq!(
            values(&effective_settings(&config, &[])),
            [
                ("retention_ms", "unlimited", false),
                ("retention_bytes", "4096", false),
                ("min_insync_replicas", "3", false),
                ("unclean_leader_election", "true", false),
                ("cleanup_policy", "delete", true),
                ("segment_bytes", "the brokers'", true),
                ("segment_ms", "the brokers'", true),
            ]
        );
        let default = pb::TopicConfig { replication_factor: 1, ..Default::default() };
        let differ = effective_settings(&default, &[broker(Some(1000)), broker(Some(u64::MAX)), broker(None)]);
        assert_eq!(differ[0].value, "per broker: 1000, unlimited");
        assert_eq!(effective_settings(&default, &[broker(None)])[0].value, "the brokers' default (not reported)");
        assert_eq!(differ[2].value, "1", "min_insync_replicas default for one replica");
    }
}
