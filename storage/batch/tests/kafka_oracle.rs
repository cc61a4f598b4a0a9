//! An independent oracle for the batch format: the `kafka-protocol` crate's
//! RecordBatch v2 codec. What Goulette's builder writes, it must decode to
//! the same records; what it encodes, Goulette must accept and decode to the
//! same records, for every codec.
//!
//! `kafka-protocol` keeps a record's headers in an `IndexMap`, which drops a
//! repeated key, so header keys are unique here (Kafka allows repeats; the
//! unit tests cover them).

use bytes::{Bytes, BytesMut};
use goulette_batch::{Batch, BatchBuilder, Compression, ProducerInfo, Record};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KafkaCompression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KafkaTimestampType,
};
use proptest::prelude::*;

fn kafka_codec(codec: Compression) -> KafkaCompression {
    match codec {
        Compression::None => KafkaCompression::None,
        Compression::Gzip => KafkaCompression::Gzip,
        Compression::Snappy => KafkaCompression::Snappy,
        Compression::Lz4 => KafkaCompression::Lz4,
        Compression::Zstd => KafkaCompression::Zstd,
    }
}

fn codec_strategy() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

/// Headers with unique keys (see the module doc), in random order.
fn headers<V: std::fmt::Debug>(value: impl Strategy<Value = V>) -> impl Strategy<Value = Vec<(String, V)>> {
    proptest::collection::vec(("[a-zé]{0,8}", value), 0..5).prop_map(|mut headers| {
        let mut seen = std::collections::HashSet::new();
        headers.retain(|(key, _)| seen.insert(key.clone()));
        headers
    })
}

/// A record as Goulette's builder takes it (values are never null).
fn record() -> impl Strategy<Value = Record> {
    (-1_000_000i64..1_000_000, proptest::option::of(bytes(40)), bytes(300), headers(bytes(16)))
        .prop_map(|(ts, key, value, headers)| Record { timestamp: 1_700_000_000_000 + ts, key, value, headers })
}

/// A record's contents as Kafka allows them: null values and header values.
type KafkaContents = (i64, Option<Bytes>, Option<Bytes>, Vec<(String, Option<Bytes>)>);

fn kafka_contents() -> impl Strategy<Value = KafkaContents> {
    (
        -1_000_000i64..1_000_000,
        proptest::option::of(bytes(40)),
        proptest::option::of(bytes(300)),
        headers(proptest::option::of(bytes(16))),
    )
        .prop_map(|(ts, key, value, headers)| (1_700_000_000_000 + ts, key, value, headers))
}

fn producer() -> impl Strategy<Value = Option<ProducerInfo>> {
    proptest::option::of((0i64..1 << 40, 0i16..i16::MAX, 0i32..1 << 20).prop_map(
        |(producer_id, producer_epoch, base_sequence)| ProducerInfo { producer_id, producer_epoch, base_sequence },
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Goulette writes, Kafka's codec reads.
    #[test]
    fn kafka_decodes_what_goulette_builds(
        records in proptest::collection::vec(record(), 1..20),
        codec in codec_strategy(),
        producer in producer(),
        base in 0u64..1 << 40,
        epoch in 0u32..i32::MAX as u32,
    ) {
        let mut builder = BatchBuilder::new(codec);
        if let Some(info) = producer {
            builder = builder.producer(info);
        }
        for r in &records {
            builder.push(r);
        }
        let batch = Batch::parse(builder.build().unwrap()).unwrap().stamped(base, epoch);

        let mut wire = batch.as_bytes().clone();
        let set = RecordBatchDecoder::decode(&mut wire).unwrap();
        prop_assert!(wire.is_empty(), "the whole batch was read");
        prop_assert_eq!(set.version, 2);
        prop_assert_eq!(set.compression, kafka_codec(codec));
        prop_assert_eq!(set.records.len(), records.len());
        for (i, (got, want)) in set.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.offset, (base + i as u64) as i64);
            prop_assert_eq!(got.partition_leader_epoch, epoch as i32);
            prop_assert_eq!(got.producer_id, producer.map_or(-1, |p| p.producer_id));
            prop_assert_eq!(got.producer_epoch, producer.map_or(-1, |p| p.producer_epoch));
            prop_assert_eq!(got.sequence, producer.map_or(-1, |p| p.base_sequence).wrapping_add(i as i32));
            prop_assert!(!got.transactional && !got.control);
            prop_assert_eq!(got.timestamp_type, KafkaTimestampType::Creation);
            prop_assert_eq!(got.timestamp, want.timestamp);
            prop_assert_eq!(&got.key, &want.key);
            prop_assert_eq!(got.value.as_ref(), Some(&want.value));
            let headers: Vec<(String, Option<Bytes>)> =
                got.headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect();
            let expected: Vec<(String, Option<Bytes>)> =
                want.headers.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
            prop_assert_eq!(headers, expected);
        }
    }

    /// Kafka's codec writes, Goulette reads.
    #[test]
    fn goulette_decodes_what_kafka_encodes(
        contents in proptest::collection::vec(kafka_contents(), 1..20),
        codec in codec_strategy(),
        producer in producer(),
        base in 0i64..1 << 40,
        epoch in -1i32..i32::MAX,
    ) {
        let (producer_id, producer_epoch, base_sequence) =
            producer.map_or((-1, -1, -1), |p| (p.producer_id, p.producer_epoch, p.base_sequence));
        let records: Vec<KafkaRecord> = contents
            .iter()
            .enumerate()
            .map(|(i, (timestamp, key, value, headers))| KafkaRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: epoch,
                producer_id,
                producer_epoch,
                timestamp_type: KafkaTimestampType::Creation,
                offset: base + i as i64,
                // Kafka numbers the records of a batch from its base sequence.
                sequence: base_sequence.wrapping_add(i as i32),
                timestamp: *timestamp,
                key: key.clone(),
                value: value.clone(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                    .collect::<IndexMap<_, _>>(),
            })
            .collect();
        let mut wire = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: kafka_codec(codec) };
        RecordBatchEncoder::encode(&mut wire, &records, &options).unwrap();

        let batch = Batch::parse(wire.freeze()).unwrap();
        prop_assert_eq!(batch.base_offset(), base as u64);
        prop_assert_eq!(batch.partition_leader_epoch(), epoch as u32);
        prop_assert_eq!(batch.record_count() as usize, contents.len());
        prop_assert_eq!(batch.compression(), Some(codec));
        prop_assert_eq!(batch.producer(), producer);
        prop_assert_eq!(batch.max_timestamp(), contents.iter().map(|c| c.0).max().unwrap());
        let decoded = batch.records().unwrap();
        prop_assert_eq!(decoded.len(), contents.len());
        for (i, (got, (timestamp, key, value, headers))) in decoded.iter().zip(&contents).enumerate() {
            prop_assert_eq!(got.offset, base as u64 + i as u64);
            prop_assert_eq!(got.record.timestamp, *timestamp);
            prop_assert_eq!(&got.record.key, key);
            // Null values read as empty bytes in Goulette's view.
            prop_assert_eq!(&got.record.value, &value.clone().unwrap_or_default());
            let expected: Vec<(String, Bytes)> =
                headers.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
            prop_assert_eq!(&got.record.headers, &expected);
        }
    }
}

/// A transactional batch (and a control batch, a transaction marker) as
/// Kafka encodes it is refused: Goulette has no transactions yet.
#[test]
fn kafka_transactional_batches_are_refused() {
    for control in [false, true] {
        let record = KafkaRecord {
            transactional: true,
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 5,
            producer_epoch: 0,
            timestamp_type: KafkaTimestampType::Creation,
            offset: 0,
            sequence: 0,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(&[0, 0, 0, 1])),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
            headers: IndexMap::new(),
        };
        let mut wire = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: KafkaCompression::None };
        RecordBatchEncoder::encode(&mut wire, [&record], &options).unwrap();
        let err = Batch::parse(wire.freeze()).unwrap_err();
        assert!(err.to_string().contains("transactional batches are not supported"), "{err}");
    }
}
