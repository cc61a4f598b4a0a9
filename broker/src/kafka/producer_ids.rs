//! InitProducerId (v0–4): an idempotent producer's id, allocated by the
//! sentinel leader (the same ids native producers get), at epoch 0.
//!
//! Every call gets a new id, including a producer's epoch bump after an
//! unknown or out-of-order sequence (KIP-360): a new id starts sequences
//! afresh, which is what the bump is for. Goulette has no transactions yet,
//! so a `transactional.id` is refused with INVALID_REQUEST (and a broker
//! log line saying why) rather than accepted and not honoured.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::kafka::{Kafka, errors};

/// Answers an InitProducerId request.
pub async fn handle(kafka: &Kafka, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let refused = |code: i16| InitProducerIdResponse::default().with_error_code(code).with_producer_id(ProducerId(-1));
    if let Some(id) = &req.transactional_id {
        tracing::info!(transactional_id = %id.0.as_str(), "Kafka InitProducerId refused: transactions are not supported yet");
        return refused(ResponseError::InvalidRequest.code());
    }
    match kafka.sentinels.init_producer_id().await {
        Ok(answer) => match answer.error {
            None => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(answer.producer_id))
                .with_producer_epoch(0),
            Some(e) => refused(match errors::code(&e) {
                // No sentinel leader right now: retriable (Kafka's code for
                // an idempotent producer's id not ready yet).
                c if c == ResponseError::UnknownServerError.code() => ResponseError::CoordinatorLoadInProgress.code(),
                c => c,
            }),
        },
        Err(e) => {
            tracing::warn!(error = %e, "Kafka InitProducerId: the sentinels could not answer");
            refused(ResponseError::CoordinatorLoadInProgress.code())
        }
    }
}
