//! A fixed-size pool of database clients, and the pipelined execution of statements on one.
//!
//! Invariants:
//! * At most `size` clients exist at once (`open` counts idle and lent ones), not counting
//!   the clients of snapshots ([`Pool::get_or_open`]), which join the idle ones on their
//!   return only if there is room; a caller of [`Pool::get`] waits for a free client at most
//!   `acquire_timeout`, then gets [`StorageError::Unavailable`].
//! * A client goes back to the idle list only if it is healthy: not closed, and no
//!   connection-class error was seen on it. Anything else is dropped and replaced on demand,
//!   so a restart or a failover of the database costs the callers that were using it at that
//!   moment, and nothing afterwards.
//! * Connections are made on the storage's own runtime (the connect future is spawned there
//!   and the caller blocks on its join handle); client futures need no runtime and are blocked
//!   on with `futures::executor::block_on` on the calling thread.
//! * A client lent out in the middle of a transaction is never returned to the idle list
//!   before that transaction ended (the owner marks it unhealthy until its `ROLLBACK` or
//!   `COMMIT` completed).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_storage::{Result, StorageError};
use futures::executor::block_on;
use parking_lot::{Condvar, Mutex};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use crate::error::{classify, Class};
use crate::tls::Tls;

/// One client and the statements prepared on its connection.
pub(crate) struct Conn {
    pub(crate) client: Client,
    stmts: HashMap<&'static str, Statement>,
}

/// One step of a pipeline: a prepared statement with its parameters, or a simple query.
pub(crate) enum Step<'a> {
    Query(&'static str, Vec<&'a (dyn ToSql + Sync)>),
    Simple(&'static str),
}

type StepFuture<'a> =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

impl Conn {
    /// Runs `steps` in one round trip (after preparing, once per connection, the statements
    /// this connection has not seen): every request is written before any answer is read,
    /// in order. Returns each step's outcome; an error of the preparation is returned whole.
    pub(crate) async fn pipeline(
        &mut self,
        steps: &[Step<'_>],
    ) -> std::result::Result<
        Vec<std::result::Result<Vec<Row>, tokio_postgres::Error>>,
        tokio_postgres::Error,
    > {
        let mut missing: Vec<&'static str> = Vec::new();
        for step in steps {
            if let Step::Query(sql, _) = step {
                if !self.stmts.contains_key(sql) && !missing.contains(sql) {
                    missing.push(sql);
                }
            }
        }
        if !missing.is_empty() {
            let client = &self.client;
            let prepared =
                futures::future::join_all(missing.iter().map(|sql| client.prepare(sql))).await;
            for (sql, stmt) in missing.into_iter().zip(prepared) {
                self.stmts.insert(sql, stmt?);
            }
        }
        let client = &self.client;
        let mut futures: Vec<StepFuture<'_>> = Vec::with_capacity(steps.len());
        for step in steps {
            match step {
                Step::Query(sql, params) => {
                    let stmt = self.stmts.get(sql).cloned();
                    futures.push(Box::pin(async move {
                        match stmt {
                            Some(stmt) => client.query(&stmt, params).await,
                            None => client.query(*sql, params).await,
                        }
                    }));
                }
                Step::Simple(sql) => {
                    futures.push(Box::pin(async move {
                        client.batch_execute(sql).await.map(|()| Vec::new())
                    }));
                }
            }
        }
        Ok(futures::future::join_all(futures).await)
    }

    /// Runs one prepared statement.
    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
        let steps = [Step::Query(sql, params.to_vec())];
        let mut out = block_on(self.pipeline(&steps))?;
        out.pop().unwrap_or_else(|| Ok(Vec::new()))
    }
}

struct State {
    idle: Vec<Conn>,
    open: usize,
}

/// A pool of clients of one database server (or list of servers).
pub(crate) struct Pool {
    name: &'static str,
    config: tokio_postgres::Config,
    tls: Tls,
    /// Statements run once on every new connection (session settings).
    setup: String,
    rt: tokio::runtime::Handle,
    size: usize,
    acquire_timeout: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

impl Pool {
    pub(crate) fn new(
        name: &'static str,
        config: tokio_postgres::Config,
        tls: Tls,
        setup: String,
        rt: tokio::runtime::Handle,
        size: usize,
        acquire_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Pool {
            name,
            config,
            tls,
            setup,
            rt,
            size: size.max(1),
            acquire_timeout,
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        })
    }

    /// A client: an idle one, a new one if fewer than `size` exist, or the first one freed.
    pub(crate) fn get(self: &Arc<Self>) -> Result<PooledConn> {
        let deadline = Instant::now() + self.acquire_timeout;
        let mut state = self.state.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                return Ok(self.lend(conn));
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => Ok(self.lend(conn)),
                    Err(e) => {
                        self.state.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            if self.freed.wait_until(&mut state, deadline).timed_out() {
                return Err(StorageError::Unavailable(format!(
                    "no {} database connection became free within {:?}",
                    self.name, self.acquire_timeout
                )));
            }
        }
    }

    /// A client for a long holder (a snapshot) that does not count toward `size`: an idle
    /// one (which then stops counting), or a new connection. On its return it joins the idle
    /// clients if the pool has room, else it is closed. So snapshots never wait for, nor
    /// starve, the short operations.
    pub(crate) fn get_or_open(self: &Arc<Self>) -> Result<PooledConn> {
        let mut state = self.state.lock();
        while let Some(conn) = state.idle.pop() {
            state.open -= 1;
            if conn.client.is_closed() {
                continue;
            }
            drop(state);
            self.freed.notify_one();
            let mut lent = self.lend(conn);
            lent.counted = false;
            return Ok(lent);
        }
        drop(state);
        let mut lent = self.lend(self.connect()?);
        lent.counted = false;
        Ok(lent)
    }

    fn lend(self: &Arc<Self>, conn: Conn) -> PooledConn {
        PooledConn {
            conn: Some(conn),
            pool: Arc::clone(self),
            healthy: true,
            in_transaction: false,
            counted: true,
        }
    }

    fn connect(&self) -> Result<Conn> {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let setup = self.setup.clone();
        let task = self.rt.spawn(async move {
            let client = tls.connect(&config).await?;
            if !setup.is_empty() {
                client.batch_execute(&setup).await?;
            }
            Ok::<_, tokio_postgres::Error>(client)
        });
        match block_on(task) {
            Ok(Ok(client)) => Ok(Conn {
                client,
                stmts: HashMap::new(),
            }),
            Ok(Err(e)) => Err(StorageError::Unavailable(format!(
                "cannot connect to the {} database: {}",
                self.name,
                crate::error::to_storage(&e, "connect")
            ))),
            Err(e) => Err(StorageError::Unavailable(format!(
                "cannot connect to the {} database: {e}",
                self.name
            ))),
        }
    }

    /// Spawns `f` on the storage's runtime (fire and forget).
    pub(crate) fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        drop(self.rt.spawn(f));
    }
}

/// A client lent by a [`Pool`]; it goes back (or is discarded) when dropped.
pub(crate) struct PooledConn {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    healthy: bool,
    in_transaction: bool,
    /// Counted in the pool's `open` (false for [`Pool::get_or_open`]'s clients).
    counted: bool,
}

impl PooledConn {
    pub(crate) fn conn(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a PooledConn holds its connection until dropped")
    }

    /// Marks the client as inside a transaction (or not): one dropped inside a transaction
    /// is discarded, never returned to the pool with the transaction open.
    pub(crate) fn set_in_transaction(&mut self, in_transaction: bool) {
        self.in_transaction = in_transaction;
    }

    /// Ends the client's open transaction with `ROLLBACK` on the runtime, without waiting,
    /// and returns the client to the pool once that completed.
    pub(crate) fn rollback_in_background(mut self) {
        let pool = Arc::clone(&self.pool);
        pool.spawn(async move {
            let result = self.conn().client.batch_execute(crate::sql::ROLLBACK).await;
            match result {
                Ok(()) => self.set_in_transaction(false),
                Err(e) => {
                    self.saw(&e);
                }
            }
        });
    }

    /// Records what `e` says about the connection (discarding it on connection errors) and
    /// returns its class.
    pub(crate) fn saw(&mut self, e: &tokio_postgres::Error) -> Class {
        let class = classify(e);
        if class == Class::Unavailable || (class == Class::Other && e.as_db_error().is_none()) {
            self.healthy = false;
        }
        class
    }

    /// Runs one prepared statement, mapping its error.
    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<Vec<Row>> {
        match self.conn().query(sql, params) {
            Ok(rows) => Ok(rows),
            Err(e) => {
                self.saw(&e);
                Err(crate::error::to_storage(&e, what))
            }
        }
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let mut state = self.pool.state.lock();
        let reusable = self.healthy && !self.in_transaction && !conn.client.is_closed();
        if self.counted {
            if reusable {
                state.idle.push(conn);
            } else {
                state.open -= 1;
            }
        } else if reusable && state.open < self.pool.size {
            state.open += 1;
            state.idle.push(conn);
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}
