//! Server settings from three layers, each overriding the one before: a
//! TOML file (`--config FILE`, or `GOULETTE_CONFIG`), `GOULETTE_*`
//! environment variables, and flags.
//!
//! The file's keys are the servers' long flag names (`http-address`, or
//! `http_address`), so one list documents all three layers (`--help`, and
//! `config.example.toml` beside each server). A file value is checked by the
//! flag's own parser before anything starts, and a bad value or an unknown
//! key is refused with the file and the key named. Values are TOML strings,
//! numbers, booleans, or arrays (for lists such as `sentinels`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The flag (and environment variable) naming the configuration file.
pub const CONFIG_FLAG: &str = "config";
pub const CONFIG_ENV: &str = "GOULETTE_CONFIG";

/// Parses the process's flags over its environment over its config file;
/// prints the problem and exits (status 2) like clap when something is wrong.
pub fn parse<T: clap::Parser>() -> T {
    match try_parse_from(std::env::args_os().collect(), |k| std::env::var(k).ok()) {
        Ok(t) => t,
        Err(Error::Clap(e)) => e.exit(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("config file {path}: unknown key `{key}` (keys are the long flag names, see --help)")]
    UnknownKey { path: PathBuf, key: String },
    #[error("config file {path}: key `{key}`: {reason}")]
    BadValue { path: PathBuf, key: String, reason: String },
    #[error(transparent)]
    Clap(#[from] clap::Error),
}

/// `parse` over a given command line and environment (for tests).
pub fn try_parse_from<T: clap::Parser>(argv: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> Result<T, Error> {
    // Later occurrences of a flag win: the file's come first.
    let cmd = T::command().args_override_self(true);
    let mut full: Vec<OsString> = argv.iter().take(1).cloned().collect();
    let path = config_path(&argv, &env);
    let given: Vec<String> = argv.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    // (long flag, key as written) of each setting taken from the file.
    let mut keys = Vec::new();
    if let Some(path) = &path {
        let (flags, taken) = file_flags(&cmd, path, &env, &given)?;
        full.extend(flags);
        keys = taken;
    }
    full.extend(argv.into_iter().skip(1));
    let matches = cmd.try_get_matches_from(full).map_err(|e| blame_file(e, path.as_deref(), &keys, &given))?;
    Ok(T::from_arg_matches(&matches)?)
}

/// A value clap refused names the file and its key when it came from the
/// file (the flag is not on the command line).
fn blame_file(e: clap::Error, path: Option<&Path>, keys: &[Taken], given: &[String]) -> Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let (Some(path), ErrorKind::InvalidValue | ErrorKind::ValueValidation) = (path, e.kind()) else {
        return Error::Clap(e);
    };
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else { return Error::Clap(e) };
    let long = arg.split_whitespace().next().unwrap_or_default().to_owned();
    if given.iter().any(|g| *g == long || g.starts_with(&format!("{long}="))) {
        return Error::Clap(e);
    }
    let Some((_, key)) = keys.iter().find(|(l, _)| format!("--{l}") == long) else { return Error::Clap(e) };
    let key = key.clone();
    Error::BadValue { path: path.to_owned(), key, reason: clap_reason(&e) }
}

/// The config file named by `--config FILE`, `--config=FILE` or `GOULETTE_CONFIG`.
fn config_path(argv: &[OsString], env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let flag = format!("--{CONFIG_FLAG}");
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        let a = a.to_string_lossy();
        if a == flag {
            return args.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            return Some(PathBuf::from(v));
        }
    }
    env(CONFIG_ENV).filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// A setting taken from the file: (long flag name, key as written).
type Taken = (String, String);

/// The file's settings as flags, leaving out those whose environment
/// variable is set (the environment overrides the file), with the (long
/// flag, key as written) of each.
fn file_flags(
    cmd: &clap::Command,
    path: &Path,
    env: &impl Fn(&str) -> Option<String>,
    given: &[String],
) -> Result<(Vec<OsString>, Vec<Taken>), Error> {
    let unreadable = |reason: String| Error::Unreadable { path: path.to_owned(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| unreadable(e.to_string()))?;
    let mut flags = Vec::new();
    let mut keys = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let bad = |reason: String| Error::BadValue { path: path.to_owned(), key: key.clone(), reason };
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != CONFIG_FLAG)
            .ok_or_else(|| Error::UnknownKey { path: path.to_owned(), key: key.clone() })?;
        // Set by a variable or a flag: the file's value is not used at all
        // (a list flag would otherwise add to the file's list).
        let flag = format!("--{long}");
        let on_command_line = given.iter().any(|g| *g == flag || g.starts_with(&format!("{flag}=")));
        if on_command_line || arg.get_env().and_then(|e| env(&e.to_string_lossy())).is_some() {
            continue;
        }
        let text = match &value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => value.to_string(),
            toml::Value::Array(items) => {
                let items: Result<Vec<String>, Error> = items
                    .iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s.clone()),
                        toml::Value::Integer(_) | toml::Value::Float(_) => Ok(v.to_string()),
                        _ => Err(bad("array items must be strings or numbers".into())),
                    })
                    .collect();
                items?.join(",")
            }
            _ => return Err(bad("expected a string, number, boolean or array".into())),
        };
        if !arg.get_action().takes_values() {
            // A switch (`embedded-etcd = true`).
            match value {
                toml::Value::Boolean(true) => flags.push(OsString::from(format!("--{long}"))),
                toml::Value::Boolean(false) => {}
                _ => return Err(bad("expected true or false".into())),
            }
            continue;
        }
        let flag = format!("{flag}={text}");
        flags.push(OsString::from(flag));
        keys.push((long, key));
    }
    Ok((flags, keys))
}

/// The reason in a clap error, without its `error:` prefix and usage lines.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[derive(Debug, clap::Parser, PartialEq)]
    struct Args {
        #[arg(long, env = "T_CONFIG_ID")]
        id: u32,
        #[arg(long, env = "T_CONFIG_ADDRESS", default_value = "127.0.0.1:1")]
        address: std::net::SocketAddr,
        #[arg(long, env = "T_CONFIG_PEERS", value_delimiter = ',')]
        peers: Vec<String>,
        #[arg(long, env = "T_CONFIG_EMBEDDED")]
        embedded: bool,
        #[arg(long, env = CONFIG_ENV)]
        config: Option<PathBuf>,
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Args, Error> {
        let argv = std::iter::once("prog").chain(args.iter().copied()).map(OsString::from).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        try_parse_from(argv, |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn given_three_layers_flags_and_env_should_beat_the_file() {
        let f = file("id = 1\naddress = \"127.0.0.1:7\"\npeers = [\"a:1\", \"b:2\"]\nembedded = true\n");
        let path = f.path().to_str().unwrap();
        let from_file = parse(&["--config", path], &[]).unwrap();
        assert_eq!(from_file.id, 1);
        assert_eq!(from_file.address.port(), 7);
        assert_eq!(from_file.peers, vec!["a:1", "b:2"]);
        assert!(from_file.embedded);

        // A variable that is set keeps the file's value out (clap then reads
        // the variable from the real environment, here unset: the default).
        // The broker's process tests check the real override end to end.
        let env = parse(&["--config", path], &[("T_CONFIG_ADDRESS", "127.0.0.1:8")]).unwrap();
        assert_eq!(env.address.port(), 1, "the file gives way to the environment");
        let flag = parse(&["--config", path, "--address", "127.0.0.1:9"], &[]);
        assert_eq!(flag.unwrap().address.port(), 9, "a flag overrides the file");
        let list = parse(&["--config", path, "--peers", "c:3"], &[]).unwrap();
        assert_eq!(list.peers, vec!["c:3"], "a list flag replaces the file's list");
        let via_env = parse(&[], &[(CONFIG_ENV, path)]).unwrap();
        assert_eq!(via_env.id, 1, "GOULETTE_CONFIG names the file too");
        assert_eq!(parse(&["--id", "3"], &[]).unwrap().address.port(), 1, "no file: defaults");
    }

    #[test]
    fn given_a_bad_or_unknown_key_the_error_should_name_it_and_the_file() {
        let f = file("id = 1\naddress = \"nowhere\"\n");
        let err = parse(&["--config", f.path().to_str().unwrap()], &[]).unwrap_err().to_string();
        assert!(err.contains("key `address`") && err.contains("nowhere"), "{err}");
        assert!(err.contains(&f.path().display().to_string()), "{err}");

        let f = file("id = 1\nadress = \"127.0.0.1:2\"\n");
        let err = parse(&["--config", f.path().to_str().unwrap()], &[]).unwrap_err().to_string();
        assert!(err.contains("unknown key `adress`"), "{err}");

        let f = file("id = 1\nembedded = \"yes\"\n");
        let err = parse(&["--config", f.path().to_str().unwrap()], &[]).unwrap_err().to_string();
        assert!(err.contains("key `embedded`") && err.contains("true or false"), "{err}");

        let err = parse(&["--config", "/nonexistent/goulette.toml"], &[]).unwrap_err().to_string();
        assert!(err.contains("cannot read config file /nonexistent/goulette.toml"), "{err}");
    }
}
