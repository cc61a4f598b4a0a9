//! The process's etcd request metrics and etcd reachability: request
//! latency by kind, failed requests, and when etcd last answered.
//!
//! A leaf module (nothing of this crate is used here), so that whoever talks
//! to etcd can count its requests without depending on the HTTP side
//! ([`crate::metrics`]), which reads the cluster view and the election role.
//! Failed requests are counted where the etcd call is made, not when an
//! error value is built: every `SentinelError::Etcd` and
//! `SentinelError::EtcdTimeout` comes from a request counted here.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tokio_util::sync::CancellationToken;

/// A series per etcd request kind (`probe`, `commit`, `load`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    pub request: &'static str,
}

/// etcd request metrics of this process.
#[derive(Debug)]
pub struct EtcdMetrics {
    pub latency: Family<RequestLabel, Histogram>,
    pub errors: Counter,
    /// Milliseconds since `START` of the last successful probe; -1 before one.
    last_ok_ms: AtomicI64,
}

static START: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The process's etcd metrics.
pub static ETCD: LazyLock<EtcdMetrics> = LazyLock::new(|| EtcdMetrics {
    latency: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_1, 2.0, 16))),
    errors: Counter::default(),
    last_ok_ms: AtomicI64::new(-1),
});

impl EtcdMetrics {
    /// Records how long one answered etcd request of kind `request` took.
    /// Any answer shows etcd reachable, not only the probe's: a sentinel that
    /// just loaded its view and committed through etcd is not reported
    /// unreachable for want of a probe round yet (the first probe of a
    /// sentinel whose embedded etcd was still starting failed, and `/ready`
    /// answered 503 for up to a second after the cluster worked).
    pub fn observe(&self, request: &'static str, took: Duration) {
        self.latency.get_or_create(&RequestLabel { request }).observe(took.as_secs_f64());
        self.last_ok_ms.store(START.elapsed().as_millis() as i64, Ordering::Relaxed);
    }

    /// How long since etcd last answered a request (`None`: never).
    pub fn since_ok(&self) -> Option<Duration> {
        let ms = self.last_ok_ms.load(Ordering::Relaxed);
        (ms >= 0).then(|| START.elapsed().saturating_sub(Duration::from_millis(ms as u64)))
    }
}

/// Counting an etcd request's failure where the request is made:
/// `client.get(…).await.counted().map_err(…)`.
pub trait Counted {
    /// Counts `self` in [`EtcdMetrics::errors`] when it is an error; passes it on.
    fn counted(self) -> Self;
}

impl<T, E> Counted for Result<T, E> {
    fn counted(self) -> Self {
        if self.is_err() {
            ETCD.errors.inc();
        }
        self
    }
}

/// etcd counts as unreachable when the probe has not reached it for this long.
pub const ETCD_STALE: Duration = Duration::from_secs(3);

/// Whether the health probe reached etcd within the last 3 s.
pub fn etcd_reachable() -> bool {
    ETCD.since_ok().is_some_and(|d| d < ETCD_STALE)
}

/// Reads one key every second (answers come from the etcd cluster's
/// leader-confirmed state only if etcd is healthy) until `shutdown`.
pub async fn probe_etcd(client: etcd_client::Client, key: String, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let started = Instant::now();
        let mut kv = client.kv_client();
        let read = tokio::time::timeout(ETCD_STALE, kv.get(key.as_str(), None)).await;
        match read {
            Ok(Ok(_)) => {
                ETCD.observe("probe", started.elapsed());
            }
            Ok(Err(e)) => {
                ETCD.errors.inc();
                tracing::debug!(error = %e, "etcd probe failed");
            }
            Err(_) => {
                ETCD.errors.inc();
            }
        }
    }
}
