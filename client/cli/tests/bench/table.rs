//! The suite's table: running one `goulette bench`, a case against its
//! target, alternated pairs, and rows for figures that are not bench runs.

use std::path::Path;
use std::process::Command;

use crate::common::Env;

/// Runs `goulette bench ARGS --json FILE --quiet`; returns the JSON.
pub fn bench(env: &Env, args: &[&str], dir: &Path, name: &str) -> serde_json::Value {
    let json = dir.join(format!("{name}.json"));
    // Bounded: a run that hangs (it once did at close with acks=0) fails.
    let out = Command::new("timeout")
        .arg("300")
        .arg(env!("CARGO_BIN_EXE_goulette"))
        .arg("bench")
        .args(args)
        .args(["--quiet", "--json"])
        .arg(&json)
        .env("GOULETTE_SENTINELS", env.sentinel.address.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "bench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap()
}

/// The JSON an earlier [`bench`] call named `name` wrote in `dir`.
pub fn read_json(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap()
}

/// One line of the suite: what it runs, against which target.
pub struct Case {
    pub name: &'static str,
    pub target: &'static str,
    pub args: Vec<&'static str>,
    /// Whether the figure meets the target.
    pub met: fn(&serde_json::Value) -> bool,
}

pub fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

pub fn us(v: &serde_json::Value, key: &str) -> u64 {
    v["latency_us"][key].as_u64().unwrap_or(0)
}

/// Runs `cases` against `env`; returns the table rows.
pub fn run_cases(env: &Env, cases: Vec<Case>, dir: &Path, tag: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for (i, case) in cases.into_iter().enumerate() {
        let r = bench(env, &case.args, dir, &format!("{tag}-{i}"));
        let latency = if us(&r, "max") > 0 {
            format!("{} / {} / {} / {}", us(&r, "p50"), us(&r, "p99"), us(&r, "p999"), us(&r, "max"))
        } else {
            "–".into()
        };
        rows.push(format!(
            "| {} | `{}` | {:.0} | {:.1} | {latency} | {} | {} |",
            case.name,
            case.args.join(" "),
            f(&r, "messages_per_sec"),
            f(&r, "mb_per_sec"),
            case.target,
            if (case.met)(&r) { "yes" } else { "**no**" }
        ));
    }
    rows
}

/// Runs `a` then `b` (each `(arguments, name)`) `rounds` times over, and
/// returns the median messages per second of each: alternated, so that
/// the machine's drift touches both alike.
pub fn alternated(env: &Env, dir: &Path, rounds: usize, a: (&[&str], &str), b: (&[&str], &str)) -> (f64, f64) {
    let (mut a_rates, mut b_rates) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        a_rates.push(f(&bench(env, a.0, dir, &format!("{}-{round}", a.1)), "messages_per_sec"));
        b_rates.push(f(&bench(env, b.0, dir, &format!("{}-{round}", b.1)), "messages_per_sec"));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut a_rates), median(&mut b_rates))
}

/// A row for a figure that is not a `goulette bench` run.
pub fn row(name: &str, how: &str, figure: String, target: &str, met: bool) -> String {
    format!("| {name} | {how} | {figure} | | | {target} | {} |", if met { "yes" } else { "**no**" })
}

pub const MIB: f64 = (1 << 20) as f64;

pub fn case(
    name: &'static str,
    target: &'static str,
    args: &[&'static str],
    met: fn(&serde_json::Value) -> bool,
) -> Case {
    Case { name, target, args: args.to_vec(), met }
}
