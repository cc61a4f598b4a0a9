//! The nemesis: a seeded schedule of faults against brokers and sentinels.
//!
//! Faults come one at a time, so at most one replica of a partition is down
//! or paused at once (a minority of RF=3), except in the rounds that kill
//! every replica of a partition and restart them. Some rounds decommission
//! a broker and recommission it a few seconds later, so replicas move away
//! and back while the other faults go on. Between faults the cluster gets a
//! quiet moment. The seed fixes the schedule (which fault, which process,
//! how long); process timing still varies between runs.

use std::time::{Duration, Instant};

use goulette_client::Admin;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::ChaosCluster;

/// What the nemesis did, in order.
pub type Journal = Vec<String>;

/// Runs faults against `topic`'s cluster until `until`, then heals
/// everything (every fault is undone before the next). Runs on a thread
/// outside the runtime; `runtime` serves the admin calls.
pub fn run(
    cluster: &mut ChaosCluster,
    seed: u64,
    until: Instant,
    topic: &str,
    runtime: &tokio::runtime::Handle,
) -> Journal {
    let admin = Admin::new(cluster.client());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut journal = Journal::new();
    let started = Instant::now();
    while Instant::now() < until {
        let hold = |rng: &mut StdRng, min_ms: u64, max_ms: u64| {
            let want = Duration::from_millis(rng.random_range(min_ms..=max_ms));
            want.min(until.saturating_duration_since(Instant::now()))
        };
        let at = started.elapsed().as_secs_f64();
        let dice = rng.random_range(0..100);
        match dice {
            0..30 => {
                let b = rng.random_range(0..cluster.brokers.len());
                let down = hold(&mut rng, 500, 4000);
                journal.push(format!("{at:6.1}s kill -9 broker {} for {down:?}", b + 1));
                cluster.brokers[b].kill();
                std::thread::sleep(down);
                cluster.brokers[b].restart();
            }
            30..48 => {
                let b = rng.random_range(0..cluster.brokers.len());
                let paused = hold(&mut rng, 300, 5000);
                journal.push(format!("{at:6.1}s SIGSTOP broker {} for {paused:?}", b + 1));
                cluster.brokers[b].pause();
                std::thread::sleep(paused);
                cluster.brokers[b].resume();
            }
            48..56 => {
                let b = rng.random_range(0..cluster.brokers.len());
                journal.push(format!("{at:6.1}s SIGTERM broker {} and restart", b + 1));
                cluster.brokers[b].stop();
                cluster.brokers[b].restart();
            }
            56..70 => {
                let s = rng.random_range(0..cluster.sentinels.len());
                let down = hold(&mut rng, 500, 4000);
                journal.push(format!("{at:6.1}s kill -9 sentinel {} for {down:?}", s + 1));
                cluster.sentinels[s].kill();
                std::thread::sleep(down);
                cluster.sentinels[s].restart();
            }
            70..84 => {
                let s = rng.random_range(0..cluster.sentinels.len());
                let paused = hold(&mut rng, 500, 5000);
                journal.push(format!("{at:6.1}s SIGSTOP sentinel {} for {paused:?}", s + 1));
                cluster.sentinels[s].pause();
                std::thread::sleep(paused);
                cluster.sentinels[s].resume();
            }
            84..92 => {
                let b = rng.random_range(1..=cluster.brokers.len() as u32);
                let held = hold(&mut rng, 3000, 8000);
                match runtime.block_on(admin.decommission_broker(b, false)) {
                    Ok(()) => {
                        journal.push(format!("{at:6.1}s decommission broker {b} for {held:?}"));
                        std::thread::sleep(held);
                        // A sentinel fault may be healing: try until it is accepted.
                        let back = Instant::now() + Duration::from_secs(30);
                        while let Err(e) = runtime.block_on(admin.decommission_broker(b, true)) {
                            assert!(Instant::now() < back, "recommissioning broker {b} failed: {e}");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                    Err(e) => journal.push(format!("{at:6.1}s decommission broker {b} refused: {e}")),
                }
            }
            _ => {
                let pick = rng.random_range(0..u32::MAX);
                let down = hold(&mut rng, 500, 3000);
                match runtime.block_on(admin.describe_topic(topic)) {
                    Ok(d) => {
                        let p = pick as usize % d.partition_details.len();
                        let set = &d.partition_details[p].replicas;
                        journal.push(format!("{at:6.1}s kill -9 every replica of partition {p} {set:?} for {down:?}"));
                        for b in set {
                            cluster.brokers[*b as usize - 1].kill();
                        }
                        std::thread::sleep(down);
                        for b in set {
                            cluster.brokers[*b as usize - 1].restart();
                        }
                    }
                    Err(e) => journal.push(format!("{at:6.1}s describe failed ({e}); no kill-all round")),
                }
            }
        }
        std::thread::sleep(hold(&mut rng, 1000, 4000));
    }
    journal.push(format!("{:6.1}s heal", started.elapsed().as_secs_f64()));
    journal
}
