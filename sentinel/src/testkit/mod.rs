//! Test harness: real processes on free loopback ports, each with its own
//! temporary directory, stopped by pid (never by name). Enabled by the
//! `testkit` feature; used by integration tests across the workspace.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod ports;
pub use ports::free_port;
use ports::on_free_ports;

/// Sends a signal to a process by pid.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed: {}", child.id(), std::io::Error::last_os_error());
}

/// The state letter of a process (`R`, `S`, `T` for stopped, …) from
/// `/proc/{pid}/stat`; `None` once it is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
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

/// `GET path` on `addr`: the status code and the body (`None` when nothing answered).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_owned());
    Some((status, body))
}

/// The long flags a server's `--help` lists (option lines start with the
/// flag: `  -V, --version`, `      --id <ID>`), but `help`, `version` and `config`.
pub fn help_flags(help: &str) -> Vec<String> {
    help.lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("--")))
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned())
        .filter(|f| !["help", "version", "config"].contains(&f.as_str()))
        .collect()
}

/// A `config.example.toml` with every commented-out setting (`# key = value`) set.
pub fn example_settings(example: &str) -> String {
    example
        .lines()
        .filter_map(|l| l.strip_prefix("# ").filter(|kv| kv.contains(" = ")))
        .map(|kv| format!("{kv}\n"))
        .collect()
}

/// A child process the harness owns: started from a fixed command line,
/// logging to a file in its own temporary directory, killed by pid.
#[derive(Debug)]
pub struct Managed {
    child: Option<Child>,
    dir: tempfile::TempDir,
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Polled after each start until true.
    ready: fn(SocketAddr) -> bool,
    /// The address `ready` checks.
    pub address: SocketAddr,
    /// Every port it must listen on itself before it counts as ready.
    ports: Vec<u16>,
}

/// When a started process counts as ready: `check` answers on `address`,
/// and the process itself listens on every one of `ports`.
struct Readiness {
    address: SocketAddr,
    check: fn(SocketAddr) -> bool,
    ports: Vec<u16>,
}

/// The TCP ports process `pid` listens on, from `/proc`: its socket inodes
/// matched against the listening sockets of `/proc/net/tcp{,6}`.
fn listening_ports(pid: u32) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    let inodes: std::collections::HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
                continue;
            };
            let port = local.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if *state == "0A" && inodes.contains(*inode) {
                ports.extend(port);
            }
        }
    }
    ports
}

/// A process that exited before it was ready.
#[derive(Debug)]
pub struct EarlyExit {
    name: &'static str,
    status: std::process::ExitStatus,
    /// All it wrote in this run: its error comes first, and a backtrace
    /// (`RUST_BACKTRACE` is set in CI) may follow it for many lines.
    log: String,
}

impl std::fmt::Display for EarlyExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<&str> = self.log.lines().collect();
        let shown = if lines.len() <= 45 {
            lines.join("\n")
        } else {
            format!("{}\n…\n{}", lines[..5].join("\n"), lines[lines.len() - 40..].join("\n"))
        };
        write!(f, "{} exited before it was ready ({}); its log:\n{shown}", self.name, self.status)
    }
}

impl EarlyExit {
    fn port_taken(&self) -> bool {
        self.log.to_ascii_lowercase().contains("address already in use")
            || self.log.to_ascii_lowercase().contains("address in use")
    }
}

fn listening(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

fn etcd_healthy(address: SocketAddr) -> bool {
    http_ok(address, "/health")
}

impl Managed {
    fn start(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        envs: Vec<(String, String)>,
        readiness: Readiness,
        dir: tempfile::TempDir,
    ) -> Result<Managed, EarlyExit> {
        let Readiness { address, check: ready, ports } = readiness;
        let mut m = Managed { child: None, dir, name, program, args, envs, ready, address, ports };
        m.try_spawn()?;
        Ok(m)
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    /// Starts the process and waits until it is ready, or until it exits
    /// (then its log says why: no point waiting out the timeout).
    fn try_spawn(&mut self) -> Result<(), EarlyExit> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{}.log", self.name)))
            .expect("log file");
        // Where this run's output starts (a restart appends to the log).
        let from = log.metadata().map_or(0, |m| m.len() as usize);
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} ({}): {e}; build every binary first (`cargo build --workspace --bins`, as `make test` does)",
                    self.name,
                    self.program.display()
                )
            });
        self.child = Some(child);
        let (address, ready) = (self.address, self.ready);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                let log = self.log().get(from..).unwrap_or_default().to_owned();
                return Err(EarlyExit { name: self.name, status, log });
            }
            // A port released by `free_port` may since have been taken by
            // another process: its listener would answer `ready` while ours
            // fails to bind. Ready means it is our process that listens.
            if ready(address) && self.owns_its_ports() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "timed out after 20s waiting for {} to be ready; its log ends:\n{}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn owns_its_ports(&self) -> bool {
        let Some(child) = &self.child else { return false };
        let listening = listening_ports(child.id());
        self.ports.iter().all(|p| listening.contains(p))
    }

    /// The last lines of its log.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A field of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`: the
    /// resident set now and at its peak); `None` when it is not running.
    pub fn memory(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
        let kib: u64 = line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    }

    /// CPU time it used so far (user + system, from `/proc/<pid>/stat`);
    /// `None` when it is not running.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the command name (which may hold spaces) in parentheses.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // USER_HZ is 100 on Linux.
        Some(Duration::from_millis(ticks * 10))
    }

    /// Its working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.name))).unwrap_or_default()
    }

    /// SIGKILLs the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGCONT);
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGTERMs the process and waits for it to exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child, libc::SIGTERM);
        child.wait().ok()
    }

    /// Sends SIGTERM (a graceful stop) without waiting; see [`Managed::wait`].
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGTERM);
        }
    }

    /// Waits for the process to exit (after [`Managed::terminate`]).
    pub fn wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.take()?.wait().ok()
    }

    /// Restarts it with the same command line, directory and address.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOPs it (it stops answering but keeps its sockets).
    pub fn pause(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGSTOP);
            // kill(2) returns before the process has stopped: a request sent
            // right after could still be answered.
            wait_for("the process to stop", Duration::from_secs(5), || process_state(child.id()) == Some('T'));
        }
    }

    /// SIGCONTs a paused process.
    pub fn resume(&self) {
        if let Some(child) = &self.child {
            signal(child, libc::SIGCONT);
        }
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.kill();
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir for a test process")
}

/// The directory holding the workspace's built binaries (next to the test
/// executable's `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    deps.parent().expect("target profile dir").to_path_buf()
}

/// A single-member etcd cluster.
#[derive(Debug)]
pub struct EtcdProcess(Managed);

impl EtcdProcess {
    /// Starts etcd on free ports and waits until it is healthy.
    pub fn start() -> EtcdProcess {
        EtcdProcess::launch("http", Vec::new(), etcd_healthy)
    }

    /// Starts etcd serving clients over TLS only, with `cert` and `key`,
    /// requiring client certificates signed by `ca` (etcd's
    /// `--client-cert-auth`). Its endpoint is `https://…`.
    pub fn start_tls(ca: &Path, cert: &Path, key: &Path) -> EtcdProcess {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let tls =
            ["--cert-file".into(), path(cert), "--key-file".into(), path(key), "--trusted-ca-file".into(), path(ca)];
        let mut tls = tls.to_vec();
        tls.push("--client-cert-auth".into());
        // Its /health needs a client certificate: ready once it listens.
        EtcdProcess::launch("https", tls, listening)
    }

    fn launch(scheme: &str, extra: Vec<String>, ready: fn(SocketAddr) -> bool) -> EtcdProcess {
        on_free_ports(|| EtcdProcess::try_launch(scheme, extra.clone(), ready))
    }

    fn try_launch(scheme: &str, extra: Vec<String>, ready: fn(SocketAddr) -> bool) -> Result<EtcdProcess, EarlyExit> {
        let (client_port, peer_port) = (free_port(), free_port());
        let client = format!("{scheme}://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut args = [
            "--name",
            "test",
            "--data-dir",
            "data",
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("test={peer}"),
            "--initial-cluster-state",
            "new",
            // As the embedded etcd: room for large topics (a sentinel given
            // `--max-txn-ops 4096` may then create 1,000 partitions at once).
            "--max-txn-ops",
            "4096",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra);
        let address = ([127, 0, 0, 1], client_port).into();
        let readiness = Readiness { address, check: ready, ports: vec![client_port, peer_port] };
        Managed::start("etcd", PathBuf::from("etcd"), args, Vec::new(), readiness, temp_dir()).map(EtcdProcess)
    }

    /// The client endpoint, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let tls = self.0.args.iter().any(|a| a == "--cert-file");
        format!("{}://{}", if tls { "https" } else { "http" }, self.0.address)
    }

    /// SIGKILLs etcd, deletes its data directory and starts it again on the
    /// same ports: every key is gone (a lost or replaced etcd volume).
    pub fn restart_empty(&mut self) {
        self.0.kill();
        let data = self.0.dir().join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data).expect("remove etcd's data directory");
        }
        self.0.spawn();
    }
}

/// A `goulette-sentinel` process.
#[derive(Debug)]
pub struct SentinelProcess {
    pub id: String,
    /// Its `/health`, `/ready` and `/metrics` address.
    pub http_address: SocketAddr,
    process: Managed,
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

    /// Starts a sentinel with exactly these arguments besides id and address.
    pub fn start_with(id: &str, extra: Vec<String>) -> SentinelProcess {
        on_free_ports(|| SentinelProcess::try_start(id, extra.clone()))
    }

    fn try_start(id: &str, extra: Vec<String>) -> Result<SentinelProcess, EarlyExit> {
        let address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let http_address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut args = vec!["--id".to_owned(), id.to_owned(), "--address".to_owned(), address.to_string()];
        args.extend(["--http-address".to_owned(), http_address.to_string()]);
        args.extend(extra);
        let envs = vec![("RUST_LOG".to_owned(), "info,goulette_sentinel=debug".to_owned())];
        let process = Managed::start(
            "sentinel",
            bin_dir().join("goulette-sentinel"),
            args,
            envs,
            Readiness { address, check: listening, ports: vec![address.port(), http_address.port()] },
            temp_dir(),
        )?;
        Ok(SentinelProcess { id: id.to_owned(), http_address, process })
    }

    /// The gRPC endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.process.address)
    }
}

/// A `goulette-broker` process with its own data directory.
#[derive(Debug)]
pub struct BrokerProcess {
    pub id: u32,
    /// Its `/health`, `/ready` and `/metrics` address.
    pub http_address: SocketAddr,
    /// Where it serves the Kafka protocol.
    pub kafka_address: SocketAddr,
    process: Managed,
}

impl BrokerProcess {
    /// Starts broker `id` on a free port, registering with `sentinels`
    /// (`host:port,…`).
    pub fn start(id: u32, sentinels: &str, extra: &[&str]) -> BrokerProcess {
        BrokerProcess::start_with_env(id, sentinels, extra, &[])
    }

    /// Like `start`, with extra environment variables (failpoints).
    pub fn start_with_env(id: u32, sentinels: &str, extra: &[&str], env: &[(&str, &str)]) -> BrokerProcess {
        BrokerProcess::launch(id, sentinels, extra, env, None)
    }

    /// Like `start`, with at most `fds` open file descriptors (run under
    /// util-linux's `prlimit`, which keeps the pid).
    pub fn start_with_fd_limit(id: u32, sentinels: &str, extra: &[&str], fds: u64) -> BrokerProcess {
        BrokerProcess::launch(id, sentinels, extra, &[], Some(fds))
    }

    fn launch(id: u32, sentinels: &str, extra: &[&str], env: &[(&str, &str)], fds: Option<u64>) -> BrokerProcess {
        on_free_ports(|| BrokerProcess::try_launch(id, sentinels, extra, env, fds))
    }

    fn try_launch(
        id: u32,
        sentinels: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        fds: Option<u64>,
    ) -> Result<BrokerProcess, EarlyExit> {
        let address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let http_address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let kafka_address: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut args: Vec<String> = [
            "--id",
            &id.to_string(),
            "--address",
            &address.to_string(),
            "--http-address",
            &http_address.to_string(),
            "--kafka-address",
            &kafka_address.to_string(),
            "--data",
            "data",
            "--sentinels",
            sentinels,
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut envs = vec![("RUST_LOG".to_owned(), "info,goulette_broker=debug".to_owned())];
        envs.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let broker = bin_dir().join("goulette-broker");
        let (program, args) = match fds {
            None => (broker, args),
            Some(n) => {
                let mut limited = vec![format!("--nofile={n}:{n}"), broker.to_string_lossy().into_owned()];
                limited.extend(args);
                (PathBuf::from("prlimit"), limited)
            }
        };
        let ports = vec![address.port(), http_address.port(), kafka_address.port()];
        let readiness = Readiness { address, check: listening, ports };
        let process = Managed::start("broker", program, args, envs, readiness, temp_dir())?;
        Ok(BrokerProcess { id, http_address, kafka_address, process })
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.process.dir().join("data")
    }
}

macro_rules! deref_to_managed {
    ($($t:ty => $field:tt),*) => {$(
        impl std::ops::Deref for $t {
            type Target = Managed;
            fn deref(&self) -> &Managed {
                &self.$field
            }
        }
        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut Managed {
                &mut self.$field
            }
        }
    )*};
}

deref_to_managed!(EtcdProcess => 0, SentinelProcess => process, BrokerProcess => process);

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use std::net::TcpListener;

    use super::*;

    fn exit(log: &str) -> EarlyExit {
        EarlyExit { name: "broker", status: std::process::ExitStatus::from_raw(256), log: log.into() }
    }

    #[test]
    fn given_a_taken_port_a_launch_should_be_tried_again_and_any_other_exit_should_fail_at_once() {
        let mut tries = 0;
        let started = on_free_ports(|| {
            tries += 1;
            match tries {
                1 => Err(exit("Error: listen on 127.0.0.1:1 (--http-address): Address already in use (os error 98)")),
                _ => Ok(tries),
            }
        });
        assert_eq!(started, 2);

        let failed = std::panic::catch_unwind(|| on_free_ports(|| Err::<(), _>(exit("Error: bad flag"))));
        let message = *failed.expect_err("an exit for another reason fails").downcast::<String>().unwrap();
        assert!(message.contains("Error: bad flag"), "{message}");
    }

    #[test]
    fn given_a_listener_its_port_should_be_seen_as_this_processs_and_a_released_one_not() {
        let ours = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = ours.local_addr().unwrap().port();
        assert!(listening_ports(std::process::id()).contains(&port));
        drop(ours);
        assert!(!listening_ports(std::process::id()).contains(&port));
    }

    /// The CI failure this guards against: a sentinel's port was taken by
    /// another process, whose listener made the sentinel look ready while it
    /// had exited with "Address already in use".
    #[test]
    fn given_its_port_answered_by_another_process_a_child_should_not_count_as_ready() {
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = other.local_addr().unwrap();
        let readiness = Readiness { address, check: listening, ports: vec![address.port()] };
        let started = Managed::start("sleep", "sleep".into(), vec!["0.5".into()], Vec::new(), readiness, temp_dir());
        let exit = started.expect_err("a child that never listened is not ready");
        assert!(exit.status.success(), "{exit}");
    }

    /// The CI failure this guards against: a broker's port was taken, and
    /// its "Address already in use" was followed by a backtrace longer than
    /// the log tail the harness looked at, so it failed the test instead of
    /// starting it again on other ports.
    #[test]
    fn given_a_long_backtrace_after_the_error_a_taken_port_should_still_be_recognized() {
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = other.local_addr().unwrap();
        let readiness = Readiness { address, check: listening, ports: vec![address.port()] };
        let script = "echo 'Error: listen on 127.0.0.1:1: Address already in use (os error 98)' >&2; \
                      i=0; while [ $i -lt 80 ]; do echo \"  $i: frame\" >&2; i=$((i+1)); done; exit 1";
        let args = vec!["-c".to_owned(), script.to_owned()];
        let started = Managed::start("broker", "sh".into(), args, Vec::new(), readiness, temp_dir());
        let exit = started.expect_err("it exited");
        assert!(exit.port_taken(), "{exit}");
        let shown = exit.to_string();
        assert!(shown.contains("Address already in use") && shown.contains("79: frame"), "{shown}");
    }
}
