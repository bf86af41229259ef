//! Ferrodyn's storage engine on a PostgreSQL-compatible database: [`PostgresStorage`], a
//! [`Storage`] that many stateless Ferrodyn nodes share (`shared()` is true), with the
//! locking [`Transaction`]s the engine above runs every read-check-write in.
//!
//! # Data model
//!
//! Four tables, created at connect if missing (schema version in `ferrodyn_meta`; a newer one
//! is refused with [`StorageError::UnsupportedFormat`]):
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS ferrodyn_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
//! CREATE TABLE IF NOT EXISTS ferrodyn_keyspaces (name TEXT PRIMARY KEY, id BIGINT NOT NULL UNIQUE);
//! CREATE TABLE IF NOT EXISTS ferrodyn_kv (ks BIGINT NOT NULL, k BYTEA NOT NULL, v BYTEA, PRIMARY KEY (ks, k));
//! CREATE TABLE IF NOT EXISTS ferrodyn_counters (ks BIGINT NOT NULL, k BYTEA NOT NULL, n BIGINT NOT NULL,
//!                                               PRIMARY KEY (ks, k));
//! ```
//!
//! Keyspace names map to ids that are never reused (they come from the counter row
//! `(0, 'keyspace-id')`); each node caches the map and re-reads a name it does not know. A
//! `ferrodyn_kv` row whose `v` is NULL is the lock row of an absent key: only the transaction
//! that locked the key sees it, its commit deletes it unless it wrote the key, and every read
//! skips it.
//!
//! # Statements
//!
//! Only SQL that PostgreSQL, CockroachDB and YugabyteDB all accept. Every distinct statement:
//!
//! ```sql
//! -- connect: version; only if the tables are missing, the schema (one transaction); keyspace map
//! SELECT value FROM ferrodyn_meta WHERE name = 'schema_version'
//! BEGIN; CREATE TABLE IF NOT EXISTS ... (the four above);
//!   INSERT INTO ferrodyn_meta (name, value) VALUES ('schema_version', '1') ON CONFLICT (name) DO NOTHING; COMMIT
//! SELECT name, id FROM ferrodyn_keyspaces
//! SET statement_timeout = '<ms>ms'; SET lock_timeout = '<ms>ms'        -- per connection, if configured
//! -- keyspaces
//! SELECT id FROM ferrodyn_keyspaces WHERE name = $1
//! INSERT INTO ferrodyn_counters (ks, k, n) VALUES (0, $1, 1)
//!   ON CONFLICT (ks, k) DO UPDATE SET n = ferrodyn_counters.n + 1 RETURNING n
//! INSERT INTO ferrodyn_keyspaces (name, id) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING
//! DELETE FROM ferrodyn_kv WHERE ks = $1
//! DELETE FROM ferrodyn_counters WHERE ks = $1
//! DELETE FROM ferrodyn_keyspaces WHERE id = $1
//! -- reads
//! SELECT v FROM ferrodyn_kv WHERE ks = $1 AND k = $2 AND v IS NOT NULL
//! SELECT k, v FROM ferrodyn_kv WHERE ks = $1 AND k {>=|>} $2 [AND k {<=|<} $4]
//!   AND v IS NOT NULL ORDER BY k {ASC|DESC} LIMIT $3
//! SELECT CAST(count(*) AS BIGINT), CAST(coalesce(sum(length(k) + length(v)), 0) AS BIGINT)
//!   FROM (SELECT k, v FROM ferrodyn_kv WHERE ks = $1 AND v IS NOT NULL LIMIT $2) AS sample
//! SELECT k, n FROM ferrodyn_counters WHERE ks = $1 AND k >= $2 [AND k < $3] ORDER BY k
//! BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT 1           -- snapshot
//! -- writes and transactions
//! BEGIN / COMMIT / ROLLBACK
//! INSERT INTO ferrodyn_kv (ks, k, v) VALUES ($1, $2, $3) ON CONFLICT (ks, k) DO UPDATE SET v = EXCLUDED.v
//! DELETE FROM ferrodyn_kv WHERE ks = $1 AND k = $2
//! INSERT INTO ferrodyn_kv (ks, k, v) VALUES ($1, $2, NULL)
//!   ON CONFLICT (ks, k) DO UPDATE SET v = ferrodyn_kv.v RETURNING v    -- lock
//! SELECT v FROM ferrodyn_kv WHERE ks = $1 AND k = $2 FOR SHARE          -- read_shared
//! DELETE FROM ferrodyn_kv WHERE ks = $1 AND k = $2 AND v IS NULL       -- lock row of an unwritten absent key
//! INSERT INTO ferrodyn_counters (ks, k, n) VALUES ($1, $2, $3)
//!   ON CONFLICT (ks, k) DO UPDATE SET n = ferrodyn_counters.n + EXCLUDED.n
//! ```
//!
//! # Invariants
//!
//! * **One round trip per call**: `get` is one statement; a write, a `lock`, a `read_shared`
//!   and a transaction commit each send all their statements (with `BEGIN`/`COMMIT`) before
//!   reading any answer (pipelining), so each costs one round trip.
//! * **Durable when it returns**: a write or a commit returns once the database acknowledged
//!   `COMMIT`; how durable that is (`synchronous_commit`, replication) is the database's
//!   configuration. [`Storage::commit`] hands out [`CommitTicket::DURABLE`].
//! * **Scans read page by page**: a scan fetches pages of 128, then 1024 rows, each page its
//!   own statement at its own instant (read committed), continuing after the last key seen.
//!   "Never observes part of a batch" holds per page; a scan spanning pages may see a batch
//!   committed between two pages (Query and Scan in DynamoDB are read-committed anyway). A
//!   [`Snapshot`] pages through one `REPEATABLE READ` transaction and is consistent whole.
//! * **Locks, not isolation levels, make transactions correct**: transactions run at the
//!   database's default level (READ COMMITTED on PostgreSQL, SERIALIZABLE on CockroachDB);
//!   `lock` row-locks each key, present or absent, and answers its latest committed value.
//! * **Errors** (`error.rs`): conflicts (serialization failure, deadlock, lock
//!   timeout) are [`StorageError::Conflict`], a lost database is [`StorageError::Unavailable`]
//!   and its client is replaced; a connection lost while committing leaves the outcome
//!   unknown and says so. `get` and `scan` (before delivering anything) are retried once on
//!   a lost connection; writes never are (their outcome may be unknown).
//! * **No runtime assumed of callers**: the storage owns a two-thread tokio runtime
//!   ("ferrodyn-pg") for the connection tasks; trait methods block the calling thread (which
//!   must not be an async worker) on client futures.
//!
//! Keyspace maps are cached per node: a keyspace dropped (or dropped and re-created) by
//! another node is noticed by `keyspace_exists`/`list_keyspaces`/`create_keyspace`, which ask
//! the database, but not by reads and writes of a name this node has cached; the engine above
//! orders schema changes through its catalog records.
#![forbid(unsafe_code)]

mod conninfo;
mod error;
mod pool;
mod snapshot;
mod sql;
mod tls;
mod txn;

use std::collections::HashMap;
use std::ops::Bound;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ferrodyn_storage::{
    check_key, check_keyspace_name, key_unstorable as unstorable, range_is_empty, CommitTicket,
    Durability, KeyspaceStats, Result, Snapshot, Storage, StorageError, Transaction, WriteBatch,
};
use parking_lot::RwLock;
use tokio_postgres::types::ToSql;

use crate::error::to_storage;
use crate::pool::{Pool, PooledConn, Step};

pub use crate::txn::PgTransaction;

/// Connection settings of a [`PostgresStorage`].
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// Clients per pool (the primary's, and the replica's if any), plus two for keyspace
    /// lookups; an open snapshot holds a client of its own beyond these. Default 16.
    pub pool_size: usize,
    /// `statement_timeout` of every session, if set.
    pub statement_timeout: Option<Duration>,
    /// `lock_timeout` of every session, if set: a lock wait longer than this fails the
    /// transaction with [`StorageError::Conflict`].
    pub lock_timeout: Option<Duration>,
    /// Connection string of a hot standby that answers eventually consistent reads
    /// ([`Storage::get_eventual`], [`Storage::scan_eventual`]); the primary answers them when
    /// it is unset or unreachable.
    pub replica: Option<String>,
    /// Timeout of one connection attempt (per host). Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for a free client of a full pool before [`StorageError::Unavailable`].
    /// Default 30 s.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            statement_timeout: None,
            lock_timeout: None,
            replica: None,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The storage engine on a PostgreSQL-compatible database; see the crate docs.
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) primary: Arc<Pool>,
    /// Two clients of the primary for keyspace lookups, which transactions and snapshots
    /// make while holding a client of `primary`: a full `primary` cannot starve them.
    meta: Arc<Pool>,
    replica: Option<Arc<Pool>>,
    /// Keyspace name → id, as last read from `ferrodyn_keyspaces`.
    keyspaces: RwLock<HashMap<String, i64>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks (a storage may be dropped on an async thread); connection tasks end.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn parse_config(url: &str, options: &PgOptions) -> Result<(tokio_postgres::Config, tls::Tls)> {
    let params = conninfo::extract(url).map_err(StorageError::InvalidArgument)?;
    let mut config = tokio_postgres::Config::from_str(&params.conninfo).map_err(|e| {
        StorageError::InvalidArgument(format!("invalid database connection string: {e}"))
    })?;
    config.connect_timeout(options.connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("ferrodyn");
    }
    let tls = tls::Tls::for_config(&config, params.root_cert.as_deref())
        .map_err(StorageError::InvalidArgument)?;
    Ok((config, tls))
}

fn session_setup(options: &PgOptions) -> String {
    let mut setup = String::new();
    if let Some(t) = options.statement_timeout {
        setup.push_str(&format!(
            "SET statement_timeout = '{}ms';",
            t.as_millis().max(1)
        ));
    }
    if let Some(t) = options.lock_timeout {
        setup.push_str(&format!("SET lock_timeout = '{}ms';", t.as_millis().max(1)));
    }
    setup
}

fn row_err(e: &tokio_postgres::Error) -> StorageError {
    StorageError::Engine(format!("unexpected row from the database: {e}"))
}

/// One row's single bytea column, NULL as `None`.
pub(crate) fn opt_bytes(row: &tokio_postgres::Row) -> Result<Option<Vec<u8>>> {
    row.try_get::<_, Option<Vec<u8>>>(0)
        .map_err(|e| row_err(&e))
}

impl PostgresStorage {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value` string; several
    /// hosts with `target_session_attrs=read-write` find the primary after a failover),
    /// creates the schema if missing and checks its version.
    pub fn connect(url: &str, options: PgOptions) -> Result<Self> {
        let (config, tls) = parse_config(url, &options)?;
        let replica = match &options.replica {
            Some(url) => Some(parse_config(url, &options)?),
            None => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ferrodyn-pg")
            .enable_all()
            .build()?;
        let setup = session_setup(&options);
        let (primary_config, primary_tls) = (config.clone(), tls.clone());
        let primary = Pool::new(
            "primary",
            config,
            tls,
            setup.clone(),
            runtime.handle().clone(),
            options.pool_size,
            options.acquire_timeout,
        );
        let meta = Pool::new(
            "primary",
            primary_config.clone(),
            primary_tls.clone(),
            setup.clone(),
            runtime.handle().clone(),
            2,
            options.acquire_timeout,
        );
        let replica = replica.map(|(config, tls)| {
            Pool::new(
                "replica",
                config,
                tls,
                setup,
                runtime.handle().clone(),
                options.pool_size,
                options.acquire_timeout,
            )
        });
        let storage = PostgresStorage {
            inner: Arc::new(Inner {
                primary,
                meta,
                replica,
                keyspaces: RwLock::new(HashMap::new()),
                runtime: Some(runtime),
            }),
        };
        storage.init_schema()?;
        storage.inner.reload_keyspaces()?;
        Ok(storage)
    }

    fn init_schema(&self) -> Result<()> {
        let mut conn = self.inner.primary.get()?;
        // An existing schema is only read (no DDL, no lock on the catalog, no notices at every
        // node's start). Nodes starting together on an empty database race to create the
        // tables; the losers retry.
        let mut attempt = 0;
        let value: String = loop {
            match conn.conn().query(sql::SCHEMA_VERSION_READ, &[]) {
                Ok(rows) => {
                    if let Some(row) = rows.first() {
                        break row.try_get(0).map_err(|e| row_err(&e))?;
                    }
                }
                // 42P01 undefined_table: a database Ferrodyn never used.
                Err(e) if e.code().is_some_and(|c| c.code() == "42P01") => {}
                Err(e) => {
                    conn.saw(&e);
                    return Err(to_storage(&e, "reading the schema version"));
                }
            }
            if attempt >= 5 {
                return Err(StorageError::Corrupt(
                    "ferrodyn_meta has no schema_version".into(),
                ));
            }
            attempt += 1;
            let steps = [Step::Simple(sql::CREATE_SCHEMA)];
            let result = futures::executor::block_on(conn.conn().pipeline(&steps))
                .and_then(|mut r| r.pop().unwrap_or(Ok(Vec::new())));
            if let Err(e) = result {
                let retry = e.code().is_some_and(|c| {
                    matches!(c.code(), "23505" | "42P07" | "42710" | "40001" | "40P01")
                });
                // End the failed transaction before anything else runs on this client.
                let _ = futures::executor::block_on(conn.conn().client.batch_execute("ROLLBACK"));
                conn.saw(&e);
                if !retry {
                    return Err(to_storage(&e, "creating the schema"));
                }
            }
        };
        let found: u64 = value.parse().map_err(|_| {
            StorageError::Corrupt(format!("schema_version {value:?} is not a number"))
        })?;
        if found > sql::SCHEMA_VERSION {
            return Err(StorageError::UnsupportedFormat {
                found,
                supported: sql::SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    /// The transaction type, unboxed (tests and callers that want it without dyn).
    pub fn begin_pg(&self) -> Result<PgTransaction> {
        Ok(PgTransaction::new(
            Arc::clone(&self.inner),
            self.inner.primary.get()?,
        ))
    }
}

impl Inner {
    /// Re-reads the whole keyspace map; returns the names, sorted.
    fn reload_keyspaces(&self) -> Result<Vec<String>> {
        let mut conn = self.meta.get()?;
        let rows = conn.query(sql::KEYSPACES, &[], "listing keyspaces")?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get(0).map_err(|e| row_err(&e))?;
            let id: i64 = row.try_get(1).map_err(|e| row_err(&e))?;
            map.insert(name, id);
        }
        let mut names: Vec<String> = map.keys().cloned().collect();
        names.sort();
        *self.keyspaces.write() = map;
        Ok(names)
    }

    /// The id of a keyspace: from the cache, or from the database (another node may have
    /// created it).
    pub(crate) fn keyspace_id(&self, name: &str) -> Result<i64> {
        if let Some(id) = self.keyspaces.read().get(name) {
            return Ok(*id);
        }
        match self.lookup_keyspace(name)? {
            Some(id) => Ok(id),
            None => Err(StorageError::KeyspaceNotFound(name.to_owned())),
        }
    }

    /// Asks the database for a keyspace's id and records the answer in the cache.
    fn lookup_keyspace(&self, name: &str) -> Result<Option<i64>> {
        let mut conn = self.meta.get()?;
        let rows = conn.query(sql::KEYSPACE_ID, &[&name], "looking up a keyspace")?;
        let id = match rows.first() {
            Some(row) => Some(row.try_get::<_, i64>(0).map_err(|e| row_err(&e))?),
            None => None,
        };
        let mut cache = self.keyspaces.write();
        match id {
            Some(id) => cache.insert(name.to_owned(), id),
            None => cache.remove(name),
        };
        Ok(id)
    }

    fn get_on(&self, pool: &Arc<Pool>, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ks = self.keyspace_id(keyspace)?;
        if unstorable(key) {
            return Ok(None);
        }
        // A read is safe to repeat: one that met a connection the database had just dropped
        // (a restart or failover) is retried once, on a client that is then fresh.
        let mut retried = false;
        loop {
            let mut conn = pool.get()?;
            match conn.query(sql::GET, &[&ks, &key], "get") {
                Ok(rows) => {
                    return match rows.first() {
                        Some(row) => opt_bytes(row),
                        None => Ok(None),
                    }
                }
                Err(StorageError::Unavailable(_)) if !retried => retried = true,
                Err(e) => return Err(e),
            }
        }
    }

    fn scan_on(
        &self,
        pool: &Arc<Pool>,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let ks = self.keyspace_id(keyspace)?;
        if range_is_empty(lower, upper) {
            return Ok(());
        }
        // Retried once like `get`, if the failure came before anything was delivered.
        let mut delivered = false;
        let mut deliver = |k: &[u8], v: &[u8]| {
            delivered = true;
            f(k, v)
        };
        let first = {
            let mut conn = pool.get()?;
            scan_pages(&mut conn, ks, lower, upper, reverse, &mut deliver)
        };
        match first {
            Err(StorageError::Unavailable(_)) if !delivered => {
                let mut conn = pool.get()?;
                scan_pages(&mut conn, ks, lower, upper, reverse, f)
            }
            other => other,
        }
    }
}

/// First page of a scan: most scans stop early (a Query with a small limit, a get-like
/// prefix read); later pages are larger.
const FIRST_PAGE: i64 = 128;
const PAGE: i64 = 1024;

/// Scans `[lower, upper]` of keyspace `ks` on `conn`, a page per statement, continuing after
/// the last key seen; stops when `f` returns false.
pub(crate) fn scan_pages(
    conn: &mut PooledConn,
    ks: i64,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    reverse: bool,
    f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<()> {
    let (mut lo_inclusive, mut lo): (bool, Vec<u8>) = match lower {
        Bound::Included(k) => (true, k.to_vec()),
        Bound::Excluded(k) => (false, k.to_vec()),
        // Keys are never empty: every key is greater than the empty one.
        Bound::Unbounded => (true, Vec::new()),
    };
    let mut hi: Option<(bool, Vec<u8>)> = match upper {
        Bound::Included(k) => Some((true, k.to_vec())),
        Bound::Excluded(k) => Some((false, k.to_vec())),
        Bound::Unbounded => None,
    };
    let mut limit = FIRST_PAGE;
    loop {
        let stmt = sql::scan(lo_inclusive, hi.as_ref().map(|h| h.0), reverse);
        let rows = match &hi {
            Some((_, h)) => conn.query(stmt, &[&ks, &lo, &limit, h], "scan")?,
            None => conn.query(stmt, &[&ks, &lo, &limit], "scan")?,
        };
        let full = rows.len() as i64 >= limit;
        let mut last: Option<Vec<u8>> = None;
        for row in &rows {
            let k: &[u8] = row.try_get(0).map_err(|e| row_err(&e))?;
            let v: &[u8] = row.try_get(1).map_err(|e| row_err(&e))?;
            if !f(k, v) {
                return Ok(());
            }
            last = Some(k.to_vec());
        }
        let Some(last) = last.filter(|_| full) else {
            return Ok(());
        };
        if reverse {
            hi = Some((false, last));
        } else {
            (lo_inclusive, lo) = (false, last);
        }
        limit = PAGE;
    }
}

/// One effective write: keyspace id, key, and the value (`None` deletes).
pub(crate) type Op = (i64, Vec<u8>, Option<Vec<u8>>);

/// A write's effective operations: keyspaces resolved, keys validated, and for each
/// `(keyspace, key)` only the last operation, in first-seen order.
pub(crate) fn effective_ops(inner: &Inner, batch: &WriteBatch) -> Result<Vec<Op>> {
    let mut ids: HashMap<&str, i64> = HashMap::new();
    let mut index: HashMap<(i64, &[u8]), usize> = HashMap::with_capacity(batch.len());
    let mut ops: Vec<Op> = Vec::with_capacity(batch.len());
    for op in batch.iter() {
        check_key(op.key)?;
    }
    for op in batch.iter() {
        let ks = match ids.get(op.keyspace) {
            Some(id) => *id,
            None => {
                let id = inner.keyspace_id(op.keyspace)?;
                ids.insert(op.keyspace, id);
                id
            }
        };
        let value = op.value.map(<[u8]>::to_vec);
        match index.get(&(ks, op.key)) {
            Some(&i) => ops[i].2 = value,
            None => {
                index.insert((ks, op.key), ops.len());
                ops.push((ks, op.key.to_vec(), value));
            }
        }
    }
    Ok(ops)
}

/// The pipeline steps of effective operations.
pub(crate) fn op_steps<'a>(ops: &'a [Op], steps: &mut Vec<Step<'a>>) {
    for (ks, key, value) in ops {
        match value {
            Some(v) => steps.push(Step::Query(
                sql::PUT,
                vec![ks as &(dyn ToSql + Sync), key, v],
            )),
            None => steps.push(Step::Query(
                sql::DELETE,
                vec![ks as &(dyn ToSql + Sync), key],
            )),
        }
    }
}

/// Runs a pipeline that ends with `COMMIT` (when `committing`) and maps its outcome: the
/// first real error (not the "transaction aborted" echoes after it) wins, and a lost
/// connection while committing leaves the outcome unknown.
pub(crate) fn run_steps(
    conn: &mut PooledConn,
    steps: &[Step<'_>],
    committing: bool,
    what: &str,
) -> Result<Vec<Vec<tokio_postgres::Row>>> {
    let results = match futures::executor::block_on(conn.conn().pipeline(steps)) {
        Ok(results) => results,
        Err(e) => {
            conn.saw(&e);
            // Preparing failed: nothing of the pipeline was sent.
            return Err(to_storage(&e, what));
        }
    };
    let mut rows = Vec::with_capacity(results.len());
    let mut first: Option<tokio_postgres::Error> = None;
    let mut echo: Option<tokio_postgres::Error> = None;
    let mut lost = false;
    for r in results {
        match r {
            Ok(r) => rows.push(r),
            Err(e) => {
                if conn.saw(&e) == error::Class::Unavailable {
                    lost = true;
                }
                if error::is_aborted_transaction(&e) {
                    echo.get_or_insert(e);
                } else if first.is_none() {
                    first = Some(e);
                }
                rows.push(Vec::new());
            }
        }
    }
    match first.or(echo) {
        None => Ok(rows),
        Some(e) if lost && committing => Err(StorageError::Unavailable(format!(
            "{what}: the connection to the database was lost while committing; the outcome is \
             unknown ({})",
            to_storage(&e, "")
        ))),
        Some(e) => Err(to_storage(&e, what)),
    }
}

impl Storage for PostgresStorage {
    fn create_keyspace(&self, name: &str) -> Result<()> {
        check_keyspace_name(name)?;
        if self.inner.lookup_keyspace(name)?.is_some() {
            return Ok(());
        }
        let mut conn = self.inner.primary.get()?;
        let rows = conn.query(
            sql::NEXT_KEYSPACE_ID,
            &[&sql::KEYSPACE_ID_KEY],
            "allocating a keyspace id",
        )?;
        let id: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(|e| row_err(&e))?,
            None => return Err(StorageError::Engine("no keyspace id allocated".into())),
        };
        // Insert, then read back: a node creating the same name at the same time wins or
        // loses the insert, and both read the winner's id.
        let steps = [
            Step::Query(sql::INSERT_KEYSPACE, vec![&name, &id]),
            Step::Query(sql::KEYSPACE_ID, vec![&name]),
        ];
        let rows = run_steps(&mut conn, &steps, false, "creating a keyspace")?;
        let id: i64 = match rows.get(1).and_then(|r| r.first()) {
            Some(row) => row.try_get(0).map_err(|e| row_err(&e))?,
            None => {
                // Dropped again at once by another node.
                return Err(StorageError::Conflict(format!(
                    "keyspace {name} was dropped while being created"
                )));
            }
        };
        self.inner.keyspaces.write().insert(name.to_owned(), id);
        Ok(())
    }

    fn drop_keyspace(&self, name: &str) -> Result<()> {
        let Some(id) = self.inner.lookup_keyspace(name)? else {
            return Ok(());
        };
        let mut conn = self.inner.primary.get()?;
        let steps = [
            Step::Simple(sql::BEGIN),
            Step::Query(sql::DROP_KV, vec![&id]),
            Step::Query(sql::DROP_COUNTERS, vec![&id]),
            Step::Query(sql::DROP_KEYSPACE, vec![&id]),
            Step::Simple(sql::COMMIT),
        ];
        run_steps(&mut conn, &steps, true, "dropping a keyspace")?;
        self.inner.keyspaces.write().remove(name);
        Ok(())
    }

    fn keyspace_exists(&self, name: &str) -> bool {
        match self.inner.lookup_keyspace(name) {
            Ok(id) => id.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "keyspace_exists: database unreachable, answering from the cache");
                self.inner.keyspaces.read().contains_key(name)
            }
        }
    }

    fn list_keyspaces(&self) -> Vec<String> {
        match self.inner.reload_keyspaces() {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "list_keyspaces: database unreachable, answering from the cache");
                let mut names: Vec<String> = self.inner.keyspaces.read().keys().cloned().collect();
                names.sort();
                names
            }
        }
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get_on(&self.inner.primary, keyspace, key)
    }

    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        self.inner
            .scan_on(&self.inner.primary, keyspace, lower, upper, reverse, f)
    }

    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<()> {
        let ops = effective_ops(&self.inner, &batch)?;
        if ops.is_empty() {
            return Ok(());
        }
        let mut conn = self.inner.primary.get()?;
        let mut steps = Vec::with_capacity(ops.len() + 2);
        if ops.len() == 1 {
            // One statement is its own transaction.
            op_steps(&ops, &mut steps);
            run_steps(&mut conn, &steps, true, "write")?;
        } else {
            steps.push(Step::Simple(sql::BEGIN));
            op_steps(&ops, &mut steps);
            steps.push(Step::Simple(sql::COMMIT));
            run_steps(&mut conn, &steps, true, "write")?;
        }
        Ok(())
    }

    fn commit(&self, batch: WriteBatch) -> Result<CommitTicket> {
        self.write(batch, Durability::Sync)?;
        Ok(CommitTicket::DURABLE)
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        Box::new(snapshot::PgSnapshot::start(Arc::clone(&self.inner)))
    }

    /// Bounded, not estimated: exact up to 10 000 live keys, and that many
    /// (with their bytes) above it. Counting a large keyspace would scan it whole.
    fn stats(&self, keyspace: &str) -> Result<KeyspaceStats> {
        let ks = self.inner.keyspace_id(keyspace)?;
        let mut conn = self.inner.primary.get()?;
        let rows = conn.query(sql::STATS, &[&ks, &sql::STATS_ROWS], "stats")?;
        let Some(row) = rows.first() else {
            return Ok(KeyspaceStats::default());
        };
        let keys: i64 = row.try_get(0).map_err(|e| row_err(&e))?;
        let bytes: i64 = row.try_get(1).map_err(|e| row_err(&e))?;
        Ok(KeyspaceStats {
            approximate_keys: u64::try_from(keys).unwrap_or(0),
            approximate_bytes: u64::try_from(bytes).unwrap_or(0),
        })
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(self.begin_pg()?))
    }

    fn counters(&self, keyspace: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, i64)>> {
        let ks = self.inner.keyspace_id(keyspace)?;
        let mut conn = self.inner.primary.get()?;
        let end = ferrodyn_storage::prefix_end(prefix);
        let rows = match &end {
            Some(end) => conn.query(sql::COUNTERS_RANGE, &[&ks, &prefix, end], "counters")?,
            None => conn.query(sql::COUNTERS_FROM, &[&ks, &prefix], "counters")?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let k: Vec<u8> = row.try_get(0).map_err(|e| row_err(&e))?;
            let n: i64 = row.try_get(1).map_err(|e| row_err(&e))?;
            out.push((k, n));
        }
        Ok(out)
    }

    fn get_eventual(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(replica) = &self.inner.replica {
            match self.inner.get_on(replica, keyspace, key) {
                Err(StorageError::Unavailable(e)) => {
                    tracing::debug!(error = %e, "replica unavailable; reading from the primary");
                }
                other => return other,
            }
        }
        self.get(keyspace, key)
    }

    fn scan_eventual(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        if let Some(replica) = &self.inner.replica {
            // Fall back only if the replica failed before delivering anything.
            let mut delivered = false;
            let result =
                self.inner
                    .scan_on(replica, keyspace, lower, upper, reverse, &mut |k, v| {
                        delivered = true;
                        f(k, v)
                    });
            match result {
                Err(StorageError::Unavailable(e)) if !delivered => {
                    tracing::debug!(error = %e, "replica unavailable; scanning the primary");
                }
                other => return other,
            }
        }
        self.scan(keyspace, lower, upper, reverse, f)
    }
}
