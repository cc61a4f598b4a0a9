//! Helpers shared by the storage integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use goulette_storage::{Batch, BatchBuilder, Compression, FlushPolicy, LogConfig, PartitionLog, Record};

/// A batch of `count` records with values `"{tag}-{i}"` and timestamp `ts + i`.
pub fn batch(tag: &str, count: usize, ts: i64) -> Batch {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..count {
        b.push(&Record {
            timestamp: ts + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Bytes::from(format!("{tag}-{i}")),
            // The padding header makes small test logs span several fragments.
            headers: vec![("pad".into(), Bytes::from(vec![b'.'; 100]))],
        });
    }
    Batch::parse(b.build().expect("build batch")).expect("parse batch")
}

/// A batch of one record whose value is `size` bytes.
pub fn sized_batch(size: usize, ts: i64) -> Batch {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(&Record { timestamp: ts, value: Bytes::from(vec![7u8; size]), ..Record::default() });
    Batch::parse(b.build().expect("build batch")).expect("parse batch")
}

/// Small fragments so that tests seal often.
pub fn small_config() -> LogConfig {
    LogConfig {
        fragment_bytes: 4096,
        index_interval_bytes: 256,
        flush: FlushPolicy::Never,
        retention_age: None,
        max_batch_bytes: 4096,
        ..LogConfig::default()
    }
}

/// Every record value in the log from `from`, decoded, with its offset.
pub fn all_values(log: &PartitionLog, from: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let batches = log.read(offset, 1 << 16).expect("read");
        assert!(!batches.is_empty(), "read at {offset} returned nothing before the log end");
        for bytes in batches {
            let batch = Batch::parse_sparse(bytes).expect("stored batch parses");
            for r in batch.records().expect("records decode") {
                if r.offset >= offset {
                    out.push((r.offset, String::from_utf8(r.record.value.to_vec()).expect("utf8")));
                }
            }
            offset = batch.next_offset();
        }
    }
    out
}
