//! Ordered key-value storage for Ferrodyn: a narrow, engine-agnostic [`Storage`] trait and two
//! engines, [`FjallStorage`] (durable, LSM-tree on disk) and [`MemoryStorage`] (in-process,
//! for `--in-memory` and tests).
//!
//! The model is a set of named *keyspaces*, each an ordered map from non-empty byte keys to byte
//! values, compared lexicographically as unsigned bytes. The layer above stores one keyspace per
//! table, per index, plus a catalog and a stream log, using order-preserving key encodings.
//!
//! # Invariants every engine upholds
//!
//! * **Ordering**: [`Storage::scan`] visits keys in strictly ascending (or, with `reverse`,
//!   strictly descending) byte order, each live key once, and its cost is proportional to the
//!   number of entries visited, never to the size of the keyspace.
//! * **Atomicity**: [`Storage::write`] applies every operation of a [`WriteBatch`] or none of
//!   them, across keyspaces, and also across a crash of the process or the machine. A scan or a
//!   [`Snapshot`] never observes part of a batch. Within one batch a later operation on the
//!   same `(keyspace, key)` overrides an earlier one.
//! * **Validation before effect**: a batch naming a missing keyspace or holding an invalid key
//!   (empty, or longer than [`MAX_KEY_LEN`]) is rejected as a whole before anything is applied.
//! * **Read-your-writes**: once `write` returns `Ok`, every later `get`/`scan`/`snapshot` on the
//!   same storage sees the batch.
//! * **Durability**: with [`Durability::Sync`], `write` returns only after the batch is on stable
//!   storage; concurrent callers share fsyncs (group commit). With [`Durability::Buffered`] the
//!   batch survives a crash of the process but may be lost (atomically, never partially) on a
//!   power failure until the next background sync or [`Storage::flush`].
//! * **Deferred durability**: [`Storage::commit`] applies a batch like `write` and returns a
//!   [`CommitTicket`] instead of waiting; [`Storage::wait_durable`] / [`Storage::durable`] wait
//!   for it. Durability follows commit order: once a ticket is durable, so is every batch whose
//!   commit returned before that ticket's commit started, and a batch that became visible to a
//!   reader before that reader's own commit is durable no later than the reader's ticket.
//! * **Faults**: an engine that cannot write (a full disk, a failed journal write or sync)
//!   refuses writes with [`StorageError::Refused`] and says why in [`Storage::write_fault`];
//!   reads go on. A write is never acknowledged (`write` returning `Ok`, a ticket found
//!   durable) unless it is on stable storage.
//! * **Callbacks must not re-enter**: `scan` callbacks run while the engine may hold internal
//!   locks (the memory engine holds a read lock). A callback must not call back into the same
//!   storage (no `write`, `create_keyspace`, ...); collect what it needs and act afterwards.
//!
//! Keyspace names are arbitrary non-empty UTF-8 strings of at most [`MAX_KEYSPACE_NAME_LEN`]
//! bytes; the fjall engine maps them to internal names, so no character restrictions apply.
#![forbid(unsafe_code)]

mod cache;
#[cfg(test)]
mod cache_tests;
#[cfg(feature = "test-suite")]
pub mod conformance;
pub mod crash;
mod durable;
#[cfg(test)]
mod durable_tests;
mod fjall_engine;
mod group;
mod journal_check;
mod memory;
mod sync;

use std::ops::Bound;
use std::sync::atomic::AtomicU64;

pub use cache::{CachedStorage, GROUP_PREFIX, MAX_GROUP_BYTES};
pub use durable::{CommitTicket, DurableFuture};
pub use fjall_engine::{
    FjallOptions, FjallStorage, SyncMode, DEFAULT_MIN_FREE_BYTES, FORMAT_VERSION,
    SPACE_CHECK_INTERVAL,
};
pub use journal_check::JournalDamage;
pub use memory::MemoryStorage;

/// Longest accepted key, in bytes (limit of the on-disk engine, applied to both engines).
pub const MAX_KEY_LEN: usize = 65_535;
/// Longest accepted keyspace name, in bytes.
pub const MAX_KEYSPACE_NAME_LEN: usize = 4_096;

/// Result type of every storage operation.
pub type Result<T> = std::result::Result<T, StorageError>;

/// Errors reported by a storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system I/O error.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory is damaged or is not a Ferrodyn data directory.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// The data directory was written by a newer, unknown format version.
    #[error("unsupported storage format version {found}; this build supports up to {supported}")]
    UnsupportedFormat {
        /// Version found on disk.
        found: u64,
        /// Highest version this build understands.
        supported: u64,
    },
    /// The named keyspace does not exist.
    #[error("keyspace not found: {0}")]
    KeyspaceNotFound(String),
    /// A caller-supplied argument is invalid (empty or oversized key, bad keyspace name).
    #[error("invalid storage argument: {0}")]
    InvalidArgument(String),
    /// Any other engine failure (including a failed fsync, after which the engine refuses writes).
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A [`Transaction`] lost to a concurrent one (a serialization failure or a deadlock, as
    /// the database reported it). Nothing of it was applied; the caller runs it again.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    /// The engine cannot be reached (a database server that is down, restarting or failing
    /// over). Reads and writes that get this changed nothing, except a commit, whose outcome
    /// is then unknown.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The engine refuses writes for now ([`Storage::write_fault`]): a write refused before it
    /// was applied changed nothing; a write whose durability wait gets this may or may not be
    /// present after a restart, and was never acknowledged.
    #[error("{0}")]
    Refused(WriteFault),
}

impl StorageError {
    /// True if the error is the operating system's "no space left on device" (ENOSPC).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            StorageError::Refused(WriteFault::DiskFull(_)) => true,
            _ => false,
        }
    }
}

/// Why an engine refuses writes ([`Storage::write_fault`]). The message is meant for clients
/// and operators alike: it names the cause and what ends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// The data directory's filesystem is full (its free space fell below the engine's
    /// reserve): writes resume by themselves once space is freed. Reads go on.
    DiskFull(String),
    /// A journal write or sync failed, so the engine cannot prove later writes durable: every
    /// write is refused until the server restarts and recovers from its journal. Reads go on,
    /// from what the engine holds.
    Failed(String),
}

impl WriteFault {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            WriteFault::DiskFull(m) | WriteFault::Failed(m) => m,
        }
    }
}

impl std::fmt::Display for WriteFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// A data file that fails verification ([`Storage::verify_files`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDamage {
    /// The file.
    pub file: std::path::PathBuf,
    /// The logical keyspace the file belongs to, when known.
    pub keyspace: Option<String>,
    /// Offset of the damage in the file, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for FileDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(o) = self.offset {
            write!(f, " at offset {o}")?;
        }
        if let Some(k) = &self.keyspace {
            write!(f, " (keyspace {k})")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// How durable a write must be before [`Storage::write`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Acknowledged only after the data is on stable storage (fsync), via group commit.
    Sync,
    /// Applied and handed to the OS (survives a process crash); fsynced later in the background.
    Buffered,
}

/// Cheap, engine-independent statistics of a keyspace; both numbers are approximate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyspaceStats {
    /// Approximate number of keys (may count recently deleted or overwritten entries).
    pub approximate_keys: u64,
    /// Approximate size in bytes (on-disk size for fjall; keys + values for the memory engine).
    pub approximate_bytes: u64,
}

/// Figures of an engine's internals, read when metrics are scraped ([`Storage::storage_stats`]).
/// `None`: the engine has no such thing (the in-memory engine has no memtables, journals or
/// fsyncs; an engine without a read cache has no hits). Counts are since the storage opened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageStats {
    /// Bytes held in memtables, active and sealed, over all keyspaces.
    pub memtable_bytes: Option<u64>,
    /// Sealed memtables waiting to be flushed to disk, over all keyspaces.
    pub sealed_memtables: Option<u64>,
    /// Flush tasks queued.
    pub pending_flushes: Option<u64>,
    /// Journal files on disk (more than one: memtables not yet flushed hold older journals).
    pub journals: Option<u64>,
    /// Bytes of those journal files.
    pub journal_bytes: Option<u64>,
    /// Compactions running now.
    pub active_compactions: Option<u64>,
    /// Compactions finished.
    pub compactions: Option<u64>,
    /// Disk segments (sorted table files), over all keyspaces.
    pub segments: Option<u64>,
    /// Bytes in the engine's block cache, and its capacity.
    pub block_cache_bytes: Option<u64>,
    pub block_cache_capacity_bytes: Option<u64>,
    /// Reads the read cache ([`CachedStorage`]) answered from memory, and reads it passed to
    /// the engine; bytes it holds.
    pub read_cache_hits: Option<u64>,
    pub read_cache_misses: Option<u64>,
    pub read_cache_bytes: Option<u64>,
    /// Seconds each journal fsync of group commit took.
    pub fsync_seconds: Option<HistogramStats>,
    /// Durable batches each group-commit fsync covered.
    pub group_commit_batches: Option<HistogramStats>,
}

/// A histogram: `counts[i]` observations at most `bounds[i]` (and above `bounds[i - 1]`),
/// `counts[bounds.len()]` above the last bound.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramStats {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: f64,
}

impl HistogramStats {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A fixed-bucket histogram of relaxed atomics, recorded by one thread and read by scrapes.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    bounds: &'static [f64],
    counts: Box<[AtomicU64]>,
    /// Sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

impl AtomicHistogram {
    pub(crate) fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub(crate) fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = self.sum.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |s| Some((f64::from_bits(s) + v).to_bits()),
        );
    }

    pub(crate) fn stats(&self) -> HistogramStats {
        HistogramStats {
            bounds: self.bounds.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                .collect(),
            sum: f64::from_bits(self.sum.load(std::sync::atomic::Ordering::Relaxed)),
        }
    }
}

/// One operation of a [`WriteBatch`], as seen by [`WriteBatch::iter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// Target keyspace.
    pub keyspace: &'a str,
    /// Key.
    pub key: &'a [u8],
    /// `Some(value)` for a put, `None` for a delete.
    pub value: Option<&'a [u8]>,
}

#[derive(Clone, Debug)]
pub(crate) struct Op {
    /// Index into `WriteBatch::keyspaces`.
    pub(crate) ks: usize,
    pub(crate) key: Vec<u8>,
    /// `None` is a delete.
    pub(crate) value: Option<Vec<u8>>,
}

/// Byte strings accepted by [`WriteBatch::put`]/[`WriteBatch::delete`]: owned buffers are
/// moved without copying, borrowed ones are copied.
pub trait IntoBytes {
    /// The bytes as an owned vector.
    fn into_bytes(self) -> Vec<u8>;
}

impl IntoBytes for Vec<u8> {
    fn into_bytes(self) -> Vec<u8> {
        self
    }
}
impl IntoBytes for &Vec<u8> {
    fn into_bytes(self) -> Vec<u8> {
        self.clone()
    }
}
impl IntoBytes for &[u8] {
    fn into_bytes(self) -> Vec<u8> {
        self.to_vec()
    }
}
impl<const N: usize> IntoBytes for &[u8; N] {
    fn into_bytes(self) -> Vec<u8> {
        self.to_vec()
    }
}
impl<const N: usize> IntoBytes for [u8; N] {
    fn into_bytes(self) -> Vec<u8> {
        self.to_vec()
    }
}
impl IntoBytes for Box<[u8]> {
    fn into_bytes(self) -> Vec<u8> {
        self.into_vec()
    }
}
impl IntoBytes for String {
    fn into_bytes(self) -> Vec<u8> {
        String::into_bytes(self)
    }
}
impl IntoBytes for &String {
    fn into_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
impl IntoBytes for &str {
    fn into_bytes(self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

/// An ordered list of puts and deletes applied atomically by [`Storage::write`].
///
/// Building a batch never fails and never touches the engine; validation happens in `write`.
/// Keyspace names are stored once per distinct name.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    keyspaces: Vec<String>,
    ops: Vec<Op>,
    /// The engine's [`Storage::generation`] the batch was staged against, if the stager
    /// relied on state read before it (see [`WriteBatch::staged_at`]).
    generation: Option<u64>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `ops` operations.
    pub fn with_capacity(ops: usize) -> Self {
        Self {
            keyspaces: Vec::new(),
            ops: Vec::with_capacity(ops),
            generation: None,
        }
    }

    /// Marks the batch as staged against the engine's store of `generation`
    /// ([`Storage::generation`]): an engine that has reopened its store since refuses it
    /// (with [`WriteFault::DiskFull`]: the reopen follows a full disk), so nothing staged from
    /// state that the reopen may have lost (cached sequence numbers, chain heads) is written
    /// into the new store.
    pub fn staged_at(&mut self, generation: u64) {
        self.generation = Some(generation);
    }

    /// The generation given to [`WriteBatch::staged_at`], if any.
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    fn keyspace_index(&mut self, keyspace: &str) -> usize {
        // Batches touch few keyspaces; search the most recent first.
        if let Some(i) = self.keyspaces.iter().rposition(|k| k == keyspace) {
            return i;
        }
        self.keyspaces.push(keyspace.to_owned());
        self.keyspaces.len() - 1
    }

    /// Sets `key` to `value` in `keyspace`. Owned `Vec<u8>`s are moved, borrowed bytes copied.
    pub fn put(&mut self, keyspace: &str, key: impl IntoBytes, value: impl IntoBytes) {
        let ks = self.keyspace_index(keyspace);
        self.ops.push(Op {
            ks,
            key: key.into_bytes(),
            value: Some(value.into_bytes()),
        });
    }

    /// Removes `key` from `keyspace` (a no-op if absent).
    pub fn delete(&mut self, keyspace: &str, key: impl IntoBytes) {
        let ks = self.keyspace_index(keyspace);
        self.ops.push(Op {
            ks,
            key: key.into_bytes(),
            value: None,
        });
    }

    /// Number of operations (before de-duplication).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = BatchOp<'_>> + '_ {
        self.ops.iter().map(|op| BatchOp {
            keyspace: self.keyspaces.get(op.ks).map_or("", String::as_str),
            key: &op.key,
            value: op.value.as_deref(),
        })
    }

    /// Distinct keyspace names referenced by the batch.
    pub fn keyspaces(&self) -> &[String] {
        &self.keyspaces
    }

    /// Validates every key and returns the effective operations: for each `(keyspace, key)`
    /// only the last operation survives, in their original relative order.
    pub(crate) fn into_effective(self) -> Result<(Vec<String>, Vec<Op>)> {
        for op in &self.ops {
            check_key(&op.key)?;
        }
        let WriteBatch { keyspaces, ops, .. } = self;
        if ops.len() <= 1 {
            return Ok((keyspaces, ops));
        }
        let mut seen = std::collections::HashSet::with_capacity(ops.len());
        let mut keep = vec![false; ops.len()];
        for (i, op) in ops.iter().enumerate().rev() {
            keep[i] = seen.insert((op.ks, op.key.as_slice()));
        }
        let effective = ops
            .into_iter()
            .zip(keep)
            .filter_map(|(op, k)| k.then_some(op))
            .collect();
        Ok((keyspaces, effective))
    }
}

/// A point-in-time, read-only view across all keyspaces.
///
/// It sees exactly the batches whose `write` completed before [`Storage::snapshot`] returned,
/// and none of the later ones. Keep snapshots short-lived: they pin old versions in memory
/// (memory engine) or delay garbage collection (fjall). A keyspace dropped after the snapshot
/// was taken reads as [`StorageError::KeyspaceNotFound`]; one created afterwards reads as empty.
pub trait Snapshot: Send + Sync {
    /// Value of `key` at the snapshot's instant.
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Same contract as [`Storage::scan`], at the snapshot's instant.
    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()>;
}

/// The storage interface used by the engine above. See the crate docs for the invariants.
pub trait Storage: Send + Sync + 'static {
    /// Creates the keyspace if missing (idempotent). Durable when it returns.
    fn create_keyspace(&self, name: &str) -> Result<()>;

    /// Drops a keyspace and all its data (idempotent: dropping a missing keyspace is `Ok`).
    /// Durable when it returns; space is reclaimed once in-flight readers finish.
    fn drop_keyspace(&self, name: &str) -> Result<()>;

    /// True if the keyspace exists.
    fn keyspace_exists(&self, name: &str) -> bool;

    /// Names of all keyspaces, sorted.
    fn list_keyspaces(&self) -> Vec<String>;

    /// Latest value of `key`, or `None`.
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Ordered range scan over the keys between `lower` and `upper`, forward or reverse.
    /// The callback gets each `(key, value)` in order and returns `false` to stop. Streams:
    /// cost is proportional to what is visited. Never observes part of a batch. An empty or
    /// inverted range visits nothing. The callback must not call back into the storage.
    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()>;

    /// Applies every op of the batch atomically (all or nothing, across keyspaces, also across
    /// a crash). With [`Durability::Sync`] returns only once the batch is durable; concurrent
    /// callers share fsyncs (group commit).
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()>;

    /// Applies the batch like [`Storage::write`] (visible to readers when it returns) without
    /// waiting for stable storage; the returned ticket becomes durable through group commit.
    /// The caller must not acknowledge the change to anyone before the ticket is durable.
    /// Engines without deferred durability write synchronously and return
    /// [`CommitTicket::DURABLE`].
    fn commit(&self, batch: WriteBatch) -> Result<CommitTicket> {
        self.write(batch, Durability::Sync)?;
        Ok(CommitTicket::DURABLE)
    }

    /// Blocks until `ticket` is durable; an error means it may never be (the engine then refuses
    /// further durable writes).
    fn wait_durable(&self, ticket: CommitTicket) -> Result<()> {
        let _ = ticket;
        Ok(())
    }

    /// Like [`Storage::wait_durable`] for async callers: the future never blocks a thread.
    fn durable(&self, ticket: CommitTicket) -> DurableFuture {
        let _ = ticket;
        DurableFuture::ready()
    }

    /// A consistent point-in-time view over all keyspaces.
    fn snapshot(&self) -> Box<dyn Snapshot>;

    /// Approximate statistics of a keyspace, cheaply.
    fn stats(&self, keyspace: &str) -> Result<KeyspaceStats>;

    /// Makes everything written so far durable (clean shutdown, or after Buffered writes).
    fn flush(&self) -> Result<()>;

    /// Number of fsyncs the engine issued for writes and flushes (0 for in-memory engines).
    fn fsync_count(&self) -> u64 {
        0
    }

    /// Why the engine refuses writes right now, or `None` while it accepts them. Cheap (an
    /// atomic load): health checks and background tasks ask it before each round.
    fn write_fault(&self) -> Option<WriteFault> {
        None
    }

    /// How many times the engine has reopened its store in-process (0 for engines that never
    /// do). A reopen (the fjall engine's recovery from a full disk that poisoned it) replays
    /// the journal: a write that was visible but not yet durable may be gone after it, so state
    /// cached from reads must not outlive a change of this number (see
    /// [`Storage::on_reopen`]). Cheap: one atomic load.
    fn generation(&self) -> u64 {
        0
    }

    /// Registers `listener`, called after every reopen, before any read of the reopened
    /// store and before writes resume. It runs under the engine's store lock: it must not
    /// call into the storage. Engines that never reopen ignore it.
    fn on_reopen(&self, listener: Box<dyn Fn() + Send + Sync>) {
        let _ = listener;
    }

    /// Verifies every data file the engine keeps against the checksum recorded when it was
    /// written (fjall: every table and blob file of every keyspace, hashed whole) and returns
    /// the damaged ones. Engines without files of their own have nothing to verify.
    fn verify_files(&self) -> Result<Vec<FileDamage>> {
        Ok(Vec::new())
    }

    /// The engine's internals, read at scrape time (nothing known by default).
    fn storage_stats(&self) -> StorageStats {
        StorageStats::default()
    }

    /// True for an engine shared by several Ferrodyn nodes (a database server): it keeps
    /// concurrency control itself, and the engine above runs every read-check-write in one of
    /// its [`Transaction`]s instead of under in-process locks. Embedded engines answer false
    /// and never hand out transactions.
    fn shared(&self) -> bool {
        false
    }

    /// Starts a read-write transaction (engines where [`Storage::shared`] is true).
    fn begin(&self) -> Result<Box<dyn Transaction>> {
        Err(StorageError::Engine(
            "this storage engine has no transactions".into(),
        ))
    }

    /// Current totals of the counters of `keyspace` whose keys start with `prefix`, in key
    /// order (see [`Transaction::add`]; engines where [`Storage::shared`] is true).
    fn counters(&self, keyspace: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, i64)>> {
        let _ = (keyspace, prefix);
        Ok(Vec::new())
    }

    /// Like [`Storage::get`], but may be answered by a replica that lags behind (an eventually
    /// consistent read). Engines without replicas read the latest value.
    fn get_eventual(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(keyspace, key)
    }

    /// Like [`Storage::scan`], but may be answered by a replica that lags behind.
    fn scan_eventual(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        self.scan(keyspace, lower, upper, reverse, f)
    }
}

/// A read-write transaction of a shared engine ([`Storage::shared`]).
///
/// Contract:
/// * [`Transaction::lock`] takes an exclusive lock on each key, present or absent, held until
///   the transaction ends, and answers the latest committed value: so a decision made from
///   locked values (a condition, a read-modify-write) still holds at commit, whichever node of
///   the cluster made the concurrent writes. A caller locks every key a decision reads before
///   it commits, and locks the keys of one call in ascending `(keyspace, key)` order; callers
///   lock item keys before any other key (lane or sequence rows), so two transactions cannot
///   deadlock through the locks this contract asks for. (A database may still report a
///   deadlock or a serialization failure: [`StorageError::Conflict`].)
/// * [`Transaction::read_shared`] takes a shared lock on keys that exist: a concurrent
///   exclusive lock or write of them waits until this transaction ends (catalog records read
///   by item writers: a schema change waits for the writers that used the old schema).
/// * [`Transaction::commit`] applies the batch and the counter additions atomically and
///   durably (durable when it returns `Ok`); dropping the transaction without committing
///   rolls it back. A [`StorageError::Conflict`] from any method means nothing was applied and
///   the caller should run the whole read-check-write again.
pub trait Transaction: Send {
    /// Locks `keys` exclusively (in the order given) and returns their latest committed values.
    fn lock(&mut self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>>;

    /// Reads `keys` under a shared lock and returns their latest committed values.
    fn read_shared(&mut self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>>;

    /// [`Transaction::read_shared`] of `shared`, then [`Transaction::lock`] of `keys`, in one
    /// exchange with the database where the engine can.
    #[allow(clippy::type_complexity)]
    fn lock_with_shared(
        &mut self,
        shared: &[(&str, &[u8])],
        keys: &[(&str, &[u8])],
    ) -> Result<(Vec<Option<Vec<u8>>>, Vec<Option<Vec<u8>>>)> {
        let records = self.read_shared(shared)?;
        Ok((records, self.lock(keys)?))
    }

    /// Adds `delta` to the 64-bit counter `key` of `keyspace` when the transaction commits
    /// (a missing counter counts from 0). Counters live apart from keys and values: they are
    /// read with [`Storage::counters`], never with `get` or `scan`, and additions never conflict.
    fn add(&mut self, keyspace: &str, key: &[u8], delta: i64);

    /// Applies `batch` and the additions, atomically, and commits.
    fn commit(self: Box<Self>, batch: WriteBatch) -> Result<()>;
}

/// Rejects keys the engines cannot store (every engine applies the same limits, including
/// engines in other crates).
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(StorageError::InvalidArgument("empty key".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StorageError::InvalidArgument(format!(
            "key of {} bytes exceeds the limit of {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

/// True if no key can be stored under `key` (reads of such keys answer `None`).
pub fn key_unstorable(key: &[u8]) -> bool {
    key.is_empty() || key.len() > MAX_KEY_LEN
}

/// Rejects keyspace names no engine accepts (empty, or longer than [`MAX_KEYSPACE_NAME_LEN`]).
pub fn check_keyspace_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_KEYSPACE_NAME_LEN {
        return Err(StorageError::InvalidArgument(format!(
            "keyspace name must be 1..={MAX_KEYSPACE_NAME_LEN} bytes, got {}",
            name.len()
        )));
    }
    Ok(())
}

/// The exclusive upper bound of every key that starts with `prefix`: the smallest byte
/// string greater than all of them (`None`: they run to the end of the keyspace, as when
/// `prefix` is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// True if the bounds describe an empty (or inverted) range. Engines return early on such
/// ranges, because `BTreeMap::range` panics on inverted bounds.
pub fn range_is_empty(lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    use Bound::{Excluded, Included};
    match (lower, upper) {
        (Included(l), Included(u)) => l > u,
        (Included(l), Excluded(u)) | (Excluded(l), Included(u)) | (Excluded(l), Excluded(u)) => {
            l >= u
        }
        _ => false,
    }
}

#[cfg(test)]
mod stats_tests {
    use super::*;

    #[test]
    fn histogram_buckets_take_values_up_to_their_bound() {
        let h = AtomicHistogram::new(&[1.0, 2.0, 4.0]);
        for v in [0.5, 1.0, 1.5, 4.0, 9.0] {
            h.observe(v);
        }
        let s = h.stats();
        assert_eq!(s.counts, vec![2, 1, 1, 1]);
        assert_eq!(s.count(), 5);
        assert_eq!(s.sum, 16.0);
    }

    #[test]
    fn engines_without_internals_report_none() {
        let m = MemoryStorage::new();
        assert_eq!(m.storage_stats(), StorageStats::default());
        let c = CachedStorage::new(MemoryStorage::new(), 1 << 20);
        c.create_keyspace("k").unwrap();
        let key = b"group-01key".to_vec();
        c.get("k", &key).unwrap();
        c.get("k", &key).unwrap();
        let s = c.storage_stats();
        assert_eq!((s.read_cache_hits, s.read_cache_misses), (Some(1), Some(1)));
        assert!(s.memtable_bytes.is_none() && s.fsync_seconds.is_none());
    }
}
