//! The mirror's settings: a TOML file (`--config FILE`), over which
//! `GOULETTE_MIRROR_*` environment variables set single keys.
//!
//! ```toml
//! [target]                       # the Goulette cluster records go to
//! sentinels = ["127.0.0.1:50052"]
//!
//! [[source]]                     # one per input
//! name = "drops"
//! kind = "files"
//! directory = "/var/spool/drops"
//! topic = "drops"
//! ```
//!
//! An environment variable names a key by its path in capitals, sections
//! joined by `_`: `GOULETTE_MIRROR_TARGET_SENTINELS=a:1,b:2`,
//! `GOULETTE_MIRROR_HTTP_ADDRESS=…`, and for a source its name:
//! `GOULETTE_MIRROR_SOURCE_DROPS_TOPIC=other` (`-` in a name is `_`). A
//! value is read as TOML if it parses (numbers, booleans, arrays), else as a
//! string; a comma-separated value of a list key is a list. Unknown keys
//! are refused, in the file and in the environment, naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dedup::DedupConfig;
use crate::rate::RateConfig;

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
}

/// Everything the mirror runs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    pub target: TargetConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(rename = "source")]
    pub sources: Vec<SourceConfig>,
}

/// The Goulette cluster records go to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TargetConfig {
    pub sentinels: Vec<String>,
    /// Where records that cannot be written go (too large, refused), with
    /// the reason in headers; none: such a record stops its source.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Records sent but not yet acknowledged, per source, at most.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// How long a write is retried (with backoff and jitter) before the
    /// source stops with an error (its records stay unacknowledged).
    #[serde(default = "default_retry_for", with = "duration")]
    pub retry_for: Duration,
}

fn default_in_flight() -> usize {
    10_000
}

fn default_retry_for() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// The operator's endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `/health`, `/ready`, `/metrics`; none: not served.
    pub address: Option<SocketAddr>,
}

/// One input.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceConfig {
    Files(FilesConfig),
    Rabbitmq(RabbitConfig),
    Kafka(KafkaConfig),
}

impl SourceConfig {
    /// The source's name (in logs, metrics and its state directory).
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Files(f) => &f.name,
            SourceConfig::Rabbitmq(r) => &r.name,
            SourceConfig::Kafka(k) => &k.name,
        }
    }

    /// The topics its records go to, as far as they are known before it
    /// runs (a Kafka source subscribed by a pattern names only its fixed
    /// topics).
    pub fn topics(&self) -> Vec<String> {
        match self {
            SourceConfig::Files(f) => vec![f.topic.clone()],
            SourceConfig::Rabbitmq(r) => vec![r.topic.clone()],
            SourceConfig::Kafka(k) => {
                k.topics.iter().filter(|t| !t.starts_with('^')).map(|t| k.target_topic(t)).collect()
            }
        }
    }

    /// The pipelines its records go through: several only for a Kafka
    /// source (partitions spread over them), and without dedup or rate
    /// limits, which count for the whole source.
    pub fn pipelines(&self) -> usize {
        match self {
            SourceConfig::Kafka(k) if !k.exactly_once && k.dedup.is_none() && k.rate.is_none() => k.workers.max(1),
            _ => 1,
        }
    }

    /// Its rate limits, if any.
    pub fn rate(&self) -> Option<&RateConfig> {
        match self {
            SourceConfig::Files(f) => f.rate.as_ref(),
            SourceConfig::Rabbitmq(r) => r.rate.as_ref(),
            SourceConfig::Kafka(k) => k.rate.as_ref(),
        }
    }

    /// Its dedup, if on.
    pub fn dedup(&self) -> Option<&DedupConfig> {
        match self {
            SourceConfig::Files(f) => f.dedup.as_ref(),
            SourceConfig::Rabbitmq(r) => r.dedup.as_ref(),
            SourceConfig::Kafka(k) => k.dedup.as_ref(),
        }
    }
}

/// Files dropped into a directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilesConfig {
    pub name: String,
    pub directory: PathBuf,
    /// The topic records go to.
    pub topic: String,
    /// File names taken (`*` and `?` wildcards).
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Also files in subdirectories.
    #[serde(default)]
    pub recursive: bool,
    /// `lines`: each line a record; `file`: each file one record.
    #[serde(default)]
    pub mode: FileMode,
    /// Where a file moves once every record of it is acknowledged
    /// (default: `DIRECTORY/.finished`).
    #[serde(default)]
    pub finished_directory: Option<PathBuf>,
    /// Where progress is kept (default: `data/mirror/NAME`).
    #[serde(default)]
    pub state_directory: Option<PathBuf>,
    /// How often the directory is scanned.
    #[serde(default = "default_poll", with = "duration")]
    pub poll_interval: Duration,
    /// A file is taken once its size and time have not changed for this
    /// long (a writer still busy with it is waited for).
    #[serde(default = "default_settle", with = "duration")]
    pub settle: Duration,
    /// A line (or, in `file` mode, a file) larger than this is not read
    /// into memory: it goes to the dead letters without its value.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u64,
    #[serde(default)]
    pub dedup: Option<DedupConfig>,
    #[serde(default)]
    pub rate: Option<RateConfig>,
}

fn default_pattern() -> String {
    "*".into()
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}

fn default_max_record_bytes() -> u64 {
    8 << 20
}

fn default_settle() -> Duration {
    Duration::from_secs(2)
}

/// A RabbitMQ queue (AMQP 0-9-1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RabbitConfig {
    pub name: String,
    /// `amqp://USER:PASSWORD@HOST:PORT/VHOST` (`%2f` is the default vhost).
    #[serde(default = "default_amqp_url")]
    pub url: String,
    pub queue: String,
    /// The topic records go to.
    pub topic: String,
    /// Messages RabbitMQ delivers ahead of their acknowledgement.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// Declare the queue (durable) if it does not exist.
    #[serde(default)]
    pub declare: bool,
    /// Bind the queue to this exchange (with `routing-key`).
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub routing_key: String,
    /// What becomes the record's key: `none`, `routing-key` or `message-id`.
    #[serde(default)]
    pub key: RabbitKey,
    /// With an `amqps://` url: a CA bundle (PEM) trusted besides the
    /// system's, to check the server's certificate.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and its key (PEM), for mutual TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub dedup: Option<DedupConfig>,
    #[serde(default)]
    pub rate: Option<RateConfig>,
}

fn default_amqp_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
}

fn default_prefetch() -> u16 {
    1000
}

/// Topics of a Kafka-protocol cluster (Apache Kafka, Redpanda, another
/// Goulette's Kafka listener), read as a consumer group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KafkaConfig {
    pub name: String,
    /// The source's bootstrap servers, `host:port,…`.
    pub brokers: String,
    /// The mirror's consumer group on the source (where its progress is
    /// committed).
    #[serde(default = "default_kafka_group")]
    pub group: String,
    /// Topic names, or regular expressions starting with `^`.
    pub topics: Vec<String>,
    /// The target topic of a source topic: `{topic}` is replaced by the
    /// source topic's name (`"{topic}"`, the default, keeps it).
    #[serde(default = "default_topic_rule")]
    pub topic: String,
    /// `same`: a record goes to the target partition of its source
    /// partition's number (the target topic needs as many partitions);
    /// `key`: to the partition of its key, as the target chooses.
    #[serde(default)]
    pub partition: KafkaPartition,
    /// Where a new mirror group starts: `earliest` or `latest`.
    #[serde(default)]
    pub start: KafkaStart,
    /// Pipelines writing to the target at once. A source partition always
    /// goes through the same one, so its records stay in order. With dedup
    /// or rate limits there is one (they count for the whole source).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Exactly once between two Goulette clusters: every record at its
    /// source offset in the target, once (needs `partition = "same"`,
    /// topic names, and target partitions written by the mirror alone).
    #[serde(default)]
    pub exactly_once: bool,
    /// Source consumer groups whose committed offsets are translated into
    /// the target (needs `partition = "same"`).
    #[serde(default)]
    pub sync_groups: Vec<String>,
    /// How often they are.
    #[serde(default = "default_sync_interval", with = "duration")]
    pub sync_interval: Duration,
    /// Where the offset translation is kept (default: `data/mirror/NAME`).
    #[serde(default)]
    pub state_directory: Option<PathBuf>,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    #[serde(default)]
    pub security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// Better set by `GOULETTE_MIRROR_SOURCE_<NAME>_SASL_PASSWORD`.
    #[serde(default)]
    pub sasl_password: Option<String>,
    /// The CA bundle (PEM) the source's certificates are checked against.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate and key (PEM), for mutual TLS.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Any other librdkafka consumer setting, as librdkafka names it.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub dedup: Option<DedupConfig>,
    #[serde(default)]
    pub rate: Option<RateConfig>,
}

fn default_workers() -> usize {
    2
}

fn default_kafka_group() -> String {
    "goulette-mirror".into()
}

fn default_topic_rule() -> String {
    "{topic}".into()
}

fn default_sync_interval() -> Duration {
    Duration::from_secs(5)
}

/// The target partition of a Kafka record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaPartition {
    Same,
    #[default]
    Key,
}

/// Where a mirror group without committed offsets starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaStart {
    #[default]
    Earliest,
    Latest,
}

impl KafkaConfig {
    /// The target topic of `source_topic`.
    pub fn target_topic(&self, source_topic: &str) -> String {
        self.topic.replace("{topic}", source_topic)
    }

    pub fn state_directory(&self) -> PathBuf {
        self.state_directory.clone().unwrap_or_else(|| PathBuf::from("data/mirror").join(&self.name))
    }
}

/// The record key of a RabbitMQ message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RabbitKey {
    #[default]
    None,
    RoutingKey,
    MessageId,
}

/// How a file becomes records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileMode {
    #[default]
    Lines,
    File,
}

impl FilesConfig {
    pub fn finished_directory(&self) -> PathBuf {
        self.finished_directory.clone().unwrap_or_else(|| self.directory.join(".finished"))
    }

    pub fn state_directory(&self) -> PathBuf {
        self.state_directory.clone().unwrap_or_else(|| PathBuf::from("data/mirror").join(&self.name))
    }
}

/// Durations as humantime strings (`500ms`, `2s`, `1h`).
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

/// Reads `path`, with the overrides of `env` (`GOULETTE_MIRROR_*`).
pub fn load(path: &Path, env: &BTreeMap<String, String>) -> Result<MirrorConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Unreadable { path: path.to_owned(), reason: e.to_string() })?;
    let origin = path.display().to_string();
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|e| ConfigError::Invalid { origin: origin.clone(), reason: e.to_string() })?;
    let overridden = apply_env(&mut table, env)?;
    let config: MirrorConfig = if overridden.is_empty() {
        // From the text, so that an error points at its line.
        toml::from_str(&text).map_err(|e| ConfigError::Invalid { origin, reason: e.to_string() })?
    } else {
        let origin = format!("{origin} with {}", overridden.join(", "));
        table.try_into().map_err(|e: toml::de::Error| ConfigError::Invalid { origin, reason: e.to_string() })?
    };
    config.validate().map_err(|reason| ConfigError::Invalid { origin: path.display().to_string(), reason })?;
    Ok(config)
}

const ENV_PREFIX: &str = "GOULETTE_MIRROR_";

/// Sets the keys `env` names in `table`; the variables used.
fn apply_env(table: &mut toml::Table, env: &BTreeMap<String, String>) -> Result<Vec<String>, ConfigError> {
    let mut used = Vec::new();
    for (name, value) in env {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else { continue };
        if path == "CONFIG" || path == "PASSWORD" {
            continue;
        }
        let refuse = |reason: String| ConfigError::Invalid { origin: name.clone(), reason };
        let section = ["TARGET", "HTTP"].into_iter().find(|s| path.starts_with(&format!("{s}_")));
        let (entry, key) = if let Some(section) = section {
            let key = path[section.len() + 1..].to_ascii_lowercase().replace('_', "-");
            let entry = table
                .entry(section.to_ascii_lowercase())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| refuse(format!("[{}] is not a table", section.to_ascii_lowercase())))?;
            (entry, key)
        } else if let Some(rest) = path.strip_prefix("SOURCE_") {
            let sources =
                table.get_mut("source").and_then(|s| s.as_array_mut()).ok_or_else(|| refuse("no [[source]]".into()))?;
            let found = sources.iter_mut().filter_map(|s| s.as_table_mut()).find_map(|s| {
                let name = s.get("name")?.as_str()?.to_ascii_uppercase().replace('-', "_");
                rest.strip_prefix(&format!("{name}_")).map(|key| (key.to_ascii_lowercase().replace('_', "-"), s))
            });
            let (key, entry) = found.ok_or_else(|| refuse("names no [[source]] by its name".into()))?;
            (entry, key)
        } else {
            return Err(refuse("unknown variable: GOULETTE_MIRROR_TARGET_*, _HTTP_* or _SOURCE_<NAME>_*".into()));
        };
        entry.insert(key, env_value(value, entry_is_list(entry, name)));
        used.push(name.clone());
    }
    Ok(used)
}

/// Whether the key a variable sets holds a list (so `a,b` is one).
fn entry_is_list(_entry: &toml::Table, variable: &str) -> bool {
    variable.ends_with("_SENTINELS")
}

/// A variable's value: TOML if it parses as a value, else a string.
fn env_value(text: &str, list: bool) -> toml::Value {
    if list && !text.trim_start().starts_with('[') {
        return toml::Value::Array(text.split(',').map(|s| toml::Value::String(s.trim().to_owned())).collect());
    }
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(text.to_owned())),
        Err(_) => toml::Value::String(text.to_owned()),
    }
}

impl MirrorConfig {
    /// Checks what types alone do not.
    pub fn validate(&self) -> Result<(), String> {
        if self.target.sentinels.is_empty() {
            return Err("target.sentinels: at least one address".into());
        }
        if self.sources.is_empty() {
            return Err("no [[source]]: nothing to mirror".into());
        }
        if self.target.max_in_flight == 0 {
            return Err("target.max-in-flight must be at least 1".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for source in &self.sources {
            let name = source.name();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(format!("source name {name:?}: letters, digits, - and _ only"));
            }
            if !names.insert(name.to_owned()) {
                return Err(format!("two sources are named {name:?}"));
            }
            if let Some(rate) = source.rate() {
                let bad = |r: Option<f64>| r.is_some_and(|r| !(r > 0.0 && r.is_finite()));
                if bad(rate.messages_per_second) || bad(rate.bytes_per_second) {
                    return Err(format!("source {name}: rate limits must be positive"));
                }
            }
            match source {
                SourceConfig::Files(f) if f.topic.is_empty() => {
                    return Err(format!("source {name}: topic is empty"));
                }
                SourceConfig::Files(f) if f.poll_interval.is_zero() => {
                    return Err(format!("source {name}: poll-interval must be positive"));
                }
                SourceConfig::Files(_) => {}
                SourceConfig::Rabbitmq(r) if r.topic.is_empty() || r.queue.is_empty() => {
                    return Err(format!("source {name}: queue and topic must be set"));
                }
                SourceConfig::Rabbitmq(r) if r.prefetch == 0 => {
                    return Err(format!("source {name}: prefetch must be at least 1"));
                }
                SourceConfig::Rabbitmq(r) => r.validate()?,
                SourceConfig::Kafka(k) => k.validate()?,
            }
        }
        Ok(())
    }
}

impl RabbitConfig {
    fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let tls = self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some();
        if tls && !self.url.starts_with("amqps://") {
            return Err(format!("source {name}: tls-ca, tls-cert and tls-key need an amqps:// url"));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(format!("source {name}: tls-cert and tls-key go together"));
        }
        Ok(())
    }
}

impl KafkaConfig {
    fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if self.brokers.trim().is_empty() || self.group.is_empty() {
            return Err(format!("source {name}: brokers and group must be set"));
        }
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            return Err(format!("source {name}: topics: at least one name or ^pattern"));
        }
        if self.topic.is_empty() {
            return Err(format!("source {name}: topic (the rename rule) is empty"));
        }
        if !self.sync_groups.is_empty() && self.partition != KafkaPartition::Same {
            return Err(format!(
                "source {name}: sync-groups needs partition = \"same\" (a group's offsets translate \
                 partition by partition)"
            ));
        }
        if self.sync_interval.is_zero() {
            return Err(format!("source {name}: sync-interval must be positive"));
        }
        if self.workers == 0 {
            return Err(format!("source {name}: workers must be at least 1"));
        }
        if self.exactly_once {
            if self.partition != KafkaPartition::Same {
                return Err(format!("source {name}: exactly-once needs partition = \"same\""));
            }
            if self.topics.iter().any(|t| t.starts_with('^')) {
                return Err(format!("source {name}: exactly-once needs topic names, not patterns"));
            }
            if self.dedup.is_some() {
                return Err(format!("source {name}: exactly-once does not take dedup (nothing is written twice)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<MirrorConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.toml");
        std::fs::write(&path, text).unwrap();
        load(&path, &env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    const GOOD: &str = r#"
[target]
sentinels = ["127.0.0.1:50052"]

[[source]]
name = "drops"
kind = "files"
directory = "/tmp/in"
topic = "drops"
poll-interval = "200ms"
"#;

    #[test]
    fn a_file_is_read_with_its_defaults() {
        let c = load_text(GOOD, &[]).unwrap();
        let SourceConfig::Files(f) = &c.sources[0] else { panic!("{c:?}") };
        assert_eq!((f.pattern.as_str(), f.mode, f.poll_interval), ("*", FileMode::Lines, Duration::from_millis(200)));
        assert_eq!(f.finished_directory(), PathBuf::from("/tmp/in/.finished"));
        assert_eq!(c.target.max_in_flight, 10_000);
    }

    #[test]
    fn variables_set_single_keys() {
        let env = [
            ("GOULETTE_MIRROR_TARGET_SENTINELS", "a:1, b:2"),
            ("GOULETTE_MIRROR_SOURCE_DROPS_TOPIC", "elsewhere"),
            ("GOULETTE_MIRROR_SOURCE_DROPS_RECURSIVE", "true"),
            ("GOULETTE_MIRROR_HTTP_ADDRESS", "127.0.0.1:9000"),
            ("HOME", "/root"),
        ];
        let c = load_text(GOOD, &env).unwrap();
        assert_eq!(c.target.sentinels, ["a:1", "b:2"]);
        let SourceConfig::Files(f) = &c.sources[0] else { panic!("{c:?}") };
        assert_eq!((f.topic.as_str(), f.recursive), ("elsewhere", true));
        assert_eq!(c.http.address, Some("127.0.0.1:9000".parse().unwrap()));
    }

    #[test]
    fn dedup_and_rate_are_read_and_checked() {
        let text = format!(
            "{GOOD}dedup = {{ by = \"key-value\", ttl = \"5m\" }}\nrate = {{ messages-per-second = 10, burst = \"2s\" }}\n"
        );
        let c = load_text(&text, &[]).unwrap();
        let source = &c.sources[0];
        let dedup = source.dedup().unwrap();
        assert_eq!(
            (dedup.by, dedup.ttl, dedup.max_entries),
            (crate::dedup::DedupBy::KeyValue, Duration::from_secs(300), 1_000_000)
        );
        let rate = source.rate().unwrap();
        assert_eq!(
            (rate.messages_per_second, rate.bytes_per_second, rate.burst),
            (Some(10.0), None, Duration::from_secs(2))
        );
        let e = load_text(&text.replace("= 10,", "= -1,"), &[]).unwrap_err().to_string();
        assert!(e.contains("rate limits must be positive"), "{e}");
        let e = load_text(&text.replace("key-value", "md5"), &[]).unwrap_err().to_string();
        assert!(e.contains("md5"), "{e}");
    }

    #[test]
    fn the_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                load(&path, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
                checked += 1;
            }
        }
        assert!(checked >= 1);
    }

    #[test]
    fn a_kafka_source_renames_topics_and_syncs_groups_only_partition_to_partition() {
        let text = "[target]\nsentinels = [\"127.0.0.1:50052\"]\n\n[[source]]\nname = \"legacy\"\nkind = \"kafka\"\n\
                    brokers = \"k:9092\"\ntopics = [\"orders\", \"^ev.*\"]\ntopic = \"old.{topic}\"\n";
        let c = load_text(text, &[("GOULETTE_MIRROR_SOURCE_LEGACY_SASL_PASSWORD", "secret")]).unwrap();
        let SourceConfig::Kafka(k) = &c.sources[0] else { panic!("{c:?}") };
        assert_eq!(
            (k.group.as_str(), k.partition, k.start),
            ("goulette-mirror", KafkaPartition::Key, KafkaStart::Earliest)
        );
        assert_eq!(k.sasl_password.as_deref(), Some("secret"));
        assert_eq!(c.sources[0].topics(), ["old.orders"], "a pattern's topics are not known before it runs");
        let e = load_text(&format!("{text}sync-groups = [\"billing\"]\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("partition = \"same\""), "{e}");
        load_text(&format!("{text}sync-groups = [\"billing\"]\npartition = \"same\"\n"), &[]).unwrap();
        let exact = format!("{text}exactly-once = true\npartition = \"same\"\n");
        let e = load_text(&exact, &[]).unwrap_err().to_string();
        assert!(e.contains("topic names, not patterns"), "{e}");
        let exact = exact.replace(", \"^ev.*\"", "");
        load_text(&exact, &[]).unwrap();
        let e = load_text(&exact.replace("\"same\"", "\"key\""), &[]).unwrap_err().to_string();
        assert!(e.contains("exactly-once needs partition"), "{e}");
    }

    #[test]
    fn rabbitmq_tls_files_need_an_amqps_url_and_a_key_goes_with_its_certificate() {
        let text = "[target]\nsentinels = [\"127.0.0.1:50052\"]\n\n[[source]]\nname = \"orders\"\nkind = \"rabbitmq\"\n\
                    queue = \"q\"\ntopic = \"t\"\nurl = \"amqps://u:p@rabbit:5671/%2f\"\ntls-ca = \"/ca.pem\"\n";
        let c = load_text(text, &[]).unwrap();
        let SourceConfig::Rabbitmq(r) = &c.sources[0] else { panic!("{c:?}") };
        assert_eq!(r.tls_ca.as_deref(), Some(Path::new("/ca.pem")));
        let e = load_text(&text.replace("amqps://", "amqp://"), &[]).unwrap_err().to_string();
        assert!(e.contains("need an amqps:// url"), "{e}");
        let e = load_text(&format!("{text}tls-cert = \"/c.pem\"\n"), &[]).unwrap_err().to_string();
        assert!(e.contains("tls-cert and tls-key go together"), "{e}");
        load_text(&format!("{text}tls-cert = \"/c.pem\"\ntls-key = \"/c.key\"\n"), &[]).unwrap();
    }

    #[test]
    fn mistakes_are_refused_naming_the_key() {
        let typo = GOOD.replace("poll-interval", "poll-intervall");
        let e = load_text(&typo, &[]).unwrap_err().to_string();
        assert!(e.contains("poll-intervall"), "{e}");
        let e = load_text(&GOOD.replace("\"200ms\"", "\"soon\""), &[]).unwrap_err().to_string();
        assert!(e.contains("soon"), "{e}");
        let e = load_text(GOOD, &[("GOULETTE_MIRROR_SOURCE_NOPE_TOPIC", "x")]).unwrap_err().to_string();
        assert!(e.contains("GOULETTE_MIRROR_SOURCE_NOPE_TOPIC"), "{e}");
        let e = load_text(GOOD, &[("GOULETTE_MIRROR_SOURCE_DROPS_TOPICC", "x")]).unwrap_err().to_string();
        assert!(e.contains("topicc"), "{e}");
        let e = load_text(&GOOD.replace("kind = \"files\"", "kind = \"ftp\""), &[]).unwrap_err().to_string();
        assert!(e.contains("ftp"), "{e}");
        let e = load_text(
            &format!("{GOOD}{}", GOOD.split("[[source]]").nth(1).map(|s| format!("[[source]]{s}")).unwrap()),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("two sources are named"), "{e}");
    }
}
