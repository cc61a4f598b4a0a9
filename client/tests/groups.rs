//! Consumer-group membership against real sentinel, broker and etcd
//! processes: members split a topic's partitions, hand them over as others
//! join, a member killed with -9 loses its partitions after its session
//! timeout and the others resume from the committed offsets with nothing
//! lost, and commits from a stale generation or a lapsed member are refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::Env;
use goulette_client::offsets;
use goulette_client::{
    Admin, ClientError, Cluster, Consumer, ConsumerConfig, GroupOptions, Partitioner, Producer, ProducerConfig,
    ProducerRecord, StartAt,
};
use goulette_proto::v1::ErrorCode;
use goulette_sentinel::testkit::bin_dir;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const TOPIC: &str = "orders";
const PARTITIONS: u32 = 6;

/// Produces `v{i}` for i in `range`, to partition i % PARTITIONS.
async fn produce(cluster: Arc<Cluster>, range: std::ops::Range<u32>) {
    let producer = Producer::new(cluster, ProducerConfig::default(), Partitioner::KeyHash);
    let mut pending = Vec::new();
    for i in range {
        let r = ProducerRecord {
            topic: TOPIC.into(),
            partition: Some(i % PARTITIONS),
            value: Bytes::from(format!("v{i}")),
            ..Default::default()
        };
        pending.push(producer.send(r).await.unwrap());
    }
    for p in pending {
        p.wait().await.unwrap();
    }
    producer.close().await;
}

fn member_config(group: &str, strategy: &str, session: Duration) -> ConsumerConfig {
    ConsumerConfig {
        start: StartAt::Beginning,
        group: Some(group.into()),
        auto_commit: Some(Duration::from_millis(200)),
        membership: Some(GroupOptions {
            strategy: strategy.into(),
            session_timeout: session,
            client_id: "test".into(),
        }),
        ..Default::default()
    }
}

/// A consumer run in a task: what it received goes to `seen`, the
/// partitions it reads to `partitions`.
struct Member {
    partitions: watch::Receiver<Vec<u32>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn spawn_member(cluster: Arc<Cluster>, name: &'static str, seen: Arc<Mutex<Vec<(String, String)>>>) -> Member {
    let (tx, partitions) = watch::channel(Vec::new());
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let config = member_config("billing", "sticky", Duration::from_secs(3));
        let mut consumer = Consumer::subscribe(cluster, TOPIC, config).await.unwrap();
        while !token.is_cancelled() {
            if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
                let r = r.unwrap();
                seen.lock().unwrap().push((name.to_owned(), String::from_utf8_lossy(&r.value).into_owned()));
            }
            tx.send_replace(consumer.partitions());
        }
        consumer.close().await.unwrap();
    });
    Member { partitions, stop, task }
}

/// Waits until the members read disjoint sets of the given sizes.
async fn wait_split(members: &[&Member], sizes: &[usize]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now: Vec<Vec<u32>> = members.iter().map(|m| m.partitions.borrow().clone()).collect();
        let all: BTreeSet<u32> = now.iter().flatten().copied().collect();
        let mut got: Vec<usize> = now.iter().map(Vec::len).collect();
        got.sort();
        let mut want = sizes.to_vec();
        want.sort();
        if got == want && all.len() == got.iter().sum::<usize>() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "partitions never split {sizes:?}: {now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every `v{i}` for i < `n` was received by someone.
async fn wait_all_seen(seen: &Arc<Mutex<Vec<(String, String)>>>, n: u32, extra: impl Fn() -> Vec<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got: BTreeSet<String> = seen.lock().unwrap().iter().map(|(_, v)| v.clone()).chain(extra()).collect();
        let missing: Vec<u32> = (0..n).filter(|i| !got.contains(&format!("v{i}"))).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never received {} values, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process killed (-9) when dropped, so a failed test leaves none behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_members_joining_and_one_killed_the_group_should_split_partitions_and_lose_nothing() {
    let env = Env::start(2, &[]).await;
    env.create_topic(TOPIC, PARTITIONS, 2).await;
    env.wait_serving(TOPIC).await;
    produce(env.cluster(), 0..300).await;
    let seen = Arc::new(Mutex::new(Vec::new()));

    // Two members split the six partitions three and three.
    let a = spawn_member(env.cluster(), "a", seen.clone());
    let b = spawn_member(env.cluster(), "b", seen.clone());
    wait_split(&[&a, &b], &[3, 3]).await;
    wait_all_seen(&seen, 300, Vec::new).await;

    // A third member (the CLI, a real process) gets two; a and b keep two each.
    let before: Vec<Vec<u32>> = [&a, &b].iter().map(|m| m.partitions.borrow().clone()).collect();
    let sentinels = env.sentinel.address.to_string();
    let mut cli = Killed(
        std::process::Command::new(bin_dir().join("goulette"))
            .args(["consume", "--topic", TOPIC, "--group", "billing", "--from-beginning", "--session-timeout", "3s"])
            .env("GOULETTE_SENTINELS", &sentinels)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let cli_out = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let out = cli_out.clone();
        let stdout = cli.0.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                out.lock().unwrap().push(line);
            }
        })
    };
    let admin = Admin::new(env.cluster());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let g = admin.describe_group("billing").await.unwrap();
        let sizes: Vec<usize> = g.members.iter().map(|m| m.owned.len()).collect();
        if g.members.len() == 3 && sizes.iter().all(|n| *n == 2) {
            assert_eq!(g.strategy, "sticky");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never split in three: {g:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_split(&[&a, &b], &[2, 2]).await;
    for (m, old) in [&a, &b].iter().zip(&before) {
        assert!(m.partitions.borrow().iter().all(|p| old.contains(p)), "sticky: a member kept what it had");
    }
    produce(env.cluster(), 300..600).await;
    let cli_seen = || cli_out.lock().unwrap().clone();
    wait_all_seen(&seen, 600, cli_seen).await;
    assert!(!cli_out.lock().unwrap().is_empty(), "the CLI member consumed its share");

    // Killed with -9: no leave, no last commit. After its session timeout
    // its partitions go back to a and b, which resume at the committed
    // offsets: nothing produced before or after is lost.
    drop(cli);
    reader.join().unwrap();
    produce(env.cluster(), 600..900).await;
    wait_split(&[&a, &b], &[3, 3]).await;
    wait_all_seen(&seen, 900, cli_seen).await;
    let g = admin.describe_group("billing").await.unwrap();
    assert_eq!(g.members.len(), 2, "{g:?}");

    // Each value was received at least once; duplicates only where the
    // killed member had not committed (at-least-once), never within a
    // member that kept its partitions.
    let all = seen.lock().unwrap().clone();
    let mut per_member: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (m, v) in &all {
        assert!(per_member.entry(m).or_default().insert(v), "{m} received {v} twice");
    }

    // Leaving (close) hands partitions over at once, and commits.
    a.stop.cancel();
    a.task.await.unwrap();
    wait_split(&[&b], &[6]).await;
    b.stop.cancel();
    b.task.await.unwrap();
    let committed = offsets::fetch(&env.cluster(), "billing", TOPIC).await.unwrap();
    assert_eq!(committed, (0..PARTITIONS).map(|p| (p, 150)).collect(), "everything committed at close");
    let g = admin.describe_group("billing").await.unwrap();
    assert!(g.members.is_empty(), "{g:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_stale_or_lapsed_member_its_commits_should_be_refused() {
    let env = Env::start(1, &[]).await;
    env.create_topic(TOPIC, PARTITIONS, 1).await;
    env.wait_serving(TOPIC).await;
    produce(env.cluster(), 0..12).await;
    let cluster = env.cluster();
    let admin = Admin::new(cluster.clone());

    // A range member alone gets everything; it commits at its generation.
    let mut first =
        Consumer::subscribe(cluster.clone(), TOPIC, member_config("audit", "range", Duration::from_secs(2)))
            .await
            .unwrap();
    let mut got = 0;
    while got < 12 {
        tokio::time::timeout(Duration::from_secs(20), first.recv()).await.unwrap().unwrap().unwrap();
        got += 1;
    }
    first.commit().await.unwrap();
    let g1 = admin.describe_group("audit").await.unwrap();
    assert_eq!((g1.members.len(), g1.strategy.as_str()), (1, "range"));
    let member = g1.members[0].member_id.clone();
    let commit_to = |partition: u32, member: &str, generation: i64, offset: u64| {
        let cluster = cluster.clone();
        let member = member.to_owned();
        async move {
            let offsets: BTreeMap<u32, u64> = [(partition, offset)].into();
            offsets::commit(&cluster, "audit", TOPIC, &offsets, Some((&member, generation))).await
        }
    };
    commit_to(0, &member, g1.generation, 2).await.unwrap();

    // A member asking for another strategy is refused.
    let mut odd =
        Consumer::subscribe(cluster.clone(), TOPIC, member_config("audit", "round-robin", Duration::from_secs(2)))
            .await
            .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(10), odd.recv()).await.unwrap().unwrap().unwrap_err();
    assert!(matches!(refused, ClientError::Server { code: ErrorCode::InvalidArgument, .. }), "{refused}");
    drop(odd);

    // A second member joins: range splits 3/3, and generation g1 is stale.
    let mut second =
        Consumer::subscribe(cluster.clone(), TOPIC, member_config("audit", "range", Duration::from_secs(2)))
            .await
            .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let g2 = loop {
        let _ = tokio::time::timeout(Duration::from_millis(50), first.recv()).await;
        let _ = tokio::time::timeout(Duration::from_millis(50), second.recv()).await;
        let g = admin.describe_group("audit").await.unwrap();
        if g.members.len() == 2 && first.partitions().len() == 3 && second.partitions().len() == 3 {
            break g;
        }
        assert!(tokio::time::Instant::now() < deadline, "never split: {g:?}");
    };
    assert!(g2.generation > g1.generation);
    let ranges: BTreeSet<Vec<u32>> = [first.partitions(), second.partitions()].into();
    assert_eq!(ranges, [vec![0, 1, 2], vec![3, 4, 5]].into(), "range gives contiguous blocks");
    // Commits of the first member go to a partition it holds in g2: the
    // second one commits its own partitions every second (auto-commit).
    let mine = first.partitions()[0];
    let commit = |member: &str, generation: i64, offset: u64| commit_to(mine, member, generation, offset);
    let stale = commit(&member, g1.generation, 5).await.unwrap_err();
    assert!(matches!(stale, ClientError::Server { code: ErrorCode::Fenced, .. }), "{stale}");
    commit(&member, g2.generation, 4).await.unwrap();
    // Not for a partition the other member holds, even at the current
    // generation: a late commit of a partition given up would overwrite
    // its new owner's.
    let theirs = second.partitions()[0];
    let foreign = commit_to(theirs, &member, g2.generation, 1).await.unwrap_err();
    assert!(matches!(foreign, ClientError::Server { code: ErrorCode::Fenced, .. }), "{foreign}");
    assert!(foreign.to_string().contains("neither owns nor is assigned"), "{foreign}");

    // The first member goes silent (dropped: no leave); once its session
    // lapses it is a zombie, and its commit is refused even at the
    // generation it knew.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let g3 = loop {
        let _ = tokio::time::timeout(Duration::from_millis(100), second.recv()).await;
        let g = admin.describe_group("audit").await.unwrap();
        if g.members.len() == 1 && second.partitions().len() == 6 {
            break g;
        }
        assert!(tokio::time::Instant::now() < deadline, "the lapsed member was never dropped: {g:?}");
    };
    let zombie = commit(&member, g2.generation, 9).await.unwrap_err();
    assert!(matches!(zombie, ClientError::Server { code: ErrorCode::Fenced, .. }), "{zombie}");
    let zombie = commit(&member, g3.generation, 9).await.unwrap_err();
    assert!(matches!(zombie, ClientError::Server { code: ErrorCode::Fenced, .. }), "{zombie}");
    // Not 9. (Not necessarily 4 either: under load a member's session may
    // lapse for a moment, and the other member, handed the partition in
    // between, commits where it found it when it gives it back.)
    let committed = offsets::fetch(&cluster, "audit", TOPIC).await.unwrap();
    assert_ne!(committed.get(&mine), Some(&9), "no zombie commit landed");

    // Resetting or deleting a group with members is refused.
    let sentinels = env.sentinel.address.to_string();
    let out = std::process::Command::new(bin_dir().join("goulette"))
        .args(["group", "reset", "audit", "--topic", TOPIC, "--to", "earliest"])
        .env("GOULETTE_SENTINELS", &sentinels)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has members"), "{}", String::from_utf8_lossy(&out.stderr));
    second.close().await.unwrap();
    let out = std::process::Command::new(bin_dir().join("goulette"))
        .args(["group", "delete", "audit"])
        .env("GOULETTE_SENTINELS", &sentinels)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(admin.member_groups().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_no_heartbeat_answered_a_member_should_stop_fetching_before_its_session_can_lapse() {
    let env = Env::start(1, &[]).await;
    env.create_topic(TOPIC, 2, 1).await;
    env.wait_serving(TOPIC).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let member = spawn_member(env.cluster(), "m", seen);
    wait_split(&[&member], &[2]).await;

    // The only sentinel stops answering: within the 3 s session the member
    // gives up its partitions (its lease could expire any time after).
    env.sentinel.pause();
    let paused = tokio::time::Instant::now();
    let mut partitions = member.partitions.clone();
    tokio::time::timeout(Duration::from_secs(3), partitions.wait_for(Vec::is_empty))
        .await
        .expect("the member kept fetching without a heartbeat answered")
        .unwrap();
    assert!(paused.elapsed() >= Duration::from_secs(1), "stopped too early: {:?}", paused.elapsed());

    // Back: the member (its session lapsed) joins again and reads everything.
    env.sentinel.resume();
    wait_split(&[&member], &[2]).await;
    env.wait_brokers_up().await; // the close commits through the (recovering) cluster
    member.stop.cancel();
    member.task.await.unwrap();
}
