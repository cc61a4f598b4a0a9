//! Starts and stops the follower tasks: one per replica this broker
//! follows, started when a state names another broker as leader, cancelled
//! when it no longer does, when the replica closes, or when the broker
//! stops following altogether (a controlled shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::peers::Peers;
use crate::replica::Replica;

/// The running follower tasks, by partition.
#[derive(Debug)]
pub struct Supervisor {
    tasks: Mutex<HashMap<(String, u32), CancellationToken>>,
    peers: Arc<Peers>,
    /// Parent of every task's token.
    shutdown: CancellationToken,
    /// Stopping: no replica is followed any more (see `stop_all`).
    draining: AtomicBool,
}

impl Supervisor {
    /// No tasks yet; they find leaders in `peers` and end with `shutdown`.
    pub fn new(peers: Arc<Peers>, shutdown: CancellationToken) -> Supervisor {
        Supervisor { tasks: Mutex::new(HashMap::new()), peers, shutdown, draining: AtomicBool::new(false) }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u32), CancellationToken>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (or stops) replicating `replica` from its leader, as its state says.
    pub fn follow(&self, replica: &Arc<Replica>) {
        let key = (replica.topic.clone(), replica.partition);
        let mut tasks = self.tasks();
        let following = replica.state().leader.is_some_and(|l| l != replica.broker_id) && !self.is_draining();
        match (following, tasks.get(&key)) {
            (true, Some(running)) if !running.is_cancelled() => {}
            (true, _) => {
                let token = self.shutdown.child_token();
                tasks.insert(key, token.clone());
                tokio::spawn(crate::follower::follow(self.peers.clone(), replica.clone(), token));
            }
            (false, Some(running)) => {
                running.cancel();
                tasks.remove(&key);
            }
            (false, None) => {}
        }
    }

    /// Stops following `topic/partition` (its replica is closing).
    pub fn stop(&self, topic: &str, partition: u32) {
        if let Some(task) = self.tasks().remove(&(topic.to_owned(), partition)) {
            task.cancel();
        }
    }

    /// Stops every follower task and starts none again: a stopping broker
    /// leaves the ISRs (a follower with no open fetch stream never rejoins).
    pub fn stop_all(&self) {
        self.draining.store(true, Ordering::Release);
        for (_, task) in self.tasks().drain() {
            task.cancel();
        }
    }

    /// Whether [`Supervisor::stop_all`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}
