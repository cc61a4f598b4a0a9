//! The etcd key layout (`docs/design.md`, data model), under a configurable
//! prefix (default `/goulette`). Values are JSON (see `model`), so `etcdctl
//! get` shows them.
//!
//! ```text
//! {prefix}/brokers/{id:010}            BrokerRecord, under the broker's session lease
//! {prefix}/decommissioned/{id:010}     DecommissionRecord: the broker's replicas move away
//! {prefix}/sentinels/{id}              SentinelRecord, under the sentinel's lease
//! {prefix}/topics/{name}               TopicRecord
//! {prefix}/deleted-topics/{name}/{id:020}  TopicTombstone: that incarnation was deleted
//! {prefix}/partitions/{topic}/{p:05}   PartitionRecord (replicas, leader, epoch, isr)
//! {prefix}/ops/{seq:020}               OpRecord, the operation log
//! {prefix}/groups/{group}/state        GroupRecord: generation and assignment
//! {prefix}/groups/{group}/members/{id}  MemberRecord, under the member's session lease
//! {prefix}/groups/{group}/settings     GroupSettingsRecord: what `group alter` set
//! {prefix}/users/{name}               UserRecord: SCRAM credentials
//! {prefix}/security/token-keys         TokenKeysRecord: keys signing gRPC tokens
//! {prefix}/acls/{id}                   AclRecord: one ACL binding (id: its hash)
//! {prefix}/counters/ops                next op sequence number (decimal)
//! {prefix}/counters/producer-ids       next free producer id (decimal)
//! {prefix}/election/…                  sentinel leader election (etcd election API)
//! ```

/// Builds keys under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/goulette";

impl Keys {
    /// Keys under `prefix` (a trailing `/` is ignored).
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.trim_end_matches('/').to_owned() }
    }

    /// The prefix itself, with a trailing `/`: every Goulette key starts with it.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// Prefix of every broker key.
    pub fn brokers(&self) -> String {
        format!("{}/brokers/", self.prefix)
    }

    /// A broker's key.
    pub fn broker(&self, id: u32) -> String {
        format!("{}/brokers/{id:010}", self.prefix)
    }

    /// Prefix of every decommission key.
    /// `data-dirs/{id}`: the identity of the data directory broker `id`
    /// last registered with (not bound to a lease, so kept in backups: a
    /// restored cluster can tell its brokers' data directories from others).
    pub fn data_dir(&self, id: u32) -> String {
        format!("{}/data-dirs/{id:010}", self.prefix)
    }

    pub fn decommissioned_all(&self) -> String {
        format!("{}/decommissioned/", self.prefix)
    }

    /// The key marking broker `id` decommissioned.
    pub fn decommissioned(&self, id: u32) -> String {
        format!("{}/decommissioned/{id:010}", self.prefix)
    }

    /// Prefix of every sentinel key.
    pub fn sentinels(&self) -> String {
        format!("{}/sentinels/", self.prefix)
    }

    /// A sentinel's key.
    pub fn sentinel(&self, id: &str) -> String {
        format!("{}/sentinels/{id}", self.prefix)
    }

    /// Prefix of every topic key.
    pub fn topics(&self) -> String {
        format!("{}/topics/", self.prefix)
    }

    /// A topic's key.
    pub fn topic(&self, name: &str) -> String {
        format!("{}/topics/{name}", self.prefix)
    }

    /// Prefix of every topic tombstone.
    pub fn tombstones(&self) -> String {
        format!("{}/deleted-topics/", self.prefix)
    }

    /// The tombstone of incarnation `id` of topic `name`.
    pub fn tombstone(&self, name: &str, id: u64) -> String {
        format!("{}/deleted-topics/{name}/{id:020}", self.prefix)
    }

    /// Prefix of every partition key.
    pub fn all_partitions(&self) -> String {
        format!("{}/partitions/", self.prefix)
    }

    /// Prefix of one topic's partition keys.
    pub fn partitions(&self, topic: &str) -> String {
        format!("{}/partitions/{topic}/", self.prefix)
    }

    /// A partition's key.
    pub fn partition(&self, topic: &str, partition: u32) -> String {
        format!("{}/partitions/{topic}/{partition:05}", self.prefix)
    }

    /// Prefix of the operation log.
    pub fn ops(&self) -> String {
        format!("{}/ops/", self.prefix)
    }

    /// One operation-log entry.
    pub fn op(&self, seq: u64) -> String {
        format!("{}/ops/{seq:020}", self.prefix)
    }

    /// The op-log sequence counter.
    pub fn ops_counter(&self) -> String {
        format!("{}/counters/ops", self.prefix)
    }

    /// The producer-id counter.
    pub fn producer_ids_counter(&self) -> String {
        format!("{}/counters/producer-ids", self.prefix)
    }

    /// Prefix of every consumer-group key.
    pub fn all_groups(&self) -> String {
        format!("{}/groups/", self.prefix)
    }

    /// Prefix of one group's keys (state and members).
    pub fn group(&self, group: &str) -> String {
        format!("{}/groups/{group}/", self.prefix)
    }

    /// A group's generation and assignment.
    pub fn group_state(&self, group: &str) -> String {
        format!("{}/groups/{group}/state", self.prefix)
    }

    /// A group's settings (`group alter`).
    pub fn group_settings(&self, group: &str) -> String {
        format!("{}/groups/{group}/settings", self.prefix)
    }

    /// A group member's key.
    pub fn group_member(&self, group: &str, member: &str) -> String {
        format!("{}/groups/{group}/members/{member}", self.prefix)
    }

    /// Prefix of every user key.
    pub fn users(&self) -> String {
        format!("{}/users/", self.prefix)
    }

    /// A user's key.
    pub fn user(&self, name: &str) -> String {
        format!("{}/users/{name}", self.prefix)
    }

    /// Prefix of the security settings (the token keys).
    pub fn security(&self) -> String {
        format!("{}/security/", self.prefix)
    }

    /// The keys signing the gRPC API's bearer tokens.
    pub fn token_keys(&self) -> String {
        format!("{}/security/token-keys", self.prefix)
    }

    /// Prefix of every ACL binding.
    pub fn acls(&self) -> String {
        format!("{}/acls/", self.prefix)
    }

    /// An ACL binding's key.
    pub fn acl(&self, id: &str) -> String {
        format!("{}/acls/{id}", self.prefix)
    }

    /// The election name (etcd's election API keeps candidates under it).
    pub fn election(&self) -> String {
        format!("{}/election", self.prefix)
    }

    /// What kind of key `key` is, parsed.
    pub fn parse<'a>(&self, key: &'a str) -> Option<KeyKind<'a>> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (section, tail) = rest.split_once('/').unwrap_or((rest, ""));
        Some(match section {
            "brokers" => KeyKind::Broker(tail.parse().ok()?),
            "decommissioned" => KeyKind::Decommissioned(tail.parse().ok()?),
            "sentinels" if !tail.is_empty() => KeyKind::Sentinel(tail),
            "topics" if !tail.is_empty() => KeyKind::Topic(tail),
            "deleted-topics" => {
                let (name, id) = tail.rsplit_once('/')?;
                KeyKind::Tombstone(name, id.parse().ok()?)
            }
            "partitions" => {
                let (topic, p) = tail.rsplit_once('/')?;
                KeyKind::Partition(topic, p.parse().ok()?)
            }
            "groups" => match tail.split_once('/')? {
                (group, "state") => KeyKind::GroupState(group),
                (group, "settings") => KeyKind::GroupSettings(group),
                (group, member) => KeyKind::GroupMember(group, member.strip_prefix("members/")?),
            },
            "users" if !tail.is_empty() => KeyKind::User(tail),
            "security" if tail == "token-keys" => KeyKind::TokenKeys,
            "acls" if !tail.is_empty() => KeyKind::Acl(tail),
            "ops" => KeyKind::Op(tail.parse().ok()?),
            "counters" => KeyKind::Counter(tail),
            "election" => KeyKind::Election,
            _ => return None,
        })
    }
}

/// A parsed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind<'a> {
    /// `brokers/{id}`
    Broker(u32),
    /// `decommissioned/{id}`
    Decommissioned(u32),
    /// `sentinels/{id}`
    Sentinel(&'a str),
    /// `topics/{name}`
    Topic(&'a str),
    /// `deleted-topics/{name}/{id}`
    Tombstone(&'a str, u64),
    /// `partitions/{topic}/{p}`
    Partition(&'a str, u32),
    /// `groups/{group}/state`
    GroupState(&'a str),
    /// `groups/{group}/settings`
    GroupSettings(&'a str),
    /// `groups/{group}/members/{id}`
    GroupMember(&'a str, &'a str),
    /// `users/{name}`
    User(&'a str),
    /// `security/token-keys`
    TokenKeys,
    /// `acls/{id}`
    Acl(&'a str),
    /// `ops/{seq}`
    Op(u64),
    /// `counters/{name}`
    Counter(&'a str),
    /// `election/…`
    Election,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        let k = Keys::new("/goulette/");
        assert_eq!(k.parse(&k.broker(7)), Some(KeyKind::Broker(7)));
        assert_eq!(k.parse(&k.topic("a.b")), Some(KeyKind::Topic("a.b")));
        assert_eq!(k.parse(&k.partition("a.b", 12)), Some(KeyKind::Partition("a.b", 12)));
        assert_eq!(k.parse(&k.op(99)), Some(KeyKind::Op(99)));
        assert_eq!(k.parse(&k.user("a/b c")), Some(KeyKind::User("a/b c")));
        assert_eq!(k.parse(&k.token_keys()), Some(KeyKind::TokenKeys));
        assert!(k.token_keys().starts_with(&k.security()));
        assert_eq!(k.parse(&k.acl("0a1b")), Some(KeyKind::Acl("0a1b")));
        assert_eq!(k.parse(&k.tombstone("a.b", u64::MAX)), Some(KeyKind::Tombstone("a.b", u64::MAX)));
        assert_eq!(k.parse(&k.sentinel("s1")), Some(KeyKind::Sentinel("s1")));
        assert_eq!(k.parse(&format!("{}/694d9a", k.election())), Some(KeyKind::Election));
        assert_eq!(k.parse(&k.group_state("g")), Some(KeyKind::GroupState("g")));
        assert_eq!(k.parse(&k.group_settings("g")), Some(KeyKind::GroupSettings("g")));
        assert_eq!(k.parse(&k.group_member("g", "c-1f")), Some(KeyKind::GroupMember("g", "c-1f")));
        assert!(k.group_member("g", "m").starts_with(&k.group("g")));
        assert!(!k.group_state("ab").starts_with(&k.group("a")));
        assert_eq!(k.parse("/other/topics/x"), None);
        // One topic's partition prefix never matches another topic's keys.
        assert!(!k.partition("ab", 0).starts_with(&k.partitions("a")));
    }
}
