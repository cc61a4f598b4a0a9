//! A full disk never loses or blocks acknowledged writes for good: a leader
//! whose disk fills fails its replica (a typed, retriable error to clients,
//! logged once), hands the leadership to a replica that can write, and
//! recovers by itself once space returns.
//!
//! Each broker's data directory is a small tmpfs of its own (the test runs
//! as root, as CI does: mounting needs it).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Env, consume_all, produce_acked};
use goulette_client::Admin;
use goulette_sentinel::testkit::BrokerProcess;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs (the disk-full tests need root, as CI has)");
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the file system of `dir` until `leave` bytes are free; returns the filler.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let filler = dir.join("filler");
    let free = goulette_storage::free_bytes(dir).unwrap();
    let file = std::fs::File::create(&filler).unwrap();
    std::io::Write::write_all(&mut &file, &vec![0xee; free.saturating_sub(leave) as usize]).unwrap();
    file.sync_all().unwrap();
    filler
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_leaders_disk_full_writes_should_move_to_a_replica_that_can_write_and_it_should_recover() {
    let disks: Vec<Tmpfs> = (0..3).map(|_| Tmpfs::mount(48)).collect();
    let mut env = Env::start(0, &[]).await;
    let sentinels = env.sentinel.address.to_string();
    for (i, disk) in disks.iter().enumerate() {
        let data = disk.path().join("data");
        let args = [
            "--data",
            data.to_str().unwrap(),
            "--fragment-bytes",
            "1048576",
            "--max-batch-bytes",
            "524288",
            "--replica-lag-max",
            "5s",
        ];
        env.brokers.push(BrokerProcess::start(i as u32 + 1, &sentinels, &args));
    }
    env.wait_brokers_up().await;
    env.create_topic("full", 1, 3).await;
    env.wait_serving("full").await;
    let admin = Admin::new(env.cluster());
    let wait = |what: &'static str, check: Box<dyn Fn(&goulette_client::admin::PartitionReport) -> bool>| {
        let admin = &admin;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let p = admin.describe_topic("full").await.unwrap().partition_details[0].clone();
                if check(&p) {
                    return p;
                }
                assert!(tokio::time::Instant::now() < deadline, "never: {what}; last {p:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let leader = wait("a full ISR", Box::new(|p| p.isr.len() == 3)).await.leader.unwrap();

    // The leader's disk fills up (3 MiB left); 10 MB of acks=all writes follow.
    let filler = fill(disks[leader as usize - 1].path(), 3 << 20);
    let values: Vec<String> = (0..10_000).map(|i| format!("{i:01000}")).collect();
    produce_acked(env.cluster(), "full", values.clone()).await;
    let moved = wait("another leader", Box::new(move |p| p.leader.is_some_and(|l| l != leader))).await;
    assert_ne!(moved.leader, Some(leader));
    let log = env.brokers[leader as usize - 1].log();
    let failures = log.lines().filter(|l| l.contains("replica failed")).count();
    assert!((1..=2).contains(&failures), "a disk failure is logged once per state change, not per write: {failures}");

    // Space returns: the replica opens again, catches up and rejoins.
    std::fs::remove_file(filler).unwrap();
    wait("the recovered replica back in the ISR", Box::new(move |p| p.isr.contains(&leader))).await;
    let got = consume_all(env.cluster(), "full", values.len()).await;
    assert!(got.iter().zip(&values).all(|(r, v)| r.value == v.as_bytes()));
    produce_acked(env.cluster(), "full", ["after".to_owned()]).await;
    drop(env);
}
