//! The sentinel's Prometheus metrics, `goulette_sentinel_*` (and the
//! process's `goulette_process_*`), and its readiness, served on
//! `--http-address`.
//!
//! Cluster gauges (brokers, partitions offline or under-replicated, groups)
//! are computed from this sentinel's view at each scrape. etcd request
//! latency and errors are process-wide ([`ETCD`], kept in
//! [`crate::etcd_metrics`]): each etcd request is counted where it is made,
//! and the health probe ([`crate::etcd_metrics::probe_etcd`]) times a read
//! every second, so the latency series and readiness move even when nothing
//! is written.

use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::election::Role;
use crate::etcd_metrics::{ETCD, ETCD_STALE, etcd_reachable};
use crate::view::ClusterView;

/// What the sentinel's HTTP endpoints report.
#[derive(Debug)]
pub struct SentinelProbe {
    registry: Registry,
    process: goulette_proto::ops::process::ProcessMetrics,
    views: watch::Receiver<Arc<ClusterView>>,
    role: watch::Receiver<Role>,
    leader: Gauge,
    leader_known: Gauge,
    etcd_reachable: Gauge,
    brokers: Gauge,
    decommissioned: Gauge,
    topics: Gauge,
    partitions: Gauge,
    offline: Gauge,
    under_replicated: Gauge,
    groups: Gauge,
    group_members: Gauge,
    metadata_revision: Gauge,
}

impl SentinelProbe {
    /// Registers every sentinel metric over this sentinel's view and role.
    pub fn new(views: watch::Receiver<Arc<ClusterView>>, role: watch::Receiver<Role>) -> SentinelProbe {
        let mut registry = Registry::default();
        let process = goulette_proto::ops::process::ProcessMetrics::register(&mut registry);
        let p = SentinelProbe {
            registry: Registry::default(),
            process,
            views,
            role,
            leader: Gauge::default(),
            leader_known: Gauge::default(),
            etcd_reachable: Gauge::default(),
            brokers: Gauge::default(),
            decommissioned: Gauge::default(),
            topics: Gauge::default(),
            partitions: Gauge::default(),
            offline: Gauge::default(),
            under_replicated: Gauge::default(),
            groups: Gauge::default(),
            group_members: Gauge::default(),
            metadata_revision: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("goulette_sentinel");
        r.register("leader", "1 when this sentinel leads the sentinels", p.leader.clone());
        r.register("leader_known", "1 when some sentinel leads (as this one sees it)", p.leader_known.clone());
        r.register("etcd_reachable", "1 when etcd answered within the last 3 s", p.etcd_reachable.clone());
        r.register("etcd_request_duration_seconds", "etcd request latency", ETCD.latency.clone());
        r.register("etcd_errors", "etcd requests that failed", ETCD.errors.clone());
        r.register(
            "tls_handshake_failures",
            "gRPC TLS handshakes that failed (a plaintext client, an untrusted or expired certificate)",
            crate::tls_metrics::TLS.handshake_failures.clone(),
        );
        r.register(
            "tls_reload_failures",
            "Changed TLS files that could not be loaded; the last good ones stay in use (the log says why)",
            crate::tls_metrics::TLS.reload_failures.clone(),
        );
        r.register(
            "auth_failures",
            "Failed gRPC logins, by reason (invalid-credentials, throttled, malformed, unsupported)",
            crate::tls_metrics::TLS.auth_failures.clone(),
        );
        r.register("acl_denials", "gRPC requests the ACLs refused", crate::tls_metrics::TLS.acl_denials.clone());
        r.register("brokers_up", "Brokers with a live session", p.brokers.clone());
        r.register("brokers_decommissioned", "Brokers being decommissioned", p.decommissioned.clone());
        r.register("topics", "Topics", p.topics.clone());
        r.register("partitions", "Partitions", p.partitions.clone());
        r.register("offline_partitions", "Partitions without a live leader", p.offline.clone());
        r.register(
            "under_replicated_partitions",
            "Partitions with a live leader whose ISR is smaller than their replica set (offline ones count as offline)",
            p.under_replicated.clone(),
        );
        r.register("groups", "Consumer groups with membership state", p.groups.clone());
        r.register("group_members", "Live consumer-group members", p.group_members.clone());
        r.register("metadata_revision", "etcd revision of this sentinel's view", p.metadata_revision.clone());
        SentinelProbe { registry, ..p }
    }

    fn refresh(&self) {
        self.process.refresh();
        let view = self.views.borrow().clone();
        self.leader.set(i64::from(matches!(*self.role.borrow(), Role::Leader(_))));
        self.leader_known.set(i64::from(view.leader_address().is_some()));
        self.etcd_reachable.set(i64::from(etcd_reachable()));
        self.brokers.set(view.brokers.len() as i64);
        self.decommissioned.set(view.decommissioned.len() as i64);
        self.topics.set(view.topics.len() as i64);
        self.partitions.set(view.partitions.len() as i64);
        self.offline.set(view.offline().count() as i64);
        self.under_replicated.set(view.under_replicated().count() as i64);
        self.groups.set(view.groups.len() as i64);
        self.group_members.set(view.groups.values().map(|g| g.members.len()).sum::<usize>() as i64);
        self.metadata_revision.set(view.revision);
    }
}

impl goulette_proto::ops::http::Probe for SentinelProbe {
    fn ready(&self) -> Result<(), String> {
        match ETCD.since_ok() {
            None => return Err("etcd has not answered yet".into()),
            Some(d) if d >= ETCD_STALE => return Err(format!("etcd has not answered for {d:?}")),
            Some(_) => {}
        }
        let view = self.views.borrow().clone();
        if view.revision == 0 {
            return Err("the cluster view is not loaded yet".into());
        }
        if view.leader_address().is_none() {
            return Err("no sentinel leads".into());
        }
        Ok(())
    }

    fn metrics(&self) -> String {
        self.refresh();
        goulette_proto::ops::http::encode(&self.registry)
    }
}
