//! The nemesis: a seeded schedule of faults against brokers and sentinels.
//!
//! Faults come one at a time, so at most one replica of a partition is down
//! or paused at once (a minority of RF=3), except in the rounds that kill
//! every replica of a partition and restart them. Between faults the
//! cluster gets a quiet moment. The seed fixes the schedule (which fault,
//! which process, how long); process timing still varies between runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::ChaosCluster;

/// What the nemesis did, in order.
pub type Journal = Vec<String>;

/// Runs faults until `until`, then heals everything (resumes paused
/// processes, starts stopped ones). `replicas` are each partition's brokers.
pub fn run(cluster: &mut ChaosCluster, seed: u64, until: Instant, replicas: &BTreeMap<u32, Vec<u32>>) -> Journal {
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
            _ => {
                let p = rng.random_range(0..replicas.len() as u32);
                let down = hold(&mut rng, 500, 3000);
                let set = &replicas[&p];
                journal.push(format!("{at:6.1}s kill -9 every replica of partition {p} {set:?} for {down:?}"));
                for b in set {
                    cluster.brokers[*b as usize - 1].kill();
                }
                std::thread::sleep(down);
                for b in set {
                    cluster.brokers[*b as usize - 1].restart();
                }
            }
        }
        std::thread::sleep(hold(&mut rng, 1000, 4000));
    }
    journal.push(format!("{:6.1}s heal", started.elapsed().as_secs_f64()));
    journal
}
