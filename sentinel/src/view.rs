//! `ClusterView`: the sentinel's in-memory copy of the Goulette prefix in
//! etcd, built from one read at a revision and kept current by a watch from
//! the next revision. Every sentinel answers reads from it.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Result, SentinelError};
use crate::keys::{KeyKind, Keys};
use crate::model::{BrokerRecord, GroupRecord, MemberRecord, PartitionRecord, SentinelRecord, TopicRecord};
use crate::users::{TokenKeysRecord, UserRecord};

/// A candidate in the sentinel election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// etcd create revision of its key: the lowest one leads.
    pub create_revision: i64,
    /// The gRPC address it published.
    pub address: String,
}

/// A consumer group's membership keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupView {
    /// The current generation, with its key's mod revision.
    pub state: Option<(GroupRecord, i64)>,
    /// Live members by id.
    pub members: BTreeMap<String, MemberRecord>,
}

impl GroupView {
    /// The current generation (0 before the first) and `member`'s share of it.
    pub fn assigned(&self, member: &str) -> (i64, std::collections::BTreeSet<crate::model::Tp>) {
        match &self.state {
            Some((state, _)) => {
                (state.generation, state.assignment.get(member).into_iter().flatten().cloned().collect())
            }
            None => (0, std::collections::BTreeSet::new()),
        }
    }
}

/// Everything a sentinel knows about the cluster, as of `revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// The etcd revision this view reflects.
    pub revision: i64,
    pub topics: BTreeMap<String, TopicRecord>,
    /// Each topic's incarnation: its id, or for a topic created before ids
    /// existed, its key's create revision.
    pub topic_incarnations: BTreeMap<String, u64>,
    /// Mod revision of each topic's key, for compare-and-swap writes.
    pub topic_revisions: BTreeMap<String, i64>,
    /// Deleted topic incarnations (name, id): evidence for brokers to
    /// delete their data.
    pub tombstones: BTreeSet<(String, u64)>,
    pub partitions: BTreeMap<(String, u32), PartitionRecord>,
    /// Mod revision of each partition's key, for compare-and-swap writes.
    pub partition_revisions: BTreeMap<(String, u32), i64>,
    /// Brokers with a live session.
    pub brokers: BTreeMap<u32, BrokerRecord>,
    /// Brokers being decommissioned.
    pub decommissioned: BTreeSet<u32>,
    pub sentinels: BTreeMap<String, SentinelRecord>,
    /// Election candidates by key.
    pub candidates: BTreeMap<String, Candidate>,
    /// Consumer groups with membership state.
    pub groups: BTreeMap<String, GroupView>,
    /// Groups' settings (`group alter`), apart from their membership.
    pub group_settings: BTreeMap<String, crate::model::GroupSettingsRecord>,
    /// Users with their credentials.
    pub users: BTreeMap<String, UserRecord>,
    /// Mod revision of each user's key, for compare-and-swap writes.
    pub user_revisions: BTreeMap<String, i64>,
    /// The keys signing gRPC tokens, with their key's mod revision.
    pub token_keys: Option<(TokenKeysRecord, i64)>,
    /// ACL bindings by id.
    pub acls: BTreeMap<String, goulette_auth::acl::AclBinding>,
    /// Changes with every change of `acls`: unique in this process (drawn
    /// from one counter, so a view read afresh never repeats an older
    /// view's), so that equal versions mean equal bindings and their index
    /// is rebuilt only when they change.
    pub acls_version: u64,
}

/// A version no view of this process had before.
fn next_acls_version() -> u64 {
    static ACL_CHANGES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    ACL_CHANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value)
        .map_err(|e| SentinelError::CorruptValue { key: key.to_owned(), reason: e.to_string() })
}

impl ClusterView {
    /// Applies a put of `key` (with its create and mod revisions).
    pub fn put(&mut self, keys: &Keys, key: &str, value: &[u8], create_revision: i64, mod_revision: i64) -> Result<()> {
        match keys.parse(key) {
            Some(KeyKind::Broker(id)) => {
                self.brokers.insert(id, decode(key, value)?);
            }
            Some(KeyKind::Decommissioned(id)) => {
                self.decommissioned.insert(id);
            }
            Some(KeyKind::Sentinel(id)) => {
                self.sentinels.insert(id.to_owned(), decode(key, value)?);
            }
            Some(KeyKind::Topic(name)) => {
                let topic: TopicRecord = decode(key, value)?;
                let incarnation = if topic.id != 0 { topic.id } else { create_revision as u64 };
                self.topic_incarnations.insert(name.to_owned(), incarnation);
                self.topic_revisions.insert(name.to_owned(), mod_revision);
                self.topics.insert(name.to_owned(), topic);
            }
            Some(KeyKind::Tombstone(name, id)) => {
                self.tombstones.insert((name.to_owned(), id));
            }
            Some(KeyKind::Partition(topic, p)) => {
                self.partitions.insert((topic.to_owned(), p), decode(key, value)?);
                self.partition_revisions.insert((topic.to_owned(), p), mod_revision);
            }
            Some(KeyKind::Election) => {
                let address = String::from_utf8_lossy(value).into_owned();
                self.candidates.insert(key.to_owned(), Candidate { create_revision, address });
            }
            Some(KeyKind::GroupState(group)) => {
                self.groups.entry(group.to_owned()).or_default().state = Some((decode(key, value)?, mod_revision));
            }
            Some(KeyKind::GroupMember(group, member)) => {
                self.groups.entry(group.to_owned()).or_default().members.insert(member.to_owned(), decode(key, value)?);
            }
            Some(KeyKind::GroupSettings(group)) => {
                self.group_settings.insert(group.to_owned(), decode(key, value)?);
            }
            Some(KeyKind::User(name)) => {
                self.users.insert(name.to_owned(), decode(key, value)?);
                self.user_revisions.insert(name.to_owned(), mod_revision);
            }
            Some(KeyKind::TokenKeys) => self.token_keys = Some((decode(key, value)?, mod_revision)),
            Some(KeyKind::Acl(id)) => {
                let record: crate::acls::AclRecord = decode(key, value)?;
                let binding = goulette_auth::acl::AclBinding::try_from(&record)
                    .map_err(|reason| SentinelError::CorruptValue { key: key.to_owned(), reason })?;
                self.acls.insert(id.to_owned(), binding);
                self.acls_version = next_acls_version();
            }
            Some(KeyKind::Op(_) | KeyKind::Counter(_)) | None => {}
        }
        Ok(())
    }

    /// Applies a delete of `key`.
    pub fn delete(&mut self, keys: &Keys, key: &str) {
        match keys.parse(key) {
            Some(KeyKind::Broker(id)) => {
                self.brokers.remove(&id);
            }
            Some(KeyKind::Decommissioned(id)) => {
                self.decommissioned.remove(&id);
            }
            Some(KeyKind::Sentinel(id)) => {
                self.sentinels.remove(id);
            }
            Some(KeyKind::Topic(name)) => {
                self.topics.remove(name);
                self.topic_incarnations.remove(name);
                self.topic_revisions.remove(name);
            }
            Some(KeyKind::Tombstone(name, id)) => {
                self.tombstones.remove(&(name.to_owned(), id));
            }
            Some(KeyKind::Partition(topic, p)) => {
                self.partitions.remove(&(topic.to_owned(), p));
                self.partition_revisions.remove(&(topic.to_owned(), p));
            }
            Some(KeyKind::Election) => {
                self.candidates.remove(key);
            }
            Some(KeyKind::GroupState(group)) => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.state = None;
                }
                self.drop_group_if_empty(group);
            }
            Some(KeyKind::GroupMember(group, member)) => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.members.remove(member);
                }
                self.drop_group_if_empty(group);
            }
            Some(KeyKind::GroupSettings(group)) => {
                self.group_settings.remove(group);
            }
            Some(KeyKind::User(name)) => {
                self.users.remove(name);
                self.user_revisions.remove(name);
            }
            Some(KeyKind::TokenKeys) => self.token_keys = None,
            Some(KeyKind::Acl(id)) => {
                self.acls.remove(id);
                self.acls_version = next_acls_version();
            }
            Some(KeyKind::Op(_) | KeyKind::Counter(_)) | None => {}
        }
    }

    fn drop_group_if_empty(&mut self, group: &str) {
        if self.groups.get(group).is_some_and(|g| g.state.is_none() && g.members.is_empty()) {
            self.groups.remove(group);
        }
    }

    /// Partitions without a live leader (unavailable).
    pub fn offline(&self) -> impl Iterator<Item = &PartitionRecord> + '_ {
        self.partitions.values().filter(|p| !p.leader.is_some_and(|l| self.brokers.contains_key(&l)))
    }

    /// Partitions with a live leader whose ISR is smaller than their replica set.
    pub fn under_replicated(&self) -> impl Iterator<Item = &PartitionRecord> + '_ {
        self.partitions
            .values()
            .filter(|p| p.leader.is_some_and(|l| self.brokers.contains_key(&l)) && p.isr.len() < p.replicas.len())
    }

    /// The elected sentinel's address: the candidate with the lowest create revision.
    pub fn leader_address(&self) -> Option<&str> {
        self.candidates.values().min_by_key(|c| c.create_revision).map(|c| c.address.as_str())
    }

    /// Partitions of one topic, in partition order.
    pub fn topic_partitions<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a PartitionRecord> + 'a {
        self.partitions.range((topic.to_owned(), 0)..=(topic.to_owned(), u32::MAX)).map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two views read apart (a reload after a watch failure) with as many
    /// ACL changes never share a version: their bindings' index and the
    /// brokers' stream tell them apart.
    #[test]
    fn acl_versions_never_repeat_across_views() {
        let keys = Keys::new("/g");
        let binding = |name: &str| {
            let b = goulette_auth::acl::AclBinding {
                resource_type: goulette_auth::acl::ResourceType::Topic,
                name: name.into(),
                pattern: goulette_auth::acl::PatternType::Literal,
                principal: "User:a".into(),
                host: "*".into(),
                operation: goulette_auth::acl::Operation::Read,
                permission: goulette_auth::acl::Permission::Allow,
            };
            (b.id(), serde_json::to_vec(&crate::acls::AclRecord::from(&b)).unwrap())
        };
        let (mut before, mut after) = (ClusterView::default(), ClusterView::default());
        let (id, json) = binding("x");
        before.put(&keys, &keys.acl(&id), &json, 1, 1).unwrap();
        let (id, json) = binding("y");
        after.put(&keys, &keys.acl(&id), &json, 1, 1).unwrap();
        assert_ne!(before.acls_version, after.acls_version);
        let version = after.acls_version;
        after.delete(&keys, &keys.acl(&id));
        assert!(after.acls.is_empty() && after.acls_version != version);
    }
}
