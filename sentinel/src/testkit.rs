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

/// A `goulette-sentinel` process.
#[derive(Debug)]
pub struct SentinelProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub id: String,
    pub address: SocketAddr,
    args: Vec<String>,
}

impl SentinelProcess {
    /// Starts a sentinel on a free port against `etcd_endpoint`, with short
    /// session and lease timeouts so that tests see failover quickly.
    pub fn start(id: &str, etcd_endpoint: &str, extra: &[&str]) -> SentinelProcess {
        let mut args: Vec<String> = vec!["--etcd-endpoints".into(), etcd_endpoint.into()];
        args.extend(
            ["--session-timeout", "2s", "--heartbeat-interval", "300ms", "--lease-ttl", "2s"].map(String::from),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        SentinelProcess::start_with(id, args)
    }

    /// Starts a sentinel with exactly these extra arguments (besides id and address).
    pub fn start_with(id: &str, args: Vec<String>) -> SentinelProcess {
        let dir = tempfile::tempdir().expect("temp dir for a sentinel");
        let address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut s = SentinelProcess { child: None, dir, id: id.to_owned(), address, args };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sentinel.log"))
            .expect("sentinel log file");
        let child = Command::new(bin_dir().join("goulette-sentinel"))
            .args(["--id", &self.id, "--address", &self.address.to_string()])
            .args(&self.args)
            .env("RUST_LOG", "info,goulette_sentinel=debug")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start goulette-sentinel (is the workspace built?)");
        self.child = Some(child);
        let address = self.address;
        wait_for("the sentinel to listen", Duration::from_secs(20), || {
            TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
        });
    }

    /// The gRPC endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Its working directory (logs, embedded etcd data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }

    /// SIGKILLs the sentinel.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGTERMs the sentinel and waits for it to exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child, libc::SIGTERM);
        child.wait().ok()
    }

    /// Restarts it on the same address with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `goulette-broker` process with its own data directory.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub id: u32,
    pub address: SocketAddr,
    sentinels: String,
    extra: Vec<String>,
}

impl BrokerProcess {
    /// Starts broker `id` on a free port, registering with `sentinels`
    /// (`host:port,…`).
    pub fn start(id: u32, sentinels: &str, extra: &[&str]) -> BrokerProcess {
        let dir = tempfile::tempdir().expect("temp dir for a broker");
        let address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut b = BrokerProcess {
            child: None,
            dir,
            id,
            address,
            sentinels: sentinels.to_owned(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .expect("broker log file");
        let child = Command::new(bin_dir().join("goulette-broker"))
            .args(["--id", &self.id.to_string(), "--address", &self.address.to_string()])
            .arg("--data")
            .arg(self.dir.path().join("data"))
            .args(["--sentinels", &self.sentinels])
            .args(&self.extra)
            .env("RUST_LOG", "info,goulette_broker=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start goulette-broker (is the workspace built?)");
        self.child = Some(child);
        let address = self.address;
        wait_for("the broker to listen", Duration::from_secs(20), || {
            TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
        });
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SIGKILLs the broker.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGTERMs the broker and waits for it.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child, libc::SIGTERM);
        child.wait().ok()
    }

    /// Restarts it on the same address and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&self) {
        if let Some(c) = &self.child {
            signal(c, libc::SIGSTOP);
        }
    }

    /// Resumes a paused broker.
    pub fn resume(&self) {
        if let Some(c) = &self.child {
            signal(c, libc::SIGCONT);
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            signal(c, libc::SIGCONT);
        }
        self.kill();
    }
}
