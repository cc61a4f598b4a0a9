//! Crash test: a child process appends with `flush=always` (and prepares
//! zero-filled WALs beside) and is SIGKILLed at a random moment; after reopening, every batch whose `append` returned
//! is present, intact, in order, and offsets continue without gaps or reuse.
//!
//! Seeded: `GOULETTE_CRASH_SEED=<n>` replays a run, `GOULETTE_CRASH_ROUNDS`
//! changes the number of kills (default 8).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{all_values, batch};
use goulette_storage::{FlushPolicy, LogConfig, PartitionLog};
use rand::{Rng, SeedableRng};

const CHILD_DIR: &str = "GOULETTE_CRASH_CHILD_DIR";
const CHILD_TAG: &str = "GOULETTE_CRASH_CHILD_TAG";

fn config() -> LogConfig {
    // Small fragments, so that kills also land during seals.
    LogConfig {
        fragment_bytes: 64 << 10,
        max_batch_bytes: 16 << 10,
        flush: FlushPolicy::Always,
        retention_age: None,
        ..LogConfig::default()
    }
}

/// The child side: appends from 4 threads until killed, printing one line per
/// acknowledged batch. Runs only when the parent starts it.
#[test]
#[ignore = "run by given_sigkill_during_appends_should_keep_every_acknowledged_batch"]
fn crash_child() {
    let dir = std::env::var(CHILD_DIR).expect("started by the crash test");
    let tag = std::env::var(CHILD_TAG).expect("started by the crash test");
    let log = Arc::new(PartitionLog::open(&dir, config()).expect("child opens the log"));
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (log, out, tag) = (log.clone(), out.clone(), tag.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let name = format!("{tag}t{t}i{i}");
                    let info = log.append(&batch(&name, 1 + i % 3, 0), 0).expect("append");
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ACK {} {} {name}", info.base_offset, info.next_offset).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    // Zero-filled WALs are prepared beside the appends (as the broker's
    // maintenance does), so kills also land in a preparation, a switch to
    // a prepared WAL, and appends into its room.
    {
        let (log, out) = (log.clone(), out.clone());
        std::thread::spawn(move || {
            loop {
                if log.prepare_wal().expect("prepare a WAL") {
                    let mut out = out.lock().unwrap();
                    writeln!(out, "PREPARED").unwrap();
                    out.flush().unwrap();
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn given_sigkill_during_appends_should_keep_every_acknowledged_batch() {
    let seed: u64 = std::env::var("GOULETTE_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let rounds: u64 = std::env::var("GOULETTE_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // offset -> value of every acknowledged record, over all rounds.
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let mut prepared = 0;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_TAG, format!("r{round}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Lines are collected on a thread; the kill is timed from the first
        // acknowledgement, so a slow start on a loaded machine cannot make a
        // round end before the child has done anything.
        let (first_ack, first_ack_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines: Vec<String> = Vec::new();
            let mut acked = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !acked && line.starts_with("ACK ") {
                    acked = true;
                    let _ = first_ack.send(());
                }
                lines.push(line);
            }
            lines
        });
        if first_ack_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("seed {seed} round {round}: the child acknowledged nothing within 60 s");
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(20..500)));
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "seed {seed} round {round}: the child exited by itself ({status}); run crash_child by hand to see why"
            );
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();

        prepared += lines.iter().filter(|l| *l == "PREPARED").count();
        let mut this_round = 0;
        for line in lines.iter().filter(|l| l.starts_with("ACK ")) {
            let parts: Vec<&str> = line.split(' ').collect();
            let (base, next, name): (u64, u64, &str) = (parts[1].parse().unwrap(), parts[2].parse().unwrap(), parts[3]);
            for (i, offset) in (base..next).enumerate() {
                let previous = acked.insert(offset, format!("{name}-{i}"));
                assert!(previous.is_none(), "seed {seed} round {round}: offset {offset} acknowledged twice");
            }
            this_round += 1;
        }
        assert!(this_round > 0, "seed {seed} round {round}: the child acknowledged nothing before the kill");

        let log = PartitionLog::open(dir.path(), config()).unwrap();
        let stored = all_values(&log, 0);
        for (i, (offset, _)) in stored.iter().enumerate() {
            assert_eq!(*offset, i as u64, "seed {seed} round {round}: offsets have a gap");
        }
        for (offset, value) in &acked {
            let found = stored.get(*offset as usize).map(|(_, v)| v);
            assert_eq!(found, Some(value), "seed {seed} round {round}: acknowledged offset {offset} lost or changed");
        }
        assert!(log.log_end_offset() >= acked.keys().next_back().map_or(0, |o| o + 1));
        log.close().unwrap();
    }
    let log = PartitionLog::open(dir.path(), config()).unwrap();
    assert!(log.fragment_count() > 0, "seed {seed}: no seal happened, so no kill can have landed near one");
    assert!(prepared > 0, "seed {seed}: no WAL was prepared, so no kill can have landed near a prepared one");
}
