//! The current TLS configuration of a listener, rebuilt when its files
//! change.
//!
//! Every handshake takes the configuration current at that moment, so a
//! renewed certificate (or client CA) is used by new connections within
//! one poll interval, while open connections keep the session they have.
//! A file that is bad — half-written by a copy, a key that does not match
//! its certificate — leaves the last good configuration in place: the
//! listener never goes down over a renewal. The failure is logged as an
//! ERROR and counted ([`ServerTls::reload_failures`], a metric), and the
//! files are tried again as soon as they change again.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::TlsError;
use crate::files::TlsFiles;

/// How often the files are checked by default: well within the 5 s a
/// renewal may take to be seen.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// A listener's TLS configuration, current and reloadable.
pub struct ServerTls {
    files: TlsFiles,
    /// ALPN protocols offered (`h2` for gRPC; none for Kafka).
    alpn: Vec<Vec<u8>>,
    current: RwLock<Arc<rustls::ServerConfig>>,
    reloads: AtomicU64,
    failures: AtomicU64,
    /// Called on each failed reload (a server's metric).
    on_failure: Option<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("files", &self.files).field("reloads", &self.reloads).finish()
    }
}

/// What identifies a version of the files: each one's size, modification
/// time and inode (a rename over the file changes the inode).
type Stamp = Vec<Option<(u64, Option<SystemTime>, u64)>>;

fn stamp(files: &TlsFiles) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    files.paths().iter().map(|p| std::fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok(), m.ino()))).collect()
}

impl ServerTls {
    /// Loads the files; a listener does not start on files that do not load.
    pub fn load(files: TlsFiles, alpn: Vec<Vec<u8>>) -> Result<ServerTls, TlsError> {
        let config = build(&files, &alpn)?;
        Ok(ServerTls {
            files,
            alpn,
            current: RwLock::new(Arc::new(config)),
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            on_failure: None,
        })
    }

    /// Calls `hook` on each failed reload (to count it in a metric).
    pub fn on_reload_failure(mut self, hook: impl Fn() + Send + Sync + 'static) -> ServerTls {
        self.on_failure = Some(Box::new(hook));
        self
    }

    /// An acceptor with the configuration current now (take one per
    /// connection).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Configurations loaded since the start (the first not counted).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Changed files that could not be loaded (the last good configuration stayed).
    pub fn reload_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The watched files.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Checks the files every `poll` until `token` is cancelled, rebuilding
    /// the configuration when they change.
    pub async fn watch(self: Arc<Self>, poll: Duration, token: CancellationToken) {
        let mut seen = stamp(&self.files);
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = token.cancelled() => return,
            }
            let now = stamp(&self.files);
            if now == seen {
                continue;
            }
            seen = now;
            self.reload();
        }
    }

    /// Rebuilds the configuration from the files now; false (and the old
    /// configuration kept) when they do not load.
    pub fn reload(&self) -> bool {
        match build(&self.files, &self.alpn) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %self.files.cert.display(), "TLS files changed: new connections use them");
                true
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if let Some(hook) = &self.on_failure {
                    hook();
                }
                tracing::error!(error = %e, "TLS files changed but cannot be loaded; the last good ones stay in use");
                false
            }
        }
    }
}

fn build(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = files.server_config()?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

/// The files of a listener from its flags: both of cert and key, or
/// neither (plaintext); a client CA only with them.
pub fn files_from_flags(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    flag_prefix: &str,
) -> Result<Option<TlsFiles>, String> {
    match (cert, key, client_ca) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), client_ca) => Ok(Some(TlsFiles { cert, key, client_ca, client_cert_optional: false })),
        (None, None, Some(_)) => {
            Err(format!("--{flag_prefix}-client-ca needs --{flag_prefix}-cert and --{flag_prefix}-key"))
        }
        _ => Err(format!("give both --{flag_prefix}-cert and --{flag_prefix}-key (or neither, for plaintext)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::TestCa;

    fn issue() -> (String, String) {
        let issued = TestCa::new("test CA").issue(&["localhost"]);
        (issued.cert, issued.key)
    }

    #[test]
    fn a_bad_file_keeps_the_last_good_configuration_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = issue();
        let files = TlsFiles {
            cert: dir.path().join("c.pem"),
            key: dir.path().join("k.pem"),
            client_ca: None,
            client_cert_optional: false,
        };
        std::fs::write(&files.cert, &cert).unwrap();
        std::fs::write(&files.key, &key).unwrap();
        let counted = Arc::new(AtomicU64::new(0));
        let hook = counted.clone();
        let tls = ServerTls::load(files.clone(), Vec::new()).unwrap().on_reload_failure(move || {
            hook.fetch_add(1, Ordering::Relaxed);
        });

        std::fs::write(&files.cert, &cert[..cert.len() / 2]).unwrap(); // half-written
        assert!(!tls.reload());
        assert_eq!((tls.reloads(), tls.reload_failures()), (0, 1));

        let (cert2, key2) = issue();
        std::fs::write(&files.cert, &cert2).unwrap();
        assert!(!tls.reload(), "the old key does not match the new certificate");
        std::fs::write(&files.key, &key2).unwrap();
        assert!(tls.reload());
        assert_eq!((tls.reloads(), tls.reload_failures(), counted.load(Ordering::Relaxed)), (1, 2, 2));
    }

    #[test]
    fn flags_need_both_files_or_none() {
        assert_eq!(files_from_flags(None, None, None, "x").unwrap(), None);
        assert!(files_from_flags(Some("c".into()), None, None, "x").is_err());
        assert!(files_from_flags(None, None, Some("ca".into()), "x").unwrap_err().contains("--x-client-ca"));
        assert!(files_from_flags(Some("c".into()), Some("k".into()), Some("ca".into()), "x").unwrap().is_some());
    }
}
