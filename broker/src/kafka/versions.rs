//! The Kafka APIs this broker serves, with their versions: what ApiVersions
//! advertises and what every request is checked against.
//!
//! Advertised ranges are exactly the served ones, with one exception taken
//! from Apache Kafka 4 (KAFKA-18659): Produce is advertised from version 0
//! though only 3 and later are served (RecordBatch v2). librdkafka up to
//! 2.11 (Debian's among them) matched its features against exact versions
//! and turned compression off against a broker whose Produce range starts
//! at 3; a client that really sends Produce 0–2 has its connection closed.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// One served API: its versions, and the lowest one advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
    pub advertised_min: i16,
}

const fn served(key: ApiKey, min: i16, max: i16) -> Served {
    Served { key, min, max, advertised_min: min }
}

/// Every API served, in API-key order.
pub const SERVED: &[Served] = &[
    Served { key: ApiKey::Produce, min: 3, max: 9, advertised_min: 0 },
    served(ApiKey::Fetch, 4, 12),
    served(ApiKey::ListOffsets, 1, 7),
    served(ApiKey::Metadata, 0, 9),
    served(ApiKey::OffsetCommit, 2, 8),
    served(ApiKey::OffsetFetch, 1, 7),
    served(ApiKey::FindCoordinator, 0, 3),
    served(ApiKey::JoinGroup, 0, 7),
    served(ApiKey::Heartbeat, 0, 4),
    served(ApiKey::LeaveGroup, 0, 4),
    served(ApiKey::SyncGroup, 0, 5),
    served(ApiKey::DescribeGroups, 0, 5),
    served(ApiKey::ListGroups, 0, 4),
    // Served from version 1 only: after it, SaslAuthenticate requests
    // carry the tokens (version 0 sent them as bare frames). Advertised
    // from 0, as Kafka 4 does for the same reason as Produce: librdkafka
    // enables SASL only when the range includes 0 (its feature check).
    Served { key: ApiKey::SaslHandshake, min: 1, max: 1, advertised_min: 0 },
    served(ApiKey::ApiVersions, 0, 3),
    served(ApiKey::CreateTopics, 2, 6),
    served(ApiKey::DeleteTopics, 1, 5),
    served(ApiKey::DeleteRecords, 0, 2),
    served(ApiKey::InitProducerId, 0, 4),
    served(ApiKey::OffsetForLeaderEpoch, 2, 4),
    served(ApiKey::DescribeAcls, 1, 3),
    served(ApiKey::CreateAcls, 1, 3),
    served(ApiKey::DeleteAcls, 1, 3),
    served(ApiKey::DescribeConfigs, 1, 4),
    served(ApiKey::AlterConfigs, 0, 2),
    served(ApiKey::SaslAuthenticate, 0, 2),
    served(ApiKey::CreatePartitions, 0, 3),
    served(ApiKey::DeleteGroups, 0, 2),
    served(ApiKey::IncrementalAlterConfigs, 0, 1),
    served(ApiKey::DescribeUserScramCredentials, 0, 0),
    served(ApiKey::AlterUserScramCredentials, 0, 0),
];

/// The served versions of `key`, if it is served at all.
pub fn served_versions(key: ApiKey) -> Option<&'static Served> {
    SERVED.iter().find(|s| s.key == key)
}

/// Whether `version` of `key` is served.
pub fn is_served(key: ApiKey, version: i16) -> bool {
    served_versions(key).is_some_and(|s| (s.min..=s.max).contains(&version))
}

/// The ApiVersions answer: every served API with its advertised range.
pub fn api_versions(error_code: i16) -> ApiVersionsResponse {
    let api_keys = SERVED
        .iter()
        .map(|s| {
            ApiVersion::default().with_api_key(s.key as i16).with_min_version(s.advertised_min).with_max_version(s.max)
        })
        .collect();
    ApiVersionsResponse::default().with_error_code(error_code).with_api_keys(api_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every served range is one the codec can decode and encode.
    #[test]
    fn served_versions_are_within_the_codec() {
        for s in SERVED {
            let codec = s.key.valid_versions();
            assert!(codec.min <= s.min && s.max <= codec.max, "{:?}: {}..={} outside {codec:?}", s.key, s.min, s.max);
            assert!(s.advertised_min <= s.min);
        }
        assert!(SERVED.windows(2).all(|w| (w[0].key as i16) < (w[1].key as i16)));
    }

    #[test]
    fn produce_is_advertised_from_zero_and_served_from_three() {
        assert_eq!(served_versions(ApiKey::Produce).map(|s| s.advertised_min), Some(0));
        assert!(!is_served(ApiKey::Produce, 2));
        assert!(is_served(ApiKey::Produce, 3));
        assert!(!is_served(ApiKey::SaslHandshake, 0));
        assert!(is_served(ApiKey::SaslHandshake, 1));
    }
}
