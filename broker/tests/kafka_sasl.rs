//! SASL on the Kafka listener, against real clients: users created with
//! `goulette user create` (or Kafka's AlterUserScramCredentials) log in at
//! once on every broker with kcat and confluent-kafka over SASL_SSL; wrong
//! passwords and unknown users are refused alike, counted and audited;
//! deleted users are refused at once; repeated failures from one address
//! are slowed, then refused unread; nothing but the login is served before
//! it; PLAIN without TLS is refused at start.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::KafkaConn;
use goulette_auth::{Mechanism, ScramClient};
use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess, bin_dir, http_get, wait_for};
use goulette_tls::testing::TestCa;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};

struct SaslCluster {
    _etcd: EtcdProcess,
    sentinel: SentinelProcess,
    brokers: Vec<BrokerProcess>,
    dir: tempfile::TempDir,
}

impl SaslCluster {
    /// `brokers` brokers whose Kafka listener requires SASL (`mechanisms`),
    /// over TLS when `tls`.
    fn start(brokers: u32, mechanisms: &str, tls: bool, extra: &[&str]) -> SaslCluster {
        let dir = tempfile::tempdir().unwrap();
        let etcd = EtcdProcess::start();
        let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &["--default-partitions", "1"]);
        let mut args: Vec<String> = vec!["--kafka-sasl-mechanisms".into(), mechanisms.into()];
        if tls {
            let ca = TestCa::new("sasl test CA");
            let issued = ca.issue(&["127.0.0.1", "localhost"]);
            std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
            std::fs::write(dir.path().join("cert.pem"), &issued.cert).unwrap();
            std::fs::write(dir.path().join("key.pem"), &issued.key).unwrap();
            let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
            args.extend(["--kafka-tls-cert".into(), path("cert.pem"), "--kafka-tls-key".into(), path("key.pem")]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sentinels = sentinel.address.to_string();
        let brokers = (1..=brokers).map(|id| BrokerProcess::start(id, &sentinels, &args)).collect();
        let cluster = SaslCluster { _etcd: etcd, sentinel, brokers, dir };
        let want = cluster.brokers.len();
        wait_for("every broker registered", Duration::from_secs(30), || {
            let out = cluster.goulette(&["cluster", "status", "--format", "json"], None);
            String::from_utf8_lossy(&out.stdout).matches("\"state\": \"up\"").count() >= want
        });
        cluster
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn goulette(&self, args: &[&str], password: Option<&str>) -> Output {
        let mut cmd = Command::new(bin_dir().join("goulette"));
        cmd.args(args).args(["--sentinels", &self.sentinel.address.to_string()]);
        if let Some(p) = password {
            cmd.env("GOULETTE_USER_PASSWORD", p);
        }
        cmd.stdin(Stdio::null()).output().unwrap()
    }

    fn create_user(&self, name: &str, password: &str) {
        let out = self.goulette(&["user", "create", name], Some(password));
        assert!(out.status.success(), "user create: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn metric(&self, broker: usize, name: &str) -> f64 {
        let (_, page) = http_get(self.brokers[broker].http_address, "/metrics").unwrap();
        page.lines().filter_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok())).sum()
    }
}

/// kcat over SASL_SSL (SCRAM-SHA-512 unless `mechanism` says otherwise).
fn kcat(
    bootstrap: &str,
    ca: &Path,
    mechanism: &str,
    user: &str,
    password: &str,
    args: &[&str],
    stdin: &[u8],
) -> Output {
    use std::io::Write;
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "kcat", "-b", bootstrap, "-X", "security.protocol=sasl_ssl"]);
    cmd.arg("-X").arg(format!("ssl.ca.location={}", ca.display()));
    cmd.arg("-X").arg(format!("sasl.mechanisms={mechanism}"));
    cmd.arg("-X").arg(format!("sasl.username={user}"));
    cmd.arg("-X").arg(format!("sasl.password={password}"));
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn given_scram_users_kcat_and_confluent_kafka_should_log_in_at_once_on_every_broker_over_sasl_ssl() {
    let _serial = common::serial();
    let cluster = SaslCluster::start(2, "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN", true, &["--audit-log", "audit.log"]);
    let ca = cluster.ca();
    let (b1, b2) = (cluster.brokers[0].kafka_address.to_string(), cluster.brokers[1].kafka_address.to_string());

    // Created, then used at once on each broker: no retry, no wait.
    cluster.create_user("alice", "alice-secret");
    for broker in [&b1, &b2] {
        let out = kcat(broker, &ca, "SCRAM-SHA-512", "alice", "alice-secret", &["-L", "-m", "10"], b"");
        assert!(out.status.success(), "alice on {broker}: {}\n{}", stderr(&out), cluster.brokers[0].log());
    }
    let listed = cluster.goulette(&["user", "list"], None);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("alice  SCRAM-SHA-256 (8192 iterations), SCRAM-SHA-512 (8192 iterations)"), "{listed}");

    // A round trip with SCRAM-SHA-512, and a login with SCRAM-SHA-256 and PLAIN (over TLS).
    let bootstrap = format!("{b1},{b2}");
    let out = kcat(&bootstrap, &ca, "SCRAM-SHA-512", "alice", "alice-secret", &["-P", "-t", "sasl", "-K:"], b"k:v1\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let consume = ["-C", "-t", "sasl", "-o", "beginning", "-e", "-f", "%k=%s\n"];
    let out = kcat(&bootstrap, &ca, "SCRAM-SHA-512", "alice", "alice-secret", &consume, b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "k=v1\n", "{}", stderr(&out));
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let out = kcat(&b2, &ca, mechanism, "alice", "alice-secret", &["-L", "-m", "10"], b"");
        assert!(out.status.success(), "{mechanism}: {}", stderr(&out));
    }

    // Wrong password and unknown user: refused, with the same message.
    let wrong = kcat(&b1, &ca, "SCRAM-SHA-512", "alice", "guess", &["-L", "-m", "5"], b"");
    let unknown = kcat(&b1, &ca, "SCRAM-SHA-512", "mallory", "guess", &["-L", "-m", "5"], b"");
    assert!(!wrong.status.success() && !unknown.status.success());
    let reason = |out: &Output| {
        stderr(out)
            .lines()
            .find(|l| l.contains("Authentication failed"))
            // Without librdkafka's own timing ("(after 516ms in state …").
            .map(|l| l.split("Authentication failed").nth(1).unwrap().split(" (after").next().unwrap().to_owned())
    };
    assert!(reason(&wrong).is_some(), "{}", stderr(&wrong));
    assert_eq!(reason(&wrong), reason(&unknown));
    assert!(
        cluster.metric(0, "goulette_broker_auth_failures_total{listener=\"kafka\",reason=\"invalid-credentials\"}")
            >= 2.0
    );
    let log = cluster.brokers[0].log();
    assert!(log.contains("authentication-failed") && log.contains("User:mallory"), "no audit line in the log");
    // The audit log of its own: JSON lines with the principal and address.
    let audit = std::fs::read_to_string(cluster.brokers[0].dir().join("audit.log")).unwrap();
    let line = audit.lines().find(|l| l.contains("User:mallory")).unwrap_or_else(|| panic!("{audit}"));
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(event["fields"]["event"], "authentication-failed", "{line}");
    assert!(event["fields"]["address"].as_str().is_some_and(|a| a.contains("127.0.0.1")), "{line}");

    // confluent-kafka: AdminClient creates bob; bob produces and consumes at once.
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps` first", python.display());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/sasl_client.py");
    let out = Command::new("timeout")
        .arg("120")
        .arg(&python)
        .arg(&script)
        .args([&bootstrap, ca.to_str().unwrap(), "alice", "alice-secret", "bob", "bob-secret", "sasl-py"])
        .output()
        .unwrap();
    assert!(out.status.success(), "sasl_client.py: {}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let out = kcat(&b2, &ca, "SCRAM-SHA-512", "bob", "bob-secret", &["-L", "-m", "10"], b"");
    assert!(out.status.success(), "bob: {}", stderr(&out));
    // The broker that took the change audited it, with alice as its author.
    let audits: String =
        cluster.brokers.iter().map(|b| std::fs::read_to_string(b.dir().join("audit.log")).unwrap()).collect();
    let change = audits
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["fields"]["event"] == "alter-user-credentials")
        .unwrap_or_else(|| panic!("no audit line of bob's creation: {audits}"));
    let fields = &change["fields"];
    assert_eq!(
        (&fields["what"], &fields["principal"], &fields["outcome"]),
        (&"bob".into(), &"User:alice".into(), &"done".into())
    );

    // A new password works at once, the old one no longer; a deleted user is refused at once.
    let out = cluster.goulette(&["user", "passwd", "alice"], Some("alice-new"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(kcat(&b2, &ca, "SCRAM-SHA-512", "alice", "alice-new", &["-L", "-m", "10"], b"").status.success());
    assert!(!kcat(&b2, &ca, "SCRAM-SHA-512", "alice", "alice-secret", &["-L", "-m", "5"], b"").status.success());
    let out = cluster.goulette(&["user", "delete", "bob"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    for broker in [&b1, &b2] {
        assert!(!kcat(broker, &ca, "SCRAM-SHA-512", "bob", "bob-secret", &["-L", "-m", "5"], b"").status.success());
    }
    let out = cluster.goulette(&["user", "create", "alice"], Some("again"));
    assert!(!out.status.success() && stderr(&out).contains("already exists"), "{}", stderr(&out));
}

/// One SCRAM-SHA-512 login on a fresh connection: the SaslAuthenticate
/// error code and message (0 on success), and how long the answer took.
fn scram_login(address: SocketAddr, user: &str, password: &str) -> (i16, String, Duration) {
    let mut conn = KafkaConn::connect(address).unwrap();
    let handshake: SaslHandshakeResponse = conn
        .call(ApiKey::SaslHandshake, 1, &SaslHandshakeRequest::default().with_mechanism("SCRAM-SHA-512".into()))
        .unwrap();
    assert_eq!(handshake.error_code, 0);
    let mut client = ScramClient::new(Mechanism::ScramSha512, user, password);
    let started = Instant::now();
    let first: SaslAuthenticateResponse = conn
        .call(ApiKey::SaslAuthenticate, 2, &SaslAuthenticateRequest::default().with_auth_bytes(client.first().into()))
        .unwrap();
    if first.error_code != 0 {
        return (first.error_code, first.error_message.map(|m| m.to_string()).unwrap_or_default(), started.elapsed());
    }
    let last = client.respond(&first.auth_bytes).unwrap();
    let started = Instant::now();
    let done: SaslAuthenticateResponse = conn
        .call(ApiKey::SaslAuthenticate, 2, &SaslAuthenticateRequest::default().with_auth_bytes(last.into()))
        .unwrap();
    let elapsed = started.elapsed();
    if done.error_code == 0 {
        client.verify(&done.auth_bytes).unwrap();
        // Logged in: other requests are served now.
        let _: MetadataResponse = conn.call(ApiKey::Metadata, 9, &MetadataRequest::default()).unwrap();
    } else {
        assert!(conn.closed(), "the connection stayed open after a failed login");
    }
    (done.error_code, done.error_message.map(|m| m.to_string()).unwrap_or_default(), elapsed)
}

#[test]
fn given_repeated_failed_logins_from_one_address_they_should_be_slowed_then_refused_unread() {
    let _serial = common::serial();
    let delay = Duration::from_millis(400);
    let cluster = SaslCluster::start(
        1,
        "SCRAM-SHA-512",
        false,
        &["--auth-failure-delay", "400ms", "--auth-failures-per-minute", "4"],
    );
    let address = cluster.brokers[0].kafka_address;
    cluster.create_user("carol", "right");

    // Before a login, nothing but ApiVersions and the SASL requests is served.
    let mut conn = KafkaConn::connect(address).unwrap();
    assert!(conn.call::<_, MetadataResponse>(ApiKey::Metadata, 9, &MetadataRequest::default()).is_err());

    let (code, _, _) = scram_login(address, "carol", "right");
    assert_eq!(code, 0, "the right password is refused");
    let (wrong_code, wrong_message, took) = scram_login(address, "carol", "wrong");
    assert_eq!(wrong_code, 58, "SASL_AUTHENTICATION_FAILED");
    assert!(took >= delay, "a failure was answered after {took:?}");
    let (unknown_code, unknown_message, took) = scram_login(address, "nobody", "wrong");
    assert_eq!((unknown_code, &unknown_message), (wrong_code, &wrong_message), "an unknown user is told apart");
    assert!(took >= delay);
    for _ in 0..2 {
        assert_eq!(scram_login(address, "carol", "wrong").0, 58);
    }
    // Four failures within the minute: even the right password is refused now, after the delay.
    let (code, message, took) = scram_login(address, "carol", "right");
    assert_eq!((code, &message), (58, &wrong_message), "a throttled login is told apart or let in");
    assert!(took >= delay);
    assert!(cluster.metric(0, "goulette_broker_auth_failures_total{listener=\"kafka\",reason=\"throttled\"}") >= 1.0);
    assert!(
        cluster.metric(0, "goulette_broker_auth_failures_total{listener=\"kafka\",reason=\"invalid-credentials\"}")
            >= 4.0
    );
}

/// The salt a broker gives `user` in its first SCRAM-SHA-512 answer.
fn scram_salt(address: SocketAddr, user: &str) -> String {
    let mut conn = KafkaConn::connect(address).unwrap();
    let handshake: SaslHandshakeResponse = conn
        .call(ApiKey::SaslHandshake, 1, &SaslHandshakeRequest::default().with_mechanism("SCRAM-SHA-512".into()))
        .unwrap();
    assert_eq!(handshake.error_code, 0);
    let client = ScramClient::new(Mechanism::ScramSha512, user, "any");
    let first: SaslAuthenticateResponse = conn
        .call(ApiKey::SaslAuthenticate, 2, &SaslAuthenticateRequest::default().with_auth_bytes(client.first().into()))
        .unwrap();
    assert_eq!(first.error_code, 0, "the first step is answered for anyone");
    let text = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    text.split(',').find_map(|f| f.strip_prefix("s=")).unwrap().to_owned()
}

#[test]
fn given_an_unknown_user_every_broker_should_give_the_same_salt_across_restarts_like_a_real_user() {
    let _serial = common::serial();
    let mut cluster = SaslCluster::start(2, "SCRAM-SHA-512", false, &["--auth-failure-delay", "10ms"]);
    cluster.create_user("dave", "pw");
    let salts = |c: &SaslCluster, user: &str| -> Vec<String> {
        c.brokers.iter().map(|b| scram_salt(b.kafka_address, user)).collect()
    };
    // A real user's salt is the same everywhere: so must a stranger's be,
    // or asking two brokers would tell them apart.
    let real = salts(&cluster, "dave");
    assert_eq!(real[0], real[1]);
    // The cluster's decoy secret reaches brokers on the security stream
    // (the leader makes it with the first token key).
    wait_for("one salt for a stranger on both brokers", Duration::from_secs(20), || {
        let stranger = salts(&cluster, "nobody");
        stranger[0] == stranger[1]
    });
    let stranger = salts(&cluster, "nobody")[0].clone();
    assert_ne!(stranger, salts(&cluster, "nobody-else")[0], "one salt for every unknown user");
    // A restarted broker gives the same salts (the secret is in etcd).
    cluster.brokers[0].restart();
    wait_for("the restarted broker answers a stranger with the same salt", Duration::from_secs(30), || {
        KafkaConn::connect(cluster.brokers[0].kafka_address).is_ok()
            && scram_salt(cluster.brokers[0].kafka_address, "nobody") == stranger
    });
    assert_eq!(salts(&cluster, "dave"), real);
}

#[test]
fn given_plain_without_tls_the_broker_should_refuse_to_start() {
    let out = Command::new(bin_dir().join("goulette-broker"))
        .args(["--id", "1", "--kafka-address", "127.0.0.1:0", "--kafka-sasl-mechanisms", "PLAIN", "--data"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("PLAIN sends passwords in clear: it needs --kafka-tls-cert"), "{}", stderr(&out));
}
