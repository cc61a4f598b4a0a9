//! All of the sentinel's etcd traffic: reading the prefix, watching it, and
//! writing metadata changes together with their operation-log entry.
//!
//! Every change is one etcd transaction that
//! - compares the op-log counter (`counters/ops`) with the value just read
//!   (or, when it does not exist yet, its `create_revision` with 0: a compare
//!   on a missing key's value always fails in etcd),
//! - compares the writer's election key with the revision it won with (the
//!   fence: a sentinel that lost its lease cannot write, whatever it believes),
//! - compares whatever the change itself requires (a topic absent, …),
//! - and then writes the state keys, `ops/{seq}` and the counter `seq + 1`.
//!
//! So the op log holds each change exactly once, in commit order, and a
//! failed or interrupted write leaves nothing behind.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};

use crate::error::{Result, SentinelError};
use crate::etcd_metrics::{Counted, ETCD};
use crate::keys::Keys;
use crate::model::OpRecord;
use crate::view::ClusterView;

/// How long one etcd request may take before it counts as unavailable.
pub const ETCD_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries of a commit whose only failed compare was the op counter.
const COMMIT_ATTEMPTS: usize = 5;
/// Trim the op log to this many entries (checked every `TRIM_EVERY` ops).
pub const MAX_OPS: u64 = 10_000;
const TRIM_EVERY: u64 = 100;

/// TLS to etcd, set once per process (a sentinel from its `--etcd-tls-*`
/// flags, the CLI from its): the CAs trusted and the client certificate
/// presented (etcd's `--client-cert-auth`).
static ETCD_TLS: std::sync::OnceLock<goulette_proto::channel::ClientTls> = std::sync::OnceLock::new();

/// Makes every etcd connection from now on use TLS with `tls`; set once.
pub fn use_etcd_tls(tls: goulette_proto::channel::ClientTls) -> std::result::Result<(), String> {
    let set = ETCD_TLS.get_or_init(|| tls.clone());
    if *set == tls { Ok(()) } else { Err("TLS to etcd is already set differently".into()) }
}

/// Connects to etcd, with `ETCD_REQUEST_TIMEOUT` per request. Fails fast
/// (connect timeout) when it is unreachable.
pub async fn connect(endpoints: &[String]) -> Result<Client> {
    connect_with(endpoints, Some(ETCD_REQUEST_TIMEOUT)).await
}

/// Connects to etcd with an optional per-request timeout. Calls that block
/// by design (an election campaign) need a client without one; HTTP/2 pings
/// still detect a dead connection.
pub async fn connect_with(endpoints: &[String], request_timeout: Option<Duration>) -> Result<Client> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
    if let Some(t) = request_timeout {
        options = options.with_timeout(t);
    }
    if let Some(tls) = ETCD_TLS.get() {
        let mut config = etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(&tls.ca_pem));
        if let Some((cert, key)) = &tls.identity {
            config = config.identity(etcd_client::Identity::from_pem(cert, key));
        }
        options = options.with_tls(config);
    }
    Client::connect(endpoints, Some(options))
        .await
        .counted()
        .map_err(|e| SentinelError::etcd(format!("connect to {}", endpoints.join(",")), e))
}

/// The right to write: the leader's election key and the revision it was
/// created at. Every write compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: Vec<u8>,
    pub revision: i64,
}

/// One metadata change, written atomically with its op-log entry.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Keys to put, with an optional lease.
    pub puts: Vec<(String, String, Option<i64>)>,
    /// Keys to delete; `true` deletes the whole prefix.
    pub deletes: Vec<(String, bool)>,
    /// Keys that must not exist for the change to apply.
    pub require_absent: Vec<String>,
    /// Keys that must not have changed since this mod revision.
    pub require_mod_revision: Vec<(String, i64)>,
    /// Op-log kind (`create-topic`, …) and details.
    pub kind: String,
    pub detail: String,
}

impl Change {
    /// A change of the given kind.
    pub fn new(kind: &str, detail: impl Into<String>) -> Change {
        Change { kind: kind.to_owned(), detail: detail.into(), ..Change::default() }
    }

    /// Adds a JSON put.
    pub fn put_json<T: serde::Serialize>(mut self, key: String, value: &T, lease: Option<i64>) -> Change {
        // Serializing plain records cannot fail.
        let json = serde_json::to_string(value).unwrap_or_default();
        self.puts.push((key, json, lease));
        self
    }
}

/// Reads and writes the Goulette prefix.
#[derive(Clone)]
pub struct Store {
    client: Client,
    keys: Keys,
    sentinel_id: String,
    /// Held from a commit's read of the op counter to its transaction: this
    /// process's own concurrent commits would otherwise move the counter
    /// under each other and fail (20 concurrent topic creations lost 8 to
    /// that). Only another sentinel's commits can still race one.
    commit_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("keys", &self.keys).field("sentinel_id", &self.sentinel_id).finish()
    }
}

impl Store {
    /// A store over a connected client.
    pub fn new(client: Client, keys: Keys, sentinel_id: impl Into<String>) -> Store {
        Store { client, keys, sentinel_id: sentinel_id.into(), commit_lock: Default::default() }
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A clone of the etcd client (cheap; shares the connection).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Reads every section of the prefix at one revision.
    pub async fn load(&self) -> Result<ClusterView> {
        let started = std::time::Instant::now();
        let mut client = self.client.clone();
        let mut view = ClusterView::default();
        let sections = [
            self.keys.topics(),
            self.keys.tombstones(),
            self.keys.all_partitions(),
            self.keys.brokers(),
            self.keys.sentinels(),
            self.keys.decommissioned_all(),
            self.keys.all_groups(),
            self.keys.users(),
            self.keys.acls(),
            self.keys.security(),
        ];
        let mut revision = 0;
        for (i, section) in sections.iter().chain([&format!("{}/", self.keys.election())]).enumerate() {
            let mut options = GetOptions::new().with_prefix();
            if i > 0 {
                options = options.with_revision(revision);
            }
            let resp = client
                .get(section.as_str(), Some(options))
                .await
                .counted()
                .map_err(|e| SentinelError::etcd(format!("read {section}"), e))?;
            if i == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            for kv in resp.kvs() {
                let key = String::from_utf8_lossy(kv.key());
                view.put(&self.keys, &key, kv.value(), kv.create_revision(), kv.mod_revision())?;
            }
        }
        view.revision = revision;
        ETCD.observe("load", started.elapsed());
        Ok(view)
    }

    /// Commits `change` with its op-log entry in one transaction guarded by
    /// `fence`; returns the op's sequence number.
    pub async fn commit(&self, fence: &Fence, change: Change) -> Result<u64> {
        self.commit_at(fence, change).await.map(|(seq, _)| seq)
    }

    /// Like [`Store::commit`], also returning the etcd revision the change
    /// was written at (the mod revision of every key it put).
    pub async fn commit_at(&self, fence: &Fence, change: Change) -> Result<(u64, i64)> {
        let mut client = self.client.clone();
        let counter = self.keys.ops_counter();
        let _serialized = self.commit_lock.lock().await;
        for _ in 0..COMMIT_ATTEMPTS {
            let current = client
                .get(counter.as_str(), None)
                .await
                .counted()
                .map_err(|e| SentinelError::etcd("read the op counter", e))?;
            let (seq, counter_cmp) = match current.kvs().first() {
                Some(kv) => {
                    let seq =
                        std::str::from_utf8(kv.value()).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| {
                            SentinelError::CorruptValue { key: counter.clone(), reason: "not a number".into() }
                        })?;
                    (seq, Compare::value(counter.as_str(), CompareOp::Equal, kv.value().to_vec()))
                }
                None => (1, Compare::create_revision(counter.as_str(), CompareOp::Equal, 0)),
            };
            let mut compares =
                vec![counter_cmp, Compare::create_revision(fence.key.clone(), CompareOp::Equal, fence.revision)];
            compares.extend(
                change.require_absent.iter().map(|k| Compare::create_revision(k.as_str(), CompareOp::Equal, 0)),
            );
            compares.extend(
                change
                    .require_mod_revision
                    .iter()
                    .map(|(k, r)| Compare::mod_revision(k.as_str(), CompareOp::Equal, *r)),
            );

            let op = OpRecord {
                seq,
                at_ms: crate::model::now_ms(),
                sentinel: self.sentinel_id.clone(),
                kind: change.kind.clone(),
                detail: change.detail.clone(),
            };
            let mut ops: Vec<TxnOp> = change
                .puts
                .iter()
                .map(|(k, v, lease)| TxnOp::put(k.as_str(), v.as_str(), lease.map(|l| PutOptions::new().with_lease(l))))
                .collect();
            ops.extend(
                change
                    .deletes
                    .iter()
                    .map(|(k, prefix)| TxnOp::delete(k.as_str(), prefix.then(|| DeleteOptions::new().with_prefix()))),
            );
            ops.push(TxnOp::put(self.keys.op(seq), serde_json::to_string(&op).unwrap_or_default(), None));
            ops.push(TxnOp::put(counter.as_str(), (seq + 1).to_string(), None));

            let failure = vec![TxnOp::get(counter.as_str(), None), TxnOp::get(fence.key.clone(), None)];
            let txn = Txn::new().when(compares).and_then(ops).or_else(failure);
            let started = std::time::Instant::now();
            let resp = client
                .txn(txn)
                .await
                .counted()
                .map_err(|e| SentinelError::etcd(format!("commit {}", change.kind), e))?;
            ETCD.observe("commit", started.elapsed());
            if resp.succeeded() {
                tracing::info!(seq, kind = %change.kind, detail = %change.detail, "committed metadata change");
                if seq % TRIM_EVERY == 0 && seq > MAX_OPS {
                    self.trim_ops(seq - MAX_OPS).await;
                }
                return Ok((seq, resp.header().map_or(0, |h| h.revision())));
            }
            // Work out which compare failed from the failure branch's reads.
            let gets: Vec<_> = resp
                .op_responses()
                .into_iter()
                .filter_map(|r| if let TxnOpResponse::Get(g) = r { Some(g) } else { None })
                .collect();
            let fence_ok =
                gets.get(1).and_then(|g| g.kvs().first()).is_some_and(|kv| kv.create_revision() == fence.revision);
            if !fence_ok {
                return Err(SentinelError::NotLeader { leader: None });
            }
            let counter_now = gets.first().and_then(|g| g.kvs().first()).map(|kv| kv.value().to_vec());
            let counter_moved = match current.kvs().first() {
                Some(kv) => counter_now.as_deref() != Some(kv.value()),
                None => counter_now.is_some(),
            };
            if !counter_moved {
                return Err(SentinelError::Conflict(format!("{}: {}", change.kind, change.detail)));
            }
            // Someone else committed in between (a leader change): retry on the new counter.
        }
        Err(SentinelError::Contended(format!("{}: the op counter kept moving", change.kind)))
    }

    /// Deletes op-log entries below `below`.
    async fn trim_ops(&self, below: u64) {
        let mut client = self.client.clone();
        let options = DeleteOptions::new().with_range(self.keys.op(below));
        if let Err(e) = client.delete(self.keys.op(0), Some(options)).await {
            tracing::warn!(error = %e, "could not trim the op log");
        }
    }

    /// The op log, in sequence order.
    pub async fn ops(&self) -> Result<Vec<OpRecord>> {
        let mut client = self.client.clone();
        let resp = client
            .get(self.keys.ops(), Some(GetOptions::new().with_prefix()))
            .await
            .counted()
            .map_err(|e| SentinelError::etcd("read the op log", e))?;
        resp.kvs()
            .iter()
            .map(|kv| {
                serde_json::from_slice(kv.value()).map_err(|e| SentinelError::CorruptValue {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }
}
