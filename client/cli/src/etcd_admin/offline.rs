//! `--etcd-data-dir`: the metadata of a stopped cluster, read and written
//! through a temporary etcd started on its data directory.
//!
//! The default layout (`make run-all`) keeps its metadata in the sentinel's
//! embedded etcd, which runs only while the sentinel does. To back it up,
//! wipe it or restore it with the cluster stopped — the disaster-recovery
//! path of `docs/operations.md` — the CLI starts `etcd` itself on that data
//! directory, with the member name the sentinel gives it, listening on
//! loopback only, runs the command against it and stops it. A data
//! directory that does not exist yet (etcd lost) is created as a new
//! one-member cluster, which the sentinel's embedded etcd then starts from.
//! etcd locks its own files, so a data directory in use by a running etcd
//! is refused by etcd itself; the error says so.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goulette_sentinel::store;

use super::error::{AdminError, Result};

/// How long the temporary etcd gets to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it gets to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where and as whom to start the temporary etcd.
#[derive(Debug, Clone)]
pub struct OfflineEtcd {
    /// The etcd data directory (the layout's, e.g. `data/etcd-sentinel-1`).
    pub data_dir: PathBuf,
    /// The member name (the sentinel id whose embedded etcd it is).
    pub name: String,
    /// The peer port to listen on (0: any free port). Give the one the
    /// sentinel uses, so that a new data directory records the same peer URL.
    pub peer_port: u16,
}

/// A running temporary etcd; dropping it stops it.
#[derive(Debug)]
pub struct TemporaryEtcd {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

impl TemporaryEtcd {
    /// Starts etcd on `cfg.data_dir` and waits until it answers.
    pub async fn start(cfg: &OfflineEtcd) -> Result<TemporaryEtcd> {
        let failed = |why: String| AdminError::OfflineEtcd { data_dir: cfg.data_dir.clone(), why };
        let binary = goulette_sentinel::embedded::find_etcd()
            .ok_or_else(|| failed(goulette_sentinel::embedded::missing_etcd_message()))?;
        let client_port = free_port().map_err(|e| failed(format!("no free port: {e}")))?;
        let peer_port = match cfg.peer_port {
            0 => free_port().map_err(|e| failed(format!("no free port: {e}")))?,
            port => port,
        };
        let endpoint = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = cfg.data_dir.with_extension("offline.log");
        if let Some(parent) = cfg.data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| failed(format!("create {}: {e}", parent.display())))?;
        }
        let stderr = std::fs::File::create(&log).map_err(|e| failed(format!("create {}: {e}", log.display())))?;
        let child = Command::new(binary)
            .args(["--name", &cfg.name, "--data-dir"])
            .arg(&cfg.data_dir)
            .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("{}={peer}", cfg.name), "--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "goulette", "--max-txn-ops", "4096"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| failed(format!("start etcd: {e}")))?;
        let mut etcd = TemporaryEtcd { child, endpoint, log };
        etcd.wait_until_answering(cfg).await?;
        Ok(etcd)
    }

    /// Its client URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn wait_until_answering(&mut self, cfg: &OfflineEtcd) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(AdminError::OfflineEtcd {
                    data_dir: cfg.data_dir.clone(),
                    why: format!(
                        "etcd exited ({status}) — is the cluster still running on it? stop it first (make stop-all). \
                         Its log ({}) ends:\n{}",
                        self.log.display(),
                        tail(&self.log)
                    ),
                });
            }
            if let Ok(mut client) = store::connect(std::slice::from_ref(&self.endpoint)).await
                && client.status().await.is_ok_and(|s| s.leader() != 0)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(AdminError::OfflineEtcd {
                    data_dir: cfg.data_dir.clone(),
                    why: format!(
                        "etcd did not answer within {START_TIMEOUT:?} (a member of a multi-member cluster cannot \
                         start alone); its log: {}",
                        self.log.display()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for TemporaryEtcd {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}
