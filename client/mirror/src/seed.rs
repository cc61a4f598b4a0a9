//! At start, a source with dedup learns what its topic already holds: the
//! last `max-entries` records (shared between its partitions), read up to
//! the end each partition had when the mirror started. So a record written
//! just before a crash, and sent again after it, is recognised.

use std::sync::Arc;
use std::time::{Duration, Instant};

use goulette_client::{ClientError, Cluster, Consumer, ConsumerConfig, StartAt};
use goulette_proto::v1::ErrorCode;

use crate::dedup::Dedup;

/// The seeding gives up (keeping what it read) after this.
const SEED_FOR: Duration = Duration::from_secs(60);

/// Adds the hashes of `topic`'s last records to `dedup`; how many.
pub async fn seed(dedup: &mut Dedup, cluster: Arc<Cluster>, topic: &str) -> Result<usize, ClientError> {
    let info = match cluster.topic(topic, false).await {
        Ok(info) => info,
        Err(ClientError::Server { code: ErrorCode::UnknownTopic, .. }) => return Ok(0),
        Err(e) => return Err(e),
    };
    let partitions = info.partitions.len().max(1);
    let mut ends = std::collections::BTreeMap::new();
    for p in 0..partitions as u32 {
        let offsets = cluster.list_offsets(topic, p, None).await?;
        if offsets.high_watermark > offsets.log_start_offset {
            ends.insert(p, offsets.high_watermark);
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    let per_partition = (dedup.max_entries() / partitions).max(1) as u64;
    let config = ConsumerConfig {
        partitions: Some(ends.keys().copied().collect()),
        start: StartAt::Last(per_partition),
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::subscribe(cluster, topic, config).await?;
    let started = Instant::now();
    let now = Instant::now();
    let mut seeded = 0;
    while !ends.iter().all(|(p, end)| consumer.positions().get(p).is_some_and(|at| at >= end)) {
        if started.elapsed() > SEED_FOR {
            tracing::warn!(topic, seeded, "the dedup seeding took too long; going on with what it read");
            break;
        }
        match tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
            Ok(Some(Ok(r))) => {
                if ends.get(&r.partition).is_some_and(|end| r.offset < *end) {
                    let hash = dedup.hash(topic, r.key.as_deref(), &r.value, &r.headers);
                    dedup.first(hash, now);
                    seeded += 1;
                }
            }
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => break,
            Err(_) => continue,
        }
    }
    Ok(seeded)
}
