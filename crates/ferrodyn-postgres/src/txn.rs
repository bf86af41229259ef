//! [`PgTransaction`]: the locking read-write transaction of [`crate::PostgresStorage`].
//!
//! Invariants:
//! * It starts lazily: `BEGIN` goes out in the same round trip as the first statement, and a
//!   transaction that never sent anything costs nothing. Each call is one round trip
//!   (`lock_with_shared` sends its shared reads and its locks together).
//! * `lock` leaves every key it locked row-locked until the end: a present key by a no-op
//!   update, an absent one by a lock row (`v` NULL) that only this transaction sees. Commit
//!   deletes the lock rows of absent keys it did not write, so none outlives the transaction;
//!   a rollback removes them with everything else.
//! * Counter additions are buffered and applied at commit, one per distinct key, in
//!   ascending `(keyspace id, key)` order, so two committers never deadlock on counters.
//! * Once a statement failed, the database transaction is aborted: every later call answers
//!   that first error, and dropping rolls back.
//! * Dropped without a successful commit, a started transaction is rolled back on the
//!   runtime; its client returns to the pool only after the `ROLLBACK` completed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use ferrodyn_storage::{Result, StorageError, Transaction, WriteBatch};
use tokio_postgres::types::ToSql;

use crate::error::duplicate;
use crate::pool::{PooledConn, Step};
use ferrodyn_storage::key_unstorable as unstorable;

use crate::{effective_ops, op_steps, opt_bytes, run_steps, sql, Inner};

/// Keys named by keyspace, and the statement that reads them.
type KeyGroup<'a> = (&'a [(&'a str, &'a [u8])], &'static str);

/// A key by keyspace id.
type KeyRef<'k> = (i64, &'k [u8]);

/// A read-write transaction holding one pooled client; see the module invariants.
pub struct PgTransaction {
    inner: Arc<Inner>,
    conn: Option<PooledConn>,
    started: bool,
    committed: bool,
    failed: Option<StorageError>,
    /// Keys whose `lock` found them absent (their lock rows must not survive the commit).
    locked_absent: HashSet<(i64, Vec<u8>)>,
    adds: BTreeMap<(String, Vec<u8>), i64>,
}

impl PgTransaction {
    pub(crate) fn new(inner: Arc<Inner>, conn: PooledConn) -> Self {
        PgTransaction {
            inner,
            conn: Some(conn),
            started: false,
            committed: false,
            failed: None,
            locked_absent: HashSet::new(),
            adds: BTreeMap::new(),
        }
    }

    fn usable(&self) -> Result<()> {
        match &self.failed {
            Some(e) => Err(duplicate(e)),
            None => Ok(()),
        }
    }

    /// Resolves keyspace names; unstorable keys (which no row can hold) become `None`.
    fn resolve<'k>(&self, keys: &[(&str, &'k [u8])]) -> Result<Vec<Option<KeyRef<'k>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for (keyspace, key) in keys {
            let ks = self.inner.keyspace_id(keyspace)?;
            out.push((!unstorable(key)).then_some((ks, *key)));
        }
        Ok(out)
    }

    /// Sends `body` (behind `BEGIN` if the transaction has not started) in one round trip and
    /// returns the rows of each `body` step; a failure poisons the transaction.
    fn send(
        &mut self,
        body: Vec<Step<'_>>,
        committing: bool,
        what: &str,
    ) -> Result<Vec<Vec<tokio_postgres::Row>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(StorageError::Engine("transaction already ended".into()));
        };
        let begin = !self.started;
        let mut steps = Vec::with_capacity(body.len() + 1);
        if begin {
            steps.push(Step::Simple(sql::BEGIN));
            self.started = true;
            conn.set_in_transaction(true);
        }
        steps.extend(body);
        match run_steps(conn, &steps, committing, what) {
            Ok(mut rows) => {
                if begin {
                    rows.remove(0);
                }
                Ok(rows)
            }
            Err(e) => {
                self.failed = Some(duplicate(&e));
                Err(e)
            }
        }
    }

    /// Reads each group of keys with its statement (`READ_SHARED` or `LOCK`), all groups in
    /// one round trip, in order; answers each group's values.
    fn read(&mut self, groups: &[KeyGroup<'_>], what: &str) -> Result<Vec<Vec<Option<Vec<u8>>>>> {
        self.usable()?;
        let mut resolved = Vec::with_capacity(groups.len());
        for (keys, stmt) in groups {
            resolved.push((self.resolve(keys)?, *stmt));
        }
        let mut steps = Vec::new();
        for (keys, stmt) in &resolved {
            for (ks, key) in keys.iter().flatten() {
                steps.push(Step::Query(stmt, vec![ks as &(dyn ToSql + Sync), key]));
            }
        }
        let mut rows = if steps.is_empty() {
            Vec::new().into_iter()
        } else {
            self.send(steps, false, what)?.into_iter()
        };
        let mut out = Vec::with_capacity(groups.len());
        for (keys, stmt) in &resolved {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                let value = match key {
                    None => None,
                    Some((ks, key)) => {
                        let value = match rows.next().as_ref().and_then(|r| r.first()) {
                            Some(row) => opt_bytes(row)?,
                            None => None,
                        };
                        if value.is_none() && *stmt == sql::LOCK {
                            self.locked_absent.insert((*ks, key.to_vec()));
                        }
                        value
                    }
                };
                values.push(value);
            }
            out.push(values);
        }
        Ok(out)
    }
}

impl Transaction for PgTransaction {
    fn lock(&mut self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(self.read(&[(keys, sql::LOCK)], "lock")?.remove(0))
    }

    fn read_shared(&mut self, keys: &[(&str, &[u8])]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(self
            .read(&[(keys, sql::READ_SHARED)], "read_shared")?
            .remove(0))
    }

    /// Both in one round trip (with `BEGIN` if it is the first).
    #[allow(clippy::type_complexity)]
    fn lock_with_shared(
        &mut self,
        shared: &[(&str, &[u8])],
        keys: &[(&str, &[u8])],
    ) -> Result<(Vec<Option<Vec<u8>>>, Vec<Option<Vec<u8>>>)> {
        let mut out = self.read(
            &[(shared, sql::READ_SHARED), (keys, sql::LOCK)],
            "lock_with_shared",
        )?;
        let locked = out.pop().unwrap_or_default();
        let records = out.pop().unwrap_or_default();
        Ok((records, locked))
    }

    fn add(&mut self, keyspace: &str, key: &[u8], delta: i64) {
        let total = self
            .adds
            .entry((keyspace.to_owned(), key.to_vec()))
            .or_insert(0);
        *total = total.saturating_add(delta);
    }

    fn commit(mut self: Box<Self>, batch: WriteBatch) -> Result<()> {
        self.usable()?;
        let ops = effective_ops(&self.inner, &batch)?;
        let mut adds: Vec<(i64, Vec<u8>, i64)> = Vec::with_capacity(self.adds.len());
        for ((keyspace, key), delta) in std::mem::take(&mut self.adds) {
            if delta != 0 {
                adds.push((self.inner.keyspace_id(&keyspace)?, key, delta));
            }
        }
        adds.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let written: HashSet<(i64, &[u8])> =
            ops.iter().map(|(ks, k, _)| (*ks, k.as_slice())).collect();
        let locked = std::mem::take(&mut self.locked_absent);
        let mut lock_rows: Vec<&(i64, Vec<u8>)> = locked
            .iter()
            .filter(|(ks, k)| !written.contains(&(*ks, k.as_slice())))
            .collect();
        lock_rows.sort();
        if !self.started && ops.is_empty() && adds.is_empty() {
            self.committed = true;
            return Ok(());
        }
        let mut steps = Vec::with_capacity(ops.len() + adds.len() + lock_rows.len() + 1);
        op_steps(&ops, &mut steps);
        for (ks, key, delta) in &adds {
            steps.push(Step::Query(
                sql::ADD,
                vec![ks as &(dyn ToSql + Sync), key, delta],
            ));
        }
        for (ks, key) in lock_rows.iter().copied() {
            steps.push(Step::Query(
                sql::DELETE_LOCK_ROW,
                vec![ks as &(dyn ToSql + Sync), key],
            ));
        }
        steps.push(Step::Simple(sql::COMMIT));
        self.send(steps, true, "commit")?;
        self.committed = true;
        if let Some(conn) = self.conn.as_mut() {
            conn.set_in_transaction(false);
        }
        Ok(())
    }
}

impl Drop for PgTransaction {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.started && !self.committed {
            conn.rollback_in_background();
        }
    }
}
