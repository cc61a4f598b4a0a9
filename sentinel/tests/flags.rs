//! The sentinel binary's settings: `config.example.toml` names every flag
//! and its values are accepted; a bad value in a config file is refused at
//! start, naming the key.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use goulette_sentinel::testkit::{example_settings, help_flags};

fn sentinel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_goulette-sentinel")).args(args).output().expect("run goulette-sentinel")
}

const EXAMPLE: &str = include_str!("../config.example.toml");

#[test]
fn given_the_example_config_every_flag_should_be_in_it_and_every_value_accepted() {
    let help = String::from_utf8_lossy(&sentinel(&["--help"]).stdout).to_string();
    let flags = help_flags(&help);
    assert!(flags.len() >= 15, "{help}");
    for flag in flags {
        assert!(EXAMPLE.contains(&format!("# {flag} = ")), "config.example.toml lacks `{flag}`");
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), example_settings(EXAMPLE)).unwrap();
    // Every value parses; the sentinel stops only at the flag's bad timeout.
    // Relative paths (`log-file`) from a directory of its own.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("logs")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_goulette-sentinel"))
        .args(["--config", file.path().to_str().unwrap(), "--session-timeout", "0s"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("config file") && stderr.contains("--session-timeout"), "{stderr}");
}

#[test]
fn given_a_bad_value_in_the_config_file_the_sentinel_should_refuse_to_start_and_name_the_key() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "lease_ttl = \"soon\"\n").unwrap();
    let out = sentinel(&["--config", file.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("key `lease_ttl`") && stderr.contains("soon"), "{stderr}");
}
