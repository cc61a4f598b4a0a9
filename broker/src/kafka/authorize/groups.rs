//! Checks of the group APIs: READ on a group to join it, sync, heartbeat,
//! leave or commit its offsets (and READ on each topic committed);
//! DESCRIBE to find its coordinator, describe it, list it, or fetch its
//! offsets; DELETE to delete it.

use goulette_auth::acl::Operation;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetFetchRequest, OffsetFetchResponse,
};

use super::{Guard, group_denied, topic_denied};

/// Whether `caller` may act in `group` as a member (join, sync, heartbeat, leave).
pub fn member(guard: Guard, group: &str) -> bool {
    guard.group(Operation::Read, group)
}

/// Whether `caller` may find the coordinator of `req`'s group (or
/// transactional id, which has no coordinator here: left to the handler).
pub fn find_coordinator(guard: Guard, req: &FindCoordinatorRequest) -> bool {
    if req.key_type != 0 {
        return true;
    }
    let keys = if req.coordinator_keys.is_empty() { vec![req.key.clone()] } else { req.coordinator_keys.clone() };
    keys.iter().all(|k| guard.group(Operation::Describe, k))
}

/// Before an OffsetCommit: `None` when the group is denied (the caller
/// answers every partition GROUP_AUTHORIZATION_FAILED); else the topics
/// it may not read, taken out of `req`, with their answers.
pub fn commit(guard: Guard, req: &mut OffsetCommitRequest) -> Option<Vec<OffsetCommitResponseTopic>> {
    let refuse = |t: &kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic, code: i16| {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(code)
            })
            .collect();
        OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
    };
    if !guard.group(Operation::Read, &req.group_id.0) {
        return None;
    }
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        if guard.topic(Operation::Read, &t.name.0) {
            return true;
        }
        denied.push(refuse(t, topic_denied()));
        false
    });
    Some(denied)
}

/// The answer refusing a whole OffsetCommit (its group is denied).
pub fn commit_refused(req: &OffsetCommitRequest) -> kafka_protocol::messages::OffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(group_denied())
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    kafka_protocol::messages::OffsetCommitResponse::default().with_topics(topics)
}

/// Whether `caller` may fetch `req`'s group's committed offsets.
pub fn offset_fetch(guard: Guard, req: &OffsetFetchRequest) -> bool {
    guard.group(Operation::Describe, &req.group_id.0)
}

/// The answer refusing an OffsetFetch.
pub fn offset_fetch_refused() -> OffsetFetchResponse {
    OffsetFetchResponse::default().with_error_code(group_denied())
}

/// After OffsetFetch: topics `caller` may not describe are left out.
pub fn offset_fetch_response(guard: Guard, resp: &mut OffsetFetchResponse) {
    if guard.active() {
        resp.topics.retain(|t| guard.topic(Operation::Describe, &t.name.0));
    }
}

/// After DescribeGroups: groups `caller` may not describe are answered
/// GROUP_AUTHORIZATION_FAILED, with nothing of them shown.
pub fn describe(guard: Guard, resp: &mut DescribeGroupsResponse) {
    if !guard.active() {
        return;
    }
    for g in &mut resp.groups {
        if !guard.group(Operation::Describe, &g.group_id.0) {
            let id = g.group_id.clone();
            *g = Default::default();
            g.group_id = id;
            g.error_code = group_denied();
        }
    }
}

/// After ListGroups: only groups `caller` may describe (all of them with
/// DESCRIBE on the cluster).
pub fn list(guard: Guard, resp: &mut ListGroupsResponse) {
    if guard.active() && !guard.cluster(Operation::Describe) {
        resp.groups.retain(|g| guard.group(Operation::Describe, &g.group_id.0));
    }
}

/// Takes the groups `caller` may not delete out of `req`; their answers.
pub fn delete(guard: Guard, req: &mut DeleteGroupsRequest) -> Vec<DeletableGroupResult> {
    let mut denied = Vec::new();
    req.groups_names.retain(|g| {
        if guard.group(Operation::Delete, &g.0) {
            return true;
        }
        denied.push(DeletableGroupResult::default().with_group_id(g.clone()).with_error_code(group_denied()));
        false
    });
    denied
}
