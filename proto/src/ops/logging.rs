//! `tracing` set-up shared by the servers.

use std::path::Path;

/// Logs at `level` (an `EnvFilter` directive; `RUST_LOG` overrides it) to
/// stderr, or appended to `file`.
pub fn init(level: &str, file: Option<&Path>) -> std::io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("--log-level {level:?}: {e}")))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
