//! Free ports for the processes tests start.

use std::net::TcpListener;

use super::EarlyExit;

/// A free TCP port on 127.0.0.1 (bound, read, released), never one this
/// process was handed before: the kernel may give the same port to two
/// binds in a row once the first is released, and a process started with
/// it for two of its listeners refuses to start (`--kafka-address must
/// differ from --address`), which no retry on a taken port catches.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Option<std::collections::HashSet<u16>>> = std::sync::Mutex::new(None);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let handed_out = handed_out.get_or_insert_with(Default::default);
    let mut port = 0;
    // Bounded: a process that used most of the ephemeral range gets repeats.
    for _ in 0..1000 {
        port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind a free port");
        if handed_out.insert(port) {
            break;
        }
    }
    port
}

/// Runs `launch` (which picks its ports with [`free_port`]) until the
/// process starts. `free_port` releases its port before the process binds
/// it, so another process (or an outgoing connection) may take it in
/// between: a process that exits for a taken port is started again on new
/// ports rather than failing the test.
pub(super) fn on_free_ports<T>(mut launch: impl FnMut() -> Result<T, EarlyExit>) -> T {
    for _ in 1..5 {
        match launch() {
            Ok(t) => return t,
            Err(e) if e.port_taken() => continue,
            Err(e) => panic!("{e}"),
        }
    }
    launch().unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_never_handed_out_twice() {
        // 3,000 draws from the ~28,000 ephemeral ports: without the record
        // of ports handed out, a repeat is all but certain.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3000 {
            let port = free_port();
            assert!(seen.insert(port), "port {port} handed out twice");
        }
    }
}
