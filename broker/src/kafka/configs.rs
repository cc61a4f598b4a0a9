//! Topic settings under their Kafka names, both ways: CreateTopics and
//! AlterConfigs read them into Goulette settings, DescribeConfigs (v1–4) shows a
//! topic's effective values, saying which are defaults, and a broker's
//! start settings (read-only) under Kafka's names.
//!
//! | Kafka name | Goulette setting | notes |
//! |---|---|---|
//! | `retention.ms` | `retention_ms` | −1: unlimited; default: the broker's |
//! | `retention.bytes` | `retention_bytes` | −1: unlimited (the default) |
//! | `min.insync.replicas` | `min_insync_replicas` | default 2 from 3 replicas, else 1 |
//! | `unclean.leader.election.enable` | `unclean_leader_election` | default false |
//! | `cleanup.policy` | `cleanup_policy` | `delete` (default), `compact`, `compact,delete` |
//! | `delete.retention.ms` | `delete_retention_ms` | default 1 day (0 is taken as 1 ms) |
//! | `min.compaction.lag.ms` | `min_compaction_lag_ms` | default 0 |
//! | `min.cleanable.dirty.ratio` | `min_cleanable_dirty_ratio_permille` | default 0.5 (kept in thousandths) |
//! | `segment.bytes` | `segment_bytes` | default: the broker's `--fragment-bytes` |
//! | `segment.ms` | `segment_ms` | default: the broker's fragment age (1 day) |
//! | `max.message.bytes` | the broker's `--max-batch-bytes` | read-only |
//! | `message.timestamp.type` | — | `CreateTime`, read-only |
//!
//! Any other name is INVALID_CONFIG, so a setting is never silently
//! ignored. The same names change a topic's settings (`alter_configs.rs`).

use goulette_proto::cleanup_policy;
use goulette_proto::v1 as pb;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Kafka, errors};

/// Kafka's resource types: a topic, a broker.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
/// Kafka's config sources: set on the topic, a broker's start setting, or
/// a default.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// One topic setting, read from its Kafka name and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `u64::MAX`: unlimited; 0: the broker's default.
    RetentionMs(u64),
    /// 0: unlimited.
    RetentionBytes(u64),
    /// 0: the default for the replication factor.
    MinInsyncReplicas(u32),
    UncleanLeaderElection(bool),
    Cleanup(pb::CleanupPolicy),
    /// 0: the default (1 day).
    DeleteRetentionMs(u64),
    MinCompactionLagMs(u64),
    /// Thousandths; 0: the default (500).
    MinCleanableDirtyRatio(u32),
    /// 0: the broker's.
    SegmentBytes(u64),
    /// 0: the broker's.
    SegmentMs(u64),
}

const SUPPORTED: &str = "supported: retention.ms, retention.bytes, min.insync.replicas, \
     unclean.leader.election.enable, cleanup.policy, delete.retention.ms, min.compaction.lag.ms, \
     min.cleanable.dirty.ratio, segment.bytes, segment.ms";

/// Reads one Kafka setting; `Err` is the reason it is refused. Any name
/// not listed above is refused, so a setting is never silently ignored.
pub fn parse(name: &str, value: Option<&str>) -> Result<Setting, String> {
    let value = value.ok_or_else(|| format!("{name}: a value is required"))?;
    let number = || value.parse::<i64>().map_err(|_| format!("{name}: {value:?} is not a number"));
    Ok(match name {
        "retention.ms" => Setting::RetentionMs(match number()? {
            -1 => u64::MAX,
            n if n > 0 => n as u64,
            n => return Err(format!("retention.ms {n}: use -1 (unlimited) or a positive number")),
        }),
        "retention.bytes" => Setting::RetentionBytes(match number()? {
            -1 => 0,
            n if n > 0 => n as u64,
            n => return Err(format!("retention.bytes {n}: use -1 (unlimited) or a positive number")),
        }),
        "min.insync.replicas" => Setting::MinInsyncReplicas(
            u32::try_from(number()?)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("min.insync.replicas {value}: at least 1"))?,
        ),
        "unclean.leader.election.enable" => Setting::UncleanLeaderElection(
            value.parse().map_err(|_| format!("unclean.leader.election.enable {value:?}: true or false"))?,
        ),
        "cleanup.policy" => Setting::Cleanup(cleanup_policy::parse(value)?),
        // Goulette's 0 means "the default": Kafka's 0 (no stay) is 1 ms.
        "delete.retention.ms" => Setting::DeleteRetentionMs(non_negative(name, number()?)?.max(1)),
        "min.compaction.lag.ms" => Setting::MinCompactionLagMs(non_negative(name, number()?)?),
        "min.cleanable.dirty.ratio" => Setting::MinCleanableDirtyRatio(
            cleanup_policy::parse_dirty_ratio(value).map_err(|e| format!("{name}: {e}"))?,
        ),
        "segment.bytes" => Setting::SegmentBytes(match number()? {
            n if u64::try_from(n).is_ok_and(|n| cleanup_policy::SEGMENT_BYTES.contains(&n)) => n as u64,
            n => {
                let (low, high) = cleanup_policy::SEGMENT_BYTES.into_inner();
                return Err(format!("segment.bytes {n}: between {low} and {high}"));
            }
        }),
        "segment.ms" => Setting::SegmentMs(match number()? {
            n if n > 0 => n as u64,
            n => return Err(format!("segment.ms {n}: a positive number")),
        }),
        _ => return Err(format!("{name} is not a Goulette topic setting ({SUPPORTED})")),
    })
}

fn non_negative(name: &str, n: i64) -> Result<u64, String> {
    u64::try_from(n).map_err(|_| format!("{name} {n}: not negative"))
}

/// The default of the setting named `name` (what Kafka's DELETE of a
/// setting goes back to).
pub fn default_of(name: &str) -> Result<Setting, String> {
    Ok(match name {
        "retention.ms" => Setting::RetentionMs(0),
        "retention.bytes" => Setting::RetentionBytes(0),
        "min.insync.replicas" => Setting::MinInsyncReplicas(0),
        "unclean.leader.election.enable" => Setting::UncleanLeaderElection(false),
        "cleanup.policy" => Setting::Cleanup(pb::CleanupPolicy::Delete),
        "delete.retention.ms" => Setting::DeleteRetentionMs(0),
        "min.compaction.lag.ms" => Setting::MinCompactionLagMs(0),
        "min.cleanable.dirty.ratio" => Setting::MinCleanableDirtyRatio(0),
        "segment.bytes" => Setting::SegmentBytes(0),
        "segment.ms" => Setting::SegmentMs(0),
        _ => return Err(format!("{name} is not a Goulette topic setting ({SUPPORTED})")),
    })
}

/// Applies one Kafka setting to a new topic's `config`; `Err` is the
/// reason it is refused.
pub fn apply(config: &mut pb::TopicConfig, name: &str, value: Option<&str>) -> Result<(), String> {
    match parse(name, value)? {
        Setting::RetentionMs(ms) => config.retention_ms = ms,
        Setting::RetentionBytes(bytes) => config.retention_bytes = bytes,
        Setting::MinInsyncReplicas(n) => config.min_insync_replicas = n,
        Setting::UncleanLeaderElection(on) => config.unclean_leader_election = on,
        Setting::Cleanup(policy) => config.cleanup_policy = policy as i32,
        Setting::DeleteRetentionMs(ms) => config.delete_retention_ms = ms,
        Setting::MinCompactionLagMs(ms) => config.min_compaction_lag_ms = ms,
        Setting::MinCleanableDirtyRatio(permille) => config.min_cleanable_dirty_ratio_permille = permille,
        Setting::SegmentBytes(bytes) => config.segment_bytes = bytes,
        Setting::SegmentMs(ms) => config.segment_ms = ms,
    }
    Ok(())
}

/// Adds `setting` to a change of an existing topic.
pub fn change(req: &mut pb::AlterTopicRequest, setting: Setting) {
    match setting {
        Setting::RetentionMs(ms) => req.retention_ms = Some(ms),
        Setting::RetentionBytes(bytes) => req.retention_bytes = Some(bytes),
        Setting::MinInsyncReplicas(n) => req.min_insync_replicas = Some(n),
        Setting::UncleanLeaderElection(on) => req.unclean_leader_election = Some(on),
        Setting::Cleanup(policy) => req.cleanup_policy = Some(policy as i32),
        Setting::DeleteRetentionMs(ms) => req.delete_retention_ms = Some(ms),
        Setting::MinCompactionLagMs(ms) => req.min_compaction_lag_ms = Some(ms),
        Setting::MinCleanableDirtyRatio(permille) => req.min_cleanable_dirty_ratio_permille = Some(permille),
        Setting::SegmentBytes(bytes) => req.segment_bytes = Some(bytes),
        Setting::SegmentMs(ms) => req.segment_ms = Some(ms),
    }
}

/// One setting as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: &'static str,
    pub value: String,
    /// Where the value comes from (Kafka's config source).
    pub source: i8,
    pub read_only: bool,
    /// Kafka's config type (v3+).
    pub kind: i8,
}

/// Kafka's config types.
const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const DOUBLE: i8 = 6;
const LIST: i8 = 7;

fn entry(name: &'static str, value: String, source: i8, read_only: bool, kind: i8) -> Entry {
    Entry { name, value, source, read_only, kind }
}

/// A topic's settings under their Kafka names, with which are defaults.
pub fn describe_topic(kafka: &Kafka, config: &pb::TopicConfig) -> Vec<Entry> {
    let set = |default: bool| if default { DEFAULT_CONFIG } else { DYNAMIC_TOPIC_CONFIG };
    let broker_retention = kafka.config.log.retention_age.map_or(-1, |d| d.as_millis() as i64);
    let (retention_ms, retention_ms_default) = match config.retention_ms {
        0 => (broker_retention.to_string(), true),
        u64::MAX => ("-1".to_owned(), false),
        n => (n.to_string(), false),
    };
    let (retention_bytes, retention_bytes_default) = match config.retention_bytes {
        0 => ("-1".to_owned(), true),
        n => (n.to_string(), false),
    };
    let (min_insync, min_insync_default) = match config.min_insync_replicas {
        0 => (if config.replication_factor >= 3 { "2" } else { "1" }.to_owned(), true),
        n => (n.to_string(), false),
    };
    let unclean = config.unclean_leader_election;
    let policy = config.cleanup_policy();
    let policy_name = cleanup_policy::name(policy).to_owned();
    // (value, whether it is the default)
    let or = |v: u64, default: u64| if v == 0 { (default.to_string(), true) } else { (v.to_string(), false) };
    let (delete_retention, delete_retention_default) =
        or(config.delete_retention_ms, cleanup_policy::DEFAULT_DELETE_RETENTION_MS);
    let (lag, lag_default) = or(config.min_compaction_lag_ms, 0);
    let permille = config.min_cleanable_dirty_ratio_permille;
    let (ratio, ratio_default) = (cleanup_policy::dirty_ratio(permille).to_string(), permille == 0);
    let (segment_bytes, segment_bytes_default) = or(config.segment_bytes, kafka.config.log.fragment_bytes);
    let broker_age = kafka.config.log.fragment_max_age.as_millis() as u64;
    let (segment_ms, segment_ms_default) = or(config.segment_ms, broker_age);
    vec![
        entry("retention.ms", retention_ms, set(retention_ms_default), false, LONG),
        entry("retention.bytes", retention_bytes, set(retention_bytes_default), false, LONG),
        entry("min.insync.replicas", min_insync, set(min_insync_default), false, INT),
        entry("unclean.leader.election.enable", unclean.to_string(), set(!unclean), false, BOOLEAN),
        entry("cleanup.policy", policy_name, set(policy == pb::CleanupPolicy::Delete), false, LIST),
        entry("delete.retention.ms", delete_retention, set(delete_retention_default), false, LONG),
        entry("min.compaction.lag.ms", lag, set(lag_default), false, LONG),
        entry("min.cleanable.dirty.ratio", ratio, set(ratio_default), false, DOUBLE),
        entry("segment.bytes", segment_bytes, set(segment_bytes_default), false, INT),
        entry("segment.ms", segment_ms, set(segment_ms_default), false, LONG),
        entry("max.message.bytes", kafka.config.log.max_batch_bytes.to_string(), DEFAULT_CONFIG, true, INT),
        entry("message.timestamp.type", "CreateTime".to_owned(), DEFAULT_CONFIG, true, STRING),
    ]
}

/// This broker's settings under their Kafka names (all read-only: they
/// are its start flags).
pub fn describe_broker(kafka: &Kafka) -> Vec<Entry> {
    let c = &kafka.config;
    let listen = c.kafka_address.map(|a| format!("PLAINTEXT://{a}")).unwrap_or_default();
    let advertised = c.kafka_advertised().map(|a| format!("PLAINTEXT://{a}")).unwrap_or_default();
    let retention = c.log.retention_age.map_or(-1, |d| d.as_millis() as i64);
    let delay = c.kafka_group_initial_delay.as_millis().to_string();
    vec![
        entry("advertised.listeners", advertised, STATIC_BROKER_CONFIG, true, LIST),
        entry("listeners", listen, STATIC_BROKER_CONFIG, true, LIST),
        entry("node.id", c.id.to_string(), STATIC_BROKER_CONFIG, true, INT),
        entry("broker.id", c.id.to_string(), STATIC_BROKER_CONFIG, true, INT),
        entry("log.dirs", c.data_dir.display().to_string(), STATIC_BROKER_CONFIG, true, STRING),
        entry("log.retention.ms", retention.to_string(), STATIC_BROKER_CONFIG, true, LONG),
        entry("message.max.bytes", c.log.max_batch_bytes.to_string(), STATIC_BROKER_CONFIG, true, INT),
        entry("socket.request.max.bytes", c.kafka_max_request_bytes.to_string(), STATIC_BROKER_CONFIG, true, INT),
        entry("group.initial.rebalance.delay.ms", delay, STATIC_BROKER_CONFIG, true, INT),
    ]
}

/// Answers a DescribeConfigs request: topics, and this broker.
pub async fn handle(kafka: &Kafka, version: i16, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(req.resources.len().min(1024));
    for resource in req.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let entries = match resource.resource_type {
            TOPIC => topic_entries(kafka, resource.resource_name.as_str()).await,
            BROKER => {
                let name = resource.resource_name.as_str();
                if name.is_empty() || name == kafka.config.id.to_string() {
                    Ok(describe_broker(kafka))
                } else {
                    Err((
                        ResponseError::InvalidRequest.code(),
                        format!("this is broker {}, not {name}", kafka.config.id),
                    ))
                }
            }
            _ => Err((ResponseError::InvalidRequest.code(), "only topic and broker configs can be described".into())),
        };
        let entries = match entries {
            Ok(entries) => entries,
            Err((code, message)) => {
                results.push(result.with_error_code(code).with_error_message(Some(StrBytes::from_string(message))));
                continue;
            }
        };
        let wanted = resource.configuration_keys.as_ref();
        let configs = entries
            .into_iter()
            .filter(|e| wanted.is_none_or(|w| w.iter().any(|k| k.as_str() == e.name)))
            .map(|e| {
                let out = DescribeConfigsResourceResult::default()
                    .with_name(StrBytes::from_static_str(e.name))
                    .with_value(Some(StrBytes::from_string(e.value)))
                    .with_read_only(e.read_only)
                    .with_config_source(e.source);
                if version >= 3 { out.with_config_type(e.kind) } else { out }
            })
            .collect();
        results.push(result.with_configs(configs));
    }
    DescribeConfigsResponse::default().with_results(results)
}

/// A topic's settings, or the error code and message to answer.
async fn topic_entries(kafka: &Kafka, name: &str) -> Result<Vec<Entry>, (i16, String)> {
    let asked = pb::MetadataRequest { topics: vec![name.to_owned()], ..Default::default() };
    let answer =
        kafka.sentinels.metadata(asked).await.map_err(|e| (ResponseError::RequestTimedOut.code(), e.to_string()))?;
    match answer.topics.into_iter().next() {
        Some(pb::TopicMetadata { error: None, config: Some(config), .. }) => Ok(describe_topic(kafka, &config)),
        Some(pb::TopicMetadata { error: Some(e), .. }) => Err((errors::code(&e), e.message)),
        _ => Err((ResponseError::UnknownTopicOrPartition.code(), format!("no topic {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_settings_map_to_goulettes_and_unknown_ones_are_refused() {
        let mut c = pb::TopicConfig::default();
        apply(&mut c, "retention.ms", Some("-1")).unwrap();
        assert_eq!(c.retention_ms, u64::MAX);
        apply(&mut c, "retention.ms", Some("60000")).unwrap();
        assert_eq!(c.retention_ms, 60_000);
        apply(&mut c, "retention.bytes", Some("-1")).unwrap();
        assert_eq!(c.retention_bytes, 0);
        apply(&mut c, "min.insync.replicas", Some("2")).unwrap();
        assert_eq!(c.min_insync_replicas, 2);
        apply(&mut c, "unclean.leader.election.enable", Some("true")).unwrap();
        assert!(c.unclean_leader_election);
        apply(&mut c, "cleanup.policy", Some("delete")).unwrap();
        apply(&mut c, "cleanup.policy", Some("compact,delete")).unwrap();
        assert_eq!(c.cleanup_policy(), pb::CleanupPolicy::CompactDelete);
        assert!(apply(&mut c, "cleanup.policy", Some("shred")).is_err());
        apply(&mut c, "delete.retention.ms", Some("0")).unwrap();
        assert_eq!(c.delete_retention_ms, 1, "Kafka's 0 is not Goulette's default");
        apply(&mut c, "min.cleanable.dirty.ratio", Some("0.25")).unwrap();
        assert_eq!(c.min_cleanable_dirty_ratio_permille, 250);
        apply(&mut c, "segment.ms", Some("100")).unwrap();
        assert_eq!(c.segment_ms, 100);
        assert!(apply(&mut c, "segment.bytes", Some("1000")).is_err());
        assert!(apply(&mut c, "retention.ms", Some("0")).is_err());
        assert!(apply(&mut c, "min.insync.replicas", Some("0")).is_err());
        assert!(apply(&mut c, "flush.ms", Some("1000")).unwrap_err().contains("not a Goulette topic setting"));
        assert!(apply(&mut c, "retention.ms", None).is_err());
    }

    #[test]
    fn a_change_names_only_what_it_sets_and_defaults_go_back_to_zero() {
        let mut req = pb::AlterTopicRequest::default();
        change(&mut req, parse("retention.bytes", Some("1048576")).unwrap());
        assert_eq!(req.retention_bytes, Some(1 << 20));
        assert_eq!((req.retention_ms, req.min_insync_replicas, req.unclean_leader_election), (None, None, None));
        change(&mut req, default_of("min.insync.replicas").unwrap());
        assert_eq!(req.min_insync_replicas, Some(0));
        change(&mut req, default_of("cleanup.policy").unwrap());
        assert_eq!(req.cleanup_policy, Some(0));
        change(&mut req, default_of("segment.bytes").unwrap());
        assert_eq!(req.segment_bytes, Some(0));
        assert!(default_of("flush.ms").is_err());
    }
}
