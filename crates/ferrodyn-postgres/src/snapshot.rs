//! [`PgSnapshot`]: a point-in-time view, one pooled client in a `REPEATABLE READ, READ ONLY`
//! transaction for the snapshot's whole life.
//!
//! Invariants:
//! * The transaction's snapshot is taken before [`crate::PostgresStorage::snapshot`] returns
//!   (its `BEGIN` is followed by a `SELECT 1`), so it sees exactly the writes that returned
//!   before.
//! * Keyspace names resolve against the current keyspace map, not the snapshot's: a keyspace
//!   dropped after the snapshot reads as not found, one created after reads as empty.
//! * Its client may be one beyond the pool's size (a snapshot neither waits for a client nor
//!   takes one from short operations for long); the engine takes few snapshots.
//! * Dropping the snapshot rolls its transaction back on the runtime; the client returns to
//!   the pool only after that.
//! * A snapshot that could not start answers every call with the error that stopped it
//!   (`Storage::snapshot` itself cannot fail).

use std::ops::Bound;
use std::sync::Arc;

use ferrodyn_storage::{Result, Snapshot, StorageError};
use parking_lot::Mutex;

use crate::error::duplicate;
use crate::pool::{PooledConn, Step};
use ferrodyn_storage::{key_unstorable as unstorable, range_is_empty};

use crate::{opt_bytes, run_steps, scan_pages, sql, Inner};

pub(crate) struct PgSnapshot {
    inner: Arc<Inner>,
    conn: Mutex<Option<std::result::Result<PooledConn, StorageError>>>,
}

impl PgSnapshot {
    pub(crate) fn start(inner: Arc<Inner>) -> Self {
        let conn = inner.primary.get_or_open().and_then(|mut conn| {
            conn.set_in_transaction(true);
            run_steps(
                &mut conn,
                &[Step::Simple(sql::BEGIN_SNAPSHOT)],
                false,
                "starting a snapshot",
            )?;
            Ok(conn)
        });
        PgSnapshot {
            inner,
            conn: Mutex::new(Some(conn)),
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut PooledConn) -> Result<T>) -> Result<T> {
        let mut guard = self.conn.lock();
        match guard.as_mut() {
            Some(Ok(conn)) => f(conn),
            Some(Err(e)) => Err(duplicate(e)),
            None => Err(StorageError::Engine("snapshot already released".into())),
        }
    }
}

impl Snapshot for PgSnapshot {
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ks = self.inner.keyspace_id(keyspace)?;
        if unstorable(key) {
            return Ok(None);
        }
        self.with_conn(|conn| {
            let rows = conn.query(sql::GET, &[&ks, &key], "snapshot get")?;
            match rows.first() {
                Some(row) => opt_bytes(row),
                None => Ok(None),
            }
        })
    }

    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let ks = self.inner.keyspace_id(keyspace)?;
        if range_is_empty(lower, upper) {
            return Ok(());
        }
        self.with_conn(|conn| scan_pages(conn, ks, lower, upper, reverse, f))
    }
}

impl Drop for PgSnapshot {
    fn drop(&mut self) {
        if let Some(Ok(conn)) = self.conn.get_mut().take() {
            conn.rollback_in_background();
        }
    }
}
