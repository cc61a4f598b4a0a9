//! Rows that pair a feature's producer with a plain one: compacted and
//! delayed topics.

use std::path::Path;

use crate::common::Env;
use crate::table::{alternated, row};

/// Producing delayed records (each an hour ahead) beside the same plain
/// run, alternated `ROUNDS` times on one broker: what delayed delivery
/// costs a producer (the broker looks for the headers in every batch,
/// marks those holding delayed records, and indexes them).
pub fn delayed_rows(env: &Env, dir: &Path) -> Vec<String> {
    const ROUNDS: usize = 3;
    let args = |topic: &'static str, delay: &[&'static str]| {
        let base = ["produce", "--topic", topic, "--message-size", "1024", "--duration", "10s", "--delete-topic"];
        base.into_iter().chain(delay.iter().copied()).collect::<Vec<_>>()
    };
    let plain_args = args("plain-now", &[]);
    let delayed_args = args("delayed", &["--delay", "1h"]);
    let (plain, delayed) = alternated(env, dir, ROUNDS, (&plain_args, "plain-now"), (&delayed_args, "delayed"));
    let how = format!(
        "`{}`, against no `--delay` (medians of {ROUNDS}, alternated)",
        args("t", &["--delay", "1h"]).join(" ")
    );
    vec![row(
        "1 KiB, durable: every record delayed 1 h against none",
        &how,
        format!("{delayed:.0} against {plain:.0} msg/s: {:.2}×", delayed / plain),
        "≥ 0.8× plain",
        delayed >= 0.8 * plain,
    )]
}

/// Producing to a compacted topic beside the same keyed run on a plain
/// one, alternated `ROUNDS` times on one broker (whose compactor runs
/// meanwhile): what compaction costs a producer (the broker decodes each
/// batch to check its keys, and passes share the disk).
pub fn compacted_rows(env: &Env, dir: &Path) -> Vec<String> {
    const ROUNDS: usize = 3;
    let args = |topic: &'static str, policy: &'static str| {
        let keyed = ["--keys", "100000", "--cleanup-policy", policy, "--duration", "10s", "--delete-topic"];
        ["produce", "--topic", topic, "--message-size", "1024"].into_iter().chain(keyed).collect::<Vec<_>>()
    };
    let plain_args = args("keyed-plain", "delete");
    let compact_args = args("keyed-compact", "compact");
    let (plain, compacted) =
        alternated(env, dir, ROUNDS, (&plain_args, "keyed-plain"), (&compact_args, "keyed-compact"));
    let how = format!(
        "`{}`, against `--cleanup-policy delete` (medians of {ROUNDS}, alternated)",
        args("t", "compact").join(" ")
    );
    vec![row(
        "1 KiB keyed (100k keys), durable: compacted topic against plain",
        &how,
        format!("{compacted:.0} against {plain:.0} msg/s: {:.2}×", compacted / plain),
        "≥ 0.8× plain",
        compacted >= 0.8 * plain,
    )]
}
