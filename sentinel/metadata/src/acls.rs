//! ACL bindings (`acls/{id}`), one key each, as JSON with every part by
//! name so `etcdctl get` reads them; the id is the binding's own hash, so
//! adding a binding twice stores it once.

use goulette_auth::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use serde::{Deserialize, Serialize};

/// One stored binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRecord {
    pub resource_type: String,
    pub name: String,
    pub pattern: String,
    pub principal: String,
    pub host: String,
    pub operation: String,
    pub permission: String,
}

impl From<&AclBinding> for AclRecord {
    fn from(b: &AclBinding) -> AclRecord {
        AclRecord {
            resource_type: b.resource_type.name().to_owned(),
            name: b.name.clone(),
            pattern: b.pattern.name().to_owned(),
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation.name().to_owned(),
            permission: b.permission.name().to_owned(),
        }
    }
}

impl TryFrom<&AclRecord> for AclBinding {
    type Error = String;

    fn try_from(r: &AclRecord) -> Result<AclBinding, String> {
        let binding = AclBinding {
            resource_type: ResourceType::parse(&r.resource_type)
                .ok_or_else(|| format!("unknown resource type {:?}", r.resource_type))?,
            name: r.name.clone(),
            pattern: PatternType::parse(&r.pattern).ok_or_else(|| format!("unknown pattern {:?}", r.pattern))?,
            principal: r.principal.clone(),
            host: r.host.clone(),
            operation: Operation::parse(&r.operation).ok_or_else(|| format!("unknown operation {:?}", r.operation))?,
            permission: match r.permission.as_str() {
                "allow" => Permission::Allow,
                "deny" => Permission::Deny,
                other => return Err(format!("unknown permission {other:?}")),
            },
        };
        binding.check()?;
        Ok(binding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let b = AclBinding {
            resource_type: ResourceType::TransactionalId,
            name: "tx-".into(),
            pattern: PatternType::Prefixed,
            principal: "User:*".into(),
            host: "10.0.0.1".into(),
            operation: Operation::DescribeConfigs,
            permission: Permission::Deny,
        };
        let json = serde_json::to_string(&AclRecord::from(&b)).unwrap();
        assert!(json.contains("\"describe-configs\"") && json.contains("\"transactional-id\""), "{json}");
        let back: AclRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(AclBinding::try_from(&back).unwrap(), b);
    }
}
