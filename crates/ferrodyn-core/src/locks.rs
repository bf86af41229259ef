//! Concurrency control of read-check-write sequences, on either kind of storage.
//!
//! On an embedded engine (one process owns the data) an item's read-check-write runs under
//! the item's lock stripe, an in-process mutex. On a shared engine (`Storage::shared`: a
//! database server several Ferrodyn nodes use at once) in-process locks protect nothing, so
//! the same sequence runs inside one storage [`Transaction`]: the item keys are locked in the
//! database and read there, and the batch is committed by that transaction.
//! [`ItemLocks`] hides the difference from the operations: they lock, read through the locks,
//! stage a batch, and commit through the locks.
//!
//! Invariants:
//! - stripes are taken in ascending order and each at most once; database locks on item keys
//!   are taken in ascending `(keyspace, key)` order in one call, before any other lock of the
//!   transaction (stream lanes), so concurrent writers cannot deadlock through our own locks;
//! - on a shared engine, a transaction also reads the catalog records of the tables it writes
//!   under a shared lock and compares them with this node's copy; if any differs, the node
//!   reloads its catalog and the operation runs again ([`Error::Retry`]), so no node writes
//!   through a table definition that another node has replaced. A schema change writes the
//!   catalog record, which waits for the writers holding the shared lock.
//! - [`Error::Retry`] never leaves the engine: [`Engine::retrying`] runs the operation again
//!   (with back-off) and, once its time is up, answers `TransactionConflictException`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_model::{Error, Item};
use ferrodyn_storage::{Storage, StorageError, Transaction, WriteBatch};
use parking_lot::{Mutex, MutexGuard};

use crate::stripes::{StripeGuards, Stripes};

use crate::table::TableDef;
use crate::{itemcodec, storage_err, Catalog, Engine, Table, CATALOG};

const LOCK_STRIPES: usize = 4096;

/// Key of the catalog row whose database lock serializes schema changes across nodes
/// (no table name is empty, so it never collides with a table's record).
const DDL_LOCK_KEY: &[u8] = b"\0ddl";

/// Counter (keyspace `catalog`) that every schema change on a shared engine adds 1 to, when it
/// releases the schema-change lock: nodes reload their catalog when it moves.
pub(crate) const SCHEMA_GENERATION: &[u8] = b"\0generation";

/// How long an operation on a shared engine is run again after conflicts before it gives up.
const RETRY_BUDGET: Duration = Duration::from_secs(10);

/// The item locks of one engine: stripes for embedded storage, transactions for shared.
pub(crate) struct Locks {
    stripes: Stripes<LOCK_STRIPES>,
    storage: Arc<dyn Storage>,
    catalog: Arc<Catalog>,
    shared: bool,
}

/// A locked `(keyspace, key)` and the value it had when locked.
type LockedValue = ((String, Vec<u8>), Option<Vec<u8>>);

/// Locks held on some items (and, on a shared engine, the transaction that holds them).
pub(crate) struct ItemLocks<'a> {
    _guards: StripeGuards<'a>,
    txn: Option<Box<dyn Transaction>>,
    /// On a shared engine: the values read when the keys were locked.
    read: Vec<LockedValue>,
    storage: &'a dyn Storage,
}

impl Locks {
    pub(crate) fn new(storage: Arc<dyn Storage>, catalog: Arc<Catalog>) -> Locks {
        Locks {
            stripes: Stripes::new(),
            shared: storage.shared(),
            storage,
            catalog,
        }
    }

    pub(crate) fn shared(&self) -> bool {
        self.shared
    }

    /// True if no read-check-write holds the stripe of this item now (embedded engines).
    pub(crate) fn stripe_idle(&self, table_id: &str, key: &[u8]) -> bool {
        self.stripes
            .idle(Stripes::<LOCK_STRIPES>::index(table_id, key))
    }

    /// Waits until no read-check-write holds the stripe of this item (embedded engines).
    pub(crate) fn wait_stripe(&self, table_id: &str, key: &[u8]) {
        self.stripes
            .wait(Stripes::<LOCK_STRIPES>::index(table_id, key));
    }

    /// Locks the items `(table, storage key)` for a read-check-write.
    pub(crate) fn lock(&self, items: &[(&Table, &[u8])]) -> Result<ItemLocks<'_>, Error> {
        self.lock_with(items, None)
    }

    /// [`Locks::lock`], and on a shared engine also `extra` (a key outside any table, locked
    /// in the same call and readable through [`ItemLocks::get`]).
    pub(crate) fn lock_with(
        &self,
        items: &[(&Table, &[u8])],
        extra: Option<(&str, &[u8])>,
    ) -> Result<ItemLocks<'_>, Error> {
        if !self.shared {
            let guards = if let [(t, k)] = items {
                self.stripes
                    .lock_one(Stripes::<LOCK_STRIPES>::index(&t.def.id, k))
            } else {
                self.stripes.lock_many(
                    items
                        .iter()
                        .map(|(t, k)| Stripes::<LOCK_STRIPES>::index(&t.def.id, k))
                        .collect(),
                )
            };
            return Ok(ItemLocks {
                _guards: guards,
                txn: None,
                read: Vec::new(),
                storage: &*self.storage,
            });
        }
        let mut names: Vec<&str> = items.iter().map(|(t, _)| t.def.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut keys: Vec<(&str, &[u8])> = items
            .iter()
            .map(|(t, k)| (t.def.keyspace.as_str(), *k))
            .chain(extra)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut txn = self.storage.begin().map_err(txn_err)?;
        let shared_keys: Vec<(&str, &[u8])> =
            names.iter().map(|n| (CATALOG, n.as_bytes())).collect();
        let (records, values) = txn.lock_with_shared(&shared_keys, &keys).map_err(txn_err)?;
        for (name, record) in names.iter().zip(&records) {
            if !self.catalog.matches(name, record.as_deref()) {
                drop(txn);
                self.catalog.refresh(&*self.storage)?;
                return Err(Error::Retry(format!(
                    "the definition of table {name} changed"
                )));
            }
        }
        Ok(ItemLocks {
            _guards: StripeGuards::None,
            txn: Some(txn),
            read: keys
                .iter()
                .map(|(ks, k)| (ks.to_string(), k.to_vec()))
                .zip(values)
                .collect(),
            storage: &*self.storage,
        })
    }

    /// Takes the cluster-wide schema-change lock (see [`Ddl`]).
    fn lock_ddl(&self) -> Result<Option<Box<dyn Transaction>>, Error> {
        if !self.shared {
            return Ok(None);
        }
        let mut txn = self.storage.begin().map_err(txn_err)?;
        txn.lock(&[(CATALOG, DDL_LOCK_KEY)]).map_err(txn_err)?;
        self.catalog.refresh(&*self.storage)?;
        Ok(Some(txn))
    }
}

impl ItemLocks<'_> {
    /// The current value of a locked key: read when it was locked (shared engines), or now,
    /// under its stripe (embedded engines).
    pub(crate) fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        if self.txn.is_some() {
            if let Some((_, v)) = self
                .read
                .iter()
                .find(|((ks, k), _)| ks == keyspace && k == key)
            {
                return Ok(v.clone());
            }
        }
        self.storage.get(keyspace, key).map_err(storage_err)
    }

    /// The item stored at `key` of table `def` (locked).
    pub(crate) fn item(&self, def: &TableDef, key: &[u8]) -> Result<Option<Item>, Error> {
        match self.get(&def.keyspace, key)? {
            Some(raw) => Ok(Some(itemcodec::decode_item(&raw)?)),
            None => Ok(None),
        }
    }

    /// The size of the item stored at `key` of table `def` (locked), from its stored form.
    pub(crate) fn item_size(&self, def: &TableDef, key: &[u8]) -> Result<Option<usize>, Error> {
        let raw = self.get(&def.keyspace, key)?;
        raw.as_deref().map(itemcodec::stored_size).transpose()
    }

    /// The transaction holding the locks (shared engines).
    pub(crate) fn txn(&mut self) -> Option<&mut Box<dyn Transaction>> {
        self.txn.as_mut()
    }

    /// Commits `batch` through the transaction (shared engines): durable when it returns.
    /// `None` on embedded engines, where the caller commits the batch itself while it still
    /// holds the stripes.
    pub(crate) fn commit_shared(&mut self, batch: WriteBatch) -> Option<Result<(), Error>> {
        let txn = self.txn.take()?;
        Some(txn.commit(batch).map_err(txn_err))
    }
}

/// Maps a storage error met inside a transaction: a lost race is run again.
pub(crate) fn txn_err(e: StorageError) -> Error {
    match e {
        StorageError::Conflict(m) => Error::Retry(m),
        other => storage_err(other),
    }
}

/// Serializes schema changes: an in-process mutex, and on a shared engine a database lock
/// that every node's schema changes take, after which the node's catalog is reloaded so the
/// change starts from the cluster's current definitions.
pub(crate) struct Ddl {
    mutex: Mutex<()>,
    locks: Arc<Locks>,
}

/// A held schema-change lock. On a shared engine, dropping it reloads the catalog (so this
/// node's copy includes its own change) before the database lock is released.
pub(crate) struct DdlGuard<'a> {
    _local: MutexGuard<'a, ()>,
    txn: Option<Box<dyn Transaction>>,
    locks: &'a Locks,
}

impl Ddl {
    pub(crate) fn new(locks: Arc<Locks>) -> Ddl {
        Ddl {
            mutex: Mutex::new(()),
            locks,
        }
    }

    pub(crate) fn lock(&self) -> Result<DdlGuard<'_>, Error> {
        let local = self.mutex.lock();
        let txn = self.locks.lock_ddl()?;
        Ok(DdlGuard {
            _local: local,
            txn,
            locks: &self.locks,
        })
    }
}

impl Drop for DdlGuard<'_> {
    fn drop(&mut self) {
        if let Some(mut txn) = self.txn.take() {
            if let Err(e) = self.locks.catalog.refresh(&*self.locks.storage) {
                tracing::warn!(error = %e, "reloading the catalog after a schema change failed");
            }
            // Tells the other nodes' cluster sync to reload (`Engine::sync_cluster`).
            txn.add(CATALOG, SCHEMA_GENERATION, 1);
            if let Err(e) = txn.commit(WriteBatch::default()) {
                tracing::warn!(error = %e, "announcing a schema change failed");
            }
        }
    }
}

impl Engine {
    /// Locks one item for a read-check-write.
    pub(crate) fn lock_item(&self, table: &Table, key: &[u8]) -> Result<ItemLocks<'_>, Error> {
        self.locks.lock(&[(table, key)])
    }

    /// Locks several items (table, storage key) at once.
    pub(crate) fn lock_items(&self, items: &[(&Table, &[u8])]) -> Result<ItemLocks<'_>, Error> {
        self.locks.lock(items)
    }

    /// Runs `f` on `input`; on a shared engine, runs it again with a copy of `input` while it
    /// fails with [`Error::Retry`], backing off, for at most [`RETRY_BUDGET`].
    pub(crate) fn retrying<I: Clone, O>(
        &self,
        input: I,
        f: impl Fn(&Self, I) -> Result<O, Error>,
    ) -> Result<O, Error> {
        if !self.locks.shared() {
            return f(self, input);
        }
        let start = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            match f(self, input.clone()) {
                Err(Error::Retry(reason)) => {
                    if start.elapsed() >= RETRY_BUDGET {
                        tracing::warn!(%reason, attempts = attempt + 1, "giving up after conflicts");
                        return Err(Error::TransactionConflict(
                            "Transaction is ongoing for the item".into(),
                        ));
                    }
                    backoff(attempt);
                    attempt = attempt.saturating_add(1);
                }
                other => return other,
            }
        }
    }
}

/// Sleeps before attempt `attempt + 1`: exponential from 1 ms, capped at 64 ms, with jitter.
fn backoff(attempt: u32) {
    use std::hash::BuildHasher;
    let cap_us = 1000u64 << attempt.min(6);
    // Each RandomState is freshly keyed: a cheap source of jitter.
    let jitter = std::collections::hash_map::RandomState::new().hash_one(attempt) % cap_us;
    std::thread::sleep(Duration::from_micros(cap_us / 2 + jitter / 2));
}
