//! An ACL binding and its parts, numbered and named as Kafka's
//! (`AclOperation`, `ResourceType`, `PatternType`, `AclPermissionType`), so
//! that Kafka's CreateAcls/DescribeAcls/DeleteAcls carry them unchanged.

/// What a binding protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

/// How a binding's resource name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    /// The name itself; `*` matches every name.
    Literal,
    /// Every name starting with it.
    Prefixed,
}

/// What may be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Allow,
    Deny,
}

/// One ACL: `principal` from `host` may (or may not) do `operation` on
/// resources of `resource_type` named by `name` as `pattern` says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern: PatternType,
    /// `User:alice`, or `User:*` for every user.
    pub principal: String,
    /// An IP address, or `*` for any.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// The one resource name of the cluster resource (Kafka's).
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The name or principal matching every one.
pub const WILDCARD: &str = "*";

impl ResourceType {
    pub const ALL: [ResourceType; 4] =
        [ResourceType::Topic, ResourceType::Group, ResourceType::Cluster, ResourceType::TransactionalId];

    /// Kafka's number (`ResourceType`).
    pub fn kafka_code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    pub fn from_kafka_code(code: i8) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|r| r.kafka_code() == code)
    }

    /// Its name on the command line (`topic`, `group`, `cluster`, `transactional-id`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "topic",
            ResourceType::Group => "group",
            ResourceType::Cluster => "cluster",
            ResourceType::TransactionalId => "transactional-id",
        }
    }

    pub fn parse(name: &str) -> Option<ResourceType> {
        let name = name.to_ascii_lowercase().replace('_', "-");
        ResourceType::ALL
            .into_iter()
            .find(|r| r.name() == name || (name == "transactionalid" && *r == ResourceType::TransactionalId))
    }
}

impl PatternType {
    pub const ALL: [PatternType; 2] = [PatternType::Literal, PatternType::Prefixed];

    /// Kafka's number (`PatternType`).
    pub fn kafka_code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn from_kafka_code(code: i8) -> Option<PatternType> {
        PatternType::ALL.into_iter().find(|p| p.kafka_code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "literal",
            PatternType::Prefixed => "prefixed",
        }
    }

    pub fn parse(name: &str) -> Option<PatternType> {
        PatternType::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl Operation {
    pub const ALL: [Operation; 11] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
    ];

    /// Kafka's number (`AclOperation`).
    pub fn kafka_code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
        }
    }

    pub fn from_kafka_code(code: i8) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.kafka_code() == code)
    }

    /// Its name on the command line (`read`, `describe-configs`, …).
    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "all",
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Alter => "alter",
            Operation::Describe => "describe",
            Operation::ClusterAction => "cluster-action",
            Operation::DescribeConfigs => "describe-configs",
            Operation::AlterConfigs => "alter-configs",
            Operation::IdempotentWrite => "idempotent-write",
        }
    }

    pub fn parse(name: &str) -> Option<Operation> {
        let name = name.to_ascii_lowercase().replace('_', "-");
        Operation::ALL.into_iter().find(|o| o.name() == name || o.name().replace('-', "") == name)
    }

    /// Whether an ALLOW of `self` also allows `asked` (Kafka's rules: ALL
    /// allows everything; READ, WRITE, DELETE and ALTER allow DESCRIBE;
    /// ALTER_CONFIGS allows DESCRIBE_CONFIGS).
    pub fn allows(self, asked: Operation) -> bool {
        self == asked
            || self == Operation::All
            || (asked == Operation::Describe
                && matches!(self, Operation::Read | Operation::Write | Operation::Delete | Operation::Alter))
            || (asked == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }

    /// Whether a DENY of `self` forbids `asked` (ALL forbids everything;
    /// otherwise only the operation itself).
    pub fn denies(self, asked: Operation) -> bool {
        self == asked || self == Operation::All
    }
}

impl Permission {
    /// Kafka's number (`AclPermissionType`).
    pub fn kafka_code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn from_kafka_code(code: i8) -> Option<Permission> {
        [Permission::Allow, Permission::Deny].into_iter().find(|p| p.kafka_code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::Allow => "allow",
            Permission::Deny => "deny",
        }
    }
}

impl AclBinding {
    /// Why this binding cannot be stored, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("the resource name is empty".into());
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER_NAME {
            return Err(format!("the cluster resource is named {CLUSTER_NAME}"));
        }
        if self.pattern == PatternType::Prefixed && self.name == WILDCARD {
            return Err("a prefixed pattern of `*` means nothing: use a literal `*`".into());
        }
        match self.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => return Err(format!("principal {:?}: expected `User:NAME` (or `User:*`)", self.principal)),
        }
        if self.host != WILDCARD && self.host.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("host {:?}: expected an IP address or `*`", self.host));
        }
        Ok(())
    }

    /// A stable identity of the binding (hex, from a SHA-256 of all its
    /// parts): the same binding added twice is stored once.
    pub fn id(&self) -> String {
        let canonical = format!(
            "{}\0{}\0{}\0{}\0{}\0{}\0{}",
            self.resource_type.kafka_code(),
            self.pattern.kafka_code(),
            self.name,
            self.principal,
            self.host,
            self.operation.kafka_code(),
            self.permission.kafka_code()
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether this binding's pattern covers resource `name`.
    pub fn matches_name(&self, name: &str) -> bool {
        match self.pattern {
            PatternType::Literal => self.name == name || self.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&self.name),
        }
    }
}

impl std::fmt::Display for AclBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} on {} {} {} from {}",
            self.principal,
            self.permission.name(),
            self.operation.name(),
            self.resource_type.name(),
            self.pattern.name(),
            self.name,
            self.host
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for r in ResourceType::ALL {
            assert_eq!(ResourceType::from_kafka_code(r.kafka_code()), Some(r));
            assert_eq!(ResourceType::parse(r.name()), Some(r));
        }
        for o in Operation::ALL {
            assert_eq!(Operation::from_kafka_code(o.kafka_code()), Some(o));
            assert_eq!(Operation::parse(o.name()), Some(o));
        }
        assert_eq!(Operation::parse("DESCRIBE_CONFIGS"), Some(Operation::DescribeConfigs));
        for p in PatternType::ALL {
            assert_eq!(PatternType::from_kafka_code(p.kafka_code()), Some(p));
        }
        for p in [Permission::Allow, Permission::Deny] {
            assert_eq!(Permission::from_kafka_code(p.kafka_code()), Some(p));
        }
    }

    #[test]
    fn implications_follow_kafka() {
        assert!(Operation::Read.allows(Operation::Describe));
        assert!(Operation::Write.allows(Operation::Describe));
        assert!(!Operation::Read.allows(Operation::Write));
        assert!(Operation::AlterConfigs.allows(Operation::DescribeConfigs));
        assert!(!Operation::Describe.allows(Operation::Read));
        assert!(Operation::All.allows(Operation::ClusterAction));
        // A DENY of READ does not deny DESCRIBE.
        assert!(!Operation::Read.denies(Operation::Describe));
        assert!(Operation::All.denies(Operation::Describe));
    }

    #[test]
    fn bad_bindings_are_named() {
        let ok = AclBinding {
            resource_type: ResourceType::Topic,
            name: "orders".into(),
            pattern: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        };
        assert!(ok.check().is_ok());
        assert!(AclBinding { principal: "alice".into(), ..ok.clone() }.check().is_err());
        assert!(AclBinding { host: "somewhere".into(), ..ok.clone() }.check().is_err());
        assert!(AclBinding { host: "10.1.2.3".into(), ..ok.clone() }.check().is_ok());
        assert!(AclBinding { resource_type: ResourceType::Cluster, ..ok.clone() }.check().is_err());
        assert!(AclBinding { name: "*".into(), pattern: PatternType::Prefixed, ..ok.clone() }.check().is_err());
        assert!(AclBinding { name: String::new(), ..ok.clone() }.check().is_err());
        assert_eq!(ok.id(), ok.clone().id());
        assert_ne!(ok.id(), AclBinding { permission: Permission::Deny, ..ok.clone() }.id());
        assert_eq!(ok.id().len(), 32);
    }
}
