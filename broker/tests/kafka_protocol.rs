//! The Kafka listener of real broker processes, spoken to byte by byte:
//! version negotiation (KIP-511), metadata, pipelining, and hostile input
//! that must close only its own connection.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::{BufMut, BytesMut};
use common::{KafkaCluster, KafkaConn};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::Decodable;

#[test]
fn given_an_api_versions_request_of_a_future_version_the_broker_should_answer_v0_with_its_ranges() {
    let cluster = KafkaCluster::start(1, &[]);
    let mut conn = KafkaConn::connect(cluster.brokers[0].kafka_address).unwrap();
    // Version 99 of ApiVersions: header v2, an empty body the broker must not parse.
    let mut raw = BytesMut::new();
    raw.put_i16(ApiKey::ApiVersions as i16);
    raw.put_i16(99);
    raw.put_i32(77);
    raw.put_i16(-1); // client id
    raw.put_u8(0); // tagged fields
    conn.send_raw(&raw);
    let mut frame = conn.recv_raw().expect("an answer, not a closed connection");
    // Response header v0: the correlation id only.
    assert_eq!(i32::from_be_bytes(frame[..4].try_into().unwrap()), 77);
    let _ = frame.split_to(4);
    let answer = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(answer.error_code, 35, "UNSUPPORTED_VERSION");
    let range =
        |key: ApiKey| answer.api_keys.iter().find(|k| k.api_key == key as i16).map(|k| (k.min_version, k.max_version));
    assert_eq!(range(ApiKey::ApiVersions), Some((0, 3)));
    // Produce is advertised from 0 (KAFKA-18659), served from 3.
    assert_eq!(range(ApiKey::Produce).map(|r| r.0), Some(0));

    // The client retries with a version both serve, on the same connection.
    let answer: ApiVersionsResponse = conn
        .call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name("goulette-test".into())
                .with_client_software_version("1".into()),
        )
        .unwrap();
    assert_eq!(answer.error_code, 0);
}

#[test]
fn given_three_brokers_metadata_should_list_them_with_a_controller_and_auto_create_a_topic() {
    let cluster = KafkaCluster::start(3, &[]);
    let metadata = cluster.wait_led("orders");
    let mut ids: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(metadata.controller_id.0, 1);
    for b in &metadata.brokers {
        assert_eq!(format!("{}:{}", b.host.as_str(), b.port), cluster.kafka_address_of(b.node_id.0).to_string());
    }
    let topic = &metadata.topics[0];
    assert_eq!(topic.name.as_ref().map(|n| n.0.as_str()), Some("orders"));
    assert!(!topic.is_internal);
    for p in &topic.partitions {
        assert!(p.leader_epoch >= 1, "a led partition has a known epoch: {p:?}");
        assert!(p.isr_nodes.contains(&p.leader_id));
        assert!(p.offline_replicas.is_empty());
    }

    // Without auto-creation (v4+), an unknown topic is UNKNOWN_TOPIC_OR_PARTITION;
    // an invalid name is INVALID_TOPIC_EXCEPTION.
    let mut conn = KafkaConn::connect(cluster.brokers[1].kafka_address).unwrap();
    let topic = |name: &str| {
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(kafka_protocol::messages::TopicName(name.to_owned().into())))
    };
    let req = MetadataRequest::default()
        .with_topics(Some(vec![topic("missing"), topic("bad/name")]))
        .with_allow_auto_topic_creation(false);
    let answer: MetadataResponse = conn.call(ApiKey::Metadata, 9, &req).unwrap();
    let code = |name: &str| {
        answer.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name)).map(|t| t.error_code)
    };
    assert_eq!(code("missing"), Some(3));
    assert_eq!(code("bad/name"), Some(17));
    // v0 has no null array: an empty list means every topic.
    let answer: MetadataResponse =
        conn.call(ApiKey::Metadata, 0, &MetadataRequest::default().with_topics(Some(vec![]))).unwrap();
    assert!(answer.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders")));
}

#[test]
fn given_pipelined_requests_the_answers_should_come_in_request_order() {
    let cluster = KafkaCluster::start(1, &[]);
    let mut conn = KafkaConn::connect(cluster.brokers[0].kafka_address).unwrap();
    let mut sent = Vec::new();
    for i in 0..20 {
        // Metadata goes to the sentinels and back; ApiVersions is answered at once.
        let id = if i % 2 == 0 {
            conn.send(ApiKey::Metadata, 9, &MetadataRequest::default().with_topics(None))
        } else {
            conn.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())
        };
        sent.push(id);
    }
    for (i, id) in sent.into_iter().enumerate() {
        let got = if i % 2 == 0 {
            conn.recv::<MetadataResponse>(ApiKey::Metadata, 9).unwrap().0
        } else {
            conn.recv::<ApiVersionsResponse>(ApiKey::ApiVersions, 0).unwrap().0
        };
        assert_eq!(got, id, "answer {i}");
    }
}

/// A frame that must close its connection, and only it.
fn assert_closes_only_its_connection(cluster: &KafkaCluster, what: &str, frame: &[u8], raw_size: Option<i32>) {
    let address = cluster.brokers[0].kafka_address;
    let mut bystander = KafkaConn::connect(address).unwrap();
    let mut hostile = KafkaConn::connect(address).unwrap();
    match raw_size {
        // A size prefix that lies: only the prefix is sent.
        Some(size) => {
            use std::io::Write;
            hostile.stream.write_all(&size.to_be_bytes()).unwrap();
        }
        None => hostile.send_raw(frame),
    }
    assert!(hostile.closed(), "{what}: the connection should be closed");
    // The broker lives on, and so does the other connection.
    let answer: ApiVersionsResponse = bystander.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(answer.error_code, 0, "{what}");
    let mut fresh = KafkaConn::connect(address).unwrap();
    let answer: ApiVersionsResponse = fresh.call(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(answer.error_code, 0, "{what}");
}

fn header(key: i16, version: i16) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(key);
    b.put_i16(version);
    b.put_i32(1);
    b.put_i16(-1); // null client id
    b
}

#[test]
fn given_hostile_frames_the_broker_should_close_only_their_connection_and_allocate_nothing_they_claim() {
    let cluster = KafkaCluster::start(1, &[]);
    assert_closes_only_its_connection(&cluster, "a 2 GiB size prefix", &[], Some(i32::MAX));
    assert_closes_only_its_connection(&cluster, "a negative size prefix", &[], Some(-5));
    assert_closes_only_its_connection(&cluster, "a frame too short for a header", &[0, 3], None);
    assert_closes_only_its_connection(&cluster, "an unknown API key", &header(999, 0), None);
    assert_closes_only_its_connection(&cluster, "Produce v2 (message format v1)", &header(0, 2), None);
    // Metadata v0 whose topic array claims 2^31 - 1 entries in 4 bytes: the
    // codec used to allocate 154 GB for it and abort the process.
    let mut huge_array = header(3, 0);
    huge_array.put_i32(i32::MAX);
    assert_closes_only_its_connection(&cluster, "an array claiming 2^31 entries", &huge_array, None);
    // The same with a flexible (compact) array: Metadata v9, header v2.
    let mut compact = header(3, 9);
    compact.put_u8(0); // header tagged fields
    compact.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // uvarint 2^32 - 1
    assert_closes_only_its_connection(&cluster, "a compact array claiming 2^32 entries", &compact, None);
    // A string claiming more bytes than the frame holds.
    let mut long_string = header(3, 1);
    long_string.put_i32(1);
    long_string.put_i16(i16::MAX);
    assert_closes_only_its_connection(&cluster, "a string longer than its frame", &long_string, None);
}
