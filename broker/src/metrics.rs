//! The broker's Prometheus metrics, `goulette_broker_*` (and the process's
//! `goulette_process_*`), served on `--http-address` `/metrics`.
//!
//! Counters and histograms are updated where the work happens (produce,
//! fetch, replication, the storage engine's fdatasync hook); gauges that
//! describe state (partitions led, under-replicated) are computed from the
//! partitions at each scrape, so they cannot drift.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A per-topic series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

/// A per-partition series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    pub topic: String,
    pub partition: u32,
}

/// A consumer group's series for one partition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupPartitionLabel {
    pub group: String,
    pub topic: String,
    pub partition: u32,
}

/// A per-listener series (`grpc`, `kafka`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    pub listener: &'static str,
}

/// A failed-login series: listener and reason.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthFailureLabel {
    pub listener: &'static str,
    pub reason: &'static str,
}

/// A per-kind series (`produce`, `fetch`, `replica-fetch`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// Every metric of one broker.
#[derive(Debug)]
pub struct BrokerMetrics {
    registry: Registry,
    process: goulette_proto::ops::process::ProcessMetrics,
    /// Records and bytes appended as leader (producers and `__offsets` commits; retried duplicates not counted).
    messages_in: Family<TopicLabel, Counter>,
    bytes_in: Family<TopicLabel, Counter>,
    /// Records and bytes sent to consumers.
    messages_out: Family<TopicLabel, Counter>,
    bytes_out: Family<TopicLabel, Counter>,
    /// Bytes sent to followers.
    replication_bytes_out: Family<TopicLabel, Counter>,
    /// From a produce request's arrival to its response (durable, replicated per `acks`).
    pub produce_latency: Histogram,
    /// From a fetch response's read to its hand-off to the stream.
    pub fetch_latency: Histogram,
    pub fsync_latency: Histogram,
    pub fsync_batches: Histogram,
    pub isr_shrinks: Counter,
    /// WALs zero-filled ahead of need, their bytes, and failed attempts.
    pub wals_prepared: Counter,
    pub wal_prepared_bytes: Counter,
    pub wal_prepare_failures: Counter,
    pub isr_expands: Counter,
    /// Partitions this broker began or stopped leading.
    pub leader_changes: Counter,
    /// TLS handshakes that failed, per listener (`grpc`, `kafka`):
    /// plaintext clients, untrusted or expired certificates.
    tls_handshake_failures: Family<ListenerLabel, Counter>,
    /// Changed TLS files that could not be loaded (the last good ones stayed).
    pub tls_reload_failures: Counter,
    /// Failed logins, per listener and reason (`invalid-credentials`,
    /// `throttled`, `malformed`, `unsupported`).
    auth_failures: Family<AuthFailureLabel, Counter>,
    /// Requests (or parts of requests) the ACLs refused.
    pub acl_denials: Counter,
    /// Open produce, fetch and replica-fetch streams.
    pub open_streams: Family<KindLabel, Gauge>,
    /// Per partition led: its high watermark (the end consumers can read to).
    high_watermark: Family<PartitionLabel, Gauge>,
    /// Per group and partition, for the groups coordinated here.
    committed_offset: Family<GroupPartitionLabel, Gauge>,
    partitions: Gauge,
    leader_partitions: Gauge,
    under_replicated: Gauge,
    under_min_isr: Gauge,
    /// Partition directories held but not served, for lack of evidence
    /// that their data may go (see `Partitions::kept`).
    kept: Gauge,
    /// Replicas that cannot be served (damaged, or their log failed).
    failed: Gauge,
    /// Compaction passes run, records they removed, bytes they read and
    /// wrote, and passes that failed (see `compaction`).
    pub compaction_passes: Counter,
    pub compaction_records_removed: Counter,
    pub compaction_bytes_read: Counter,
    pub compaction_bytes_written: Counter,
    pub compaction_errors: Counter,
    /// Delayed delivery: copies appended as leader, index or delivery
    /// failures, and originals indexed and not delivered (see `delayed`).
    pub delayed_delivered: Counter,
    pub delayed_errors: Counter,
    pub delayed_pending: Gauge,
}

/// Latency buckets from 50 µs to ~13 s, in seconds.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 19)
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        BrokerMetrics::new()
    }
}

impl BrokerMetrics {
    /// A registry with every broker metric registered.
    pub fn new() -> BrokerMetrics {
        let mut registry = Registry::default();
        let process = goulette_proto::ops::process::ProcessMetrics::register(&mut registry);
        let m = BrokerMetrics {
            registry: Registry::default(),
            process,
            messages_in: Family::default(),
            bytes_in: Family::default(),
            messages_out: Family::default(),
            bytes_out: Family::default(),
            replication_bytes_out: Family::default(),
            produce_latency: Histogram::new(latency_buckets()),
            fetch_latency: Histogram::new(latency_buckets()),
            fsync_latency: Histogram::new(latency_buckets()),
            fsync_batches: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            isr_shrinks: Counter::default(),
            wals_prepared: Counter::default(),
            wal_prepared_bytes: Counter::default(),
            wal_prepare_failures: Counter::default(),
            isr_expands: Counter::default(),
            leader_changes: Counter::default(),
            tls_handshake_failures: Family::default(),
            tls_reload_failures: Counter::default(),
            auth_failures: Family::default(),
            acl_denials: Counter::default(),
            open_streams: Family::default(),
            high_watermark: Family::default(),
            committed_offset: Family::default(),
            partitions: Gauge::default(),
            leader_partitions: Gauge::default(),
            under_replicated: Gauge::default(),
            under_min_isr: Gauge::default(),
            kept: Gauge::default(),
            failed: Gauge::default(),
            compaction_passes: Counter::default(),
            delayed_delivered: Counter::default(),
            delayed_errors: Counter::default(),
            delayed_pending: Gauge::default(),
            compaction_records_removed: Counter::default(),
            compaction_bytes_read: Counter::default(),
            compaction_bytes_written: Counter::default(),
            compaction_errors: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("goulette_broker");
        r.register("messages_in", "Records appended as partition leader", m.messages_in.clone());
        r.register("bytes_in", "Batch bytes appended as partition leader", m.bytes_in.clone());
        r.register("messages_out", "Records sent to consumers", m.messages_out.clone());
        r.register("bytes_out", "Batch bytes sent to consumers", m.bytes_out.clone());
        r.register("replication_bytes_out", "Batch bytes sent to followers", m.replication_bytes_out.clone());
        r.register(
            "produce_latency_seconds",
            "Produce request arrival to response (durability and acks included)",
            m.produce_latency.clone(),
        );
        r.register("fetch_latency_seconds", "Fetch response read to hand-off", m.fetch_latency.clone());
        r.register("fsync_latency_seconds", "fdatasync of a partition WAL", m.fsync_latency.clone());
        r.register("fsync_batches", "Batches made durable by one fdatasync (group commit)", m.fsync_batches.clone());
        r.register("isr_shrinks", "Followers this leader removed from an ISR", m.isr_shrinks.clone());
        r.register("wals_prepared", "WAL files zero-filled ahead of need", m.wals_prepared.clone());
        r.register("wal_prepared_bytes", "Bytes of WAL files zero-filled ahead of need", m.wal_prepared_bytes.clone());
        r.register(
            "wal_prepare_failures",
            "Failed attempts to zero-fill a WAL ahead of need (the WAL grows meanwhile)",
            m.wal_prepare_failures.clone(),
        );
        r.register("isr_expands", "Followers this leader added back to an ISR", m.isr_expands.clone());
        r.register("leader_changes", "Partitions this broker started or stopped leading", m.leader_changes.clone());
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, per listener (a plaintext client, an untrusted or expired certificate)",
            m.tls_handshake_failures.clone(),
        );
        r.register(
            "tls_reload_failures",
            "Changed TLS files that could not be loaded; the last good ones stay in use (the log says why)",
            m.tls_reload_failures.clone(),
        );
        r.register(
            "auth_failures",
            "Failed logins, per listener and reason (invalid-credentials, throttled, malformed, unsupported)",
            m.auth_failures.clone(),
        );
        r.register("acl_denials", "Requests, or parts of requests, the ACLs refused", m.acl_denials.clone());
        r.register("open_streams", "Open produce and fetch streams", m.open_streams.clone());
        r.register(
            "partition_high_watermark",
            "High watermark of each partition led (the offset consumers can read up to)",
            m.high_watermark.clone(),
        );
        r.register(
            "group_committed_offset",
            "Committed offset of each group and partition, for the groups this broker coordinates \
             (lag: the partition's high watermark minus this)",
            m.committed_offset.clone(),
        );
        r.register("partitions", "Partition replicas held", m.partitions.clone());
        r.register("leader_partitions", "Partitions led", m.leader_partitions.clone());
        r.register(
            "under_replicated_partitions",
            "Partitions led whose ISR is smaller than their replica set",
            m.under_replicated.clone(),
        );
        r.register(
            "under_min_isr_partitions",
            "Partitions led whose ISR is below min_insync_replicas (acks=all refused)",
            m.under_min_isr.clone(),
        );
        r.register(
            "partitions_kept_unassigned",
            "Partition directories whose data is kept but not served: the metadata does not assign them here \
             and holds no evidence (a deletion or a completed move of their topic incarnation) that they may go",
            m.kept.clone(),
        );
        r.register(
            "partitions_failed",
            "Replicas not served because their data failed a checksum or their log failed to open \
             (/ready names them)",
            m.failed.clone(),
        );
        r.register(
            "delayed_delivered",
            "Delayed records delivered: copies appended by this broker as leader when they were due",
            m.delayed_delivered.clone(),
        );
        r.register(
            "delayed_errors",
            "Failures of delayed delivery (reading the log, the timer index, or appending a copy)",
            m.delayed_errors.clone(),
        );
        r.register(
            "delayed_pending",
            "Delayed records stored and not yet delivered, over the replicas held (leaders and followers)",
            m.delayed_pending.clone(),
        );
        r.register("compaction_passes", "Compaction passes run over compacted partitions", m.compaction_passes.clone());
        r.register(
            "compaction_records_removed",
            "Records compaction removed (superseded by a later record of their key, or expired tombstones)",
            m.compaction_records_removed.clone(),
        );
        r.register("compaction_bytes_read", "Fragment bytes compaction read", m.compaction_bytes_read.clone());
        r.register("compaction_bytes_written", "Fragment bytes compaction wrote", m.compaction_bytes_written.clone());
        r.register(
            "compaction_errors",
            "Compaction passes that failed (the log says why; data stays as it was)",
            m.compaction_errors.clone(),
        );
        BrokerMetrics { registry, ..m }
    }

    /// The handshake-failure counter of `listener` (`grpc` or `kafka`).
    pub fn tls_handshake_failures(&self, listener: &'static str) -> Counter {
        self.tls_handshake_failures.get_or_create(&ListenerLabel { listener }).clone()
    }

    /// The failed-login counter of `listener` and `reason`.
    pub fn auth_failures(&self, listener: &'static str, reason: &'static str) -> Counter {
        self.auth_failures.get_or_create(&AuthFailureLabel { listener, reason }).clone()
    }

    /// Replaces the per-partition high watermarks (called before each scrape).
    pub fn set_high_watermarks(&self, led: impl IntoIterator<Item = (String, u32, u64)>) {
        self.high_watermark.clear();
        for (topic, partition, hw) in led {
            self.high_watermark.get_or_create(&PartitionLabel { topic, partition }).set(hw as i64);
        }
    }

    /// Replaces the committed offsets (called before each scrape).
    pub fn set_committed(&self, committed: impl IntoIterator<Item = (String, String, u32, u64)>) {
        self.committed_offset.clear();
        for (group, topic, partition, offset) in committed {
            self.committed_offset.get_or_create(&GroupPartitionLabel { group, topic, partition }).set(offset as i64);
        }
    }

    /// Sets the state gauges (called before each scrape).
    pub fn set_partition_gauges(
        &self,
        held: usize,
        led: usize,
        under_replicated: usize,
        under_min_isr: usize,
        kept: usize,
        failed: usize,
    ) {
        self.kept.set(kept as i64);
        self.failed.set(failed as i64);
        self.partitions.set(held as i64);
        self.leader_partitions.set(led as i64);
        self.under_replicated.set(under_replicated as i64);
        self.under_min_isr.set(under_min_isr as i64);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        self.process.refresh();
        goulette_proto::ops::http::encode(&self.registry)
    }

    /// The per-topic counters of `topic`, looked up once (a replica keeps
    /// them, so the hot paths only add to atomics).
    pub fn topic(&self, topic: &str) -> TopicCounters {
        let label = TopicLabel { topic: topic.to_owned() };
        TopicCounters {
            messages_in: self.messages_in.get_or_create(&label).clone(),
            bytes_in: self.bytes_in.get_or_create(&label).clone(),
            messages_out: self.messages_out.get_or_create(&label).clone(),
            bytes_out: self.bytes_out.get_or_create(&label).clone(),
            replication_bytes_out: self.replication_bytes_out.get_or_create(&label).clone(),
        }
    }

    /// A gauge of open streams of `kind` that goes down when the guard drops.
    pub fn stream_opened(&self, kind: &'static str) -> StreamGauge {
        let gauge = self.open_streams.get_or_create(&KindLabel { kind }).clone();
        gauge.inc();
        StreamGauge(gauge)
    }
}

/// One topic's traffic counters (handles onto the registered series).
#[derive(Debug, Clone)]
pub struct TopicCounters {
    messages_in: Counter,
    bytes_in: Counter,
    messages_out: Counter,
    bytes_out: Counter,
    replication_bytes_out: Counter,
}

impl TopicCounters {
    /// A record batch appended as leader.
    pub fn appended(&self, records: u32, bytes: usize) {
        self.messages_in.inc_by(u64::from(records));
        self.bytes_in.inc_by(bytes as u64);
    }

    /// Records and bytes sent to a consumer, or bytes to a follower.
    pub fn sent(&self, follower: bool, records: u64, bytes: u64) {
        if follower {
            self.replication_bytes_out.inc_by(bytes);
        } else {
            self.messages_out.inc_by(records);
            self.bytes_out.inc_by(bytes);
        }
    }
}

/// Decrements an open-stream gauge when dropped.
#[derive(Debug)]
pub struct StreamGauge(Gauge);

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Feeds the storage engine's fdatasyncs into the histograms.
#[derive(Debug)]
pub struct StorageObserver {
    pub latency: Histogram,
    pub batches: Histogram,
    pub prepared: Counter,
    pub prepared_bytes: Counter,
    pub prepare_failures: Counter,
}

impl goulette_storage::observe::Observer for StorageObserver {
    fn fdatasync(&self, took: Duration, batches: u64) {
        self.latency.observe(took.as_secs_f64());
        self.batches.observe(batches as f64);
    }

    fn wal_prepared(&self, _took: Duration, bytes: u64) {
        self.prepared.inc();
        self.prepared_bytes.inc_by(bytes);
    }

    fn wal_prepare_failed(&self) {
        self.prepare_failures.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_names_every_series_and_counts_what_was_recorded() {
        let m = BrokerMetrics::new();
        m.topic("orders").appended(10, 1000);
        m.produce_latency.observe(0.001);
        let streams = m.stream_opened("produce");
        m.set_partition_gauges(3, 2, 1, 0, 4, 5);
        m.set_high_watermarks([("orders".to_owned(), 0, 42)]);
        m.set_committed([("billing".to_owned(), "orders".to_owned(), 0, 40)]);
        let text = m.encode();
        assert!(text.contains("goulette_broker_messages_in_total{topic=\"orders\"} 10"), "{text}");
        assert!(text.contains("goulette_broker_bytes_in_total{topic=\"orders\"} 1000"), "{text}");
        assert!(text.contains("goulette_broker_produce_latency_seconds_count 1"), "{text}");
        assert!(text.contains("goulette_broker_open_streams{kind=\"produce\"} 1"), "{text}");
        assert!(text.contains("goulette_broker_under_replicated_partitions 1"), "{text}");
        assert!(text.contains("goulette_broker_partitions_kept_unassigned 4"), "{text}");
        assert!(text.contains("goulette_broker_partitions_failed 5"), "{text}");
        assert!(text.contains("goulette_process_resident_memory_bytes "), "{text}");
        assert!(
            text.contains("goulette_broker_partition_high_watermark{topic=\"orders\",partition=\"0\"} 42"),
            "{text}"
        );
        assert!(
            text.contains(
                "goulette_broker_group_committed_offset{group=\"billing\",topic=\"orders\",partition=\"0\"} 40"
            ),
            "{text}"
        );
        // Replaced, not accumulated: a group no longer coordinated here goes.
        m.set_committed([]);
        assert!(!m.encode().contains("billing"));
        drop(streams);
        assert!(m.encode().contains("goulette_broker_open_streams{kind=\"produce\"} 0"));
    }
}
