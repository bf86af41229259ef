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

pub mod audit;
pub mod batch;
pub mod capacity;
pub mod collections;
pub mod control;
pub mod index;
pub mod itemcodec;
pub mod items;
pub mod keys;
pub mod partiql;
pub mod policies;
pub mod query;
pub mod schema;
mod stats;
pub mod streams;
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
use parking_lot::{Mutex, MutexGuard, RwLock};

pub use table::{BillingMode, KeyAttr, TableDef, TableDescription, TableStatus};

/// Keyspace holding one record per table (key: table name).
pub(crate) const CATALOG: &str = "catalog";
const LOCK_STRIPES: usize = 4096;

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
    /// Size limit of one item collection (tables with LSIs) in bytes; DynamoDB's is 10 GB.
    pub item_collection_limit: u64,
    /// The audit log (`audit.rs`); disabled by default.
    pub audit: audit::AuditConfig,
    /// Capacity enforcement (`throttle.rs`); `None` (the default): nothing is throttled.
    pub capacity: Option<throttle::ThrottleConfig>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            durability: Durability::Sync,
            ttl_interval: std::time::Duration::from_secs(60),
            stream_shard_records: 100_000,
            item_collection_limit: collections::MAX_COLLECTION_BYTES,
            audit: audit::AuditConfig::default(),
            capacity: None,
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
    fn new(tables: HashMap<String, Arc<Table>>) -> Catalog {
        Catalog {
            tables: RwLock::new(tables),
            generation: std::sync::atomic::AtomicU64::new(1),
        }
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
    /// Serialises control-plane changes (create/delete/update table).
    pub(crate) ddl: Arc<Mutex<()>>,
    stripes: Arc<Vec<Mutex<()>>>,
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
}

pub(crate) fn storage_err(e: StorageError) -> Error {
    Error::internal(format!("storage: {e}"))
}

impl Engine {
    /// Opens the engine on a storage backend, loading the catalog.
    pub fn open(storage: Arc<dyn Storage>, config: EngineConfig) -> Result<Engine, Error> {
        storage.create_keyspace(CATALOG).map_err(storage_err)?;
        let mut defs = Vec::new();
        storage
            .scan(
                CATALOG,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
                &mut |_, v| {
                    defs.push(v.to_vec());
                    true
                },
            )
            .map_err(storage_err)?;
        let mut tables = HashMap::new();
        for raw in defs {
            let def: TableDef = serde_json::from_slice(&raw)
                .map_err(|e| Error::internal(format!("catalog record: {e}")))?;
            let table = Table {
                def,
                counters: Arc::new(Counters::new(&config)),
            };
            tables.insert(table.def.name.clone(), Arc::new(table));
        }
        let audit = audit::AuditLog::open(&*storage, &config.audit)?;
        let engine = Engine {
            storage,
            config,
            tables: Arc::new(Catalog::new(tables)),
            ddl: Arc::new(Mutex::new(())),
            stripes: Arc::new((0..LOCK_STRIPES).map(|_| Mutex::new(())).collect()),
            tx_tokens: transact::TokenTable::default(),
            streams: streams::Registry::default(),
            ttl: ttl::TtlSpecs::default(),
            stopper: ttl::Stopper::default(),
            recount: stats::Recount::default(),
            audit,
        };
        let all: Vec<Arc<Table>> = engine.tables.read().values().cloned().collect();
        let stale = engine.load_stats(all)?;
        engine.recount.start(&*engine.storage, stale)?;
        // Index builds and drops interrupted by a restart continue in the background.
        engine.resume_index_jobs()?;
        engine.open_streams()?;
        engine.open_ttl()?;
        Ok(engine)
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

    pub(crate) fn table(&self, name: &str) -> Result<Arc<Table>, Error> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::ResourceNotFound("Requested resource not found".into()))
    }

    fn stripe_of(table_id: &str, key: &[u8]) -> usize {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in table_id.as_bytes().iter().chain(key) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h % LOCK_STRIPES as u64) as usize
    }

    /// Lock stripe for one item: held across read-check-write of that item.
    pub(crate) fn lock_item(&self, table_id: &str, key: &[u8]) -> MutexGuard<'_, ()> {
        self.stripes[Self::stripe_of(table_id, key)].lock()
    }

    /// Locks the stripes of several items (table id, storage key) at once.
    /// Invariant: stripes are taken in ascending order and each at most once, so concurrent
    /// multi-item writers (transactions, batches) cannot deadlock with each other or with
    /// single-item writers.
    pub(crate) fn lock_items<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Vec<MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = items
            .into_iter()
            .map(|(t, k)| Self::stripe_of(t, k))
            .collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter().map(|i| self.stripes[i].lock()).collect()
    }

    pub fn flush(&self) -> Result<(), Error> {
        self.storage.flush().map_err(storage_err)
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

pub(crate) fn now_epoch() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
