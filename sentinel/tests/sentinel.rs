//! Sentinels as real processes on a real etcd: leadership, forwarding,
//! broker sessions, assignments, failover of partition leaders, recovery.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use goulette_proto::v1::sentinel_internal_client::SentinelInternalClient;
use goulette_proto::v1::sentinel_service_client::SentinelServiceClient;
use goulette_proto::v1::{self as pb, ErrorCode};
use goulette_sentinel::keys::Keys;
use goulette_sentinel::store::{self, Store};
use goulette_sentinel::testkit::{EtcdProcess, SentinelProcess};
use tokio::task::JoinHandle;

async fn sentinel_client(s: &SentinelProcess) -> SentinelServiceClient<tonic::transport::Channel> {
    SentinelServiceClient::connect(s.url()).await.unwrap()
}

/// Polls `cluster_status` on `s` until `check` holds.
async fn wait_status(
    s: &SentinelProcess,
    what: &str,
    check: impl Fn(&pb::ClusterStatusResponse) -> bool,
) -> pb::ClusterStatusResponse {
    let mut client = sentinel_client(s).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.cluster_status(pb::ClusterStatusRequest {}).await {
            let r = r.into_inner();
            if check(&r) {
                return r;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; log:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn leader_of(status: &pb::ClusterStatusResponse) -> Option<String> {
    status.sentinels.iter().find(|s| s.leader).map(|s| s.id.clone())
}

/// A broker stand-in: a bound port (so probes succeed) and a heartbeat loop.
struct FakeBroker {
    id: u32,
    _listener: tokio::net::TcpListener,
    heartbeats: JoinHandle<()>,
}

impl FakeBroker {
    async fn register(sentinel: &SentinelProcess, id: u32) -> FakeBroker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mut client = SentinelInternalClient::connect(sentinel.url()).await.unwrap();
        let resp = client
            .register_broker(pb::RegisterBrokerRequest { broker_id: id, address, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(resp.error.is_none(), "register broker {id}: {:?}", resp.error);
        let session = resp.session_id;
        let interval = Duration::from_millis(resp.heartbeat_interval_ms);
        let heartbeats = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let _ =
                    client.broker_heartbeat(pb::BrokerHeartbeatRequest { broker_id: id, session_id: session }).await;
            }
        });
        FakeBroker { id, _listener: listener, heartbeats }
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.heartbeats.abort();
    }
}

async fn create_topic(s: &SentinelProcess, name: &str, partitions: u32, rf: u32) -> pb::CreateTopicResponse {
    let config = pb::TopicConfig { name: name.into(), partitions, replication_factor: rf, ..Default::default() };
    sentinel_client(s).await.create_topic(pb::CreateTopicRequest { config: Some(config) }).await.unwrap().into_inner()
}

async fn ops(etcd: &EtcdProcess) -> Vec<goulette_sentinel::model::OpRecord> {
    let client = store::connect(&[etcd.endpoint()]).await.unwrap();
    Store::new(client, Keys::new("/goulette"), "test").ops().await.unwrap()
}

#[tokio::test]
async fn given_brokers_when_a_topic_is_created_should_place_replicas_and_log_each_change_once() {
    let etcd = EtcdProcess::start();
    let s = SentinelProcess::start("s1", &etcd.endpoint(), &[]);
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;
    let _brokers =
        [FakeBroker::register(&s, 1).await, FakeBroker::register(&s, 2).await, FakeBroker::register(&s, 3).await];

    let created = create_topic(&s, "orders", 6, 2).await;
    assert!(created.error.is_none(), "{:?}", created.error);
    let partitions = created.topic.unwrap().partitions;
    assert_eq!(partitions.len(), 6);
    for p in &partitions {
        assert_eq!(p.replicas.len(), 2);
        assert_ne!(p.replicas[0], p.replicas[1]);
        assert_eq!(p.leader, Some(p.replicas[0]));
        assert_eq!(p.leader_epoch, 1);
        assert_eq!(p.isr, vec![p.replicas[0]]);
    }

    let again = create_topic(&s, "orders", 6, 2).await;
    assert_eq!(again.error.unwrap().error_code(), ErrorCode::TopicExists);
    let bad = create_topic(&s, "bad/name", 1, 1).await;
    assert_eq!(bad.error.unwrap().error_code(), ErrorCode::InvalidArgument);
    let too_many = create_topic(&s, "wide", 1, 4).await;
    assert_eq!(too_many.error.unwrap().error_code(), ErrorCode::NotEnoughReplicas);

    let log = ops(&etcd).await;
    // Besides, the leader made the gRPC token key once, when it began to lead.
    let kinds: Vec<&str> = log.iter().map(|o| o.kind.as_str()).filter(|k| *k != "rotate-token-key").collect();
    assert_eq!(kinds, ["register-broker", "register-broker", "register-broker", "create-topic"]);
    assert_eq!(log.iter().filter(|o| o.kind == "rotate-token-key").count(), 1);
    assert_eq!(log.iter().map(|o| o.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);

    let meta = sentinel_client(&s)
        .await
        .metadata(pb::MetadataRequest { topics: vec!["orders".into(), "nope".into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.brokers.len(), 3);
    assert_eq!(meta.topics[0].partitions.len(), 6);
    assert_eq!(meta.topics[1].error.as_ref().unwrap().error_code(), ErrorCode::UnknownTopic);
}

#[tokio::test]
async fn given_auto_create_metadata_should_create_missing_topics_with_defaults_unless_disabled() {
    let etcd = EtcdProcess::start();
    let s = SentinelProcess::start("s1", &etcd.endpoint(), &["--default-partitions", "2"]);
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;
    let _b = FakeBroker::register(&s, 1).await;
    let req = pb::MetadataRequest { topics: vec!["auto".into()], allow_auto_create: true, ..Default::default() };
    let meta = sentinel_client(&s).await.metadata(req).await.unwrap().into_inner();
    assert!(meta.topics[0].error.is_none(), "{:?}", meta.topics[0].error);
    assert_eq!(meta.topics[0].partitions.len(), 2);

    let etcd2 = EtcdProcess::start();
    let off = SentinelProcess::start("s2", &etcd2.endpoint(), &["--auto-create-topics=false"]);
    wait_status(&off, "a leader", |r| leader_of(r).is_some()).await;
    let req = pb::MetadataRequest { topics: vec!["auto".into()], allow_auto_create: true, ..Default::default() };
    let meta = sentinel_client(&off).await.metadata(req).await.unwrap().into_inner();
    assert_eq!(meta.topics[0].error.as_ref().unwrap().error_code(), ErrorCode::UnknownTopic);
}

#[tokio::test]
async fn given_cluster_topic_defaults_new_topics_should_get_them_where_they_set_nothing() {
    let etcd = EtcdProcess::start();
    let args =
        ["--default-retention", "1d", "--default-retention-bytes", "1000000", "--default-min-insync-replicas", "2"];
    let s = SentinelProcess::start("s1", &etcd.endpoint(), &args);
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;
    let _brokers =
        [FakeBroker::register(&s, 1).await, FakeBroker::register(&s, 2).await, FakeBroker::register(&s, 3).await];
    let config = |r: pb::CreateTopicResponse| r.topic.unwrap().config.unwrap();
    let three = config(create_topic(&s, "three", 1, 3).await);
    assert_eq!((three.retention_ms, three.retention_bytes, three.min_insync_replicas), (86_400_000, 1_000_000, 2));
    // Capped at the replication factor: a small topic stays writable.
    assert_eq!(config(create_topic(&s, "one", 1, 1).await).min_insync_replicas, 1);
    // What a topic sets is kept.
    let own = pb::TopicConfig {
        name: "own".into(),
        partitions: 1,
        replication_factor: 3,
        retention_ms: 5000,
        min_insync_replicas: 3,
        ..Default::default()
    };
    let own = sentinel_client(&s)
        .await
        .create_topic(pb::CreateTopicRequest { config: Some(own) })
        .await
        .unwrap()
        .into_inner();
    let own = config(own);
    assert_eq!((own.retention_ms, own.retention_bytes, own.min_insync_replicas), (5000, 1_000_000, 3));
}

#[tokio::test]
async fn given_a_broker_that_stops_heartbeating_should_take_its_partitions_offline_then_back() {
    let etcd = EtcdProcess::start();
    let s = SentinelProcess::start("s1", &etcd.endpoint(), &[]);
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;
    let b1 = FakeBroker::register(&s, 1).await;
    let _b2 = FakeBroker::register(&s, 2).await;
    create_topic(&s, "t", 4, 1).await;

    let mut assignments = SentinelInternalClient::connect(s.url())
        .await
        .unwrap()
        .watch_assignments(pb::WatchAssignmentsRequest { broker_id: 1, held: vec![] })
        .await
        .unwrap()
        .into_inner();
    let snapshot = assignments.message().await.unwrap().unwrap();
    assert!(snapshot.snapshot);
    let mine: Vec<u32> = snapshot.assignments.iter().map(|a| a.state.as_ref().unwrap().partition).collect();
    assert!(!mine.is_empty(), "broker 1 should hold some of 4 partitions");

    // Broker 1 goes silent: after the session timeout its partitions have no leader.
    let id = b1.id;
    drop(b1);
    // Wait for the committed state (leader none), not just the view noticing
    // that the leader's session is gone.
    let status = wait_status(&s, "broker 1's partitions to go offline", |r| {
        r.offline_partitions.len() == mine.len() && r.offline_partitions.iter().all(|p| p.leader.is_none())
    })
    .await;
    for p in &status.offline_partitions {
        assert_eq!((p.leader, p.leader_epoch, p.isr.clone()), (None, 2, vec![id]));
    }
    // The assignment stream reports the change to broker 1's partitions.
    let update = tokio::time::timeout(Duration::from_secs(10), assignments.message()).await.unwrap().unwrap().unwrap();
    assert!(!update.snapshot);

    // It comes back: leadership returns to it with a new epoch.
    let _b1 = FakeBroker::register(&s, 1).await;
    let status = wait_status(&s, "partitions back online", |r| r.offline_partitions.is_empty()).await;
    assert!(status.brokers.iter().all(|b| b.state == pb::BrokerState::Up as i32));
    let kinds: Vec<String> = ops(&etcd).await.into_iter().map(|o| o.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "partition-offline").count(), mine.len());
    assert_eq!(kinds.iter().filter(|k| *k == "elect-leader").count(), mine.len());
}

#[tokio::test]
async fn given_three_sentinels_when_the_leader_dies_should_elect_another_and_forward_writes_to_it() {
    let etcd = EtcdProcess::start();
    let mut sentinels: Vec<SentinelProcess> =
        ["s1", "s2", "s3"].iter().map(|id| SentinelProcess::start(id, &etcd.endpoint(), &[])).collect();
    let status =
        wait_status(&sentinels[0], "a leader and 3 sentinels", |r| leader_of(r).is_some() && r.sentinels.len() == 3)
            .await;
    let leader = leader_of(&status).unwrap();
    let dead = sentinels.iter().position(|s| s.id == leader).unwrap();
    // The broker heartbeats to a sentinel that survives; its session must
    // outlive the sentinel failover.
    let _b = FakeBroker::register(&sentinels[(dead + 1) % 3], 7).await;

    // A write sent to a follower is forwarded to the leader.
    let follower = sentinels.iter().position(|s| s.id != leader).unwrap();
    let created = create_topic(&sentinels[follower], "via-follower", 1, 1).await;
    assert!(created.error.is_none(), "{:?}", created.error);
    let last = ops(&etcd).await.pop().unwrap();
    assert_eq!((last.kind.as_str(), last.sentinel.as_str()), ("create-topic", leader.as_str()));

    // Kill -9 the leader: another takes over and writes work again.
    sentinels[dead].kill();
    let survivor = &sentinels[(dead + 1) % 3];
    let status = wait_status(survivor, "a new leader", |r| leader_of(r).is_some_and(|l| l != leader)).await;
    let new_leader = leader_of(&status).unwrap();
    let created = create_topic(survivor, "after-failover", 1, 1).await;
    assert!(created.error.is_none(), "{:?}", created.error);
    let last = ops(&etcd).await.pop().unwrap();
    assert_eq!(last.sentinel, new_leader);
}

#[tokio::test]
async fn given_a_restarted_sentinel_should_recover_from_etcd_without_rewriting_it() {
    let etcd = EtcdProcess::start();
    let mut s = SentinelProcess::start("s1", &etcd.endpoint(), &[]);
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;
    {
        let _b = FakeBroker::register(&s, 1).await;
        create_topic(&s, "kept", 2, 1).await;
    }
    // Wait until broker 1's session is gone and its partitions are offline,
    // so the restart finds nothing left to change.
    wait_status(&s, "offline partitions", |r| {
        r.offline_partitions.len() == 2 && r.offline_partitions.iter().all(|p| p.leader.is_none())
    })
    .await;
    let before = ops(&etcd).await;
    s.restart();
    let status = wait_status(&s, "leader after restart", |r| leader_of(r).is_some()).await;
    assert_eq!(status.offline_partitions.len(), 2);
    let meta = sentinel_client(&s).await.metadata(pb::MetadataRequest::default()).await.unwrap().into_inner();
    assert_eq!(meta.topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["kept"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ops(&etcd).await, before, "recovery wrote to etcd");
}

#[tokio::test]
async fn given_etcd_down_writes_should_fail_as_unavailable_and_work_again_after() {
    let mut etcd = EtcdProcess::start();
    let s = SentinelProcess::start("s1", &etcd.endpoint(), &[]);
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;
    let _b = FakeBroker::register(&s, 1).await;
    etcd.kill();
    let resp = create_topic(&s, "during", 1, 1).await;
    let err = resp.error.expect("an error while etcd is down");
    assert!(matches!(err.error_code(), ErrorCode::Unavailable | ErrorCode::NoLeader), "{err:?}");
    assert!(!err.message.is_empty());
    etcd.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = create_topic(&s, "after", 1, 1).await;
        match resp.error {
            None => break,
            Some(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(?e, "not yet");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Some(e) => panic!("sentinel did not recover after etcd returned: {e:?}\n{}", s.log()),
        }
    }
    let kinds: Vec<String> = ops(&etcd).await.into_iter().map(|o| o.detail).collect();
    assert!(!kinds.iter().any(|d| d.contains("during")), "nothing half-written while etcd was down");
}

#[tokio::test]
async fn given_embedded_etcd_should_serve_and_without_an_etcd_binary_should_say_how_to_get_one() {
    let client_port = goulette_sentinel::testkit::free_port().to_string();
    let peer_port = goulette_sentinel::testkit::free_port().to_string();
    let s = SentinelProcess::start_with(
        "e1",
        ["--embedded-etcd", "--etcd-port", &client_port, "--etcd-peer-port", &peer_port].map(String::from).to_vec(),
    );
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;

    let out = std::process::Command::new(goulette_sentinel::testkit::bin_dir().join("goulette-sentinel"))
        .args(["--embedded-etcd", "--address", "127.0.0.1:0"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no `etcd` binary") && stderr.contains("--etcd-endpoints"), "{stderr}");
}

async fn alter_isr(s: &SentinelProcess, broker: u32, epoch: u64, isr: Vec<u32>) -> pb::AlterIsrResponse {
    let req = pb::AlterIsrRequest { broker_id: broker, topic: "r".into(), partition: 0, leader_epoch: epoch, isr };
    SentinelInternalClient::connect(s.url()).await.unwrap().alter_isr(req).await.unwrap().into_inner()
}

#[tokio::test]
async fn given_isr_changes_only_the_current_leader_at_its_epoch_should_apply_them() {
    let etcd = EtcdProcess::start();
    let s = SentinelProcess::start("s1", &etcd.endpoint(), &[]);
    wait_status(&s, "a leader", |r| leader_of(r).is_some()).await;
    let mut brokers = Vec::new();
    for id in 1..=3 {
        brokers.push(FakeBroker::register(&s, id).await);
    }
    let p = create_topic(&s, "r", 1, 3).await.topic.unwrap().partitions.remove(0);
    let leader = p.leader.unwrap();
    let followers: Vec<u32> = p.replicas.iter().copied().filter(|b| *b != leader).collect();

    // The leader expands the ISR; the stored order is the replica order.
    let mut all = p.replicas.clone();
    all.reverse();
    let r = alter_isr(&s, leader, 1, all).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.state.unwrap().isr, p.replicas);

    // A follower, a stale epoch, or a bad set are refused and change nothing.
    let r = alter_isr(&s, followers[0], 1, vec![followers[0]]).await;
    assert_eq!(r.error.unwrap().error_code(), ErrorCode::Fenced);
    let r = alter_isr(&s, leader, 0, vec![leader]).await;
    assert_eq!(r.error.unwrap().error_code(), ErrorCode::Fenced);
    let r = alter_isr(&s, leader, 1, followers.clone()).await;
    assert_eq!(r.error.unwrap().error_code(), ErrorCode::InvalidArgument);
    let r = alter_isr(&s, leader, 1, vec![leader, 99]).await;
    assert_eq!(r.error.unwrap().error_code(), ErrorCode::InvalidArgument);

    // The leader dies: an in-sync follower takes over at epoch 2, and the old
    // leader's epoch-1 ISR change is fenced off.
    brokers.retain(|b| b.id != leader);
    let status = wait_status(&s, "a new leader from the ISR", |r| {
        r.offline_partitions.is_empty()
            && r.brokers.iter().any(|b| b.id == leader && b.state == pb::BrokerState::Down as i32)
    })
    .await;
    assert!(status.offline_partitions.is_empty());
    let meta = sentinel_client(&s)
        .await
        .metadata(pb::MetadataRequest { topics: vec!["r".into()], ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let now = &meta.topics[0].partitions[0];
    assert_eq!(now.leader, Some(followers[0]), "the first live ISR member in replica order");
    assert_eq!(now.leader_epoch, 2);
    assert_eq!(now.isr, followers);
    let r = alter_isr(&s, leader, 1, vec![leader]).await;
    assert_eq!(r.error.unwrap().error_code(), ErrorCode::Fenced);
    let kinds: Vec<String> = ops(&etcd).await.into_iter().map(|o| o.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "alter-isr").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "elect-leader").count(), 1);
}
