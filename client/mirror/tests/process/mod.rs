//! The `goulette-mirror` binary as a test runs it: started with a config
//! file, killed -9, or stopped with SIGTERM.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goulette_sentinel::testkit::signal;

pub struct Mirror {
    config: PathBuf,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Mirror {
    pub fn start(config: &Path, log: &Path) -> Mirror {
        Mirror::start_with_env(config, log, &[])
    }

    /// Like `start`, with environment variables (`GOULETTE_MIRROR_*`).
    pub fn start_with_env(config: &Path, log: &Path, env: &[(&str, &str)]) -> Mirror {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut m = Mirror { config: config.to_owned(), log: log.to_owned(), env, child: None };
        m.spawn();
        m
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_goulette-mirror"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Its exit status, if it exited (then it is reaped: nothing to stop).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// SIGTERM; the exit status once it stopped (bounded).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
        None
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.kill();
    }
}
