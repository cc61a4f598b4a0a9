//! The nemesis: a seeded schedule of faults against brokers and sentinels.
//!
//! Faults come one at a time, so at most one replica of a partition is down
//! or paused at once (a minority of RF=3), except in the rounds that kill
//! every replica of a partition and restart them. Some rounds decommission
//! a broker and recommission it a few seconds later, so replicas move away
//! and back while the other faults go on. Between faults the cluster gets a
//! quiet moment. The seed fixes the plan (which fault, which process, how
//! long); process timing still varies between runs.

use std::time::{Duration, Instant};

use goulette_client::Admin;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::{BROKERS, ChaosCluster, SENTINELS};

/// What the nemesis did, in order.
pub type Journal = Vec<String>;

/// One fault and how long it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillBroker {
        broker: u32,
        down: Duration,
    },
    PauseBroker {
        broker: u32,
        paused: Duration,
    },
    /// SIGTERM (graceful) and start again at once.
    RestartBroker {
        broker: u32,
    },
    KillSentinel {
        sentinel: usize,
        down: Duration,
    },
    PauseSentinel {
        sentinel: usize,
        paused: Duration,
    },
    /// Decommission, then recommission after `held`.
    Decommission {
        broker: u32,
        held: Duration,
    },
    /// Kill -9 every replica of one partition (`pick` modulo the partitions).
    KillReplicas {
        pick: u32,
        down: Duration,
    },
    /// Fill a broker's data disk (1 MiB left) for `held`, then free it.
    DiskFull {
        broker: u32,
        held: Duration,
    },
    /// Step a broker's wall clock by `minutes` for `held`, then back.
    ClockStep {
        broker: u32,
        minutes: i64,
        held: Duration,
    },
}

/// The endless plan of `seed`: each fault with the quiet time after it.
pub fn plan(seed: u64) -> impl Iterator<Item = (Fault, Duration)> {
    let mut rng = StdRng::seed_from_u64(seed);
    std::iter::from_fn(move || {
        let ms = |rng: &mut StdRng, min: u64, max: u64| Duration::from_millis(rng.random_range(min..=max));
        let broker = |rng: &mut StdRng| rng.random_range(1..=BROKERS);
        let sentinel = |rng: &mut StdRng| rng.random_range(0..SENTINELS);
        let fault = match rng.random_range(0..100) {
            0..30 => Fault::KillBroker { broker: broker(&mut rng), down: ms(&mut rng, 500, 4000) },
            30..48 => Fault::PauseBroker { broker: broker(&mut rng), paused: ms(&mut rng, 300, 5000) },
            48..56 => Fault::RestartBroker { broker: broker(&mut rng) },
            56..70 => Fault::KillSentinel { sentinel: sentinel(&mut rng), down: ms(&mut rng, 500, 4000) },
            70..84 => Fault::PauseSentinel { sentinel: sentinel(&mut rng), paused: ms(&mut rng, 500, 5000) },
            84..89 => Fault::Decommission { broker: broker(&mut rng), held: ms(&mut rng, 3000, 8000) },
            89..93 => Fault::KillReplicas { pick: rng.random(), down: ms(&mut rng, 500, 3000) },
            93..97 => Fault::DiskFull { broker: broker(&mut rng), held: ms(&mut rng, 1000, 5000) },
            // Forward by up to a day, back by up to 30 min (further back,
            // producers' timestamps would pass --max-timestamp-ahead).
            _ => {
                let minutes = [24 * 60, 60, 5, -5, -30][rng.random_range(0..5)];
                Fault::ClockStep { broker: broker(&mut rng), minutes, held: ms(&mut rng, 2000, 8000) }
            }
        };
        Some((fault, ms(&mut rng, 1000, 4000)))
    })
}

/// Runs `seed`'s plan against `topic`'s cluster until `until`; every fault
/// is undone before the next, so the cluster is whole at the end. Runs on
/// a thread outside the runtime; `runtime` serves the admin calls.
pub fn run(
    cluster: &mut ChaosCluster,
    seed: u64,
    until: Instant,
    topic: &str,
    runtime: &tokio::runtime::Handle,
) -> Journal {
    let admin = Admin::new(cluster.client());
    let mut journal = Journal::new();
    let started = Instant::now();
    // No fault outlasts the run.
    let capped = |d: Duration| d.min(until.saturating_duration_since(Instant::now()));
    for (fault, quiet) in plan(seed) {
        if Instant::now() >= until {
            break;
        }
        let at = started.elapsed().as_secs_f64();
        let broker = |id: u32| id as usize - 1;
        match fault {
            Fault::KillBroker { broker: b, down } => {
                journal.push(format!("{at:6.1}s kill -9 broker {b} for {:?}", capped(down)));
                cluster.brokers[broker(b)].kill();
                std::thread::sleep(capped(down));
                cluster.brokers[broker(b)].restart();
            }
            Fault::PauseBroker { broker: b, paused } => {
                journal.push(format!("{at:6.1}s SIGSTOP broker {b} for {:?}", capped(paused)));
                cluster.brokers[broker(b)].pause();
                std::thread::sleep(capped(paused));
                cluster.brokers[broker(b)].resume();
            }
            Fault::RestartBroker { broker: b } => {
                journal.push(format!("{at:6.1}s SIGTERM broker {b} and restart"));
                cluster.brokers[broker(b)].stop();
                cluster.brokers[broker(b)].restart();
            }
            Fault::KillSentinel { sentinel: s, down } => {
                journal.push(format!("{at:6.1}s kill -9 sentinel {} for {:?}", s + 1, capped(down)));
                cluster.sentinels[s].kill();
                std::thread::sleep(capped(down));
                cluster.sentinels[s].restart();
            }
            Fault::PauseSentinel { sentinel: s, paused } => {
                journal.push(format!("{at:6.1}s SIGSTOP sentinel {} for {:?}", s + 1, capped(paused)));
                cluster.sentinels[s].pause();
                std::thread::sleep(capped(paused));
                cluster.sentinels[s].resume();
            }
            Fault::Decommission { broker: b, held } => match runtime.block_on(admin.decommission_broker(b, false)) {
                Ok(()) => {
                    journal.push(format!("{at:6.1}s decommission broker {b} for {:?}", capped(held)));
                    std::thread::sleep(capped(held));
                    // A sentinel fault may be healing: try until it is accepted.
                    let back = Instant::now() + Duration::from_secs(30);
                    while let Err(e) = runtime.block_on(admin.decommission_broker(b, true)) {
                        assert!(Instant::now() < back, "recommissioning broker {b} failed: {e}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
                Err(e) => journal.push(format!("{at:6.1}s decommission broker {b} refused: {e}")),
            },
            Fault::DiskFull { broker: b, held } => {
                let disk = cluster.disks[broker(b)].path().to_path_buf();
                journal.push(format!("{at:6.1}s fill broker {b}'s disk for {:?}", capped(held)));
                let filler = disk.join("filler");
                let free = goulette_storage::free_bytes(&disk).unwrap_or(0);
                let filled = std::fs::File::create(&filler).and_then(|f| {
                    std::io::Write::write_all(&mut &f, &vec![0u8; free.saturating_sub(1 << 20) as usize])
                });
                if let Err(e) = filled {
                    journal.push(format!("{at:6.1}s filling broker {b}'s disk stopped early: {e}"));
                }
                std::thread::sleep(capped(held));
                let _ = std::fs::remove_file(&filler);
            }
            Fault::ClockStep { broker: b, minutes, held } => {
                journal.push(format!("{at:6.1}s step broker {b}'s clock by {minutes:+} min for {:?}", capped(held)));
                let clock = cluster.clocks[broker(b)].path().to_path_buf();
                let _ = std::fs::write(&clock, format!("{minutes:+}m"));
                std::thread::sleep(capped(held));
                let _ = std::fs::write(&clock, "+0");
            }
            Fault::KillReplicas { pick, down } => match runtime.block_on(admin.describe_topic(topic)) {
                Ok(d) => {
                    let p = pick as usize % d.partition_details.len();
                    let set = &d.partition_details[p].replicas;
                    journal.push(format!("{at:6.1}s kill -9 every replica of partition {p} {set:?} for {down:?}"));
                    for b in set {
                        cluster.brokers[broker(*b)].kill();
                    }
                    std::thread::sleep(capped(down));
                    for b in set {
                        cluster.brokers[broker(*b)].restart();
                    }
                }
                Err(e) => journal.push(format!("{at:6.1}s describe failed ({e}); no kill-all round")),
            },
        }
        std::thread::sleep(capped(quiet));
    }
    journal.push(format!("{:6.1}s heal", started.elapsed().as_secs_f64()));
    journal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_plan_and_every_kind_of_fault_comes_up() {
        let first: Vec<_> = plan(7).take(200).collect();
        assert_eq!(first, plan(7).take(200).collect::<Vec<_>>());
        let kinds: std::collections::BTreeSet<_> =
            first.iter().map(|(f, _)| std::mem::discriminant(f)).map(|d| format!("{d:?}")).collect();
        assert_eq!(kinds.len(), 9, "{first:?}");
    }

    /// The short run of `make test` (45 s) includes a decommission, a
    /// kill-all round, a full disk and a clock step early (its first five
    /// faults take about 32 s).
    #[test]
    fn the_make_test_seed_moves_replicas_kills_a_whole_partition_fills_a_disk_and_steps_a_clock_early() {
        let early: Vec<Fault> = plan(crate::SHORT_SEED).take(5).map(|(f, _)| f).collect();
        assert!(early.iter().any(|f| matches!(f, Fault::Decommission { .. })), "{early:?}");
        assert!(early.iter().any(|f| matches!(f, Fault::KillReplicas { .. })), "{early:?}");
        assert!(early.iter().any(|f| matches!(f, Fault::DiskFull { .. })), "{early:?}");
        assert!(early.iter().any(|f| matches!(f, Fault::ClockStep { .. })), "{early:?}");
    }
}
