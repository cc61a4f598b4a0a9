//! The users this broker knows, as the last security update gave them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use goulette_auth::token::TokenKey;
use goulette_auth::{Decoy, Mechanism, ScramCredential};
use goulette_proto::v1 as pb;

#[derive(Debug, Default)]
struct Snapshot {
    revision: u64,
    users: HashMap<String, Vec<ScramCredential>>,
    /// The keys gRPC tokens are checked with.
    token_keys: Vec<TokenKey>,
    /// The cluster's decoy, once the sentinels sent it.
    decoy: Option<Decoy>,
}

/// The users and their credentials; readers take a snapshot, updates
/// replace it whole.
#[derive(Debug, Default)]
pub struct Users {
    current: RwLock<Arc<Snapshot>>,
}

impl Users {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces every user with those of `update`; a credential that fails
    /// its checks is left out (and logged), never half-used.
    pub fn apply(&self, update: &pb::SecurityUpdate) {
        let mut users = HashMap::with_capacity(update.users.len());
        for user in &update.users {
            let credentials = user
                .credentials
                .iter()
                .filter_map(|c| match ScramCredential::try_from(c) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::error!(user = %user.name, error = %e, "a stored credential is unusable; left out");
                        None
                    }
                })
                .collect();
            users.insert(user.name.clone(), credentials);
        }
        let token_keys = update.token_keys.iter().map(|k| TokenKey { id: k.id, secret: k.secret.to_vec() }).collect();
        let decoy = (!update.decoy_secret.is_empty()).then(|| Decoy::from_secret(&update.decoy_secret));
        let next = Arc::new(Snapshot { revision: update.revision, users, token_keys, decoy });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// The metadata revision of the users held.
    pub fn revision(&self) -> u64 {
        self.snapshot().revision
    }

    /// The keys gRPC tokens are checked with.
    pub fn token_keys(&self) -> Vec<TokenKey> {
        self.snapshot().token_keys.clone()
    }

    /// What answers logins of unknown users: the cluster's decoy, or
    /// `fallback` (this process's) until the sentinels sent it.
    pub fn decoy_or(&self, fallback: &Decoy) -> Decoy {
        self.snapshot().decoy.clone().unwrap_or_else(|| fallback.clone())
    }

    /// How many users are known.
    pub fn len(&self) -> usize {
        self.snapshot().users.len()
    }

    /// Whether no user is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every credential of `user` (none for an unknown user).
    pub fn credentials_of(&self, user: &str) -> Vec<ScramCredential> {
        self.snapshot().users.get(user).cloned().unwrap_or_default()
    }

    /// `user`'s credential for `mechanism`.
    pub fn credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        self.snapshot().users.get(user)?.iter().find(|c| c.mechanism == mechanism).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_replaces_every_user() {
        let users = Users::default();
        let c = ScramCredential::new(Mechanism::ScramSha512, "pw", 4096).unwrap();
        let alice = pb::User { name: "alice".into(), credentials: vec![(&c).into()] };
        let key = pb::TokenKey { id: 3, secret: vec![7; 32].into() };
        users.apply(&pb::SecurityUpdate {
            revision: 7,
            users: vec![alice],
            token_keys: vec![key],
            ..Default::default()
        });
        assert_eq!(users.token_keys().iter().map(|k| k.id).collect::<Vec<_>>(), vec![3]);
        assert_eq!(users.credential("alice", Mechanism::ScramSha512), Some(c.clone()));
        assert_eq!(users.credential("alice", Mechanism::ScramSha256), None);
        assert_eq!(users.revision(), 7);
        let mut broken: pb::ScramCredential = (&c).into();
        broken.iterations = 1;
        let bob = pb::User { name: "bob".into(), credentials: vec![broken] };
        users.apply(&pb::SecurityUpdate { revision: 9, users: vec![bob], ..Default::default() });
        assert!(users.credentials_of("alice").is_empty());
        assert!(users.credentials_of("bob").is_empty(), "an unusable credential is left out");
        assert_eq!(users.len(), 1);
    }
}
