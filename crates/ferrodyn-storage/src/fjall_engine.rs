//! The durable engine on fjall 3 (an LSM-tree with a shared write-ahead journal).
//!
//! Layout: one fjall database per data directory. The fjall keyspace `ferrodyn.meta` holds
//! * `format-version` -> u64 big-endian [`FORMAT_VERSION`], written when the directory is new;
//!   opening a directory with a larger version fails with [`StorageError::UnsupportedFormat`],
//!   and a smaller one is raised to this build's version on open (this build reads every
//!   earlier version; builds that only know the old one then refuse the directory);
//! * `ks:<logical name>` -> u64 big-endian id; the data of that keyspace lives in the fjall
//!   keyspace `k<id>`. The indirection lets logical names be any UTF-8 of any reasonable length.
//!
//! Invariants:
//! * **Atomicity**: a [`WriteBatch`] becomes one fjall batch: one journal record with a checksum,
//!   replayed whole or not at all on recovery; readers of scans/snapshots see it at once because
//!   fjall publishes the batch's sequence number only after applying all of it.
//! * **Group commit** (the protocol in `group.rs`): a durable write commits its batch to the
//!   journal buffer and memtables, then takes a ticket (a counter incremented *after* the
//!   commit returned). One sync thread
//!   owns fsync: whenever tickets are ahead of the durable watermark it records
//!   `target = committed tickets`, syncs the journal (flush + fdatasync) and publishes
//!   `durable = target`, waking blocked threads and async waiters alike. Every batch with ticket
//!   <= target was committed before that sync started, hence is covered by it. Batches that arrive
//!   during a sync share the next one. Writers never fsync themselves, so no writer waits behind
//!   another's fsync to start its own.
//! * The sync thread fsyncs the journal through a descriptor of its own ([`JournalFile`]):
//!   fjall's `persist` holds the journal lock during fsync, which would stall every committer.
//!   It first hands fjall's buffered journal bytes to the OS (`persist(Buffer)`, under the lock,
//!   no I/O wait), then fdatasyncs the newest journal file. Bytes handed over earlier are either
//!   in that file or in an older one, and fjall fully fsyncs a journal before it rotates to the
//!   next (file `<n+1>.jnl` after `<n>.jnl`), so the newest file is the only one that needs it.
//!   If the directory does not look like that, the thread falls back to fjall's `persist`.
//! * Journal order is commit order and a batch is visible only after its journal record was
//!   written, so a batch another writer read is in the journal before that writer's own record,
//!   and the sync covering the reader's ticket covers it too.
//! * **Faults** ([`Refusal`]): the engine refuses writes with one relaxed atomic load of
//!   `refusal` before each commit. A failed journal sync, or another I/O failure inside fjall
//!   (which then poisons its database for good), sets `FAILED`: sticky, every ticket not yet
//!   durable fails, `flush` and the final sync on drop are skipped (an fsync after a failed
//!   one can succeed without the lost pages reaching the disk: fsyncgate), and only a restart
//!   (journal recovery) ends it. A full disk sets `FULL` *before* fjall fails: the sync thread
//!   reads the filesystem's free space every [`SPACE_CHECK_INTERVAL`] and refuses writes while
//!   it is below `min_free_bytes`, so that fjall's own journal writes, flushes and compactions
//!   keep room; `FULL` clears by itself once space is back.
//! * **Reopen** ([`Inner::reopen`]): when fjall poisoned itself on a full disk anyway (a
//!   journal *write* answered ENOSPC, or a poisoning whose error fjall kept to itself while
//!   free space is short: [`FaultCause`]), the state is `REOPEN`: refused like `FAILED`, but
//!   the sync thread, once free space is back at the reserve and a probe file of the reserve's
//!   size was written and synced, drops the old database and opens the directory again (the
//!   journal is intact up to a torn tail; the replay and the journal check run as at startup).
//!   A failed sync is never a full disk, whatever its errno. The store (`db`, `meta`,
//!   handles) lives in one `RwLock` that every lookup takes once; a commit holds it for
//!   reading from its handles to its ticket, so a reopen (holding it for writing) sees no
//!   commit in flight and marks every ticket not durable at that point lost for good
//!   (`durable.rs`); snapshots keep the old database, so the reopen waits for them (bounded,
//!   else it tries again later). Listeners ([`Storage::on_reopen`]) run before any read of
//!   the new store; [`Storage::generation`] counts reopens.
//! * **Keyspace DDL** is serialized by `ddl`. Creation creates the fjall keyspace first and then
//!   durably records the name; dropping durably removes the name first and then deletes the fjall
//!   keyspace. A crash in between leaves an unnamed `k<id>`, which is deleted on the next open.
//! * `Store::handles` caches name -> fjall handle; it changes only under `ddl`.
//! * Point `get`s read the newest applied value; scans read through a fjall snapshot, so they
//!   never observe part of a batch.
//! * fjall runs background worker threads (flush/compaction; `min(cores, 4)` by default); this
//!   engine adds the sync thread, which also fsyncs `Buffered` writes every
//!   `background_sync_interval`, and the settle thread, which compacts only while no write comes
//!   and never changes what a read returns (it runs fjall's own compaction, as its workers do).

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use parking_lot::{Condvar, MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard};

use crate::crash::{self, Event};
use crate::group::GroupCommit;
use crate::{
    check_keyspace_name, key_unstorable, range_is_empty, AtomicHistogram, CommitTicket, Durability,
    DurableFuture, KeyspaceStats, Result, Snapshot, Storage, StorageError, StorageStats,
    WriteBatch, WriteFault,
};

/// How often the sync thread reads the data directory's free space.
pub const SPACE_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How often a refusal that lasts is logged again (the first is logged at once).
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Default free space kept on the data directory's filesystem (see
/// [`FjallOptions::min_free_bytes`]).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

/// Values of `Inner::refusal`.
struct Refusal;
impl Refusal {
    const NONE: u8 = 0;
    /// Free space under the reserve; clears by itself.
    const FULL: u8 = 1;
    /// A failed sync or I/O error; until a restart.
    const FAILED: u8 = 2;
    /// fjall poisoned itself on a full disk; until the sync thread has reopened the store.
    const REOPEN: u8 = 3;
}

/// What made a write or sync fail, which decides whether the engine may recover in-process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FaultCause {
    /// A write (not a sync) found no space: nothing reached the disk that a journal replay
    /// would not see, so reopening the directory once space is back is safe.
    Space,
    /// A failed sync or another I/O error: the kernel may have dropped pages a later sync
    /// would claim durable (fsyncgate), so only a restart recovers.
    Io,
}

/// Whether an I/O error of a write is a full disk (or quota).
fn io_cause(e: &std::io::Error) -> FaultCause {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => FaultCause::Space,
        _ => FaultCause::Io,
    }
}

/// A poisoning we did not see the error of counts as a full disk while free space is under
/// this (and under the reserve): a journal file's size.
const POISON_SPACE_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest probe file written before a reopen (the reserve when larger).
const PROBE_MIN_BYTES: u64 = 1024 * 1024;
/// The probe file, in the data directory (removed at once, and at open if a crash left it).
const PROBE_FILE: &str = "ferrodyn-space-probe";
/// How long a reopen waits for open snapshots before it tries again later.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);
/// How long a reopen waits for the old database's lock file to be released.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// The longest pause between two failed reopen attempts.
const REOPEN_RETRY_MAX: Duration = Duration::from_secs(10);
const LOCKED: &str = "the data directory is locked by another process (a running server?)";

/// Free bytes of the filesystem holding `path`, for an unprivileged process.
fn free_bytes(path: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// Writes `bytes` of zeros to `path` and syncs them: proof that the filesystem takes them.
fn write_probe(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

/// Fully syncs every journal file of the data directory, and the directory.
fn sync_journals(path: &Path) -> std::io::Result<()> {
    for file in crate::journal_check::journal_files(path) {
        std::fs::File::open(&file)?.sync_all()?;
    }
    std::fs::File::open(path)?.sync_all()
}

/// The error of a batch staged against a store that has been reopened since.
#[cold]
fn stale_batch() -> StorageError {
    StorageError::Refused(WriteFault::DiskFull(
        "No space left on device: the storage engine reopened its data directory after a full \
         disk while this write was prepared; it was not applied, retry it"
            .into(),
    ))
}

/// The error of a read while a reopen could not open the data directory.
#[cold]
fn reopening() -> StorageError {
    StorageError::Unavailable(
        "the storage engine is reopening its data directory after a full disk".into(),
    )
}

/// On-disk format version written by this build. 1: the first. 2: items may be stored in the
/// engine's item format 2 (which records each item's size); version 1 is still read.
pub const FORMAT_VERSION: u64 = 2;

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

/// Flush/compaction threads by default, whatever the number of cores. fjall's own default
/// (`min(cores, 4)`) gives two workers on a two-core machine, and fjall's worker 0 hands every
/// compaction request back to the queue while the other workers are busy: with a single other
/// worker compacting, worker 0 spins on the queue (measured: 60% of the server's CPU during
/// durable puts on 10^7 items). With three others, one is nearly always free to take it.
pub const DEFAULT_WORKER_THREADS: usize = 4;

/// Tuning of [`FjallStorage`].
#[derive(Clone, Debug)]
pub struct FjallOptions {
    /// Block cache capacity in bytes (fjall recommends 20-25% of RAM, more if data fits).
    pub cache_bytes: u64,
    /// fjall flush/compaction worker threads; `None` = [`DEFAULT_WORKER_THREADS`].
    pub worker_threads: Option<usize>,
    /// Sync call used for durable writes.
    pub sync_mode: SyncMode,
    /// How often `Buffered` writes are fsynced in the background.
    pub background_sync_interval: Duration,
    /// Memtable size per keyspace, in bytes (recorded by fjall when a keyspace is created).
    pub memtable_bytes: u64,
    /// Key-value separation: values of at least this many bytes are kept in blob files and
    /// the LSM tree holds only their keys and a pointer, so compaction rewrites little data.
    /// `None` keeps every value in the tree. Recorded by fjall when a keyspace is created.
    pub kv_separation: Option<u32>,
    /// After this long without writes, finish the compaction work fjall left (see
    /// [`Inner::settle_loop`]); `None` never does.
    pub settle_after: Option<Duration>,
    /// Writes are refused while the data directory's filesystem has less free space than
    /// this (checked every [`SPACE_CHECK_INTERVAL`]), and resume once it has it again. fjall
    /// poisons its database for good when a journal write, flush or compaction fails, so
    /// the reserve is what keeps a full disk a pause rather than a restart: it should cover
    /// a journal file (64 MiB), the memtables being flushed and a compaction's output. 0
    /// disables the check.
    pub min_free_bytes: u64,
}

impl Default for FjallOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 64 * 1024 * 1024,
            worker_threads: None,
            sync_mode: SyncMode::SyncData,
            background_sync_interval: Duration::from_millis(500),
            memtable_bytes: DEFAULT_MEMTABLE_BYTES,
            kv_separation: None,
            settle_after: Some(Duration::from_secs(1)),
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

/// Options of a data keyspace created by this engine.
///
/// Index and filter blocks of every level are kept whole and pinned in memory (fjall's default
/// pins only the first levels and partitions the index of deep ones). On a large table the
/// block cache otherwise churns them out with data blocks, and a read that misses reloads and
/// checksums an index block of hundreds of KiB; pinned, they cost about 1% of the data size
/// (one index entry per 4 KiB data block and about 10 filter bits per key).
fn data_keyspace_options(memtable_bytes: u64, kv_separation: Option<u32>) -> KeyspaceCreateOptions {
    use fjall::config::{PartitioningPolicy, PinningPolicy};
    let options = KeyspaceCreateOptions::default()
        .max_memtable_size(memtable_bytes)
        .index_block_pinning_policy(PinningPolicy::all(true))
        .filter_block_pinning_policy(PinningPolicy::all(true))
        .index_block_partitioning_policy(PartitioningPolicy::all(false))
        .filter_block_partitioning_policy(PartitioningPolicy::all(false));
    match kv_separation {
        Some(threshold) => options.with_kv_separation(Some(
            fjall::KvSeparationOptions::default().separation_threshold(threshold),
        )),
        None => options,
    }
}

fn engine_err(e: fjall::Error) -> StorageError {
    use fjall::LsmError as Lsm;
    match e {
        fjall::Error::Io(io) => StorageError::Io(io),
        fjall::Error::JournalRecovery(_)
        | fjall::Error::Unrecoverable
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::Decompress(_)
        | fjall::Error::InvalidVersion(_) => StorageError::Corrupt(format!("{e:?}")),
        // A block, table or blob that fails its checksum or does not decode.
        fjall::Error::Storage(
            Lsm::ChecksumMismatch { .. }
            | Lsm::InvalidTrailer
            | Lsm::InvalidHeader(_)
            | Lsm::InvalidTag(_)
            | Lsm::Decompress(_)
            | Lsm::InvalidVersion(_)
            | Lsm::Unrecoverable
            | Lsm::Utf8(_),
        ) => StorageError::Corrupt(format!("{e:?}")),
        fjall::Error::Storage(Lsm::Io(io)) => StorageError::Io(io),
        fjall::Error::Locked => StorageError::Engine(LOCKED.into()),
        other => StorageError::Engine(format!("{other:?}")),
    }
}

/// xxh3-128 of a whole file, as lsm-tree records it for each table and blob file it writes.
fn file_checksum(path: &Path) -> std::io::Result<u128> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.digest128());
        }
        hasher.update(&buf[..n]);
    }
}

/// The table and blob files of `ks` whose contents differ from the checksum fjall recorded
/// when it wrote them (or that cannot be read).
fn damaged_files(name: &str, ks: &Keyspace) -> Vec<crate::FileDamage> {
    use fjall::AbstractTree;
    let version = ks.tree.current_version();
    let mut files: Vec<(std::path::PathBuf, u128, &str)> = version
        .iter_tables()
        .map(|t| (t.path.to_path_buf(), t.checksum().into_u128(), "table"))
        .collect();
    files.extend(
        version
            .blob_files
            .iter()
            .map(|b| (b.path().to_path_buf(), b.checksum().into_u128(), "blob")),
    );
    let mut out = Vec::new();
    for (path, expected, kind) in files {
        let what = match file_checksum(&path) {
            Ok(got) if got == expected => continue,
            Ok(got) => {
                format!("{kind} file checksum mismatch (expected {expected:032x}, got {got:032x})")
            }
            Err(e) => format!("{kind} file unreadable: {e}"),
        };
        out.push(crate::FileDamage {
            file: path,
            keyspace: Some(name.to_owned()),
            offset: None,
            what,
        });
    }
    out
}

/// Default memtable budget per keyspace. Every table and index is a keyspace, so fjall's default
/// (64 MiB each) lets memory grow with the number of written tables; fjall also flushes the
/// memtables holding the oldest journal data once journals exceed 512 MiB, which bounds the
/// total. Small memtables cost write throughput: keys are spread by a hash prefix, so every L0
/// table overlaps all of L1 and each L0 -> L1 compaction rewrites L1 for one memtable's worth of
/// data (measured at 10^6 items, durable puts: 8 MiB 14.9k/s, 32 MiB 23.8k/s, 64 MiB 23.2k/s).
/// fjall records the size when a keyspace is created; later changes apply to new keyspaces.
pub const DEFAULT_MEMTABLE_BYTES: u64 = 32 * 1024 * 1024;

/// The open fjall database and the handles taken from it: replaced whole when the engine
/// reopens the directory after fjall poisoned itself ([`Inner::reopen`]).
struct Store {
    db: Database,
    meta: Keyspace,
    /// Logical name -> fjall handle; changes only under `Inner::ddl`.
    handles: HashMap<String, Keyspace>,
    /// Reopens before this store was opened ([`Storage::generation`]).
    generation: u64,
}

/// Called after a reopen ([`Storage::on_reopen`]).
type ReopenListener = Box<dyn Fn() + Send + Sync>;

struct Inner {
    /// The store. Every handle lookup takes this lock for reading (one acquisition per
    /// operation, as the handle map alone did before); a commit keeps it from its handles to
    /// its ticket, so a reopen (the only writer besides keyspace DDL) finds no commit in
    /// flight. `None` only while a reopen failed to open the directory (reads then answer
    /// [`StorageError::Unavailable`] until a later attempt succeeds).
    store: RwLock<Option<Store>>,
    /// Serializes keyspace DDL and reopens; holds the next free keyspace id.
    ddl: Mutex<u64>,
    params: OpenParams,
    /// Held by the settle thread for a whole pass and by a reopen, which so never drops the
    /// database under a running idle compaction.
    settle_pass: Mutex<()>,
    /// Reopens so far ([`Storage::generation`]).
    generation: AtomicU64,
    listeners: Mutex<Vec<ReopenListener>>,
    persist_mode: PersistMode,
    /// Tickets, the durable watermark and the sync thread's wake-ups (see `group.rs`).
    group: GroupCommit,
    /// Wakes the settle thread when the storage is dropped (waits under `group.control()`).
    settle: Condvar,
    fsyncs: AtomicU64,
    /// `Buffered` writes happened since the last background sync.
    dirty: AtomicBool,
    /// A [`Refusal`] value: whether writes are refused, and why. Read relaxed on every
    /// write; the message it stands for is in `fault` (written before it is set).
    refusal: AtomicU8,
    fault: Mutex<Option<WriteFault>>,
    /// When the current failure began (for the log line of a reopen).
    failed_at: Mutex<Option<std::time::Instant>>,
    /// The data directory, whose filesystem's free space the sync thread watches.
    path: PathBuf,
    min_free_bytes: u64,
    /// Keyspaces whose damaged files were already looked for and logged after a read failed
    /// its checksum (once each: the search hashes every file of the keyspace).
    located: Mutex<std::collections::HashSet<String>>,
    /// Seconds each group-commit sync took, and the tickets it made durable.
    sync_seconds: AtomicHistogram,
    sync_batches: AtomicHistogram,
}

/// Buckets of the group-commit fsync latency: 50 µs doubling to about 1.6 s.
const SYNC_SECONDS: &[f64] = &[
    0.00005, 0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512,
    0.1024, 0.2048, 0.4096, 0.8192, 1.6384,
];
/// Buckets of the batches one group-commit fsync covers: 1 doubling to 1024.
const SYNC_BATCHES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Durable [`Storage`] on fjall. Opening the same directory twice (even from two processes)
/// fails: fjall holds a lock file.
pub struct FjallStorage {
    inner: Arc<Inner>,
    syncer: Option<JoinHandle<()>>,
    settler: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FjallStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStorage")
            .field(
                "keyspaces",
                &self.inner.store().map_or(0, |s| s.handles.len()),
            )
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

/// Length of fjall's database marker (`version`): magic `FJL` and a format byte.
const MARKER_LEN: u64 = 4;

/// Removes what a crash left of fjall's creation of a new database, so that it is created
/// again. fjall creates the lock file, the `keyspaces` directory and a first journal
/// (preallocated: zeros), then writes and syncs its marker (`version`) last, and decides
/// between creating and recovering by the marker's presence alone: after a crash before the
/// marker was complete the directory could never be opened again (the journal's exclusive
/// creation fails, or the partial marker is refused). Nothing was ever written then (the journal, preallocated,
/// holds only zeros), so nothing is lost. Anything more in the directory (a journal with
/// content, a keyspace) is left alone for fjall to judge; so is a directory another process
/// holds the lock of.
fn discard_interrupted_creation(path: &Path) -> Result<()> {
    let io = |what: &str, e: std::io::Error| {
        StorageError::Engine(format!("{what} in {}: {e}", path.display()))
    };
    let marker = path.join("version");
    let partial_marker = match std::fs::metadata(&marker) {
        Ok(m) if m.len() >= MARKER_LEN => return Ok(()),
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io("reading the database marker", e)),
    };
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("listing the data directory", e)),
    };
    let mut journals = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("listing the data directory", e))?;
        let name = entry.file_name();
        let meta = entry
            .metadata()
            .map_err(|e| io("reading the data directory", e))?;
        match name.to_str() {
            Some("lock" | "version") => {}
            Some("keyspaces") if meta.is_dir() => {
                let empty = std::fs::read_dir(entry.path())
                    .map_err(|e| io("listing the keyspaces", e))?
                    .next()
                    .is_none();
                if !empty {
                    return Ok(());
                }
            }
            Some(n) if n.ends_with(".jnl") && meta.is_file() => {
                if !all_zero(&entry.path()).map_err(|e| io("reading a journal", e))? {
                    return Ok(());
                }
                journals.push(entry.path());
            }
            // Not fjall's, or holding data: fjall decides.
            _ => return Ok(()),
        }
    }
    if journals.is_empty() && !partial_marker {
        // Nothing fjall's creation would trip over.
        return Ok(());
    }
    let lock = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path.join("lock"))
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("opening the lock file", e)),
    };
    if lock.try_lock().is_err() {
        return Ok(());
    }
    tracing::warn!(
        dir = %path.display(),
        "the creation of this data directory was interrupted (no complete database marker, \
         no data): creating it again"
    );
    for j in journals {
        std::fs::remove_file(&j).map_err(|e| io("removing an empty journal", e))?;
    }
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing the partial database marker", e)),
    }
    drop(lock);
    Ok(())
}

/// True if the file holds nothing but zero bytes (fjall preallocates a new journal).
fn all_zero(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// How a data directory is opened: kept for the reopen after a fault.
#[derive(Clone, Copy, Debug)]
struct OpenParams {
    cache_bytes: u64,
    worker_threads: usize,
    memtable_bytes: u64,
    kv_separation: Option<u32>,
}

/// Opens the fjall database at `path` after checking its journals (journal_check.rs), checks
/// or writes the format version, loads the keyspace names and deletes keyspaces left unnamed;
/// returns the store and the highest keyspace id in use.
fn open_store(path: &Path, params: &OpenParams) -> Result<(Store, u64)> {
    let _ = std::fs::remove_file(path.join(PROBE_FILE));
    discard_interrupted_creation(path)?;
    let memtable_bytes = params.memtable_bytes;
    let kv_separation = params.kv_separation;
    let keyspace_options = move || data_keyspace_options(memtable_bytes, kv_separation);
    let meta_options = move || KeyspaceCreateOptions::default().max_memtable_size(memtable_bytes);
    let builder = Database::builder(path)
        .cache_size(params.cache_bytes)
        // Batches are flushed to the OS / synced by this engine, not by fjall.
        .manual_journal_persist(true)
        .worker_threads(params.worker_threads);
    // fjall truncates a journal silently at the first batch it cannot decode; refuse
    // instead when that batch is not a torn tail (journal_check.rs).
    crate::journal_check::check_journals(path)?;
    let db = builder.open().map_err(engine_err)?;

    let others: Vec<String> = db
        .list_keyspace_names()
        .iter()
        .map(|n| n.to_string())
        .filter(|n| n != META_KEYSPACE)
        .collect();
    let meta = db
        .keyspace(META_KEYSPACE, meta_options)
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
            if found < FORMAT_VERSION {
                meta.insert(FORMAT_KEY, FORMAT_VERSION.to_be_bytes())
                    .map_err(engine_err)?;
                db.persist(PersistMode::SyncAll).map_err(engine_err)?;
                tracing::info!(
                    from = found,
                    to = FORMAT_VERSION,
                    "raised the data directory's format version"
                );
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
    Ok((
        Store {
            db,
            meta,
            handles,
            generation: 0,
        },
        max_id,
    ))
}

impl FjallStorage {
    /// Opens (or creates) the data directory at `path` with default options.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, FjallOptions::default())
    }

    /// Opens (or creates) the data directory at `path`.
    pub fn open_with(path: &Path, options: FjallOptions) -> Result<Self> {
        crash::arm_from_env().map_err(StorageError::Engine)?;
        let params = OpenParams {
            cache_bytes: options.cache_bytes,
            worker_threads: options
                .worker_threads
                .unwrap_or(DEFAULT_WORKER_THREADS)
                .max(1),
            memtable_bytes: options.memtable_bytes.max(1024 * 1024),
            kv_separation: options.kv_separation,
        };
        let (store, max_id) = open_store(path, &params)?;
        let inner = Arc::new(Inner {
            store: RwLock::new(Some(store)),
            ddl: Mutex::new(max_id + 1),
            params,
            settle_pass: Mutex::new(()),
            generation: AtomicU64::new(0),
            listeners: Mutex::new(Vec::new()),
            persist_mode: match options.sync_mode {
                SyncMode::SyncData => PersistMode::SyncData,
                SyncMode::SyncAll => PersistMode::SyncAll,
            },
            group: GroupCommit::new(),
            settle: Condvar::new(),
            fsyncs: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            refusal: AtomicU8::new(Refusal::NONE),
            fault: Mutex::new(None),
            failed_at: Mutex::new(None),
            path: path.to_path_buf(),
            min_free_bytes: options.min_free_bytes,
            located: Mutex::new(std::collections::HashSet::new()),
            sync_seconds: AtomicHistogram::new(SYNC_SECONDS),
            sync_batches: AtomicHistogram::new(SYNC_BATCHES),
        });

        let journal = JournalFile::open_newest(path);
        if journal.is_none() {
            tracing::warn!("no journal file found; durable writes sync through fjall's persist");
        }
        let bg = Arc::clone(&inner);
        let interval = options.background_sync_interval;
        let syncer = std::thread::Builder::new()
            .name("ferrodyn-sync".into())
            .spawn(move || bg.sync_loop(interval, journal))?;
        let settler = match options.settle_after {
            Some(after) => {
                let bg = Arc::clone(&inner);
                Some(
                    std::thread::Builder::new()
                        .name("ferrodyn-settle".into())
                        .spawn(move || bg.settle_loop(after))?,
                )
            }
            None => None,
        };

        Ok(Self {
            inner,
            syncer: Some(syncer),
            settler,
        })
    }
}

impl Inner {
    /// The store, for reading; fails only while a reopen could not open the directory.
    #[inline]
    fn store(&self) -> Result<MappedRwLockReadGuard<'_, Store>> {
        RwLockReadGuard::try_map(self.store.read(), |s| s.as_ref()).map_err(|_| reopening())
    }

    /// The store for writing, for keyspace DDL. A commit holds the store's read lock through
    /// fjall's write backpressure (sleeps while memtables wait to be flushed), and a waiting
    /// writer of a fair lock blocks new readers: so this first tries for a moment without
    /// queueing, and queues only if commits never leave a gap.
    fn store_for_ddl(&self) -> parking_lot::RwLockWriteGuard<'_, Option<Store>> {
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        while std::time::Instant::now() < deadline {
            if let Some(guard) = self.store.try_write() {
                return guard;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.store.write()
    }

    /// Translates a batch into a fjall batch (`None` when empty), validating it first.
    fn fjall_batch(
        &self,
        store: &Store,
        batch: WriteBatch,
    ) -> Result<Option<fjall::OwnedWriteBatch>> {
        if batch.is_empty() {
            return Ok(None);
        }
        if batch.generation().is_some_and(|g| g != store.generation) {
            return Err(stale_batch());
        }
        let (names, ops) = batch.into_effective()?;
        let handles: Vec<&Keyspace> = names
            .iter()
            .map(|n| {
                store
                    .handles
                    .get(n)
                    .ok_or_else(|| StorageError::KeyspaceNotFound(n.clone()))
            })
            .collect::<Result<_>>()?;
        let mut fb = fjall::OwnedWriteBatch::with_capacity(store.db.clone(), ops.len());
        for op in ops {
            let Some(ks) = handles.get(op.ks) else {
                continue; // indices come from the batch's own name table
            };
            match op.value {
                Some(v) => fb.insert(ks, op.key, v),
                None => fb.remove(ks, op.key),
            }
        }
        Ok(Some(fb))
    }

    fn handle(&self, keyspace: &str) -> Result<Keyspace> {
        self.store()?
            .handles
            .get(keyspace)
            .cloned()
            .ok_or_else(|| StorageError::KeyspaceNotFound(keyspace.to_owned()))
    }

    /// A clone of the database, for calls that must not hold the store lock (fsyncs).
    fn db(&self) -> Result<Database> {
        Ok(self.store()?.db.clone())
    }

    /// A read of `keyspace` failed with `e`. A corruption is logged with the damaged files of
    /// the keyspace, looked for once per keyspace and process (every file is hashed), so the
    /// operator learns which file it is; the error names them too.
    fn read_err(&self, keyspace: &str, ks: &Keyspace, e: fjall::Error) -> StorageError {
        let err = engine_err(e);
        let StorageError::Corrupt(msg) = &err else {
            return err;
        };
        if !self.located.lock().insert(keyspace.to_owned()) {
            tracing::error!(keyspace, error = %msg, "read of damaged data refused");
            return err;
        }
        let damaged = damaged_files(keyspace, ks);
        for d in &damaged {
            tracing::error!(keyspace, file = %d.file.display(), what = %d.what, "damaged data file");
        }
        let files: Vec<String> = damaged
            .iter()
            .map(|d| d.file.display().to_string())
            .collect();
        tracing::error!(keyspace, error = %msg, files = ?files, "read of damaged data refused");
        if files.is_empty() {
            err
        } else {
            StorageError::Corrupt(format!("{msg} (damaged file: {})", files.join(", ")))
        }
    }

    /// Hands fjall's buffered journal bytes to the operating system: a write, not a sync, so
    /// a full disk here ([`FaultCause::Space`]) leaves the journal intact up to a torn tail.
    fn write_out(&self, db: &Database) -> Result<()> {
        db.persist(PersistMode::Buffer)
            .map_err(|e| self.fjall_failed("writing the journal failed", e, false))
    }

    /// Writes out and syncs the journal through fjall (which holds its journal lock meanwhile).
    fn persist(&self, mode: PersistMode) -> Result<()> {
        let cp = crash::before(Event::Sync);
        let db = self.db()?;
        self.write_out(&db)?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        db.persist(mode)
            .map_err(|e| self.fjall_failed("syncing the journal to disk failed", e, true))?;
        crash::after(Event::Sync, cp);
        Ok(())
    }

    /// Makes every journal byte committed so far durable, without holding fjall's journal lock
    /// during the fsync when `journal` is available.
    fn sync_journal(&self, journal: &mut Option<JournalFile>) -> Result<()> {
        let Some(j) = journal else {
            return self.persist(self.persist_mode);
        };
        let cp = crash::before(Event::Sync);
        self.write_out(&self.db()?)?;
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        j.sync(self.persist_mode).map_err(|e| {
            StorageError::Refused(self.fail(
                &format!("syncing the journal to disk failed ({e})"),
                FaultCause::Io,
            ))
        })?;
        crash::after(Event::Sync, cp);
        Ok(())
    }

    /// Refuses the write if the engine refuses writes: the one check on the write path, a
    /// relaxed load (a refusal seen late lets at most the writes already racing it through,
    /// and fjall itself refuses writes once poisoned).
    #[inline]
    fn check_writable(&self) -> Result<()> {
        if self.refusal.load(Ordering::Relaxed) == Refusal::NONE {
            return Ok(());
        }
        self.refused()
    }

    #[cold]
    fn refused(&self) -> Result<()> {
        match self.fault.lock().clone() {
            Some(fault) => Err(StorageError::Refused(fault)),
            None => Ok(()),
        }
    }

    /// The current refusal, if any.
    fn write_fault(&self) -> Option<WriteFault> {
        if self.refusal.load(Ordering::Acquire) == Refusal::NONE {
            return None;
        }
        self.fault.lock().clone()
    }

    /// Refuses every write from now on: until a restart for [`FaultCause::Io`], until the
    /// sync thread has reopened the store for [`FaultCause::Space`]. The first cause is kept,
    /// except that an I/O failure overrides a full disk (it may not be reopened over).
    #[cold]
    fn fail(&self, cause: &str, kind: FaultCause) -> WriteFault {
        let mut fault = self.fault.lock();
        let state = self.refusal.load(Ordering::Acquire);
        if state == Refusal::FAILED || (state == Refusal::REOPEN && kind == FaultCause::Space) {
            if let Some(f) = fault.as_ref() {
                return f.clone();
            }
        }
        let f = match kind {
            FaultCause::Space => {
                tracing::error!(
                    data_dir = %self.path.display(),
                    cause,
                    "DISK FULL: the storage engine met a full disk; refusing writes until space \
                     is freed and the data directory is reopened; reads continue"
                );
                WriteFault::DiskFull(format!(
                    "No space left on device: {cause}. Writes not yet durable were not \
                     acknowledged; writes resume once space is freed"
                ))
            }
            FaultCause::Io => {
                tracing::error!(
                    data_dir = %self.path.display(),
                    cause,
                    "STORAGE FAILED: refusing every write until a restart; reads continue"
                );
                WriteFault::Failed(format!(
                    "The storage engine refuses writes: {cause}. Writes not yet durable were \
                     not acknowledged; restart the server to recover from its journal"
                ))
            }
        };
        *fault = Some(f.clone());
        if state == Refusal::NONE || state == Refusal::FULL {
            *self.failed_at.lock() = Some(std::time::Instant::now());
        }
        self.refusal.store(
            match kind {
                FaultCause::Space => Refusal::REOPEN,
                FaultCause::Io => Refusal::FAILED,
            },
            Ordering::Release,
        );
        self.group.watermark().fail(f.clone());
        f
    }

    /// The fault the engine refuses writes with (after a failure).
    fn current_fault(&self) -> WriteFault {
        self.fault
            .lock()
            .clone()
            .unwrap_or_else(|| WriteFault::Failed("the storage engine refuses writes".into()))
    }

    /// Why fjall poisoned itself when we did not see the error (a flush or compaction worker
    /// failed, or an earlier write): a full disk if the filesystem is short of space now
    /// (under the reserve, and under a journal file's 64 MiB), else an I/O failure.
    fn poison_cause(&self) -> FaultCause {
        if self.refusal.load(Ordering::Acquire) == Refusal::REOPEN {
            return FaultCause::Space;
        }
        match free_bytes(&self.path) {
            Some(free) if free < self.min_free_bytes.max(POISON_SPACE_BYTES) => FaultCause::Space,
            _ => FaultCause::Io,
        }
    }

    /// Refuses writes after fjall failed with `e` while doing `what`; `fsync` says whether
    /// the call synced (an I/O error there is never a full disk that a reopen may cure).
    #[cold]
    fn fjall_failed(&self, what: &str, e: fjall::Error, fsync: bool) -> StorageError {
        let kind = match &e {
            fjall::Error::Poisoned => self.poison_cause(),
            fjall::Error::Io(io) | fjall::Error::Storage(fjall::LsmError::Io(io)) if !fsync => {
                io_cause(io)
            }
            _ => FaultCause::Io,
        };
        let cause = match &e {
            fjall::Error::Poisoned => {
                "the store was poisoned by an earlier failed write, flush or compaction".into()
            }
            fjall::Error::Io(io) => format!("{what} ({io})"),
            other => format!("{what} ({other:?})"),
        };
        StorageError::Refused(self.fail(&cause, kind))
    }

    /// Maps a failed fjall commit: fjall poisons its database when a journal write fails, so
    /// the engine can write no more until a reopen (full disk) or a restart.
    #[cold]
    fn commit_failed(&self, e: fjall::Error) -> StorageError {
        match e {
            fjall::Error::Io(_) | fjall::Error::Poisoned => {
                self.fjall_failed("writing the journal failed", e, false)
            }
            other => engine_err(other),
        }
    }

    /// Compares the data directory's free space with the reserve and refuses or resumes
    /// writes accordingly; logs the change at once and a lasting refusal once a minute.
    fn check_space(&self, last_log: &mut Option<std::time::Instant>) {
        if self.min_free_bytes == 0 {
            return;
        }
        let Some(free) = free_bytes(&self.path) else {
            return;
        };
        // Transitions happen under the `fault` lock (as in `fail`), so a failure is never
        // overwritten by a full disk, nor a full disk cleared over a failure.
        let state = self.refusal.load(Ordering::Acquire);
        if free < self.min_free_bytes {
            if state == Refusal::NONE {
                let mut fault = self.fault.lock();
                if self.refusal.load(Ordering::Acquire) == Refusal::NONE {
                    *fault = Some(WriteFault::DiskFull(format!(
                        "No space left on device: the data directory's filesystem has {free} \
                         bytes free, under the {} bytes the storage engine keeps in reserve; \
                         writes are refused until space is freed",
                        self.min_free_bytes
                    )));
                    self.refusal.store(Refusal::FULL, Ordering::Release);
                    tracing::error!(
                        data_dir = %self.path.display(),
                        free_bytes = free,
                        reserve_bytes = self.min_free_bytes,
                        "DISK FULL: refusing writes until space is freed; reads continue"
                    );
                    *last_log = Some(std::time::Instant::now());
                }
            } else if state == Refusal::FULL
                && last_log.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_INTERVAL)
            {
                tracing::error!(
                    data_dir = %self.path.display(),
                    free_bytes = free,
                    reserve_bytes = self.min_free_bytes,
                    "disk still full: writes are still refused"
                );
                *last_log = Some(std::time::Instant::now());
            }
        } else if state == Refusal::FULL {
            let mut fault = self.fault.lock();
            if self.refusal.load(Ordering::Acquire) == Refusal::FULL {
                *fault = None;
                self.refusal.store(Refusal::NONE, Ordering::Release);
                *last_log = None;
                tracing::warn!(
                    data_dir = %self.path.display(),
                    free_bytes = free,
                    "disk space is back: writes resume"
                );
            }
        }
    }

    /// Commits `batch` to fjall (journal buffer + memtables) and returns its ticket. The
    /// caller holds the store lock (for reading) until this returns: see [`Inner::store`].
    fn commit_deferred(&self, batch: fjall::OwnedWriteBatch) -> Result<CommitTicket> {
        // Refused writes never reach the journal (the check comes first, so a failed engine
        // answers with its fault rather than the watermark's).
        self.check_writable()?;
        self.group.commit(|| {
            let cp = crash::before(Event::Commit);
            batch.commit().map_err(|e| self.commit_failed(e))?;
            crash::after(Event::Commit, cp);
            Ok(())
        })
    }

    /// The sync thread: fsyncs whenever committed tickets are not yet durable, and `Buffered`
    /// writes every `interval`; after a full disk poisoned fjall, reopens the store once space
    /// is back ([`Inner::recover_loop`]); returns when the storage is dropped.
    fn sync_loop(&self, interval: Duration, mut journal: Option<JournalFile>) {
        let mut space_logged = None;
        loop {
            self.group_loop(interval, &mut journal, &mut space_logged);
            if !self.recover_loop(&mut journal) {
                return;
            }
        }
    }

    /// Group commit until the storage is dropped or writes are refused for good (a failure).
    fn group_loop(
        &self,
        interval: Duration,
        journal: &mut Option<JournalFile>,
        space_logged: &mut Option<std::time::Instant>,
    ) {
        let mut last_background = std::time::Instant::now();
        let mut last_space = std::time::Instant::now();
        self.check_space(space_logged);
        self.group.run(
            interval.min(SPACE_CHECK_INTERVAL),
            |covered| {
                // Never again after a failure: the kernel may have dropped the dirty pages, and
                // a later fsync can succeed without them.
                let state = self.refusal.load(Ordering::Acquire);
                if state == Refusal::FAILED || state == Refusal::REOPEN {
                    return Err(StorageError::Refused(self.current_fault()));
                }
                let started = std::time::Instant::now();
                let synced = self.sync_journal(journal);
                self.sync_seconds.observe(started.elapsed().as_secs_f64());
                self.sync_batches.observe(covered as f64);
                synced
            },
            || {
                let state = self.refusal.load(Ordering::Acquire);
                if state == Refusal::FAILED || state == Refusal::REOPEN {
                    return false;
                }
                if last_space.elapsed() >= SPACE_CHECK_INTERVAL {
                    last_space = std::time::Instant::now();
                    self.check_space(space_logged);
                }
                if last_background.elapsed() >= interval {
                    last_background = std::time::Instant::now();
                    if self.dirty.swap(false, Ordering::AcqRel) {
                        // A failure is recorded by `persist` itself.
                        let _ = self.persist(self.persist_mode);
                    }
                }
                true
            },
        );
    }

    /// After a failure: while it is a full disk that poisoned fjall, waits for space (free
    /// space at the reserve and a probe file of the reserve's size written and synced), then
    /// reopens the store; returns true once writes resume, false when the storage is dropped.
    /// After an I/O failure it only waits for the drop (fsyncgate: never sync again).
    fn recover_loop(&self, journal: &mut Option<JournalFile>) -> bool {
        let mut delay = SPACE_CHECK_INTERVAL;
        let mut started = false;
        loop {
            if !self.group.pause(delay) {
                return false;
            }
            match self.refusal.load(Ordering::Acquire) {
                Refusal::REOPEN => {}
                Refusal::FAILED => {
                    delay = Duration::from_secs(3600);
                    continue;
                }
                _ => return true,
            }
            if !self.space_is_back() {
                continue;
            }
            if !started {
                started = true;
                tracing::warn!(
                    data_dir = %self.path.display(),
                    "disk space is back: reopening the data directory to resume writes"
                );
            }
            let began = std::time::Instant::now();
            match self.reopen() {
                Ok(true) => {
                    *journal = JournalFile::open_newest(&self.path);
                    let refused = self
                        .failed_at
                        .lock()
                        .take()
                        .map_or(Duration::ZERO, |t| t.elapsed());
                    tracing::warn!(
                        data_dir = %self.path.display(),
                        refused_ms = refused.as_millis() as u64,
                        reopen_ms = began.elapsed().as_millis() as u64,
                        "data directory reopened: writes resume"
                    );
                    return true;
                }
                Ok(false) => delay = SPACE_CHECK_INTERVAL,
                Err(e) => {
                    delay = (delay * 2).min(REOPEN_RETRY_MAX);
                    tracing::error!(
                        data_dir = %self.path.display(),
                        error = %e,
                        retry_ms = delay.as_millis() as u64,
                        "reopening the data directory failed; writes are still refused"
                    );
                }
            }
        }
    }

    /// Whether the data directory can take writes again: free space at the reserve, and a
    /// probe file of the reserve's size (at least [`PROBE_MIN_BYTES`]) written and synced.
    fn space_is_back(&self) -> bool {
        if free_bytes(&self.path).is_none_or(|free| free < self.min_free_bytes) {
            return false;
        }
        let probe = self.path.join(PROBE_FILE);
        let written = write_probe(&probe, self.min_free_bytes.max(PROBE_MIN_BYTES));
        let _ = std::fs::remove_file(&probe);
        written.is_ok()
    }

    /// Reopens the data directory after fjall poisoned itself on a full disk: under the DDL
    /// lock and with no idle compaction running, waits (up to [`SNAPSHOT_WAIT`]) for the
    /// snapshots on the old database to end (false: try again later), drops it (and its lock
    /// file), opens the directory as at startup (journal check, replay), syncs the replayed
    /// journals, swaps the new store in, tells the listeners, marks the tickets that were not
    /// durable as lost and clears the refusal. Holding the store lock for writing excludes
    /// every commit, handle lookup and new snapshot meanwhile: reads wait, and then read the
    /// reopened store.
    fn reopen(&self) -> Result<bool> {
        let mut next_id = self.ddl.lock();
        let _pass = self.settle_pass.lock();
        let deadline = std::time::Instant::now() + SNAPSHOT_WAIT;
        let mut store = loop {
            let guard = self.store.write();
            let open = guard
                .as_ref()
                .map_or(0, |s| s.db.supervisor.snapshot_tracker.open_snapshots());
            if open == 0 {
                break guard;
            }
            drop(guard);
            if std::time::Instant::now() >= deadline {
                tracing::info!(open, "snapshots still open: reopening later");
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        drop(store.take());
        // A point read that cloned a handle before the lock was taken keeps the old database
        // (and its lock file) a moment longer.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let (mut new, max_id) = loop {
            match open_store(&self.path, &self.params) {
                Err(StorageError::Engine(m))
                    if m == LOCKED && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5))
                }
                other => break other?,
            }
        };
        new.generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        *store = Some(new);
        *next_id = (*next_id).max(max_id + 1);
        for listener in self.listeners.lock().iter() {
            listener();
        }
        // The journals replayed hold bytes written after their last sync (the tail fjall
        // wrote out when the old database was dropped): make them durable before a sync of
        // the newest journal is taken to cover them. A failure here is a failed fsync.
        if let Err(e) = sync_journals(&self.path) {
            self.fail(
                &format!("syncing the replayed journals failed ({e})"),
                FaultCause::Io,
            );
            return Err(StorageError::Io(e));
        }
        self.dirty.store(false, Ordering::Release);
        self.group.recover();
        let mut fault = self.fault.lock();
        if self.refusal.load(Ordering::Acquire) == Refusal::REOPEN {
            *fault = None;
            self.refusal.store(Refusal::NONE, Ordering::Release);
        }
        Ok(true)
    }

    /// The settle thread. fjall compacts only in reaction to a flush (a few rounds each), so a
    /// tree written faster than that, such as by a bulk load, keeps levels over their target
    /// sizes (and L0 tables every range read opens) until writes resume. Once no write has come
    /// for `after` and fjall is neither flushing nor compacting, this runs fjall's own
    /// compaction strategy on each keyspace (with fjall's garbage-collection watermark, as its
    /// workers do) until no tree changes, then waits for the next writes. It also looks once
    /// after open. It stops between two compactions when writes resume or the storage is
    /// dropped; a compaction in progress finishes first. Once settled it also releases the
    /// tree versions nothing reads any more ([`Inner::release_old_versions`]).
    fn settle_loop(&self, after: Duration) {
        use fjall::AbstractTree;
        /// Where the settle thread stands since the last write it saw.
        #[derive(PartialEq)]
        enum State {
            /// Trees may hold compaction work: run a pass after the next wait. The state at
            /// open too: a previous run (or a crash) may have left work, and fjall queues just
            /// one compaction round at open.
            Unsettled,
            /// The last pass changed a tree: run another without waiting.
            Changing,
            /// A pass changed nothing: old versions are still to be released.
            Settled,
            /// Nothing left to do until the next write.
            Released,
        }
        let seqno = || self.store().map_or(0, |s| s.db.seqno());
        let mut seen = seqno();
        let mut state = State::Unsettled;
        loop {
            {
                let mut c = self.group.control().lock();
                if !c.stop && state != State::Changing {
                    self.settle.wait_for(&mut c, after);
                }
                if c.stop {
                    return;
                }
            }
            if state == State::Changing {
                state = State::Unsettled; // one pass without waiting, not a spin
            }
            let now = seqno();
            if now != seen {
                (seen, state) = (now, State::Unsettled);
                continue;
            }
            // A pass holds clones of the database and its handles: a reopen waits for it to
            // end, and none starts while writes are refused (it would need space anyway).
            let _pass = self.settle_pass.lock();
            if self.refusal.load(Ordering::Acquire) != Refusal::NONE {
                continue;
            }
            let Ok((db, keyspaces)) = self.store().map(|s| {
                let keyspaces: Vec<Keyspace> = std::iter::once(s.meta.clone())
                    .chain(s.handles.values().cloned())
                    .collect();
                (s.db.clone(), keyspaces)
            }) else {
                continue;
            };
            if state == State::Released
                || db.outstanding_flushes() > 0
                || db.active_compactions() > 0
            {
                continue;
            }
            if state == State::Settled {
                if Self::release_old_versions(&db, &keyspaces) {
                    state = State::Released;
                }
                continue;
            }
            let mut changed = false;
            for ks in keyspaces {
                if self.group.control().lock().stop || db.seqno() != seen {
                    break;
                }
                let before = ks.tree.current_version().id();
                let gc = db.supervisor.snapshot_tracker.get_seqno_safe_to_gc();
                let cp = crash::before(Event::Compact);
                if let Err(e) = ks.tree.compact(ks.config.compaction_strategy.clone(), gc) {
                    tracing::warn!(error = ?e, "idle compaction failed");
                    continue;
                }
                crash::after(Event::Compact, cp);
                if ks.tree.current_version().id() != before {
                    changed = true;
                    tracing::debug!(keyspace = %ks.name(), "idle compaction round");
                }
            }
            // Another pass right away while trees change, unless writes came meanwhile (the
            // next turn then sees them).
            state = match (changed, db.seqno() == seen) {
                (_, false) => State::Unsettled,
                (true, true) => State::Changing,
                (false, true) => State::Settled,
            };
        }
    }

    /// Releases the versions of each tree that no reader can ask for, so that the tables
    /// compactions replaced are deleted now. fjall does this when a memtable rotates or a
    /// compaction ends, each time keeping the version before the newest: after a bulk load the
    /// inputs of the last compactions, as large as the table itself, stayed on disk until the
    /// next writes or a restart. Returns false, to be tried again later, while a snapshot is
    /// open.
    ///
    /// Why only the newest version is needed: a read asks for the newest version whose
    /// sequence number is below the one it reads at, and every read starting now reads at the
    /// tracker's number, which is above the newest version's (fjall raises it past each new
    /// version). The maintenance keeps the newest version below the watermark and all after it.
    /// This runs only once settled with no snapshot open: every write, flush and compaction
    /// advances the database's sequence number, which the settle loop watches, so nothing has
    /// changed a tree for at least the settle delay and no read can still be between taking an
    /// older number and asking for its version. A read already running holds its version, and
    /// a table file is deleted only when its last holder drops it.
    fn release_old_versions(db: &Database, keyspaces: &[Keyspace]) -> bool {
        use fjall::AbstractTree;
        let tracker = &db.supervisor.snapshot_tracker;
        let watermark = tracker.get();
        if tracker.open_snapshots() > 0 {
            return false;
        }
        for ks in keyspaces {
            if let Err(e) = ks
                .tree
                .get_version_history_lock()
                .maintenance(ks.path(), watermark)
            {
                tracing::warn!(error = ?e, keyspace = %ks.name(), "releasing old versions failed");
            }
        }
        true
    }

    /// Commits `batch` to fjall and, for `Sync`, waits for group commit. The caller holds the
    /// store lock (for reading) and passes it in: it is released before the wait.
    fn commit(
        &self,
        store: MappedRwLockReadGuard<'_, Store>,
        batch: fjall::OwnedWriteBatch,
        durability: Durability,
    ) -> Result<()> {
        match durability {
            Durability::Sync => {
                let ticket = self.commit_deferred(batch);
                drop(store);
                self.group.wait(ticket?)
            }
            Durability::Buffered => {
                self.check_writable()?;
                let cp = crash::before(Event::Commit);
                batch
                    .durability(Some(PersistMode::Buffer))
                    .commit()
                    .map_err(|e| self.commit_failed(e))?;
                crash::after(Event::Commit, cp);
                self.dirty.store(true, Ordering::Release);
                Ok(())
            }
        }
    }
}

/// fjall's newest journal file (`<dir>/<n>.jnl`), opened for syncing only.
struct JournalFile {
    dir: std::path::PathBuf,
    id: u64,
    file: std::fs::File,
}

impl JournalFile {
    fn path(dir: &Path, id: u64) -> std::path::PathBuf {
        dir.join(format!("{id}.jnl"))
    }

    /// The journal with the highest number in `dir`, or `None` if there is none.
    fn open_newest(dir: &Path) -> Option<JournalFile> {
        let id = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".jnl")?
                    .parse::<u64>()
                    .ok()
            })
            .max()?;
        let file = std::fs::File::open(Self::path(dir, id)).ok()?;
        Some(JournalFile {
            dir: dir.to_path_buf(),
            id,
            file,
        })
    }

    /// Follows rotations to the newest journal, then syncs it.
    fn sync(&mut self, mode: PersistMode) -> Result<()> {
        loop {
            let next = Self::path(&self.dir, self.id + 1);
            match std::fs::File::open(&next) {
                Ok(f) => {
                    self.file = f;
                    self.id += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(StorageError::Io(e)),
            }
        }
        match mode {
            PersistMode::SyncAll => self.file.sync_all()?,
            _ => self.file.sync_data()?,
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn scan_fjall(
    inner: &Inner,
    snapshot: &fjall::Snapshot,
    name: &str,
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
        let (k, v) = guard
            .into_inner()
            .map_err(|e| inner.read_err(name, ks, e))?;
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
        if inner.store()?.handles.contains_key(name) {
            return Ok(());
        }
        inner.check_writable()?;
        let mut next_id = inner.ddl.lock();
        let handle = {
            let store = inner.store()?;
            if store.handles.contains_key(name) {
                return Ok(());
            }
            let id = *next_id;
            *next_id += 1;
            let handle = store
                .db
                .keyspace(&internal_name(id), || {
                    data_keyspace_options(inner.params.memtable_bytes, inner.params.kv_separation)
                })
                .map_err(engine_err)?;
            let mut batch = store.db.batch();
            batch.insert(&store.meta, name_key(name), id.to_be_bytes());
            inner.commit(store, batch, Durability::Sync)?;
            handle
        };
        if let Some(store) = inner.store_for_ddl().as_mut() {
            store.handles.insert(name.to_owned(), handle);
        }
        Ok(())
    }

    fn drop_keyspace(&self, name: &str) -> Result<()> {
        let inner = &*self.inner;
        let _ddl = inner.ddl.lock();
        let (handle, db) = {
            let store = inner.store()?;
            let Some(handle) = store.handles.get(name).cloned() else {
                return Ok(());
            };
            inner.check_writable()?;
            let db = store.db.clone();
            let mut batch = store.db.batch();
            batch.remove(&store.meta, name_key(name));
            inner.commit(store, batch, Durability::Sync)?;
            (handle, db)
        };
        let others: Vec<Keyspace> = {
            let mut guard = inner.store_for_ddl();
            let Some(store) = guard.as_mut() else {
                return Err(reopening());
            };
            store.handles.remove(name);
            store
                .handles
                .values()
                .cloned()
                .chain(std::iter::once(store.meta.clone()))
                .collect()
        };
        // Files are removed when the last handle (e.g. of a running scan) is dropped.
        db.delete_keyspace(handle).map_err(engine_err)?;
        // fjall's sealed journals also hold a handle of every keyspace written in them, until
        // every keyspace with writes in such a journal has flushed past them. On a quiet
        // server small keyspaces (catalog, statistics) can keep their memtables for hours, and
        // with them the dropped keyspace's files: a deleted table or backup kept its disk space
        // until the journals reached fjall's size limit or the next restart. Sealing the other
        // keyspaces' memtables lets their flushes retire those journals. Empty memtables are
        // left alone; the flushes run on fjall's workers, not here.
        for ks in &others {
            ks.rotate_memtable().map_err(engine_err)?;
        }
        Ok(())
    }

    fn keyspace_exists(&self, name: &str) -> bool {
        self.inner
            .store()
            .is_ok_and(|s| s.handles.contains_key(name))
    }

    fn list_keyspaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .store()
            .map(|s| s.handles.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ks = self.inner.handle(keyspace)?;
        if key_unstorable(key) {
            return Ok(None);
        }
        Ok(ks
            .get(key)
            .map_err(|e| self.inner.read_err(keyspace, &ks, e))?
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
        let (ks, snapshot) = {
            let store = self.inner.store()?;
            let ks = store
                .handles
                .get(keyspace)
                .cloned()
                .ok_or_else(|| StorageError::KeyspaceNotFound(keyspace.to_owned()))?;
            (ks, store.db.snapshot())
        };
        scan_fjall(
            &self.inner,
            &snapshot,
            keyspace,
            &ks,
            lower,
            upper,
            reverse,
            f,
        )
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let store = self.inner.store()?;
        match self.inner.fjall_batch(&store, batch)? {
            Some(fb) => self.inner.commit(store, fb, durability),
            None => Ok(()),
        }
    }

    fn commit(&self, batch: WriteBatch) -> Result<CommitTicket> {
        let store = self.inner.store()?;
        match self.inner.fjall_batch(&store, batch)? {
            Some(fb) => self.inner.commit_deferred(fb),
            None => Ok(CommitTicket::DURABLE),
        }
    }

    fn wait_durable(&self, ticket: CommitTicket) -> Result<()> {
        self.inner.group.wait(ticket)
    }

    fn durable(&self, ticket: CommitTicket) -> DurableFuture {
        DurableFuture::new(Arc::clone(self.inner.group.watermark()), ticket)
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        // Without a store (a reopen failed to open the directory) the snapshot's reads fail.
        let snapshot = self.inner.store().ok().map(|s| s.db.snapshot());
        Box::new(FjallSnapshot {
            inner: Arc::clone(&self.inner),
            snapshot,
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
        if self.inner.refusal.load(Ordering::Acquire) >= Refusal::FAILED {
            return self.inner.refused();
        }
        self.inner.dirty.store(false, Ordering::Release);
        self.inner.persist(PersistMode::SyncAll)
    }

    fn fsync_count(&self) -> u64 {
        self.inner.fsyncs.load(Ordering::Relaxed)
    }

    fn write_fault(&self) -> Option<WriteFault> {
        self.inner.write_fault()
    }

    fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    fn on_reopen(&self, listener: Box<dyn Fn() + Send + Sync>) {
        self.inner.listeners.lock().push(listener);
    }

    fn verify_files(&self) -> Result<Vec<crate::FileDamage>> {
        let keyspaces: Vec<(String, Keyspace)> = {
            let store = self.inner.store()?;
            let mut v: Vec<(String, Keyspace)> = store
                .handles
                .iter()
                .map(|(n, k)| (n.clone(), k.clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.push((META_KEYSPACE.to_owned(), store.meta.clone()));
            v
        };
        Ok(keyspaces
            .iter()
            .flat_map(|(name, ks)| damaged_files(name, ks))
            .collect())
    }

    fn storage_stats(&self) -> StorageStats {
        let inner = &self.inner;
        let Ok((db, keyspaces)) = inner.store().map(|s| {
            let mut keyspaces: Vec<Keyspace> = s.handles.values().cloned().collect();
            keyspaces.push(s.meta.clone());
            (s.db.clone(), keyspaces)
        }) else {
            return StorageStats::default();
        };
        let sum = |f: &dyn Fn(&Keyspace) -> usize| keyspaces.iter().map(f).sum::<usize>() as u64;
        StorageStats {
            // fjall's own figures; some of these accessors are marked experimental by fjall.
            memtable_bytes: Some(db.write_buffer_size()),
            sealed_memtables: Some(sum(&|k| k.sealed_memtable_count())),
            pending_flushes: Some(db.outstanding_flushes() as u64),
            journals: Some(db.journal_count() as u64),
            journal_bytes: db.journal_disk_space().ok(),
            active_compactions: Some(db.active_compactions() as u64),
            compactions: Some(db.compactions_completed() as u64),
            segments: Some(sum(&|k| k.table_count())),
            block_cache_bytes: Some(db.cache_size()),
            block_cache_capacity_bytes: Some(db.cache_capacity()),
            fsync_seconds: Some(inner.sync_seconds.stats()),
            group_commit_batches: Some(inner.sync_batches.stats()),
            ..StorageStats::default()
        }
    }
}

impl Drop for FjallStorage {
    fn drop(&mut self) {
        self.inner.group.stop();
        self.inner.settle.notify_all();
        if let Some(t) = self.syncer.take() {
            let _ = t.join();
        }
        if let Some(t) = self.settler.take() {
            let _ = t.join();
        }
        if self.inner.refusal.load(Ordering::Acquire) >= Refusal::FAILED {
            tracing::error!("storage failed earlier: no final journal sync");
        } else if let Err(e) = self.inner.db().and_then(|db| {
            db.persist(PersistMode::SyncAll)
                .map_err(|e| StorageError::Engine(e.to_string()))
        }) {
            tracing::error!(error = %e, "final journal sync failed");
        }
    }
}

struct FjallSnapshot {
    inner: Arc<Inner>,
    /// `None` if taken while the store was closed.
    snapshot: Option<fjall::Snapshot>,
}

impl FjallSnapshot {
    fn fjall(&self) -> Result<&fjall::Snapshot> {
        self.snapshot.as_ref().ok_or_else(reopening)
    }
}

/// A snapshot reads the handles of the store it was taken on: a reopen waits until no
/// snapshot is open, so the store cannot change under one.
impl Snapshot for FjallSnapshot {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let snapshot = self.fjall()?;
        let ks = self.inner.handle(keyspace)?;
        if key_unstorable(key) {
            return Ok(None);
        }
        Ok(snapshot
            .get(&ks, key)
            .map_err(|e| self.inner.read_err(keyspace, &ks, e))?
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
        let snapshot = self.fjall()?;
        let ks = self.inner.handle(keyspace)?;
        scan_fjall(
            &self.inner,
            snapshot,
            keyspace,
            &ks,
            lower,
            upper,
            reverse,
            f,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a crash inside fjall's creation of a new database leaves (found by the
    /// system-call crash points): the lock, the keyspaces directory, a first journal empty or
    /// preallocated (zeros) and no marker or a partial one. It opens, as a new database; a
    /// directory that holds more is left for fjall to refuse.
    #[test]
    fn an_interrupted_creation_is_created_again() {
        let cases = [
            (None, 0),
            (Some(&b""[..]), 0),
            (Some(&b"FJ"[..]), 0),
            (None, 1 << 20),
        ];
        for (marker, journal_len) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("lock"), b"").unwrap();
            std::fs::create_dir(dir.path().join("keyspaces")).unwrap();
            std::fs::write(dir.path().join("0.jnl"), vec![0u8; journal_len]).unwrap();
            if let Some(m) = marker {
                std::fs::write(dir.path().join("version"), m).unwrap();
            }
            let s = FjallStorage::open(dir.path()).expect("opens as a new database");
            s.create_keyspace("t").unwrap();
            let mut b = WriteBatch::default();
            b.put("t", b"k".to_vec(), b"v".to_vec());
            s.write(b, Durability::Sync).unwrap();
            drop(s);
            let s = FjallStorage::open(dir.path()).unwrap();
            assert_eq!(s.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        }
        // A journal with content and no marker is not an interrupted creation.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lock"), b"").unwrap();
        std::fs::create_dir(dir.path().join("keyspaces")).unwrap();
        std::fs::write(dir.path().join("0.jnl"), b"data").unwrap();
        assert!(FjallStorage::open(dir.path()).is_err());
        assert_eq!(std::fs::read(dir.path().join("0.jnl")).unwrap(), b"data");
    }

    /// A storage whose settle thread starts after 20 ms without writes, beside one fjall worker.
    fn open_settling(path: &Path) -> FjallStorage {
        FjallStorage::open_with(
            path,
            FjallOptions {
                worker_threads: Some(1),
                settle_after: Some(Duration::from_millis(20)),
                ..FjallOptions::default()
            },
        )
        .unwrap()
    }

    /// Bytes of the files under `dir`.
    fn tree_bytes(dir: &Path) -> u64 {
        let mut total = 0;
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let Ok(meta) = e.metadata() else { continue };
            total += if meta.is_dir() {
                tree_bytes(&e.path())
            } else {
                meta.len()
            };
        }
        total
    }

    #[test]
    fn stats_count_group_commit_syncs_and_the_batches_they_cover() {
        let dir = tempfile::tempdir().unwrap();
        let st = FjallStorage::open(dir.path()).unwrap();
        st.create_keyspace("t").unwrap();
        let before = st.storage_stats();
        let mut tickets = Vec::new();
        for i in 0u8..5 {
            let mut b = WriteBatch::new();
            b.put("t", vec![i], vec![i; 10]);
            tickets.push(st.commit(b).unwrap());
        }
        for t in tickets {
            st.wait_durable(t).unwrap();
        }
        let after = st.storage_stats();
        let (fs0, fs1) = (
            before.fsync_seconds.unwrap(),
            after.fsync_seconds.clone().unwrap(),
        );
        let (gc0, gc1) = (
            before.group_commit_batches.unwrap(),
            after.group_commit_batches.clone().unwrap(),
        );
        let syncs = fs1.count() - fs0.count();
        assert!((1..=5).contains(&syncs), "{syncs}");
        assert_eq!(gc1.count() - gc0.count(), syncs);
        assert_eq!(gc1.sum - gc0.sum, 5.0);
        assert_eq!(fs1.counts.len(), fs1.bounds.len() + 1);
        assert!(after.memtable_bytes.unwrap() > 0);
        assert!(after.journals.unwrap() >= 1);
        assert!(after.segments.is_some() && after.read_cache_hits.is_none());
    }

    /// A dropped keyspace's files go while the storage stays open, even though another
    /// keyspace keeps a small unflushed write in the journals the dropped one was written to.
    #[test]
    fn a_dropped_keyspace_frees_its_files_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let st = FjallStorage::open_with(
            dir.path(),
            FjallOptions {
                memtable_bytes: 1 << 20,
                ..FjallOptions::default()
            },
        )
        .unwrap();
        st.create_keyspace("small").unwrap();
        st.create_keyspace("big").unwrap();
        let mut batch = WriteBatch::default();
        batch.put("small", b"k".to_vec(), b"v".to_vec());
        st.write(batch, Durability::Buffered).unwrap();
        // fjall seals a journal once it passes 64 MB at a flush: write well beyond that, in
        // values that do not compress.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0u32..12_000 {
            let value: Vec<u8> = (0..1024)
                .flat_map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()
                })
                .collect();
            let mut batch = WriteBatch::default();
            batch.put("big", round.to_be_bytes().to_vec(), value);
            st.write(batch, Durability::Buffered).unwrap();
        }
        st.flush().unwrap();
        let keyspaces = dir.path().join("keyspaces");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while tree_bytes(&keyspaces) < 50 << 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "big was never flushed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        st.drop_keyspace("big").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = tree_bytes(&keyspaces);
            if left < 10 << 20 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{left} bytes still on disk 30 s after the drop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(st.get("small", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(st.get("big", b"k").is_err());
    }

    /// Idle compaction runs fjall's own strategy beside fjall's workers: after many flushes and
    /// idle time, every item still reads back, fjall's L0 trigger is not exceeded, and dropping
    /// the storage stops the thread (the directory opens again at once). The benefit shows only
    /// on trees of gigabytes (docs/benchmarks.md); this checks that it is safe.
    #[test]
    fn idle_compaction_keeps_every_item_and_stops_with_the_storage() {
        let dir = tempfile::tempdir().unwrap();
        let open = || open_settling(dir.path());
        let st = open();
        st.create_keyspace("t").unwrap();
        let ks = st.inner.handle("t").unwrap();
        let value = |i: u64| vec![(i % 251) as u8; 1024];
        let (flushes, per_flush) = (12u64, 300u64);
        for f in 0..flushes {
            for i in f * per_flush..(f + 1) * per_flush {
                let mut b = WriteBatch::default();
                b.put(
                    "t",
                    i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes(),
                    value(i),
                );
                st.write(b, Durability::Buffered).unwrap();
            }
            ks.rotate_memtable_and_wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while ks.l0_table_count() >= 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "L0 left over its trigger"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let check = |st: &FjallStorage| {
            let mut n = 0u64;
            st.scan(
                "t",
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    // The inverse of the multiplier above, modulo 2^64.
                    let i = u64::from_be_bytes(k.try_into().unwrap())
                        .wrapping_mul(0xf1de_83e1_9937_733d);
                    assert_eq!(v, value(i).as_slice());
                    n += 1;
                    true
                },
            )
            .unwrap();
            assert_eq!(n, flushes * per_flush);
        };
        check(&st);
        drop(ks);
        drop(st);
        check(&open());
    }

    #[test]
    fn replaced_tables_leave_the_disk_once_writes_pause() {
        use fjall::AbstractTree;
        let dir = tempfile::tempdir().unwrap();
        let st = open_settling(dir.path());
        st.create_keyspace("t").unwrap();
        let ks = st.inner.handle("t").unwrap();
        // The same keys rewritten in three memtables, then compacted into one table: the
        // version before the compaction still lists the three tables it replaced.
        for round in 0..3u8 {
            for i in 0..200u64 {
                let mut b = WriteBatch::default();
                b.put("t", i.to_be_bytes(), vec![round; 1024]);
                st.write(b, Durability::Buffered).unwrap();
            }
            ks.rotate_memtable_and_wait().unwrap();
        }
        ks.major_compact().unwrap();
        let table_files = || std::fs::read_dir(ks.path().join("tables")).unwrap().count();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let live = ks.tree.current_version().iter_tables().count();
            if ks.tree.version_free_list_len() == 0 && table_files() == live {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} table files on disk, {live} in the tree, {} old versions kept",
                table_files(),
                ks.tree.version_free_list_len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        for i in 0..200u64 {
            assert_eq!(
                st.get("t", &i.to_be_bytes()).unwrap().unwrap(),
                vec![2u8; 1024]
            );
        }
    }

    /// Under the free-space reserve writes are refused before they reach fjall (which stays
    /// healthy: nothing poisons it), reads go on, and the same data directory takes writes
    /// again once the reserve is met (here: reopened without one).
    #[test]
    fn writes_are_refused_below_the_free_space_reserve_and_reads_go_on() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = FjallStorage::open(dir.path()).unwrap();
            st.create_keyspace("t").unwrap();
            let mut b = WriteBatch::new();
            b.put("t", b"k", b"v");
            st.write(b, Durability::Sync).unwrap();
        }
        let st = FjallStorage::open_with(
            dir.path(),
            FjallOptions {
                min_free_bytes: u64::MAX,
                ..FjallOptions::default()
            },
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while st.write_fault().is_none() {
            assert!(std::time::Instant::now() < deadline, "never refused");
            std::thread::sleep(Duration::from_millis(10));
        }
        let fault = st.write_fault().unwrap();
        assert!(matches!(fault, WriteFault::DiskFull(_)), "{fault:?}");
        assert!(fault.message().starts_with("No space left on device"));
        for durability in [Durability::Sync, Durability::Buffered] {
            let mut b = WriteBatch::new();
            b.put("t", b"k2", b"v2");
            let err = st.write(b, durability).unwrap_err();
            assert!(err.is_disk_full(), "{err:?}");
        }
        let mut b = WriteBatch::new();
        b.put("t", b"k3", b"v3");
        assert!(st.commit(b).unwrap_err().is_disk_full());
        assert!(st.create_keyspace("u").unwrap_err().is_disk_full());
        assert_eq!(st.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(st.get("t", b"k2").unwrap(), None);
        assert!(
            st.inner.db().unwrap().persist(PersistMode::Buffer).is_ok(),
            "fjall is not poisoned"
        );
        drop(st);
        let st = FjallStorage::open(dir.path()).unwrap();
        assert_eq!(st.write_fault(), None);
        let mut b = WriteBatch::new();
        b.put("t", b"k2", b"v2");
        st.write(b, Durability::Sync).unwrap();
        assert_eq!(st.get("t", b"k2").unwrap().as_deref(), Some(&b"v2"[..]));
    }

    #[test]
    fn journal_file_follows_rotations_to_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        assert!(JournalFile::open_newest(dir.path()).is_none());
        for id in [3u64, 4] {
            std::fs::write(JournalFile::path(dir.path(), id), b"").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        let mut j = JournalFile::open_newest(dir.path()).unwrap();
        assert_eq!(j.id, 4);
        j.sync(PersistMode::SyncData).unwrap();
        assert_eq!(j.id, 4);
        for id in [5u64, 6] {
            std::fs::write(JournalFile::path(dir.path(), id), b"").unwrap();
        }
        std::fs::remove_file(JournalFile::path(dir.path(), 4)).unwrap();
        j.sync(PersistMode::SyncAll).unwrap();
        assert_eq!(j.id, 6, "rotated twice since the last sync");
    }

    /// Deferred commits across journal rotations (fjall rotates past 64 MB): visible at once,
    /// durable after the wait, all present after a reopen.
    #[test]
    fn deferred_commits_survive_journal_rotation() {
        let dir = tempfile::tempdir().unwrap();
        // Incompressible, so that the journal really grows.
        let noise = ferrodyn_testhost::incompressible(8192);
        let value = |i: u32| &noise[(i % 4096) as usize..][..4096];
        let mut written = 0u32;
        {
            let s = FjallStorage::open(dir.path()).unwrap();
            s.create_keyspace("t").unwrap();
            let mut last = CommitTicket::DURABLE;
            let mut after_rotation = None;
            while after_rotation.is_none_or(|n| written < n) {
                assert!(
                    written < 60_000,
                    "no journal rotation after {written} writes"
                );
                let mut b = WriteBatch::new();
                b.put("t", written.to_be_bytes(), value(written));
                let t = s.commit(b).unwrap();
                assert!(t > last, "tickets grow");
                last = t;
                assert!(s.get("t", &written.to_be_bytes()).unwrap().is_some());
                written += 1;
                if written.is_multiple_of(1000) {
                    s.wait_durable(t).unwrap();
                    let rotated = JournalFile::open_newest(dir.path()).is_some_and(|j| j.id > 0);
                    if rotated && after_rotation.is_none() {
                        after_rotation = Some(written + 2000);
                    }
                }
            }
            s.wait_durable(last).unwrap();
        }
        let s = FjallStorage::open(dir.path()).unwrap();
        for i in 0..written {
            assert_eq!(
                s.get("t", &i.to_be_bytes()).unwrap().as_deref(),
                Some(value(i))
            );
        }
    }
}

#[cfg(test)]
mod corruption_tests {
    use super::*;

    fn put_many(st: &FjallStorage, n: u32, marker: &str) {
        for i in 0..n {
            let mut batch = WriteBatch::default();
            batch.put(
                "t",
                format!("key-{i:05}").into_bytes(),
                format!("{marker}-{i:05}-{}", "x".repeat(64)).into_bytes(),
            );
            st.write(batch, Durability::Sync).unwrap();
        }
    }

    fn newest_journal(dir: &Path) -> std::path::PathBuf {
        crate::journal_check::journal_files(dir).pop().unwrap()
    }

    fn find(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).position(|w| w == needle).unwrap()
    }

    #[test]
    fn a_damaged_table_file_is_named_and_never_read_silently() {
        let dir = tempfile::tempdir().unwrap();
        let table = {
            let st = FjallStorage::open(dir.path()).unwrap();
            st.create_keyspace("t").unwrap();
            put_many(&st, 2000, "value");
            let ks = st.inner.handle("t").unwrap();
            ks.rotate_memtable_and_wait().unwrap();
            assert_eq!(st.verify_files().unwrap(), vec![]);
            let version = fjall::AbstractTree::current_version(&ks.tree);
            let tables: Vec<_> = version
                .iter_tables()
                .map(|t| t.path.to_path_buf())
                .collect();
            assert_eq!(tables.len(), 1);
            tables[0].clone()
        };
        // A flipped bit in the first data block (index and filter blocks come later).
        let mut bytes = std::fs::read(&table).unwrap();
        bytes[200] ^= 0x08;
        std::fs::write(&table, bytes).unwrap();

        let st = FjallStorage::open(dir.path()).unwrap();
        let damaged = st.verify_files().unwrap();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert_eq!(damaged[0].file, table);
        assert_eq!(damaged[0].keyspace.as_deref(), Some("t"));
        let err = st
            .scan(
                "t",
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |_, _| true,
            )
            .unwrap_err();
        match err {
            StorageError::Corrupt(msg) => {
                assert!(msg.contains(&table.display().to_string()), "{msg}")
            }
            other => panic!("expected a corruption error, got {other:?}"),
        }
        let err = st.get("t", b"key-00000").unwrap_err();
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
        // Keys in other blocks still read.
        assert!(st.get("t", b"key-01999").unwrap().is_some());
    }

    #[test]
    fn blob_files_verify_and_a_damaged_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let options = || FjallOptions {
            kv_separation: Some(32),
            ..FjallOptions::default()
        };
        let st = FjallStorage::open_with(dir.path(), options()).unwrap();
        st.create_keyspace("t").unwrap();
        put_many(&st, 500, "blob-value");
        let ks = st.inner.handle("t").unwrap();
        ks.rotate_memtable_and_wait().unwrap();
        assert_eq!(st.verify_files().unwrap(), vec![]);
        let version = fjall::AbstractTree::current_version(&ks.tree);
        let blobs: Vec<_> = version
            .blob_files
            .iter()
            .map(|b| b.path().to_path_buf())
            .collect();
        assert_eq!(blobs.len(), 1);
        drop((ks, version, st));
        let mut bytes = std::fs::read(&blobs[0]).unwrap();
        let at = find(&bytes, b"blob-value-00100");
        bytes[at] ^= 0x01;
        std::fs::write(&blobs[0], bytes).unwrap();
        let st = FjallStorage::open_with(dir.path(), options()).unwrap();
        let damaged = st.verify_files().unwrap();
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert_eq!(damaged[0].file, blobs[0]);
        let err = st.get("t", b"key-00100").unwrap_err();
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
    }

    #[test]
    fn damage_in_the_middle_of_the_journal_fails_the_open_with_file_and_offset() {
        for what in ["value byte", "batch start tag"] {
            let dir = tempfile::tempdir().unwrap();
            {
                let st = FjallStorage::open(dir.path()).unwrap();
                st.create_keyspace("t").unwrap();
                put_many(&st, 50, "marker");
            }
            let journal = newest_journal(dir.path());
            let mut bytes = std::fs::read(&journal).unwrap();
            let value = find(&bytes, b"marker-00020");
            // Or the start marker of the same batch: fjall alone would truncate there.
            let offset = if what == "value byte" {
                value + 3
            } else {
                bytes[..value]
                    .windows(4)
                    .rposition(|w| w == b"FJL\x03")
                    .unwrap()
                    + 4
            };
            bytes[offset] ^= 0xfe;
            std::fs::write(&journal, bytes).unwrap();
            let err = FjallStorage::open(dir.path()).unwrap_err();
            let StorageError::Corrupt(msg) = err else {
                panic!("{what}: expected a corruption error, got {err:?}");
            };
            assert!(
                msg.contains(&journal.display().to_string()),
                "{what}: {msg}"
            );
            assert!(msg.contains("offset"), "{what}: {msg}");
            // Nothing was truncated: the journal is as damaged as before, for an operator.
            assert!(std::fs::metadata(&journal).unwrap().len() > offset as u64);
        }
    }

    #[test]
    fn a_torn_journal_tail_recovers_to_the_last_intact_batch() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = FjallStorage::open(dir.path()).unwrap();
            st.create_keyspace("t").unwrap();
            put_many(&st, 30, "marker");
        }
        let journal = newest_journal(dir.path());
        let mut bytes = std::fs::read(&journal).unwrap();
        // Cut the last batch in the middle of its value, zeros after (a torn write).
        let cut = find(&bytes, b"marker-00029") + 5;
        for b in &mut bytes[cut..] {
            *b = 0;
        }
        std::fs::write(&journal, bytes).unwrap();
        let st = FjallStorage::open(dir.path()).unwrap();
        assert!(st.get("t", b"key-00028").unwrap().is_some());
        assert!(st.get("t", b"key-00029").unwrap().is_none());
    }
}

/// Faults that poison fjall, on a real size-limited filesystem: a small tmpfs (mounting it
/// needs root, as the server's disk-full tests do) that a ballast file fills.
#[cfg(test)]
mod reopen_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    use ferrodyn_testhost::{fill_until_full as fill, Tmpfs};

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// fjall meets ENOSPC itself (no reserve): the write whose journal bytes found no space is
    /// refused with the disk-full error, its ticket and every later one before the reopen stay
    /// failed for good, reads go on, a snapshot open meanwhile holds the reopen back and reads
    /// what it saw; once space is back and the snapshot ended the store is reopened in-process
    /// (the listener is told), writes resume, and every acknowledged write is there, also after
    /// a restart.
    #[test]
    fn a_store_poisoned_by_a_full_disk_is_reopened_once_space_is_back() {
        let base = tempfile::tempdir().unwrap();
        let mnt = base.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let _tmpfs = Tmpfs::mount(&mnt, "16m");
        let dir = mnt.join("data");
        let options = || FjallOptions {
            min_free_bytes: 0,
            cache_bytes: 1 << 20,
            ..FjallOptions::default()
        };
        let st = FjallStorage::open_with(&dir, options()).unwrap();
        let reopened = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&reopened);
        st.on_reopen(Box::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        st.create_keyspace("t").unwrap();
        let value = vec![0xa5u8; 700];
        let mut acked = Vec::new();
        for i in 0..20u32 {
            let mut b = WriteBatch::new();
            b.put("t", format!("a{i:05}"), value.clone());
            st.write(b, Durability::Sync).unwrap();
            acked.push(format!("a{i:05}"));
        }
        let snapshot = st.snapshot();

        let ballast = mnt.join("ballast");
        fill(&ballast);
        let mut lost = None;
        for i in 0..100_000u32 {
            let key = format!("b{i:05}");
            let mut b = WriteBatch::new();
            b.put("t", key.as_bytes(), value.clone());
            let ticket = st.commit(b).unwrap();
            match st.wait_durable(ticket) {
                Ok(()) => acked.push(key),
                Err(e) => {
                    assert!(e.is_disk_full(), "{e:?}");
                    assert!(e.to_string().starts_with("No space left on device"), "{e}");
                    lost = Some(ticket);
                    break;
                }
            }
        }
        let lost = lost.expect("the journal never met the full disk");
        let fault = st.write_fault().expect("writes are refused");
        assert!(matches!(fault, WriteFault::DiskFull(_)), "{fault:?}");
        let mut b = WriteBatch::new();
        b.put("t", b"refused", b"v");
        assert!(st
            .write(b, Durability::Buffered)
            .unwrap_err()
            .is_disk_full());
        for k in &acked {
            assert!(st.get("t", k.as_bytes()).unwrap().is_some(), "{k}");
        }

        // Space is back, but the snapshot keeps the old database: no reopen yet.
        std::fs::remove_file(&ballast).unwrap();
        std::thread::sleep(SNAPSHOT_WAIT + Duration::from_millis(500));
        assert_eq!(st.generation(), 0);
        assert!(st.write_fault().is_some());
        assert_eq!(
            snapshot.get("t", b"a00003").unwrap().as_deref(),
            Some(&value[..])
        );
        assert_eq!(snapshot.get("t", b"b00000").unwrap(), None);
        drop(snapshot);

        wait_for("the reopen", || st.write_fault().is_none());
        assert_eq!(st.generation(), 1);
        assert_eq!(reopened.load(Ordering::SeqCst), 1);
        // The lost ticket stays failed, however far the watermark moves on.
        let mut b = WriteBatch::new();
        b.put("t", b"after", b"v");
        st.write(b, Durability::Sync).unwrap();
        assert!(st.wait_durable(lost).unwrap_err().is_disk_full());
        let mut fut = st.durable(lost);
        let waker = std::task::Waker::noop();
        assert!(matches!(
            std::future::Future::poll(
                std::pin::Pin::new(&mut fut),
                &mut std::task::Context::from_waker(waker)
            ),
            std::task::Poll::Ready(Err(_))
        ));
        acked.push("after".into());
        // A batch staged against the old store is refused; one staged now is written.
        let mut b = WriteBatch::new();
        b.put("t", b"stale", b"v");
        b.staged_at(0);
        assert!(st.write(b, Durability::Sync).unwrap_err().is_disk_full());
        assert_eq!(st.get("t", b"stale").unwrap(), None);
        let mut b = WriteBatch::new();
        b.put("t", b"fresh", b"v");
        b.staged_at(st.generation());
        st.write(b, Durability::Sync).unwrap();
        acked.push("fresh".into());
        for k in &acked {
            assert!(st.get("t", k.as_bytes()).unwrap().is_some(), "{k}");
        }
        st.create_keyspace("u").unwrap();
        assert!(st.keyspace_exists("u"));
        drop(st);

        let st = FjallStorage::open_with(&dir, options()).unwrap();
        for k in &acked {
            assert!(st.get("t", k.as_bytes()).unwrap().is_some(), "{k} lost");
        }
        assert!(st.keyspace_exists("u"));
    }

    /// After an I/O failure (a failed fsync: fsyncgate) the engine never reopens in-process,
    /// however much space there is.
    #[test]
    fn an_io_failure_is_not_recovered_in_process() {
        let dir = tempfile::tempdir().unwrap();
        let st = FjallStorage::open(dir.path()).unwrap();
        st.create_keyspace("t").unwrap();
        let mut b = WriteBatch::new();
        b.put("t", b"k", b"v");
        st.write(b, Durability::Sync).unwrap();
        st.inner.fail(
            "syncing the journal to disk failed (Input/output error (os error 5))",
            FaultCause::Io,
        );
        std::thread::sleep(SPACE_CHECK_INTERVAL * 10);
        assert!(matches!(st.write_fault(), Some(WriteFault::Failed(_))));
        assert_eq!(st.generation(), 0);
        let mut b = WriteBatch::new();
        b.put("t", b"k2", b"v");
        assert!(matches!(
            st.write(b, Durability::Sync).unwrap_err(),
            StorageError::Refused(WriteFault::Failed(_))
        ));
        // A full disk met afterwards does not turn it into a recoverable fault.
        st.inner.fail(
            "writing the journal failed (No space left on device)",
            FaultCause::Space,
        );
        assert!(matches!(st.write_fault(), Some(WriteFault::Failed(_))));
        assert_eq!(st.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
}
