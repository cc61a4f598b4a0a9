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
#[derive(Debug)]
pub struct SourceEnds {
    pub batches: mpsc::Sender<Batch>,
    pub acks: mpsc::UnboundedReceiver<Acked>,
}

/// A connected pair of ends.
pub fn link() -> (SourceLink, SourceEnds) {
    let (batches_tx, batches) = mpsc::channel(AHEAD);
    let (acks, acks_rx) = mpsc::unbounded_channel();
    (SourceLink { batches, acks }, SourceEnds { batches: batches_tx, acks: acks_rx })
}
