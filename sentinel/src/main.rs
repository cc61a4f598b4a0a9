//! `goulette-sentinel`: the control plane over etcd.
//!
//! Membership, the hash ring, assignments and election arrive with the
//! cluster work (issue 3); today the binary parses its flags and refuses to
//! start rather than pretend to coordinate.

use clap::Parser;

/// Goulette sentinel: broker membership, partition assignment and cluster metadata in etcd.
#[derive(Debug, Parser)]
#[command(name = "goulette-sentinel", version)]
struct Args {
    /// Unique id of this sentinel.
    #[arg(long, env = "GOULETTE_SENTINEL_ID")]
    id: Option<String>,
    /// gRPC listen address.
    #[arg(long, env = "GOULETTE_SENTINEL_ADDRESS", default_value = "127.0.0.1:50052")]
    address: std::net::SocketAddr,
    /// Comma-separated etcd client endpoints.
    #[arg(long, env = "GOULETTE_ETCD_ENDPOINTS", value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Start and supervise an etcd child process.
    #[arg(long, env = "GOULETTE_EMBEDDED_ETCD")]
    embedded_etcd: bool,
    /// Client port of the embedded etcd.
    #[arg(long, env = "GOULETTE_ETCD_PORT", default_value_t = 2379)]
    etcd_port: u16,
    /// Peer port of the embedded etcd.
    #[arg(long, env = "GOULETTE_ETCD_PEER_PORT", default_value_t = 2380)]
    etcd_peer_port: u16,
    /// Data directory of the embedded etcd.
    #[arg(long, env = "GOULETTE_ETCD_DATA_DIR")]
    etcd_data_dir: Option<std::path::PathBuf>,
    /// Address of the HTTP endpoint (/health, /ready, /metrics).
    #[arg(long, env = "GOULETTE_SENTINEL_HTTP_ADDRESS")]
    http_address: Option<std::net::SocketAddr>,
    /// Log level filter.
    #[arg(long, env = "GOULETTE_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Also write logs to this file.
    #[arg(long, env = "GOULETTE_LOG_FILE")]
    log_file: Option<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    eprintln!(
        "goulette-sentinel: the control plane is not built yet (see issue 3); refusing to start on {}",
        args.address
    );
    std::process::ExitCode::from(2)
}
