//! Which bindings a describe or delete is about (Kafka's
//! `AclBindingFilter`): each part is a value or "any"; for the pattern,
//! MATCH selects the bindings that apply to a name (its literal binding,
//! the `*` binding, and every prefix of it).

use super::model::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};

/// How a filter treats pattern types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternFilter {
    Any,
    /// The bindings that apply to the filter's name.
    Match,
    Exactly(PatternType),
}

/// A filter over bindings; `None` in a field: any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// The filter matching every binding.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: None,
            name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// Whether `b` passes the filter.
    pub fn matches(&self, b: &AclBinding) -> bool {
        let name_ok = match (&self.name, self.pattern) {
            (None, PatternFilter::Any | PatternFilter::Match) => true,
            (None, PatternFilter::Exactly(p)) => b.pattern == p,
            (Some(name), PatternFilter::Any) => b.name == *name,
            (Some(name), PatternFilter::Exactly(p)) => b.pattern == p && b.name == *name,
            (Some(name), PatternFilter::Match) => match b.pattern {
                PatternType::Literal => b.name == *name || b.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&b.name),
            },
        };
        name_ok
            && self.resource_type.is_none_or(|r| r == b.resource_type)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && self.operation.is_none_or(|o| o == b.operation)
            && self.permission.is_none_or(|p| p == b.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, pattern: PatternType) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn filters_select_as_kafka_does() {
        let literal = binding("orders", PatternType::Literal);
        let wildcard = binding("*", PatternType::Literal);
        let prefixed = binding("ord", PatternType::Prefixed);
        let other = binding("payments", PatternType::Literal);
        let all = [&literal, &wildcard, &prefixed, &other];
        let count = |f: &AclFilter| all.iter().filter(|b| f.matches(b)).count();
        assert_eq!(count(&AclFilter::any()), 4);
        let matching = AclFilter { name: Some("orders".into()), pattern: PatternFilter::Match, ..AclFilter::any() };
        assert_eq!(count(&matching), 3);
        let exact = AclFilter { name: Some("orders".into()), ..AclFilter::any() };
        assert_eq!(count(&exact), 1);
        let prefixes = AclFilter { pattern: PatternFilter::Exactly(PatternType::Prefixed), ..AclFilter::any() };
        assert_eq!(count(&prefixes), 1);
        let bob = AclFilter { principal: Some("User:bob".into()), ..AclFilter::any() };
        assert_eq!(count(&bob), 0);
        let reads =
            AclFilter { operation: Some(Operation::Read), permission: Some(Permission::Allow), ..AclFilter::any() };
        assert_eq!(count(&reads), 4);
    }
}
