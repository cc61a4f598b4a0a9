//! The files source against a real cluster: a directory fed while the
//! mirror runs, is killed -9 and restarted: every line arrives (at least
//! once; a duplicate only from what was in flight at the kill), every file
//! moves to the finished directory once all its lines are acknowledged,
//! and a SIGTERM stops the mirror cleanly. Bad configs are refused naming
//! the key.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Env;
use goulette_client::{Consumer, ConsumerConfig, StartAt};
use goulette_sentinel::testkit::{free_port, http_get};
use process::Mirror;

const FILES: usize = 8;
const LINES: usize = 20_000;

/// Drops file `n` into `dir` the safe way: written aside, renamed in.
fn drop_file(dir: &Path, n: usize) {
    let text: String = (0..LINES).map(|l| format!("file{n}-line{l}\n")).collect();
    let aside = dir.parent().unwrap().join(format!("writing-{n}"));
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, dir.join(format!("part-{n:02}.log"))).unwrap();
}

fn finished(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".finished")).map(|d| d.count()).unwrap_or(0)
}

/// Waits until `files` files of `dir` are finished, failing after `bound`
/// with the mirror's log.
async fn wait_finished(dir: &Path, files: usize, bound: Duration, log: &Path) {
    let deadline = Instant::now() + bound;
    while finished(dir) < files {
        assert!(
            Instant::now() < deadline,
            "{} of {files} files finished: {}",
            finished(dir),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config_text(sentinels: &str, dir: &Path, state: &Path, http: u16) -> String {
    format!(
        r#"
[target]
sentinels = ["{sentinels}"]

[http]
address = "127.0.0.1:{http}"

[[source]]
name = "drops"
kind = "files"
directory = "{}"
topic = "drops"
pattern = "*.log"
state-directory = "{}"
poll-interval = "100ms"
settle = "200ms"
"#,
        dir.display(),
        state.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_fed_directory_every_line_should_arrive_across_a_kill_and_files_should_move_when_done() {
    let env = Env::start(1, &[]).await;
    let work = tempfile::tempdir().unwrap();
    let (dir, state) = (work.path().join("in"), work.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    let http = free_port();
    let config = work.path().join("mirror.toml");
    std::fs::write(&config, config_text(&env.sentinel.address.to_string(), &dir, &state, http)).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("mirror.log"));

    // Half the files, then a kill -9 while they are being mirrored.
    for n in 0..FILES / 2 {
        drop_file(&dir, n);
    }
    let address = format!("127.0.0.1:{http}").parse().unwrap();
    let out = |page: &str| common::metric(page, "goulette_mirror_records_out_total{source=\"drops\"}").unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(address, "/metrics").is_none_or(|(_, page)| out(&page) < (LINES * 3 / 2) as f64) {
        assert!(
            Instant::now() < deadline,
            "nothing mirrored: {}",
            std::fs::read_to_string(work.path().join("mirror.log")).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mirror.kill();
    let finished_at_kill = finished(&dir);
    // What the checkpoint held at the kill: those lines must not come again.
    let acked_at_kill: HashMap<String, u64> = std::fs::read(state.join("checkpoint.json"))
        .ok()
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
        .and_then(|v| v["checkpoint"]["files"].as_object().cloned())
        .map(|files| files.into_iter().map(|(name, p)| (name, p["acked"].as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    mirror.spawn();
    for n in FILES / 2..FILES {
        drop_file(&dir, n);
    }
    wait_finished(&dir, FILES, Duration::from_secs(90), &work.path().join("mirror.log")).await;
    // Only the finished directory is left, and the checkpoint forgot them.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from(".finished")]);
    let (_, ready) = http_get(address, "/ready").unwrap();
    assert!(ready.starts_with("ok") || ready.is_empty() || !ready.contains("stopped"), "{ready}");

    // Every line, at least once; duplicates only from the kill.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let config = ConsumerConfig { start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "drops", config).await.unwrap();
    while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        let record = record.unwrap();
        let file = record.headers.iter().find(|(k, _)| k == "goulette-mirror-file").map(|(_, v)| v.clone());
        assert!(file.is_some_and(|f| f.starts_with(b"part-")), "{:?}", record.headers);
        *seen.entry(String::from_utf8(record.value.to_vec()).unwrap()).or_default() += 1;
    }
    for n in 0..FILES {
        for l in 0..LINES {
            assert!(seen.contains_key(&format!("file{n}-line{l}")), "file{n}-line{l} never arrived");
        }
    }
    assert_eq!(seen.len(), FILES * LINES, "records that were never written");
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "at the kill: {finished_at_kill} files finished, acknowledged {acked_at_kill:?}; {duplicates} duplicate lines after the restart"
    );
    // A line the checkpoint had acknowledged at the kill came once: the
    // restart resumed each file where the target had acknowledged it (and a
    // file finished then was not sent again).
    for n in 0..FILES {
        let name = format!("part-{n:02}.log");
        let acked = acked_at_kill.get(&name).copied();
        let mut offset = 0u64;
        for l in 0..LINES {
            let line = format!("file{n}-line{l}");
            let once = match acked {
                Some(acked) => offset < acked,
                // Not in the checkpoint: finished before the kill, or not taken yet.
                None => true,
            };
            assert!(
                !once || seen[&line] == 1,
                "{line} came {} times (acknowledged before the kill: {acked:?})",
                seen[&line]
            );
            offset += line.len() as u64 + 1;
        }
    }
    assert!(duplicates < FILES * LINES / 2, "{duplicates} duplicates: more than was in flight");

    // SIGTERM: a clean stop.
    let status = mirror.terminate().expect("the mirror did not stop within 20 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_record_larger_than_the_cluster_takes_it_should_go_to_the_dead_letters_or_stop_the_source() {
    let env = Env::start(1, &["--max-batch-bytes", "1048576"]).await;
    let work = tempfile::tempdir().unwrap();
    let sentinels = env.sentinel.address.to_string();
    let line = |n: usize| format!("line{n}\n");
    let huge = "x".repeat(2 << 20);
    let text = format!("{}{huge}\n{}", line(0), line(2));

    // With a dead-letter topic: the huge line goes there, without its
    // value and with the reason; the others go on; the file finishes.
    let (dir, state) = (work.path().join("a"), work.path().join("a-state"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = work.path().join("a.toml");
    let text_a = config_text(&sentinels, &dir, &state, free_port())
        .replace("[http]", "dead-letter-topic = \"letters\"\n\n[http]");
    std::fs::write(&config, text_a).unwrap();
    std::fs::write(dir.join("big.log"), &text).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("a.log"));
    wait_finished(&dir, 1, Duration::from_secs(60), &work.path().join("a.log")).await;
    let values = |records: &[goulette_client::ConsumedRecord]| -> Vec<String> {
        // Sorted: the topic has several partitions.
        let mut values: Vec<String> = records.iter().map(|r| String::from_utf8_lossy(&r.value).into_owned()).collect();
        values.sort();
        values
    };
    let written = common::consume_all(env.cluster(), "drops", 2).await;
    assert_eq!(values(&written), ["line0", "line2"]);
    let letters = common::consume_all(env.cluster(), "letters", 1).await;
    let letter = &letters[0];
    assert!(letter.value.is_empty(), "the dead letter kept a value too large for the topic");
    let header = |name: &str| {
        letter.headers.iter().find(|(k, _)| k == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("goulette-mirror-topic").as_deref(), Some("drops"));
    assert!(header("goulette-mirror-error").is_some_and(|e| !e.is_empty()), "{:?}", letter.headers);
    assert_eq!(header("goulette-mirror-file").as_deref(), Some("big.log"));
    mirror.terminate();

    // A line over max-record-bytes is not even read into memory: a dead
    // letter says where it is, and the lines around it go on.
    let (dir, state) = (work.path().join("c"), work.path().join("c-state"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = work.path().join("c.toml");
    let text_c = config_text(&sentinels, &dir, &state, free_port())
        .replace("[http]", "dead-letter-topic = \"letters-c\"\n\n[http]")
        .replace("topic = \"drops\"", "topic = \"drops-c\"\nmax-record-bytes = 1024");
    std::fs::write(&config, text_c).unwrap();
    std::fs::write(dir.join("long.log"), format!("{}{}\n{}", line(0), "y".repeat(3000), line(2))).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("c.log"));
    wait_finished(&dir, 1, Duration::from_secs(60), &work.path().join("c.log")).await;
    assert_eq!(values(&common::consume_all(env.cluster(), "drops-c", 2).await), ["line0", "line2"]);
    let letter = &common::consume_all(env.cluster(), "letters-c", 1).await[0];
    let error = letter
        .headers
        .iter()
        .find(|(k, _)| k == "goulette-mirror-error")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    assert!(
        error.as_deref().is_some_and(|e| e.contains("line of 3001 bytes") && e.contains("max-record-bytes")),
        "{error:?}"
    );
    assert!(letter.value.is_empty());
    mirror.terminate();

    // Without one: the source stops, says why, and the file stays (nothing
    // after the refused record is acknowledged).
    let (dir, state) = (work.path().join("b"), work.path().join("b-state"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = work.path().join("b.toml");
    let http = free_port();
    std::fs::write(
        &config,
        config_text(&sentinels, &dir, &state, http).replace("topic = \"drops\"", "topic = \"drops-b\""),
    )
    .unwrap();
    std::fs::write(dir.join("big.log"), &text).unwrap();
    let mut mirror = Mirror::start(&config, &work.path().join("b.log"));
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = mirror.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "the mirror went on past a record it cannot write");
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert!(!status.success());
    let log = std::fs::read_to_string(work.path().join("b.log")).unwrap();
    assert!(log.contains("no dead-letter topic is set"), "{log}");
    assert_eq!(finished(&dir), 0, "a file with a record never written was finished");
    assert!(dir.join("big.log").exists());
}

#[test]
fn given_a_bad_config_the_mirror_should_refuse_it_naming_the_key() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("mirror.toml");
    let text = config_text("127.0.0.1:1", &work.path().join("in"), &work.path().join("state"), free_port())
        .replace("poll-interval", "poll-intervall");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_goulette-mirror")).arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("poll-intervall") && stderr.contains("mirror.toml"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_target_down_a_sigterm_should_stop_the_mirror_soon_and_lose_nothing() {
    let mut env = Env::start(1, &[]).await;
    env.create_topic("drops", 1, 1).await;
    let work = tempfile::tempdir().unwrap();
    let (dir, state) = (work.path().join("in"), work.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = work.path().join("mirror.toml");
    std::fs::write(&config, config_text(&env.sentinel.address.to_string(), &dir, &state, free_port())).unwrap();
    let log = work.path().join("mirror.log");
    let mut mirror = Mirror::start(&config, &log);
    drop_file(&dir, 0);
    wait_finished(&dir, 1, Duration::from_secs(60), &log).await;

    // The target goes down; a file comes; its writes fail and are retried.
    env.brokers[0].kill();
    drop_file(&dir, 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = Instant::now();
    let status = mirror.terminate().expect("the mirror did not stop within 20 s of SIGTERM");
    let took = asked.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status:?}: {text}");
    assert!(took < Duration::from_secs(15), "the stop took {took:?}: {text}");
    assert_eq!(finished(&dir), 1, "a file was moved without being written");

    // Back up: the file is sent on the next run, every line of both.
    env.brokers[0].restart();
    env.wait_brokers_up().await;
    mirror.spawn();
    wait_finished(&dir, 2, Duration::from_secs(90), &log).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let config = ConsumerConfig { start: StartAt::Beginning, ..ConsumerConfig::default() };
    let mut consumer = Consumer::subscribe(env.cluster(), "drops", config).await.unwrap();
    while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        *seen.entry(String::from_utf8(record.unwrap().value.to_vec()).unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), 2 * LINES, "lines missing");
    assert!(mirror.terminate().is_some_and(|s| s.success()));
}
