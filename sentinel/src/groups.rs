//! Consumer-group membership (docs/consumer-groups.md).
//!
//! - A member is the key `groups/{group}/members/{id}` under a lease of its
//!   session timeout: a member that stops heartbeating vanishes with it.
//!   Any sentinel serves joins, heartbeats and leaves (the lease is etcd's).
//! - The sentinel leader watches members, their topics and the topics'
//!   partition counts; when they change it writes a new generation with its
//!   assignment to `groups/{group}/state` (compare-and-swap, op
//!   `rebalance-group`).
//! - Handing a partition over: the member record lists what the member
//!   *owns* (may be fetching). A heartbeat reports what the member fetches;
//!   a partition assigned to it is granted only when no other member's record
//!   owns it, and the grant is written into its record before it is answered.
//!   That write compares the whole group prefix with the revision of the view
//!   the decision was made from, so two grants decided on the same view
//!   cannot both land: a partition is never owned by two live members. A
//!   member whose partition moves away learns it on its next heartbeat,
//!   commits and stops fetching it, and reports that; a lapsed member's
//!   record goes with its lease.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use goulette_proto::v1 as pb;
use tokio::sync::watch;

use crate::assignor::{self, Strategy};
use crate::error::{Result, SentinelError};
use crate::etcd_metrics::Counted;
use crate::leases::Leases;
use crate::model::{GroupRecord, GroupSettingsRecord, MemberRecord, Tp, validate_topic_name};
use crate::store::{Change, Fence, Store};
use crate::view::ClusterView;

/// A member's session timeout when it asks for none.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// etcd does not keep leases shorter than about two seconds.
pub const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(2);
pub const MAX_SESSION_TIMEOUT: Duration = Duration::from_secs(300);
/// Grant attempts of one heartbeat when its view keeps being overtaken.
const GRANT_ATTEMPTS: usize = 4;
/// A member's tag filter is stored with it: bounded (as brokers bound it).
const MAX_TAG_FILTER: usize = 4096;

/// Serves group membership.
pub struct Groups {
    store: Store,
    leases: Arc<Leases>,
    views: watch::Receiver<Arc<ClusterView>>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups").finish_non_exhaustive()
    }
}

fn tp_of(p: &pb::TopicPartition) -> Tp {
    (p.topic.clone(), p.partition)
}

fn to_pb(tps: impl IntoIterator<Item = Tp>) -> Vec<pb::TopicPartition> {
    tps.into_iter().map(|(topic, partition)| pb::TopicPartition { topic, partition }).collect()
}

/// A group's settings as the view holds them (all unset when none).
fn settings_of(view: &ClusterView, group: &str) -> pb::GroupSettings {
    let record = view.group_settings.get(group).cloned().unwrap_or_default();
    pb::GroupSettings { max_deliveries: record.max_deliveries }
}

fn check_group(group: &str) -> Result<()> {
    validate_topic_name(group).map_err(|r| SentinelError::InvalidArgument(format!("group name: {r}")))
}

fn unknown(group: &str, member: &str) -> SentinelError {
    SentinelError::UnknownMember { group: group.to_owned(), member: member.to_owned() }
}

impl Groups {
    pub fn new(store: Store, leases: Arc<Leases>, views: watch::Receiver<Arc<ClusterView>>) -> Groups {
        Groups { store, leases, views }
    }

    fn view(&self) -> Arc<ClusterView> {
        self.views.borrow().clone()
    }

    /// Adds a member under a new session lease.
    pub async fn join(&self, req: pb::JoinGroupRequest) -> Result<pb::JoinGroupResponse> {
        check_group(&req.group)?;
        if req.topics.is_empty() {
            return Err(SentinelError::InvalidArgument("a member must consume at least one topic".into()));
        }
        for t in &req.topics {
            validate_topic_name(t).map_err(|r| SentinelError::InvalidArgument(format!("topic {t:?}: {r}")))?;
        }
        let client_id = if req.client_id.is_empty() { "consumer".to_owned() } else { req.client_id.clone() };
        validate_topic_name(&client_id).map_err(|r| SentinelError::InvalidArgument(format!("client id: {r}")))?;
        let strategy = Strategy::parse(&req.strategy).map_err(SentinelError::InvalidArgument)?;
        if let Some(other) = self.view().groups.get(&req.group).and_then(|g| g.members.values().next())
            && other.strategy != strategy.name()
        {
            return Err(SentinelError::InvalidArgument(format!(
                "group {} uses strategy {}; this member asked for {}",
                req.group,
                other.strategy,
                strategy.name()
            )));
        }
        if req.tag_filter.len() > MAX_TAG_FILTER {
            return Err(SentinelError::InvalidArgument(format!("a tag filter is at most {MAX_TAG_FILTER} bytes")));
        }
        if let Some(other) = self.view().groups.get(&req.group).and_then(|g| g.members.values().next())
            && other.tag_filter != req.tag_filter
        {
            let shown = |f: &str| if f.is_empty() { "every record".to_owned() } else { format!("tags `{f}`") };
            return Err(SentinelError::InvalidArgument(format!(
                "group {} reads {}; this member asked for {}: every member of a group must use the same tag filter (use another group)",
                req.group,
                shown(&other.tag_filter),
                shown(&req.tag_filter)
            )));
        }
        let timeout = match req.session_timeout_ms {
            0 => DEFAULT_SESSION_TIMEOUT,
            ms => Duration::from_millis(u64::from(ms)).clamp(MIN_SESSION_TIMEOUT, MAX_SESSION_TIMEOUT),
        };
        let mut client = self.store.client();
        let ttl = timeout.as_millis().div_ceil(1000) as i64;
        let lease = client
            .lease_grant(ttl, None)
            .await
            .counted()
            .map_err(|e| SentinelError::etcd("grant a member session", e))?;
        let session = lease.id();
        let mut topics = req.topics.clone();
        topics.sort();
        topics.dedup();
        let member = MemberRecord {
            member_id: format!("{client_id}-{session:x}"),
            client_id,
            topics,
            strategy: strategy.name().to_owned(),
            tag_filter: req.tag_filter.clone(),
            session,
            session_timeout_ms: timeout.as_millis() as u64,
            owned: Vec::new(),
        };
        let key = self.store.keys().group_member(&req.group, &member.member_id);
        let json = serde_json::to_string(&member).unwrap_or_default();
        if let Err(e) = client.put(key, json, Some(PutOptions::new().with_lease(session))).await.counted() {
            let _ = self.leases.revoke(session).await;
            return Err(SentinelError::etcd("add a group member", e));
        }
        tracing::info!(group = %req.group, member = %member.member_id, topics = ?member.topics, "member joined");
        // Answer once this sentinel's view shows the member, so that its
        // first heartbeat here finds it.
        let mut views = self.views.clone();
        let shown =
            |v: &Arc<ClusterView>| v.groups.get(&req.group).is_some_and(|g| g.members.contains_key(&member.member_id));
        let _ = tokio::time::timeout(Duration::from_secs(2), views.wait_for(shown)).await;
        Ok(pb::JoinGroupResponse {
            error: None,
            member_id: member.member_id,
            session_id: session,
            session_timeout_ms: timeout.as_millis() as u32,
            // Several beats per timeout, and at least one a second so that a
            // partition handed over is picked up quickly.
            heartbeat_interval_ms: (timeout / 4).min(Duration::from_secs(1)).as_millis() as u32,
        })
    }

    /// Refreshes the member's session, records what it fetches, grants what
    /// it may take over, and answers its assignment.
    pub async fn heartbeat(&self, req: pb::GroupHeartbeatRequest) -> Result<pb::GroupHeartbeatResponse> {
        check_group(&req.group)?;
        // The member must be in the view, with this session, before its
        // lease is touched: a stray session id refreshes nothing.
        let missing =
            || SentinelError::Lagging(format!("member {} of group {} is not in this view", req.member_id, req.group));
        {
            let view = self.view();
            let me = view.groups.get(&req.group).and_then(|g| g.members.get(&req.member_id));
            match me {
                _ if view.revision == 0 => return Err(SentinelError::Lagging("the view is not loaded yet".into())),
                // Its session lapsed (the key went with the lease), or this
                // view lags behind its join: the keep-alive tells which.
                None => {
                    self.leases.keep_alive(req.session_id, || unknown(&req.group, &req.member_id)).await?;
                    return Err(missing());
                }
                Some(m) if m.session != req.session_id => return Err(unknown(&req.group, &req.member_id)),
                Some(_) => {}
            }
        }
        self.leases.keep_alive(req.session_id, || unknown(&req.group, &req.member_id)).await?;
        let fetching: BTreeSet<Tp> = req.fetching.iter().map(tp_of).collect();
        let mut views = self.views.clone();
        for _ in 0..GRANT_ATTEMPTS {
            let view = views.borrow_and_update().clone();
            let Some(me) = view.groups.get(&req.group).and_then(|g| g.members.get(&req.member_id)) else {
                return Err(missing());
            };
            let group = &view.groups[&req.group];
            let (generation, target) = group.assigned(&req.member_id);
            let others: BTreeSet<&Tp> =
                group.members.iter().filter(|(id, _)| **id != req.member_id).flat_map(|(_, m)| &m.owned).collect();
            let owned_before: BTreeSet<Tp> = me.owned.iter().cloned().collect();
            // It can only still fetch what it owned; it may take what is
            // assigned to it and owned by no one else.
            let mut owned: BTreeSet<Tp> = fetching.intersection(&owned_before).cloned().collect();
            owned.extend(target.iter().filter(|tp| !others.contains(tp)).cloned());
            let pending = target.iter().filter(|tp| !owned.contains(*tp)).count() as u32
                + u32::from(group.state.as_ref().is_none_or(|(s, _)| !s.assignment.contains_key(&req.member_id)));
            let answer = |owned: &BTreeSet<Tp>| pb::GroupHeartbeatResponse {
                error: None,
                generation,
                assignment: to_pb(target.intersection(owned).cloned()),
                pending,
            };
            if owned == owned_before {
                return Ok(answer(&owned));
            }
            let record = MemberRecord { owned: owned.iter().cloned().collect(), ..me.clone() };
            let keys = self.store.keys();
            let txn = Txn::new()
                .when([Compare::mod_revision(keys.group(&req.group), CompareOp::Less, view.revision + 1).with_prefix()])
                .and_then([TxnOp::put(
                    keys.group_member(&req.group, &req.member_id),
                    serde_json::to_string(&record).unwrap_or_default(),
                    Some(PutOptions::new().with_lease(req.session_id)),
                )]);
            let resp = self
                .store
                .client()
                .txn(txn)
                .await
                .counted()
                .map_err(|e| SentinelError::etcd("record a member's partitions", e))?;
            if resp.succeeded() {
                return Ok(answer(&owned));
            }
            // The group changed since this view: decide again on a newer one.
            let _ = tokio::time::timeout(Duration::from_millis(500), views.changed()).await;
        }
        // Still racing: answer without new grants (a subset of what it owns).
        let view = self.view();
        let group = view.groups.get(&req.group);
        let (generation, target) = group.map(|g| g.assigned(&req.member_id)).unwrap_or_default();
        let owned: BTreeSet<Tp> = group
            .and_then(|g| g.members.get(&req.member_id))
            .map(|m| m.owned.iter().filter(|tp| fetching.contains(*tp)).cloned().collect())
            .unwrap_or_default();
        Ok(pb::GroupHeartbeatResponse {
            error: None,
            generation,
            assignment: to_pb(target.intersection(&owned).cloned()),
            pending: 1,
        })
    }

    /// Ends a member's session: its key goes, and the leader rebalances.
    pub async fn leave(&self, req: pb::LeaveGroupRequest) -> Result<()> {
        check_group(&req.group)?;
        let view = self.view();
        match view.groups.get(&req.group).and_then(|g| g.members.get(&req.member_id)) {
            Some(m) if m.session == req.session_id => {}
            // Only a member's own session is revoked, never a stray id.
            _ => return Err(unknown(&req.group, &req.member_id)),
        }
        self.leases.revoke(req.session_id).await?;
        // Answer once this sentinel's view has dropped the member, so that
        // whoever asks next (`group reset`) does not still see it.
        let mut views = self.views.clone();
        let gone =
            |v: &Arc<ClusterView>| v.groups.get(&req.group).is_none_or(|g| !g.members.contains_key(&req.member_id));
        let _ = tokio::time::timeout(Duration::from_secs(2), views.wait_for(gone)).await;
        tracing::info!(group = %req.group, member = %req.member_id, "member left");
        Ok(())
    }

    /// A group's generation and members, from a view that has reached
    /// `min_generation` if that happens within a second (so a broker checking
    /// a fresh member's commit is not misled by a lagging view).
    pub async fn describe(&self, group: &str, min_generation: i64) -> Result<pb::DescribeGroupResponse> {
        check_group(group)?;
        let generation_of =
            |v: &ClusterView| v.groups.get(group).and_then(|g| g.state.as_ref()).map_or(0, |(s, _)| s.generation);
        let mut views = self.views.clone();
        let _ =
            tokio::time::timeout(Duration::from_secs(1), views.wait_for(|v| generation_of(v) >= min_generation)).await;
        let view = self.view();
        if generation_of(&view) < min_generation {
            // Never answer an old generation to a fencing check: it would
            // refuse a current member's commit.
            return Err(SentinelError::Lagging(format!("group {group} generation {min_generation} not seen yet")));
        }
        let Some(g) = view.groups.get(group) else {
            let settings = Some(settings_of(&view, group));
            return Ok(pb::DescribeGroupResponse { group: group.to_owned(), settings, ..Default::default() });
        };
        let state = g.state.as_ref().map(|(s, _)| s);
        let members = g
            .members
            .values()
            .map(|m| pb::GroupMember {
                member_id: m.member_id.clone(),
                client_id: m.client_id.clone(),
                topics: m.topics.clone(),
                assigned: to_pb(state.and_then(|s| s.assignment.get(&m.member_id)).cloned().unwrap_or_default()),
                owned: to_pb(m.owned.clone()),
            })
            .collect();
        Ok(pb::DescribeGroupResponse {
            error: None,
            group: group.to_owned(),
            generation: state.map_or(0, |s| s.generation),
            strategy: state.map(|s| s.strategy.clone()).unwrap_or_default(),
            members,
            settings: Some(settings_of(&view, group)),
        })
    }

    /// Sets a group's settings (leader only): kept in etcd, apart from its
    /// membership, until set again.
    pub async fn alter(&self, fence: &Fence, group: &str, settings: &pb::GroupSettings) -> Result<()> {
        check_group(group)?;
        let record = GroupSettingsRecord { max_deliveries: settings.max_deliveries };
        let detail = format!("group {group}: max_deliveries {}", record.max_deliveries);
        let change =
            Change::new("alter-group", detail).put_json(self.store.keys().group_settings(group), &record, None);
        self.store.commit(fence, change).await.map(drop)
    }

    /// Groups with membership state.
    pub fn list(&self) -> Vec<String> {
        self.view().groups.keys().cloned().collect()
    }

    /// Forgets an empty group's membership state (leader only).
    pub async fn remove(&self, fence: &Fence, group: &str) -> Result<()> {
        check_group(group)?;
        let view = self.view();
        let Some(g) = view.groups.get(group) else { return Ok(()) };
        if !g.members.is_empty() {
            return Err(SentinelError::GroupNotEmpty(group.to_owned()));
        }
        let keys = self.store.keys();
        let mut change = Change::new("remove-group", format!("group {group}"));
        // Only the state: a member joining meanwhile keeps its key.
        change.deletes.push((keys.group_state(group), false));
        if let Some((_, revision)) = &g.state {
            change.require_mod_revision.push((keys.group_state(group), *revision));
        }
        self.store.commit(fence, change).await.map(drop)
    }

    /// The leader's duty: a new generation for each group whose members,
    /// subscriptions or subscribed partition counts changed. Returns how
    /// many groups got one.
    pub async fn rebalance(&self, fence: &Fence, view: &ClusterView) -> Result<usize> {
        let mut done = 0;
        for (name, group) in &view.groups {
            let subscriptions: assignor::Subscriptions =
                group.members.iter().map(|(id, m)| (id.clone(), m.topics.clone())).collect();
            let counts: BTreeMap<String, u32> = subscriptions
                .values()
                .flatten()
                .filter_map(|t| view.topics.get(t).map(|r| (t.clone(), r.partitions)))
                .collect();
            let (previous, revision) = match &group.state {
                Some((s, _)) if s.subscriptions == subscriptions && s.partition_counts == counts => continue,
                Some((s, r)) => (s.clone(), *r),
                None if group.members.is_empty() => continue,
                None => (GroupRecord::default(), 0),
            };
            let strategy = group
                .members
                .values()
                .next()
                .and_then(|m| Strategy::parse(&m.strategy).ok())
                .unwrap_or(Strategy::Sticky);
            let assignment = assignor::assign(strategy, &subscriptions, &counts, &previous.assignment);
            let record = GroupRecord {
                group: name.clone(),
                generation: previous.generation + 1,
                strategy: strategy.name().to_owned(),
                subscriptions,
                partition_counts: counts,
                assignment,
            };
            let summary: Vec<String> =
                record.assignment.iter().map(|(m, tps)| format!("{m}: {} partitions", tps.len())).collect();
            let key = self.store.keys().group_state(name);
            let detail = format!("group {name} generation {} ({})", record.generation, summary.join(", "));
            let mut change = Change::new("rebalance-group", detail).put_json(key.clone(), &record, None);
            if revision == 0 {
                change.require_absent.push(key);
            } else {
                change.require_mod_revision.push((key, revision));
            }
            match self.store.commit(fence, change).await {
                Ok(_) => done += 1,
                // Written meanwhile: the next view shows it and we look again.
                Err(SentinelError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}
