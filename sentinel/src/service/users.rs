//! Users: changes on the leader (answered once every live broker applied
//! them), the list, and the security stream each broker follows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use goulette_auth::ScramCredential;
use goulette_auth::proto::mechanism_from_proto;
use goulette_proto::v1::{self as pb};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::Sentinel;
use crate::controller::users::UserChange;
use crate::error::{Result, SentinelError};
use crate::store::Fence;
use crate::users::{TokenKeysRecord, UserRecord};
use crate::view::ClusterView;

/// How long a user change waits for live brokers to apply it.
const APPLIED_WITHIN: Duration = Duration::from_secs(5);

/// What a security stream last sent (the bindings by their version: see
/// `ClusterView::acls_version`).
#[derive(PartialEq)]
struct Sent {
    users: BTreeMap<String, UserRecord>,
    keys: Option<TokenKeysRecord>,
    acls_version: u64,
}

/// The change a request asks for, checked.
fn user_change(req: &pb::AlterUserRequest) -> Result<UserChange> {
    let invalid = |e: goulette_auth::AuthError| SentinelError::InvalidArgument(e.to_string());
    Ok(UserChange {
        name: req.name.clone(),
        upserts: req
            .upserts
            .iter()
            .map(ScramCredential::try_from)
            .collect::<std::result::Result<_, _>>()
            .map_err(invalid)?,
        deletions: req
            .deletions
            .iter()
            .map(|&m| mechanism_from_proto(m))
            .collect::<std::result::Result<_, _>>()
            .map_err(invalid)?,
        delete_user: req.delete_user,
        create_only: req.create_only,
        must_exist: req.must_exist,
    })
}

/// What a user change does, in a word.
pub(super) fn what(req: &pb::AlterUserRequest) -> &'static str {
    match req {
        r if r.delete_user => "delete-user",
        r if r.create_only => "create-user",
        _ => "alter-user",
    }
}

/// Every user as brokers receive them.
fn users_of(view: &ClusterView) -> Vec<pb::User> {
    view.users.values().map(UserRecord::to_proto).collect()
}

impl Sentinel {
    /// Applies `req` on the leader (`fence`), then waits (bounded) for
    /// every live broker to apply it.
    pub(super) async fn alter_user_here(
        &self,
        fence: Fence,
        req: pb::AlterUserRequest,
    ) -> Result<pb::AlterUserResponse> {
        let change = user_change(&req)?;
        let revision = self
            .retry_on_conflict(|view| {
                let (fence, change) = (&fence, &change);
                async move { self.controller.alter_user(fence, &view, change).await }
            })
            .await? as u64;
        let lagging = self.applied_everywhere(Some(revision as i64)).await;
        Ok(pb::AlterUserResponse { error: None, revision, lagging_brokers: lagging })
    }

    /// Waits (bounded) until every live broker applied the security update
    /// of `revision` (none: nothing changed); the brokers that had not.
    pub(super) async fn applied_everywhere(&self, revision: Option<i64>) -> Vec<u32> {
        let Some(revision) = revision else { return Vec::new() };
        let live = self.view().brokers.keys().copied().collect();
        let lagging = self.security_acks.wait(&live, revision as u64, APPLIED_WITHIN).await;
        if !lagging.is_empty() {
            tracing::warn!(?lagging, revision, "brokers have not applied a security change yet");
        }
        lagging
    }

    /// The users named (every user when none is), without their keys.
    pub(super) fn list_users(&self, req: &pb::ListUsersRequest) -> pb::ListUsersResponse {
        let view = self.view();
        let users = if req.names.is_empty() {
            view.users.values().map(UserRecord::info).collect()
        } else {
            req.names.iter().filter_map(|n| view.users.get(n)).map(UserRecord::info).collect()
        };
        pb::ListUsersResponse { error: None, users }
    }

    /// The stream of security updates for one broker: everything first,
    /// then everything again after each change.
    pub(super) fn watch_security(self: &Arc<Self>) -> ReceiverStream<std::result::Result<pb::SecurityUpdate, Status>> {
        let (tx, rx) = mpsc::channel(4);
        let mut views = self.views.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            // Never send the users of a view not yet read from etcd: an
            // empty set would lock every user out.
            tokio::select! {
                loaded = views.wait_for(|v| v.revision > 0) => if loaded.is_err() { return },
                _ = tx.closed() => return,
                _ = shutdown.cancelled() => return,
            }
            let mut sent: Option<Sent> = None;
            loop {
                let view = views.borrow_and_update().clone();
                let now = Sent {
                    users: view.users.clone(),
                    keys: view.token_keys.as_ref().map(|(k, _)| k.clone()),
                    acls_version: view.acls_version,
                };
                if sent.as_ref() != Some(&now) {
                    let update = pb::SecurityUpdate {
                        revision: view.revision as u64,
                        users: users_of(&view),
                        token_keys: now.keys.as_ref().map(TokenKeysRecord::to_proto).unwrap_or_default(),
                        acls: view.acls.values().map(pb::AclBinding::from).collect(),
                        decoy_secret: now
                            .keys
                            .as_ref()
                            .and_then(TokenKeysRecord::decoy_secret)
                            .unwrap_or_default()
                            .into(),
                    };
                    if tx.send(Ok(update)).await.is_err() {
                        return;
                    }
                    sent = Some(now);
                }
                tokio::select! {
                    changed = views.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                    _ = shutdown.cancelled() => return,
                }
            }
        });
        ReceiverStream::new(rx)
    }
}
