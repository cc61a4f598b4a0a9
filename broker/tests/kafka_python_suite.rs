//! kafka-python's own integration suite (`test/integration/` of its PyPI
//! source archive, downloaded by `make deps`) against a 3-broker Goulette
//! cluster. The tests deselected, and why, are the table in
//! `docs/kafka.md`, read from there.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::KafkaCluster;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The test ids of the "kafka-python tests deselected" table of docs/kafka.md.
fn deselected() -> Vec<String> {
    let doc = std::fs::read_to_string(repo().join("docs/kafka.md")).unwrap();
    let section = doc.split("### kafka-python tests deselected").nth(1).expect("the deselection table");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `test/"))
        .map(|l| format!("test/{}", l.split('`').next().unwrap()))
        .collect()
}

/// The last warnings and errors of each broker's log, to tell a failure's
/// cause after the cluster's directories are gone.
fn warnings(cluster: &KafkaCluster) -> String {
    let mut out = String::new();
    for b in &cluster.brokers {
        let log = b.log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
        out.push_str(&format!("broker {}:\n", b.id));
        for l in &lines[lines.len().saturating_sub(40)..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[test]
fn given_kafka_pythons_integration_suite_it_should_pass_but_for_the_documented_deselections() {
    let venv = repo().join(".venv");
    let python = venv.join("bin/python");
    let archive = std::fs::read_dir(venv.join("sdist"))
        .ok()
        .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.to_string_lossy().ends_with(".tar.gz")))
        .unwrap_or_else(|| panic!("kafka-python's source archive is missing from {}: run `make deps`", venv.display()));
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    let work = tempfile::tempdir().unwrap();
    let status = Command::new("tar").arg("xzf").arg(&archive).arg("-C").arg(work.path()).status().unwrap();
    assert!(status.success());
    let src = std::fs::read_dir(work.path()).unwrap().flatten().next().unwrap().path();
    // The archive's `test` has no __init__.py (so Python's own `test`
    // package would win) and lacks service.py; the fixtures want a Kafka
    // installation directory, unused with KAFKA_URI.
    std::fs::write(src.join("test/__init__.py"), "").unwrap();
    std::fs::copy(repo().join("broker/tests/kafka/kafka_python/service.py"), src.join("test/service.py")).unwrap();
    std::fs::create_dir_all(src.join("servers/4.0.0/kafka-bin")).unwrap();
    std::fs::create_dir_all(src.join("servers/resources/default")).unwrap();

    let cluster = KafkaCluster::start(3, &["--kafka-group-initial-delay", "200ms"]);
    let deselected = deselected();
    assert!(deselected.len() >= 10, "{deselected:?}");
    let mut cmd = Command::new(&python);
    cmd.current_dir(&src)
        .env("KAFKA_VERSION", "4.0.0")
        .env("KAFKA_URI", format!("kafka://{}", cluster.brokers[0].kafka_address))
        .env("PYTHONPATH", &src)
        .args(["-m", "pytest", "test/integration", "-p", "no:cacheprovider", "-q", "-rfE"])
        .args(["-o", "log_level=WARNING", "--timeout=60", "--timeout-method=signal"]);
    for test in &deselected {
        cmd.arg("--deselect").arg(test);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // pytest's summary: the last line saying how many passed (a test may print after it).
    let summary = stdout.lines().rev().find(|l| l.contains(" passed")).unwrap_or_default().to_owned();
    assert!(
        out.status.success(),
        "kafka-python's suite failed: {summary}\n{stdout}\n{}\nbrokers' warnings:\n{}",
        String::from_utf8_lossy(&out.stderr),
        warnings(&cluster)
    );
    let passed: u32 = summary
        .split(" passed")
        .next()
        .and_then(|s| s.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 39, "only {passed} passed: {summary}");
    eprintln!("kafka-python: {summary}");
}
