//! The cluster's gRPC over mutual TLS, with a CA and certificates generated
//! for the test: sentinel and brokers serve TLS only and require client
//! certificates, so registration, heartbeats, assignments and replication
//! between them run over mutual TLS; the CLI with the CA and a certificate
//! creates a replicated topic, produces and consumes; without the CA, or
//! without a certificate, or trusting another CA, it is refused and told
//! what to check.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess, http_get, wait_for};
use goulette_tls::testing::TestCa;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn given_a_cluster_on_mutual_tls_the_cli_should_work_with_the_ca_and_a_certificate_and_be_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cluster CA");
    let server = ca.issue(&["127.0.0.1", "localhost"]);
    let client = ca.issue(&["operator"]);
    let files = |name: &str, text: &str| write(dir.path(), name, text).to_str().unwrap().to_owned();
    let (ca_file, cert, key) =
        (files("ca.pem", ca.pem()), files("server.crt", &server.cert), files("server.key", &server.key));
    let (client_cert, client_key) = (files("client.crt", &client.cert), files("client.key", &client.key));
    let tls = ["--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca_file, "--tls-client-ca", &ca_file];

    let etcd = EtcdProcess::start();
    let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &tls);
    let sentinels = sentinel.address.to_string();
    let _brokers: Vec<BrokerProcess> = (1..=2).map(|id| BrokerProcess::start(id, &sentinels, &tls)).collect();
    let cli = |extra: &[&str], args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_goulette"))
            .args(["--sentinels", &sentinels])
            .args(extra)
            .args(args)
            .env_remove("GOULETTE_SENTINELS")
            .env("GOULETTE_CONFIG_DIR", dir.path())
            .output()
            .unwrap()
    };
    let trusted = ["--tls-ca", ca_file.as_str(), "--tls-cert", client_cert.as_str(), "--tls-key", client_key.as_str()];
    let ok = |args: &[&str]| {
        let out = cli(&trusted, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for("both brokers up over TLS", Duration::from_secs(60), || {
        cli(&trusted, &["cluster", "status"]).status.success()
    });

    ok(&["topic", "create", "sealed", "--partitions", "1", "--replication-factor", "2"]);
    let mut produce = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["--sentinels", &sentinels])
        .args(trusted)
        .args(["produce", "--topic", "sealed"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        produce.stdin.take().unwrap().write_all(b"one\ntwo\nthree\n").unwrap();
    }
    assert!(produce.wait().unwrap().success());
    assert_eq!(ok(&["consume", "--topic", "sealed", "-o", "beginning", "-e"]), "one\ntwo\nthree\n");
    // Replication ran over mutual TLS: the follower is back in the ISR.
    wait_for("both replicas in sync", Duration::from_secs(30), || {
        let json: serde_json::Value =
            serde_json::from_str(&ok(&["topic", "describe", "sealed", "--format", "json"])).unwrap();
        json["partition_details"][0]["isr"].as_array().is_some_and(|isr| isr.len() == 2)
    });

    // Plaintext, no certificate, another CA: refused, and told what to check.
    let out = cli(&[], &["topic", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--tls-ca"), "plaintext: {out:?}");
    let (_, metrics) = http_get(sentinel.http_address, "/metrics").unwrap();
    let failed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("goulette_sentinel_tls_handshake_failures_total ")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no handshake-failure counter in\n{metrics}"));
    assert!(failed >= 1.0, "the plaintext handshake was not counted");
    let out = cli(&["--tls-ca", &ca_file], &["topic", "list"]);
    assert!(!out.status.success(), "no client certificate: {}", String::from_utf8_lossy(&out.stdout));
    let other = write(dir.path(), "other.pem", TestCa::new("other").pem());
    let out = cli(
        &["--tls-ca", other.to_str().unwrap(), "--tls-cert", &client_cert, "--tls-key", &client_key],
        &["topic", "list"],
    );
    assert!(!out.status.success(), "another CA: {}", String::from_utf8_lossy(&out.stdout));

    // A profile keeps the TLS files: no flags needed.
    let out = cli(&trusted, &["profile", "create", "secure"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["topic", "list"])
        .env_remove("GOULETTE_SENTINELS")
        .env("GOULETTE_CONFIG_DIR", dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("sealed"), "{out:?}");
}

#[test]
fn given_an_etcd_that_requires_tls_and_client_certificates_the_sentinel_and_the_cli_should_reach_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("etcd CA");
    let server = ca.issue(&["127.0.0.1", "localhost"]);
    let client = ca.issue(&["goulette"]);
    let (ca_file, cert, key) = (
        write(dir.path(), "ca.pem", ca.pem()),
        write(dir.path(), "etcd.crt", &server.cert),
        write(dir.path(), "etcd.key", &server.key),
    );
    let (client_cert, client_key) =
        (write(dir.path(), "client.crt", &client.cert), write(dir.path(), "client.key", &client.key));
    let etcd = EtcdProcess::start_tls(&ca_file, &cert, &key);
    let endpoint = etcd.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let etcd_tls = [
        "--etcd-tls-ca",
        ca_file.to_str().unwrap(),
        "--etcd-tls-cert",
        client_cert.to_str().unwrap(),
        "--etcd-tls-key",
        client_key.to_str().unwrap(),
    ];
    let sentinel = SentinelProcess::start("s1", &endpoint, &etcd_tls);
    let sentinels = sentinel.address.to_string();
    let _broker = BrokerProcess::start(1, &sentinels, &[]);
    let cli = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_goulette")).args(args).env_remove("GOULETTE_SENTINELS").output().unwrap()
    };
    // The sentinel keeps its metadata in the TLS etcd: a topic can be created.
    wait_for("a topic created through the sentinel", Duration::from_secs(60), || {
        cli(&["--sentinels", &sentinels, "topic", "create", "guarded", "--partitions", "1"]).status.success()
    });
    // The CLI reads etcd directly over TLS with its certificate...
    let mut args = vec!["etcd", "--etcd-endpoints", &endpoint];
    args.extend(etcd_tls);
    args.push("topics");
    let out = cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("topic guarded:"), "{out:?}");
    // ...and is refused without it (etcd asks for a client certificate).
    let out = cli(&["etcd", "--etcd-endpoints", &endpoint, "--etcd-tls-ca", ca_file.to_str().unwrap(), "topics"]);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn given_embedded_etcd_tls_the_embedded_etcd_should_take_only_clients_with_a_certificate_of_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("cluster CA");
    let server = ca.issue(&["127.0.0.1", "localhost"]);
    let operator = ca.issue(&["operator"]);
    let stranger = TestCa::new("another CA").issue(&["stranger"]);
    let ca_file = write(dir.path(), "ca.pem", ca.pem());
    let (cert, key) = (write(dir.path(), "server.crt", &server.cert), write(dir.path(), "server.key", &server.key));
    let (op_cert, op_key) = (write(dir.path(), "op.crt", &operator.cert), write(dir.path(), "op.key", &operator.key));
    let (other_cert, other_key) =
        (write(dir.path(), "other.crt", &stranger.cert), write(dir.path(), "other.key", &stranger.key));
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let (client_port, peer_port) =
        (goulette_sentinel::testkit::free_port().to_string(), goulette_sentinel::testkit::free_port().to_string());
    let mut args: Vec<String> = ["--embedded-etcd", "--embedded-etcd-tls", "--etcd-port", &client_port]
        .into_iter()
        .chain(["--etcd-peer-port", &peer_port, "--etcd-data-dir"])
        .map(String::from)
        .collect();
    args.push(dir.path().join("etcd").to_str().unwrap().to_owned());
    args.extend(["--tls-cert", &path(&cert), "--tls-key", &path(&key), "--tls-ca", &path(&ca_file)].map(String::from));
    args.extend(["--tls-client-ca".to_owned(), path(&ca_file)]);
    let sentinel = SentinelProcess::start_with("s1", args);
    let sentinels = sentinel.address.to_string();
    let server_tls = ["--tls-cert", &path(&cert), "--tls-key", &path(&key), "--tls-ca", &path(&ca_file)];
    let _broker = BrokerProcess::start(1, &sentinels, &server_tls);
    let cli = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_goulette")).args(args).env_remove("GOULETTE_SENTINELS").output().unwrap()
    };
    // The sentinel keeps its metadata in its etcd over TLS.
    let operator_grpc = ["--tls-ca", &path(&ca_file), "--tls-cert", &path(&op_cert), "--tls-key", &path(&op_key)];
    wait_for("a topic created through the sentinel", Duration::from_secs(60), || {
        let mut a = vec!["--sentinels", sentinels.as_str()];
        a.extend(operator_grpc);
        a.extend(["topic", "create", "kept", "--partitions", "1"]);
        cli(&a).status.success()
    });
    let https = format!("https://127.0.0.1:{client_port}");
    let etcd = |endpoint: &str, tls: &[&str]| -> Output {
        let mut a = vec!["etcd", "--etcd-endpoints", endpoint];
        a.extend(tls);
        a.push("topics");
        cli(&a)
    };
    // An operator's certificate of the cluster's CA reads it...
    let out = etcd(
        &https,
        &["--etcd-tls-ca", &path(&ca_file), "--etcd-tls-cert", &path(&op_cert), "--etcd-tls-key", &path(&op_key)],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("topic kept:"), "{out:?}");
    // ...nothing else does: plaintext, no certificate, another CA's certificate.
    let http = format!("http://127.0.0.1:{client_port}");
    for (what, endpoint, tls) in [
        ("plaintext", http.as_str(), vec![]),
        ("no certificate", https.as_str(), vec!["--etcd-tls-ca", ca_file.to_str().unwrap()]),
        (
            "another CA's certificate",
            https.as_str(),
            vec![
                "--etcd-tls-ca",
                ca_file.to_str().unwrap(),
                "--etcd-tls-cert",
                other_cert.to_str().unwrap(),
                "--etcd-tls-key",
                other_key.to_str().unwrap(),
            ],
        ),
    ] {
        let out = etcd(endpoint, &tls);
        assert!(!out.status.success(), "{what} was let in: {}", String::from_utf8_lossy(&out.stdout));
    }
}
