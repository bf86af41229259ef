//! Every SQL statement the engine sends, in one place. Each is plain SQL that PostgreSQL,
//! CockroachDB and YugabyteDB accept: no extensions, advisory locks, LISTEN/NOTIFY or
//! procedural code. Statements with parameters are prepared once per connection
//! ([`crate::pool::Conn`] caches them); the others go out as simple queries.

/// Version of the schema below, recorded in `ferrodyn_meta` under `schema_version`.
pub(crate) const SCHEMA_VERSION: u64 = 1;

/// Creates the schema if missing, in one transaction.
pub(crate) const CREATE_SCHEMA: &str = "BEGIN;
CREATE TABLE IF NOT EXISTS ferrodyn_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ferrodyn_keyspaces (name TEXT PRIMARY KEY, id BIGINT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS ferrodyn_kv (ks BIGINT NOT NULL, k BYTEA NOT NULL, v BYTEA, PRIMARY KEY (ks, k));
CREATE TABLE IF NOT EXISTS ferrodyn_counters (ks BIGINT NOT NULL, k BYTEA NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (ks, k));
INSERT INTO ferrodyn_meta (name, value) VALUES ('schema_version', '1') ON CONFLICT (name) DO NOTHING;
COMMIT";

pub(crate) const SCHEMA_VERSION_READ: &str =
    "SELECT value FROM ferrodyn_meta WHERE name = 'schema_version'";

// Keyspaces. Ids come from the counter row (0, 'keyspace-id'): they are never reused, even
// after a drop. Keyspace 0 is reserved for that counter.
pub(crate) const KEYSPACE_ID: &str = "SELECT id FROM ferrodyn_keyspaces WHERE name = $1";
pub(crate) const KEYSPACES: &str = "SELECT name, id FROM ferrodyn_keyspaces";
pub(crate) const NEXT_KEYSPACE_ID: &str =
    "INSERT INTO ferrodyn_counters (ks, k, n) VALUES (0, $1, 1) \
     ON CONFLICT (ks, k) DO UPDATE SET n = ferrodyn_counters.n + 1 RETURNING n";
pub(crate) const KEYSPACE_ID_KEY: &[u8] = b"keyspace-id";
pub(crate) const INSERT_KEYSPACE: &str =
    "INSERT INTO ferrodyn_keyspaces (name, id) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
pub(crate) const DROP_KV: &str = "DELETE FROM ferrodyn_kv WHERE ks = $1";
pub(crate) const DROP_COUNTERS: &str = "DELETE FROM ferrodyn_counters WHERE ks = $1";
pub(crate) const DROP_KEYSPACE: &str = "DELETE FROM ferrodyn_keyspaces WHERE id = $1";

// Keys and values. A row whose `v` is NULL is the lock row of an absent key, visible only to
// the transaction that locked it; every read skips it.
pub(crate) const GET: &str = "SELECT v FROM ferrodyn_kv WHERE ks = $1 AND k = $2 AND v IS NOT NULL";
pub(crate) const PUT: &str = "INSERT INTO ferrodyn_kv (ks, k, v) VALUES ($1, $2, $3) \
     ON CONFLICT (ks, k) DO UPDATE SET v = EXCLUDED.v";
pub(crate) const DELETE: &str = "DELETE FROM ferrodyn_kv WHERE ks = $1 AND k = $2";
pub(crate) const LOCK: &str = "INSERT INTO ferrodyn_kv (ks, k, v) VALUES ($1, $2, NULL) \
     ON CONFLICT (ks, k) DO UPDATE SET v = ferrodyn_kv.v RETURNING v";
pub(crate) const READ_SHARED: &str = "SELECT v FROM ferrodyn_kv WHERE ks = $1 AND k = $2 FOR SHARE";
pub(crate) const DELETE_LOCK_ROW: &str =
    "DELETE FROM ferrodyn_kv WHERE ks = $1 AND k = $2 AND v IS NULL";

// Counters.
pub(crate) const ADD: &str = "INSERT INTO ferrodyn_counters (ks, k, n) VALUES ($1, $2, $3) \
     ON CONFLICT (ks, k) DO UPDATE SET n = ferrodyn_counters.n + EXCLUDED.n";
pub(crate) const COUNTERS_FROM: &str =
    "SELECT k, n FROM ferrodyn_counters WHERE ks = $1 AND k >= $2 ORDER BY k";
pub(crate) const COUNTERS_RANGE: &str =
    "SELECT k, n FROM ferrodyn_counters WHERE ks = $1 AND k >= $2 AND k < $3 ORDER BY k";

/// Rows `stats` looks at, at most: the statistics are exact below it and a lower bound above.
pub(crate) const STATS_ROWS: i64 = 10_000;
pub(crate) const STATS: &str = "SELECT CAST(count(*) AS BIGINT), \
     CAST(coalesce(sum(length(k) + length(v)), 0) AS BIGINT) \
     FROM (SELECT k, v FROM ferrodyn_kv WHERE ks = $1 AND v IS NOT NULL LIMIT $2) AS sample";

// Transactions (simple queries).
pub(crate) const BEGIN: &str = "BEGIN";
pub(crate) const COMMIT: &str = "COMMIT";
pub(crate) const ROLLBACK: &str = "ROLLBACK";
/// Starts a snapshot; the `SELECT 1` makes PostgreSQL take the snapshot now.
pub(crate) const BEGIN_SNAPSHOT: &str =
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT 1";

// Range scans: `$1` keyspace, `$2` lower bound (the empty key when unbounded: every key is
// greater), `$3` page size, `$4` upper bound when there is one.
macro_rules! scan {
    ($lo:literal, $hi:literal, $dir:literal) => {
        concat!(
            "SELECT k, v FROM ferrodyn_kv WHERE ks = $1 AND k ",
            $lo,
            " $2",
            $hi,
            " AND v IS NOT NULL ORDER BY k ",
            $dir,
            " LIMIT $3"
        )
    };
}

/// The scan statement for an inclusive (`true`) or exclusive lower bound, an inclusive,
/// exclusive or absent upper bound, in ascending or descending order.
pub(crate) fn scan(lower_inclusive: bool, upper: Option<bool>, reverse: bool) -> &'static str {
    match (lower_inclusive, upper, reverse) {
        (true, None, false) => scan!(">=", "", "ASC"),
        (true, None, true) => scan!(">=", "", "DESC"),
        (false, None, false) => scan!(">", "", "ASC"),
        (false, None, true) => scan!(">", "", "DESC"),
        (true, Some(true), false) => scan!(">=", " AND k <= $4", "ASC"),
        (true, Some(true), true) => scan!(">=", " AND k <= $4", "DESC"),
        (false, Some(true), false) => scan!(">", " AND k <= $4", "ASC"),
        (false, Some(true), true) => scan!(">", " AND k <= $4", "DESC"),
        (true, Some(false), false) => scan!(">=", " AND k < $4", "ASC"),
        (true, Some(false), true) => scan!(">=", " AND k < $4", "DESC"),
        (false, Some(false), false) => scan!(">", " AND k < $4", "ASC"),
        (false, Some(false), true) => scan!(">", " AND k < $4", "DESC"),
    }
}
