//! Real Kafka clients against real brokers: kcat (librdkafka's CLI, the
//! Debian package) and confluent-kafka (librdkafka 2.x, from the virtualenv
//! `make deps` creates in `.venv/`), driven as a user would.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::KafkaCluster;
use goulette_sentinel::testkit::bin_dir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The virtualenv's Python (fails, naming the fix, when it is missing).
fn python() -> PathBuf {
    let python = repo().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps` (scripts/deps.sh) first", python.display());
    python
}

fn run(mut command: Command) -> Output {
    let out = command.stderr(Stdio::piped()).stdout(Stdio::piped()).output().expect("start the client");
    if !out.status.success() {
        panic!(
            "{command:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn kcat(bootstrap: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new("kcat");
    cmd.arg("-b").arg(bootstrap).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kcat is installed by `make deps`");
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kcat {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn create_topic(cluster: &KafkaCluster, name: &str, partitions: u32, replication: u32) {
    let mut cmd = Command::new(bin_dir().join("goulette"));
    cmd.args(["topic", "create", name, "--sentinels", &cluster.sentinel.address.to_string()]);
    cmd.args(["--partitions", &partitions.to_string(), "--replication-factor", &replication.to_string()]);
    run(cmd);
    cluster.wait_led(name);
}

#[test]
fn given_kcat_it_should_list_the_brokers_and_round_trip_keys_headers_and_binary_values_in_every_codec() {
    let _serial = common::serial();
    let cluster = KafkaCluster::start(3, &[]);
    let bootstrap = cluster.brokers[0].kafka_address.to_string();
    create_topic(&cluster, "kcat", 1, 3);
    let listing = String::from_utf8(kcat(&bootstrap, &["-L"], None).stdout).unwrap();
    assert!(listing.contains(" 3 brokers:"), "{listing}");
    for b in &cluster.brokers {
        assert!(listing.contains(&format!("broker {} at {}", b.id, b.kafka_address)), "{listing}");
    }
    assert!(listing.contains("topic \"kcat\" with 1 partitions"), "{listing}");

    let mut expected = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        // Keys before ':', values with bytes that are not UTF-8.
        let mut input = Vec::new();
        for i in 0..20 {
            input.extend_from_slice(format!("key-{codec}-{i}:").as_bytes());
            input.extend_from_slice(&[b'v', 0xE9, 0xFF, 0x80, b'0' + (i % 10) as u8, b'\n']);
            expected.extend_from_slice(format!("key-{codec}-{i}|h={codec}|").as_bytes());
            expected.extend_from_slice(&[b'v', 0xE9, 0xFF, 0x80, b'0' + (i % 10) as u8, b'\n']);
        }
        kcat(&bootstrap, &["-P", "-t", "kcat", "-K:", "-H", &format!("h={codec}"), "-z", codec], Some(&input));
    }
    let out = kcat(&bootstrap, &["-C", "-t", "kcat", "-o", "beginning", "-e", "-f", "%k|%h|%s\n"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&expected));
    assert_eq!(out.stdout, expected, "byte-exact");
}

#[test]
fn given_confluent_kafka_an_idempotent_acks_all_producer_should_deliver_every_codec_byte_exact() {
    let _serial = common::serial();
    let cluster = KafkaCluster::start(3, &[]);
    create_topic(&cluster, "idem", 3, 3);
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("broker/tests/kafka/idempotent_producer.py")).args([&cluster.bootstrap(), "idem", "300"]);
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("read back 1500 messages byte-exact"), "{stdout}");
}

#[test]
fn given_three_confluent_kafka_group_members_they_should_split_the_partitions_and_survive_a_leave_and_a_kill() {
    let _serial = common::serial();
    let cluster = KafkaCluster::start(3, &["--kafka-group-initial-delay", "2s"]);
    create_topic(&cluster, "grouped", 6, 3);
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("broker/tests/kafka/group_consumers.py")).args([
        &cluster.bootstrap(),
        "grouped",
        "600",
        work.path().to_str().unwrap(),
    ]);
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("every partition committed at its end"), "{stdout}");
}

#[test]
fn given_an_idempotent_kafka_producer_when_the_leader_is_killed_every_acknowledged_message_should_be_there_once_in_order()
 {
    let _serial = common::serial();
    let mut cluster = KafkaCluster::start(3, &[]);
    create_topic(&cluster, "failover", 1, 3);
    let leader = cluster.wait_led("failover").topics[0].partitions[0].leader_id.0;
    let work = tempfile::tempdir().unwrap();
    let acked_path = work.path().join("acked.txt");
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("broker/tests/kafka/numbered_producer.py")).args([
        &cluster.bootstrap(),
        "failover",
        "8",
        acked_path.to_str().unwrap(),
    ]);
    let producer = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let victim = cluster.brokers.iter_mut().find(|b| b.id as i32 == leader).unwrap();
    victim.kill();
    let out = producer.wait_with_output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let acked: Vec<u64> = std::fs::read_to_string(&acked_path).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert!(acked.len() > 100, "only {} acknowledged", acked.len());
    // Read the partition back from a surviving broker.
    let survivor = cluster.brokers.iter().find(|b| b.id as i32 != leader).unwrap().kafka_address.to_string();
    let out = kcat(&survivor, &["-C", "-t", "failover", "-o", "beginning", "-e", "-f", "%s\n"], None);
    let stored: Vec<u64> = String::from_utf8(out.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert!(stored.windows(2).all(|w| w[0] < w[1]), "stored numbers are unique and in order");
    let present: std::collections::HashSet<u64> = stored.iter().copied().collect();
    let lost: Vec<&u64> = acked.iter().filter(|n| !present.contains(n)).collect();
    assert!(lost.is_empty(), "{} acknowledged messages lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let new_leader = cluster.wait_led("failover").topics[0].partitions[0].leader_id.0;
    assert_ne!(new_leader, leader, "the leadership moved");
    eprintln!("{} acknowledged, {} stored, leader {leader} -> {new_leader}", acked.len(), stored.len());
}

#[test]
fn given_confluent_kafkas_admin_client_it_should_create_describe_and_delete_topics_and_see_groups() {
    let _serial = common::serial();
    let cluster = KafkaCluster::start(3, &["--kafka-group-initial-delay", "200ms"]);
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("broker/tests/kafka/admin.py")).arg(cluster.bootstrap());
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("deleted"), "{stdout}");
}

#[test]
fn given_confluent_kafka_a_compacted_topic_should_read_back_one_record_per_key_and_refuse_keyless_records() {
    let _serial = common::serial();
    let args = ["--fragment-bytes", "65536", "--max-batch-bytes", "65536", "--compaction-interval", "100ms"];
    let cluster = KafkaCluster::start(1, &args);
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("broker/tests/kafka/compaction.py")).arg(cluster.bootstrap());
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("done"), "{stdout}");
}

#[test]
fn given_confluent_kafka_delayed_records_should_stay_hidden_until_due_then_come_once() {
    let _serial = common::serial();
    let cluster = KafkaCluster::start(1, &[]);
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("broker/tests/kafka/delayed.py")).arg(cluster.bootstrap());
    let out = run(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("done"), "{stdout}");
}

/// The broker coordinating `group` (FindCoordinator).
fn coordinator_of(cluster: &KafkaCluster, group: &str) -> i32 {
    use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
    let mut conn = common::KafkaConn::connect(cluster.brokers[0].kafka_address).unwrap();
    let req = FindCoordinatorRequest::default().with_key(group.to_owned().into());
    let answer: FindCoordinatorResponse = conn.call(ApiKey::FindCoordinator, 3, &req).unwrap();
    assert_eq!(answer.error_code, 0, "{answer:?}");
    answer.node_id.0
}

#[test]
fn given_a_kafka_group_when_its_coordinator_is_killed_the_members_should_rejoin_and_resume_from_their_commits() {
    let _serial = common::serial();
    let mut cluster = KafkaCluster::start(3, &["--kafka-group-initial-delay", "500ms"]);
    create_topic(&cluster, "moving", 6, 3);
    let work = tempfile::tempdir().unwrap();
    let bootstrap = cluster.bootstrap();
    let produce = |bootstrap: &str, from: u32, to: u32| {
        let input: String = (from..to).map(|i| format!("m{i}\n")).collect();
        kcat(bootstrap, &["-P", "-t", "moving", "-X", "acks=all"], Some(input.as_bytes()));
    };
    produce(&bootstrap, 0, 300);
    let members: Vec<std::process::Child> = (0..2)
        .map(|i| {
            Command::new(python())
                .arg(repo().join("broker/tests/kafka/group_member.py"))
                .args([&bootstrap, "moving", "movers"])
                .arg(work.path().join(format!("member-{i}.txt")))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(work.path().join(format!("member-{i}.err"))).unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    let consumed = || -> std::collections::HashSet<String> {
        (0..2)
            .flat_map(|i| {
                std::fs::read_to_string(work.path().join(format!("member-{i}.txt")))
                    .unwrap_or_default()
                    .lines()
                    .map(|l| l.split(' ').nth(2).unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let wait_all = |n: u32| {
        goulette_sentinel::testkit::wait_for("every message consumed", std::time::Duration::from_secs(60), || {
            let seen = consumed();
            (0..n).all(|i| seen.contains(&format!("m{i}")))
        });
    };
    wait_all(300);
    let coordinator = coordinator_of(&cluster, "movers");
    cluster.brokers.iter_mut().find(|b| b.id as i32 == coordinator).unwrap().kill();
    let survivors: String = cluster
        .brokers
        .iter()
        .filter(|b| b.id as i32 != coordinator)
        .map(|b| b.kafka_address.to_string())
        .collect::<Vec<_>>()
        .join(",");
    produce(&survivors, 300, 600);
    wait_all(600);
    let moved_to = coordinator_of(&cluster, "movers");
    assert_ne!(moved_to, coordinator, "the coordinator moved");
    for m in &members {
        goulette_sentinel::testkit::signal(m, libc::SIGTERM);
    }
    for (i, m) in members.into_iter().enumerate() {
        let status = m.wait_with_output().unwrap().status;
        let stderr = std::fs::read_to_string(work.path().join(format!("member-{i}.err"))).unwrap_or_default();
        assert!(status.success(), "member {i} failed ({status}):\n{stderr}");
    }
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("broker/tests/kafka/committed_at_end.py")).args([&survivors, "moving", "movers"]);
    run(cmd);
}
