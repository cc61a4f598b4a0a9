//! The Kafka listener over TLS, against kcat (librdkafka) with CAs and
//! certificates generated for each test: a message round-trips over SSL;
//! plaintext, an untrusted CA and an expired certificate are refused; a
//! certificate renewed on disk (signed by another CA) is used by new
//! connections within seconds while an open consumer connection keeps
//! receiving; a bad file keeps the last good certificate, counted in a
//! metric; expired certificates and certificates for another host are
//! refused by clients; with a client CA, only clients with a certificate
//! it signed get in (mutual TLS), and a rotated client CA takes effect
//! for new connections within seconds without cutting open ones.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess, http_get, wait_for};
use goulette_tls::testing::{Issued, TestCa};

/// A one-broker cluster whose Kafka listener serves TLS with the files in `dir`.
struct TlsCluster {
    _etcd: EtcdProcess,
    _sentinel: SentinelProcess,
    broker: BrokerProcess,
    dir: tempfile::TempDir,
}

impl TlsCluster {
    fn start(issued: &Issued, client_ca: Option<&TestCa>) -> TlsCluster {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("cert.pem"), &issued.cert);
        write(&dir.path().join("key.pem"), &issued.key);
        let etcd = EtcdProcess::start();
        let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &["--default-partitions", "1"]);
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        let mut args =
            vec!["--kafka-tls-cert".to_owned(), path("cert.pem"), "--kafka-tls-key".to_owned(), path("key.pem")];
        if let Some(ca) = client_ca {
            write(&dir.path().join("client-ca.pem"), ca.pem());
            args.extend(["--kafka-tls-client-ca".to_owned(), path("client-ca.pem")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let broker = BrokerProcess::start(1, &sentinel.address.to_string(), &args);
        TlsCluster { _etcd: etcd, _sentinel: sentinel, broker, dir }
    }

    fn bootstrap(&self) -> String {
        self.broker.kafka_address.to_string()
    }

    /// Writes a CA bundle file for clients; returns its path.
    fn ca_file(&self, name: &str, ca: &TestCa) -> PathBuf {
        let path = self.dir.path().join(name);
        write(&path, ca.pem());
        path
    }

    /// Writes `issued` as the listener's files, key first.
    fn serve(&self, issued: &Issued) {
        write(&self.dir.path().join("key.pem"), &issued.key);
        write(&self.dir.path().join("cert.pem"), &issued.cert);
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, page) = http_get(self.broker.http_address, "/metrics").unwrap();
        page.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// kcat over SSL trusting `ca` (extra `-X` settings in `ssl`), with a 10 s bound.
fn kcat(bootstrap: &str, ca: &Path, ssl: &[&str], args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "kcat", "-b", bootstrap, "-X", "security.protocol=ssl", "-X"]);
    cmd.arg(format!("ssl.ca.location={}", ca.display()));
    for setting in ssl {
        cmd.args(["-X", setting]);
    }
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// `kcat -L` over SSL succeeds.
fn lists(bootstrap: &str, ca: &Path, ssl: &[&str]) -> bool {
    kcat(bootstrap, ca, ssl, &["-L", "-m", "5"], b"").status.success()
}

#[test]
fn given_a_tls_kafka_listener_kcat_should_round_trip_and_bad_clients_should_be_refused() {
    let ca = TestCa::new("goulette test CA");
    let cluster = TlsCluster::start(&ca.issue(&["127.0.0.1", "localhost"]), None);
    let (bootstrap, trusted) = (cluster.bootstrap(), cluster.ca_file("ca.pem", &ca));
    wait_for("kcat -L over SSL", Duration::from_secs(30), || lists(&bootstrap, &trusted, &[]));

    let out = kcat(&bootstrap, &trusted, &[], &["-P", "-t", "secure", "-K:"], b"k:over tls\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = kcat(&bootstrap, &trusted, &[], &["-C", "-t", "secure", "-o", "beginning", "-e", "-f", "%k=%s\n"], b"");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "k=over tls\n", "{}", String::from_utf8_lossy(&out.stderr));

    // Plaintext: the handshake fails and the client hears nothing it can use.
    let plain = Command::new("timeout").args(["20", "kcat", "-b", &bootstrap, "-L", "-m", "3"]).output().unwrap();
    assert!(!plain.status.success(), "a plaintext client was served");
    // Another CA: the client refuses the broker's certificate.
    let stranger = cluster.ca_file("other-ca.pem", &TestCa::new("someone else"));
    let out = kcat(&bootstrap, &stranger, &[], &["-L", "-m", "3"], b"");
    assert!(!out.status.success(), "an untrusted certificate was accepted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("certificate verify failed"), "{out:?}");
    assert!(cluster.metric("goulette_broker_tls_handshake_failures_total{listener=\"kafka\"}") >= 2.0);
}

#[test]
fn given_renewed_certificate_files_new_connections_should_use_them_without_cutting_open_ones() {
    let first_ca = TestCa::new("first CA");
    let cluster = TlsCluster::start(&first_ca.issue(&["127.0.0.1"]), None);
    let bootstrap = cluster.bootstrap();
    let (first, both) = (cluster.ca_file("first.pem", &first_ca), cluster.dir.path().join("both.pem"));
    wait_for("kcat -L over SSL", Duration::from_secs(30), || lists(&bootstrap, &first, &[]));
    let out = kcat(&bootstrap, &first, &[], &["-P", "-t", "renewed"], b"before\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A consumer connected before the renewal, trusting only the first CA.
    let ssl = [format!("ssl.ca.location={}", first.display())];
    let (mut consumer, lines) = follow(&consumer_args(&bootstrap, &ssl, "renewed"));
    assert_eq!(lines.recv_timeout(Duration::from_secs(20)).unwrap(), "before");

    // Renewal by another CA, written file by file (the key lags the
    // certificate: a moment where the pair does not match).
    let second_ca = TestCa::new("second CA");
    let renewed = second_ca.issue(&["127.0.0.1"]);
    let second = cluster.ca_file("second.pem", &second_ca);
    write(&both, &format!("{}{}", first_ca.pem(), second_ca.pem()));
    let renewed_at = Instant::now();
    write(&cluster.dir.path().join("cert.pem"), &renewed.cert);
    std::thread::sleep(Duration::from_millis(1500));
    write(&cluster.dir.path().join("key.pem"), &renewed.key);
    wait_for("the renewed certificate served", Duration::from_secs(10), || lists(&bootstrap, &second, &[]));
    assert!(renewed_at.elapsed() < Duration::from_secs(8), "took {:?}", renewed_at.elapsed());
    assert!(!lists(&bootstrap, &first, &[]), "the old certificate is still served");

    // The open connection was not cut: a message sent now reaches it.
    let out = kcat(&bootstrap, &both, &[], &["-P", "-t", "renewed"], b"after\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines.recv_timeout(Duration::from_secs(20)).unwrap(), "after");
    stop(&mut consumer);

    // A bad file keeps the last good certificate, and is counted.
    let failures = cluster.metric("goulette_broker_tls_reload_failures_total");
    write(&cluster.dir.path().join("cert.pem"), "-----BEGIN CERTIFICATE-----\nnot base64\n");
    wait_for("the bad file counted", Duration::from_secs(10), || {
        cluster.metric("goulette_broker_tls_reload_failures_total") > failures
    });
    assert!(lists(&bootstrap, &second, &[]), "the last good certificate is no longer served");
    assert!(cluster.broker.log().contains("cannot be loaded; the last good ones stay in use"));

    // An expired certificate (of the trusted CA, so expiry is what fails
    // it) is refused by clients; so is one for another host, as clients
    // check the name they connected to.
    cluster.serve(&second_ca.issue_expired(&["127.0.0.1"]));
    refused_within(&bootstrap, &second, Duration::from_secs(10), "the expired certificate");
    cluster.serve(&second_ca.issue(&["elsewhere.example"]));
    refused_within(&bootstrap, &second, Duration::from_secs(10), "a certificate for another host");
}

/// Waits until kcat, trusting `ca`, refuses the broker's certificate.
fn refused_within(bootstrap: &str, ca: &Path, bound: Duration, what: &str) {
    let deadline = Instant::now() + bound;
    loop {
        let out = kcat(bootstrap, ca, &[], &["-L", "-m", "3"], b"");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() && stderr.contains("certificate verify failed") {
            return;
        }
        assert!(Instant::now() < deadline, "{what} was accepted: {stderr}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Starts kcat with `args`, its output lines sent to the receiver.
fn follow(args: &[String]) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new("kcat").args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, lines)
}

#[test]
fn given_a_client_ca_only_clients_with_a_certificate_it_signed_should_get_in() {
    let ca = TestCa::new("server CA");
    let clients = TestCa::new("client CA");
    let cluster = TlsCluster::start(&ca.issue(&["127.0.0.1"]), Some(&clients));
    let (bootstrap, trusted) = (cluster.bootstrap(), cluster.ca_file("ca.pem", &ca));
    let identity = |name: &str, issued: &Issued| {
        let (cert, key) =
            (cluster.dir.path().join(format!("{name}.crt")), cluster.dir.path().join(format!("{name}.key")));
        write(&cert, &issued.cert);
        write(&key, &issued.key);
        [format!("ssl.certificate.location={}", cert.display()), format!("ssl.key.location={}", key.display())]
    };
    let alice = identity("alice", &clients.issue(&["alice"]));
    let alice: Vec<&str> = alice.iter().map(String::as_str).collect();
    wait_for("kcat -L with a client certificate", Duration::from_secs(30), || lists(&bootstrap, &trusted, &alice));
    assert!(!lists(&bootstrap, &trusted, &[]), "a client without a certificate got in");
    let mallory = identity("mallory", &TestCa::new("elsewhere").issue(&["mallory"]));
    let mallory: Vec<&str> = mallory.iter().map(String::as_str).collect();
    assert!(!lists(&bootstrap, &trusted, &mallory), "a certificate of another CA got in");

    // The client CA rotates while a consumer with alice's certificate is
    // connected: new connections need the new CA's certificates within
    // seconds; the open one keeps receiving; nothing is lost.
    let out = kcat(&bootstrap, &trusted, &alice, &["-P", "-t", "rotating"], b"before\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut ssl = vec![format!("ssl.ca.location={}", trusted.display())];
    ssl.extend(alice.iter().map(|s| s.to_string()));
    let (mut consumer, lines) = follow(&consumer_args(&bootstrap, &ssl, "rotating"));
    assert_eq!(lines.recv_timeout(Duration::from_secs(20)).unwrap(), "before");
    let next_clients = TestCa::new("client CA 2");
    let carol = identity("carol", &next_clients.issue(&["carol"]));
    let carol: Vec<&str> = carol.iter().map(String::as_str).collect();
    let rotated_at = Instant::now();
    write(&cluster.dir.path().join("client-ca.pem"), next_clients.pem());
    wait_for("a certificate of the new client CA let in", Duration::from_secs(10), || {
        lists(&bootstrap, &trusted, &carol)
    });
    assert!(rotated_at.elapsed() < Duration::from_secs(8), "took {:?}", rotated_at.elapsed());
    assert!(!lists(&bootstrap, &trusted, &alice), "a certificate of the old client CA still gets in");
    let out = kcat(&bootstrap, &trusted, &carol, &["-P", "-t", "rotating"], b"after\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines.recv_timeout(Duration::from_secs(20)).unwrap(), "after", "the open consumer was cut");
    stop(&mut consumer);
}

/// kcat's arguments to consume `topic` from the beginning over SSL with
/// `ssl` settings, unbuffered.
fn consumer_args(bootstrap: &str, ssl: &[String], topic: &str) -> Vec<String> {
    let mut args = vec!["-b".to_owned(), bootstrap.to_owned(), "-X".to_owned(), "security.protocol=ssl".to_owned()];
    for setting in ssl {
        args.extend(["-X".to_owned(), setting.clone()]);
    }
    args.extend(["-C", "-t", topic, "-o", "beginning", "-u"].map(String::from));
    args
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
