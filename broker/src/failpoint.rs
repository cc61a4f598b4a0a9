//! Failpoints: faults a test injects into a real broker process through
//! its environment, to reach states that are otherwise a matter of luck.
//! Unset (always, outside tests), they cost one check of a parsed value.
//!
//! `GOULETTE_FAILPOINT_PRODUCE_RESPONSE`:
//! - `drop:N`: the next N produce responses are not sent; the stream ends
//!   instead, as if the connection broke after the batch was stored;
//! - `crash-once:PATH`: the first broker (of those given the same PATH) to
//!   reach a produce response creates PATH and exits (code 86) instead of
//!   sending it, as if it died after storing and replicating the batch.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// The environment variable of the produce-response failpoint.
pub const PRODUCE_RESPONSE: &str = "GOULETTE_FAILPOINT_PRODUCE_RESPONSE";

/// Exit code of the `crash-once` failpoint.
pub const CRASH_EXIT_CODE: i32 = 86;

/// What to do with a produce response about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceResponse {
    Send,
    Drop,
    Crash,
}

#[derive(Debug)]
enum Mode {
    Off,
    Drop(AtomicI64),
    CrashOnce(PathBuf),
}

fn mode() -> &'static Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    MODE.get_or_init(|| {
        let value = std::env::var(PRODUCE_RESPONSE).unwrap_or_default();
        let mode = if value.is_empty() {
            Mode::Off
        } else if let Some(n) = value.strip_prefix("drop:").and_then(|n| n.parse().ok()) {
            Mode::Drop(AtomicI64::new(n))
        } else if let Some(path) = value.strip_prefix("crash-once:") {
            Mode::CrashOnce(PathBuf::from(path))
        } else {
            tracing::error!(%value, "ignoring a malformed {PRODUCE_RESPONSE}");
            Mode::Off
        };
        if !matches!(mode, Mode::Off) {
            tracing::warn!(%value, "produce-response failpoint armed");
        }
        mode
    })
}

/// Consults the produce-response failpoint.
pub fn produce_response() -> ProduceResponse {
    match mode() {
        Mode::Off => ProduceResponse::Send,
        // Several streams may race for the last drop: only N win.
        Mode::Drop(left) => match left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n > 0).then(|| n - 1)) {
            Ok(_) => ProduceResponse::Drop,
            Err(_) => ProduceResponse::Send,
        },
        // Creating the file is the once-only test across processes.
        Mode::CrashOnce(path) => match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(_) => ProduceResponse::Crash,
            Err(_) => ProduceResponse::Send,
        },
    }
}
