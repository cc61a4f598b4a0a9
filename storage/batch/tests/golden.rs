//! Golden vectors: Kafka RecordBatch v2 bytes written out by hand from the
//! format's definition (Kafka's `DefaultRecordBatch` and `DefaultRecord`),
//! with a CRC-32C computed here by a bitwise implementation of its own, so
//! that neither the codec's byte layout nor its CRC is checked against
//! itself.

use bytes::Bytes;
use goulette_batch::{Batch, BatchBuilder, Compression, Record, StoredRecord, TimestampType};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    !crc
}

/// Fills in the CRC field (bytes 17..21) of a hand-assembled batch.
fn with_crc(mut batch: Vec<u8>) -> Vec<u8> {
    let crc = crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// 1_700_000_000_000 ms.
const T: [u8; 8] = [0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00];
const T_MS: i64 = 1_700_000_000_000;

#[test]
fn the_crc_is_crc32c() {
    // The standard check value of CRC-32C.
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(i64::from_be_bytes(T), T_MS);
}

/// Two records as a Kafka producer may send them: a key, a header with a
/// null value; then a null key and a null value. Stamped at offset 100,
/// leader epoch 7.
fn kafka_batch() -> Vec<u8> {
    #[rustfmt::skip]
    let header: Vec<u8> = [
        &[0, 0, 0, 0, 0, 0, 0, 100][..], // base offset 100
        &[0, 0, 0, 72],                  // batch length: 84 bytes in all, minus 12
        &[0, 0, 0, 7],                   // partition leader epoch 7
        &[2],                            // magic 2
        &[0, 0, 0, 0],                   // CRC, filled in below
        &[0, 0],                         // attributes: no compression, create time
        &[0, 0, 0, 1],                   // last offset delta 1
        &T,                              // base timestamp
        &[0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05], // max timestamp, T + 5
        &[0xff; 8],                      // producer id -1
        &[0xff; 2],                      // producer epoch -1
        &[0xff; 4],                      // base sequence -1
        &[0, 0, 0, 2],                   // record count 2
    ]
    .concat();
    assert_eq!(header.len(), 61);
    // Every varint zigzag: 0 -> 0x00, -1 -> 0x01, 1 -> 0x02, 5 -> 0x0a, 15 -> 0x1e.
    #[rustfmt::skip]
    let records: &[u8] = &[
        0x1e,                                 // length 15
        0x00,                                 // attributes
        0x00,                                 // timestamp delta 0
        0x00,                                 // offset delta 0
        0x02, b'k',                           // key "k"
        0x0a, b'h', b'e', b'l', b'l', b'o',   // value "hello"
        0x02,                                 // 1 header
        0x02, b'h',                           //   key "h"
        0x01,                                 //   value null
        0x0c,                                 // length 6
        0x00,                                 // attributes
        0x0a,                                 // timestamp delta 5
        0x02,                                 // offset delta 1
        0x01,                                 // key null
        0x01,                                 // value null
        0x00,                                 // no header
    ];
    with_crc([header, records.to_vec()].concat())
}

#[test]
fn a_hand_assembled_kafka_batch_parses_and_decodes() {
    let bytes = kafka_batch();
    assert_eq!(bytes.len(), 84);
    let batch = Batch::parse(Bytes::from(bytes.clone())).unwrap();
    assert_eq!(batch.base_offset(), 100);
    assert_eq!(batch.partition_leader_epoch(), 7);
    assert_eq!(batch.record_count(), 2);
    assert_eq!(batch.next_offset(), 102);
    assert_eq!(batch.compression(), Some(Compression::None));
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(batch.first_timestamp(), T_MS);
    assert_eq!(batch.max_timestamp(), T_MS + 5);
    assert_eq!(batch.producer(), None);
    assert_eq!(batch.crc(), crc32c(&bytes[21..]));
    assert_eq!(goulette_batch::batch::peek_batch_len(&bytes), Some(84));

    // Null values (and header values) read as empty bytes in the native view.
    let expected = vec![
        StoredRecord {
            offset: 100,
            record: Record {
                timestamp: T_MS,
                key: Some(Bytes::from_static(b"k")),
                value: Bytes::from_static(b"hello"),
                headers: vec![("h".to_owned(), Bytes::new())],
            },
            null_value: false,
        },
        StoredRecord {
            offset: 101,
            record: Record { timestamp: T_MS + 5, key: None, value: Bytes::new(), headers: vec![] },
            null_value: true,
        },
    ];
    assert_eq!(batch.records().unwrap(), expected);
    // The bytes stay as sent, nulls included.
    assert_eq!(batch.as_bytes()[..], bytes[..]);
}

/// The builder writes exactly what Kafka's producer would, bar the leader
/// epoch (0 here, which the leader overwrites anyway).
#[test]
fn the_builder_writes_kafka_bytes() {
    #[rustfmt::skip]
    let expected = with_crc([
        &[0u8; 8][..],     // base offset 0, stamped by the leader
        &[0, 0, 0, 61],    // batch length: 73 - 12
        &[0, 0, 0, 0],     // partition leader epoch, stamped by the leader
        &[2],              // magic
        &[0, 0, 0, 0],     // CRC
        &[0, 0],           // attributes
        &[0, 0, 0, 0],     // last offset delta 0
        &T,                // base timestamp
        &T,                // max timestamp
        &[0xff; 8],        // producer id -1
        &[0xff; 2],        // producer epoch -1
        &[0xff; 4],        // base sequence -1
        &[0, 0, 0, 1],     // record count 1
        &[
            0x16,                // length 11
            0x00, 0x00, 0x00,    // attributes, timestamp delta, offset delta
            0x01,                // key null
            0x02, b'v',          // value "v"
            0x02,                // 1 header
            0x02, b'h',          //   key "h"
            0x02, b'x',          //   value "x"
        ],
    ]
    .concat());
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(&Record {
        timestamp: T_MS,
        key: None,
        value: Bytes::from_static(b"v"),
        headers: vec![("h".to_owned(), Bytes::from_static(b"x"))],
    });
    let built = builder.build().unwrap();
    assert_eq!(built[..], expected[..]);

    // Stamping rewrites the base offset and epoch in place, big-endian,
    // leaving the CRC (which does not cover them) as it was.
    let stamped = Batch::parse(built).unwrap().stamped(0x0102_0304_0506_0708, 0x0a0b_0c0d);
    assert_eq!(stamped.as_bytes()[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(stamped.as_bytes()[12..16], [0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(stamped.as_bytes()[16..], expected[16..]);
    Batch::parse(stamped.into_bytes()).unwrap();
}

/// The same batch with its CRC computed as CRC-32 (IEEE), as Goulette's
/// older format did, is refused: the CRC really is CRC-32C.
#[test]
fn a_crc32_ieee_checksum_is_refused() {
    let mut bytes = kafka_batch();
    let ieee = {
        let mut crc = !0u32;
        for &b in &bytes[21..] {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
            }
        }
        !crc
    };
    bytes[17..21].copy_from_slice(&ieee.to_be_bytes());
    let err = Batch::parse(Bytes::from(bytes)).unwrap_err();
    assert!(err.to_string().contains("CRC-32C mismatch"), "{err}");
}
