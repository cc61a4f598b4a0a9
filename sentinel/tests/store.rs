//! The metadata store against a real etcd: atomic changes with their op-log
//! entry, fencing, conflicts, and an unreachable etcd.

#![allow(clippy::unwrap_used)]

use goulette_sentinel::error::SentinelError;
use goulette_sentinel::keys::Keys;
use goulette_sentinel::model::TopicRecord;
use goulette_sentinel::store::{self, Change, Fence, Store};
use goulette_sentinel::testkit::EtcdProcess;

async fn store_and_fence(etcd: &EtcdProcess) -> (Store, Fence) {
    let mut client = store::connect(&[etcd.endpoint()]).await.unwrap();
    let keys = Keys::new("/goulette-test");
    // A campaign gives the election key and revision that fence writes.
    let lease = client.lease_grant(10, None).await.unwrap().id();
    let won = client.campaign(keys.election(), "127.0.0.1:1", lease).await.unwrap();
    let leader = won.leader().unwrap();
    let fence = Fence { key: leader.key().to_vec(), revision: leader.rev() };
    (Store::new(client, keys, "s1"), fence)
}

fn topic(name: &str) -> TopicRecord {
    TopicRecord {
        id: 0,
        name: name.into(),
        partitions: 1,
        replication_factor: 1,
        retention_ms: 0,
        retention_bytes: 0,
        unclean_leader_election: false,
        min_insync_replicas: 1,
        ..TopicRecord::default()
    }
}

fn create(store: &Store, name: &str) -> Change {
    let keys = store.keys();
    let mut c = Change::new("create-topic", name).put_json(keys.topic(name), &topic(name), None);
    c.require_absent.push(keys.topic(name));
    c
}

#[tokio::test]
async fn given_changes_should_write_state_and_one_op_each_in_order() {
    let etcd = EtcdProcess::start();
    let (store, fence) = store_and_fence(&etcd).await;
    let mut seqs = Vec::new();
    for name in ["a", "b", "c"] {
        seqs.push(store.commit(&fence, create(&store, name)).await.unwrap());
    }
    assert_eq!(seqs, vec![1, 2, 3]);
    let ops = store.ops().await.unwrap();
    assert_eq!(ops.iter().map(|o| (o.seq, o.detail.as_str())).collect::<Vec<_>>(), vec![(1, "a"), (2, "b"), (3, "c")]);
    assert!(ops.iter().all(|o| o.kind == "create-topic" && o.sentinel == "s1"));
    let view = store.load().await.unwrap();
    assert_eq!(view.topics.keys().collect::<Vec<_>>(), vec!["a", "b", "c"]);
    assert!(view.revision > 0);
    assert_eq!(view.leader_address(), Some("127.0.0.1:1"));
}

#[tokio::test]
async fn given_a_failed_compare_should_write_nothing() {
    let etcd = EtcdProcess::start();
    let (store, fence) = store_and_fence(&etcd).await;
    store.commit(&fence, create(&store, "a")).await.unwrap();
    let err = store.commit(&fence, create(&store, "a")).await.unwrap_err();
    assert!(matches!(err, SentinelError::Conflict(_)), "{err}");
    assert_eq!(store.ops().await.unwrap().len(), 1, "no op for the refused change");
}

#[tokio::test]
async fn given_a_stale_fence_should_refuse_the_write_as_not_leader() {
    let etcd = EtcdProcess::start();
    let (store, fence) = store_and_fence(&etcd).await;
    let stale = Fence { key: fence.key.clone(), revision: fence.revision + 1000 };
    let err = store.commit(&stale, create(&store, "a")).await.unwrap_err();
    assert!(matches!(err, SentinelError::NotLeader { .. }), "{err}");
    assert!(store.load().await.unwrap().topics.is_empty());
    assert!(store.ops().await.unwrap().is_empty());
}

#[tokio::test]
async fn given_etcd_down_should_fail_with_etcd_unavailable_and_recover_after() {
    let mut etcd = EtcdProcess::start();
    let (store, fence) = store_and_fence(&etcd).await;
    store.commit(&fence, create(&store, "before")).await.unwrap();
    etcd.kill();
    let started = std::time::Instant::now();
    let err = store.commit(&fence, create(&store, "during")).await.unwrap_err();
    assert!(matches!(err, SentinelError::Etcd { .. }), "{err}");
    assert_eq!(err.code(), goulette_proto::v1::ErrorCode::Unavailable);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "failed fast: {:?}", started.elapsed());
    etcd.restart();
    // The same client reconnects by itself once etcd is back.
    let mut attempts = 0;
    let seq = loop {
        match store.commit(&fence, create(&store, "after")).await {
            Ok(seq) => break seq,
            Err(e) if attempts < 50 => {
                attempts += 1;
                tracing::debug!(%e, "etcd not back yet");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("etcd came back but writes still fail: {e}"),
        }
    };
    assert_eq!(seq, 2, "the refused write left no op behind");
    let view = store.load().await.unwrap();
    assert_eq!(view.topics.keys().collect::<Vec<_>>(), vec!["after", "before"]);
}

/// A sentinel that starts (or reloads its view after a watch failure)
/// reads users, token keys and ACLs too: without them every login and
/// every request would be refused after a restart.
#[tokio::test]
async fn given_security_metadata_a_fresh_load_should_read_it_back() {
    use goulette_sentinel::acls::AclRecord;
    use goulette_sentinel::users::{CredentialRecord, TokenKeysRecord, UserRecord};
    let etcd = EtcdProcess::start();
    let (store, fence) = store_and_fence(&etcd).await;
    let keys = store.keys().clone();
    let credential = goulette_auth::ScramCredential::new(goulette_auth::Mechanism::ScramSha512, "pw", 4096).unwrap();
    let user = UserRecord { name: "alice".into(), credentials: vec![CredentialRecord::from(&credential)] };
    let binding = goulette_auth::acl::AclBinding {
        resource_type: goulette_auth::acl::ResourceType::Topic,
        name: "orders".into(),
        pattern: goulette_auth::acl::PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: goulette_auth::acl::Operation::Read,
        permission: goulette_auth::acl::Permission::Allow,
    };
    let token_keys = TokenKeysRecord::default().rotated(1, 2);
    let change = Change::new("security", "users, keys, acls")
        .put_json(keys.user("alice"), &user, None)
        .put_json(keys.token_keys(), &token_keys, None)
        .put_json(keys.acl(&binding.id()), &AclRecord::from(&binding), None);
    store.commit(&fence, change).await.unwrap();
    let view = store.load().await.unwrap();
    assert_eq!(view.users.get("alice"), Some(&user));
    assert_eq!(view.token_keys.as_ref().map(|(k, _)| k.clone()), Some(token_keys));
    assert_eq!(view.acls.values().collect::<Vec<_>>(), vec![&binding]);
}
