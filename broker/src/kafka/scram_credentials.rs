//! DescribeUserScramCredentials (v0) and AlterUserScramCredentials (v0):
//! users managed by Kafka admin tools (`kafka-configs.sh`, AdminClient).
//! Changes go to the sentinel leader like `goulette user …`, one call per
//! user, each answered once every live broker applied it. Kafka's client
//! sends a salted password, never the password, and so does this path.

use std::collections::{BTreeMap, BTreeSet};

use goulette_auth::{Mechanism, ScramCredential};
use goulette_proto::v1 as pb;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Kafka, errors};

fn message(text: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.into()))
}

/// Answers DescribeUserScramCredentials: mechanisms and iterations, no key.
pub async fn describe(kafka: &Kafka, req: DescribeUserScramCredentialsRequest) -> DescribeUserScramCredentialsResponse {
    let asked: Option<Vec<String>> = req.users.map(|u| u.into_iter().map(|n| n.name.to_string()).collect());
    let names = asked.clone().unwrap_or_default();
    let listed = match kafka.sentinels.list_users(pb::ListUsersRequest { names: names.clone() }).await {
        Ok(r) if r.error.is_none() => r.users,
        Ok(r) => {
            let e = r.error.unwrap_or_default();
            return DescribeUserScramCredentialsResponse::default()
                .with_error_code(errors::code(&e))
                .with_error_message(message(e.message));
        }
        Err(e) => {
            return DescribeUserScramCredentialsResponse::default()
                .with_error_code(ResponseError::RequestTimedOut.code())
                .with_error_message(message(e.to_string()));
        }
    };
    let found: BTreeMap<String, pb::UserInfo> = listed.into_iter().map(|u| (u.name.clone(), u)).collect();
    let info = |u: &pb::UserInfo| {
        u.credentials
            .iter()
            .filter_map(|c| {
                let m = goulette_auth::proto::mechanism_from_proto(c.mechanism).ok()?;
                Some(CredentialInfo::default().with_mechanism(m.kafka_type()).with_iterations(c.iterations as i32))
            })
            .collect::<Vec<_>>()
    };
    let results = match asked {
        None => found
            .values()
            .map(|u| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(u.name.clone()))
                    .with_credential_infos(info(u))
            })
            .collect(),
        Some(_) => {
            let duplicated: BTreeSet<&String> =
                names.iter().filter(|n| names.iter().filter(|o| o == n).count() > 1).collect();
            let mut seen = BTreeSet::new();
            names
                .iter()
                .filter(|n| seen.insert(*n))
                .map(|name| {
                    let result =
                        DescribeUserScramCredentialsResult::default().with_user(StrBytes::from_string(name.clone()));
                    if duplicated.contains(name) {
                        return result
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(message("user named more than once"));
                    }
                    match found.get(name) {
                        Some(u) => result.with_credential_infos(info(u)),
                        None => result
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(message("Attempt to describe a user credential that does not exist")),
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// One user's asked change, or the Kafka error refusing it.
type Asked = Result<pb::AlterUserRequest, (i16, String)>;

/// `name`'s change in `asked` (a new one if none), unless it is refused already.
fn entry<'a>(asked: &'a mut BTreeMap<String, Asked>, name: &str) -> Option<&'a mut pb::AlterUserRequest> {
    asked
        .entry(name.to_owned())
        .or_insert_with(|| Ok(pb::AlterUserRequest { name: name.to_owned(), ..Default::default() }))
        .as_mut()
        .ok()
}

/// Answers AlterUserScramCredentials, user by user (every one refused
/// unless `allowed`: ALTER on the cluster).
pub async fn alter(
    kafka: &Kafka,
    req: AlterUserScramCredentialsRequest,
    allowed: bool,
) -> AlterUserScramCredentialsResponse {
    if !allowed {
        let names: BTreeSet<String> = req
            .deletions
            .iter()
            .map(|d| d.name.to_string())
            .chain(req.upsertions.iter().map(|u| u.name.to_string()))
            .collect();
        let results = names
            .into_iter()
            .map(|n| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(n))
                    .with_error_code(crate::kafka::authorize::cluster_denied())
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    let mut asked: BTreeMap<String, Asked> = BTreeMap::new();
    for d in &req.deletions {
        let name = d.name.to_string();
        let Some(mechanism) = Mechanism::from_kafka_type(d.mechanism) else {
            asked.insert(name, Err((ResponseError::UnsupportedSaslMechanism.code(), "unknown SCRAM mechanism".into())));
            continue;
        };
        if let Some(change) = entry(&mut asked, &name) {
            change.deletions.push(goulette_auth::proto::mechanism_to_proto(mechanism) as i32);
        }
    }
    for u in &req.upsertions {
        let name = u.name.to_string();
        let credential = match Mechanism::from_kafka_type(u.mechanism) {
            None => Err((ResponseError::UnsupportedSaslMechanism.code(), "unknown SCRAM mechanism".to_owned())),
            Some(m) => {
                ScramCredential::from_salted_password(m, &u.salt, u.iterations.max(0) as u32, &u.salted_password)
                    .map_err(|e| (ResponseError::UnacceptableCredential.code(), e.to_string()))
            }
        };
        match credential {
            Ok(c) => {
                if let Some(change) = entry(&mut asked, &name) {
                    change.upserts.push(pb::ScramCredential::from(&c));
                }
            }
            Err(refusal) => {
                asked.insert(name, Err(refusal));
            }
        }
    }
    let mut results = Vec::with_capacity(asked.len());
    for (name, change) in asked {
        let result = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(name.clone()));
        let outcome = match change {
            Err(refusal) => Err(refusal),
            Ok(change) => apply(kafka, change).await,
        };
        results.push(match outcome {
            Ok(()) => result,
            Err((code, text)) => result.with_error_code(code).with_error_message(message(text)),
        });
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

/// Sends one user's change to the sentinel leader.
async fn apply(kafka: &Kafka, change: pb::AlterUserRequest) -> Result<(), (i16, String)> {
    let mechanisms = |list: &[i32]| list.iter().copied().collect::<BTreeSet<i32>>();
    let upserted: BTreeSet<i32> = change.upserts.iter().map(|c| c.mechanism).collect();
    if upserted.len() < change.upserts.len() || !mechanisms(&change.deletions).is_disjoint(&upserted) {
        return Err((ResponseError::DuplicateResource.code(), "a mechanism is named twice for this user".into()));
    }
    match kafka.sentinels.alter_user(change).await {
        Ok(r) => match r.error {
            None => Ok(()),
            Some(e) => Err((errors::code(&e), e.message)),
        },
        Err(e) => Err((ResponseError::RequestTimedOut.code(), e.to_string())),
    }
}
