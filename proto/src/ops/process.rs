//! Process-level metrics every server exports.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The process's own gauges, refreshed before each scrape.
#[derive(Debug, Clone, Default)]
pub struct ProcessMetrics {
    resident: Gauge,
    virtual_memory: Gauge,
    threads: Gauge,
    open_fds: Gauge,
}

impl ProcessMetrics {
    /// Registers `goulette_process_*` in `registry`.
    pub fn register(registry: &mut Registry) -> ProcessMetrics {
        let m = ProcessMetrics::default();
        let p = registry.sub_registry_with_prefix("goulette_process");
        p.register("resident_memory_bytes", "Resident set size", m.resident.clone());
        p.register(
            "virtual_memory_bytes",
            "Virtual memory size (mmap'd fragments count here)",
            m.virtual_memory.clone(),
        );
        p.register("threads", "Operating-system threads", m.threads.clone());
        p.register("open_fds", "Open file descriptors", m.open_fds.clone());
        m
    }

    /// Reads `/proc/self` (Linux); leaves a gauge as it was when a value cannot be read.
    pub fn refresh(&self) {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            };
            if let Some(kib) = field("VmRSS") {
                self.resident.set(kib * 1024);
            }
            if let Some(kib) = field("VmSize") {
                self.virtual_memory.set(kib * 1024);
            }
            if let Some(n) = field("Threads") {
                self.threads.set(n);
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }
}
