//! `goulette etcd backup|restore|clean`: the whole prefix to a file and back.
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

use std::collections::BTreeSet;
use std::path::Path;

use etcd_client::{Compare, CompareOp, DeleteOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use goulette_metadata::keys::Keys;

use super::{AdminError, EtcdAdmin, Result, blocking};

/// How far a restore advances the producer-id counter past its backed-up
/// value (see the module doc): more ids than a cluster hands out.
pub const PRODUCER_ID_RESTORE_JUMP: i64 = 1 << 40;

/// Most puts in one restore transaction (etcd's default `--max-txn-ops` is 128).
pub const RESTORE_TXN_PUTS: usize = 100;

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

impl EtcdAdmin {
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
}
