//! The Kafka-protocol side of the workload: a confluent-kafka (librdkafka)
//! idempotent `acks=all` producer and a confluent-kafka consumer following
//! every partition, as processes beside the native clients, through the
//! brokers' Kafka listeners. What they record joins the native history, so
//! the checker holds Kafka clients to the same guarantees: no acknowledged
//! message lost, reordered or duplicated, nothing delivered vanished.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use goulette_sentinel::testkit::signal;

use crate::checker::{Ack, History};

/// The Kafka producer's id in message values (`p{id}-{seq}`), apart from
/// the native producers' 0, 1, 2.
pub const PRODUCER_ID: u32 = 9;

pub struct KafkaWorkload {
    producer: Child,
    consumer: Child,
    dir: tempfile::TempDir,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

impl KafkaWorkload {
    /// Starts the producer (`rate` messages/s) and the consumer of
    /// `partitions` partitions against `bootstrap`.
    pub fn start(bootstrap: &str, topic: &str, partitions: u32, rate: u32) -> KafkaWorkload {
        let python = repo().join(".venv/bin/python");
        assert!(python.exists(), "{} is missing: run `make deps`", python.display());
        let scripts = repo().join("broker/tests/kafka");
        let dir = tempfile::tempdir().unwrap();
        let producer = Command::new(&python)
            .arg(scripts.join("chaos_producer.py"))
            .args([bootstrap, topic, &PRODUCER_ID.to_string(), &rate.to_string()])
            .arg(dir.path().join("acks.txt"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Kafka producer");
        let consumer = Command::new(&python)
            .arg(scripts.join("chaos_consumer.py"))
            .args([bootstrap, topic, &partitions.to_string()])
            .arg(dir.path().join("observed.txt"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Kafka consumer");
        KafkaWorkload { producer, consumer, dir }
    }

    /// Stops the producer (it flushes first): its acknowledgements, and
    /// how many sends it attempted and saw fail.
    pub fn stop_producer(&mut self) -> (Vec<Ack>, u64, u64) {
        signal(&self.producer, libc::SIGTERM);
        let mut stdout = String::new();
        if let Some(mut out) = self.producer.stdout.take() {
            use std::io::Read;
            let _ = out.read_to_string(&mut stdout);
        }
        let status = self.producer.wait().expect("the Kafka producer");
        let summary = stdout.lines().last().unwrap_or_default().to_owned();
        let mut words = summary.split_whitespace();
        let (sent, failed) = match (words.next(), words.next(), words.next(), words.next()) {
            (Some("sent"), Some(sent), Some("failed"), Some(failed)) => {
                (sent.parse().unwrap(), failed.parse().unwrap())
            }
            _ => panic!("the Kafka producer ended without its summary: {summary:?} ({status})"),
        };
        let mut acks = Vec::new();
        for line in self.read("acks.txt").lines() {
            let f: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            if let [partition, offset, seq] = f[..] {
                acks.push(Ack { producer: PRODUCER_ID, seq, partition: partition as u32, offset });
            }
        }
        (acks, sent, failed)
    }

    /// Stops the consumer and adds what it delivered to `history`. It
    /// writes each record as it gets it, so one that does not stop within
    /// 10 s (librdkafka's close has been seen to hang) is killed and what it
    /// wrote still counts.
    pub fn finish(mut self, history: &mut History) {
        signal(&self.consumer, libc::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while matches!(self.consumer.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if matches!(self.consumer.try_wait(), Ok(None)) {
            eprintln!("chaos: the Kafka consumer did not stop within 10 s of SIGTERM; killed");
            let _ = self.consumer.kill();
        }
        let _ = self.consumer.wait();
        for line in self.read("observed.txt").lines() {
            let mut f = line.splitn(3, ' ');
            if let (Some(p), Some(o), Some(v)) = (f.next(), f.next(), f.next())
                && let (Ok(p), Ok(o)) = (p.parse::<u32>(), o.parse::<u64>())
            {
                history.observed.entry(p).or_default().push((o, v.to_owned()));
            }
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}
