//! A real RabbitMQ node for a test (the Debian `rabbitmq-server`
//! package): its own epmd and node on free loopback ports, its files in a
//! temporary directory, stopped by process group when dropped.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goulette_sentinel::testkit::free_port;

pub struct RabbitProcess {
    pub port: u16,
    epmd: Child,
    server: Child,
    dir: tempfile::TempDir,
}

fn stop_group(child: &mut Child) {
    let group = child.id() as i32;
    // SAFETY: kill(2) on a process group this test created.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above; what is left of the group.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
}

impl RabbitProcess {
    /// Starts a node and waits until it accepts AMQP connections.
    pub fn start() -> RabbitProcess {
        RabbitProcess::start_on(free_port())
    }

    /// Starts a node whose AMQP listener is on `port`.
    pub fn start_on(port: u16) -> RabbitProcess {
        RabbitProcess::start_configured(port, port, None)
    }

    /// Starts a node whose AMQPS listener (TLS, `amqps://`) is on the
    /// returned node's `port`, with these PEM files (`ca` checks client
    /// certificates, which it then requires).
    pub fn start_tls(ca: &Path, cert: &Path, key: &Path) -> RabbitProcess {
        let tls_port = free_port();
        let conf = format!(
            "listeners.ssl.default = {tls_port}\n\
             ssl_options.cacertfile = {}\n\
             ssl_options.certfile = {}\n\
             ssl_options.keyfile = {}\n\
             ssl_options.verify = verify_peer\n\
             ssl_options.fail_if_no_peer_cert = true\n",
            ca.display(),
            cert.display(),
            key.display()
        );
        RabbitProcess::start_configured(free_port(), tls_port, Some(conf))
    }

    /// A node with its plain AMQP listener on `amqp_port`, ready once
    /// `port` accepts connections, with `conf` (rabbitmq.conf format).
    fn start_configured(amqp_port: u16, port: u16, conf: Option<String>) -> RabbitProcess {
        let server = Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        assert!(server.exists(), "rabbitmq-server is missing: run `make deps` (Debian package rabbitmq-server)");
        let dir = tempfile::tempdir().unwrap();
        let (epmd_port, dist_port) = (free_port(), free_port());
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("enabled_plugins"), "[].").unwrap();
        // A directory of .conf files; none there: the defaults.
        std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
        if let Some(conf) = conf {
            std::fs::write(dir.path().join("conf.d").join("10-test.conf"), conf).unwrap();
        }
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(log("epmd.log"))
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let server = Command::new(server)
            .env("HOME", path("home"))
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", amqp_port.to_string())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_NODENAME", format!("goulette-test-{port}@localhost"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", path("rabbit.pid"))
            .env("RABBITMQ_CONFIG_FILES", path("conf.d"))
            .process_group(0)
            .stdout(log("server.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = RabbitProcess { port, epmd, server, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "RabbitMQ did not start: {}", node.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        node
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for RabbitProcess {
    fn drop(&mut self) {
        stop_group(&mut self.server);
        stop_group(&mut self.epmd);
    }
}
