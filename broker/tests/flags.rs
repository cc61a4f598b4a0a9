//! The broker binary rejects bad settings at start, naming the flag.

use std::process::Command;

fn broker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_goulette-broker")).args(args).output().expect("run goulette-broker")
}

#[test]
fn given_bad_flags_the_broker_should_refuse_to_start_and_name_them() {
    let out = broker(&["--id", "1", "--flush", "sometimes"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--flush") && stderr.contains("always, never or interval"), "{stderr}");

    let out = broker(&["--id", "1", "--fragment-bytes", "10"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fragment_bytes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = broker(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--sentinels"));
}
