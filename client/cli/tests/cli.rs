//! The `goulette` commands against real processes (etcd, a sentinel,
//! brokers): produce from stdin and consume back, topic (created, altered,
//! grown) and broker administration, and consumer groups consumed, described and reset.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{Env, produce_values};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_cli_should_produce_stdin_lines_and_consume_them_back() {
    let env = Env::start(1, &[]).await;
    let goulette = env!("CARGO_BIN_EXE_goulette");
    let sentinels = env.sentinel.address.to_string();
    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(goulette)
            .args(args)
            .env("GOULETTE_SENTINELS", &sentinels)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    // Auto-created on first produce.
    let out = run(&["produce", "--topic", "demo", "--print-offsets", "--partition", "0"], "hello\nworld\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\t0\n0\t1\n");
    let out = run(&["consume", "--topic", "demo", "--from-beginning", "--max-messages", "2", "--timeout", "10s"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\nworld\n");
    let out = run(
        &["consume", "--topic", "demo", "--partition", "0", "--offset", "1", "--format", "json", "--timeout", "1s"],
        "",
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((line["offset"].as_u64(), line["value"].as_str()), (Some(1), Some("world")));

    let out = run(&["produce", "--topic", "bad/name", "--message", "x"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("topic name"), "{}", String::from_utf8_lossy(&out.stderr));

    let out = run(&["topic", "describe", "demo", "--format", "json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let desc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p0 = &desc["partition_details"][0];
    assert_eq!((p0["log_end_offset"].as_u64(), p0["leader_epoch"].as_u64()), (Some(2), Some(1)));

    let out = run(&["cluster", "status", "--format", "json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["brokers"][0]["replicas"].as_u64(), Some(3), "demo's 3 partitions on the only broker");

    // Topic settings from the command line, checked by the sentinel.
    let out = run(&["topic", "create", "kept", "--partitions", "1", "--retention-bytes", "4096"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["topic", "describe", "kept", "--format", "json"], "");
    let desc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(desc["retention_bytes"].as_u64(), Some(4096));
    // Effective values, defaults marked (the brokers' retention is 7 days).
    let setting = |desc: &serde_json::Value, name: &str| {
        let s = desc["settings"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
        (s["value"].as_str().unwrap().to_owned(), s["default"].as_bool().unwrap())
    };
    assert_eq!(setting(&desc, "retention_ms"), ("604800000".to_owned(), true));
    assert_eq!(setting(&desc, "retention_bytes"), ("4096".to_owned(), false));
    assert_eq!(setting(&desc, "min_insync_replicas"), ("1".to_owned(), true));
    assert_eq!(setting(&desc, "unclean_leader_election"), ("false".to_owned(), true));
    let out = run(&["topic", "describe", "kept"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("retention_ms") && text.contains("604800000  (default)"), "{text}");
    let out = run(&["topic", "create", "strict", "--replication-factor", "1", "--min-insync-replicas", "2"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("min_insync_replicas"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Changed at runtime: only what is named; grown, never shrunk.
    let out = run(&["topic", "alter", "kept", "--retention-ms", "60000"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["topic", "describe", "kept", "--format", "json"], "");
    let desc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((desc["retention_ms"].as_u64(), desc["retention_bytes"].as_u64()), (Some(60_000), Some(4096)));
    assert_eq!(setting(&desc, "retention_ms"), ("60000".to_owned(), false));
    let out = run(&["topic", "alter", "kept"], "");
    assert!(!out.status.success(), "an alter naming nothing is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to change"));
    let out = run(&["topic", "add-partitions", "kept", "--total", "3"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("now has 3 partitions"));
    let out = run(&["topic", "add-partitions", "kept", "--total", "2"], "");
    assert!(!out.status.success(), "a topic never shrinks");

    // Decommissioning needs a broker that exists and others to take its replicas.
    let out = run(&["broker", "decommission", "99"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown broker"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["broker", "decommission", "1"], "");
    assert!(!out.status.success(), "the only broker cannot be decommissioned");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotEnoughReplicas"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_cli_a_group_should_consume_in_turns_be_described_and_reset() {
    let env = Env::start(1, &[]).await;
    env.create_topic("jobs", 1, 1).await;
    env.wait_serving("jobs").await;
    produce_values(env.cluster(), "jobs", &["j0", "j1", "j2", "j3", "j4", "j5"]).await;
    let sentinels = env.sentinel.address.to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_goulette"))
            .args(args)
            .env("GOULETTE_SENTINELS", &sentinels)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let consume = ["consume", "--topic", "jobs", "--group", "g", "--from-beginning", "--max-messages", "3"];
    assert_eq!(run(&[&consume[..], &["--timeout", "10s"]].concat()), "j0\nj1\nj2\n");
    assert_eq!(run(&[&consume[..], &["--timeout", "10s"]].concat()), "j3\nj4\nj5\n");

    let described: serde_json::Value =
        serde_json::from_str(&run(&["group", "describe", "g", "--topic", "jobs", "--format", "json"])).unwrap();
    let p0 = &described["partitions"][0];
    assert_eq!((p0["committed"].as_u64(), p0["log_end"].as_u64(), p0["lag"].as_u64()), (Some(6), Some(6), Some(0)));

    // A dry run says where each partition would move and moves nothing.
    let dry = run(&["group", "reset", "g", "--topic", "jobs", "--to", "2", "--dry-run"]);
    assert!(dry.contains("g jobs/0: 6 -> 2 (dry run: not committed)"), "{dry}");
    let described: serde_json::Value =
        serde_json::from_str(&run(&["group", "describe", "g", "--topic", "jobs", "--format", "json"])).unwrap();
    assert_eq!(described["partitions"][0]["committed"].as_u64(), Some(6), "the dry run committed");
    run(&["group", "reset", "g", "--topic", "jobs", "--to", "2"]);
    assert_eq!(run(&["consume", "--topic", "jobs", "--group", "g", "--max-messages", "1", "--timeout", "10s"]), "j2\n");
    run(&["group", "reset", "g", "--topic", "jobs", "--to", "earliest"]);
    assert_eq!(run(&["consume", "--topic", "jobs", "--group", "g", "--max-messages", "1", "--timeout", "10s"]), "j0\n");

    // A second group, then deleting the first: it is gone, and starts over.
    run(&["group", "reset", "h", "--topic", "jobs", "--to", "latest"]);
    assert_eq!(run(&["group", "list"]), "g\nh\n");
    run(&["group", "delete", "g"]);
    assert_eq!(run(&["group", "list"]), "h\n");
    // Describing it now is an error, as for any unknown group.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["group", "describe", "g", "--topic", "jobs"])
        .env("GOULETTE_SENTINELS", &sentinels)
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown group described: {}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown group g"), "{out:?}");
    assert_eq!(
        run(&[
            "consume",
            "--topic",
            "jobs",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "1",
            "--timeout",
            "10s"
        ]),
        "j0\n"
    );

    // Interrupted with Ctrl-C (SIGINT), a consumer commits what it printed.
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_goulette"))
        .args(["consume", "--topic", "jobs", "--group", "int", "--from-beginning"])
        .env("GOULETTE_SENTINELS", &sentinels)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for want in ["j0", "j1", "j2", "j3", "j4", "j5"] {
        assert_eq!(lines.next().unwrap().unwrap(), want);
    }
    goulette_sentinel::testkit::signal(&child, libc::SIGINT);
    assert!(child.wait().unwrap().success(), "Ctrl-C is a clean exit");
    let described: serde_json::Value =
        serde_json::from_str(&run(&["group", "describe", "int", "--topic", "jobs", "--format", "json"])).unwrap();
    assert_eq!(described["partitions"][0]["committed"].as_u64(), Some(6));
}
