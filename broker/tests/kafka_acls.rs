//! ACLs on the Kafka listener (`--acl-enabled`), against kcat and raw
//! Kafka requests as logged-in users: with no binding a user is refused
//! (TOPIC/GROUP/CLUSTER_AUTHORIZATION_FAILED) and does not even see the
//! topic; each binding added with `goulette acl add` takes effect at once
//! on the broker; literal and prefixed names, allow and deny (deny wins),
//! topics, groups and the cluster; super users pass; Kafka's
//! CreateAcls/DescribeAcls/DeleteAcls need ALTER/DESCRIBE on the cluster.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::KafkaConn;
use goulette_auth::{Mechanism, ScramClient};
use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess, bin_dir, http_get, wait_for};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, CreateTopicsRequest, CreateTopicsResponse, DescribeAclsRequest,
    DescribeAclsResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};

/// A connection logged in as `user` with SCRAM-SHA-512.
fn logged_in(address: SocketAddr, user: &str, password: &str) -> KafkaConn {
    let mut conn = KafkaConn::connect(address).unwrap();
    let handshake: SaslHandshakeResponse = conn
        .call(ApiKey::SaslHandshake, 1, &SaslHandshakeRequest::default().with_mechanism("SCRAM-SHA-512".into()))
        .unwrap();
    assert_eq!(handshake.error_code, 0);
    let mut scram = ScramClient::new(Mechanism::ScramSha512, user, password);
    let step = |conn: &mut KafkaConn, bytes: Vec<u8>| -> SaslAuthenticateResponse {
        conn.call(ApiKey::SaslAuthenticate, 2, &SaslAuthenticateRequest::default().with_auth_bytes(bytes.into()))
            .unwrap()
    };
    let first = step(&mut conn, scram.first());
    assert_eq!(first.error_code, 0, "{user} refused");
    let last = scram.respond(&first.auth_bytes).unwrap();
    let done = step(&mut conn, last);
    assert_eq!(done.error_code, 0, "{user} refused");
    conn
}

struct Cluster {
    _etcd: EtcdProcess,
    sentinel: SentinelProcess,
    broker: BrokerProcess,
}

impl Cluster {
    fn goulette(&self, args: &[&str], password: Option<&str>) -> Output {
        let mut cmd = Command::new(bin_dir().join("goulette"));
        cmd.args(args).args(["--sentinels", &self.sentinel.address.to_string()]);
        if let Some(p) = password {
            cmd.env("GOULETTE_USER_PASSWORD", p);
        }
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "goulette {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// kcat as `user` (SASL_PLAINTEXT, SCRAM-SHA-512), bounded to 20 s.
    fn kcat(&self, user: &str, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut cmd = Command::new("timeout");
        cmd.args(["20", "kcat", "-b", &self.broker.kafka_address.to_string()]);
        cmd.args(["-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=SCRAM-SHA-512"]);
        cmd.arg("-X").arg(format!("sasl.username={user}")).arg("-X").arg(format!("sasl.password={user}-pw"));
        let mut child =
            cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn given_acls_each_kafka_operation_should_be_allowed_only_by_a_binding_and_denied_by_a_deny() {
    let _serial = common::serial();
    let etcd = EtcdProcess::start();
    let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &["--default-partitions", "1"]);
    let args = ["--kafka-sasl-mechanisms", "SCRAM-SHA-512", "--acl-enabled", "true", "--super-users", "User:admin"];
    let broker = BrokerProcess::start(1, &sentinel.address.to_string(), &args);
    let c = Cluster { _etcd: etcd, sentinel, broker };
    wait_for("the broker registered", Duration::from_secs(30), || {
        let out = Command::new(bin_dir().join("goulette"))
            .args(["cluster", "status", "--format", "json", "--sentinels", &c.sentinel.address.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("\"state\": \"up\"")
    });
    for user in ["admin", "alice"] {
        c.goulette(&["user", "create", user], Some(&format!("{user}-pw")));
    }
    c.goulette(&["topic", "create", "orders", "--partitions", "1"], None);
    c.goulette(&["topic", "create", "secret", "--partitions", "1"], None);
    let acl = |args: &[&str]| {
        let mut all = vec!["acl"];
        all.extend_from_slice(args);
        c.goulette(&all, None)
    };

    // No binding: alice can neither write nor see the topic; admin (a super user) can.
    let out = c.kcat("alice", &["-P", "-t", "orders"], b"refused\n");
    assert!(text(&out).contains("Topic authorization failed"), "{}", text(&out));
    let out = c.kcat("admin", &["-P", "-t", "orders"], b"by admin\n");
    assert!(out.status.success(), "{}", text(&out));
    let listed = text(&c.kcat("alice", &["-L"], b""));
    assert!(!listed.contains("\"secret\"") && !listed.contains("\"orders\""), "{listed}");

    // WRITE on the literal topic: alice produces; she sees it, not the other.
    acl(&["add", "--principal", "User:alice", "--operation", "write", "--topic", "orders"]);
    let out = c.kcat("alice", &["-P", "-t", "orders"], b"by alice\n");
    assert!(out.status.success(), "{}", text(&out));
    let listed = text(&c.kcat("alice", &["-L"], b""));
    assert!(listed.contains("\"orders\"") && !listed.contains("\"secret\""), "{listed}");

    // Reading needs READ: refused, then allowed by a prefixed binding.
    let consume = ["-C", "-t", "orders", "-o", "beginning", "-e"];
    let out = c.kcat("alice", &consume, b"");
    assert!(text(&out).contains("Topic authorization failed"), "{}", text(&out));
    acl(&["add", "--principal", "User:alice", "--operation", "read", "--topic", "ord", "--prefixed"]);
    let out = c.kcat("alice", &consume, b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "by admin\nby alice\n", "{}", text(&out));

    // A DENY for every user wins over alice's ALLOW.
    acl(&["add", "--principal", "User:*", "--operation", "read", "--topic", "orders", "--deny"]);
    let out = c.kcat("alice", &consume, b"");
    assert!(text(&out).contains("Topic authorization failed"), "{}", text(&out));
    acl(&["remove", "--principal", "User:*", "--operation", "read", "--topic", "orders", "--deny"]);

    // Groups: consuming in a group needs READ on the group.
    let in_group = ["-G", "readers", "-o", "beginning", "-e", "orders"];
    let out = c.kcat("alice", &in_group, b"");
    assert!(text(&out).contains("Group authorization failed"), "{}", text(&out));
    acl(&["add", "--principal", "User:alice", "--operation", "read", "--group", "readers"]);
    let out = c.kcat("alice", &in_group, b"");
    assert!(String::from_utf8_lossy(&out.stdout).contains("by alice"), "{}", text(&out));

    // The cluster: creating topics and managing ACLs.
    let address = c.broker.kafka_address;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_static_str(
                    "mine",
                )))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(10_000);
    let answer: CreateTopicsResponse =
        logged_in(address, "alice", "alice-pw").call(ApiKey::CreateTopics, 5, &create).unwrap();
    assert_eq!(answer.topics[0].error_code, 29, "TOPIC_AUTHORIZATION_FAILED");
    let describe = DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1)
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None);
    let answer: DescribeAclsResponse =
        logged_in(address, "alice", "alice-pw").call(ApiKey::DescribeAcls, 2, &describe).unwrap();
    assert_eq!(answer.error_code, 31, "CLUSTER_AUTHORIZATION_FAILED");
    // admin grants alice CREATE on the cluster through Kafka's CreateAcls.
    let grant = CreateAclsRequest::default().with_creations(vec![
        AclCreation::default()
            .with_resource_type(4)
            .with_resource_name("kafka-cluster".into())
            .with_resource_pattern_type(3)
            .with_principal("User:alice".into())
            .with_host("*".into())
            .with_operation(5)
            .with_permission_type(3),
    ]);
    let answer: CreateAclsResponse =
        logged_in(address, "admin", "admin-pw").call(ApiKey::CreateAcls, 2, &grant).unwrap();
    assert_eq!(answer.results[0].error_code, 0, "{:?}", answer.results[0].error_message);
    let answer: CreateTopicsResponse =
        logged_in(address, "alice", "alice-pw").call(ApiKey::CreateTopics, 5, &create).unwrap();
    assert_eq!(answer.topics[0].error_code, 0, "{:?}", answer.topics[0].error_message);
    let answer: DescribeAclsResponse =
        logged_in(address, "admin", "admin-pw").call(ApiKey::DescribeAcls, 2, &describe).unwrap();
    let bindings: usize = answer.resources.iter().map(|r| r.acls.len()).sum();
    assert_eq!(bindings, 4, "{answer:?}");

    // `goulette acl list` shows them; refusals were counted and audited.
    let listed =
        String::from_utf8_lossy(&c.goulette(&["acl", "list", "--principal", "User:alice"], None).stdout).into_owned();
    assert!(listed.contains("User:alice allow read on topic prefixed ord from *"), "{listed}");
    let (_, metrics) = http_get(c.broker.http_address, "/metrics").unwrap();
    let denials: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("goulette_broker_acl_denials_total ")?.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(denials >= 5.0, "{denials}");
    assert!(c.broker.log().contains("request-denied"), "no audit line");
}

/// With `--tls-principal-rules`, a Kafka client's certificate (mutual
/// TLS, no SASL) names the user the ACLs check: alice's certificate may
/// write where alice may, bob's may not.
#[test]
fn given_principal_rules_a_client_certificate_should_name_the_user_the_acls_check() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let ca = goulette_tls::testing::TestCa::new("test CA");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let server = ca.issue(&["127.0.0.1"]);
    let (cert, key, ca_file) = (file("s.crt", &server.cert), file("s.key", &server.key), file("ca.pem", ca.pem()));
    let etcd = EtcdProcess::start();
    let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &["--default-partitions", "1"]);
    let args = [
        "--kafka-tls-cert",
        &cert,
        "--kafka-tls-key",
        &key,
        "--kafka-tls-client-ca",
        &ca_file,
        "--acl-enabled",
        "true",
        "--tls-principal-rules",
        "san-dns",
    ];
    let broker = BrokerProcess::start(1, &sentinel.address.to_string(), &args);
    let goulette = |args: &[&str]| {
        let out = Command::new(bin_dir().join("goulette"))
            .args(args)
            .args(["--sentinels", &sentinel.address.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "goulette {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    wait_for("the broker registered", Duration::from_secs(30), || {
        Command::new(bin_dir().join("goulette"))
            .args(["topic", "create", "certs", "--partitions", "1", "--sentinels", &sentinel.address.to_string()])
            .output()
            .unwrap()
            .status
            .success()
    });
    goulette(&["acl", "add", "--principal", "User:alice", "--operation", "write,read", "--topic", "certs"]);
    let kcat = |who: &str, args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let issued = ca.issue(&[who]);
        let (c, k) = (file(&format!("{who}.crt"), &issued.cert), file(&format!("{who}.key"), &issued.key));
        let mut child = Command::new("timeout")
            .args(["20", "kcat", "-b", &broker.kafka_address.to_string(), "-X", "security.protocol=ssl"])
            .arg("-X")
            .arg(format!("ssl.ca.location={ca_file}"))
            .arg("-X")
            .arg(format!("ssl.certificate.location={c}"))
            .arg("-X")
            .arg(format!("ssl.key.location={k}"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = kcat("alice", &["-P", "-t", "certs"], b"by alice's certificate\n");
    assert!(out.status.success(), "{}", text(&out));
    let out = kcat("bob", &["-P", "-t", "certs"], b"by bob\n");
    assert!(text(&out).contains("Topic authorization failed"), "{}", text(&out));
    let out = kcat("alice", &["-C", "-t", "certs", "-o", "beginning", "-e"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "by alice's certificate\n", "{}", text(&out));
}
