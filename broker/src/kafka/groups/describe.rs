//! ListGroups (v0–4) and DescribeGroups (v0–5): the groups this broker
//! coordinates (Kafka clients ask every broker and merge), with their
//! state, protocol and members. A group known only by its committed
//! offsets (native, or Kafka with no member left) is listed as Empty.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::Kafka;
use crate::kafka::groups::state::Group;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Answers a ListGroups request.
pub async fn list(kafka: &Kafka, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut listed: std::collections::BTreeMap<String, (String, &'static str)> = std::collections::BTreeMap::new();
    for name in kafka.offsets.groups_here().await {
        listed.insert(name, (String::new(), "Empty"));
    }
    for name in kafka.groups.names() {
        if kafka.groups.coordinated(&name).is_err() {
            continue;
        }
        if let Some((protocol_type, state)) =
            kafka.groups.with_existing(&name, |g| (g.protocol_type.clone(), g.phase.name()))
        {
            listed.insert(name, (protocol_type, state));
        }
    }
    let wanted =
        |state: &str| req.states_filter.is_empty() || req.states_filter.iter().any(|s| s.eq_ignore_ascii_case(state));
    let groups = listed
        .into_iter()
        .filter(|(_, (_, state))| wanted(state))
        .map(|(name, (protocol_type, state))| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(name)))
                .with_protocol_type(StrBytes::from_string(protocol_type))
                .with_group_state(text(state))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

fn described(name: GroupId, g: &Group) -> DescribedGroup {
    let members = g
        .members
        .values()
        .map(|m| {
            let metadata =
                m.protocols.iter().find(|(n, _)| *n == g.protocol).map(|(_, b)| b.clone()).unwrap_or_default();
            DescribedGroupMember::default()
                .with_member_id(text(&m.id))
                .with_client_id(text(&m.client_id))
                .with_client_host(text(&m.client_host))
                .with_member_metadata(metadata)
                .with_member_assignment(m.assignment.clone())
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(name)
        .with_group_state(text(g.phase.name()))
        .with_protocol_type(text(&g.protocol_type))
        .with_protocol_data(text(&g.protocol))
        .with_members(members)
}

/// Answers a DescribeGroups request.
pub async fn describe(kafka: &Kafka, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let mut out = Vec::with_capacity(req.groups.len().min(1024));
    for name in req.groups {
        let group = name.0.to_string();
        if let Err(code) = kafka.groups.coordinated(&group) {
            out.push(DescribedGroup::default().with_group_id(name).with_error_code(code));
            continue;
        }
        match kafka.groups.with_existing(&group, |g| described(name.clone(), g)) {
            Some(d) => out.push(d),
            None => {
                // Known by its offsets only: Empty; not at all: Dead.
                let has_offsets = kafka.offsets.groups_here().await.contains(&group);
                let state = if has_offsets { "Empty" } else { "Dead" };
                out.push(DescribedGroup::default().with_group_id(name).with_group_state(text(state)));
            }
        }
    }
    DescribeGroupsResponse::default().with_groups(out)
}
