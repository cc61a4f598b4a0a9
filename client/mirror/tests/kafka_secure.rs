//! The Kafka source over SASL_SSL: a source cluster whose Kafka listener
//! takes only TLS with SCRAM-SHA-512 logins (a user made with `goulette user
//! create`). With the right password every record is mirrored; with a
//! wrong one nothing is, `/ready` says why, and the log names the broker
//! without the password.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;
use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess, bin_dir, free_port, http_get};
use goulette_tls::testing::TestCa;
use process::Mirror;

const RECORDS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_sasl_ssl_source_the_mirror_should_log_in_with_scram_and_refuse_a_wrong_password_clearly() {
    let work = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mirror test CA");
    let issued = ca.issue(&["127.0.0.1", "localhost"]);
    let path = |name: &str| work.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("cert.pem"), &issued.cert).unwrap();
    std::fs::write(path("key.pem"), &issued.key).unwrap();
    let etcd = EtcdProcess::start();
    let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &[]);
    let (cert, key) = (path("cert.pem"), path("key.pem"));
    let args = ["--kafka-sasl-mechanisms", "SCRAM-SHA-512", "--kafka-tls-cert", &cert, "--kafka-tls-key", &key];
    let broker = BrokerProcess::start(1, &sentinel.address.to_string(), &args);
    let source = Env { etcd, sentinel, brokers: vec![broker] };
    source.wait_brokers_up().await;
    let out = Command::new(bin_dir().join("goulette"))
        .args(["user", "create", "mirror", "--sentinels", &source.sentinel.address.to_string()])
        .env("GOULETTE_USER_PASSWORD", "s3cret-mirror")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "user create: {}", String::from_utf8_lossy(&out.stderr));
    source.create_topic("secure", 1, 1).await;
    source.wait_serving("secure").await;
    common::produce_acked(source.cluster(), "secure", (0..RECORDS).map(|i| format!("s{i}"))).await;
    let target = Env::start(1, &[]).await;
    target.create_topic("right", 1, 1).await;

    let config = |name: &str, http: u16| {
        format!(
            "[target]\nsentinels = [\"{}\"]\n\n[http]\naddress = \"127.0.0.1:{http}\"\n\n[[source]]\nname = \"{name}\"\n\
             kind = \"kafka\"\nbrokers = \"{}\"\ngroup = \"{name}\"\ntopics = [\"secure\"]\ntopic = \"{name}\"\n\
             security-protocol = \"sasl_ssl\"\nsasl-mechanism = \"SCRAM-SHA-512\"\nsasl-username = \"mirror\"\n\
             tls-ca = \"{}\"\n",
            target.sentinel.address,
            source.brokers[0].kafka_address,
            path("ca.pem")
        )
    };

    // A wrong password: nothing mirrored, /ready says why.
    let http = free_port();
    std::fs::write(path("wrong.toml"), config("wrong", http)).unwrap();
    let mut wrong = Mirror::start_with_env(
        &work.path().join("wrong.toml"),
        &work.path().join("wrong.log"),
        &[("GOULETTE_MIRROR_SOURCE_WRONG_SASL_PASSWORD", "not-it")],
    );
    let address = format!("127.0.0.1:{http}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((503, body)) = http_get(address, "/ready")
            && body.contains("wrong")
            && body.to_ascii_lowercase().contains("authentication")
        {
            break;
        }
        let log = std::fs::read_to_string(work.path().join("wrong.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "/ready never said why: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(work.path().join("wrong.log")).unwrap_or_default();
    assert!(!log.contains("not-it"), "the password is in the log: {log}");
    assert!(wrong.terminate().is_some_and(|s| s.success()));

    // The right one: every record.
    let http = free_port();
    std::fs::write(path("right.toml"), config("right", http)).unwrap();
    let mut right = Mirror::start_with_env(
        &work.path().join("right.toml"),
        &work.path().join("right.log"),
        &[("GOULETTE_MIRROR_SOURCE_RIGHT_SASL_PASSWORD", "s3cret-mirror")],
    );
    let values: Vec<String> = common::consume_all(target.cluster(), "right", RECORDS)
        .await
        .into_iter()
        .map(|r| String::from_utf8(r.value.to_vec()).unwrap())
        .collect();
    let want: Vec<String> = (0..RECORDS).map(|i| format!("s{i}")).collect();
    assert_eq!(values, want);
    assert!(right.terminate().is_some_and(|s| s.success()));
}
