//! What `/metrics` shows, per source (label `source`): records and bytes
//! read and written, write retries, dead letters, dedup hits, errors, files finished,
//! records in flight, the time from a batch's read to its
//! acknowledgement by the target (the mirror's own latency), and the time
//! from a record's source timestamp to that acknowledgement (end to end).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17))
}

fn end_to_end_histogram() -> Histogram {
    // 1 ms to ~18 h: a backlog read long after it was written shows its age.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 27))
}

/// Every series of the mirror.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    records_in: Family<SourceLabel, Counter>,
    bytes_in: Family<SourceLabel, Counter>,
    records_out: Family<SourceLabel, Counter>,
    bytes_out: Family<SourceLabel, Counter>,
    retries: Family<SourceLabel, Counter>,
    dead_letters: Family<SourceLabel, Counter>,
    dedup_hits: Family<SourceLabel, Counter>,
    errors: Family<SourceLabel, Counter>,
    files_finished: Family<SourceLabel, Counter>,
    source_lag: Family<SourceLabel, Gauge>,
    offsets_synced: Family<SourceLabel, Counter>,
    in_flight: Family<SourceLabel, Gauge>,
    ack_latency: Family<SourceLabel, Histogram, fn() -> Histogram>,
    end_to_end_latency: Family<SourceLabel, Histogram, fn() -> Histogram>,
    problems: std::sync::Mutex<Vec<(String, Problem)>>,
}

/// Why a source is not serving now (none: it is), for `/ready`.
pub type Problem = std::sync::Arc<std::sync::Mutex<Option<String>>>;

/// One source's series.
#[derive(Debug, Clone)]
pub struct SourceMetrics {
    /// Why it is not serving now, if it is not (`/ready`).
    pub problem: Problem,
    pub records_in: Counter,
    pub bytes_in: Counter,
    pub records_out: Counter,
    pub bytes_out: Counter,
    pub retries: Counter,
    pub dead_letters: Counter,
    pub dedup_hits: Counter,
    pub errors: Counter,
    pub files_finished: Counter,
    pub offsets_synced: Counter,
    pub source_lag: Gauge,
    pub in_flight: Gauge,
    pub ack_latency: Histogram,
    pub end_to_end_latency: Histogram,
}

impl SourceMetrics {
    /// Observes, for records the target has just acknowledged, the time
    /// since their source timestamps (ms since the epoch). Clocks of other
    /// machines may run ahead: a timestamp in the future counts as 0.
    pub fn observe_end_to_end(&self, timestamps: impl IntoIterator<Item = i64>) {
        let now = goulette_batch::now_ms();
        for t in timestamps {
            self.end_to_end_latency.observe(now.saturating_sub(t).max(0) as f64 / 1000.0);
        }
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("goulette_mirror");
        let m = Metrics {
            records_in: Family::default(),
            bytes_in: Family::default(),
            records_out: Family::default(),
            bytes_out: Family::default(),
            retries: Family::default(),
            dead_letters: Family::default(),
            dedup_hits: Family::default(),
            errors: Family::default(),
            files_finished: Family::default(),
            source_lag: Family::default(),
            offsets_synced: Family::default(),
            in_flight: Family::default(),
            ack_latency: Family::new_with_constructor(latency_histogram),
            end_to_end_latency: Family::new_with_constructor(end_to_end_histogram),
            problems: std::sync::Mutex::new(Vec::new()),
            registry: Registry::default(),
        };
        registry.register("records_in", "Records read from the source", m.records_in.clone());
        registry.register("bytes_in", "Key and value bytes read from the source", m.bytes_in.clone());
        registry.register("records_out", "Records acknowledged by the target", m.records_out.clone());
        registry.register("bytes_out", "Key and value bytes acknowledged by the target", m.bytes_out.clone());
        registry.register("retries", "Writes tried again after a failure", m.retries.clone());
        registry.register("dead_letters", "Records sent to the dead-letter topic", m.dead_letters.clone());
        registry.register("dedup_hits", "Records dropped as duplicates (dedup)", m.dedup_hits.clone());
        registry.register("errors", "Errors (failed writes, moves, source failures)", m.errors.clone());
        registry.register("files_finished", "Files completely mirrored and moved", m.files_finished.clone());
        registry.register(
            "source_lag",
            "Records in the source not mirrored yet (Kafka source: over its partitions, every 5 s)",
            m.source_lag.clone(),
        );
        registry.register(
            "offsets_synced",
            "Consumer-group offsets translated and committed to the target",
            m.offsets_synced.clone(),
        );
        registry.register("in_flight", "Records sent and not yet acknowledged", m.in_flight.clone());
        registry.register(
            "ack_latency_seconds",
            "From a batch's read to its acknowledgement by the target",
            m.ack_latency.clone(),
        );
        registry.register(
            "end_to_end_latency_seconds",
            "From a record's timestamp at the source to its acknowledgement by the target (records with a source timestamp)",
            m.end_to_end_latency.clone(),
        );
        Metrics { registry, ..m }
    }

    /// What keeps sources from serving now: `source: why` each.
    pub fn problems(&self) -> Vec<String> {
        let problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        problems
            .iter()
            .filter_map(|(name, p)| {
                p.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|why| format!("{name}: {why}"))
            })
            .collect()
    }

    /// The series of source `name`.
    pub fn source(&self, name: &str) -> SourceMetrics {
        let label = SourceLabel { source: name.to_owned() };
        let mut problems = self.problems.lock().unwrap_or_else(|p| p.into_inner());
        let problem = match problems.iter().find(|(n, _)| n == name) {
            Some((_, p)) => p.clone(),
            None => {
                let p = Problem::default();
                problems.push((name.to_owned(), p.clone()));
                p
            }
        };
        SourceMetrics {
            problem,
            records_in: self.records_in.get_or_create(&label).clone(),
            bytes_in: self.bytes_in.get_or_create(&label).clone(),
            records_out: self.records_out.get_or_create(&label).clone(),
            bytes_out: self.bytes_out.get_or_create(&label).clone(),
            retries: self.retries.get_or_create(&label).clone(),
            dead_letters: self.dead_letters.get_or_create(&label).clone(),
            dedup_hits: self.dedup_hits.get_or_create(&label).clone(),
            errors: self.errors.get_or_create(&label).clone(),
            files_finished: self.files_finished.get_or_create(&label).clone(),
            offsets_synced: self.offsets_synced.get_or_create(&label).clone(),
            source_lag: self.source_lag.get_or_create(&label).clone(),
            in_flight: self.in_flight.get_or_create(&label).clone(),
            ack_latency: self.ack_latency.get_or_create(&label).clone(),
            end_to_end_latency: self.end_to_end_latency.get_or_create(&label).clone(),
        }
    }
}
