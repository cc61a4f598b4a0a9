//! Bindings and filters as Goulette's protocol messages, which use Kafka's
//! numbers (so Kafka's CreateAcls/DescribeAcls/DeleteAcls map one to one).

use goulette_proto::v1 as pb;

use super::filter::{AclFilter, PatternFilter};
use super::model::{AclBinding, Operation, PatternType, Permission, ResourceType};

/// Kafka's "any" in a filter's numbers.
const ANY: i32 = 1;
/// Kafka's MATCH pattern type.
const MATCH: i32 = 2;

impl From<&AclBinding> for pb::AclBinding {
    fn from(b: &AclBinding) -> pb::AclBinding {
        pb::AclBinding {
            resource_type: b.resource_type.kafka_code().into(),
            name: b.name.clone(),
            pattern_type: b.pattern.kafka_code().into(),
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation.kafka_code().into(),
            permission: b.permission.kafka_code().into(),
        }
    }
}

fn code(value: i32) -> i8 {
    i8::try_from(value).unwrap_or(-1)
}

impl TryFrom<&pb::AclBinding> for AclBinding {
    type Error = String;

    fn try_from(b: &pb::AclBinding) -> Result<AclBinding, String> {
        let binding = AclBinding {
            resource_type: ResourceType::from_kafka_code(code(b.resource_type))
                .ok_or_else(|| format!("unknown resource type {}", b.resource_type))?,
            name: b.name.clone(),
            pattern: PatternType::from_kafka_code(code(b.pattern_type))
                .ok_or_else(|| format!("pattern type {}: a binding is literal (3) or prefixed (4)", b.pattern_type))?,
            principal: b.principal.clone(),
            host: if b.host.is_empty() { "*".to_owned() } else { b.host.clone() },
            operation: Operation::from_kafka_code(code(b.operation))
                .ok_or_else(|| format!("unknown operation {}", b.operation))?,
            permission: Permission::from_kafka_code(code(b.permission))
                .ok_or_else(|| format!("permission {}: allow (3) or deny (2)", b.permission))?,
        };
        binding.check()?;
        Ok(binding)
    }
}

impl From<&AclFilter> for pb::AclFilter {
    fn from(f: &AclFilter) -> pb::AclFilter {
        pb::AclFilter {
            resource_type: f.resource_type.map_or(ANY, |r| r.kafka_code().into()),
            name: f.name.clone(),
            pattern_type: match f.pattern {
                PatternFilter::Any => ANY,
                PatternFilter::Match => MATCH,
                PatternFilter::Exactly(p) => p.kafka_code().into(),
            },
            principal: f.principal.clone(),
            host: f.host.clone(),
            operation: f.operation.map_or(ANY, |o| o.kafka_code().into()),
            permission: f.permission.map_or(ANY, |p| p.kafka_code().into()),
        }
    }
}

impl TryFrom<&pb::AclFilter> for AclFilter {
    type Error = String;

    fn try_from(f: &pb::AclFilter) -> Result<AclFilter, String> {
        // 0 (unset) reads as "any" too, so an empty filter selects everything.
        let any = |v: i32| v == 0 || v == ANY;
        Ok(AclFilter {
            resource_type: match f.resource_type {
                v if any(v) => None,
                v => Some(ResourceType::from_kafka_code(code(v)).ok_or_else(|| format!("unknown resource type {v}"))?),
            },
            name: f.name.clone(),
            pattern: match f.pattern_type {
                v if any(v) => PatternFilter::Any,
                MATCH => PatternFilter::Match,
                v => PatternFilter::Exactly(
                    PatternType::from_kafka_code(code(v)).ok_or_else(|| format!("unknown pattern type {v}"))?,
                ),
            },
            principal: f.principal.clone(),
            host: f.host.clone(),
            operation: match f.operation {
                v if any(v) => None,
                v => Some(Operation::from_kafka_code(code(v)).ok_or_else(|| format!("unknown operation {v}"))?),
            },
            permission: match f.permission {
                v if any(v) => None,
                v => Some(Permission::from_kafka_code(code(v)).ok_or_else(|| format!("unknown permission {v}"))?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_and_filters_round_trip() {
        let b = AclBinding {
            resource_type: ResourceType::Group,
            name: "team-".into(),
            pattern: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Deny,
        };
        assert_eq!(AclBinding::try_from(&pb::AclBinding::from(&b)).unwrap(), b);
        let bad = pb::AclBinding { pattern_type: MATCH, ..pb::AclBinding::from(&b) };
        assert!(AclBinding::try_from(&bad).is_err());
        let f = AclFilter { name: Some("team-x".into()), pattern: PatternFilter::Match, ..AclFilter::any() };
        assert_eq!(AclFilter::try_from(&pb::AclFilter::from(&f)).unwrap(), f);
        assert_eq!(AclFilter::try_from(&pb::AclFilter::default()).unwrap(), AclFilter::any());
    }
}
