//! The inputs. A source runs as a task of its own: it sends batches, in
//! its order, on a bounded channel (so it reads no further ahead than the
//! pipeline takes), and learns on another channel which positions the
//! target acknowledged. Only then does it let go of the records at its end
//! (a file moved, a message acknowledged, an offset committed): a crash
//! in between makes it send them again, never lose them.
//!
//! - [`files`]: files dropped into a directory (progress in a
//!   [`checkpoint`]).
//! - [`rabbitmq`]: a RabbitMQ queue.
//! - [`kafka`]: topics of a Kafka-protocol cluster, as a consumer group,
//!   with consumer-group offset sync.

pub mod checkpoint;
pub mod files;
pub mod kafka;
pub mod rabbitmq;

use tokio::sync::mpsc;

use crate::record::Batch;

/// Batches a source may send ahead of the pipeline.
pub const AHEAD: usize = 4;

/// The pipeline's word on a batch: it, and every batch before it, is
/// acknowledged by the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub position: u64,
    /// Each record's offset in its target partition, in the batch's
    /// order; none when it was not written there (a duplicate dropped, or
    /// sent to the dead letters).
    pub offsets: Vec<Option<u64>>,
}

/// The pipeline's side of a source.
#[derive(Debug)]
pub struct SourceLink {
    pub batches: mpsc::Receiver<Batch>,
    pub acks: mpsc::UnboundedSender<Acked>,
}

/// The source's side: where it sends batches and hears acknowledgements.
/// A source whose records may go through several pipelines at once (the
/// Kafka source: one partition always through the same one) sends to
/// `workers` too; the acknowledgements of all come on `acks`, each
/// pipeline's in its order.
#[derive(Debug)]
pub struct SourceEnds {
    pub batches: mpsc::Sender<Batch>,
    /// The pipelines after the first.
    pub workers: Vec<mpsc::Sender<Batch>>,
    pub acks: mpsc::UnboundedReceiver<Acked>,
}

/// The ends of `pipelines` pipelines (at least one) and their source.
pub fn link(pipelines: usize) -> (Vec<SourceLink>, SourceEnds) {
    let (acks, acks_rx) = mpsc::unbounded_channel();
    let mut links = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..pipelines.max(1) {
        let (batches_tx, batches) = mpsc::channel(AHEAD);
        links.push(SourceLink { batches, acks: acks.clone() });
        senders.push(batches_tx);
    }
    let batches = senders.remove(0);
    (links, SourceEnds { batches, workers: senders, acks: acks_rx })
}
