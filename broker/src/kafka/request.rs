//! A Kafka request frame's header, read before its body is decoded, and the
//! encoding of answers.
//!
//! A frame (its 4-byte size already removed and checked against
//! `--kafka-max-request-bytes`) starts with the API key, the version and the
//! correlation id; those decide how the rest is read. The header version
//! follows from key and version (KIP-482: flexible versions add tagged
//! fields). A version not served is answered with UNSUPPORTED_VERSION where
//! the answer can say so: ApiVersions as KIP-511 has it (v0, with the
//! served ranges, so the client can retry with one it shares), and every
//! API whose answer has a top-level error code at that version (Fetch from
//! v7, the group APIs, InitProducerId, …). Anything else that cannot be read
//! (an unknown API key, a version whose answer has no top-level error code
//! or that the codec does not know, a body that does not decode) is refused
//! with a reason, and the connection is closed, as Apache Kafka does.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::kafka::versions;

/// The Kafka error code UNSUPPORTED_VERSION.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// A frame whose header was read.
#[derive(Debug)]
pub enum Frame {
    /// A request of a served version: its body still to decode.
    Request { key: ApiKey, version: i16, header: RequestHeader, body: Bytes },
    /// ApiVersions of a version not served (KIP-511).
    UnsupportedApiVersions { correlation_id: i32 },
    /// Another request of a version not served, answered with
    /// UNSUPPORTED_VERSION: the whole answer frame.
    Unsupported { answer: Bytes },
}

/// Reads a frame's header. `Err` says why the connection must close.
pub fn read(mut frame: Bytes) -> Result<Frame, String> {
    if frame.len() < 8 {
        return Err(format!("a request of {} bytes has no header", frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let key = ApiKey::try_from(raw_key).map_err(|()| format!("unknown API key {raw_key}"))?;
    if !versions::is_served(key, version) {
        if key == ApiKey::ApiVersions {
            return Ok(Frame::UnsupportedApiVersions { correlation_id });
        }
        if versions::served_versions(key).is_some()
            && let Some(answer) = unsupported(key, version, correlation_id)
        {
            return Ok(Frame::Unsupported { answer });
        }
        let served = versions::served_versions(key)
            .map_or_else(|| "not served".to_owned(), |s| format!("served: {}..={}", s.min, s.max));
        return Err(format!("{key:?} v{version} is not served ({served})"));
    }
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(|e| format!("{key:?} v{version}: bad request header: {e}"))?;
    Ok(Frame::Request { key, version, header, body: frame })
}

/// The UNSUPPORTED_VERSION answer to `key` at a `version` not served, when
/// that version's answer has a top-level error code (and the codec knows
/// the version).
fn unsupported(key: ApiKey, version: i16, correlation_id: i32) -> Option<Bytes> {
    use kafka_protocol::messages::*;
    const CODE: i16 = UNSUPPORTED_VERSION;
    let frame = match key {
        ApiKey::Fetch if version >= 7 => {
            encode(key, version, correlation_id, &FetchResponse::default().with_error_code(CODE))
        }
        ApiKey::FindCoordinator if version <= 3 => {
            encode(key, version, correlation_id, &FindCoordinatorResponse::default().with_error_code(CODE))
        }
        ApiKey::OffsetFetch if (2..=7).contains(&version) => {
            encode(key, version, correlation_id, &OffsetFetchResponse::default().with_error_code(CODE))
        }
        ApiKey::JoinGroup => encode(key, version, correlation_id, &JoinGroupResponse::default().with_error_code(CODE)),
        ApiKey::SyncGroup => encode(key, version, correlation_id, &SyncGroupResponse::default().with_error_code(CODE)),
        ApiKey::Heartbeat => encode(key, version, correlation_id, &HeartbeatResponse::default().with_error_code(CODE)),
        ApiKey::LeaveGroup => {
            encode(key, version, correlation_id, &LeaveGroupResponse::default().with_error_code(CODE))
        }
        ApiKey::ListGroups => {
            encode(key, version, correlation_id, &ListGroupsResponse::default().with_error_code(CODE))
        }
        ApiKey::InitProducerId => {
            encode(key, version, correlation_id, &InitProducerIdResponse::default().with_error_code(CODE))
        }
        _ => return None,
    };
    frame.ok()
}

/// Decodes a request body of a served version. Bytes after the request
/// are ignored, as Apache Kafka does: librdkafka 2.16 sends Metadata v9
/// for every topic with a tagged-field section followed by one more byte.
pub fn decode<T: Decodable>(key: ApiKey, version: i16, mut body: Bytes) -> Result<T, String> {
    let request = T::decode(&mut body, version).map_err(|e| format!("{key:?} v{version}: bad request: {e}"))?;
    if body.has_remaining() {
        tracing::debug!(?key, version, bytes = body.remaining(), "bytes after a Kafka request ignored");
    }
    Ok(request)
}

/// Encodes an answer to `key` at `version` as a whole frame (size prefix,
/// response header, body).
pub fn encode<T: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Result<Bytes, String> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = key.response_header_version(version);
    let mut out = BytesMut::new();
    out.put_i32(0);
    header
        .encode(&mut out, header_version)
        .and_then(|()| body.encode(&mut out, version))
        .map_err(|e| format!("{key:?} v{version}: cannot encode the answer: {e}"))?;
    let size = i32::try_from(out.len() - 4).map_err(|_| format!("{key:?} answer of {} bytes", out.len()))?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::ApiVersionsRequest;

    fn frame(key: i16, version: i16, correlation_id: i32, rest: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(key);
        b.put_i16(version);
        b.put_i32(correlation_id);
        b.extend_from_slice(rest);
        b.freeze()
    }

    #[test]
    fn short_and_unknown_frames_are_refused() {
        assert!(read(Bytes::from_static(&[0, 18, 0])).is_err());
        assert!(read(frame(9999, 0, 1, &[0xff, 0xff])).is_err());
        // Produce v2 (message format v1) is advertised but not served.
        assert!(read(frame(0, 2, 1, &[0xff, 0xff])).unwrap_err().contains("not served"));
        // Metadata v12 has no top-level error code: refused too.
        assert!(read(frame(3, 12, 1, &[])).unwrap_err().contains("not served"));
    }

    #[test]
    fn a_version_not_served_is_answered_with_unsupported_version_where_the_answer_can_say_so() {
        use kafka_protocol::messages::{FetchResponse, HeartbeatResponse};
        // Fetch v13 (topic ids): an answer with error 35 at v13.
        let Frame::Unsupported { answer } = read(frame(1, 13, 9, &[])).unwrap() else { panic!() };
        let mut body = answer.slice(4..);
        let header = ResponseHeader::decode(&mut body, ApiKey::Fetch.response_header_version(13)).unwrap();
        assert_eq!(header.correlation_id, 9);
        assert_eq!(FetchResponse::decode(&mut body, 13).unwrap().error_code, UNSUPPORTED_VERSION);
        // Heartbeat past the codec's versions: refused; within them, answered.
        let heartbeat_max = ApiKey::Heartbeat.valid_versions().max;
        assert!(read(frame(12, heartbeat_max + 1, 1, &[])).is_err());
        if heartbeat_max > 4 {
            let Frame::Unsupported { answer } = read(frame(12, heartbeat_max, 3, &[])).unwrap() else { panic!() };
            let mut body = answer.slice(4..);
            ResponseHeader::decode(&mut body, ApiKey::Heartbeat.response_header_version(heartbeat_max)).unwrap();
            assert_eq!(HeartbeatResponse::decode(&mut body, heartbeat_max).unwrap().error_code, UNSUPPORTED_VERSION);
        }
    }

    #[test]
    fn api_versions_of_a_future_version_is_answered_not_refused() {
        match read(frame(18, 99, 7, &[])).unwrap() {
            Frame::UnsupportedApiVersions { correlation_id } => assert_eq!(correlation_id, 7),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_flexible_header_and_body_are_read() {
        // ApiVersions v3: header v2 (client id, tagged fields), compact body.
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(18)
            .with_request_api_version(3)
            .with_correlation_id(42)
            .with_client_id(Some("test".into()))
            .encode(&mut b, 2)
            .unwrap();
        ApiVersionsRequest::default()
            .with_client_software_name("goulette-test".into())
            .with_client_software_version("1.0".into())
            .encode(&mut b, 3)
            .unwrap();
        let Frame::Request { key, version, header, body } = read(b.freeze()).unwrap() else { panic!() };
        assert_eq!((key, version, header.correlation_id), (ApiKey::ApiVersions, 3, 42));
        let request: ApiVersionsRequest = decode(key, version, body).unwrap();
        assert_eq!(request.client_software_name.as_str(), "goulette-test");
    }

    /// librdkafka 2.16's Metadata v9 for every topic, as captured: a
    /// tagged-field section, then one more byte.
    #[test]
    fn librdkafkas_metadata_request_with_a_trailing_byte_is_read() {
        let hex = "0003000900000003000772646b61666b61000000000001000000";
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let Frame::Request { key, version, body, .. } = read(Bytes::from(bytes)).unwrap() else { panic!() };
        let request: kafka_protocol::messages::MetadataRequest = decode(key, version, body).unwrap();
        assert_eq!(request.topics, None, "every topic");
    }
}
