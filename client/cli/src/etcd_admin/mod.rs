//! `goulette etcd …`: Goulette's metadata read and administered directly in
//! etcd, no sentinel involved (`docs/design.md`: the key layout under "Data
//! model", the commands under "Commands"; the layout itself is
//! `goulette-metadata`'s): cluster status, topics, the operation log, and
//! backup / restore / clean of the whole prefix.
//!
//! Files: this one (the target, the connection, status, topics and the op
//! log), `backup` (backup, restore and clean, with their protocol),
//! `offline` (a stopped cluster's etcd data directory, opened through a
//! temporary etcd) and `error`.

//!
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use etcd_client::{Client, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use goulette_metadata::keys::Keys;
use goulette_sentinel::error::SentinelError;
use goulette_sentinel::store::{self, Store};

mod backup;
mod error;
mod offline;

pub use backup::{Backup, BackupKey, BackupReport, PRODUCER_ID_RESTORE_JUMP, RESTORE_TXN_PUTS, RestoreReport};
pub use error::{AdminError, Result};
pub use offline::{OfflineEtcd, TemporaryEtcd};

/// Keys read per request when reading the whole prefix, so that a large
/// prefix never exceeds the gRPC message size.
const READ_PAGE: i64 = 1000;
/// The writer name the store would put into op-log entries (the CLI never
/// commits changes; it only reads through the store).
const CLI_ID: &str = "goulette-cli";

/// Which etcd cluster and prefix to work on: the validated `--etcd-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    endpoints: Vec<String>,
    keys: Keys,
}

impl EtcdTarget {
    /// Validates the endpoints (at least one) and the prefix (not empty and
    /// not `/` alone, which would make `clean` delete the whole key space).
    pub fn new(endpoints: Vec<String>, prefix: &str) -> Result<EtcdTarget> {
        let endpoints: Vec<String> =
            endpoints.iter().map(|e| e.trim()).filter(|e| !e.is_empty()).map(str::to_owned).collect();
        if endpoints.is_empty() {
            return Err(AdminError::InvalidTarget("--etcd-endpoints names no endpoint".into()));
        }
        if prefix.trim_end_matches('/').is_empty() {
            return Err(AdminError::InvalidTarget(format!(
                "--etcd-prefix {prefix:?} must name a key prefix such as {:?}, not the whole key space",
                goulette_metadata::keys::DEFAULT_PREFIX
            )));
        }
        Ok(EtcdTarget { endpoints, keys: Keys::new(prefix) })
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The key layout under the prefix.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
}

/// A connection to etcd for the `goulette etcd` commands.
pub struct EtcdAdmin {
    /// A client over the endpoints that answered the probe.
    client: Client,
    store: Store,
    /// Every endpoint asked for.
    endpoints: Vec<String>,
    /// Each endpoint's status (or why it has none) when connecting.
    probes: Vec<EndpointStatus>,
    keys: Keys,
}

/// One endpoint's etcd status, or why it could not be read.
type EndpointStatus = std::result::Result<etcd_client::StatusResponse, String>;

impl std::fmt::Debug for EtcdAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdAdmin").field("endpoints", &self.endpoints).field("keys", &self.keys).finish()
    }
}

impl EtcdAdmin {
    /// Connects to the target's endpoints: probes each one's status at once
    /// and keeps those that answer, because the etcd client's balanced
    /// channel keeps sending requests to a dead endpoint, which then fail
    /// (etcdv3/etcd-client#39).
    /// Fails within [`store::ETCD_REQUEST_TIMEOUT`] when none answers.
    pub async fn connect(target: &EtcdTarget) -> Result<EtcdAdmin> {
        let endpoints = target.endpoints.clone();
        let probes = endpoint_statuses(&endpoints).await;
        let live: Vec<String> =
            endpoints.iter().zip(&probes).filter(|(_, p)| p.is_ok()).map(|(e, _)| e.clone()).collect();
        if live.is_empty() {
            let errors =
                endpoints.iter().zip(&probes).filter_map(|(e, p)| p.as_ref().err().map(|err| format!("{e}: {err}")));
            return Err(AdminError::Unreachable {
                endpoints: endpoints.join(","),
                errors: errors.collect::<Vec<_>>().join("; "),
            });
        }
        let client = store::connect(&live).await.map_err(|e| store_error(&endpoints, e))?;
        let store = Store::new(client.clone(), target.keys.clone(), CLI_ID);
        Ok(EtcdAdmin { client, store, endpoints, probes, keys: target.keys.clone() })
    }

    fn etcd_error(&self, context: impl Into<String>) -> impl FnOnce(etcd_client::Error) -> AdminError {
        let endpoints = self.endpoints.join(",");
        let context = context.into();
        move |source| AdminError::Etcd { endpoints, context, source }
    }

    /// `status`: each endpoint's etcd status (as probed when connecting),
    /// every member with its health (probed on its own client URL), and how
    /// many keys each section of the prefix holds, with the op counter.
    /// `down` names every endpoint or member that did not answer healthy.
    pub async fn status(&self) -> Result<EtcdStatus> {
        let sections = self.section_counts().await?;
        let mut client = self.client.clone();
        let members = client.member_list().await.map_err(self.etcd_error("list the cluster members"))?;

        let mut out = String::new();
        let mut down = Vec::new();
        for (endpoint, status) in self.endpoints.iter().zip(&self.probes) {
            let _ = writeln!(out, "endpoint {endpoint}");
            match status {
                Ok(s) => {
                    let member = s.header().map_or(0, |h| h.member_id());
                    let this = if member != 0 && member == s.leader() { " (this member)" } else { "" };
                    let _ = writeln!(out, "  version:     {}", s.version());
                    let _ = writeln!(out, "  member id:   {member:x}");
                    let _ = writeln!(out, "  leader id:   {:x}{this}", s.leader());
                    let _ = writeln!(out, "  db size:     {}", human_bytes(s.db_size()));
                    let _ = writeln!(out, "  raft index:  {}", s.raft_index());
                    let _ = writeln!(out, "  raft term:   {}", s.raft_term());
                    for e in s.errors() {
                        let _ = writeln!(out, "  error:       {e}");
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "  unreachable: {e}");
                    down.push(format!("endpoint {endpoint}"));
                }
            }
        }
        let urls: Vec<String> =
            members.members().iter().map(|m| m.client_urls().first().cloned().unwrap_or_default()).collect();
        let healths = member_healths(&urls).await;
        let _ = writeln!(out, "members ({}):", members.members().len());
        for (m, health) in members.members().iter().zip(healths) {
            let name = if m.name().is_empty() { "(not started)" } else { m.name() };
            let learner = if m.is_learner() { " learner" } else { "" };
            if !matches!(health, MemberHealth::Healthy) {
                down.push(format!("member {:x} ({name})", m.id()));
            }
            let state = match health {
                MemberHealth::Healthy => "healthy".to_owned(),
                MemberHealth::NotStarted => "DOWN: never started (no client URL)".to_owned(),
                MemberHealth::Down(why) => format!("DOWN: {why}"),
            };
            let _ = writeln!(
                out,
                "  {:x}  {name}{learner}  {state}  peers {}  clients {}",
                m.id(),
                m.peer_urls().join(","),
                m.client_urls().join(",")
            );
        }
        let _ = writeln!(out, "prefix {} at revision {}:", self.keys.root(), sections.revision);
        let width = sections.counts.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        for (name, count) in &sections.counts {
            let _ = writeln!(out, "  {name:<width$}  {count}");
        }
        let _ = writeln!(out, "  {:<width$}  {}", "total", sections.total);
        match &sections.op_counter {
            Some(next) => {
                let _ = writeln!(out, "op counter: {next} (the next op's sequence number)");
            }
            None => {
                let _ = writeln!(out, "op counter: absent (no change committed yet)");
            }
        }
        Ok(EtcdStatus { report: out, down })
    }

    /// Counts the keys of each section at one revision (one transaction).
    async fn section_counts(&self) -> Result<SectionCounts> {
        let k = &self.keys;
        let election = format!("{}/", k.election());
        let counters = format!("{}counters/", k.root());
        let sections = [
            ("topics", k.topics()),
            ("partitions", k.all_partitions()),
            ("brokers", k.brokers()),
            ("sentinels", k.sentinels()),
            ("ops", k.ops()),
            ("counters", counters),
            ("election", election),
        ];
        let count = || Some(GetOptions::new().with_prefix().with_count_only());
        let mut ops: Vec<TxnOp> = sections.iter().map(|(_, prefix)| TxnOp::get(prefix.as_str(), count())).collect();
        ops.push(TxnOp::get(k.root(), count()));
        ops.push(TxnOp::get(k.ops_counter(), None));
        let resp = self
            .client
            .clone()
            .txn(Txn::new().and_then(ops))
            .await
            .map_err(self.etcd_error(format!("count the keys under {}", k.root())))?;
        let gets: Vec<_> = resp
            .op_responses()
            .into_iter()
            .filter_map(|r| if let TxnOpResponse::Get(g) = r { Some(g) } else { None })
            .collect();
        let counts = sections.iter().zip(&gets).map(|((name, _), g)| (*name, g.count())).collect();
        let total = gets.get(sections.len()).map_or(0, |g| g.count());
        let op_counter = gets
            .get(sections.len() + 1)
            .and_then(|g| g.kvs().first())
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
        Ok(SectionCounts { revision: resp.header().map_or(0, |h| h.revision()), counts, total, op_counter })
    }

    /// `topics`: every topic's configuration and, per partition, its
    /// replicas, leader, leader epoch and ISR.
    pub async fn topics(&self) -> Result<String> {
        let view = self.store.load().await.map_err(|e| store_error(&self.endpoints, e))?;
        let mut out = String::new();
        let n = view.topics.len();
        let topics = if n == 1 { "topic" } else { "topics" };
        let _ = writeln!(out, "{n} {topics} under {} at revision {}", self.keys.root(), view.revision);
        for (name, t) in &view.topics {
            let _ = writeln!(
                out,
                "topic {name}: partitions={} replication_factor={} retention_ms={} retention_bytes={} \
                 unclean_leader_election={}",
                t.partitions, t.replication_factor, t.retention_ms, t.retention_bytes, t.unclean_leader_election
            );
            let records: BTreeMap<u32, _> = view.topic_partitions(name).map(|p| (p.partition, p)).collect();
            let last = records.keys().next_back().map_or(0, |p| p + 1).max(t.partitions);
            for p in 0..last {
                match records.get(&p) {
                    Some(r) => {
                        let leader = r.leader.map_or_else(|| "none".to_owned(), |l| l.to_string());
                        let beyond = if p >= t.partitions { " (beyond the configured partition count)" } else { "" };
                        let _ = writeln!(
                            out,
                            "  partition {p}: replicas={} leader={leader} leader_epoch={} isr={}{beyond}",
                            ids(&r.replicas),
                            r.leader_epoch,
                            ids(&r.isr)
                        );
                    }
                    None => {
                        let _ = writeln!(out, "  partition {p}: no partition record");
                    }
                }
            }
        }
        let orphans: Vec<_> =
            view.partitions.keys().filter(|(topic, _)| !view.topics.contains_key(topic)).collect::<Vec<_>>();
        if !orphans.is_empty() {
            let _ = writeln!(out, "partition records without a topic:");
            for (topic, p) in orphans {
                let _ = writeln!(out, "  {topic}/{p}");
            }
        }
        Ok(out)
    }

    /// `ops`: the operation log in sequence order, only the last `last`
    /// entries when given.
    pub async fn ops(&self, last: Option<usize>) -> Result<String> {
        let mut ops = self.store.ops().await.map_err(|e| store_error(&self.endpoints, e))?;
        if let Some(n) = last {
            ops.drain(..ops.len().saturating_sub(n));
        }
        if ops.is_empty() {
            return Ok(format!("no operations under {}\n", self.keys.ops()));
        }
        let rows: Vec<[String; 5]> = ops
            .into_iter()
            .map(|o| {
                let at = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(o.at_ms).unwrap_or(0));
                [o.seq.to_string(), humantime::format_rfc3339_millis(at).to_string(), o.sentinel, o.kind, o.detail]
            })
            .collect();
        let header = ["SEQ", "TIME", "SENTINEL", "KIND", "DETAIL"];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(header.map(str::to_owned)).chain(rows) {
            let line = format!(
                "{:>w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        Ok(out)
    }

    /// Whether `key` is in a section whose keys live under leases.
    fn is_lease_bound(&self, key: &str) -> bool {
        key.starts_with(&self.keys.brokers())
            || key.starts_with(&self.keys.sentinels())
            || key.starts_with(&format!("{}/", self.keys.election()))
    }

    async fn count_prefix(&self) -> Result<i64> {
        let root = self.keys.root();
        let resp = self
            .client
            .clone()
            .get(root.as_str(), Some(GetOptions::new().with_prefix().with_count_only()))
            .await
            .map_err(self.etcd_error(format!("count the keys under {root}")))?;
        Ok(resp.count())
    }

    /// Every key under the prefix at one revision, read in pages.
    async fn read_prefix(&self) -> Result<(i64, Vec<KeyValue>)> {
        let root = self.keys.root();
        let end = prefix_end(root.as_bytes());
        let mut client = self.client.clone();
        let mut start = root.clone().into_bytes();
        let mut revision = 0;
        let mut kvs = Vec::new();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(READ_PAGE);
            if revision > 0 {
                options = options.with_revision(revision);
            }
            let mut resp =
                client.get(start.clone(), Some(options)).await.map_err(self.etcd_error(format!("read {root}")))?;
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            let more = resp.more();
            let page = resp.take_kvs();
            let Some(last) = page.last() else { break };
            start = last.key().to_vec();
            start.push(0);
            kvs.extend(page);
            if !more {
                break;
            }
        }
        Ok((revision, kvs))
    }
}

struct SectionCounts {
    revision: i64,
    counts: Vec<(&'static str, i64)>,
    total: i64,
    op_counter: Option<String>,
}

/// What `status` found.
#[derive(Debug)]
pub struct EtcdStatus {
    /// The report to print.
    pub report: String,
    /// Endpoints and members that are not healthy (empty: all are).
    pub down: Vec<String>,
}

/// One member's health, as its own client URL answers.
#[derive(Debug)]
enum MemberHealth {
    Healthy,
    /// Added to the cluster, never started (no client URL yet).
    NotStarted,
    Down(String),
}

/// How long a member gets to answer a health probe.
const MEMBER_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Each member's health, all probed at once: healthy when its own client
/// URL answers a status with a known leader and no errors (a member cut off
/// from its quorum answers, but without a leader).
async fn member_healths(urls: &[String]) -> Vec<MemberHealth> {
    let reachable: Vec<String> = urls.iter().filter(|u| !u.is_empty()).cloned().collect();
    let mut statuses = endpoint_statuses_within(&reachable, MEMBER_PROBE_TIMEOUT).await.into_iter();
    urls.iter()
        .map(|url| {
            if url.is_empty() {
                return MemberHealth::NotStarted;
            }
            match statuses.next() {
                Some(Ok(s)) if s.leader() == 0 => {
                    MemberHealth::Down("answers, but knows no leader (no quorum?)".into())
                }
                Some(Ok(s)) if !s.errors().is_empty() => MemberHealth::Down(s.errors().join("; ")),
                Some(Ok(_)) => MemberHealth::Healthy,
                Some(Err(e)) => MemberHealth::Down(format!("unreachable at {url}: {e}")),
                None => MemberHealth::Down("not probed".into()),
            }
        })
        .collect()
}

/// Each endpoint's status on its own connection, all at once, in endpoint order.
async fn endpoint_statuses(endpoints: &[String]) -> Vec<EndpointStatus> {
    endpoint_statuses_within(endpoints, store::ETCD_REQUEST_TIMEOUT).await
}

/// Like `endpoint_statuses`, each answer within `timeout`.
async fn endpoint_statuses_within(endpoints: &[String], timeout: std::time::Duration) -> Vec<EndpointStatus> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let probe = async {
                match store::connect(std::slice::from_ref(&endpoint)).await {
                    Ok(mut client) => client.status().await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            };
            let status = tokio::time::timeout(timeout, probe)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
            (i, status)
        });
    }
    let mut statuses: Vec<EndpointStatus> = endpoints.iter().map(|_| Err("no answer".to_owned())).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, status)) = joined {
            statuses[i] = status;
        }
    }
    statuses
}

fn store_error(endpoints: &[String], e: SentinelError) -> AdminError {
    let endpoints = endpoints.join(",");
    match e {
        SentinelError::Etcd { context, source } => AdminError::Etcd { endpoints, context, source },
        other => AdminError::Store { endpoints, source: other },
    }
}

/// Runs blocking work on the file `path` off the async executor.
async fn blocking<T: Send + 'static>(
    path: &Path,
    action: &'static str,
    f: impl FnOnce(&Path) -> Result<T> + Send + 'static,
) -> Result<T> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || f(&owned))
        .await
        .unwrap_or_else(|e| Err(AdminError::File { action, path: path.to_owned(), source: std::io::Error::other(e) }))
}

/// The smallest key greater than every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Only 0xff bytes: no upper bound (etcd reads `\0` as "to the end").
    vec![0]
}

fn ids(ids: &[u32]) -> String {
    format!("[{}]", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(","))
}

fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut size = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        if size < 1024.0 {
            break;
        }
        size /= 1024.0;
        unit = u;
    }
    if unit.is_empty() { format!("{bytes} bytes") } else { format!("{size:.1} {unit} ({bytes} bytes)") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_prefix_should_end_its_range_just_past_it() {
        assert_eq!(prefix_end(b"/goulette/"), b"/goulette0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn given_flags_should_refuse_an_empty_prefix_or_no_endpoint() {
        assert!(EtcdTarget::new(vec!["http://127.0.0.1:2379".into()], "/goulette").is_ok());
        for prefix in ["", "/", "//"] {
            let err = EtcdTarget::new(vec!["http://127.0.0.1:2379".into()], prefix).unwrap_err();
            assert!(matches!(err, AdminError::InvalidTarget(_)), "{prefix:?}: {err}");
        }
        let err = EtcdTarget::new(vec![" ".into()], "/goulette").unwrap_err();
        assert!(err.to_string().contains("--etcd-endpoints"), "{err}");
    }

    #[test]
    fn given_sizes_should_render_them_in_binary_units() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(20480), "20.0 KiB (20480 bytes)");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB (3145728 bytes)");
    }
}
