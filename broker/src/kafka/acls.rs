//! CreateAcls, DescribeAcls and DeleteAcls (v1–3): ACLs managed by Kafka
//! admin tools (`kafka-acls.sh`, AdminClient), through the sentinel leader
//! like `goulette acl`; changes are answered once every live broker
//! applied them. Refused without ALTER (create, delete) or DESCRIBE on the
//! cluster.

use goulette_proto::v1 as pb;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::authorize::cluster_denied;
use crate::kafka::{Kafka, errors};

fn text(s: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(s.into()))
}

/// A Kafka error code and message from a sentinel's answer or failure.
fn failure(error: Option<pb::Error>, failed: Option<anyhow::Error>) -> Option<(i16, String)> {
    match (error, failed) {
        (_, Some(e)) => Some((ResponseError::RequestTimedOut.code(), e.to_string())),
        (Some(e), None) => Some((errors::code(&e), e.message)),
        (None, None) => None,
    }
}

/// Answers CreateAcls: each creation checked, the valid ones stored together.
pub async fn create(kafka: &Kafka, req: CreateAclsRequest, allowed: bool) -> CreateAclsResponse {
    if !allowed {
        let results =
            req.creations.iter().map(|_| AclCreationResult::default().with_error_code(cluster_denied())).collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let bindings: Vec<pb::AclBinding> = req
        .creations
        .iter()
        .map(|c| pb::AclBinding {
            resource_type: c.resource_type.into(),
            name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type.into(),
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation.into(),
            permission: c.permission_type.into(),
        })
        .collect();
    let checked: Vec<Result<(), String>> =
        bindings.iter().map(|b| goulette_auth::acl::AclBinding::try_from(b).map(drop)).collect();
    let valid: Vec<pb::AclBinding> =
        bindings.iter().zip(&checked).filter(|(_, c)| c.is_ok()).map(|(b, _)| b.clone()).collect();
    let stored = match valid.is_empty() {
        true => None,
        false => match kafka.sentinels.create_acls(pb::CreateAclsRequest { acls: valid }).await {
            Ok(r) => failure(r.error, None),
            Err(e) => failure(None, Some(e)),
        },
    };
    let results = checked
        .into_iter()
        .map(|c| match (c, &stored) {
            (Err(reason), _) => AclCreationResult::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(text(reason)),
            (Ok(()), Some((code, message))) => {
                AclCreationResult::default().with_error_code(*code).with_error_message(text(message.clone()))
            }
            (Ok(()), None) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Answers DescribeAcls: the bindings the filter selects, by resource.
pub async fn describe(kafka: &Kafka, req: DescribeAclsRequest, allowed: bool) -> DescribeAclsResponse {
    if !allowed {
        return DescribeAclsResponse::default().with_error_code(cluster_denied());
    }
    let filter = pb::AclFilter {
        resource_type: req.resource_type_filter.into(),
        name: req.resource_name_filter.map(|n| n.to_string()),
        pattern_type: req.pattern_type_filter.into(),
        principal: req.principal_filter.map(|p| p.to_string()),
        host: req.host_filter.map(|h| h.to_string()),
        operation: req.operation.into(),
        permission: req.permission_type.into(),
    };
    let acls = match kafka.sentinels.describe_acls(pb::DescribeAclsRequest { filter: Some(filter) }).await {
        Ok(r) => match failure(r.error, None) {
            None => r.acls,
            Some((code, message)) => {
                return DescribeAclsResponse::default().with_error_code(code).with_error_message(text(message));
            }
        },
        Err(e) => {
            return DescribeAclsResponse::default()
                .with_error_code(ResponseError::RequestTimedOut.code())
                .with_error_message(text(e.to_string()));
        }
    };
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for b in acls {
        let description = AclDescription::default()
            .with_principal(StrBytes::from_string(b.principal))
            .with_host(StrBytes::from_string(b.host))
            .with_operation(b.operation as i8)
            .with_permission_type(b.permission as i8);
        let same = |r: &&mut DescribeAclsResource| {
            r.resource_type == b.resource_type as i8
                && *r.resource_name == *b.name
                && r.pattern_type == b.pattern_type as i8
        };
        match resources.iter_mut().find(same) {
            Some(r) => r.acls.push(description),
            None => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type as i8)
                    .with_resource_name(StrBytes::from_string(b.name))
                    .with_pattern_type(b.pattern_type as i8)
                    .with_acls(vec![description]),
            ),
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}

/// Answers DeleteAcls: per filter, the bindings it removed.
pub async fn delete(kafka: &Kafka, req: DeleteAclsRequest, allowed: bool) -> DeleteAclsResponse {
    let refuse = |code: i16, message: String| {
        let result = DeleteAclsFilterResult::default().with_error_code(code).with_error_message(text(message));
        DeleteAclsResponse::default().with_filter_results(req.filters.iter().map(|_| result.clone()).collect())
    };
    if !allowed {
        return refuse(cluster_denied(), "DELETE of ACLs needs ALTER on the cluster".into());
    }
    let mut results = Vec::with_capacity(req.filters.len());
    for f in &req.filters {
        let filter = pb::AclFilter {
            resource_type: f.resource_type_filter.into(),
            name: f.resource_name_filter.as_ref().map(|n| n.to_string()),
            pattern_type: f.pattern_type_filter.into(),
            principal: f.principal_filter.as_ref().map(|p| p.to_string()),
            host: f.host_filter.as_ref().map(|h| h.to_string()),
            operation: f.operation.into(),
            permission: f.permission_type.into(),
        };
        let deleted = match kafka.sentinels.delete_acls(pb::DeleteAclsRequest { filters: vec![filter] }).await {
            Ok(r) => match failure(r.error, None) {
                None => r.deleted,
                Some((code, message)) => return refuse(code, message),
            },
            Err(e) => return refuse(ResponseError::RequestTimedOut.code(), e.to_string()),
        };
        let matching = deleted
            .into_iter()
            .map(|b| {
                DeleteAclsMatchingAcl::default()
                    .with_resource_type(b.resource_type as i8)
                    .with_resource_name(StrBytes::from_string(b.name))
                    .with_pattern_type(b.pattern_type as i8)
                    .with_principal(StrBytes::from_string(b.principal))
                    .with_host(StrBytes::from_string(b.host))
                    .with_operation(b.operation as i8)
                    .with_permission_type(b.permission as i8)
            })
            .collect();
        results.push(DeleteAclsFilterResult::default().with_matching_acls(matching));
    }
    DeleteAclsResponse::default().with_filter_results(results)
}
