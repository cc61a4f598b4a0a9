//! `goulette`: the command-line client.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use goulette_client::etcd_admin::{EtcdAdmin, EtcdTarget};
use goulette_sentinel::keys::DEFAULT_PREFIX;

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
    /// Read and administer Goulette's metadata directly in etcd (no sentinel needed).
    Etcd(EtcdArgs),
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Open a partition directory (running recovery) and print its offsets and, optionally, records.
    Inspect {
        /// The partition directory (`<data>/<topic>-<partition>`).
        dir: PathBuf,
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

#[derive(Debug, Args)]
struct EtcdArgs {
    /// Comma-separated etcd client URLs.
    #[arg(
        long,
        global = true,
        env = "GOULETTE_ETCD_ENDPOINTS",
        default_value = "http://127.0.0.1:2379",
        value_delimiter = ','
    )]
    etcd_endpoints: Vec<String>,
    /// The etcd key prefix Goulette's metadata lives under.
    #[arg(long, global = true, env = "GOULETTE_ETCD_PREFIX", default_value = DEFAULT_PREFIX)]
    etcd_prefix: String,
    #[command(subcommand)]
    command: EtcdCommand,
}

#[derive(Debug, Subcommand)]
enum EtcdCommand {
    /// Each endpoint's status, the member list, and how many keys each section of the prefix holds.
    Status,
    /// Every topic with its configuration and, per partition, replicas, leader, leader epoch and ISR.
    Topics,
    /// The operation log, oldest first.
    Ops {
        /// Print only the last N operations.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
    /// Write every key under the prefix to FILE as JSON, except the lease-bound ones.
    ///
    /// Keys bound to leases (`brokers/`, `sentinels/`, `election/`) are left out: they describe live
    /// processes, which register again by themselves, and must not be restored.
    Backup {
        /// The backup file (replaced atomically if it exists).
        file: PathBuf,
    },
    /// Write a backup FILE into the prefix, which must be empty.
    ///
    /// The backup's prefix must equal --etcd-prefix. Keys are written in transactions of at most
    /// 100 puts, the op counter (`counters/ops`) last. If a restore is interrupted, the prefix is
    /// left partial and without an op counter, and restoring again is refused because the prefix is
    /// not empty: run `goulette etcd clean --yes`, then restore again.
    Restore {
        /// The backup file, as written by `goulette etcd backup`.
        file: PathBuf,
    },
    /// Delete every key under the prefix (only keys under `PREFIX/`, never a sibling such as `PREFIX2/`).
    ///
    /// Stop every sentinel and broker first: they would keep writing. Take a backup if the metadata
    /// may be needed again.
    Clean {
        /// Confirm the deletion (deliberately not settable from the environment).
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Storage { command: StorageCommand::Inspect { dir, records, from, limit } } => {
            goulette_client::inspect::inspect(&dir, records, from, limit).map(|report| print!("{report}"))
        }
        Command::Etcd(args) => etcd(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Every error's message already includes its cause.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn etcd(args: EtcdArgs) -> anyhow::Result<()> {
    let target = EtcdTarget::new(args.etcd_endpoints, &args.etcd_prefix)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let admin = EtcdAdmin::connect(&target).await?;
        match args.command {
            EtcdCommand::Status => print!("{}", admin.status().await?),
            EtcdCommand::Topics => print!("{}", admin.topics().await?),
            EtcdCommand::Ops { last } => print!("{}", admin.ops(last).await?),
            EtcdCommand::Backup { file } => {
                let report = admin.backup(&file).await?;
                println!(
                    "wrote {} keys of {} (revision {}) to {}; left out {} lease-bound keys",
                    report.keys,
                    target.keys().root(),
                    report.revision,
                    file.display(),
                    report.skipped
                );
            }
            EtcdCommand::Restore { file } => {
                let report = admin.restore(&file).await?;
                println!(
                    "restored {} keys into {} from {}; transactions: {}",
                    report.keys,
                    target.keys().root(),
                    file.display(),
                    report.transactions
                );
            }
            EtcdCommand::Clean { yes } => {
                let deleted = admin.clean(yes).await?;
                println!("deleted {deleted} keys under {}", target.keys().root());
            }
        }
        Ok(())
    })
}
