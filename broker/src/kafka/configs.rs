//! Topic settings under their Kafka names, both ways: CreateTopics reads
//! them into a Goulette `TopicConfig`, DescribeConfigs (v1–4) shows a
//! topic's effective values, saying which are defaults.
//!
//! | Kafka name | Goulette setting | notes |
//! |---|---|---|
//! | `retention.ms` | `retention_ms` | −1: unlimited; default: the broker's |
//! | `retention.bytes` | `retention_bytes` | −1: unlimited (the default) |
//! | `min.insync.replicas` | `min_insync_replicas` | default 2 from 3 replicas, else 1 |
//! | `unclean.leader.election.enable` | `unclean_leader_election` | default false |
//! | `cleanup.policy` | — | `delete` only (compaction is not built yet) |
//! | `max.message.bytes` | the broker's `--max-batch-bytes` | read-only |
//! | `message.timestamp.type` | — | `CreateTime`, read-only |
//!
//! Any other name is INVALID_CONFIG, so a setting is never silently
//! ignored. Settings cannot be changed after creation yet (AlterConfigs is
//! not served).

use goulette_proto::v1 as pb;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::kafka::{Kafka, errors};

/// Kafka's resource type of a topic.
pub const TOPIC: i8 = 2;
/// Kafka's config sources: set on the topic, or a default.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

/// Applies one Kafka setting to `config`; `Err` is the reason it is refused.
pub fn apply(config: &mut pb::TopicConfig, name: &str, value: Option<&str>) -> Result<(), String> {
    let value = value.ok_or_else(|| format!("{name}: a value is required"))?;
    let number = || value.parse::<i64>().map_err(|_| format!("{name}: {value:?} is not a number"));
    match name {
        "retention.ms" => {
            config.retention_ms = match number()? {
                -1 => u64::MAX,
                n if n > 0 => n as u64,
                n => return Err(format!("retention.ms {n}: use -1 (unlimited) or a positive number")),
            }
        }
        "retention.bytes" => {
            config.retention_bytes = match number()? {
                -1 => 0,
                n if n > 0 => n as u64,
                n => return Err(format!("retention.bytes {n}: use -1 (unlimited) or a positive number")),
            }
        }
        "min.insync.replicas" => {
            config.min_insync_replicas = u32::try_from(number()?)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("min.insync.replicas {value}: at least 1"))?;
        }
        "unclean.leader.election.enable" => {
            config.unclean_leader_election =
                value.parse().map_err(|_| format!("unclean.leader.election.enable {value:?}: true or false"))?;
        }
        "cleanup.policy" if value == "delete" => {}
        "cleanup.policy" => return Err(format!("cleanup.policy {value:?}: only delete is supported yet")),
        _ => {
            return Err(format!(
                "{name} is not a Goulette topic setting (supported: retention.ms, retention.bytes, \
                 min.insync.replicas, unclean.leader.election.enable, cleanup.policy=delete)"
            ));
        }
    }
    Ok(())
}

/// A topic's settings under their Kafka names: (name, value, is default, read-only).
pub fn describe(kafka: &Kafka, config: &pb::TopicConfig) -> Vec<(&'static str, String, bool, bool)> {
    let broker_retention = kafka.config.log.retention_age.map_or(-1, |d| d.as_millis() as i64);
    let retention_ms = match config.retention_ms {
        0 => (broker_retention.to_string(), true),
        u64::MAX => ("-1".to_owned(), false),
        n => (n.to_string(), false),
    };
    let retention_bytes = match config.retention_bytes {
        0 => ("-1".to_owned(), true),
        n => (n.to_string(), false),
    };
    let min_insync = match config.min_insync_replicas {
        0 => (if config.replication_factor >= 3 { "2" } else { "1" }.to_owned(), true),
        n => (n.to_string(), false),
    };
    vec![
        ("retention.ms", retention_ms.0, retention_ms.1, false),
        ("retention.bytes", retention_bytes.0, retention_bytes.1, false),
        ("min.insync.replicas", min_insync.0, min_insync.1, false),
        (
            "unclean.leader.election.enable",
            config.unclean_leader_election.to_string(),
            !config.unclean_leader_election,
            false,
        ),
        ("cleanup.policy", "delete".to_owned(), true, true),
        ("max.message.bytes", kafka.config.log.max_batch_bytes.to_string(), true, true),
        ("message.timestamp.type", "CreateTime".to_owned(), true, true),
    ]
}

/// Answers a DescribeConfigs request (topics; other resources are refused).
pub async fn handle(kafka: &Kafka, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut results = Vec::with_capacity(req.resources.len().min(1024));
    for resource in req.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let refuse = |code: i16, message: String| {
            result.clone().with_error_code(code).with_error_message(Some(StrBytes::from_string(message)))
        };
        if resource.resource_type != TOPIC {
            results.push(refuse(ResponseError::InvalidRequest.code(), "only topic configs can be described".into()));
            continue;
        }
        let name = resource.resource_name.to_string();
        let asked = pb::MetadataRequest { topics: vec![name.clone()], ..Default::default() };
        let topic = match kafka.sentinels.metadata(asked).await {
            Ok(answer) => answer.topics.into_iter().next(),
            Err(e) => {
                results.push(refuse(ResponseError::RequestTimedOut.code(), e.to_string()));
                continue;
            }
        };
        let config = match topic {
            Some(pb::TopicMetadata { error: None, config: Some(config), .. }) => config,
            Some(pb::TopicMetadata { error: Some(e), .. }) => {
                results.push(refuse(errors::code(&e), e.message));
                continue;
            }
            _ => {
                results.push(refuse(ResponseError::UnknownTopicOrPartition.code(), format!("no topic {name}")));
                continue;
            }
        };
        let wanted = resource.configuration_keys.as_ref();
        let configs = describe(kafka, &config)
            .into_iter()
            .filter(|(key, ..)| wanted.is_none_or(|w| w.iter().any(|k| k.as_str() == *key)))
            .map(|(key, value, default, read_only)| {
                DescribeConfigsResourceResult::default()
                    .with_name(StrBytes::from_static_str(key))
                    .with_value(Some(StrBytes::from_string(value)))
                    .with_read_only(read_only)
                    .with_config_source(if default { DEFAULT_CONFIG } else { DYNAMIC_TOPIC_CONFIG })
            })
            .collect();
        results.push(result.with_configs(configs));
    }
    DescribeConfigsResponse::default().with_results(results)
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
        assert!(apply(&mut c, "cleanup.policy", Some("compact")).is_err());
        assert!(apply(&mut c, "retention.ms", Some("0")).is_err());
        assert!(apply(&mut c, "min.insync.replicas", Some("0")).is_err());
        assert!(apply(&mut c, "segment.bytes", Some("1000")).unwrap_err().contains("not a Goulette topic setting"));
        assert!(apply(&mut c, "retention.ms", None).is_err());
    }
}
