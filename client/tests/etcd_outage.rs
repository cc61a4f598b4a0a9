//! etcd down for 10 s, or frozen (SIGSTOP: it keeps its connections but
//! answers nothing): the data plane keeps serving on the current leaders
//! (`acks=all` included), metadata changes fail with a typed error until
//! etcd returns, then everything resumes by itself.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Env, consume_all};
use goulette_client::{Admin, ClientError, Partitioner, Producer, ProducerConfig, ProducerRecord};
use goulette_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_etcd_down_for_10s_acks_all_writes_should_go_on_and_metadata_resume_after() {
    outage(Outage::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_etcd_frozen_for_10s_acks_all_writes_should_go_on_and_metadata_resume_after() {
    outage(Outage::Frozen).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outage {
    /// SIGKILL, then a restart.
    Killed,
    /// SIGSTOP, then SIGCONT: every call to it hangs.
    Frozen,
}

async fn outage(kind: Outage) {
    let mut env = Env::start(3, &[]).await;
    env.create_topic("steady", 2, 3).await;
    env.wait_serving("steady").await;
    let cluster = env.cluster();
    let admin = Admin::new(cluster.clone());
    // Full ISRs before the outage.
    let deadline = Instant::now() + Duration::from_secs(30);
    let epochs = loop {
        let d = admin.describe_topic("steady").await.unwrap();
        if d.partition_details.iter().all(|p| p.isr.len() == 3) {
            break d.partition_details.iter().map(|p| (p.leader, p.leader_epoch)).collect::<Vec<_>>();
        }
        assert!(Instant::now() < deadline, "ISR never full");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let producer = Producer::new(cluster.clone(), ProducerConfig::default(), Partitioner::KeyHash);
    let mut sent = 0usize;
    send_for(&producer, &mut sent, Duration::from_secs(1)).await;

    match kind {
        Outage::Killed => env.etcd.kill(),
        Outage::Frozen => env.etcd.pause(),
    }
    let down = Instant::now();
    // Past every session timeout (2 s in tests) the leaders still take acks=all writes.
    send_for(&producer, &mut sent, Duration::from_secs(10)).await;
    // A metadata change cannot be made and says why.
    let refused = env.create_topic_result("during-outage").await.unwrap_err();
    assert!(
        matches!(&refused, ClientError::Server { code: pb::ErrorCode::Unavailable | pb::ErrorCode::NoLeader, .. }),
        "{refused}"
    );
    println!("etcd {kind:?} for {:?}; {sent} writes acknowledged", down.elapsed());
    match kind {
        Outage::Killed => env.etcd.restart(),
        Outage::Frozen => env.etcd.resume(),
    }

    // Writes go on, and metadata changes work again once a sentinel leads.
    send_for(&producer, &mut sent, Duration::from_secs(1)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while env.create_topic_result("after-outage").await.is_err() {
        assert!(Instant::now() < deadline, "no metadata change after etcd returned\n{}", env.sentinel.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    producer.close().await;
    if kind == Outage::Killed {
        // No broker lost its session (a restarted etcd extends every lease
        // by its TTL): the leaders kept their epochs.
        let status = admin.cluster_status().await.unwrap();
        assert!(status.brokers.iter().all(|b| b.state == pb::BrokerState::Up as i32), "{status:?}");
        let d = admin.describe_topic("steady").await.unwrap();
        assert_eq!(d.partition_details.iter().map(|p| (p.leader, p.leader_epoch)).collect::<Vec<_>>(), epochs);
    } else {
        // A resumed etcd expires the leases it could not refresh while
        // frozen: the brokers register again and leaders are elected anew
        // (no acknowledged write is lost; the producer retried through it).
        env.wait_brokers_up().await;
    }
    assert_eq!(consume_all(cluster, "steady", sent).await.len(), sent);
}

/// Sends one `acks=all` write every 20 ms for `how_long`; each must succeed.
async fn send_for(producer: &Producer, sent: &mut usize, how_long: Duration) {
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        let r = ProducerRecord {
            topic: "steady".into(),
            key: Some(Bytes::from(format!("k{}", *sent % 8))),
            value: Bytes::from(format!("m{sent}")),
            ..Default::default()
        };
        let started = Instant::now();
        let acked = producer.send(r).await.unwrap().wait().await;
        assert!(acked.is_ok(), "write {sent} failed after {:?}: {acked:?}", started.elapsed());
        *sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
