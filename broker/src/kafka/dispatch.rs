//! One accepted request: decoded, checked against the ACLs (see
//! [`authorize`](crate::kafka::authorize)), and handed to its API's
//! handler; the answer is a future the connection writes in order.

use std::sync::Arc;

use bytes::Bytes;
use goulette_auth::acl::Operation;
use kafka_protocol::messages::{ApiKey, RequestHeader};

use crate::kafka::answer::{Answer, Outgoing, later, ready};
use crate::kafka::audit::Audit;
use crate::kafka::authorize::{self as acl, Guard};
use crate::kafka::request;
use crate::kafka::{
    Kafka, acls, alter_configs, configs, create_partitions, delete_records, fetch, groups, leader_epochs, list_offsets,
    metadata, produce, producer_ids, sasl, scram_credentials, topics, versions,
};

/// The answer of a request `caller` may not make at all: `refusal` with
/// its error code set.
fn refused<T: kafka_protocol::protocol::Encodable + Send + 'static>(
    key: ApiKey,
    version: i16,
    id: i32,
    refusal: T,
) -> Answer {
    ready(request::encode(key, version, id, &refusal))
}

/// Starts serving one request; `Err` closes the connection.
pub async fn dispatch(
    kafka: &Arc<Kafka>,
    session: &mut sasl::Session,
    key: ApiKey,
    version: i16,
    header: RequestHeader,
    body: Bytes,
) -> Result<Answer, String> {
    let id = header.correlation_id;
    let client_id = header.client_id.map(|c| c.to_string()).unwrap_or_default();
    let k = kafka.clone();
    let caller = session.caller();
    let guard = Guard::new(kafka, &caller);
    let audit = Audit::new(&caller);
    Ok(match key {
        ApiKey::ApiVersions => {
            let _: kafka_protocol::messages::ApiVersionsRequest = request::decode(key, version, body)?;
            ready(request::encode(key, version, id, &versions::api_versions(0)))
        }
        ApiKey::SaslHandshake => {
            let req = request::decode(key, version, body)?;
            ready(request::encode(key, version, id, &session.handshake(kafka, req)))
        }
        ApiKey::SaslAuthenticate => {
            let req = request::decode(key, version, body)?;
            let answer = session.authenticate(kafka, req);
            Box::pin(async move {
                if let Some(delay) = answer.delay {
                    tokio::time::sleep(delay).await;
                }
                let frame = request::encode(key, version, id, &answer.response)?;
                Ok(Some(Outgoing { frame, permit: None, close: answer.close }))
            })
        }
        ApiKey::Metadata => {
            let mut req: kafka_protocol::messages::MetadataRequest = request::decode(key, version, body)?;
            acl::data::metadata_request(guard, &mut req);
            let named = req.topics.as_ref().is_some_and(|t| !t.is_empty());
            later(key, version, id, async move {
                let mut answer = metadata::handle(&k, version, req).await;
                acl::data::metadata_response(Guard::new(&k, &caller), named, &mut answer);
                answer
            })
        }
        ApiKey::Produce => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::data::produce(guard, &mut req);
            // Appended now, in arrival order; answered once durable and replicated.
            let produced = produce::accept(kafka, req).await;
            Box::pin(async move {
                match produced.await? {
                    Some(mut answer) => {
                        answer.responses.extend(denied);
                        request::encode(key, version, id, &answer)
                            .map(|frame| Some(Outgoing { frame, permit: None, close: false }))
                    }
                    None => Ok(None),
                }
            })
        }
        ApiKey::Fetch => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::data::fetch(guard, &mut req);
            // The read's budget is held until the answer is written.
            Box::pin(async move {
                let (mut answer, permit) = fetch::handle(&k, req).await;
                answer.responses.extend(denied);
                request::encode(key, version, id, &answer).map(|frame| Some(Outgoing { frame, permit, close: false }))
            })
        }
        ApiKey::ListOffsets => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::data::list_offsets(guard, &mut req);
            later(key, version, id, async move {
                let mut answer = list_offsets::handle(&k, version, req).await;
                answer.topics.extend(denied);
                answer
            })
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::data::leader_epochs(guard, &mut req);
            later(key, version, id, async move {
                let mut answer = leader_epochs::handle(&k, req);
                answer.topics.extend(denied);
                answer
            })
        }
        ApiKey::DeleteRecords => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::admin::delete_records(guard, &mut req);
            later(key, version, id, async move {
                let mut answer = delete_records::handle(&k, req).await;
                answer.topics.extend(denied);
                // A topic's first failed partition stands for it.
                audit.record(
                    "delete-records",
                    answer.topics.iter().map(|t| {
                        (t.name.as_str(), t.partitions.iter().map(|p| p.error_code).find(|c| *c != 0).unwrap_or(0))
                    }),
                );
                answer
            })
        }
        ApiKey::InitProducerId => {
            // As Kafka 3+: an idempotent producer needs WRITE on the topics
            // it produces to, checked at each produce, not here.
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move { producer_ids::handle(&k, req).await })
        }
        ApiKey::FindCoordinator => {
            let req: kafka_protocol::messages::FindCoordinatorRequest = request::decode(key, version, body)?;
            if !acl::groups::find_coordinator(guard, &req) {
                let refusal = kafka_protocol::messages::FindCoordinatorResponse::default()
                    .with_error_code(acl::group_denied())
                    .with_error_message(Some("Group authorization failed.".into()))
                    .with_node_id((-1).into());
                return Ok(refused(key, version, id, refusal));
            }
            later(key, version, id, async move { groups::find::handle(&k, req).await })
        }
        ApiKey::JoinGroup => {
            let req: kafka_protocol::messages::JoinGroupRequest = request::decode(key, version, body)?;
            if !acl::groups::member(guard, &req.group_id.0) {
                let refusal = kafka_protocol::messages::JoinGroupResponse::default()
                    .with_error_code(acl::group_denied())
                    .with_generation_id(-1);
                return Ok(refused(key, version, id, refusal));
            }
            later(key, version, id, async move { groups::membership::join(&k, version, client_id, req).await })
        }
        ApiKey::SyncGroup => {
            let req: kafka_protocol::messages::SyncGroupRequest = request::decode(key, version, body)?;
            if !acl::groups::member(guard, &req.group_id.0) {
                let refusal =
                    kafka_protocol::messages::SyncGroupResponse::default().with_error_code(acl::group_denied());
                return Ok(refused(key, version, id, refusal));
            }
            later(key, version, id, async move { groups::membership::sync(&k, version, req).await })
        }
        ApiKey::Heartbeat => {
            let req: kafka_protocol::messages::HeartbeatRequest = request::decode(key, version, body)?;
            if !acl::groups::member(guard, &req.group_id.0) {
                let refusal =
                    kafka_protocol::messages::HeartbeatResponse::default().with_error_code(acl::group_denied());
                return Ok(refused(key, version, id, refusal));
            }
            later(key, version, id, async move { groups::membership::heartbeat(&k, req) })
        }
        ApiKey::LeaveGroup => {
            let req: kafka_protocol::messages::LeaveGroupRequest = request::decode(key, version, body)?;
            if !acl::groups::member(guard, &req.group_id.0) {
                let refusal =
                    kafka_protocol::messages::LeaveGroupResponse::default().with_error_code(acl::group_denied());
                return Ok(refused(key, version, id, refusal));
            }
            later(key, version, id, async move { groups::membership::leave(&k, version, req) })
        }
        ApiKey::OffsetCommit => {
            let mut req: kafka_protocol::messages::OffsetCommitRequest = request::decode(key, version, body)?;
            let Some(denied) = acl::groups::commit(guard, &mut req) else {
                return Ok(refused(key, version, id, acl::groups::commit_refused(&req)));
            };
            // Its place in the append order is taken now, in arrival order.
            let committed = groups::commits::accept(kafka, req).await;
            later(key, version, id, async move {
                let mut answer = committed.await;
                answer.topics.extend(denied);
                answer
            })
        }
        ApiKey::OffsetFetch => {
            let req: kafka_protocol::messages::OffsetFetchRequest = request::decode(key, version, body)?;
            if !acl::groups::offset_fetch(guard, &req) {
                return Ok(refused(key, version, id, acl::groups::offset_fetch_refused()));
            }
            later(key, version, id, async move {
                let mut answer = groups::commits::fetch(&k, version, req).await;
                acl::groups::offset_fetch_response(Guard::new(&k, &caller), &mut answer);
                answer
            })
        }
        ApiKey::ListGroups => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move {
                let mut answer = groups::describe::list(&k, req).await;
                acl::groups::list(Guard::new(&k, &caller), &mut answer);
                answer
            })
        }
        ApiKey::DescribeGroups => {
            let req = request::decode(key, version, body)?;
            later(key, version, id, async move {
                let mut answer = groups::describe::describe(&k, req).await;
                acl::groups::describe(Guard::new(&k, &caller), &mut answer);
                answer
            })
        }
        ApiKey::DeleteGroups => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::groups::delete(guard, &mut req);
            later(key, version, id, async move {
                let mut answer = groups::delete::handle(&k, req).await;
                answer.results.extend(denied);
                audit.record("delete-groups", answer.results.iter().map(|g| (g.group_id.as_str(), g.error_code)));
                answer
            })
        }
        ApiKey::CreateTopics => {
            let mut req: kafka_protocol::messages::CreateTopicsRequest = request::decode(key, version, body)?;
            let denied = acl::admin::create_topics(guard, &mut req);
            let event = if req.validate_only { "create-topics (validate only)" } else { "create-topics" };
            later(key, version, id, async move {
                let mut answer = topics::create(&k, version, req).await;
                answer.topics.extend(denied);
                audit.record(event, answer.topics.iter().map(|t| (t.name.as_str(), t.error_code)));
                answer
            })
        }
        ApiKey::DeleteTopics => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::admin::delete_topics(guard, &mut req);
            later(key, version, id, async move {
                let mut answer = topics::delete(&k, version, req).await;
                answer.responses.extend(denied);
                audit.record(
                    "delete-topics",
                    answer.responses.iter().map(|t| (t.name.as_ref().map_or("", |n| n.as_str()), t.error_code)),
                );
                answer
            })
        }
        ApiKey::DescribeConfigs => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::admin::describe_configs(guard, &mut req);
            later(key, version, id, async move {
                let mut answer = configs::handle(&k, version, req).await;
                answer.results.extend(denied);
                answer
            })
        }
        ApiKey::AlterConfigs => {
            let mut req: kafka_protocol::messages::AlterConfigsRequest = request::decode(key, version, body)?;
            let denied =
                acl::admin::alter_configs(guard, req.resources.iter().map(|r| (r.resource_type, &r.resource_name)));
            req.resources.retain(|r| !denied.iter().any(|(t, n, _)| *t == r.resource_type && *n == r.resource_name));
            later(key, version, id, async move {
                let mut answer = alter_configs::alter(&k, req).await;
                answer.responses.extend(denied.into_iter().map(|(t, n, code)| {
                    kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_resource_type(t)
                        .with_resource_name(n)
                        .with_error_code(code)
                }));
                audit
                    .record("alter-configs", answer.responses.iter().map(|r| (r.resource_name.as_str(), r.error_code)));
                answer
            })
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut req: kafka_protocol::messages::IncrementalAlterConfigsRequest =
                request::decode(key, version, body)?;
            let denied =
                acl::admin::alter_configs(guard, req.resources.iter().map(|r| (r.resource_type, &r.resource_name)));
            req.resources.retain(|r| !denied.iter().any(|(t, n, _)| *t == r.resource_type && *n == r.resource_name));
            later(key, version, id, async move {
                let mut answer = alter_configs::alter_incrementally(&k, req).await;
                answer.responses.extend(denied.into_iter().map(|(t, n, code)| {
                    kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default(
                    )
                    .with_resource_type(t)
                    .with_resource_name(n)
                    .with_error_code(code)
                }));
                audit
                    .record("alter-configs", answer.responses.iter().map(|r| (r.resource_name.as_str(), r.error_code)));
                answer
            })
        }
        ApiKey::CreatePartitions => {
            let mut req = request::decode(key, version, body)?;
            let denied = acl::admin::create_partitions(guard, &mut req);
            later(key, version, id, async move {
                let mut answer = create_partitions::handle(&k, req).await;
                answer.results.extend(denied);
                audit.record("create-partitions", answer.results.iter().map(|r| (r.name.as_str(), r.error_code)));
                answer
            })
        }
        ApiKey::DescribeUserScramCredentials => {
            let req = request::decode(key, version, body)?;
            if !guard.cluster(Operation::Describe) {
                let refusal = kafka_protocol::messages::DescribeUserScramCredentialsResponse::default()
                    .with_error_code(acl::cluster_denied());
                return Ok(refused(key, version, id, refusal));
            }
            later(key, version, id, async move { scram_credentials::describe(&k, req).await })
        }
        ApiKey::AlterUserScramCredentials => {
            let req = request::decode(key, version, body)?;
            let allowed = guard.cluster(Operation::Alter);
            later(key, version, id, async move {
                let answer = scram_credentials::alter(&k, req, allowed).await;
                audit.record("alter-user-credentials", answer.results.iter().map(|r| (r.user.as_str(), r.error_code)));
                answer
            })
        }
        ApiKey::CreateAcls => {
            let req = request::decode(key, version, body)?;
            let allowed = guard.cluster(Operation::Alter);
            later(key, version, id, async move {
                let answer = acls::create(&k, req, allowed).await;
                audit.record("create-acls", answer.results.iter().map(|r| ("binding", r.error_code)));
                answer
            })
        }
        ApiKey::DescribeAcls => {
            let req = request::decode(key, version, body)?;
            let allowed = guard.cluster(Operation::Describe);
            later(key, version, id, async move { acls::describe(&k, req, allowed).await })
        }
        ApiKey::DeleteAcls => {
            let req = request::decode(key, version, body)?;
            let allowed = guard.cluster(Operation::Alter);
            later(key, version, id, async move {
                let answer = acls::delete(&k, req, allowed).await;
                let deleted: usize = answer.filter_results.iter().map(|f| f.matching_acls.len()).sum();
                let what = format!("{deleted} bindings");
                audit.record("delete-acls", answer.filter_results.iter().map(|f| (what.as_str(), f.error_code)));
                answer
            })
        }
        other => return Err(format!("{other:?} is not served")),
    })
}
