//! Shared by the test binaries: one PostgreSQL server per binary and a fresh database per test.
//!
//! The server is shared through a `Weak`: tests running at the same time use one instance,
//! and the last test to finish stops it (a server kept in a static would outlive the test
//! process).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use ferrodyn_pgtest::PgServer;
use ferrodyn_postgres::{PgOptions, PostgresStorage};

static SERVER: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The binary's shared server, started on first use.
pub fn server() -> Arc<PgServer> {
    let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(PgServer::start().expect("start PostgreSQL"));
    *slot = Arc::downgrade(&server);
    server
}

/// `server`'s URL with another database name.
pub fn url_of(server: &PgServer, database: &str) -> String {
    let url = server.url();
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    format!("{base}/{database}")
}

/// A test's own database on the shared server: the server (keep it alive) and the URL.
pub struct TestDb {
    pub server: Arc<PgServer>,
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub fn new(test: &str) -> TestDb {
        let server = server();
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("{test}_{n}");
        server
            .psql(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let url = url_of(&server, &name);
        TestDb { server, url, name }
    }

    /// A node: a storage connected to this database.
    pub fn node(&self) -> PostgresStorage {
        PostgresStorage::connect(&self.url, options()).expect("connect")
    }

    /// Runs SQL in this test's database.
    pub fn psql(&self, sql: &str) -> String {
        let psql = PgServer::bin_dir()
            .expect("PostgreSQL binaries")
            .join("psql");
        let out = std::process::Command::new(psql)
            .args(["-At", "-X", "-d", &self.url, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

pub fn options() -> PgOptions {
    PgOptions {
        pool_size: 8,
        connect_timeout: Duration::from_secs(5),
        acquire_timeout: Duration::from_secs(20),
        ..PgOptions::default()
    }
}
