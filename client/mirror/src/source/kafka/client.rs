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

impl ClientContext for Context {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(lag) = &self.lag else { return };
        // Partition -1 is librdkafka's own; -1 lag means not known yet.
        let behind: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
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
