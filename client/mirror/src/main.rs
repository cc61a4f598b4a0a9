//! `goulette-mirror --config FILE`: see `docs/mirror.md`.

use std::path::PathBuf;

use clap::Parser;

/// Moves records from other systems into Goulette (docs/mirror.md).
#[derive(Debug, Parser)]
#[command(name = "goulette-mirror", version)]
struct Args {
    /// The TOML file of targets and sources; GOULETTE_MIRROR_* variables override its keys.
    #[arg(long, env = "GOULETTE_MIRROR_CONFIG")]
    config: PathBuf,
    #[command(flatten)]
    log: goulette_proto::ops::logging::LogArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    goulette_proto::ops::logging::init(&args.log)?;
    let env = std::env::vars().filter(|(k, _)| k.starts_with("GOULETTE_MIRROR_")).collect();
    let config = match goulette_mirror::config::load(&args.config, &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        let shutdown = goulette_proto::ops::signals::shutdown_on_signal();
        goulette_mirror::service::run(config, shutdown).await
    })
}
