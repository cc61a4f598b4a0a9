//! `goulette-broker`: stores partitions and serves produce and fetch.
//!
//! The gRPC data plane arrives with the cluster work (issue 3); today the
//! binary parses and validates its flags and refuses to start rather than
//! pretend to serve.

use clap::Parser;

/// Goulette broker: stores topic partitions and serves producers and consumers.
#[derive(Debug, Parser)]
#[command(name = "goulette-broker", version)]
struct Args {
    /// Unique id of this broker in the cluster.
    #[arg(long, env = "GOULETTE_BROKER_ID")]
    id: Option<u32>,
    /// gRPC listen address.
    #[arg(long, env = "GOULETTE_BROKER_ADDRESS", default_value = "127.0.0.1:50051")]
    address: std::net::SocketAddr,
    /// Data directory holding one sub-directory per partition.
    #[arg(long, env = "GOULETTE_BROKER_DATA", default_value = "data/broker")]
    data: std::path::PathBuf,
    /// Comma-separated sentinel addresses.
    #[arg(long, env = "GOULETTE_SENTINELS", default_value = "127.0.0.1:50052", value_delimiter = ',')]
    sentinels: Vec<String>,
    /// Address of the HTTP endpoint (/health, /ready, /metrics).
    #[arg(long, env = "GOULETTE_BROKER_HTTP_ADDRESS")]
    http_address: Option<std::net::SocketAddr>,
    /// Log level filter (`info`, `debug`, `goulette_storage=debug`, …).
    #[arg(long, env = "GOULETTE_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Also write logs to this file.
    #[arg(long, env = "GOULETTE_LOG_FILE")]
    log_file: Option<std::path::PathBuf>,
    /// TOML configuration file.
    #[arg(long, env = "GOULETTE_BROKER_CONFIG")]
    config: Option<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    eprintln!(
        "goulette-broker: the network server is not built yet (see issue 3); \
         refusing to start on {} with data in {}",
        args.address,
        args.data.display()
    );
    std::process::ExitCode::from(2)
}
