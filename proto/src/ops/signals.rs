//! How both servers stop on a signal: the first SIGTERM or SIGINT starts a
//! graceful shutdown (the returned token is cancelled), a second one of
//! either exits the process at once with status 130, for an operator who
//! will not wait for the graceful stop (a broker's controlled shutdown, say).

use tokio_util::sync::CancellationToken;

/// The exit status after a second signal.
pub const EXIT_AT_ONCE: i32 = 130;

/// A token cancelled on the first SIGTERM or SIGINT; a second exits the
/// process with [`EXIT_AT_ONCE`]. Call it inside the Tokio runtime. When the
/// handlers cannot be installed the token is never cancelled (and the
/// signals keep their default action: they end the process).
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("shutting down (send the signal again to exit at once)");
        signals.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::process::exit(EXIT_AT_ONCE);
    });
    shutdown
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Lines};
    use std::process::{ChildStdout, Command, Stdio};
    use std::time::Duration;

    /// Set in the child process that installs the handlers.
    const CHILD: &str = "GOULETTE_SIGNALS_TEST_CHILD";
    /// Starts the child's lines (libtest writes its own on the same line).
    const MARK: &str = "signals-test:";

    /// The child's side of the test below (in a process of its own: the
    /// second signal ends it). Does nothing in an ordinary test run.
    #[test]
    fn signal_handling_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let shutdown = super::shutdown_on_signal();
            // Let the spawned task install its handlers first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            println!("{MARK} ready");
            // Bounded waits: a broken handler fails the test instead of hanging it.
            if tokio::time::timeout(Duration::from_secs(20), shutdown.cancelled()).await.is_ok() {
                println!("{MARK} cancelled");
            }
            tokio::time::sleep(Duration::from_secs(20)).await;
            println!("{MARK} still running");
        });
    }

    fn wait_for_line(lines: &mut Lines<BufReader<ChildStdout>>, wanted: &str) {
        for line in lines.by_ref() {
            if line.unwrap().ends_with(&format!("{MARK} {wanted}")) {
                return;
            }
        }
        panic!("the child never printed {wanted:?}");
    }

    fn kill(signal: &str, pid: u32) {
        let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn the_first_signal_stops_gracefully_and_a_second_exits_at_once() {
        for (first, second) in [("-TERM", "-TERM"), ("-TERM", "-INT"), ("-INT", "-TERM"), ("-INT", "-INT")] {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "ops::signals::tests::signal_handling_child", "--nocapture", "--test-threads=1"])
                .env(CHILD, "1")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            wait_for_line(&mut lines, "ready");
            kill(first, child.id());
            wait_for_line(&mut lines, "cancelled");
            kill(second, child.id());
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(super::EXIT_AT_ONCE), "{first} then {second}");
        }
    }
}
