//! The delivery task: one per broker. Every [`TICK`] it catches the timer
//! index of every replica held up with its log (followers too, so that a
//! new leader knows what is pending), deletes finished buckets, holds
//! undelivered originals against retention and compaction, and on each
//! leader appends a copy of every original that is due.
//!
//! Exactly once in the committed log: a copy is indexed as delivered
//! before the index is asked again what is due, and a new leader delivers
//! only once its whole log is committed and indexed (the copies its
//! predecessor appended are then in it). Copies a failed leader appended
//! and never replicated are truncated from its log when it follows again,
//! and its index forgets them with them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use goulette_proto::v1::{self as pb, Acks};
use goulette_storage::delayed::{COPIES_BIT, DELAYED_FROM_HEADER};
use goulette_storage::timers::{Due, TimerIndex};
use goulette_storage::{Batch, BatchBuilder, Compression, PartitionLog, StoredRecord};
use tokio_util::sync::CancellationToken;

use crate::config::ProduceLimits;
use crate::partition::Partitions;
use crate::produce::Origin;
use crate::replica::Replica;

/// How often due records are looked for: the delivery delay's bound,
/// with the append.
const TICK: Duration = Duration::from_millis(100);
/// Log bytes one replica's index reads per tick at most.
const CATCH_UP_BYTES: usize = 64 << 20;
/// Originals one leader delivers per round.
const DUE_PER_ROUND: usize = 2_000;
/// Rounds per leader per tick at most (others' turn comes).
const ROUNDS_PER_TICK: usize = 10;
/// The records section of one batch of copies, at most.
const COPY_BATCH_BYTES: usize = 512 << 10;

/// Runs until `stop`.
pub async fn run(partitions: Arc<Partitions>, limits: ProduceLimits, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let p = partitions.clone();
        let Ok(leaders) = tokio::task::spawn_blocking(move || index_all(&p)).await else { continue };
        for (replica, timers) in leaders {
            if let Err(e) = deliver_due(&partitions, &replica, &timers, limits).await {
                partitions.metrics().delayed_errors.inc();
                tracing::warn!(topic = %replica.topic, partition = replica.partition, error = %e, "delayed delivery failed; trying again");
            }
        }
    }
}

/// Catches every replica's index up; returns the leaders with records due.
fn index_all(partitions: &Partitions) -> Vec<(Arc<Replica>, Arc<TimerIndex>)> {
    let metrics = partitions.metrics();
    let mut leaders = Vec::new();
    let mut pending = 0u64;
    for replica in partitions.all() {
        if replica.log.failure().is_some() {
            continue;
        }
        match index(&replica) {
            Ok(timers) => {
                pending += timers.pending();
                if ready_to_deliver(&replica, &timers) {
                    leaders.push((replica, timers));
                }
            }
            Err(e) => {
                metrics.delayed_errors.inc();
                tracing::warn!(topic = %replica.topic, partition = replica.partition, error = %e, "timer index failed");
            }
        }
    }
    metrics.delayed_pending.set(i64::try_from(pending).unwrap_or(i64::MAX));
    leaders
}

/// One replica's index caught up, collected, and its hold moved.
fn index(replica: &Replica) -> goulette_storage::Result<Arc<TimerIndex>> {
    let timers = replica.timers.clone();
    let log = &replica.log;
    timers.catch_up(log, CATCH_UP_BYTES)?;
    timers.collect(replica.high_watermark(), log.log_start_offset())?;
    log.set_hold(timers.retention_floor());
    Ok(timers)
}

/// A leader delivers once its term's start is committed and indexed: its
/// predecessors' copies are then all known.
fn ready_to_deliver(replica: &Replica, timers: &TimerIndex) -> bool {
    let Some(term) = replica.term() else { return false };
    replica.is_leader()
        && replica.high_watermark() >= term.start_offset
        && timers.indexed_to() >= term.start_offset
        && timers.may_have_due(goulette_storage::now_ms())
}

/// Appends copies of what is due on one leader, and indexes them.
async fn deliver_due(
    partitions: &Arc<Partitions>,
    replica: &Arc<Replica>,
    timers: &Arc<TimerIndex>,
    limits: ProduceLimits,
) -> anyhow::Result<()> {
    for _ in 0..ROUNDS_PER_TICK {
        let (log, index) = (replica.log.clone(), timers.clone());
        let (batches, due) = tokio::task::spawn_blocking(move || {
            let due = index.due(goulette_storage::now_ms(), log.log_start_offset(), DUE_PER_ROUND)?;
            Ok::<_, goulette_storage::StorageError>((copies(&log, &due)?, due.len()))
        })
        .await??;
        if batches.is_empty() {
            return Ok(());
        }
        for (batch, records) in batches {
            let request = pb::ProduceRequest {
                topic: replica.topic.clone(),
                partition: replica.partition,
                acks: Acks::Leader as i32,
                batch,
                ..Default::default()
            };
            let (pending, _) = crate::produce::handle_from(partitions, request, limits, Origin::DelayedDelivery).await;
            if let Some(pb::ProduceResponse { error: Some(e), .. }) = pending.await {
                anyhow::bail!("appending {records} copies: {:?}: {}", e.error_code(), e.message);
            }
            partitions.metrics().delayed_delivered.inc_by(records as u64);
        }
        // Indexed as delivered before the index is asked again.
        let (log, index) = (replica.log.clone(), timers.clone());
        tokio::task::spawn_blocking(move || {
            while index.catch_up(&log, CATCH_UP_BYTES)? {}
            Ok::<_, goulette_storage::StorageError>(())
        })
        .await??;
        if due < DUE_PER_ROUND {
            return Ok(());
        }
    }
    Ok(())
}

/// Batches of copies of the `due` originals, in due order, marked
/// [`COPIES_BIT`], each with how many records it holds.
fn copies(log: &PartitionLog, due: &[Due]) -> goulette_storage::Result<Vec<(Bytes, usize)>> {
    let mut originals = originals(log, due)?;
    let mut out = Vec::new();
    let mut builder = BatchBuilder::new(Compression::None);
    let mut count = 0;
    for d in due {
        let Some(original) = originals.remove(&d.original) else {
            tracing::error!(dir = %log.dir().display(), offset = d.original, "a delayed record is missing from its log");
            continue;
        };
        let mut record = original.record;
        // The copy names its own original (an original forwarded from an
        // earlier copy carried that one's).
        record.headers.retain(|(name, _)| name != DELAYED_FROM_HEADER);
        record.headers.push((DELAYED_FROM_HEADER.to_owned(), Bytes::from(d.original.to_string())));
        if !builder.push_record_within(&record, original.null_value, COPY_BATCH_BYTES) {
            out.push((seal(std::mem::replace(&mut builder, BatchBuilder::new(Compression::None)))?, count));
            builder.push_record(&record, original.null_value);
            count = 0;
        }
        count += 1;
    }
    if count > 0 {
        out.push((seal(builder)?, count));
    }
    Ok(out)
}

fn seal(builder: BatchBuilder) -> goulette_storage::Result<Bytes> {
    Ok(Batch::parse(builder.build()?)?.with_delay_bits(COPIES_BIT).into_bytes())
}

/// The `due` originals by offset, each stored batch read and decoded once:
/// records due together were often produced in different batches, and
/// going through them in due order decoded a whole batch per record (with
/// 10,000 records due in random order, over a second of a debug build's
/// CPU per round, which made deliveries that late).
fn originals(log: &PartitionLog, due: &[Due]) -> goulette_storage::Result<HashMap<u64, StoredRecord>> {
    let mut wanted: Vec<u64> = due.iter().map(|d| d.original).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found = HashMap::with_capacity(wanted.len());
    let mut rest = &wanted[..];
    while let Some(&offset) = rest.first() {
        let mut next = offset + 1;
        for bytes in log.read_bounded(offset, 1, offset + 1)? {
            let batch = Batch::parse_sparse(bytes)?;
            if batch.base_offset() <= offset && offset < batch.next_offset() {
                next = batch.next_offset();
                let records = batch.records()?;
                found.extend(
                    records.into_iter().filter(|r| rest.binary_search(&r.offset).is_ok()).map(|r| (r.offset, r)),
                );
                break;
            }
        }
        // Every wanted offset in that batch is found (or missing) now.
        rest = &rest[rest.partition_point(|o| *o < next)..];
    }
    Ok(found)
}
