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

mod data {
    use super::*;
    use bytes::Bytes;
    use goulette_storage::{BatchBuilder, Compression, Record};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
        OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse, TopicName,
    };
    use std::time::{Duration, Instant};

    fn name(topic: &str) -> TopicName {
        TopicName(topic.to_owned().into())
    }

    fn batch(values: &[&str], timestamp: i64) -> Bytes {
        let mut b = BatchBuilder::new(Compression::None);
        for v in values {
            b.push(&Record { timestamp, key: None, value: Bytes::from(v.to_string()), headers: Vec::new() });
        }
        b.build().unwrap()
    }

    fn produce(conn: &mut KafkaConn, topic: &str, acks: i16, records: Bytes) -> (i16, i64) {
        let req = ProduceRequest::default().with_acks(acks).with_timeout_ms(10_000).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))]),
        ]);
        let answer: ProduceResponse = conn.call(ApiKey::Produce, 9, &req).unwrap();
        let p = &answer.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }

    fn fetch(
        conn: &mut KafkaConn,
        topic: &str,
        offset: i64,
        epoch: i32,
        wait_ms: i32,
        min_bytes: i32,
    ) -> FetchResponse {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(wait_ms)
            .with_min_bytes(min_bytes)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_current_leader_epoch(epoch)
                    .with_partition_max_bytes(1 << 20),
            ])]);
        conn.call(ApiKey::Fetch, 12, &req).unwrap()
    }

    /// Produces, retrying NOT_LEADER_OR_FOLLOWER as clients do: the
    /// metadata names a leader before that broker has applied its assignment.
    fn produce_when_led(conn: &mut KafkaConn, topic: &str, records: Bytes) -> (i16, i64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let answer = produce(conn, topic, -1, records.clone());
            if answer.0 != 6 || Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A topic's partition 0: a connection to its leader, its id and epoch.
    fn led(cluster: &KafkaCluster, topic: &str) -> (KafkaConn, i32, i32) {
        let metadata = cluster.wait_led(topic);
        let p = &metadata.topics[0].partitions[0];
        let conn = KafkaConn::connect(cluster.kafka_address_of(p.leader_id.0)).unwrap();
        (conn, p.leader_id.0, p.leader_epoch)
    }

    #[test]
    fn given_a_fetch_at_the_end_it_should_wait_max_wait_then_wake_on_new_data() {
        let cluster = KafkaCluster::start(1, &[]);
        let (mut conn, _, epoch) = led(&cluster, "poll");
        assert_eq!(produce_when_led(&mut conn, "poll", batch(&["a", "b"], goulette_storage::now_ms())), (0, 0));

        // Data ready: answered at once, whole batches from the asked offset's.
        let started = Instant::now();
        let answer = fetch(&mut conn, "poll", 1, epoch, 5_000, 1);
        assert!(started.elapsed() < Duration::from_secs(2));
        let p = &answer.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark, p.last_stable_offset), (0, 2, 2));
        let records = p.records.clone().unwrap();
        assert_eq!(goulette_storage::Batch::parse(records).unwrap().record_count(), 2);

        // At the end: the long poll lasts max_wait, no less, not much more.
        let started = Instant::now();
        let answer = fetch(&mut conn, "poll", 2, epoch, 600, 1);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(550) && waited < Duration::from_secs(3), "waited {waited:?}");
        assert!(answer.responses[0].partitions[0].records.as_ref().is_none_or(|r| r.is_empty()));

        // min_bytes 0: at once.
        let started = Instant::now();
        fetch(&mut conn, "poll", 2, epoch, 5_000, 0);
        assert!(started.elapsed() < Duration::from_millis(500));

        // New data wakes a waiting fetch long before its max_wait.
        let address = cluster.brokers[0].kafka_address;
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut other = KafkaConn::connect(address).unwrap();
            produce(&mut other, "poll", 1, batch(&["c"], goulette_storage::now_ms()))
        });
        let started = Instant::now();
        let answer = fetch(&mut conn, "poll", 2, epoch, 20_000, 1);
        let waited = started.elapsed();
        assert_eq!(producer.join().unwrap(), (0, 2));
        assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(5), "waited {waited:?}");
        assert_eq!(answer.responses[0].partitions[0].high_watermark, 3);
    }

    #[test]
    fn given_leader_epochs_fetch_should_fence_stale_and_future_ones_and_epochs_should_end_where_the_log_does() {
        let cluster = KafkaCluster::start(1, &[]);
        let (mut conn, _, epoch) = led(&cluster, "epochs");
        assert!(epoch >= 1);
        let now = goulette_storage::now_ms();
        assert_eq!(produce_when_led(&mut conn, "epochs", batch(&["a", "b", "c"], now - 1000)).0, 0);
        assert_eq!(produce(&mut conn, "epochs", -1, batch(&["d"], now)).0, 0);
        let code = |answer: FetchResponse| answer.responses[0].partitions[0].error_code;
        assert_eq!(code(fetch(&mut conn, "epochs", 0, epoch - 1, 0, 0)), 74, "FENCED_LEADER_EPOCH");
        assert_eq!(code(fetch(&mut conn, "epochs", 0, epoch + 1, 0, 0)), 75, "UNKNOWN_LEADER_EPOCH");
        assert_eq!(code(fetch(&mut conn, "epochs", 0, -1, 0, 0)), 0);
        assert_eq!(code(fetch(&mut conn, "epochs", 9, epoch, 0, 0)), 1, "OFFSET_OUT_OF_RANGE");

        let req = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            OffsetForLeaderTopic::default().with_topic(name("epochs")).with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(epoch)
                    .with_leader_epoch(epoch),
            ]),
        ]);
        let answer: OffsetForLeaderEpochResponse = conn.call(ApiKey::OffsetForLeaderEpoch, 4, &req).unwrap();
        let p = &answer.topics[0].partitions[0];
        assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, epoch, 4));

        let list_at = |conn: &mut KafkaConn, version: i16, timestamp: i64| {
            let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                ListOffsetsTopic::default().with_name(name("epochs")).with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp)
                        .with_current_leader_epoch(epoch),
                ]),
            ]);
            let answer: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, version, &req).unwrap();
            let p = answer.topics[0].partitions[0].clone();
            (p.error_code, p.offset, p.timestamp)
        };
        let list = |conn: &mut KafkaConn, timestamp: i64| list_at(conn, 6, timestamp);
        assert_eq!(list(&mut conn, -2), (0, 0, -1), "earliest");
        assert_eq!(list(&mut conn, -1), (0, 4, -1), "latest");
        assert_eq!(list(&mut conn, now - 500), (0, 3, now), "the first record at or after a time");
        assert_eq!(list(&mut conn, now + 60_000), (0, -1, -1), "after every record");

        // The largest timestamp (v7): its first record, whatever came after.
        assert_eq!(produce(&mut conn, "epochs", -1, batch(&["e", "f"], now - 2000)).0, 0);
        assert_eq!(list_at(&mut conn, 7, -3), (0, 3, now), "the record with the largest timestamp");
        assert_eq!(list_at(&mut conn, 6, -3).0, 42, "before v7, -3 is an INVALID_REQUEST");
        assert_eq!(list_at(&mut conn, 7, -1), (0, 6, -1));
    }

    #[test]
    fn given_produce_requests_kafka_error_codes_should_keep_their_meaning() {
        let cluster = KafkaCluster::start(2, &[]);
        let metadata = cluster.wait_led("codes");
        let leader = metadata.topics[0].partitions[0].leader_id.0;
        let other = cluster.brokers.iter().find(|b| b.id as i32 != leader).unwrap().kafka_address;
        let mut follower_conn = KafkaConn::connect(other).unwrap();
        let now = goulette_storage::now_ms();
        let mut conn = KafkaConn::connect(cluster.kafka_address_of(leader)).unwrap();
        assert_eq!(produce_when_led(&mut conn, "codes", batch(&["first"], now)), (0, 0));
        assert_eq!(produce(&mut follower_conn, "codes", -1, batch(&["x"], now)).0, 6, "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(produce(&mut conn, "codes", 2, batch(&["x"], now)).0, 21, "INVALID_REQUIRED_ACKS");
        let mut two = batch(&["x"], now).to_vec();
        two.extend_from_slice(&batch(&["y"], now));
        assert_eq!(produce(&mut conn, "codes", -1, Bytes::from(two)).0, 87, "INVALID_RECORD: two batches");
        let mut flipped = batch(&["x"], now).to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert_eq!(produce(&mut conn, "codes", -1, Bytes::from(flipped)).0, 2, "CORRUPT_MESSAGE");
        assert_eq!(produce(&mut conn, "codes", -1, batch(&["x"], now + 86_400_000)).0, 32, "INVALID_TIMESTAMP");
        assert_eq!(produce(&mut conn, "__offsets", -1, batch(&["x"], now)).0, 17, "INVALID_TOPIC_EXCEPTION");
        assert_eq!(produce(&mut conn, "codes", -1, batch(&["ok"], now)), (0, 1), "nothing refused was stored");
    }

    #[test]
    fn given_delete_records_the_log_should_start_there_on_the_leader_and_after_a_failover() {
        use kafka_protocol::messages::create_topics_request::CreatableTopic;
        use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
        use kafka_protocol::messages::{
            CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
        };
        let mut cluster = KafkaCluster::start(2, &[]);
        let mut admin = KafkaConn::connect(cluster.brokers[0].kafka_address).unwrap();
        let create = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
            CreatableTopic::default().with_name(name("trim")).with_num_partitions(1).with_replication_factor(2),
        ]);
        let created: CreateTopicsResponse = admin.call(ApiKey::CreateTopics, 5, &create).unwrap();
        assert_eq!(created.topics[0].error_code, 0);
        // Two records a batch until the follower is in the ISR: 10 records or more.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (leader, mut conn, epoch) = loop {
            let (mut conn, leader, epoch) = led(&cluster, "trim");
            assert_eq!(produce_when_led(&mut conn, "trim", batch(&["a", "b"], goulette_storage::now_ms())).0, 0);
            let metadata = cluster.wait_led("trim");
            let p = &metadata.topics[0].partitions[0];
            let end = list_offset(&mut conn, "trim", -1, epoch);
            if p.isr_nodes.len() == 2 && end >= 10 {
                break (leader, conn, epoch);
            }
            assert!(Instant::now() < deadline, "the follower never joined the ISR: {p:?}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let end = list_offset(&mut conn, "trim", -1, epoch);
        let delete = |conn: &mut KafkaConn, topic: &str, offset: i64| {
            let req = DeleteRecordsRequest::default().with_timeout_ms(5_000).with_topics(vec![
                DeleteRecordsTopic::default().with_name(name(topic)).with_partitions(vec![
                    DeleteRecordsPartition::default().with_partition_index(0).with_offset(offset),
                ]),
            ]);
            let answer: DeleteRecordsResponse = conn.call(ApiKey::DeleteRecords, 2, &req).unwrap();
            let p = &answer.topics[0].partitions[0];
            (p.error_code, p.low_watermark)
        };
        assert_eq!(delete(&mut conn, "trim", 3), (0, 3), "inside a batch");
        assert_eq!(list_offset(&mut conn, "trim", -2, epoch), 3, "the earliest offset");
        assert_eq!(fetch(&mut conn, "trim", 2, epoch, 0, 0).responses[0].partitions[0].error_code, 1);
        assert_eq!(delete(&mut conn, "trim", end + 1).0, 1, "past the high watermark: OFFSET_OUT_OF_RANGE");
        assert_eq!(delete(&mut conn, "trim", 1), (0, 3), "below the start: nothing changes");
        assert_eq!(delete(&mut conn, "__offsets", 1).0, 44, "POLICY_VIOLATION");
        let follower = cluster.brokers.iter().position(|b| b.id as i32 != leader).unwrap();
        let mut other = KafkaConn::connect(cluster.brokers[follower].kafka_address).unwrap();
        assert_eq!(delete(&mut other, "trim", 4).0, 6, "NOT_LEADER_OR_FOLLOWER");

        // The idle follower learns the start at once (its log-start file).
        let marker = cluster.brokers[follower].data_dir().join("trim-0").join("log-start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !marker.exists() {
            assert!(Instant::now() < deadline, "the follower never stored the new log start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Made leader, it serves from there, not from 0.
        let old = cluster.brokers.iter().position(|b| b.id as i32 == leader).unwrap();
        cluster.brokers[old].kill();
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut conn, epoch) = loop {
            if let Some(m) = follower_metadata(&cluster, follower, "trim")
                && m.0 != leader
                && m.0 >= 0
            {
                let conn = KafkaConn::connect(cluster.kafka_address_of(m.0)).unwrap();
                break (conn, m.1);
            }
            assert!(Instant::now() < deadline, "no new leader");
            std::thread::sleep(Duration::from_millis(100));
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let earliest = loop {
            let answer = list_offsets_answer(&mut conn, "trim", -2, epoch);
            if answer.0 == 0 {
                break answer.1;
            }
            assert!(Instant::now() < deadline, "the new leader never answered: {answer:?}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(earliest, 3, "deleted records stay deleted after a failover");
    }

    /// (leader, epoch) of `topic`'s partition 0, asked of broker `at`.
    fn follower_metadata(cluster: &KafkaCluster, at: usize, topic: &str) -> Option<(i32, i32)> {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
        let mut conn = KafkaConn::connect(cluster.brokers[at].kafka_address).ok()?;
        let req = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]));
        let answer: MetadataResponse = conn.call(ApiKey::Metadata, 9, &req).ok()?;
        let p = answer.topics.first()?.partitions.first()?;
        Some((p.leader_id.0, p.leader_epoch))
    }

    fn list_offsets_answer(conn: &mut KafkaConn, topic: &str, timestamp: i64, epoch: i32) -> (i16, i64) {
        let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            ListOffsetsTopic::default().with_name(name(topic)).with_partitions(vec![
                ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)
                    .with_current_leader_epoch(epoch),
            ]),
        ]);
        let answer: ListOffsetsResponse = conn.call(ApiKey::ListOffsets, 7, &req).unwrap();
        let p = &answer.topics[0].partitions[0];
        (p.error_code, p.offset)
    }

    fn list_offset(conn: &mut KafkaConn, topic: &str, timestamp: i64, epoch: i32) -> i64 {
        let (code, offset) = list_offsets_answer(conn, topic, timestamp, epoch);
        assert_eq!(code, 0);
        offset
    }
}

mod commits {
    use super::*;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use kafka_protocol::messages::{
        FindCoordinatorRequest, FindCoordinatorResponse, GroupId, OffsetCommitRequest, OffsetCommitResponse,
        OffsetFetchRequest, OffsetFetchResponse, TopicName,
    };

    fn commit(offset: i64) -> OffsetCommitRequest {
        OffsetCommitRequest::default()
            .with_group_id(GroupId("pipelined".to_owned().into()))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default().with_name(TopicName("t".to_owned().into())).with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(3)
                        .with_committed_metadata(Some(format!("at {offset}").into())),
                ]),
            ])
    }

    /// A consumer's pipelined commits are stored in the order it sent them:
    /// the last one wins, with its metadata and leader epoch.
    #[test]
    fn given_pipelined_commits_the_last_one_sent_should_be_the_one_kept() {
        let cluster = KafkaCluster::start(1, &[]);
        let mut conn = KafkaConn::connect(cluster.brokers[0].kafka_address).unwrap();
        // FindCoordinator creates __offsets; wait until it is led.
        let find = FindCoordinatorRequest::default().with_key("pipelined".to_owned().into());
        goulette_sentinel::testkit::wait_for("a coordinator", std::time::Duration::from_secs(30), || {
            conn.call::<_, FindCoordinatorResponse>(ApiKey::FindCoordinator, 3, &find).is_ok_and(|a| a.error_code == 0)
        });
        // Wait until commits are accepted (the leader applied its assignment).
        goulette_sentinel::testkit::wait_for("commits accepted", std::time::Duration::from_secs(30), || {
            let a: OffsetCommitResponse = conn.call(ApiKey::OffsetCommit, 8, &commit(0)).unwrap();
            a.topics[0].partitions[0].error_code == 0
        });
        let ids: Vec<i32> = (1..=30).map(|i| conn.send(ApiKey::OffsetCommit, 8, &commit(i * 10))).collect();
        for id in ids {
            let (got, answer) = conn.recv::<OffsetCommitResponse>(ApiKey::OffsetCommit, 8).unwrap();
            assert_eq!(got, id);
            assert_eq!(answer.topics[0].partitions[0].error_code, 0);
        }
        let fetch = OffsetFetchRequest::default().with_group_id(GroupId("pipelined".to_owned().into())).with_topics(
            Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName("t".to_owned().into()))
                    .with_partition_indexes(vec![0, 1]),
            ]),
        );
        let answer: OffsetFetchResponse = conn.call(ApiKey::OffsetFetch, 7, &fetch).unwrap();
        let p = &answer.topics[0].partitions;
        assert_eq!((p[0].committed_offset, p[0].committed_leader_epoch), (300, 3));
        assert_eq!(p[0].metadata.as_deref(), Some("at 300"));
        assert_eq!((p[1].committed_offset, p[1].metadata.as_deref()), (-1, Some("")), "never committed");
    }
}

mod timeouts {
    use super::*;
    use bytes::Bytes;
    use goulette_storage::{BatchBuilder, Compression, Record};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
    use std::time::{Duration, Instant};

    /// An `acks=all` produce whose followers stopped answering is answered
    /// by its `timeout_ms`, not the broker's 30 s (by then a client has
    /// given up on the whole connection).
    #[test]
    fn given_followers_that_stopped_an_acks_all_produce_should_be_answered_by_its_timeout() {
        use kafka_protocol::messages::create_topics_request::CreatableTopic;
        use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
        let cluster = KafkaCluster::start(3, &["--replica-lag-max", "60s"]);
        let mut admin = KafkaConn::connect(cluster.brokers[0].kafka_address).unwrap();
        let create = CreateTopicsRequest::default().with_timeout_ms(20_000).with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName("slow".to_owned().into()))
                .with_num_partitions(1)
                .with_replication_factor(3),
        ]);
        let created: CreateTopicsResponse = admin.call(ApiKey::CreateTopics, 5, &create).unwrap();
        assert_eq!(created.topics[0].error_code, 0);
        let produce = |conn: &mut KafkaConn, timeout_ms: i32| -> (i16, Duration) {
            let mut b = BatchBuilder::new(Compression::None);
            b.push(&Record {
                timestamp: goulette_storage::now_ms(),
                key: None,
                value: Bytes::from("v"),
                headers: Vec::new(),
            });
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(timeout_ms).with_topic_data(vec![
                TopicProduceData::default().with_name(TopicName("slow".to_owned().into())).with_partition_data(vec![
                    PartitionProduceData::default().with_index(0).with_records(Some(b.build().unwrap())),
                ]),
            ]);
            let started = Instant::now();
            let answer: ProduceResponse = conn.call(ApiKey::Produce, 9, &req).unwrap();
            (answer.responses[0].partition_responses[0].error_code, started.elapsed())
        };
        // Writes until both followers are in the ISR.
        let deadline = Instant::now() + Duration::from_secs(30);
        let (leader, isr) = loop {
            let metadata = cluster.wait_led("slow");
            let p = metadata.topics[0].partitions[0].clone();
            let mut conn = KafkaConn::connect(cluster.kafka_address_of(p.leader_id.0)).unwrap();
            let _ = produce(&mut conn, 10_000);
            if p.isr_nodes.len() == 3 {
                break (p.leader_id.0, p.isr_nodes);
            }
            assert!(Instant::now() < deadline, "the followers never joined the ISR: {p:?}");
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut conn = KafkaConn::connect(cluster.kafka_address_of(leader)).unwrap();
        let followers: Vec<_> = cluster
            .brokers
            .iter()
            .filter(|b| b.id as i32 != leader && isr.iter().any(|i| i.0 == b.id as i32))
            .collect();
        assert_eq!(followers.len(), 2);
        for f in &followers {
            f.pause();
        }
        let (code, took) = produce(&mut conn, 700);
        for f in &followers {
            f.resume();
        }
        assert_eq!(code, 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND");
        assert!(took >= Duration::from_millis(600) && took < Duration::from_secs(5), "answered after {took:?}");
    }
}
