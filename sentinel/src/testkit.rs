//! Test harness: real processes on free loopback ports, each with its own
//! temporary directory, stopped by pid (never by name). Enabled by the
//! `testkit` feature; used by integration tests across the workspace.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind a free port")
}

/// Sends a signal to a process by pid.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed: {}", child.id(), std::io::Error::last_os_error());
}

/// Waits until `check` is true or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True when `GET /health` on `addr` answers 200.
pub fn http_ok(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

/// A single-member etcd cluster in its own directory.
#[derive(Debug)]
pub struct EtcdProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl EtcdProcess {
    /// Starts etcd and waits until it is healthy.
    pub fn start() -> EtcdProcess {
        let dir = tempfile::tempdir().expect("temp dir for etcd");
        let mut etcd = EtcdProcess { child: None, dir, client_port: free_port(), peer_port: free_port() };
        etcd.spawn();
        etcd
    }

    fn spawn(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log file");
        let child = Command::new("etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}"), "--initial-cluster-state", "new"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd (install it with `make deps`)");
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.client_port).into();
        wait_for("etcd to be healthy", Duration::from_secs(20), || http_ok(addr, "/health"));
    }

    /// The client endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The data directory's parent (logs live there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILLs etcd.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Restarts a killed etcd on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOPs etcd (it stops answering but keeps its sockets).
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGSTOP);
        }
    }

    /// SIGCONTs a paused etcd.
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGCONT);
        }
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused process must be continued to die promptly.
            signal(child, libc::SIGCONT);
        }
        self.kill();
    }
}

/// The directory holding the workspace's built binaries (next to the test
/// executable's `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("target profile dir").to_path_buf()
}
