//! DeleteGroups (v0–2): an operator deletes groups that have no members;
//! their committed offsets get tombstones in `__offsets` (native commits of
//! the group too: one group, one set of offsets).
//!
//! A group with members (Kafka ones here, or native ones the sentinels
//! know) is NON_EMPTY_GROUP; a group with neither members nor commits is
//! GROUP_ID_NOT_FOUND.

use goulette_proto::v1 as pb;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::kafka::Kafka;
use crate::kafka::groups::commits::storage_code;

/// Answers a DeleteGroups request.
pub async fn handle(kafka: &Kafka, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len().min(1024));
    for name in req.groups_names {
        let code = match delete(kafka, name.0.as_str()).await {
            Ok(()) => 0,
            Err(code) => code,
        };
        results.push(DeletableGroupResult::default().with_group_id(name).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}

async fn delete(kafka: &Kafka, group: &str) -> Result<(), i16> {
    let partition = kafka.groups.coordinated(group)?;
    if kafka.groups.with_existing(group, |g| !g.members.is_empty()).unwrap_or(false) {
        return Err(ResponseError::NonEmptyGroup.code());
    }
    if let Ok(described) = kafka.sentinels.describe_group(group, 0).await
        && described.error.is_none()
        && !described.members.is_empty()
    {
        return Err(ResponseError::NonEmptyGroup.code());
    }
    let known_here = kafka.groups.with_existing(group, |_| ()).is_some();
    let committed = kafka.offsets.positions(partition, group).await.map_err(|e| storage_code(&e))?;
    if committed.is_empty() && !known_here {
        return Err(ResponseError::GroupIdNotFound.code());
    }
    let request = pb::DeleteGroupRequest { group: group.to_owned(), offsets_partition: partition };
    if let Some(e) = kafka.offsets.delete_group(request).await.error {
        return Err(storage_code(&e));
    }
    kafka.groups.forget(group);
    tracing::info!(%group, "Kafka group deleted");
    Ok(())
}
