//! The ACL checks of the Kafka listener (with `--acl-enabled`), as Kafka
//! makes them: each API names the operation and resource it needs (READ on
//! a topic to fetch it, WRITE to produce, READ on a group to join it, …).
//! A request's denied parts are taken out before its handler runs and
//! answered with TOPIC/GROUP/CLUSTER_AUTHORIZATION_FAILED, merged into the
//! handler's answer; a request about one resource is refused whole. The
//! handlers themselves know nothing of ACLs.
//!
//! - [`data`]: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, Metadata.
//! - [`groups`]: the group coordinator's APIs and committed offsets.
//! - [`admin`]: topic, configuration, user and ACL administration.

pub mod admin;
pub mod data;
pub mod groups;

use goulette_auth::acl::{Operation, ResourceType};
use kafka_protocol::ResponseError;

use crate::kafka::Kafka;
use crate::security::acls::Caller;

/// Kafka's codes for a refusal.
pub fn topic_denied() -> i16 {
    ResponseError::TopicAuthorizationFailed.code()
}
pub fn group_denied() -> i16 {
    ResponseError::GroupAuthorizationFailed.code()
}
pub fn cluster_denied() -> i16 {
    ResponseError::ClusterAuthorizationFailed.code()
}

/// A caller's checks against the broker's ACLs.
#[derive(Debug, Clone, Copy)]
pub struct Guard<'a> {
    kafka: &'a Kafka,
    caller: &'a Caller,
}

impl<'a> Guard<'a> {
    pub fn new(kafka: &'a Kafka, caller: &'a Caller) -> Guard<'a> {
        Guard { kafka, caller }
    }

    /// Whether checks apply at all (ACLs on).
    pub fn active(&self) -> bool {
        self.kafka.security.acls.enabled()
    }

    pub fn topic(&self, operation: Operation, name: &str) -> bool {
        self.kafka.security.acls.allows(self.caller, operation, ResourceType::Topic, name)
    }

    pub fn group(&self, operation: Operation, name: &str) -> bool {
        self.kafka.security.acls.allows(self.caller, operation, ResourceType::Group, name)
    }

    pub fn cluster(&self, operation: Operation) -> bool {
        self.kafka.security.acls.allows(
            self.caller,
            operation,
            ResourceType::Cluster,
            goulette_auth::acl::model::CLUSTER_NAME,
        )
    }
}
