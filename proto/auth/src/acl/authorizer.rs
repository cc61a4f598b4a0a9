//! The ACL index: bindings grouped by principal, then by resource type,
//! then by literal name and by prefix. A check looks at the caller's own
//! bindings and those for every user (`User:*`) only, with a handful of
//! hash lookups (one per distinct prefix length for prefixed bindings), so
//! its cost does not grow with other principals' bindings (KAFKA-20667:
//! Kafka's checks cost O(ACLs)). `benches/acl.rs` measures it with 10,000
//! bindings.
//!
//! Rules, as Kafka's: super users may do anything; a matching DENY wins;
//! else a matching ALLOW (with its implied operations) allows; else no.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::model::{AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD};

/// The principal every user matches.
const ANY_USER: &str = "User:*";

/// One binding as the index keeps it.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// `None`: any host.
    host: Option<IpAddr>,
    operation: Operation,
    permission: Permission,
}

/// One principal's bindings on one resource type.
#[derive(Debug, Default)]
struct Index {
    /// By literal name (`*` included, as a name).
    literal: HashMap<String, Vec<Rule>>,
    /// By prefix.
    prefixed: HashMap<String, Vec<Rule>>,
    /// The distinct lengths of the prefixes, ascending: a name is looked up
    /// once per length, not once per binding.
    prefix_lengths: Vec<usize>,
}

impl Index {
    fn rules_for<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        let literal = self.literal.get(name).into_iter().flatten();
        let wildcard = if name == WILDCARD { None } else { self.literal.get(WILDCARD) };
        let prefixed = self
            .prefix_lengths
            .iter()
            .take_while(move |&&len| len <= name.len())
            .filter(move |&&len| name.is_char_boundary(len))
            .filter_map(move |&len| self.prefixed.get(&name[..len]))
            .flatten();
        literal.chain(wildcard.into_iter().flatten()).chain(prefixed)
    }
}

/// Answers "may this principal do this?" for a set of bindings.
#[derive(Debug, Default)]
pub struct Authorizer {
    super_users: HashSet<String>,
    /// Principal → an index per resource type (in `ResourceType::ALL` order).
    by_principal: HashMap<String, [Index; 4]>,
    bindings: usize,
}

fn slot(resource_type: ResourceType) -> usize {
    match resource_type {
        ResourceType::Topic => 0,
        ResourceType::Group => 1,
        ResourceType::Cluster => 2,
        ResourceType::TransactionalId => 3,
    }
}

impl Authorizer {
    /// An index of `bindings` (unusable ones left out: a host that is not
    /// an address matches nothing), with `super_users` allowed everything.
    pub fn new<'a>(
        bindings: impl IntoIterator<Item = &'a AclBinding>,
        super_users: impl IntoIterator<Item = String>,
    ) -> Authorizer {
        let mut by_principal: HashMap<String, [Index; 4]> = HashMap::new();
        let mut count = 0;
        for b in bindings {
            let host = match b.host.as_str() {
                WILDCARD => None,
                h => match h.parse() {
                    Ok(ip) => Some(ip),
                    Err(_) => continue,
                },
            };
            let rule = Rule { host, operation: b.operation, permission: b.permission };
            let index = &mut by_principal.entry(b.principal.clone()).or_default()[slot(b.resource_type)];
            match b.pattern {
                PatternType::Literal => index.literal.entry(b.name.clone()).or_default().push(rule),
                PatternType::Prefixed => {
                    index.prefixed.entry(b.name.clone()).or_default().push(rule);
                    if let Err(at) = index.prefix_lengths.binary_search(&b.name.len()) {
                        index.prefix_lengths.insert(at, b.name.len());
                    }
                }
            }
            count += 1;
        }
        Authorizer { super_users: super_users.into_iter().collect(), by_principal, bindings: count }
    }

    /// How many bindings it holds.
    pub fn len(&self) -> usize {
        self.bindings
    }

    /// Whether it holds no binding.
    pub fn is_empty(&self) -> bool {
        self.bindings == 0
    }

    /// Whether `principal` (`User:alice`), connecting from `host`, may do
    /// `operation` on the resource of `resource_type` named `name`.
    pub fn authorize(
        &self,
        principal: &str,
        host: Option<IpAddr>,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.super_users.contains(principal) {
            return true;
        }
        let mut allowed = false;
        let own = self.by_principal.get(principal);
        let everyone = if principal == ANY_USER { None } else { self.by_principal.get(ANY_USER) };
        for indexes in own.into_iter().chain(everyone) {
            for rule in indexes[slot(resource_type)].rules_for(name) {
                if rule.host.is_some_and(|h| Some(h) != host) {
                    continue;
                }
                match rule.permission {
                    Permission::Deny if rule.operation.denies(operation) => return false,
                    Permission::Allow if rule.operation.allows(operation) => allowed = true,
                    _ => {}
                }
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        principal: &str,
        op: Operation,
        perm: Permission,
        rt: ResourceType,
        pattern: PatternType,
        name: &str,
    ) -> AclBinding {
        AclBinding {
            resource_type: rt,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    #[test]
    fn nothing_matching_is_no() {
        let a = Authorizer::new(&[acl("User:bob", Read, Allow, Topic, Literal, "orders")], []);
        assert!(!a.authorize("User:alice", None, Read, Topic, "orders"));
        assert!(!a.authorize("User:bob", None, Read, Topic, "order"));
        assert!(!a.authorize("User:bob", None, Read, Group, "orders"));
        assert!(a.authorize("User:bob", None, Read, Topic, "orders"));
        assert!(a.authorize("User:bob", None, Describe, Topic, "orders"), "READ implies DESCRIBE");
        assert!(!a.authorize("User:bob", None, Write, Topic, "orders"));
    }

    #[test]
    fn literal_wildcard_and_prefixed_names_match() {
        let bindings = [
            acl("User:alice", Write, Allow, Topic, Prefixed, "logs."),
            acl("User:alice", Read, Allow, Topic, Literal, "*"),
            acl("User:*", Describe, Allow, Group, Prefixed, "team-"),
        ];
        let a = Authorizer::new(&bindings, []);
        assert!(a.authorize("User:alice", None, Write, Topic, "logs.app"));
        assert!(a.authorize("User:alice", None, Write, Topic, "logs."));
        assert!(!a.authorize("User:alice", None, Write, Topic, "logs"));
        assert!(a.authorize("User:alice", None, Read, Topic, "anything"));
        assert!(a.authorize("User:zoe", None, Describe, Group, "team-blue"));
        assert!(!a.authorize("User:zoe", None, Describe, Group, "blue-team"));
        // Names with multi-byte characters are cut only at character boundaries.
        assert!(!a.authorize("User:alice", None, Write, Topic, "lo€s.x"));
    }

    #[test]
    fn deny_wins_over_allow_and_super_users_pass() {
        let bindings = [
            acl("User:alice", All, Allow, Topic, Literal, "*"),
            acl("User:alice", Write, Deny, Topic, Prefixed, "audit."),
            acl("User:*", Read, Deny, Topic, Literal, "secrets"),
        ];
        let a = Authorizer::new(&bindings, ["User:root".to_owned()]);
        assert!(a.authorize("User:alice", None, Write, Topic, "orders"));
        assert!(!a.authorize("User:alice", None, Write, Topic, "audit.log"));
        assert!(a.authorize("User:alice", None, Read, Topic, "audit.log"));
        assert!(!a.authorize("User:alice", None, Read, Topic, "secrets"), "a DENY for every user applies to alice");
        assert!(a.authorize("User:alice", None, Describe, Topic, "secrets"), "a DENY of READ leaves DESCRIBE");
        assert!(a.authorize("User:root", None, Delete, Cluster, "kafka-cluster"));
    }

    #[test]
    fn hosts_restrict_bindings() {
        let mut from_one = acl("User:alice", Read, Allow, Topic, Literal, "orders");
        from_one.host = "10.0.0.1".into();
        let a = Authorizer::new(&[from_one], []);
        assert!(a.authorize("User:alice", "10.0.0.1".parse().ok(), Read, Topic, "orders"));
        assert!(!a.authorize("User:alice", "10.0.0.2".parse().ok(), Read, Topic, "orders"));
        assert!(!a.authorize("User:alice", None, Read, Topic, "orders"));
    }
}
