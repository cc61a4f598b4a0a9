//! A cluster with TLS on every hop and `--auth-required`, shared by the
//! tests of the gRPC API's authentication.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess};
use goulette_tls::testing::TestCa;

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A cluster with TLS on every hop and `--auth-required`, whose servers
/// authenticate each other by certificate, and an operator's certificate.
pub struct SecureCluster {
    pub dir: tempfile::TempDir,
    /// The cluster's CA, to issue more certificates.
    pub ca: TestCa,
    pub ca_file: String,
    pub op_cert: String,
    pub op_key: String,
    _etcd: EtcdProcess,
    pub sentinel: SentinelProcess,
    pub brokers: Vec<BrokerProcess>,
}

impl SecureCluster {
    pub fn start(brokers: u32, extra: &[&str]) -> SecureCluster {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("cluster CA");
        let server = ca.issue(&["127.0.0.1", "localhost"]);
        let operator = ca.issue(&["operator"]);
        let ca_file = write(dir.path(), "ca.pem", ca.pem());
        let (cert, key) = (write(dir.path(), "server.crt", &server.cert), write(dir.path(), "server.key", &server.key));
        let (op_cert, op_key) =
            (write(dir.path(), "op.crt", &operator.cert), write(dir.path(), "op.key", &operator.key));
        let mut args = vec!["--tls-cert", &cert, "--tls-key", &key, "--tls-ca", &ca_file, "--tls-client-ca", &ca_file];
        args.extend(["--auth-required", "true"]);
        args.extend_from_slice(extra);
        let etcd = EtcdProcess::start();
        let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &args);
        let sentinels = sentinel.address.to_string();
        let brokers = (1..=brokers).map(|id| BrokerProcess::start(id, &sentinels, &args)).collect();
        SecureCluster { dir, ca, ca_file, op_cert, op_key, _etcd: etcd, sentinel, brokers }
    }

    /// `goulette` with the CA (and `extra`, `env`), `stdin` on its input.
    pub fn cli(&self, extra: &[&str], env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_goulette"))
            .args(["--sentinels", &self.sentinel.address.to_string(), "--tls-ca", &self.ca_file])
            .args(extra)
            .args(args)
            .env_remove("GOULETTE_SENTINELS")
            .env_remove("GOULETTE_USER")
            .env_remove("GOULETTE_PASSWORD")
            .envs(env.iter().copied())
            .env("GOULETTE_CONFIG_DIR", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Waits until every broker is registered and up (asked with the
    /// operator's certificate; a status without brokers is healthy too).
    pub fn wait_brokers_up(&self) {
        let want = self.brokers.len();
        goulette_sentinel::testkit::wait_for("every broker up", std::time::Duration::from_secs(60), || {
            let out = self.cli(&self.operator(), &[], &["cluster", "status", "--format", "json"], b"");
            String::from_utf8_lossy(&out.stdout).matches("\"state\": \"up\"").count() >= want
        });
    }

    /// The flags presenting the operator's certificate.
    pub fn operator(&self) -> [&str; 4] {
        ["--tls-cert", self.op_cert.as_str(), "--tls-key", self.op_key.as_str()]
    }
}
