//! `goulette etcd …` against a real etcd: backup, clean and restore round
//! trips, refusals that write nothing, the prefix boundary, an unreachable
//! or unresponsive etcd, and the `goulette` binary itself.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use etcd_client::{GetOptions, PutOptions};
use goulette_cli::etcd_admin::{AdminError, Backup, BackupKey, EtcdAdmin, EtcdTarget, RESTORE_TXN_PUTS};
use goulette_metadata::keys::Keys;
use goulette_metadata::model::{BrokerRecord, PartitionRecord, SentinelRecord, TopicRecord};
use goulette_sentinel::store::{self, Change, Fence, Store};
use goulette_sentinel::testkit::{EtcdProcess, free_port};

const PREFIX: &str = "/goulette";
/// Topics of 100 partitions each, so the prefix holds more keys than one
/// read page (1000) and than one restore transaction.
const BULK_TOPICS: u32 = 11;

async fn admin(etcd: &EtcdProcess, prefix: &str) -> EtcdAdmin {
    EtcdAdmin::connect(&EtcdTarget::new(vec![etcd.endpoint()], prefix).unwrap()).await.unwrap()
}

/// A store that writes as sentinel `s1`, the fence of its election win, and
/// the lease its live keys hang on.
async fn store_and_fence(etcd: &EtcdProcess, prefix: &str) -> (Store, Fence, i64) {
    let mut client = store::connect(&[etcd.endpoint()]).await.unwrap();
    let keys = Keys::new(prefix);
    let lease = client.lease_grant(60, None).await.unwrap().id();
    let won = client.campaign(keys.election(), "127.0.0.1:50052", lease).await.unwrap();
    let leader = won.leader().unwrap();
    let fence = Fence { key: leader.key().to_vec(), revision: leader.rev() };
    (Store::new(client, keys, "s1"), fence, lease)
}

fn topic(name: &str, partitions: u32, replication_factor: u32) -> TopicRecord {
    TopicRecord {
        id: 0,
        name: name.into(),
        partitions,
        replication_factor,
        retention_ms: 86_400_000,
        retention_bytes: 0,
        unclean_leader_election: false,
        min_insync_replicas: 1,
        ..TopicRecord::default()
    }
}

fn partition(topic: &str, p: u32, replicas: &[u32], leader: Option<u32>, epoch: u64) -> PartitionRecord {
    PartitionRecord {
        topic: topic.into(),
        partition: p,
        replicas: replicas.to_vec(),
        leader,
        leader_epoch: epoch,
        isr: leader.map_or_else(Vec::new, |_| replicas.to_vec()),
    }
}

async fn create_topic(store: &Store, fence: &Fence, name: &str, partitions: u32, replicas: &[u32]) {
    let keys = store.keys().clone();
    let mut change = Change::new("create-topic", format!("{name} with {partitions} partitions")).put_json(
        keys.topic(name),
        &topic(name, partitions, replicas.len() as u32),
        None,
    );
    change.require_absent.push(keys.topic(name));
    for p in 0..partitions {
        change = change.put_json(keys.partition(name, p), &partition(name, p, replicas, Some(replicas[0]), 0), None);
    }
    store.commit(fence, change).await.unwrap();
}

/// What a running cluster leaves in etcd: a broker and a sentinel under a
/// lease (plus the election key), topics with partitions, and an op log.
async fn populate(store: &Store, fence: &Fence, lease: i64) {
    let keys = store.keys().clone();
    let broker = BrokerRecord {
        id: 1,
        address: "127.0.0.1:50051".into(),
        http_address: String::new(),
        rack: "a".into(),
        max_batch_bytes: 0,
        kafka_address: String::new(),
        default_retention_ms: None,
    };
    let change =
        Change::new("register-broker", "broker 1 at 127.0.0.1:50051").put_json(keys.broker(1), &broker, Some(lease));
    store.commit(fence, change).await.unwrap();
    let sentinel = serde_json::to_string(&SentinelRecord {
        id: "s1".into(),
        address: "127.0.0.1:50052".into(),
        http_address: String::new(),
    });
    let options = PutOptions::new().with_lease(lease);
    store.client().put(keys.sentinel("s1"), sentinel.unwrap(), Some(options)).await.unwrap();

    create_topic(store, fence, "orders", 3, &[1, 2]).await;
    let offline = partition("orders", 2, &[1, 2], None, 1);
    let change = Change::new("elect-leader", "orders/2 has no live in-sync replica").put_json(
        keys.partition("orders", 2),
        &offline,
        None,
    );
    store.commit(fence, change).await.unwrap();
    for i in 0..BULK_TOPICS {
        create_topic(store, fence, &format!("bulk-{i:02}"), 100, &[1]).await;
    }
}

/// Every key under `root` with its value, lease and mod revision, and the store revision.
async fn raw(etcd: &EtcdProcess, root: &str) -> (BTreeMap<String, (String, i64, i64)>, i64) {
    let mut client = store::connect(&[etcd.endpoint()]).await.unwrap();
    let resp = client.get(root, Some(GetOptions::new().with_prefix())).await.unwrap();
    let keys = resp
        .kvs()
        .iter()
        .map(|kv| {
            let value = (kv.value_str().unwrap().to_owned(), kv.lease(), kv.mod_revision());
            (kv.key_str().unwrap().to_owned(), value)
        })
        .collect();
    (keys, resp.header().unwrap().revision())
}

fn values(keys: &BTreeMap<String, (String, i64, i64)>) -> BTreeMap<String, String> {
    keys.iter().map(|(k, (v, _, _))| (k.clone(), v.clone())).collect()
}

#[tokio::test]
async fn given_a_populated_prefix_when_backed_up_cleaned_and_restored_should_give_back_the_same_keys_and_ops() {
    let etcd = EtcdProcess::start();
    let (store, fence, lease) = store_and_fence(&etcd, PREFIX).await;
    populate(&store, &fence, lease).await;
    let admin = admin(&etcd, PREFIX).await;
    let root = Keys::new(PREFIX).root();

    let (before, _) = raw(&etcd, &root).await;
    let lease_bound: Vec<_> = before.iter().filter(|(_, (_, lease, _))| *lease != 0).map(|(k, _)| k.clone()).collect();
    assert_eq!(lease_bound.len(), 3, "broker, sentinel and election keys: {lease_bound:?}");
    let restorable: BTreeMap<_, _> = values(&before).into_iter().filter(|(k, _)| !lease_bound.contains(k)).collect();
    assert!(restorable.len() > 1000, "{} keys", restorable.len());
    let ops_before = admin.ops(None).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json");
    let report = admin.backup(&file).await.unwrap();
    assert_eq!((report.keys, report.skipped), (restorable.len(), 3));
    let backup = Backup::read(&file).unwrap();
    assert_eq!(backup.prefix, PREFIX);
    assert_eq!(backup.revision, raw(&etcd, &root).await.1);
    let in_file: BTreeMap<_, _> = backup.keys.iter().map(|k| (k.key.clone(), k.value.clone())).collect();
    assert_eq!(in_file, restorable);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("{\n  \"prefix\": \"/goulette\",\n  \"revision\": "), "pretty JSON: {}", &text[..80]);

    let deleted = admin.clean(true).await.unwrap();
    assert_eq!(deleted as usize, before.len());
    assert!(raw(&etcd, &root).await.0.is_empty());

    let restored = admin.restore(&file).await.unwrap();
    assert_eq!(restored.keys, restorable.len());
    assert_eq!(restored.transactions, restorable.len().div_ceil(RESTORE_TXN_PUTS));
    let (after, _) = raw(&etcd, &root).await;
    assert_eq!(values(&after), restorable, "exactly the backed-up keys and values, none of the lease-bound ones");
    let counter = Keys::new(PREFIX).ops_counter();
    let counter_rev = after[&counter].2;
    assert!(after.iter().all(|(k, (_, _, rev))| k == &counter || *rev <= counter_rev), "the op counter comes last");

    let ops_after = admin.ops(None).await.unwrap();
    assert_eq!(ops_after, ops_before);
    let lines: Vec<&str> = ops_after.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + BULK_TOPICS as usize, "{ops_after}");
    assert!(lines[0].trim_start().starts_with("SEQ") && lines[0].ends_with("DETAIL"), "{}", lines[0]);
    let expected = [
        ("register-broker", "broker 1 at 127.0.0.1:50051"),
        ("create-topic", "orders with 3 partitions"),
        ("elect-leader", "orders/2 has no live in-sync replica"),
        ("create-topic", "bulk-00 with 100 partitions"),
    ];
    for (i, line) in lines[1..].iter().enumerate() {
        let mut cells = line.split_whitespace();
        let (seq, at, sentinel, kind) = (cells.next(), cells.next(), cells.next(), cells.next());
        let detail = cells.collect::<Vec<_>>().join(" ");
        assert_eq!(seq, Some((i + 1).to_string().as_str()), "in sequence order: {line}");
        assert!(at.unwrap().ends_with('Z') && humantime::parse_rfc3339(at.unwrap()).is_ok(), "{line}");
        assert_eq!(sentinel, Some("s1"));
        if let Some((want_kind, want_detail)) = expected.get(i) {
            assert_eq!((kind.unwrap(), detail.as_str()), (*want_kind, *want_detail));
        }
    }
    // Columns are as wide as the rows printed, so compare cells.
    let cells =
        |lines: &[&str]| lines.iter().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect::<Vec<_>>();
    let last = admin.ops(Some(2)).await.unwrap();
    assert_eq!(cells(&last.lines().collect::<Vec<_>>()[1..]), cells(&lines[lines.len() - 2..]));
}

#[tokio::test]
async fn given_a_populated_prefix_should_show_topics_and_status() {
    let etcd = EtcdProcess::start();
    let (store, fence, lease) = store_and_fence(&etcd, PREFIX).await;
    populate(&store, &fence, lease).await;
    let admin = admin(&etcd, PREFIX).await;

    let topics = admin.topics().await.unwrap();
    assert!(topics.starts_with(&format!("{} topics under /goulette/", BULK_TOPICS + 1)), "{topics}");
    let orders = "topic orders: partitions=3 replication_factor=2 retention_ms=86400000 retention_bytes=0 \
                  unclean_leader_election=false\n\
                  \x20 partition 0: replicas=[1,2] leader=1 leader_epoch=0 isr=[1,2]\n\
                  \x20 partition 1: replicas=[1,2] leader=1 leader_epoch=0 isr=[1,2]\n\
                  \x20 partition 2: replicas=[1,2] leader=none leader_epoch=1 isr=[]\n";
    assert!(topics.contains(orders), "{topics}");

    let status = admin.status().await.unwrap();
    assert!(status.down.is_empty(), "{status:?}");
    let status = status.report;
    assert!(status.starts_with(&format!("endpoint {}\n  version:     3.", etcd.endpoint())), "{status}");
    assert!(status.contains("members (1):\n"), "{status}");
    assert!(status.lines().any(|l| l.contains(" healthy ") && l.contains(&etcd.endpoint())), "{status}");
    let partitions = 3 + 100 * BULK_TOPICS;
    for line in [
        format!("  topics      {}\n", BULK_TOPICS + 1),
        format!("  partitions  {partitions}\n"),
        "  brokers     1\n".to_owned(),
        "  sentinels   1\n".to_owned(),
        format!("  ops         {}\n", 3 + BULK_TOPICS),
        "  counters    1\n".to_owned(),
        "  election    1\n".to_owned(),
        format!("  total       {}\n", BULK_TOPICS + 1 + partitions + 1 + 1 + 3 + BULK_TOPICS + 1 + 1),
        format!("op counter: {} (the next op's sequence number)\n", 4 + BULK_TOPICS),
    ] {
        assert!(status.contains(&line), "{line:?} in\n{status}");
    }
}

#[tokio::test]
async fn given_a_producer_id_counter_a_restore_should_advance_it_past_every_id_handed_out_since() {
    let etcd = EtcdProcess::start();
    let (store, fence, _lease) = store_and_fence(&etcd, PREFIX).await;
    create_topic(&store, &fence, "orders", 1, &[1]).await;
    let keys = Keys::new(PREFIX);
    let mut client = store::connect(&[etcd.endpoint()]).await.unwrap();
    client.put(keys.producer_ids_counter(), "5000", None).await.unwrap();
    let admin = admin(&etcd, PREFIX).await;
    let (backup, _) = admin.snapshot().await.unwrap();
    admin.clean(true).await.unwrap();
    admin.restore_backup(&backup).await.unwrap();
    let (after, _) = raw(&etcd, &keys.root()).await;
    let want = (5000 + goulette_cli::etcd_admin::PRODUCER_ID_RESTORE_JUMP).to_string();
    assert_eq!(after[&keys.producer_ids_counter()].0, want);
    // Everything else is as it was.
    let topic = keys.topic("orders");
    assert_eq!(Some(&after[&topic].0), backup.keys.iter().find(|k| k.key == topic).map(|k| &k.value));
}

#[tokio::test]
async fn given_a_non_empty_prefix_when_restoring_should_refuse_and_write_nothing() {
    let etcd = EtcdProcess::start();
    let (store, fence, _lease) = store_and_fence(&etcd, PREFIX).await;
    create_topic(&store, &fence, "orders", 3, &[1, 2]).await;
    let admin = admin(&etcd, PREFIX).await;
    let (backup, skipped) = admin.snapshot().await.unwrap();
    assert_eq!(skipped, 1, "the election key");

    let root = Keys::new(PREFIX).root();
    let (before, revision) = raw(&etcd, &root).await;
    let err = admin.restore_backup(&backup).await.unwrap_err();
    assert!(matches!(err, AdminError::NotEmpty { count: 7, .. }), "{err}");
    assert!(err.to_string().contains("clean --yes"), "{err}");
    assert_eq!(raw(&etcd, &root).await, (before, revision), "not a single write");
}

#[tokio::test]
async fn given_an_interrupted_restore_should_refuse_to_restore_again_until_cleaned() {
    let etcd = EtcdProcess::start();
    let (store, fence, _lease) = store_and_fence(&etcd, PREFIX).await;
    create_topic(&store, &fence, "orders", 3, &[1, 2]).await;
    let admin = admin(&etcd, PREFIX).await;
    let (backup, _) = admin.snapshot().await.unwrap();
    admin.clean(true).await.unwrap();

    // What a restore that died after its first transaction leaves: some
    // keys, no op counter.
    let counter = Keys::new(PREFIX).ops_counter();
    let partial =
        Backup { keys: backup.keys.iter().filter(|k| k.key != counter).take(2).cloned().collect(), ..backup.clone() };
    admin.restore_backup(&partial).await.unwrap();
    let err = admin.restore_backup(&backup).await.unwrap_err();
    assert!(matches!(err, AdminError::NotEmpty { count: 2, .. }), "{err}");

    admin.clean(true).await.unwrap();
    let report = admin.restore_backup(&backup).await.unwrap();
    assert_eq!(report.keys, backup.keys.len());
    assert_eq!(admin.snapshot().await.unwrap().0.keys, backup.keys);
}

#[tokio::test]
async fn given_a_backup_of_another_prefix_should_refuse_the_restore() {
    let etcd = EtcdProcess::start();
    let admin = admin(&etcd, "/other").await;
    let backup = Backup {
        prefix: PREFIX.into(),
        revision: 1,
        keys: vec![BackupKey { key: "/goulette/topics/a".into(), value: "{}".into() }],
    };
    let err = admin.restore_backup(&backup).await.unwrap_err();
    assert!(matches!(err, AdminError::PrefixMismatch { .. }), "{err}");
    assert!(err.to_string().contains("--etcd-prefix /goulette"), "{err}");

    // A hand-edited backup cannot smuggle in a live process's key either.
    let admin = self::admin(&etcd, PREFIX).await;
    let lease_bound =
        Backup { keys: vec![BackupKey { key: Keys::new(PREFIX).broker(1), value: "{}".into() }], ..backup.clone() };
    let err = admin.restore_backup(&lease_bound).await.unwrap_err();
    assert!(matches!(err, AdminError::BadBackup(_)), "{err}");
    assert!(raw(&etcd, "/").await.0.is_empty());
}

#[tokio::test]
async fn given_clean_without_yes_should_refuse_and_delete_nothing() {
    let etcd = EtcdProcess::start();
    let (store, fence, _lease) = store_and_fence(&etcd, PREFIX).await;
    create_topic(&store, &fence, "orders", 1, &[1]).await;
    let admin = admin(&etcd, PREFIX).await;
    let before = raw(&etcd, "/").await;

    let err = admin.clean(false).await.unwrap_err();
    assert!(matches!(err, AdminError::NotConfirmed { .. }), "{err}");
    assert!(err.to_string().contains("--yes"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["etcd", "clean", "--etcd-endpoints", &etcd.endpoint()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"), "{out:?}");
    assert_eq!(raw(&etcd, "/").await, before);
}

#[tokio::test]
async fn given_prefix_goulette_when_cleaned_should_leave_goulette2_alone() {
    let etcd = EtcdProcess::start();
    let mut client = store::connect(&[etcd.endpoint()]).await.unwrap();
    for key in ["/goulette/topics/a", "/goulette/counters/ops", "/goulette2/x", "/goulette", "/goulettex"] {
        client.put(key, "v", None).await.unwrap();
    }
    let deleted = admin(&etcd, PREFIX).await.clean(true).await.unwrap();
    assert_eq!(deleted, 2);
    let left: Vec<String> = raw(&etcd, "/").await.0.into_keys().collect();
    assert_eq!(left, ["/goulette", "/goulette2/x", "/goulettex"]);
}

#[tokio::test]
async fn given_a_non_utf8_value_should_refuse_the_backup() {
    let etcd = EtcdProcess::start();
    let mut client = store::connect(&[etcd.endpoint()]).await.unwrap();
    client.put("/goulette/topics/bad", vec![0xff, 0xfe], None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.json");
    let err = admin(&etcd, PREFIX).await.backup(&file).await.unwrap_err();
    assert!(matches!(err, AdminError::NotUtf8 { .. }), "{err}");
    assert!(err.to_string().contains("/goulette/topics/bad"), "{err}");
    assert!(!file.exists());
}

#[tokio::test]
async fn given_nothing_listening_should_fail_quickly_naming_the_endpoints() {
    let endpoints = vec![format!("http://127.0.0.1:{}", free_port()), format!("http://127.0.0.1:{}", free_port())];
    let started = Instant::now();
    let err = EtcdAdmin::connect(&EtcdTarget::new(endpoints.clone(), PREFIX).unwrap()).await.unwrap_err();
    assert!(matches!(err, AdminError::Unreachable { .. }), "{err}");
    assert!(err.to_string().starts_with(&format!("cannot reach etcd at {}", endpoints.join(","))), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["etcd", "--etcd-endpoints", &endpoints[0], "ops"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&endpoints[0]), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn given_one_dead_endpoint_among_live_ones_should_use_the_live_ones_and_report_the_dead_one() {
    let etcd = EtcdProcess::start();
    let (store, fence, _lease) = store_and_fence(&etcd, PREFIX).await;
    create_topic(&store, &fence, "orders", 1, &[1]).await;
    let dead = format!("http://127.0.0.1:{}", free_port());
    let target = EtcdTarget::new(vec![dead.clone(), etcd.endpoint()], PREFIX).unwrap();
    let admin = EtcdAdmin::connect(&target).await.unwrap();
    // Enough requests that a client still balancing onto the dead endpoint would hit it.
    for _ in 0..10 {
        assert!(admin.ops(None).await.unwrap().contains("create-topic"));
    }
    let status = admin.status().await.unwrap();
    assert_eq!(status.down, vec![format!("endpoint {dead}")]);
    let status = status.report;
    assert!(status.starts_with(&format!("endpoint {dead}\n  unreachable: ")), "{status}");
    assert!(status.contains(&format!("endpoint {}\n  version:     3.", etcd.endpoint())), "{status}");
}

#[tokio::test]
async fn given_an_etcd_that_stops_answering_should_fail_within_the_request_timeout() {
    let etcd = EtcdProcess::start();
    let admin = admin(&etcd, PREFIX).await;
    etcd.pause();
    let started = Instant::now();
    let err = admin.ops(None).await.unwrap_err();
    let elapsed = started.elapsed();
    let reconnect = EtcdAdmin::connect(&EtcdTarget::new(vec![etcd.endpoint()], PREFIX).unwrap()).await.unwrap_err();
    let reconnect_elapsed = started.elapsed() - elapsed;
    etcd.resume();
    assert!(matches!(err, AdminError::Etcd { .. }), "{err}");
    assert!(err.to_string().contains(&etcd.endpoint()), "{err}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(matches!(reconnect, AdminError::Unreachable { .. }), "{reconnect}");
    assert!(reconnect_elapsed < Duration::from_secs(5), "{reconnect_elapsed:?}");
}

#[tokio::test]
async fn given_ops_in_etcd_when_running_goulette_etcd_ops_should_print_them_in_order() {
    let etcd = EtcdProcess::start();
    let prefix = "/goulette-cli";
    let (store, fence, _lease) = store_and_fence(&etcd, prefix).await;
    for name in ["a", "b", "c"] {
        create_topic(&store, &fence, name, 1, &[1]).await;
    }

    // Endpoints from the environment, the prefix as a flag after the subcommand.
    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .env("GOULETTE_ETCD_ENDPOINTS", etcd.endpoint())
        .args(["etcd", "ops", "--etcd-prefix", prefix, "--last", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert_eq!(rows[0], ["SEQ", "TIME", "SENTINEL", "KIND", "DETAIL"]);
    for (row, (seq, name)) in rows[1..].iter().zip([("2", "b"), ("3", "c")]) {
        assert_eq!([row[0], row[2], row[3], row[4]], [seq, "s1", "create-topic", name], "{stdout}");
        assert!(humantime::parse_rfc3339(row[1]).is_ok(), "{stdout}");
    }

    // The default prefix holds nothing here.
    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["etcd", "--etcd-endpoints", &etcd.endpoint(), "ops"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "no operations under /goulette/ops/\n");
}

#[tokio::test]
async fn given_a_member_that_is_not_running_status_should_show_it_down_and_fail() {
    let etcd = EtcdProcess::start();
    // A learner never started: a member of the cluster that does not run
    // (a learner, so that the one voting member keeps its quorum).
    let mut client = store::connect(&[etcd.endpoint()]).await.unwrap();
    let peer = format!("http://127.0.0.1:{}", free_port());
    client.member_add([peer.clone()], Some(etcd_client::MemberAddOptions::new().with_is_learner())).await.unwrap();
    let admin = admin(&etcd, PREFIX).await;
    let status = admin.status().await.unwrap();
    assert_eq!(status.down.len(), 1, "{status:?}");
    assert!(status.down[0].contains("(not started)"), "{status:?}");
    let line = status.report.lines().find(|l| l.contains(&peer)).unwrap_or_else(|| panic!("{}", status.report));
    assert!(line.contains("DOWN: never started"), "{line}");

    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["etcd", "status", "--etcd-endpoints", &etcd.endpoint()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not healthy: member"), "{out:?}");
}
