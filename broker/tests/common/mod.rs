//! The harness of the Kafka-protocol process tests: a real etcd, sentinel
//! and brokers (each with a Kafka listener on a free port), and a blocking
//! Kafka connection that encodes requests and decodes answers with the
//! `kafka-protocol` codec, as a client library does.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use goulette_sentinel::testkit::{BrokerProcess, EtcdProcess, SentinelProcess, wait_for};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message};

/// Held by a test that runs a cluster of its own plus client processes, so
/// that such tests run one at a time: several at once on 2 cores slowed
/// etcd's start past its 20 s limit in CI.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// A cluster of `brokers` brokers, all with a Kafka listener.
pub struct KafkaCluster {
    pub etcd: EtcdProcess,
    pub sentinel: SentinelProcess,
    pub brokers: Vec<BrokerProcess>,
}

impl KafkaCluster {
    /// Starts the cluster and waits until Kafka Metadata lists every broker.
    pub fn start(brokers: u32, broker_args: &[&str]) -> KafkaCluster {
        let etcd = EtcdProcess::start();
        let sentinel = SentinelProcess::start("s1", &etcd.endpoint(), &[]);
        let sentinels = sentinel.address.to_string();
        let brokers = (1..=brokers).map(|id| BrokerProcess::start(id, &sentinels, broker_args)).collect();
        let cluster = KafkaCluster { etcd, sentinel, brokers };
        let want = cluster.brokers.len();
        wait_for("every broker in the Kafka metadata", Duration::from_secs(30), || {
            cluster.metadata(None).is_some_and(|m| m.brokers.len() == want)
        });
        cluster
    }

    /// The bootstrap address list, `host:port,…`.
    pub fn bootstrap(&self) -> String {
        self.brokers.iter().map(|b| b.kafka_address.to_string()).collect::<Vec<_>>().join(",")
    }

    /// Metadata v9 of `topics` (all when `None`), asked of broker 1, with
    /// auto-creation.
    pub fn metadata(&self, topics: Option<&[&str]>) -> Option<MetadataResponse> {
        let mut conn = KafkaConn::connect(self.brokers[0].kafka_address).ok()?;
        let topics = topics.map(|t| {
            t.iter()
                .map(|n| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(kafka_protocol::messages::TopicName(n.to_string().into())))
                })
                .collect()
        });
        let req = MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(true);
        conn.call::<_, MetadataResponse>(ApiKey::Metadata, 9, &req).ok()
    }

    /// Waits until every partition of `topic` has a leader; returns the metadata.
    pub fn wait_led(&self, topic: &str) -> MetadataResponse {
        let mut last = None;
        wait_for(&format!("{topic} created and led"), Duration::from_secs(30), || {
            last = self.metadata(Some(&[topic]));
            last.as_ref().is_some_and(|m| {
                m.topics.len() == 1
                    && m.topics[0].error_code == 0
                    && !m.topics[0].partitions.is_empty()
                    && m.topics[0].partitions.iter().all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
            })
        });
        last.unwrap()
    }

    /// The Kafka address of broker `id`.
    pub fn kafka_address_of(&self, id: i32) -> SocketAddr {
        self.brokers.iter().find(|b| b.id as i32 == id).unwrap().kafka_address
    }
}

/// A blocking connection speaking the Kafka protocol.
pub struct KafkaConn {
    pub stream: TcpStream,
    next_id: i32,
}

impl KafkaConn {
    pub fn connect(address: SocketAddr) -> std::io::Result<KafkaConn> {
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(KafkaConn { stream, next_id: 1 })
    }

    /// Sends a request; returns its correlation id.
    pub fn send<R: Encodable + HeaderVersion>(&mut self, key: ApiKey, version: i16, req: &R) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some("goulette-test".into()));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version)).unwrap();
        req.encode(&mut body, version).unwrap();
        self.send_raw(&body);
        id
    }

    /// Sends `body` as one frame (size prefix added).
    pub fn send_raw(&mut self, body: &[u8]) {
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(body);
        let _ = self.stream.write_all(&frame);
    }

    /// The next answer frame (without its size), or `None` once the broker
    /// closed the connection.
    pub fn recv_raw(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).ok()?;
        Some(Bytes::from(frame))
    }

    /// Reads an answer to `key` at `version`: its correlation id and body.
    pub fn recv<T: Decodable + Message>(&mut self, key: ApiKey, version: i16) -> Result<(i32, T), String> {
        let mut frame = self.recv_raw().ok_or("the broker closed the connection")?;
        let header =
            ResponseHeader::decode(&mut frame, key.response_header_version(version)).map_err(|e| e.to_string())?;
        let body = T::decode(&mut frame, version).map_err(|e| e.to_string())?;
        if frame.has_remaining() {
            return Err(format!("{} bytes after the answer", frame.remaining()));
        }
        Ok((header.correlation_id, body))
    }

    /// Sends a request and reads its answer.
    pub fn call<R, T>(&mut self, key: ApiKey, version: i16, req: &R) -> Result<T, String>
    where
        R: Encodable + HeaderVersion,
        T: Decodable + Message,
    {
        let id = self.send(key, version, req);
        let (got, answer) = self.recv(key, version)?;
        if got != id {
            return Err(format!("answer to correlation id {got}, expected {id}"));
        }
        Ok(answer)
    }

    /// True once the broker has closed the connection (read returns EOF).
    pub fn closed(&mut self) -> bool {
        self.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }
}
