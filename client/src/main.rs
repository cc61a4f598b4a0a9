//! `goulette`: the command-line client.

use clap::{Parser, Subcommand};

/// Goulette command-line client.
#[derive(Debug, Parser)]
#[command(name = "goulette", version)]
struct Cli {
    /// Comma-separated sentinel addresses.
    #[arg(long, global = true, env = "GOULETTE_SENTINELS", default_value = "127.0.0.1:50052", value_delimiter = ',')]
    sentinels: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Offline tools over a broker's data directory.
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Open a partition directory (running recovery) and print its offsets and, optionally, records.
    Inspect {
        /// The partition directory (`<data>/<topic>-<partition>`).
        dir: std::path::PathBuf,
        /// Print records too.
        #[arg(long)]
        records: bool,
        /// First offset to print (default: the log start).
        #[arg(long)]
        from: Option<u64>,
        /// Most records to print.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Storage { command: StorageCommand::Inspect { dir, records, from, limit } } => {
            print!("{}", goulette_client::inspect::inspect(&dir, records, from, limit)?);
        }
    }
    Ok(())
}
