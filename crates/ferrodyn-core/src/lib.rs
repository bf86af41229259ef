//! The Ferrodyn engine: DynamoDB semantics on top of an ordered key-value store.
//!
//! Owns: the table catalog, item operations, conditional writes, capacity accounting.
//! Must not: know HTTP or the JSON wire format (inputs and outputs are model types).
//!
//! Architecture invariants:
//! - every DynamoDB write is exactly one atomic storage batch, acknowledged only once the storage
//!   layer reports it durable (when the engine runs with `Durability::Sync`); item writes may
//!   defer that wait to the caller (`write.rs`), control-plane writes never do;
//! - read-check-write sequences on one item run under that item's lock stripe, so conditional
//!   writes are linearizable per item.
#![forbid(unsafe_code)]

pub mod activity;
pub mod audit;
pub mod backups;
pub mod batch;
pub mod capacity;
pub mod check;
pub mod collections;
pub mod control;
pub mod formats;
pub mod index;
pub mod itemcodec;
pub mod items;
pub mod keys;
mod leases;
mod locks;
pub mod partiql;
pub mod pitr;
pub mod policies;
pub mod query;
pub mod records;
pub mod restore;
pub mod schema;
mod stats;
pub mod streams;
pub(crate) mod stripes;
mod sync;
pub mod table;
pub mod tags;
pub mod throttle;
pub mod transact;
pub mod ttl;
mod write;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::Arc;

use ferrodyn_model::Error;
use ferrodyn_storage::{Durability, Storage, StorageError};
use parking_lot::{Mutex, RwLock};

pub use table::{BillingMode, KeyAttr, TableDef, TableDescription, TableStatus};

/// Keyspace holding one record per table (key: table name).
pub(crate) const CATALOG: &str = "catalog";
/// How often a node of a shared engine reloads what other nodes may have changed (catalog,
/// streams, TTL settings): the bound on how long a schema change takes to reach every node's
/// reads. Writes never wait for it: they check the catalog in their own transaction.
pub const CLUSTER_SYNC: std::time::Duration = std::time::Duration::from_secs(1);
/// A node reloads everything at least this often, announced or not.
const FULL_CLUSTER_SYNC: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub region: String,
    pub account: String,
    /// `Sync` for production: a write is acknowledged only once durable.
    pub durability: Durability,
    /// Pause between two sweeps of the TTL worker (which also trims stream records).
    pub ttl_interval: std::time::Duration,
    /// Records after which a stream shard is closed and succeeded by a child shard.
    pub stream_shard_records: u64,
    /// How long stream records (and disabled streams) are kept: 24 hours, as in DynamoDB;
    /// tests shorten it to see trimming.
    pub stream_retention: std::time::Duration,
    /// Size limit of one item collection (tables with LSIs) in bytes; DynamoDB's is 10 GB.
    pub item_collection_limit: u64,
    /// The audit log (`audit.rs`); disabled by default.
    pub audit: audit::AuditConfig,
    /// Capacity enforcement (`throttle.rs`); `None` (the default): nothing is throttled.
    pub capacity: Option<throttle::ThrottleConfig>,
    /// Shared engines: a `CREATING` backup whose copier has not reported progress for this
    /// long (its node died) is removed by the node running the background work (`backups.rs`).
    /// 60 s by default; tests shorten it.
    pub backup_stale_after: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            durability: Durability::Sync,
            ttl_interval: std::time::Duration::from_secs(60),
            stream_shard_records: 100_000,
            stream_retention: std::time::Duration::from_secs_f64(streams::RETENTION_SECS),
            item_collection_limit: collections::MAX_COLLECTION_BYTES,
            audit: audit::AuditConfig::default(),
            capacity: None,
            backup_stale_after: std::time::Duration::from_secs(60),
        }
    }
}

/// Live statistics of a table (DescribeTable's ItemCount and TableSizeBytes).
#[derive(Debug, Default)]
pub struct Counters {
    pub items: AtomicI64,
    pub bytes: AtomicI64,
    /// Stream sequence numbers and shards of the table.
    pub stream: streams::StreamState,
    /// Item collection sizes by partition prefix (tables with local secondary indexes).
    pub collections: Mutex<HashMap<Vec<u8>, i64>>,
    /// True while `items` and `bytes` lack the part a background recount has yet to add
    /// (`stats.rs`); such figures are never saved.
    pub(crate) recounting: AtomicBool,
    /// Limit of one item collection in bytes (0: DynamoDB's 10 GB).
    collection_limit: u64,
    /// Capacity buckets of the table and its global indexes (used only when enforcing).
    pub(crate) buckets: throttle::TableBuckets,
    /// What the table did since the process started, for metrics (`activity.rs`).
    pub activity: activity::Activity,
}

impl Counters {
    pub fn new(config: &EngineConfig) -> Counters {
        Counters {
            stream: streams::StreamState::with_shard_records(config.stream_shard_records),
            collection_limit: config.item_collection_limit,
            ..Counters::default()
        }
    }

    pub fn collection_limit(&self) -> u64 {
        if self.collection_limit == 0 {
            collections::MAX_COLLECTION_BYTES
        } else {
            self.collection_limit
        }
    }
}

/// A table as the engine holds it in memory: its definition plus live counters.
#[derive(Debug)]
pub struct Table {
    pub def: TableDef,
    pub counters: Arc<Counters>,
}

/// The tables by name, and the generation of their definitions.
///
/// Invariant: every change to the map goes through [`Catalog::write`], whose guard bumps the
/// generation before it releases the lock; so a reader that sees generation G and then reads the
/// map sees every definition G covers. Caches of anything derived from definitions (resource
/// policies, for authorization decisions) compare generations to know they are current.
pub(crate) struct Catalog {
    tables: RwLock<HashMap<String, Arc<Table>>>,
    generation: std::sync::atomic::AtomicU64,
    /// Shared engines: each table's catalog record as this node last loaded it, compared
    /// with the database's by every write (`locks.rs`).
    records: Mutex<HashMap<String, Vec<u8>>>,
    /// What new in-memory tables are built with.
    config: EngineConfig,
}

/// Write access to the catalog; dropping it bumps the generation (lock still held).
pub(crate) struct CatalogWrite<'a> {
    guard: parking_lot::RwLockWriteGuard<'a, HashMap<String, Arc<Table>>>,
    generation: &'a std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for CatalogWrite<'_> {
    type Target = HashMap<String, Arc<Table>>;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl std::ops::DerefMut for CatalogWrite<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for CatalogWrite<'_> {
    fn drop(&mut self) {
        // Runs before `guard` is dropped: the bump is visible before the lock is released.
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Catalog {
    fn new(
        tables: HashMap<String, Arc<Table>>,
        records: HashMap<String, Vec<u8>>,
        config: EngineConfig,
    ) -> Catalog {
        Catalog {
            tables: RwLock::new(tables),
            generation: std::sync::atomic::AtomicU64::new(1),
            records: Mutex::new(records),
            config,
        }
    }

    /// True if `record` (the catalog record of table `name` as the database holds it now;
    /// `None`: there is none) is the one this node's copy was built from.
    pub(crate) fn matches(&self, name: &str, record: Option<&[u8]>) -> bool {
        self.records.lock().get(name).map(Vec::as_slice) == record
    }

    /// Reloads the catalog from storage (shared engines: another node may have changed it).
    /// Tables whose record is unchanged keep their in-memory state; a changed one keeps its
    /// counters if it is the same table (same id). The generation moves only on a change.
    /// Returns true if anything changed.
    pub(crate) fn refresh(&self, storage: &dyn Storage) -> Result<bool, Error> {
        let stored = read_catalog(storage)?;
        let mut records = self.records.lock();
        if *records == stored {
            return Ok(false);
        }
        let mut tables = self.write();
        let mut next = HashMap::with_capacity(stored.len());
        for (name, raw) in &stored {
            let unchanged = records.get(name) == Some(raw);
            let current = tables.get(name).cloned();
            let table = match current {
                Some(t) if unchanged => t,
                current => {
                    let def: TableDef = serde_json::from_slice(raw)
                        .map_err(|e| Error::internal(format!("catalog record: {e}")))?;
                    let counters = match current {
                        Some(t) if t.def.id == def.id => t.counters.clone(),
                        _ => Arc::new(Counters::new(&self.config)),
                    };
                    Arc::new(Table { def, counters })
                }
            };
            next.insert(name.clone(), table);
        }
        *tables = next;
        *records = stored;
        Ok(true)
    }

    pub(crate) fn read(&self) -> parking_lot::RwLockReadGuard<'_, HashMap<String, Arc<Table>>> {
        self.tables.read()
    }

    pub(crate) fn write(&self) -> CatalogWrite<'_> {
        CatalogWrite {
            guard: self.tables.write(),
            generation: &self.generation,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }
}

pub struct Engine {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: EngineConfig,
    /// Shared (`Arc`) with background index builders, like `ddl` and `stripes`.
    pub(crate) tables: Arc<Catalog>,
    /// Serialises control-plane changes (create/delete/update table), across nodes on a
    /// shared engine.
    pub(crate) ddl: Arc<locks::Ddl>,
    /// Item locks: stripes, or storage transactions on a shared engine (`locks.rs`).
    pub(crate) locks: Arc<locks::Locks>,
    /// True on a shared engine (`Storage::shared`): several nodes use the storage at once.
    pub(crate) shared: bool,
    /// This node's identity in leases (random per process).
    pub(crate) node_id: [u8; 16],
    /// Until when (ms since the epoch) this node may act on its `background` lease.
    pub(crate) lease_until: std::sync::atomic::AtomicU64,
    /// Shared engines: the schema generation this node last synced to, and when it last
    /// reloaded everything (`sync_cluster`).
    cluster_seen: Mutex<(Option<i64>, std::time::Instant)>,
    /// Index jobs running in this process (table id / index name), so none is started twice.
    pub(crate) index_jobs: Arc<Mutex<std::collections::HashSet<String>>>,
    /// ClientRequestToken idempotency records of TransactWriteItems.
    pub(crate) tx_tokens: transact::TokenTable,
    pub(crate) streams: streams::Registry,
    pub(crate) ttl: ttl::TtlSpecs,
    /// Stops the background worker (see `Engine::start_background`) when the engine is dropped.
    stopper: ttl::Stopper,
    /// Tables whose statistics are being recounted in the background (`stats.rs`).
    recount: stats::Recount,
    /// The audit log's chain head; `None` when auditing is disabled.
    pub(crate) audit: Option<audit::AuditLog>,
    /// The engine's own `Arc`, once its background worker runs (`Engine::start_background`):
    /// background jobs that need the whole engine (restores) hold it.
    me: std::sync::OnceLock<std::sync::Weak<Engine>>,
    /// When this engine last swept point-in-time history (`pitr.rs`, `Engine::trim_history`).
    history_swept: Mutex<Option<std::time::Instant>>,
    /// Services of the layers above (`records.rs`: `Engine::attach`).
    attached: parking_lot::RwLock<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
}

/// A storage error as the engine reports it: a refusal (full disk, failed journal sync) or an
/// operating system's "no space left on device" keeps its message for the client
/// ([`Error::StorageFault`]); a failed integrity check is [`Error::Corrupt`]; anything else
/// is internal.
pub fn storage_err(e: StorageError) -> Error {
    match e {
        StorageError::Refused(fault) => Error::StorageFault(fault.to_string()),
        e if e.is_disk_full() => Error::StorageFault(format!("No space left on device: {e}")),
        StorageError::Corrupt(_) => Error::Corrupt(format!("storage: {e}")),
        e => Error::internal(format!("storage: {e}")),
    }
}

impl Engine {
    /// Opens the engine on a storage backend, loading the catalog.
    pub fn open(storage: Arc<dyn Storage>, config: EngineConfig) -> Result<Engine, Error> {
        storage.create_keyspace(CATALOG).map_err(storage_err)?;
        let shared = storage.shared();
        let records = read_catalog(&*storage)?;
        let mut tables = HashMap::new();
        for raw in records.values() {
            let def: TableDef = serde_json::from_slice(raw)
                .map_err(|e| Error::internal(format!("catalog record: {e}")))?;
            let table = Table {
                def,
                counters: Arc::new(Counters::new(&config)),
            };
            tables.insert(table.def.name.clone(), Arc::new(table));
        }
        let audit = audit::AuditLog::open(&*storage, &config.audit)?;
        let catalog = Arc::new(Catalog::new(
            tables,
            if shared { records } else { HashMap::new() },
            config.clone(),
        ));
        let locks = Arc::new(locks::Locks::new(storage.clone(), catalog.clone()));
        let engine = Engine {
            storage,
            config,
            tables: catalog,
            ddl: Arc::new(locks::Ddl::new(locks.clone())),
            locks,
            shared,
            node_id: *uuid::Uuid::new_v4().as_bytes(),
            lease_until: std::sync::atomic::AtomicU64::new(0),
            index_jobs: Arc::default(),
            cluster_seen: Mutex::new((None, std::time::Instant::now())),
            tx_tokens: transact::TokenTable::default(),
            streams: streams::Registry::default(),
            ttl: ttl::TtlSpecs::default(),
            stopper: ttl::Stopper::default(),
            recount: stats::Recount::default(),
            audit,
            me: std::sync::OnceLock::new(),
            history_swept: Mutex::new(None),
            attached: parking_lot::RwLock::default(),
        };
        engine.drop_orphan_keyspaces()?;
        let all: Vec<Arc<Table>> = engine.tables.read().values().cloned().collect();
        if !engine.shared {
            // Shared engines keep statistics as database counters, never in memory.
            let stale = engine.load_stats(all)?;
            engine.recount.start(&*engine.storage, stale)?;
        }
        engine.open_leases()?;
        // Index builds and drops interrupted by a restart continue in the background.
        engine.resume_index_jobs()?;
        engine.open_streams()?;
        engine.open_ttl()?;
        Ok(engine)
    }

    /// True when the storage is shared by several nodes (a database server): every call may
    /// wait on the network, so callers run them off async workers.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Why the storage refuses writes right now (a full disk, a failed journal sync), or
    /// `None`: an atomic load, for health checks and background rounds.
    pub fn write_fault(&self) -> Option<ferrodyn_storage::WriteFault> {
        self.storage.write_fault()
    }

    /// The engine's own `Arc`, if it runs its background worker.
    pub(crate) fn myself(&self) -> Option<Arc<Engine>> {
        self.me.get().and_then(std::sync::Weak::upgrade)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// True when writes wait until durable: item writes inside [`Engine::deferring_durability`]
    /// leave the wait to the caller, other writes block (the server runs them off the async
    /// workers).
    pub fn waits_for_durability(&self) -> bool {
        matches!(self.config.durability, Durability::Sync)
    }

    /// The table named `name`, for a data operation: a table still being restored or imported
    /// is not found yet, as on DynamoDB while a table is `CREATING`.
    pub(crate) fn table(&self, name: &str) -> Result<Arc<Table>, Error> {
        self.lookup(name)?
            .filter(|t| !t.def.loading())
            .ok_or_else(|| Error::ResourceNotFound("Requested resource not found".into()))
    }

    /// The table named `name`; on a shared engine a miss reloads the catalog first, since
    /// another node may have just created it. The map is read again whether or not this
    /// reload changed it: a concurrent reload (another request, the background sync) may have
    /// loaded the table in the meantime, and then this one finds nothing new.
    pub(crate) fn lookup(&self, name: &str) -> Result<Option<Arc<Table>>, Error> {
        if let Some(t) = self.tables.read().get(name) {
            return Ok(Some(t.clone()));
        }
        if self.shared {
            self.tables.refresh(&*self.storage)?;
            return Ok(self.tables.read().get(name).cloned());
        }
        Ok(None)
    }

    /// Brings this node's view of the cluster up to date (shared engines; the background
    /// worker calls it every [`CLUSTER_SYNC`]): catalog, streams and TTL settings that other
    /// nodes changed.
    pub(crate) fn sync_cluster(&self) -> Result<(), Error> {
        let generation: i64 = self
            .storage
            .counters(CATALOG, locks::SCHEMA_GENERATION)
            .map_err(storage_err)?
            .iter()
            .filter(|(k, _)| k == locks::SCHEMA_GENERATION)
            .map(|(_, n)| *n)
            .sum();
        let due = {
            let seen = self.cluster_seen.lock();
            seen.0 != Some(generation) || seen.1.elapsed() >= FULL_CLUSTER_SYNC
        };
        if due {
            // A schema change was announced, or it is time for the periodic full reload
            // (which also covers a change whose node died before announcing it).
            // Streams follow even when this node's catalog was already current (its own
            // change reloaded it when the schema lock was released).
            self.tables.refresh(&*self.storage)?;
            self.sync_streams()?;
            self.open_ttl()?;
            *self.cluster_seen.lock() = (Some(generation), std::time::Instant::now());
        }
        if self.renew_lease(leases::BACKGROUND)? {
            // Index builds and restores whose node died continue here.
            self.resume_index_jobs()?;
            self.resume_loads()?;
        }
        Ok(())
    }

    pub fn flush(&self) -> Result<(), Error> {
        self.storage.flush().map_err(storage_err)
    }

    /// The storage engine's internals (memtables, journals, caches, fsyncs), for metrics.
    pub fn storage_stats(&self) -> ferrodyn_storage::StorageStats {
        self.storage.storage_stats()
    }
}

/// Test helper: creates an on-demand table keyed by the string attribute `pk`.
#[cfg(test)]
pub(crate) fn create_hash_table(engine: &Engine, name: &str) {
    use control::{CreateTableInput, KeySchemaElement, KeyType};
    engine
        .create_table(CreateTableInput {
            name: name.into(),
            attribute_definitions: vec![KeyAttr {
                name: "pk".into(),
                ty: ferrodyn_model::ScalarType::S,
            }],
            key_schema: vec![KeySchemaElement {
                name: "pk".into(),
                key_type: KeyType::Hash,
            }],
            billing_mode: Some(BillingMode::PayPerRequest),
            ..Default::default()
        })
        .unwrap();
}

/// Every catalog record by table name.
fn read_catalog(storage: &dyn Storage) -> Result<HashMap<String, Vec<u8>>, Error> {
    let mut records = HashMap::new();
    storage
        .scan(
            CATALOG,
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            false,
            &mut |k, v| {
                records.insert(String::from_utf8_lossy(k).into_owned(), v.to_vec());
                true
            },
        )
        .map_err(storage_err)?;
    Ok(records)
}

/// The wall clock in seconds since the Unix epoch (0 before it), as the API's timestamps are.
pub fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
