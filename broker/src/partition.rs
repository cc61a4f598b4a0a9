//! The partitions this broker holds: their logs, their state as the
//! sentinels last described it, and their high watermark.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use goulette_proto::v1 as pb;
use goulette_storage::{FlushPolicy, LogConfig, PartitionLog};
use tokio::sync::watch;

/// One partition replica on this broker.
#[derive(Debug)]
pub struct Replica {
    pub topic: String,
    pub partition: u32,
    pub log: Arc<PartitionLog>,
    state: RwLock<pb::PartitionState>,
    /// Offsets below this are visible to consumers: durable under the flush
    /// policy (and, with replication, on every in-sync replica).
    high_watermark: watch::Sender<u64>,
    broker_id: u32,
    /// The topic incarnation this replica's data belongs to.
    incarnation: u64,
}

impl Replica {
    /// The state the sentinels last sent.
    pub fn state(&self) -> pb::PartitionState {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        self.state.read().unwrap_or_else(|p| p.into_inner()).leader == Some(self.broker_id)
    }

    /// The leader epoch stamped on appended batches.
    pub fn leader_epoch(&self) -> u32 {
        // Epochs start at 1 and grow by one per leadership change.
        self.state.read().unwrap_or_else(|p| p.into_inner()).leader_epoch as u32
    }

    /// The current high watermark.
    pub fn high_watermark(&self) -> u64 {
        *self.high_watermark.borrow()
    }

    /// Follows the high watermark.
    pub fn watch_high_watermark(&self) -> watch::Receiver<u64> {
        self.high_watermark.subscribe()
    }

    /// Wakes everything waiting on the high watermark (fetch streams), so
    /// that they re-check leadership after a state change or a removal.
    fn notify(&self) {
        self.high_watermark.send_modify(|_| {});
    }

    /// Moves the high watermark up to what the flush policy makes visible:
    /// the durable offset under `always`, the log end otherwise.
    pub fn advance_high_watermark(&self) {
        let visible = match self.log.config().flush {
            FlushPolicy::Always => self.log.durable_offset(),
            _ => self.log.log_end_offset(),
        };
        self.high_watermark.send_if_modified(|hw| {
            let moved = visible > *hw;
            *hw = (*hw).max(visible);
            moved
        });
    }
}

/// Every replica on this broker, and the addresses of the other brokers.
#[derive(Debug)]
pub struct Partitions {
    broker_id: u32,
    data_dir: PathBuf,
    defaults: LogConfig,
    replicas: RwLock<HashMap<(String, u32), Arc<Replica>>>,
    brokers: RwLock<HashMap<u32, String>>,
    /// True once the first assignment snapshot has been applied.
    ready: watch::Sender<bool>,
}

impl Partitions {
    /// An empty registry storing logs under `data_dir`.
    pub fn new(broker_id: u32, data_dir: PathBuf, defaults: LogConfig) -> Partitions {
        Partitions {
            broker_id,
            data_dir,
            defaults,
            replicas: RwLock::new(HashMap::new()),
            brokers: RwLock::new(HashMap::new()),
            ready: watch::Sender::new(false),
        }
    }

    /// The replica of `topic/partition`, if this broker holds it.
    pub fn get(&self, topic: &str, partition: u32) -> Option<Arc<Replica>> {
        self.replicas.read().unwrap_or_else(|p| p.into_inner()).get(&(topic.to_owned(), partition)).cloned()
    }

    /// Every replica held.
    pub fn all(&self) -> Vec<Arc<Replica>> {
        self.replicas.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// The address of broker `id`, if known.
    pub fn broker_address(&self, id: u32) -> Option<String> {
        self.brokers.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Follows whether the first assignment snapshot has been applied.
    pub fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    fn dir_of(&self, topic: &str, partition: u32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// `<data>/<topic>-<partition>.incarnation`: which incarnation of the
    /// topic the partition directory holds.
    fn marker_of(&self, topic: &str, partition: u32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}.incarnation"))
    }

    fn log_config(&self, topic: Option<&pb::TopicConfig>) -> LogConfig {
        let mut config = self.defaults.clone();
        if let Some(t) = topic {
            if t.retention_ms > 0 {
                config.retention_age = Some(Duration::from_millis(t.retention_ms));
            }
            if t.retention_bytes > 0 {
                config.retention_bytes = Some(t.retention_bytes);
            }
        }
        config
    }

    /// Applies an update from the sentinels: opens (recovering) the logs of
    /// new assignments, updates states, and closes and deletes replicas no
    /// longer assigned here. A log that fails to open is skipped and logged:
    /// the partition stays unavailable on this broker.
    pub async fn apply(&self, update: pb::AssignmentUpdate) {
        {
            let mut brokers = self.brokers.write().unwrap_or_else(|p| p.into_inner());
            brokers.clear();
            brokers.extend(update.brokers.iter().filter(|b| !b.address.is_empty()).map(|b| (b.id, b.address.clone())));
        }
        let mut keep = Vec::new();
        for assignment in update.assignments {
            let Some(state) = assignment.state else { continue };
            let key = (state.topic.clone(), state.partition);
            keep.push(key.clone());
            let incarnation = assignment.topic_incarnation;
            if let Some(replica) = self.get(&state.topic, state.partition) {
                if replica.incarnation == incarnation {
                    {
                        let mut current = replica.state.write().unwrap_or_else(|p| p.into_inner());
                        // A lagging sentinel must not hand back an older leadership.
                        if state.leader_epoch >= current.leader_epoch {
                            *current = state;
                        }
                    }
                    replica.notify();
                    continue;
                }
                // The topic was deleted and created again: the old data goes.
                self.remove(&state.topic, state.partition, true).await;
            }
            self.open(state, assignment.topic.as_ref(), incarnation, key).await;
        }
        // A snapshot that omits an open replica closes it but keeps its data:
        // only an explicit removal deletes data, so a sentinel with an empty
        // or wrong view can never wipe a broker.
        if update.snapshot {
            let stale: Vec<(String, u32)> = {
                let replicas = self.replicas.read().unwrap_or_else(|p| p.into_inner());
                replicas.keys().filter(|k| !keep.contains(k)).cloned().collect()
            };
            for (topic, partition) in stale {
                self.remove(&topic, partition, false).await;
            }
        }
        for state in &update.removed {
            self.remove(&state.topic, state.partition, true).await;
        }
        if update.snapshot {
            self.ready.send_replace(true);
        }
    }

    /// Opens (recovering) a newly assigned replica. Data left by an earlier
    /// incarnation of the topic is deleted first.
    async fn open(
        &self,
        state: pb::PartitionState,
        topic: Option<&pb::TopicConfig>,
        incarnation: u64,
        key: (String, u32),
    ) {
        let dir = self.dir_of(&state.topic, state.partition);
        let marker = self.marker_of(&state.topic, state.partition);
        let config = self.log_config(topic);
        let opened = tokio::task::spawn_blocking(move || -> anyhow::Result<PartitionLog> {
            let recorded = std::fs::read_to_string(&marker).ok().and_then(|s| s.trim().parse::<u64>().ok());
            if recorded.is_some_and(|r| r != incarnation) && dir.exists() {
                tracing::warn!(dir = %dir.display(), "deleting data of an earlier incarnation of the topic");
                std::fs::remove_dir_all(&dir)?;
            }
            if recorded != Some(incarnation) {
                write_durably(&marker, incarnation.to_string().as_bytes())?;
            }
            Ok(PartitionLog::open(dir, config)?)
        })
        .await;
        match opened {
            Ok(Ok(log)) => {
                let end = log.log_end_offset();
                tracing::info!(topic = %state.topic, partition = state.partition, log_end = end, leader = ?state.leader, "opened partition");
                let replica = Arc::new(Replica {
                    topic: state.topic.clone(),
                    partition: state.partition,
                    log: Arc::new(log),
                    state: RwLock::new(state),
                    // Recovery fsyncs the WAL: everything recovered is durable.
                    high_watermark: watch::Sender::new(end),
                    broker_id: self.broker_id,
                    incarnation,
                });
                self.replicas.write().unwrap_or_else(|p| p.into_inner()).insert(key, replica);
            }
            Ok(Err(e)) => {
                tracing::error!(topic = %state.topic, partition = state.partition, error = %e, "cannot open partition log")
            }
            Err(e) => tracing::error!(error = %e, "partition open task failed"),
        }
    }

    /// Closes a replica that is no longer assigned here, deleting its data
    /// when `delete_data`.
    async fn remove(&self, topic: &str, partition: u32, delete_data: bool) {
        let Some(replica) =
            self.replicas.write().unwrap_or_else(|p| p.into_inner()).remove(&(topic.to_owned(), partition))
        else {
            return;
        };
        replica.notify();
        let dir = replica.log.dir().to_path_buf();
        let marker = self.marker_of(topic, partition);
        let result = tokio::task::spawn_blocking(move || {
            let _ = replica.log.close();
            if delete_data {
                std::fs::remove_dir_all(&dir)?;
                let _ = std::fs::remove_file(&marker);
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        match result {
            Ok(Ok(())) if delete_data => tracing::info!(topic, partition, "partition unassigned; data deleted"),
            Ok(Ok(())) => {
                tracing::warn!(topic, partition, "partition missing from the assignment snapshot; closed, data kept")
            }
            Ok(Err(e)) => {
                tracing::warn!(topic, partition, error = %e, "partition unassigned; deleting its data failed")
            }
            Err(e) => tracing::warn!(error = %e, "partition removal task failed"),
        }
    }

    /// Periodic log housekeeping (see `PartitionLog::maintain`), then moves
    /// high watermarks (an interval flush may have made more data durable).
    pub fn maintain(&self) {
        let now = goulette_storage::now_ms();
        for replica in self.all() {
            if let Err(e) = replica.log.maintain(now, Duration::from_secs(60)) {
                tracing::warn!(topic = %replica.topic, partition = replica.partition, error = %e, "log maintenance failed");
            }
            replica.advance_high_watermark();
        }
    }

    /// Flushes and closes every log (graceful shutdown).
    pub fn close_all(&self) {
        for replica in self.all() {
            if let Err(e) = replica.log.close() {
                tracing::warn!(topic = %replica.topic, partition = replica.partition, error = %e, "closing log failed");
            }
        }
    }
}

/// Writes a small file atomically and durably (tmp, fsync, rename, fsync dir).
fn write_durably(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
