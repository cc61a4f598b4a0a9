//! What sources hand to the pipeline: records in their source's order,
//! in batches, each batch with the position that acknowledges it.

use bytes::Bytes;

/// A record on its way to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorRecord {
    pub topic: String,
    /// The target partition; none: the key's (or any, without a key).
    pub partition: Option<u32>,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
    /// Milliseconds since the epoch; none: when the target writes it.
    pub timestamp: Option<i64>,
    /// Why the source could not make this record whole (a line or file
    /// over `max-record-bytes`): it is not written to its topic but goes
    /// to the dead letters, without its value, with this reason.
    pub refused: Option<String>,
    /// A null value at the source (`value` is empty): written as a
    /// tombstone, so that a compacted target deletes the key too.
    pub tombstone: bool,
}

/// Records read together. Acknowledging `position` tells the source that
/// this batch and every one before it are acknowledged by the target.
#[derive(Debug)]
pub struct Batch {
    pub records: Vec<MirrorRecord>,
    pub position: u64,
}

impl Batch {
    /// Bytes of keys and values (what rate and memory limits count).
    pub fn bytes(&self) -> usize {
        self.records.iter().map(|r| r.value.len() + r.key.as_ref().map_or(0, Bytes::len)).sum()
    }
}
