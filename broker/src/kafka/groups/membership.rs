//! JoinGroup (v0–7), SyncGroup (v0–5), Heartbeat (v0–4) and LeaveGroup
//! (v0–4): the Kafka requests that drive a group's [`state`] machine.
//!
//! A join or a sync that must wait for the other members is answered when
//! the phase ends (the connection's later answers wait behind it, as with
//! Kafka). A group held by native Goulette consumers refuses Kafka members
//! with INCONSISTENT_GROUP_PROTOCOL: one group, one protocol.

use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::Kafka;
use crate::kafka::groups::state::{JoinRequest, Joined, Reply};

/// Session timeouts a member may ask for (Kafka's defaults are 6 s–30 min;
/// the lower bound here lets tests expire members quickly).
const SESSION_TIMEOUTS: std::ops::RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(1800);

fn str_bytes(s: String) -> StrBytes {
    StrBytes::from_string(s)
}

fn join_response(version: i16, joined: Joined) -> JoinGroupResponse {
    let mut out = JoinGroupResponse::default()
        .with_error_code(joined.error)
        .with_generation_id(if joined.error == 0 { joined.generation } else { -1 })
        .with_leader(str_bytes(joined.leader))
        .with_member_id(str_bytes(joined.member_id))
        .with_members(
            joined
                .members
                .into_iter()
                .map(|(id, metadata)| {
                    JoinGroupResponseMember::default().with_member_id(str_bytes(id)).with_metadata(metadata)
                })
                .collect(),
        );
    if version >= 7 {
        out.protocol_type = Some(str_bytes(joined.protocol_type));
    }
    out.protocol_name = Some(str_bytes(joined.protocol));
    out
}

/// Answers a JoinGroup request (when the join phase ends, if it must wait).
pub async fn join(kafka: &Kafka, version: i16, client_id: String, req: JoinGroupRequest) -> JoinGroupResponse {
    let group = req.group_id.0.to_string();
    let refuse = |code: i16| join_response(version, Joined { error: code, ..Joined::default() });
    if goulette_proto::validate_topic_name(&group).is_err() {
        return refuse(ResponseError::InvalidGroupId.code());
    }
    if let Err(code) = kafka.groups.coordinated(&group) {
        return refuse(code);
    }
    let session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
    if !SESSION_TIMEOUTS.contains(&session_timeout) {
        return refuse(ResponseError::InvalidSessionTimeout.code());
    }
    // v0 has no rebalance timeout: it is the session timeout.
    let rebalance_timeout = match req.rebalance_timeout_ms {
        n if n > 0 => Duration::from_millis(n as u64),
        _ => session_timeout,
    };
    if kafka.groups.with_existing(&group, |g| g.members.is_empty()).unwrap_or(true)
        && held_natively(kafka, &group).await
    {
        tracing::info!(%group, "Kafka JoinGroup refused: native Goulette consumers hold the group");
        return refuse(ResponseError::InconsistentGroupProtocol.code());
    }
    let request = JoinRequest {
        member_id: req.member_id.to_string(),
        client_host: String::new(),
        session_timeout,
        rebalance_timeout,
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        handshake: version >= 4,
        client_id: client_id.clone(),
    };
    let new_id = kafka.groups.new_member_id(&client_id);
    let delay = kafka.groups.initial_delay();
    let reply = kafka.groups.with(&group, |g| g.join(request, Instant::now(), delay, new_id));
    let joined = match reply {
        Reply::Now(joined) => joined,
        // Dropped: the group went away with its coordinator.
        Reply::Later(waiting) => waiting
            .await
            .unwrap_or_else(|_| Joined { error: ResponseError::NotCoordinator.code(), ..Joined::default() }),
    };
    join_response(version, joined)
}

/// Whether native Goulette consumers are members of `group` now.
async fn held_natively(kafka: &Kafka, group: &str) -> bool {
    match kafka.sentinels.describe_group(group, 0).await {
        Ok(described) => described.error.is_none() && !described.members.is_empty(),
        Err(_) => false,
    }
}

/// Answers a SyncGroup request (when the leader's assignments arrive, if
/// it must wait).
pub async fn sync(kafka: &Kafka, version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    let group = req.group_id.0.to_string();
    let answer = |result: Result<bytes::Bytes, i16>, protocol: (String, String)| {
        let mut out = match result {
            Ok(assignment) => SyncGroupResponse::default().with_assignment(assignment),
            Err(code) => SyncGroupResponse::default().with_error_code(code),
        };
        if version >= 5 {
            out.protocol_type = Some(str_bytes(protocol.0));
            out.protocol_name = Some(str_bytes(protocol.1));
        }
        out
    };
    if let Err(code) = kafka.groups.coordinated(&group) {
        return answer(Err(code), Default::default());
    }
    let assignments = req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect();
    let member = req.member_id.to_string();
    let (reply, protocol) = kafka.groups.with(&group, |g| {
        // The member first (as Kafka does): a member of a group this
        // coordinator does not know must join again, not give up.
        let inconsistent = g.members.contains_key(&member)
            && (req.protocol_type.as_ref().is_some_and(|t| t.as_str() != g.protocol_type)
                || req.protocol_name.as_ref().is_some_and(|n| !g.protocol.is_empty() && n.as_str() != g.protocol));
        let reply = if inconsistent {
            Reply::Now(Err(ResponseError::InconsistentGroupProtocol.code()))
        } else {
            g.sync(&member, req.generation_id, assignments, Instant::now())
        };
        (reply, (g.protocol_type.clone(), g.protocol.clone()))
    });
    let result = match reply {
        Reply::Now(result) => result,
        Reply::Later(waiting) => waiting.await.unwrap_or(Err(ResponseError::NotCoordinator.code())),
    };
    answer(result, protocol)
}

/// Answers a Heartbeat request.
pub fn heartbeat(kafka: &Kafka, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.0.to_string();
    let code = match kafka.groups.coordinated(&group) {
        Err(code) => code,
        Ok(_) => kafka.groups.with(&group, |g| g.heartbeat(req.member_id.as_str(), req.generation_id, Instant::now())),
    };
    HeartbeatResponse::default().with_error_code(code)
}

/// Answers a LeaveGroup request (one member before v3, a list from v3).
pub fn leave(kafka: &Kafka, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let group = req.group_id.0.to_string();
    if let Err(code) = kafka.groups.coordinated(&group) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let ids: Vec<String> = if version >= 3 {
        req.members.iter().map(|m| m.member_id.to_string()).collect()
    } else {
        vec![req.member_id.to_string()]
    };
    let codes = kafka.groups.with(&group, |g| g.leave(&ids, Instant::now()));
    tracing::info!(%group, members = ?ids, "Kafka group members left");
    if version >= 3 {
        let members = ids
            .into_iter()
            .zip(codes)
            .map(|(id, code)| MemberResponse::default().with_member_id(str_bytes(id)).with_error_code(code))
            .collect();
        LeaveGroupResponse::default().with_members(members)
    } else {
        LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0))
    }
}
