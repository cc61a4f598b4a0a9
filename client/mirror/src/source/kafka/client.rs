//! The librdkafka side of the Kafka source: the consumer settings the
//! mirror uses (over which `properties` go), and the context that turns
//! librdkafka's logs, errors, commits and rebalances into the mirror's log
//! and `/ready`.

use std::path::PathBuf;

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

use crate::config::{KafkaConfig, KafkaStart};
use crate::metrics::Problem;

/// The librdkafka settings of `config` for consumer group `group`.
pub fn client_config(config: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", group)
        .set("client.id", format!("goulette-mirror-{}", config.name))
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", if config.start == KafkaStart::Latest { "latest" } else { "earliest" })
        // Before 2.1 (Debian 12 has 2.0.2), librdkafka stops fetching for a
        // whole second whenever its prefetch queue is full, which a consumer
        // slower than its source (the mirror: it waits for the target) meets
        // all the time. With the defaults (64 MiB) a 1 KiB backlog moved in
        // bursts with idle seconds between them: 155k records/s, against
        // 285k with 128 MiB (docs/benchmarks.md). The memory it costs:
        // 128 MiB of prefetched records per source at most.
        .set("queued.max.messages.kbytes", "131072")
        .set("queued.min.messages", "1000000")
        // For the lag metric.
        .set("statistics.interval.ms", "5000")
        .set_log_level(RDKafkaLogLevel::Warning);
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    let typed = [
        ("security.protocol", config.security_protocol.clone()),
        ("sasl.mechanism", config.sasl_mechanism.clone()),
        ("sasl.username", config.sasl_username.clone()),
        ("sasl.password", config.sasl_password.clone()),
        ("ssl.ca.location", config.tls_ca.as_ref().map(path)),
        ("ssl.certificate.location", config.tls_cert.as_ref().map(path)),
        ("ssl.key.location", config.tls_key.as_ref().map(path)),
    ];
    for (key, value) in typed {
        if let Some(value) = value {
            c.set(key, value);
        }
    }
    for (key, value) in &config.properties {
        c.set(key, value);
    }
    c
}

/// librdkafka's logs, errors and rebalances, into the mirror's log and
/// `/ready`.
#[derive(Debug)]
pub struct Context {
    source: String,
    problem: Problem,
    lag: Option<prometheus_client::metrics::gauge::Gauge>,
}

impl Context {
    pub fn new(source: &str, problem: Problem) -> Context {
        Context { source: source.to_owned(), problem, lag: None }
    }

    /// Also sets `lag` to the records not read yet, from librdkafka's
    /// statistics (`statistics.interval.ms`).
    pub fn with_lag(self, lag: prometheus_client::metrics::gauge::Gauge) -> Context {
        Context { lag: Some(lag), ..self }
    }
}

/// A partition's records not mirrored yet: from the next one the target
/// has not acknowledged (the offset stored for the commit; before any in
/// this run, the last commit; before any commit, the next one handed to
/// the mirror) to the partition's end. None when librdkafka does not know
/// yet, and for partition -1 (librdkafka's own). Not librdkafka's
/// `consumer_lag`: that counts from the last commit only, so it stays
/// unknown for a new group until its first commit, and trails by a commit
/// interval after.
fn not_mirrored(p: &rdkafka::statistics::Partition) -> Option<i64> {
    if p.partition < 0 || p.hi_offset < 0 {
        return None;
    }
    let from = [p.stored_offset, p.committed_offset, p.app_offset].into_iter().find(|o| *o >= 0)?;
    Some((p.hi_offset - from).max(0))
}

impl ClientContext for Context {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(lag) = &self.lag else { return };
        let behind: i64 = statistics.topics.values().flat_map(|t| t.partitions.values()).filter_map(not_mirrored).sum();
        lag.set(behind);
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Debug => tracing::debug!(source = %self.source, facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Info | RDKafkaLogLevel::Notice => {
                tracing::info!(source = %self.source, facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(source = %self.source, facility, "librdkafka: {message}"),
            _ => tracing::error!(source = %self.source, facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(source = %self.source, %error, reason, "the Kafka source reports an error");
        let why = format!("the Kafka source: {error}: {reason}");
        let mut problem = self.problem.lock().unwrap_or_else(|p| p.into_inner());
        // A refused login is followed by "all brokers down": keep saying
        // what the operator must fix, not its consequence.
        let refused = |p: &str| p.to_ascii_lowercase().contains("authentication");
        if !problem.as_deref().is_some_and(|p| refused(p) && !refused(&why)) {
            *problem = Some(why);
        }
    }
}

impl ConsumerContext for Context {
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                tracing::debug!(source = %self.source, partitions = offsets.count(), "offsets committed to the source")
            }
            Err(error) => tracing::warn!(source = %self.source, %error, "an offset commit to the source failed"),
        }
    }

    fn post_rebalance(&self, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(source = %self.source, partitions = tpl.count(), "source partitions assigned")
            }
            Rebalance::Revoke(tpl) => {
                tracing::info!(source = %self.source, partitions = tpl.count(), "source partitions revoked")
            }
            Rebalance::Error(e) => tracing::warn!(source = %self.source, error = %e, "a rebalance failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::statistics::Partition;

    use super::not_mirrored;

    fn partition(hi: i64, stored: i64, committed: i64, app: i64) -> Partition {
        Partition {
            partition: 0,
            hi_offset: hi,
            stored_offset: stored,
            committed_offset: committed,
            app_offset: app,
            ..Partition::default()
        }
    }

    #[test]
    fn the_lag_counts_from_what_the_target_acknowledged_else_the_commit_else_the_reading() {
        assert_eq!(not_mirrored(&partition(1000, 600, 400, 900)), Some(400), "stored: acknowledged by the target");
        assert_eq!(not_mirrored(&partition(1000, -1001, 400, 900)), Some(600), "nothing stored yet: the commit");
        assert_eq!(not_mirrored(&partition(1000, -1001, -1001, 900)), Some(100), "a new group: the reading");
        assert_eq!(not_mirrored(&partition(1000, -1001, -1001, -1001)), None, "nothing known");
        assert_eq!(not_mirrored(&partition(-1001, 600, 400, 900)), None, "the end not known");
        assert_eq!(not_mirrored(&Partition { partition: -1, ..partition(1000, 600, 400, 900) }), None);
        assert_eq!(not_mirrored(&partition(500, 600, 400, 900)), Some(0), "an end behind (stale) is no lag");
    }
}
