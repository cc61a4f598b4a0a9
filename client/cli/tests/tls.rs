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

use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess, wait_for};
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
