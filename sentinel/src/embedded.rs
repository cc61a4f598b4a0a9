//! `--embedded-etcd`: an `etcd` child process started, supervised (restarted
//! if it dies) and stopped (SIGTERM, then SIGKILL after a grace period) by
//! the sentinel. Three sentinels given the same `--etcd-initial-cluster`
//! form one three-member etcd cluster, never three separate ones.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::config::EmbeddedEtcd;

/// How long etcd gets to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The `etcd` binary on `PATH`, if any.
pub fn find_etcd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("etcd")).find(|p| p.is_file())
}

/// The message for a machine without etcd.
pub fn missing_etcd_message() -> String {
    "no `etcd` binary found on PATH. Install one (Debian: `apt-get install etcd-server`, or `make deps`), \
     or run against an existing cluster with `--etcd-endpoints http://HOST:2379`."
        .into()
}

fn scheme(cfg: &EmbeddedEtcd) -> &'static str {
    if cfg.tls.is_some() { "https" } else { "http" }
}

/// The client endpoint of the embedded etcd.
pub fn endpoint(cfg: &EmbeddedEtcd) -> String {
    format!("{}://127.0.0.1:{}", scheme(cfg), cfg.client_port)
}

/// The TLS flags of etcd (clients and peers alike), if any.
fn tls_args(cfg: &EmbeddedEtcd) -> Vec<std::ffi::OsString> {
    let Some(tls) = &cfg.tls else { return Vec::new() };
    let mut args = Vec::new();
    for side in ["", "peer-"] {
        args.push(format!("--{side}cert-file").into());
        args.push(tls.cert.clone().into_os_string());
        args.push(format!("--{side}key-file").into());
        args.push(tls.key.clone().into_os_string());
        args.push(format!("--{side}trusted-ca-file").into());
        args.push(tls.client_ca.clone().into_os_string());
        args.push(format!("--{side}client-cert-auth").into());
    }
    args
}

fn spawn(binary: &PathBuf, cfg: &EmbeddedEtcd) -> std::io::Result<Child> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    let peer = format!("{}://127.0.0.1:{}", scheme(cfg), cfg.peer_port);
    let client = endpoint(cfg);
    let initial_cluster =
        if cfg.initial_cluster.is_empty() { format!("{}={peer}", cfg.name) } else { cfg.initial_cluster.clone() };
    let log = std::fs::OpenOptions::new().create(true).append(true).open(cfg.data_dir.with_extension("log"))?;
    Command::new(binary)
        .args(tls_args(cfg))
        .args(["--name", &cfg.name, "--data-dir"])
        .arg(&cfg.data_dir)
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &initial_cluster, "--initial-cluster-state", "new"])
        .args(["--initial-cluster-token", "goulette"])
        .args(["--max-txn-ops", &cfg.max_txn_ops.to_string()])
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
}

/// Starts etcd and keeps it running until `token` is cancelled, then stops it.
pub async fn supervise(binary: PathBuf, cfg: EmbeddedEtcd, token: CancellationToken) {
    let mut backoff = Duration::from_millis(500);
    while !token.is_cancelled() {
        let mut child = match spawn(&binary, &cfg) {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the embedded etcd");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = token.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        tracing::info!(pid = child.id(), endpoint = %endpoint(&cfg), data_dir = %cfg.data_dir.display(), "embedded etcd started");
        tokio::select! {
            status = child.wait() => {
                tracing::error!(?status, log = %cfg.data_dir.with_extension("log").display(), "embedded etcd exited; restarting it");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = token.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            _ = token.cancelled() => {
                stop(&mut child).await;
                return;
            }
        }
    }
}

async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        tracing::warn!("embedded etcd ignored SIGTERM; killing it");
        let _ = child.kill().await;
    }
    tracing::info!("embedded etcd stopped");
}
