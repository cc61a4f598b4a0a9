//! Producer ids: unique for the cluster's life, reserved from the etcd
//! counter `counters/producer-ids` in blocks.

use super::Controller;
use crate::error::{Result, SentinelError};
use crate::etcd_metrics::Counted;
use crate::model;
use crate::store::{Change, Fence};

/// Producer ids reserved from etcd at a time.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

impl Controller {
    /// A producer id never handed out before. Ids are reserved from the
    /// etcd counter `counters/producer-ids` in blocks (one compare-and-swap
    /// per block, with its op); a block's unused ids are never reused, even
    /// if this sentinel loses its leadership.
    pub async fn allocate_producer_id(&self, fence: &Fence) -> Result<i64> {
        let mut block = self.producer_ids.lock().await;
        if block.0 == block.1 {
            let key = self.store.keys().producer_ids_counter();
            let current = self
                .store
                .client()
                .get(key.as_str(), None)
                .await
                .counted()
                .map_err(|e| SentinelError::etcd("read the producer-id counter", e))?;
            let (start, revision) = match current.kvs().first() {
                Some(kv) => {
                    let text = kv.value_str().unwrap_or_default();
                    let start = text.trim().parse::<i64>().map_err(|e| SentinelError::CorruptValue {
                        key: key.clone(),
                        reason: format!("{text:?}: {e}"),
                    })?;
                    (start, Some(kv.mod_revision()))
                }
                // A fresh counter (a new cluster, or an etcd that lost its
                // data) starts at a random block: ids handed out before a
                // loss are never handed out again, so no broker takes a new
                // producer's first batches for retries of an old one's.
                None => (first_producer_id(), None),
            };
            let end = start + PRODUCER_ID_BLOCK;
            let detail = format!("producer ids [{start}, {end})");
            let mut change = Change::new("reserve-producer-ids", detail).put_json(key.clone(), &end, None);
            match revision {
                Some(r) => change.require_mod_revision.push((key, r)),
                None => change.require_absent.push(key),
            }
            // A conflict (another writer in between) fails this request; the
            // client retries.
            self.store.commit(fence, change).await?;
            *block = (start, end);
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }
}

/// Where a new producer-id counter starts: a random multiple of the block
/// size below 2^50 (ids stay far from `i64::MAX`; two random starts share a
/// block with odds of about 2^-40).
fn first_producer_id() -> i64 {
    let blocks = (1i64 << 50) / PRODUCER_ID_BLOCK;
    (model::random_id() % blocks as u64) as i64 * PRODUCER_ID_BLOCK
}
