//! Consumer-group offset sync: every `sync-interval`, for each group of
//! `sync-groups`, the offsets it committed on the source are translated
//! ([`super::translate`]) and committed to the same group on the target,
//! so that the group's consumers can move to Goulette and resume where
//! they stopped.
//!
//! - A committed offset is read with a librdkafka consumer configured
//!   with the group's id that never joins it (an OffsetFetch), so the
//!   group's own members are not disturbed.
//! - An offset the mirror has not written up to yet is left for a later
//!   round, never guessed: no gap, no negative lag.
//! - A target offset only moves forward: once the group's consumers run
//!   on the target and commit there, the source's older offsets do not
//!   pull them back (and a group rewound on the source is not rewound on
//!   the target: that is the operator's call).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use goulette_client::Cluster;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::translate::Translate;
use super::{Context, client_config};
use crate::config::KafkaConfig;
use crate::metrics::SourceMetrics;

/// How long reading a group's committed offsets may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Syncs `config.sync_groups` until `token` is cancelled, with the
/// translation `translation` publishes.
pub async fn sync<T: Translate + Clone + Send + Sync + 'static>(
    config: KafkaConfig,
    translation: watch::Receiver<T>,
    target: Arc<Cluster>,
    metrics: SourceMetrics,
    token: CancellationToken,
) {
    let mut readers = Vec::new();
    for group in &config.sync_groups {
        let mut c = client_config(&config, group);
        // These readers never consume: their events (errors, logs) are
        // served by the poll of each round, and they make no statistics,
        // which would pile up in librdkafka's queue between rounds (the
        // lag comes from the source's own consumer).
        c.set("enable.auto.commit", "false").set("statistics.interval.ms", "0");
        match c.create_with_context::<_, BaseConsumer<Context>>(Context::new(&config.name, Default::default())) {
            Ok(reader) => readers.push((group.clone(), Arc::new(reader))),
            Err(error) => tracing::error!(source = %config.name, group, %error, "cannot read this group's offsets"),
        }
    }
    let mut ticker = tokio::time::interval(config.sync_interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = token.cancelled() => return,
        }
        let snapshot = translation.borrow().clone();
        for (group, reader) in &readers {
            // Serves its queued events (logged by its context); with no
            // subscription there is never a message.
            while reader.poll(Duration::ZERO).is_some() {}
            match sync_group(&config, group, reader, &snapshot, &target).await {
                Ok(Round { written, waiting }) => {
                    metrics.offsets_synced.inc_by(written as u64);
                    if written > 0 || waiting > 0 {
                        tracing::info!(source = %config.name, group, written, waiting, "consumer group offsets synced");
                    }
                }
                Err(why) => {
                    metrics.errors.inc();
                    tracing::warn!(source = %config.name, group, %why, "consumer group offsets not synced this round");
                }
            }
        }
    }
}

/// One group's round: offsets committed to the target, and offsets not
/// translatable yet (the mirror has not written that far).
#[derive(Debug, Default)]
struct Round {
    written: usize,
    waiting: usize,
}

async fn sync_group(
    config: &KafkaConfig,
    group: &str,
    reader: &Arc<BaseConsumer<Context>>,
    translation: &impl Translate,
    target: &Arc<Cluster>,
) -> Result<Round, String> {
    let mut asked = TopicPartitionList::new();
    for (topic, partition) in translation.mirrored() {
        asked.add_partition(&topic, partition as i32);
    }
    let mut round = Round::default();
    if asked.count() == 0 {
        return Ok(round);
    }
    let reader = reader.clone();
    let committed = tokio::task::spawn_blocking(move || reader.committed_offsets(asked, FETCH_TIMEOUT))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("reading its offsets on the source: {e}"))?;
    let mut translated: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
    for e in committed.elements() {
        // Nothing committed for this partition: nothing to move.
        let Offset::Offset(offset) = e.offset() else { continue };
        let partition = e.partition() as u32;
        match translation.translate(e.topic(), partition, offset.max(0) as u64) {
            Some(t) => {
                translated.entry(config.target_topic(e.topic())).or_default().insert(partition, t);
            }
            None => round.waiting += 1,
        }
    }
    for (topic, offsets) in translated {
        let current = goulette_client::offsets::fetch(target, group, &topic)
            .await
            .map_err(|e| format!("reading its offsets of {topic} on the target: {e}"))?;
        let forward: BTreeMap<u32, u64> =
            offsets.into_iter().filter(|(p, t)| current.get(p).is_none_or(|c| c < t)).collect();
        if forward.is_empty() {
            continue;
        }
        goulette_client::offsets::commit(target, group, &topic, &forward, None)
            .await
            .map_err(|e| format!("committing its offsets of {topic} on the target: {e}"))?;
        round.written += forward.len();
    }
    Ok(round)
}
