//! Users and their SCRAM credentials: one user's change is a
//! compare-and-swap of its key, with its op-log entry, so two admins
//! changing one user cannot lose either change silently.

use goulette_auth::{Mechanism, ScramCredential};

use super::Controller;
use crate::error::{Result, SentinelError};
use crate::store::{Change, Fence};
use crate::users::{CredentialRecord, UserRecord, check_user_name};
use crate::view::ClusterView;

/// A change to one user, as asked.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub name: String,
    /// Credentials to set (replacing the user's one of the same mechanism).
    pub upserts: Vec<ScramCredential>,
    /// Mechanisms whose credential goes.
    pub deletions: Vec<Mechanism>,
    /// The whole user goes.
    pub delete_user: bool,
    /// Refuse if the user exists.
    pub create_only: bool,
    /// Refuse if the user does not exist.
    pub must_exist: bool,
}

/// The user's record after `change` (`None`: the key is deleted).
pub fn next_record(current: Option<&UserRecord>, change: &UserChange) -> Result<Option<UserRecord>> {
    check_user_name(&change.name).map_err(SentinelError::InvalidArgument)?;
    let not_found = || SentinelError::UserNotFound(change.name.clone());
    if change.create_only && current.is_some() {
        return Err(SentinelError::UserExists(change.name.clone()));
    }
    if change.must_exist && current.is_none() {
        return Err(not_found());
    }
    if change.delete_user {
        return current.map(|_| None).ok_or_else(not_found);
    }
    if change.upserts.is_empty() && change.deletions.is_empty() {
        return Err(SentinelError::InvalidArgument("nothing to change".into()));
    }
    let mut credentials = current.map(|u| u.credentials.clone()).unwrap_or_default();
    for m in &change.deletions {
        let before = credentials.len();
        credentials.retain(|c| c.mechanism != m.name());
        if credentials.len() == before {
            return Err(not_found());
        }
    }
    for (i, c) in change.upserts.iter().enumerate() {
        c.validate().map_err(|e| SentinelError::InvalidArgument(e.to_string()))?;
        if change.upserts[..i].iter().any(|o| o.mechanism == c.mechanism) {
            return Err(SentinelError::InvalidArgument(format!("{} is set twice", c.mechanism)));
        }
        credentials.retain(|o| o.mechanism != c.mechanism.name());
        credentials.push(CredentialRecord::from(c));
    }
    credentials.sort_by(|a, b| a.mechanism.cmp(&b.mechanism));
    Ok((!credentials.is_empty()).then(|| UserRecord { name: change.name.clone(), credentials }))
}

/// How long a token key signs new tokens before the next one replaces it
/// (the one before is kept, so tokens it signed stay good until they expire).
pub const TOKEN_KEY_ROTATION_MS: i64 = 24 * 3600 * 1000;

impl Controller {
    /// Makes sure a token key exists and is younger than a rotation period
    /// (a new one is added, the oldest beyond two dropped), and that the
    /// decoy secret exists. A leader duty.
    pub async fn ensure_token_key(&self, fence: &Fence, view: &ClusterView) -> Result<()> {
        let now = crate::model::now_ms();
        let current = view.token_keys.as_ref();
        let fresh = current.and_then(|(k, _)| k.newest_ms()).is_some_and(|t| now - t < TOKEN_KEY_ROTATION_MS);
        let has_decoy = current.is_some_and(|(k, _)| k.decoy_secret().is_some());
        let (next, what) = match (fresh, current) {
            (true, _) if has_decoy => return Ok(()),
            (true, Some((k, _))) => (k.clone().with_decoy_secret(), "decoy secret made".to_owned()),
            _ => {
                let next = current.map(|(k, _)| k.clone()).unwrap_or_default().rotated(now, 2);
                let newest = next.keys.last().map(|k| k.id).unwrap_or(0);
                (next, format!("token key {newest}"))
            }
        };
        let key = self.store.keys().token_keys();
        let mut op = Change::new("rotate-token-key", what).put_json(key.clone(), &next, None);
        match current {
            Some((_, revision)) => op.require_mod_revision.push((key, *revision)),
            None => op.require_absent.push(key),
        }
        match self.store.commit(fence, op).await {
            // The view had not shown our own write yet: the next round will.
            Err(SentinelError::Conflict(_)) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Applies `change` against `view`; the etcd revision it landed at.
    /// `Conflict` when the user changed since the view was taken.
    pub async fn alter_user(&self, fence: &Fence, view: &ClusterView, change: &UserChange) -> Result<i64> {
        let current = view.users.get(&change.name);
        let next = next_record(current, change)?;
        let key = self.store.keys().user(&change.name);
        let what = match &next {
            None => "deleted".to_owned(),
            Some(u) => {
                let mechanisms: Vec<&str> = u.credentials.iter().map(|c| c.mechanism.as_str()).collect();
                format!("credentials {}", mechanisms.join(","))
            }
        };
        let kind = if current.is_none() { "create-user" } else { "alter-user" };
        let mut op = Change::new(kind, format!("user {} {what}", change.name));
        match &next {
            Some(record) => op = op.put_json(key.clone(), record, None),
            None => op.deletes.push((key.clone(), false)),
        }
        match view.user_revisions.get(&change.name) {
            Some(&revision) => op.require_mod_revision.push((key, revision)),
            None => op.require_absent.push(key),
        }
        let (_, revision) = self.store.commit_at(fence, op).await?;
        Ok(revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(m: Mechanism) -> ScramCredential {
        ScramCredential::new(m, "pw", 4096).unwrap()
    }

    fn change(name: &str) -> UserChange {
        UserChange { name: name.into(), ..UserChange::default() }
    }

    #[test]
    fn credentials_are_added_replaced_and_removed() {
        let add = UserChange { upserts: vec![credential(Mechanism::ScramSha256)], ..change("alice") };
        let one = next_record(None, &add).unwrap().unwrap();
        assert_eq!(one.credentials.len(), 1);
        let both = UserChange { upserts: vec![credential(Mechanism::ScramSha512)], ..change("alice") };
        let two = next_record(Some(&one), &both).unwrap().unwrap();
        assert_eq!(two.credentials.len(), 2);
        let again = UserChange { upserts: vec![credential(Mechanism::ScramSha256)], ..change("alice") };
        let replaced = next_record(Some(&two), &again).unwrap().unwrap();
        assert_eq!(replaced.credentials.len(), 2);
        assert_ne!(replaced.credentials[0].salt, two.credentials[0].salt);
        let drop = UserChange { deletions: vec![Mechanism::ScramSha256], ..change("alice") };
        assert_eq!(next_record(Some(&two), &drop).unwrap().unwrap().credentials.len(), 1);
        // Removing the last credential removes the user.
        assert_eq!(next_record(Some(&one), &drop).unwrap(), None);
        assert!(matches!(next_record(None, &drop), Err(SentinelError::UserNotFound(_))));
    }

    #[test]
    fn create_passwd_and_delete_rules() {
        let one = next_record(None, &UserChange { upserts: vec![credential(Mechanism::ScramSha512)], ..change("a") })
            .unwrap()
            .unwrap();
        let create = UserChange { upserts: vec![credential(Mechanism::ScramSha512)], create_only: true, ..change("a") };
        assert!(matches!(next_record(Some(&one), &create), Err(SentinelError::UserExists(_))));
        let passwd = UserChange { upserts: vec![credential(Mechanism::ScramSha512)], must_exist: true, ..change("a") };
        assert!(matches!(next_record(None, &passwd), Err(SentinelError::UserNotFound(_))));
        let delete = UserChange { delete_user: true, ..change("a") };
        assert_eq!(next_record(Some(&one), &delete).unwrap(), None);
        assert!(matches!(next_record(None, &delete), Err(SentinelError::UserNotFound(_))));
        assert!(matches!(next_record(None, &change("a")), Err(SentinelError::InvalidArgument(_))));
        let twice = UserChange {
            upserts: vec![credential(Mechanism::ScramSha512), credential(Mechanism::ScramSha512)],
            ..change("a")
        };
        assert!(matches!(next_record(None, &twice), Err(SentinelError::InvalidArgument(_))));
        let unnamed = UserChange { upserts: vec![credential(Mechanism::ScramSha512)], ..change("") };
        assert!(matches!(next_record(None, &unnamed), Err(SentinelError::InvalidArgument(_))));
    }
}
