//! Delayed delivery on the broker (docs/delayed.md).
//!
//! - [`mark`]: the produce path marks a batch holding records not yet due
//!   (its originals), and refuses malformed delivery headers, delays past
//!   the maximum, delayed records on compacted topics, and the broker's
//!   own batch bits.
//! - [`hide`]: the fetch paths (gRPC and Kafka) send consumers marked
//!   batches without their originals.
//! - [`deliver`]: one task keeps every replica's timer index
//!   (`goulette_storage::timers`) caught up with its log, holds undelivered
//!   originals against retention and compaction, and, on leaders, appends
//!   a copy of each original when it is due.

pub mod deliver;
pub mod hide;
pub mod mark;

/// The longest delay a producer may ask for, unless configured.
pub const DEFAULT_MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
