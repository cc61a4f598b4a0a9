//! The broker binary rejects bad settings at start, naming the flag or the
//! config-file key; `config.example.toml` names every flag.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use goulette_sentinel::testkit::{example_settings, help_flags};

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

#[test]
fn given_the_example_config_every_flag_should_be_in_it_and_every_value_accepted() {
    let help = String::from_utf8_lossy(&broker(&["--help"]).stdout).to_string();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml")).unwrap();
    let flags = help_flags(&help);
    assert!(flags.len() >= 10, "{help}");
    for flag in flags {
        assert!(example.contains(&format!("# {flag} = ")), "config.example.toml lacks `{flag}`");
    }
    // With all of them set, the broker gets past its settings: it stops only
    // at the data directory the flag points into /proc.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), example_settings(&example)).unwrap();
    // Relative paths (`log-file`) from a directory of its own.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("logs")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_goulette-broker"))
        .args(["--config", file.path().to_str().unwrap(), "--data", "/proc/goulette/data"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("config file") && stderr.contains("/proc/goulette"), "{stderr}");
}

#[test]
fn given_a_bad_value_in_the_config_file_the_broker_should_refuse_to_start_and_name_the_key() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "id = 1\nflush = \"sometimes\"\n").unwrap();
    let out = broker(&["--config", file.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("key `flush`") && stderr.contains("always, never or interval"), "{stderr}");

    std::fs::write(file.path(), "id = 1\nfragment_bytes = 10\n").unwrap();
    let out = broker(&["--config", file.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("fragment_bytes"));

    // The environment overrides the file: the same bad value is not read.
    std::fs::write(file.path(), "id = 1\nflush = \"sometimes\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_goulette-broker"))
        .args(["--config", file.path().to_str().unwrap(), "--data", "/proc/goulette/data"])
        .env("GOULETTE_FLUSH", "never")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("flush") && stderr.contains("/proc/goulette"), "{stderr}");
}
