//! The TLS row: `scripts/bench-tls.sh`'s paired rounds.

use std::path::Path;
use std::process::Command;

use crate::table::row;

/// The cost of TLS on every gRPC hop for a 1 KiB durable producer:
/// `scripts/bench-tls.sh` (`make bench-tls`), which alternates plaintext and
/// TLS clusters in paired rounds, because this machine's fsync-bound
/// throughput drifts more between minutes than TLS moves it.
pub fn tls_row() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-tls.sh");
    let out = Command::new("bash").arg(script).env("ROUNDS", "5").env("SECONDS_PER_RUN", "10").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "bench-tls: {text}{}", String::from_utf8_lossy(&out.stderr));
    print!("{text}");
    let (plain, tls, ratio) = tls_medians(&text).unwrap_or_else(|| panic!("no medians line: {text}"));
    row(
        "1 KiB, 1 producer, durable, TLS on every gRPC hop",
        "`make bench-tls` (5 rounds of 10 s, plaintext and TLS alternated)",
        format!("{tls:.0} msg/s with TLS, {plain:.0} without: TLS/plaintext {ratio:.2} (median of the rounds)"),
        "costs ≤ 15 % (ratio ≥ 0.85)",
        ratio >= 0.85,
    )
}

/// The plaintext and TLS medians (msg/s) and the median ratio from the
/// last line of `scripts/bench-tls.sh`: "bench-tls: medians: plaintext P
/// msg/s, TLS T msg/s; TLS/plaintext per round: …, median R".
pub fn tls_medians(output: &str) -> Option<(f64, f64, f64)> {
    let line = output.lines().find(|l| l.contains("medians:"))?;
    // The number after the first `key ` (with its space: "medians:" is no "median ").
    let number_after = |key: &str| -> Option<f64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?.parse().ok()
    };
    Some((number_after("plaintext ")?, number_after("TLS ")?, number_after("median ")?))
}

#[test]
fn the_tls_medians_are_read_from_the_scripts_last_line() {
    let output = "bench-tls: round 1: plaintext 500 msg/s, TLS 400 msg/s, ratio 0.8\n\
                  bench-tls: medians: plaintext 349724 msg/s, TLS 342649 msg/s; TLS/plaintext per round: 0.685 1.034 1.234, median 1.034\n";
    assert_eq!(tls_medians(output), Some((349724.0, 342649.0, 1.034)));
    assert_eq!(tls_medians("bench-tls: the tls run failed"), None);
}
