//! The durable engine on fjall 3 (an LSM-tree with a shared write-ahead journal).
//!
//! Layout: one fjall database per data directory. The fjall keyspace `ferrodyn.meta` holds
//! * `format-version` -> u64 big-endian [`FORMAT_VERSION`], written when the directory is new;
//!   opening a directory with a larger version fails with [`StorageError::UnsupportedFormat`];
//! * `ks:<logical name>` -> u64 big-endian id; the data of that keyspace lives in the fjall
//!   keyspace `k<id>`. The indirection lets logical names be any UTF-8 of any reasonable length.
//!
//! Invariants:
//! * **Atomicity**: a [`WriteBatch`] becomes one fjall batch: one journal record with a checksum,
//!   replayed whole or not at all on recovery; readers of scans/snapshots see it at once because
//!   fjall publishes the batch's sequence number only after applying all of it.
//! * **Group commit**: a `Sync` write commits its batch to the journal buffer and memtables,
//!   takes a ticket (a counter incremented *after* the commit returned), then waits until a sync
//!   covering its ticket completed. The first waiter that finds no sync in progress becomes the
//!   leader: it records `target = committed tickets`, syncs the journal (flush + fdatasync, under
//!   fjall's journal lock), then publishes `durable = target` and wakes everyone. Every batch with
//!   ticket <= target was committed before that sync started, hence is covered by it. Batches that
//!   arrive during a sync queue up and share the next one.
//! * A failed sync poisons fjall and is sticky here: every later durable write fails.
//! * **Keyspace DDL** is serialized by `ddl`. Creation creates the fjall keyspace first and then
//!   durably records the name; dropping durably removes the name first and then deletes the fjall
//!   keyspace. A crash in between leaves an unnamed `k<id>`, which is deleted on the next open.
//! * `handles` caches name -> fjall handle; it changes only under `ddl`.
//! * Point `get`s read the newest applied value; scans read through a fjall snapshot, so they
//!   never observe part of a batch.
//! * fjall runs background worker threads (flush/compaction; `min(cores, 4)` by default); this
//!   engine adds one thread that fsyncs `Buffered` writes every `background_sync_interval`.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::{
    check_keyspace_name, key_unstorable, range_is_empty, Durability, KeyspaceStats, Result,
    Snapshot, Storage, StorageError, WriteBatch,
};

/// On-disk format version written by this build.
pub const FORMAT_VERSION: u64 = 1;

const META_KEYSPACE: &str = "ferrodyn.meta";
const FORMAT_KEY: &[u8] = b"format-version";
const NAME_PREFIX: &[u8] = b"ks:";

/// Which system call makes the journal durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// `fdatasync`: sufficient because fjall preallocates journal files (their size does not
    /// change on append) and fsyncs them fully when they are created and rotated.
    SyncData,
    /// `fsync` (data and metadata).
    SyncAll,
}

/// Tuning of [`FjallStorage`].
#[derive(Clone, Debug)]
pub struct FjallOptions {
    /// Block cache capacity in bytes (fjall recommends 20-25% of RAM, more if data fits).
    pub cache_bytes: u64,
    /// fjall flush/compaction worker threads; `None` = fjall's default (`min(cores, 4)`).
    pub worker_threads: Option<usize>,
    /// Sync call used for durable writes.
    pub sync_mode: SyncMode,
    /// How often `Buffered` writes are fsynced in the background.
    pub background_sync_interval: Duration,
}

impl Default for FjallOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 64 * 1024 * 1024,
            worker_threads: None,
            sync_mode: SyncMode::SyncData,
            background_sync_interval: Duration::from_millis(500),
        }
    }
}

fn engine_err(e: fjall::Error) -> StorageError {
    match e {
        fjall::Error::Io(io) => StorageError::Io(io),
        fjall::Error::JournalRecovery(_)
        | fjall::Error::Unrecoverable
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::Decompress(_)
        | fjall::Error::InvalidVersion(_) => StorageError::Corrupt(format!("{e:?}")),
        other => StorageError::Engine(format!("{other:?}")),
    }
}

/// Memtable budget per keyspace. Every table and index is a keyspace, so fjall's default
/// (64 MiB each) would let memory grow with the number of tables; 8 MiB keeps it bounded while
/// leaving writes batched enough for the LSM.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}

/// How long a sync leader waits at most for in-flight commits to join its fsync.
const GATHER_WINDOW: std::time::Duration = std::time::Duration::from_micros(300);

#[derive(Default)]
struct SyncState {
    /// Highest ticket known durable.
    durable: u64,
    /// A leader is syncing right now.
    syncing: bool,
    /// Sticky failure of a previous sync.
    failed: Option<String>,
}

struct Inner {
    db: Database,
    meta: Keyspace,
    handles: RwLock<HashMap<String, Keyspace>>,
    /// Serializes keyspace DDL; holds the next free keyspace id.
    ddl: Mutex<u64>,
    persist_mode: PersistMode,
    /// Tickets handed out to committed `Sync` batches.
    committed: AtomicU64,
    /// `Sync` writers between the start of their commit and taking their ticket. A sync leader
    /// lets them finish first, so that writers that queued behind the previous fsync (fjall holds
    /// its journal lock while syncing) share the next one instead of each waiting a full round.
    committing: AtomicU64,
    sync: Mutex<SyncState>,
    synced: Condvar,
    fsyncs: AtomicU64,
    /// `Buffered` writes happened since the last background sync.
    dirty: AtomicBool,
    stop: Mutex<bool>,
    stop_cv: Condvar,
}

/// Durable [`Storage`] on fjall. Opening the same directory twice (even from two processes)
/// fails: fjall holds a lock file.
pub struct FjallStorage {
    inner: Arc<Inner>,
    syncer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FjallStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStorage")
            .field("keyspaces", &self.inner.handles.read().len())
            .field("fsyncs", &self.inner.fsyncs.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn name_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(NAME_PREFIX.len() + name.len());
    k.extend_from_slice(NAME_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

fn decode_u64(bytes: &[u8], what: &str) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("{what}: expected 8 bytes")))?;
    Ok(u64::from_be_bytes(arr))
}

fn internal_name(id: u64) -> String {
    format!("k{id}")
}

fn parse_internal_name(name: &str) -> Option<u64> {
    name.strip_prefix('k')?.parse().ok()
}

impl FjallStorage {
    /// Opens (or creates) the data directory at `path` with default options.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, FjallOptions::default())
    }

    /// Opens (or creates) the data directory at `path`.
    pub fn open_with(path: &Path, options: FjallOptions) -> Result<Self> {
        let mut builder = Database::builder(path)
            .cache_size(options.cache_bytes)
            // Batches are flushed to the OS / synced by this engine, not by fjall.
            .manual_journal_persist(true);
        if let Some(n) = options.worker_threads {
            builder = builder.worker_threads(n.max(1));
        }
        let db = builder.open().map_err(engine_err)?;

        let others: Vec<String> = db
            .list_keyspace_names()
            .iter()
            .map(|n| n.to_string())
            .filter(|n| n != META_KEYSPACE)
            .collect();
        let meta = db
            .keyspace(META_KEYSPACE, keyspace_options)
            .map_err(engine_err)?;
        match meta.get(FORMAT_KEY).map_err(engine_err)? {
            Some(v) => {
                let found = decode_u64(&v, "format version")?;
                if found > FORMAT_VERSION {
                    return Err(StorageError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
                if found == 0 {
                    return Err(StorageError::Corrupt("format version 0".into()));
                }
            }
            None => {
                let meta_empty = meta.is_empty().map_err(engine_err)?;
                if !others.is_empty() || !meta_empty {
                    return Err(StorageError::Corrupt(
                        "directory holds data but no Ferrodyn format version".into(),
                    ));
                }
                meta.insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes())
                    .map_err(engine_err)?;
                db.persist(PersistMode::SyncAll).map_err(engine_err)?;
            }
        }

        // Load the name mapping and the handles.
        let mut handles = HashMap::new();
        let mut referenced = std::collections::HashSet::new();
        let mut max_id = 0u64;
        for guard in meta.prefix(NAME_PREFIX) {
            let (k, v) = guard.into_inner().map_err(engine_err)?;
            let name = std::str::from_utf8(&k[NAME_PREFIX.len()..])
                .map_err(|_| StorageError::Corrupt("keyspace name is not UTF-8".into()))?
                .to_owned();
            let id = decode_u64(&v, "keyspace id")?;
            let internal = internal_name(id);
            if !db.keyspace_exists(&internal) {
                tracing::warn!(keyspace = %name, "keyspace data missing; recreating it empty");
            }
            let handle = db
                .keyspace(&internal, keyspace_options)
                .map_err(engine_err)?;
            referenced.insert(id);
            max_id = max_id.max(id);
            handles.insert(name, handle);
        }
        // Delete keyspaces left unnamed by a crash during create/drop.
        for other in &others {
            match parse_internal_name(other) {
                Some(id) => {
                    max_id = max_id.max(id);
                    if !referenced.contains(&id) {
                        let h = db.keyspace(other, keyspace_options).map_err(engine_err)?;
                        db.delete_keyspace(h).map_err(engine_err)?;
                    }
                }
                None => tracing::warn!(keyspace = %other, "ignoring unknown fjall keyspace"),
            }
        }

        let inner = Arc::new(Inner {
            db,
            meta,
            handles: RwLock::new(handles),
            ddl: Mutex::new(max_id + 1),
            persist_mode: match options.sync_mode {
                SyncMode::SyncData => PersistMode::SyncData,
                SyncMode::SyncAll => PersistMode::SyncAll,
            },
            committed: AtomicU64::new(0),
            committing: AtomicU64::new(0),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            stop: Mutex::new(false),
            stop_cv: Condvar::new(),
        });

        let bg = Arc::clone(&inner);
        let interval = options.background_sync_interval;
        let syncer = std::thread::Builder::new()
            .name("ferrodyn-sync".into())
            .spawn(move || bg.background_sync(interval))?;

        Ok(Self {
            inner,
            syncer: Some(syncer),
        })
    }
}

impl Inner {
    fn handle(&self, keyspace: &str) -> Result<Keyspace> {
        self.handles
            .read()
            .get(keyspace)
            .cloned()
            .ok_or_else(|| StorageError::KeyspaceNotFound(keyspace.to_owned()))
    }

    fn persist(&self, mode: PersistMode) -> Result<()> {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.db.persist(mode).map_err(engine_err)
    }

    /// Waits until the batch holding `ticket` is durable, leading a sync if none is running.
    fn wait_durable(&self, ticket: u64) -> Result<()> {
        let mut st = self.sync.lock();
        loop {
            if st.durable >= ticket {
                return Ok(());
            }
            if let Some(e) = &st.failed {
                return Err(StorageError::Engine(format!(
                    "journal sync failed earlier: {e}"
                )));
            }
            if st.syncing {
                self.synced.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let deadline = std::time::Instant::now() + GATHER_WINDOW;
            while self.committing.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline
            {
                std::thread::yield_now();
            }
            // Every ticket <= target belongs to a batch whose commit already returned.
            let target = self.committed.load(Ordering::SeqCst);
            let res =
                parking_lot::MutexGuard::unlocked(&mut st, || self.persist(self.persist_mode));
            st.syncing = false;
            match res {
                Ok(()) => st.durable = st.durable.max(target),
                Err(e) => st.failed = Some(e.to_string()),
            }
            self.synced.notify_all();
        }
    }

    /// Commits `batch` to fjall and, for `Sync`, waits for group commit.
    fn commit(&self, batch: fjall::OwnedWriteBatch, durability: Durability) -> Result<()> {
        match durability {
            Durability::Sync => {
                self.committing.fetch_add(1, Ordering::SeqCst);
                let res = batch.commit().map_err(engine_err);
                let ticket = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
                self.committing.fetch_sub(1, Ordering::SeqCst);
                res?;
                self.wait_durable(ticket)
            }
            Durability::Buffered => {
                batch
                    .durability(Some(PersistMode::Buffer))
                    .commit()
                    .map_err(engine_err)?;
                self.dirty.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    fn background_sync(&self, interval: Duration) {
        let mut stop = self.stop.lock();
        while !*stop {
            self.stop_cv.wait_for(&mut stop, interval);
            if self.dirty.swap(false, Ordering::AcqRel) {
                let res = parking_lot::MutexGuard::unlocked(&mut stop, || {
                    self.persist(self.persist_mode)
                });
                if let Err(e) = res {
                    tracing::error!(error = %e, "background journal sync failed");
                }
            }
        }
    }
}

fn scan_fjall(
    snapshot: &fjall::Snapshot,
    ks: &Keyspace,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    reverse: bool,
    f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<()> {
    if range_is_empty(lower, upper) {
        return Ok(());
    }
    let iter = snapshot.range::<&[u8], _>(ks, (lower, upper));
    let mut visit = |guard: fjall::Guard| -> Result<bool> {
        let (k, v) = guard.into_inner().map_err(engine_err)?;
        Ok(f(&k, &v))
    };
    if reverse {
        for guard in iter.rev() {
            if !visit(guard)? {
                break;
            }
        }
    } else {
        for guard in iter {
            if !visit(guard)? {
                break;
            }
        }
    }
    Ok(())
}

impl Storage for FjallStorage {
    fn create_keyspace(&self, name: &str) -> Result<()> {
        check_keyspace_name(name)?;
        let inner = &*self.inner;
        if inner.handles.read().contains_key(name) {
            return Ok(());
        }
        let mut next_id = inner.ddl.lock();
        if inner.handles.read().contains_key(name) {
            return Ok(());
        }
        let id = *next_id;
        *next_id += 1;
        let handle = inner
            .db
            .keyspace(&internal_name(id), keyspace_options)
            .map_err(engine_err)?;
        let mut batch = inner.db.batch();
        batch.insert(&inner.meta, name_key(name), id.to_be_bytes());
        inner.commit(batch, Durability::Sync)?;
        inner.handles.write().insert(name.to_owned(), handle);
        Ok(())
    }

    fn drop_keyspace(&self, name: &str) -> Result<()> {
        let inner = &*self.inner;
        let _ddl = inner.ddl.lock();
        let Some(handle) = inner.handles.read().get(name).cloned() else {
            return Ok(());
        };
        let mut batch = inner.db.batch();
        batch.remove(&inner.meta, name_key(name));
        inner.commit(batch, Durability::Sync)?;
        inner.handles.write().remove(name);
        // Files are removed when the last handle (e.g. of a running scan) is dropped.
        inner.db.delete_keyspace(handle).map_err(engine_err)
    }

    fn keyspace_exists(&self, name: &str) -> bool {
        self.inner.handles.read().contains_key(name)
    }

    fn list_keyspaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.handles.read().keys().cloned().collect();
        names.sort();
        names
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ks = self.inner.handle(keyspace)?;
        if key_unstorable(key) {
            return Ok(None);
        }
        Ok(ks.get(key).map_err(engine_err)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let ks = self.inner.handle(keyspace)?;
        let snapshot = self.inner.db.snapshot();
        scan_fjall(&snapshot, &ks, lower, upper, reverse, f)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let inner = &*self.inner;
        let (names, ops) = batch.into_effective()?;
        let handles: Vec<Keyspace> = {
            let map = inner.handles.read();
            names
                .iter()
                .map(|n| {
                    map.get(n)
                        .cloned()
                        .ok_or_else(|| StorageError::KeyspaceNotFound(n.clone()))
                })
                .collect::<Result<_>>()?
        };
        let mut fb = fjall::OwnedWriteBatch::with_capacity(inner.db.clone(), ops.len());
        for op in ops {
            let Some(ks) = handles.get(op.ks) else {
                continue; // indices come from the batch's own name table
            };
            match op.value {
                Some(v) => fb.insert(ks, op.key, v),
                None => fb.remove(ks, op.key),
            }
        }
        inner.commit(fb, durability)
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        Box::new(FjallSnapshot {
            inner: Arc::clone(&self.inner),
            snapshot: self.inner.db.snapshot(),
        })
    }

    fn stats(&self, keyspace: &str) -> Result<KeyspaceStats> {
        let ks = self.inner.handle(keyspace)?;
        Ok(KeyspaceStats {
            approximate_keys: ks.approximate_len() as u64,
            approximate_bytes: ks.disk_space(),
        })
    }

    fn flush(&self) -> Result<()> {
        self.inner.dirty.store(false, Ordering::Release);
        self.inner.persist(PersistMode::SyncAll)
    }

    fn fsync_count(&self) -> u64 {
        self.inner.fsyncs.load(Ordering::Relaxed)
    }
}

impl Drop for FjallStorage {
    fn drop(&mut self) {
        *self.inner.stop.lock() = true;
        self.inner.stop_cv.notify_all();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
        if let Err(e) = self.inner.db.persist(PersistMode::SyncAll) {
            tracing::error!(error = %e, "final journal sync failed");
        }
    }
}

struct FjallSnapshot {
    inner: Arc<Inner>,
    snapshot: fjall::Snapshot,
}

impl Snapshot for FjallSnapshot {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ks = self.inner.handle(keyspace)?;
        if key_unstorable(key) {
            return Ok(None);
        }
        Ok(self
            .snapshot
            .get(&ks, key)
            .map_err(engine_err)?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let ks = self.inner.handle(keyspace)?;
        scan_fjall(&self.snapshot, &ks, lower, upper, reverse, f)
    }
}
