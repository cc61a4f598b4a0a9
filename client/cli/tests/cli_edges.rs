//! The `goulette` CLI at its edges, against real processes (each test a
//! defect found by using it): stdin lines are values byte for byte and a
//! message not acknowledged makes the exit status say how many; a group
//! consumer stopped by SIGTERM, or killed after a quiet second, keeps its
//! commits; a consumer's output is seen as records arrive; a consumer of a
//! topic not created yet waits for it; start options that contradict each
//! other are refused, and an offset past the end says so; a cluster that is
//! down or misaddressed is an error at once that says what to check, and
//! sentinel URLs are accepted; `cluster status` shows a stopped sentinel
//! and fails.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Env, produce_values};

fn goulette(sentinels: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_goulette"));
    command.args(args).env("GOULETTE_SENTINELS", sentinels);
    command
}

fn run(sentinels: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child =
        goulette(sentinels, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// A running `goulette consume` whose stdout lines arrive on a channel.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn start(sentinels: &str, args: &[&str]) -> Running {
        let mut child = goulette(sentinels, args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        Running { child, lines }
    }

    /// The next `n` lines, each within `within`.
    fn lines(&self, n: usize, within: Duration) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.lines.recv_timeout(within).unwrap_or_else(|_| panic!("line {i} did not come within {within:?}"))
            })
            .collect()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the consumer did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_lines_of_any_bytes_produce_should_send_them_byte_exact_and_say_how_many_were_lost() {
    let env = Env::start(1, &["--max-batch-bytes", "16384", "--fragment-bytes", "65536"]).await;
    let sentinels = env.sentinel.address.to_string();
    let input = b"one\ntw\xe9o\nthree\n";
    let out = run(&sentinels, &["produce", "--topic", "bin", "--print-offsets", "--partition", "0"], input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "0\t0\n0\t1\n0\t2\n", "all three lines sent");
    let consume = ["consume", "--topic", "bin", "--from-beginning", "--max-messages", "3", "--timeout", "10s"];
    let out = run(&sentinels, &consume, b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, input.to_vec(), "read back byte for byte");

    // A line larger than a batch may be is not acknowledged: exit 1, and how many.
    let mut lossy = b"a\n".to_vec();
    lossy.extend(vec![b'b'; 40_000]);
    lossy.extend(b"\nc\n");
    let out = run(&sentinels, &["produce", "--topic", "bin"], &lossy);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a lost message must fail the run: {stderr}");
    assert!(stderr.contains("messages were not acknowledged"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_group_consumer_stopped_by_sigterm_or_killed_after_a_quiet_second_its_commits_should_hold() {
    let env = Env::start(1, &[]).await;
    env.create_topic("jobs", 1, 1).await;
    env.wait_serving("jobs").await;
    let sentinels = env.sentinel.address.to_string();
    let member = ["consume", "--topic", "jobs", "--group", "g", "--from-beginning"];
    let after = |extra: &[&str]| -> String {
        let out = run(&sentinels, &[&member[..], extra].concat(), b"");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // SIGTERM at once after the records were printed: commit, leave, exit 0.
    produce_values(env.cluster(), "jobs", &["j0", "j1", "j2"]).await;
    let consumer = Running::start(&sentinels, &member);
    assert_eq!(consumer.lines(3, Duration::from_secs(20)), ["j0", "j1", "j2"]);
    consumer.signal("TERM");
    assert!(consumer.wait().success(), "a SIGTERM is a clean stop");
    assert_eq!(after(&["--timeout", "3s"]), "", "nothing printed before the SIGTERM comes again");

    // Killed (no chance to commit at exit) after a quiet second and more:
    // the commit made while no record arrived holds. The records come to a
    // member that has been waiting for a while, so no commit is due when
    // they are delivered.
    // A short session, so that the next member gets the partition soon
    // after this one is killed.
    let consumer = Running::start(&sentinels, &[&member[..], &["--session-timeout", "2s"]].concat());
    std::thread::sleep(Duration::from_secs(3));
    produce_values(env.cluster(), "jobs", &["j3", "j4"]).await;
    assert_eq!(consumer.lines(2, Duration::from_secs(20)), ["j3", "j4"]);
    std::thread::sleep(Duration::from_millis(2500));
    consumer.signal("KILL");
    consumer.wait();
    assert_eq!(after(&["--timeout", "8s"]), "", "the quiet second's commit held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_consumer_with_a_timeout_each_record_should_be_written_out_as_it_arrives() {
    let env = Env::start(1, &[]).await;
    env.create_topic("live", 1, 1).await;
    env.wait_serving("live").await;
    let sentinels = env.sentinel.address.to_string();
    let consumer = Running::start(&sentinels, &["consume", "--topic", "live", "--timeout", "60s"]);
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..3 {
        let value = format!("v{i}");
        produce_values(env.cluster(), "live", &[value.as_str()]).await;
        assert_eq!(consumer.lines(1, Duration::from_secs(10)), [value], "a record held back in the output buffer");
    }
    consumer.signal("TERM");
    assert!(consumer.wait().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_topic_not_created_yet_a_consumer_should_wait_for_it_unless_told_not_to() {
    let env = Env::start(1, &[]).await;
    let sentinels = env.sentinel.address.to_string();
    let consumer =
        Running::start(&sentinels, &["consume", "--topic", "fresh", "--from-beginning", "--max-messages", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    let out = run(&sentinels, &["produce", "--topic", "fresh", "--message", "first"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(consumer.lines(1, Duration::from_secs(15)), ["first"]);
    assert!(consumer.wait().success());

    let out = run(&sentinels, &["consume", "--topic", "never", "--timeout", "2s"], b"");
    assert!(out.status.success(), "waiting out its timeout is no failure");
    assert!(String::from_utf8_lossy(&out.stderr).contains("waiting for topic never"), "{out:?}");
    let out = run(&sentinels, &["consume", "--topic", "never", "--no-wait"], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_start_options_that_contradict_each_other_consume_should_refuse_them() {
    let env = Env::start(1, &[]).await;
    env.create_topic("multi", 3, 1).await;
    env.wait_serving("multi").await;
    let sentinels = env.sentinel.address.to_string();
    let out = run(&sentinels, &["produce", "--topic", "multi", "--partition", "0"], b"a\nb\nc\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = run(&sentinels, &["consume", "--topic", "multi", "--offset", "1", "--timeout", "2s"], b"");
    assert!(!out.status.success(), "an offset without a partition of a 3-partition topic");
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --partition"), "{out:?}");
    let at = ["consume", "--topic", "multi", "--partition", "0", "--offset", "1"];
    let out = run(&sentinels, &[&at[..], &["--from-timestamp", "2026-01-01T00:00:00Z"]].concat(), b"");
    assert!(!out.status.success(), "an offset and a time");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"), "{out:?}");

    let out = run(&sentinels, &[&at[..], &["--max-messages", "2", "--timeout", "10s"]].concat(), b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "b\nc\n");
    let past = ["consume", "--topic", "multi", "--partition", "0", "--offset", "100", "--timeout", "2s"];
    let out = run(&sentinels, &past, b"");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("past the end of multi/0"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_cluster_down_or_misaddressed_commands_should_fail_fast_and_say_what_to_check() {
    let env = Env::start(1, &[]).await;
    let nothing = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let broker = env.brokers[0].address.to_string();
    for (sentinels, hint) in
        [(nothing.as_str(), "is the cluster running?"), (broker.as_str(), "is it a broker's address?")]
    {
        for command in
            [&["produce", "--topic", "t", "--message", "x"][..], &["consume", "--topic", "t", "--timeout", "5s"]]
        {
            let started = Instant::now();
            let out = run(sentinels, command, b"");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} against {sentinels}");
            assert!(stderr.contains(hint), "{command:?} against {sentinels}: {stderr}");
            assert!(started.elapsed() < Duration::from_secs(4), "{command:?} took {:?}", started.elapsed());
        }
    }
    // A sentinel given as a URL works; a URL of another scheme is refused plainly.
    let url = format!("http://{}/", env.sentinel.address);
    let out = run(&url, &["cluster", "status"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run("https://127.0.0.1:1", &["cluster", "status"], b"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS to sentinels is not supported"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_stopped_sentinel_cluster_status_should_show_it_and_fail() {
    let env = Env::start(1, &[]).await;
    let up = env.sentinel.address.to_string();
    let out = run(&up, &["cluster", "status"], b"");
    assert!(out.status.success(), "all up: {}", String::from_utf8_lossy(&out.stdout));
    // A second sentinel given, not running (as one stopped would be: it no
    // longer registers).
    let stopped = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let both = format!("{up},{stopped}");
    let out = run(&both, &["cluster", "status"], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a sentinel is down: {stdout}");
    assert!(stdout.lines().any(|l| l.contains(&stopped) && l.contains("down")), "{stdout}");
    let out = run(&both, &["cluster", "status", "--format", "json"], b"");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["sentinels_not_registered"][0]["state"], "down");
}

#[test]
fn given_a_bench_without_an_end_it_should_say_what_it_needs_and_every_argument_should_be_described() {
    let out = goulette("127.0.0.1:1", &["bench", "produce"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --count or --duration"), "{out:?}");
    // Every argument of every command has a description in --help: no
    // line holds an argument name alone.
    let commands: &[&[&str]] = &[
        &["topic", "create"],
        &["topic", "alter"],
        &["topic", "add-partitions"],
        &["topic", "describe"],
        &["topic", "delete"],
        &["produce"],
        &["consume"],
        &["group", "describe"],
        &["group", "reset"],
        &["group", "delete"],
        &["cluster", "status"],
        &["broker", "decommission"],
        &["broker", "recommission"],
        &["storage", "inspect"],
        &["etcd", "backup"],
        &["etcd", "restore"],
        &["bench"],
    ];
    for command in commands {
        let out = goulette("127.0.0.1:1", &[*command, &["--help"]].concat()).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = help.lines().collect();
        // An argument's line; its description follows on it (after two
        // spaces) or on the next, more indented line.
        let bare: Vec<&str> = (0..lines.len())
            .filter(|&i| lines[i].starts_with("  ") && !lines[i].starts_with("   "))
            .filter(|&i| {
                let same_line = lines[i].trim().contains("  ");
                let next_line = lines.get(i + 1).is_some_and(|n| n.starts_with("      ") && !n.trim().is_empty());
                !same_line && !next_line
            })
            .map(|i| lines[i].trim())
            .collect();
        assert!(bare.is_empty(), "{command:?}: arguments without a description: {bare:?}\n{help}");
        assert!(!help.contains("[default: 0]"), "{command:?} states a default of 0:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_running_broker_inspect_and_a_second_broker_should_be_refused_its_directories_unless_read_only() {
    let env = Env::start(1, &[]).await;
    let sentinels = env.sentinel.address.to_string();
    env.create_topic("held", 1, 1).await;
    env.wait_serving("held").await;
    produce_values(env.cluster(), "held", &["x", "y", "z"]).await;
    let partition = env.brokers[0].data_dir().join("held-0");
    let dir = partition.to_str().unwrap();

    // Recovery on a live broker's files could cut what it is writing.
    let out = run(&sentinels, &["storage", "inspect", dir], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "inspect must not recover a live partition: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("in use by another process") && stderr.contains("--read-only"), "{stderr}");

    let out = run(&sentinels, &["storage", "inspect", "--read-only", "--records", dir], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("log end offset:      3") && stdout.contains("\"z\""), "{stdout}");

    // A second broker on the same data directory exits at once, saying why.
    let second = std::process::Command::new(goulette_sentinel::testkit::bin_dir().join("goulette-broker"))
        .args(["--id", "2", "--address", "127.0.0.1:0", "--data"])
        .arg(env.brokers[0].data_dir())
        .args(["--sentinels", &sentinels])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(stderr.contains("is in use by another process"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_keyed_lines_with_headers_consume_should_print_them_by_format_and_exit_at_the_end() {
    let env = Env::start(1, &[]).await;
    let sentinels = env.sentinel.address.to_string();
    let produce = ["produce", "--topic", "kv", "--partition", "0", "-K", ":", "-H", "app=cli", "-H", "trace=7"];
    let out = run(&sentinels, &produce, b"k1:v1\nk2:v:2\nno-key\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"whole\nfile\xff").unwrap();
    let out = run(
        &sentinels,
        &["produce", "--topic", "kv", "--partition", "0", "--file", file.path().to_str().unwrap()],
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // -e ends at the end the partitions had at the start: no --timeout needed.
    let format = r"%p:%o %k=%v [%h]\n";
    let out = run(&sentinels, &["consume", "--topic", "kv", "--from-beginning", "-e", "--format", format], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        out.stdout,
        b"0:0 k1=v1 [app=cli,trace=7]\n0:1 k2=v:2 [app=cli,trace=7]\n0:2 =no-key [app=cli,trace=7]\n0:3 =whole\nfile\xff []\n"
            .to_vec()
    );
    let out = run(
        &sentinels,
        &["consume", "--topic", "kv", "--partition", "0", "--offset", "3", "-e", "--format", "json"],
        b"",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["value"], "d2hvbGUKZmlsZf8=", "{json}");
    assert_eq!(json["encoded"], serde_json::json!(["value"]));
    // A reader that goes away (`| head -1`) ends the consumer quietly, as
    // SIGPIPE ends other tools: no panic, no error message.
    let lines: Vec<u8> = (0..3000).flat_map(|i| format!("{i:0>99}\n").into_bytes()).collect();
    let out = run(&sentinels, &["produce", "--topic", "long", "--partition", "0"], &lines);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut reader = goulette(&sentinels, &["consume", "--topic", "long", "--partition", "0", "-o", "beginning", "-e"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(reader.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first.len(), 100);
    let out = reader.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));

    // Nothing to read from the end: -e exits at once.
    let out = run(&sentinels, &["consume", "--topic", "kv", "-e"], b"");
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");

    // An input format: partition, key and headers per line; a line that
    // does not match is not sent and fails the run, the others are sent.
    let produce = ["produce", "--topic", "fmt", "--input-format", "%p:%k=%h|%v", "-H", "all=1"];
    let out = run(&sentinels, &produce, b"1:k1=a=x|v1\ngarbage\n1:k2=|v2\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("line 2 does not match --input-format"), "{stderr}");
    assert!(stderr.contains("1 of 3 messages were not acknowledged"), "{stderr}");
    let out = run(
        &sentinels,
        &["consume", "--topic", "fmt", "--partition", "1", "-o", "beginning", "-e", "--format", r"%k %v [%h]\n"],
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "k1 v1 [all=1,a=x]\nk2 v2 [all=1]\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_current_profile_commands_should_reach_its_cluster_without_sentinels_given() {
    let env = Env::start(1, &[]).await;
    let config = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_goulette"))
            .args(args)
            .env_remove("GOULETTE_SENTINELS")
            .env_remove("GOULETTE_PROFILE")
            .env("GOULETTE_CONFIG_DIR", config.path())
            .output()
            .unwrap()
    };
    let sentinels = env.sentinel.address.to_string();
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    assert!(cli(&["profile", "create", "here", "--sentinels", &sentinels]).status.success());
    assert!(cli(&["profile", "create", "elsewhere", "--sentinels", &nowhere]).status.success());
    let listed = String::from_utf8_lossy(&cli(&["profile", "list"]).stdout).into_owned();
    assert!(listed.contains(&format!("* here  sentinels {sentinels}")), "the first profile is current: {listed}");

    let out = cli(&["topic", "create", "profiled", "--partitions", "1"]);
    assert!(out.status.success(), "the current profile's cluster: {}", String::from_utf8_lossy(&out.stderr));
    // Another profile by name, then made current: its (absent) cluster is used.
    assert!(!cli(&["--profile", "elsewhere", "topic", "list"]).status.success());
    assert!(cli(&["profile", "use", "elsewhere"]).status.success());
    let out = cli(&["topic", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&nowhere), "{out:?}");
    // A flag still wins over the profile; an unknown profile is an error.
    assert!(cli(&["--sentinels", &sentinels, "topic", "list"]).status.success());
    let out = cli(&["--profile", "nope", "topic", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no profile \"nope\""), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_relative_starts_and_several_topics_consume_should_read_what_they_name() {
    let env = Env::start(1, &[]).await;
    let sentinels = env.sentinel.address.to_string();
    for (topic, input) in [("ra", &b"a0\na1\na2\na3\na4\n"[..]), ("rb", &b"b0\nb1\nb2\n"[..])] {
        let out = run(&sentinels, &["produce", "--topic", topic, "--partition", "0"], input);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let lines = |args: &[&str]| {
        let out = run(&sentinels, args, b"");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
        lines.sort();
        lines
    };
    // The last N of each partition.
    assert_eq!(lines(&["consume", "--topic", "ra", "-o", "-2", "-e"]), ["a3", "a4"]);
    // A time a while ago, as @-DURATION and as --from-timestamp -DURATION.
    assert_eq!(lines(&["consume", "--topic", "ra", "-o", "@-1h", "-e"]).len(), 5);
    assert_eq!(lines(&["consume", "--topic", "rb", "--from-timestamp", "-1h", "-e"]).len(), 3);
    assert!(lines(&["consume", "--topic", "rb", "-o", "@2099-01-01T00:00", "-e"]).is_empty(), "nothing that late");
    // Several topics, interleaved; each ends at its end.
    let both = lines(&["consume", "--topic", "ra,rb", "-o", "beginning", "-e", "--format", r"%t:%v\n"]);
    assert_eq!(both, ["ra:a0", "ra:a1", "ra:a2", "ra:a3", "ra:a4", "rb:b0", "rb:b1", "rb:b2"]);
    let out = run(&sentinels, &["consume", "--topic", "ra", "--topic", "rb", "--group", "g", "--timeout", "1s"], b"");
    assert!(!out.status.success(), "a group member reads one topic");
    assert!(String::from_utf8_lossy(&out.stderr).contains("one topic"), "{out:?}");
}
