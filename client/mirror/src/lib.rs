//! `goulette-mirror`: a long-running service that moves records from
//! other systems into Goulette, at least once: a source lets go of a
//! record (moves its file, acknowledges its message, commits its offset)
//! only after the target acknowledged it, durable and replicated.
//!
//! - [`config`]: the TOML file and its `GOULETTE_MIRROR_*` overrides.
//! - [`source`]: the inputs (files, RabbitMQ, Kafka), each on its own task.
//! - [`pipeline`]: one source's way to the target, in order, bounded,
//!   acknowledged back in order; retries and dead letters.
//! - [`dedup`]: the optional dedup of a source's records, [`seed`]ed at
//!   start from what the target topic holds.
//! - [`rate`]: the optional rate limits of a source.
//! - [`target`]: the Goulette producer and the dead-letter topic.
//! - [`record`]: what flows between them.
//! - [`metrics`]: what `/metrics` shows.
//! - [`service`]: the whole, with the HTTP endpoints and a graceful stop.
//!
//! `docs/mirror.md` is the reader's reference.

pub mod config;
pub mod dedup;
pub mod metrics;
pub mod pipeline;
pub mod rate;
pub mod record;
pub mod seed;
pub mod service;
pub mod source;
pub mod target;
