//! Conditional appends: records stored in a partition only if its log ends
//! at a given offset (`ProduceRequest.expected_offset`), else refused with
//! where it ends. A writer that copies another log offset for offset (the
//! mirror's exactly-once mode) appends each batch at its source offset: a
//! retry after a lost answer, or a batch a killed earlier run of it had
//! sent, is then found stored already and never stored twice, without any
//! producer state to keep.

use goulette_batch::{BatchBuilder, Compression, Record};
use goulette_proto::v1::{self as pb, Acks, ErrorCode};

use crate::cluster::Cluster;
use crate::error::{ClientError, Result};

/// How often a leader that cannot be reached, or moves, is looked up again.
const ATTEMPTS: u32 = 10;

/// The outcome of a conditional append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored, replicated (`acks=all`) and durable, from `expected` on.
    Stored,
    /// Nothing stored: the log ends at `log_end`, not where expected.
    Mismatch { log_end: u64 },
}

/// Appends `records` to `topic`/`partition` if its log ends at `expected`.
pub async fn append_at(
    cluster: &Cluster,
    topic: &str,
    partition: u32,
    expected: u64,
    records: &[Record],
) -> Result<Appended> {
    let mut builder = BatchBuilder::new(Compression::None);
    for record in records {
        builder.push(record);
    }
    let batch = builder.build().map_err(|e| ClientError::InvalidArgument(format!("records: {e}")))?;
    cluster
        .with_leader("conditional append", topic, partition, ATTEMPTS, |mut client| {
            let request = pb::ProduceRequest {
                correlation_id: 1,
                topic: topic.to_owned(),
                partition,
                acks: Acks::All as i32,
                batch: batch.clone(),
                expected_offset: Some(expected),
            };
            async move {
                let mut responses = client.produce(tokio_stream::once(request)).await?.into_inner();
                let response = responses
                    .message()
                    .await?
                    .ok_or_else(|| tonic::Status::unavailable("the produce stream ended without an answer"))?;
                Ok(match response.error {
                    None => (Appended::Stored, None),
                    Some(e) if e.code == ErrorCode::OffsetMismatch as i32 => {
                        (Appended::Mismatch { log_end: response.log_end_offset }, None)
                    }
                    Some(e) => (Appended::Stored, Some(e)),
                })
            }
        })
        .await
}
