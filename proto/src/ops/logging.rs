//! `tracing` set-up shared by the servers: a level filter, the console
//! (stderr) and/or a file that rotates by size or day, as text or JSON.

use std::path::PathBuf;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::rotate::{RotatingFile, Rotation};

/// How a server logs: the `--log-*` flags both servers share.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log filter (`info`, `debug`, `info,goulette_broker=debug`, …); RUST_LOG overrides.
    #[arg(long = "log-level", env = "GOULETTE_LOG_LEVEL", default_value = "info")]
    pub level: String,
    /// Also append logs to this file, rotated as --log-rotate says.
    #[arg(long = "log-file", env = "GOULETTE_LOG_FILE")]
    pub file: Option<PathBuf>,
    /// Log to stderr (`--log-console=false` with --log-file: to the file only).
    #[arg(long = "log-console", env = "GOULETTE_LOG_CONSOLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub console: bool,
    /// `text`, or `json` (one object per line, for log shippers).
    #[arg(long = "log-format", env = "GOULETTE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub format: LogFormat,
    /// When the log file rotates: `never`, `daily` (UTC) or `size:100MiB`.
    #[arg(long = "log-rotate", env = "GOULETTE_LOG_ROTATE", default_value = "size:100MiB")]
    pub rotate: Rotation,
    /// Rotated log files kept (`FILE.1` newest … `FILE.N`); older ones are deleted.
    #[arg(long = "log-keep", env = "GOULETTE_LOG_KEEP", default_value_t = 5)]
    pub keep: usize,
    /// Also write the audit log (failed logins, refused requests, security
    /// and metadata changes: the `goulette::audit` events, whatever
    /// --log-level says) to this file, one JSON object per line, rotated
    /// as --log-rotate says.
    #[arg(long = "audit-log", env = "GOULETTE_AUDIT_LOG", value_name = "FILE")]
    pub audit: Option<PathBuf>,
}

/// The tracing target of audit events.
pub const AUDIT_TARGET: &str = "goulette::audit";

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber.
pub fn init(settings: &LogArgs) -> std::io::Result<()> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    // One filter per layer: the audit file's events pass whatever the level.
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .or_else(|_| tracing_subscriber::EnvFilter::try_new(&settings.level))
            .map_err(|e| invalid(format!("--log-level {:?}: {e}", settings.level)))
    };
    if !settings.console && settings.file.is_none() {
        return Err(invalid("--log-console=false needs --log-file".into()));
    }
    let json = settings.format == LogFormat::Json;
    let mut layers: Vec<Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>> = Vec::new();
    if settings.console {
        let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        layers.push(if json {
            layer.json().with_filter(filter()?).boxed()
        } else {
            layer.with_filter(filter()?).boxed()
        });
    }
    if let Some(path) = &settings.file {
        let file = RotatingFile::open(path, settings.rotate, settings.keep)
            .map_err(|e| std::io::Error::new(e.kind(), format!("open log file {}: {e}", path.display())))?;
        let file = std::sync::Mutex::new(file);
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(file);
        layers.push(if json {
            layer.json().with_filter(filter()?).boxed()
        } else {
            layer.with_filter(filter()?).boxed()
        });
    }
    if let Some(path) = &settings.audit {
        let file = RotatingFile::open(path, settings.rotate, settings.keep)
            .map_err(|e| std::io::Error::new(e.kind(), format!("open audit log {}: {e}", path.display())))?;
        let audit = tracing_subscriber::filter::Targets::new().with_target(AUDIT_TARGET, tracing::Level::TRACE);
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(std::sync::Mutex::new(file)).json();
        layers.push(layer.with_filter(audit).boxed());
    }
    tracing_subscriber::registry().with(layers).init();
    Ok(())
}
