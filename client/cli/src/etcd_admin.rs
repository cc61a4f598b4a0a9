//! `goulette etcd …`: Goulette's metadata read and administered directly in
//! etcd, no sentinel involved (`docs/design.md`: the key layout under "Data
//! model", the commands under "Commands"; the layout itself is
//! `goulette-metadata`'s): cluster status, topics, the operation log, and
//! backup / restore / clean of the whole prefix.
//!
//! Backup file: pretty JSON `{ "prefix", "revision", "keys": [{ "key", "value" }] }`,
//! keys in etcd order. Lease-bound keys (`brokers/`, `sentinels/`,
//! `election/`) describe live processes and are left out.
//!
//! Restore protocol: only into an empty prefix; every key but the op counter
//! is written first, in transactions of at most [`RESTORE_TXN_PUTS`] puts
//! (the first one also checks, atomically, that the prefix is still empty),
//! and `counters/ops` comes last. A crash mid-restore therefore leaves a
//! non-empty prefix without an op counter, which a second restore refuses;
//! the recovery is `goulette etcd clean --yes`, then restore again.
//!
//! One value is not restored as it was: the producer-id counter
//! (`counters/producer-ids`) is advanced by [`PRODUCER_ID_RESTORE_JUMP`].
//! Producer ids handed out after the backup was taken are still known to
//! brokers; handing them out again would let a broker take a new producer's
//! first batches for retries of an old one's, and answer them with the old
//! offsets without storing them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use etcd_client::{Client, Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use goulette_metadata::keys::Keys;
use goulette_sentinel::error::SentinelError;
use goulette_sentinel::store::{self, Store};
use serde::{Deserialize, Serialize};

/// How far a restore advances the producer-id counter past its backed-up
/// value (see the module doc): more ids than a cluster hands out.
pub const PRODUCER_ID_RESTORE_JUMP: i64 = 1 << 40;

/// Most puts in one restore transaction (etcd's default `--max-txn-ops` is 128).
pub const RESTORE_TXN_PUTS: usize = 100;
/// Keys read per request when reading the whole prefix, so that a large
/// prefix never exceeds the gRPC message size.
const READ_PAGE: i64 = 1000;
/// The writer name the store would put into op-log entries (the CLI never
/// commits changes; it only reads through the store).
const CLI_ID: &str = "goulette-cli";

/// Everything a `goulette etcd` command can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The flags do not describe a usable etcd target.
    #[error("invalid etcd flags: {0}")]
    InvalidTarget(String),
    /// No endpoint answered.
    #[error("cannot reach etcd at {endpoints} (is it running? see --etcd-endpoints): {errors}")]
    Unreachable {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// Each endpoint's error.
        errors: String,
    },
    /// etcd could not be reached or refused a request.
    #[error("etcd at {endpoints} could not {context}: {source}")]
    Etcd {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// What was being done.
        context: String,
        /// The client error.
        #[source]
        source: etcd_client::Error,
    },
    /// Reading through the sentinel's store failed other than by an etcd error.
    #[error("etcd at {endpoints}: {source}")]
    Store {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// The store error.
        #[source]
        source: SentinelError,
    },
    /// A key or value under the prefix is not UTF-8 (Goulette writes only UTF-8).
    #[error("{what} {key:?} is not UTF-8; Goulette writes only UTF-8, so it was not written by Goulette")]
    NotUtf8 {
        /// `key` or `the value of key`.
        what: &'static str,
        /// The key (lossily decoded).
        key: String,
    },
    /// Reading or writing a backup file failed.
    #[error("could not {action} {path}: {source}")]
    File {
        /// What was being done (`write`, `read`, …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a backup file durably failed (the old file, if any, is intact).
    #[error("could not write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The storage layer's error, with the step that failed.
        #[source]
        source: goulette_storage::StorageError,
    },
    /// The file is not a backup this tool wrote, or it holds keys it must not restore.
    #[error("invalid backup: {0}")]
    BadBackup(String),
    /// The backup was taken from another prefix.
    #[error(
        "the backup holds prefix {backup:?} but --etcd-prefix is {target:?}; restore it with --etcd-prefix {backup}"
    )]
    PrefixMismatch {
        /// The backup's prefix.
        backup: String,
        /// The prefix asked for.
        target: String,
    },
    /// Restore refuses to write into a prefix that already holds keys.
    #[error(
        "refusing to restore: {count} keys already exist under {root}; nothing was written \
         (if they are expendable, run `goulette etcd clean --yes` first)"
    )]
    NotEmpty {
        /// The prefix with its trailing `/`.
        root: String,
        /// How many keys it holds.
        count: i64,
    },
    /// A restore failed after some of its transactions were committed.
    #[error(
        "restore stopped after writing {written} of {total} keys: {source}; {root} now holds a partial restore \
         without its op counter: run `goulette etcd clean --yes`, then restore again"
    )]
    RestoreInterrupted {
        /// The prefix with its trailing `/`.
        root: String,
        /// Keys committed before the failure.
        written: usize,
        /// Keys in the backup.
        total: usize,
        /// What failed.
        #[source]
        source: Box<AdminError>,
    },
    /// `clean` was not confirmed.
    #[error("refusing to delete every key under {root} without --yes")]
    NotConfirmed {
        /// The prefix with its trailing `/`.
        root: String,
    },
}

/// Result alias for this module.
pub type Result<T, E = AdminError> = std::result::Result<T, E>;

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

/// The backup file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// The prefix the keys were read from (without a trailing `/`).
    pub prefix: String,
    /// The etcd revision they were read at.
    pub revision: i64,
    /// Every key that can be restored, in etcd (byte) order.
    pub keys: Vec<BackupKey>,
}

/// One key of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupKey {
    pub key: String,
    pub value: String,
}

impl Backup {
    /// Reads a backup file.
    pub fn read(path: &Path) -> Result<Backup> {
        let bytes =
            std::fs::read(path).map_err(|source| AdminError::File { action: "read", path: path.into(), source })?;
        serde_json::from_slice(&bytes).map_err(|e| AdminError::BadBackup(format!("{}: {e}", path.display())))
    }

    /// Writes the backup as pretty JSON, durably and atomically
    /// ([`goulette_storage::crashsafe::write_durably`]): `path` never holds
    /// half a backup.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| AdminError::File {
            action: "serialize",
            path: path.into(),
            source: e.into(),
        })?;
        json.push(b'\n');
        goulette_storage::crashsafe::write_durably(path, &[&json])
            .map_err(|source| AdminError::Write { path: path.into(), source })
    }
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Keys written to the file.
    pub keys: usize,
    /// Lease-bound keys left out.
    pub skipped: usize,
    /// The etcd revision the keys were read at.
    pub revision: i64,
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Keys written.
    pub keys: usize,
    /// Transactions used.
    pub transactions: usize,
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
    /// the member list, and how many keys each section of the prefix holds,
    /// with the op counter.
    pub async fn status(&self) -> Result<String> {
        let sections = self.section_counts().await?;
        let mut client = self.client.clone();
        let members = client.member_list().await.map_err(self.etcd_error("list the cluster members"))?;

        let mut out = String::new();
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
                }
            }
        }
        let _ = writeln!(out, "members ({}):", members.members().len());
        for m in members.members() {
            let name = if m.name().is_empty() { "(not started)" } else { m.name() };
            let learner = if m.is_learner() { " learner" } else { "" };
            let _ = writeln!(
                out,
                "  {:x}  {name}{learner}  peers {}  clients {}",
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
        Ok(out)
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

    /// Reads the prefix into a [`Backup`], leaving out lease-bound keys;
    /// returns it with how many keys were left out.
    pub async fn snapshot(&self) -> Result<(Backup, usize)> {
        let (revision, kvs) = self.read_prefix().await?;
        let mut keys = Vec::with_capacity(kvs.len());
        let mut skipped = 0;
        for kv in kvs {
            let key = kv.key_str().map_err(|_| AdminError::NotUtf8 {
                what: "key",
                key: String::from_utf8_lossy(kv.key()).into_owned(),
            })?;
            if kv.lease() != 0 || self.is_lease_bound(key) {
                skipped += 1;
                continue;
            }
            let value =
                kv.value_str().map_err(|_| AdminError::NotUtf8 { what: "the value of key", key: key.to_owned() })?;
            keys.push(BackupKey { key: key.to_owned(), value: value.to_owned() });
        }
        let prefix = self.keys.root().trim_end_matches('/').to_owned();
        Ok((Backup { prefix, revision, keys }, skipped))
    }

    /// `backup FILE`: writes the prefix, without its lease-bound keys, to `path`.
    pub async fn backup(&self, path: &Path) -> Result<BackupReport> {
        let (backup, skipped) = self.snapshot().await?;
        let report = BackupReport { keys: backup.keys.len(), skipped, revision: backup.revision };
        blocking(path, "write", move |path| backup.write(path)).await?;
        Ok(report)
    }

    /// `restore FILE`: writes a backup file's keys into the empty prefix.
    pub async fn restore(&self, path: &Path) -> Result<RestoreReport> {
        let backup = blocking(path, "read", Backup::read).await?;
        self.restore_backup(&backup).await
    }

    /// Writes `backup`'s keys into the prefix, which must be empty; see the
    /// module doc for the order, the producer-id counter and the recovery
    /// from a crash.
    pub async fn restore_backup(&self, backup: &Backup) -> Result<RestoreReport> {
        let root = self.keys.root();
        if Keys::new(&backup.prefix).root() != root {
            return Err(AdminError::PrefixMismatch {
                backup: backup.prefix.clone(),
                target: root.trim_end_matches('/').to_owned(),
            });
        }
        let counter = self.keys.ops_counter();
        let mut seen = BTreeSet::new();
        for BackupKey { key, .. } in &backup.keys {
            if !key.starts_with(&root) {
                return Err(AdminError::BadBackup(format!("key {key:?} is outside the prefix {root}")));
            }
            if self.is_lease_bound(key) {
                return Err(AdminError::BadBackup(format!(
                    "key {key:?} belongs to a live process (it is bound to a lease) and must not be restored"
                )));
            }
            if !seen.insert(key.as_str()) {
                return Err(AdminError::BadBackup(format!("key {key:?} appears twice")));
            }
        }
        if backup.keys.is_empty() {
            let count = self.count_prefix().await?;
            if count > 0 {
                return Err(AdminError::NotEmpty { root, count });
            }
            return Ok(RestoreReport { keys: 0, transactions: 0 });
        }

        let producer_ids = self.keys.producer_ids_counter();
        let jumped: Vec<BackupKey> = backup
            .keys
            .iter()
            .filter(|k| k.key == producer_ids)
            .map(|k| {
                let next = k.value.trim().parse::<i64>().ok().and_then(|n| n.checked_add(PRODUCER_ID_RESTORE_JUMP));
                next.map(|n| BackupKey { key: k.key.clone(), value: n.to_string() }).ok_or_else(|| {
                    AdminError::BadBackup(format!("{producer_ids} holds {:?}, not a producer id", k.value))
                })
            })
            .collect::<Result<_>>()?;
        // The op counter last: a partial restore has none.
        let (counters, rest): (Vec<&BackupKey>, Vec<&BackupKey>) =
            backup.keys.iter().filter(|k| k.key != producer_ids).chain(&jumped).partition(|k| k.key == counter);
        let ordered: Vec<&BackupKey> = rest.into_iter().chain(counters).collect();
        let total = ordered.len();
        let mut written = 0;
        let mut transactions = 0;
        for chunk in ordered.chunks(RESTORE_TXN_PUTS) {
            let puts: Vec<TxnOp> = chunk.iter().map(|k| TxnOp::put(k.key.as_str(), k.value.as_str(), None)).collect();
            let mut txn = Txn::new();
            if written == 0 {
                // The emptiness check and the first write are one transaction:
                // a range compare on create_revision = 0 holds only when no key
                // in the range exists.
                txn = txn.when([Compare::create_revision(root.as_str(), CompareOp::Equal, 0).with_prefix()]);
            }
            let result = self.client.clone().txn(txn.and_then(puts)).await.map_err(self.etcd_error(format!(
                "restore keys {} to {}",
                written + 1,
                written + chunk.len()
            )));
            match result {
                Ok(resp) if resp.succeeded() => {}
                Ok(_) => {
                    // Only the first transaction has a compare.
                    let count = self.count_prefix().await?;
                    return Err(AdminError::NotEmpty { root, count });
                }
                Err(e) if written == 0 => return Err(e),
                Err(e) => return Err(AdminError::RestoreInterrupted { root, written, total, source: Box::new(e) }),
            }
            written += chunk.len();
            transactions += 1;
        }
        Ok(RestoreReport { keys: written, transactions })
    }

    /// `clean --yes`: deletes every key under the prefix (its trailing `/`
    /// included, so `/goulette` never touches `/goulette2/…`); returns how
    /// many were deleted.
    pub async fn clean(&self, confirmed: bool) -> Result<i64> {
        let root = self.keys.root();
        if !confirmed {
            return Err(AdminError::NotConfirmed { root });
        }
        let resp = self
            .client
            .clone()
            .delete(root.as_str(), Some(DeleteOptions::new().with_prefix()))
            .await
            .map_err(self.etcd_error(format!("delete the keys under {root}")))?;
        Ok(resp.deleted())
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

/// Each endpoint's status on its own connection, all at once, in endpoint order.
async fn endpoint_statuses(endpoints: &[String]) -> Vec<EndpointStatus> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let status = match store::connect(std::slice::from_ref(&endpoint)).await {
                Ok(mut client) => client.status().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
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
