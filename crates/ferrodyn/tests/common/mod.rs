//! Support for multi-node tests: several real `ferrodyn serve` processes sharing one
//! PostgreSQL database, and AWS SDK clients for them.
//!
//! Invariant: every node process is killed (SIGKILL) and reaped when its [`Node`] is dropped,
//! including while a failing test unwinds, so no node outlives its test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use ferrodyn_pgtest::PgServer;

/// One `ferrodyn serve --storage …` process on a free loopback port.
pub struct Node {
    child: Child,
    pub url: String,
    log: PathBuf,
}

impl Node {
    /// Starts a node on `storage` (a URL or key=value connection string) and waits for its
    /// "listening on" line. Its stderr goes to `log`.
    pub fn start(storage: &str, log: &Path) -> Node {
        Self::start_with(storage, log, &[])
    }

    /// [`Node::start`] with more `serve` flags.
    pub fn start_with(storage: &str, log: &Path, extra: &[&str]) -> Node {
        let stderr = std::fs::File::create(log).expect("node log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrodyn"))
            .args(["serve", "--storage", storage, "--port", "0"])
            .args(["--host", "127.0.0.1"])
            .args(extra)
            .env("FERRODYN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn ferrodyn");
        let stdout = child.stdout.take().expect("node stdout");
        let mut node = Node {
            child,
            url: String::new(),
            log: log.to_owned(),
        };
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        // EOF (the node exited) ends the read: a node that cannot start never hangs the test.
        let _ = reader.read_line(&mut line);
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            panic!(
                "node did not start (stdout {line:?}); its log:\n{}",
                node.log()
            );
        };
        node.url = url.to_owned();
        // Keep draining stdout so the node never blocks or fails on a full or closed pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        node
    }

    /// The node's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash would; waits until the process is gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An SDK client for this node (see [`client`]).
    pub fn client(&self, timeout: Duration) -> aws_sdk_dynamodb::Client {
        client(&self.url, timeout)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A PostgreSQL server and nodes on it. Nodes are dropped (killed) before the database.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub pg: PgServer,
    logs: tempfile::TempDir,
}

impl Cluster {
    /// A fresh PostgreSQL server and `nodes` nodes on its URL.
    pub fn start(nodes: usize) -> Cluster {
        let pg = PgServer::start().expect("start PostgreSQL");
        let url = pg.url();
        Self::on(pg, &url, nodes)
    }

    /// `nodes` nodes on `storage`, all started at once (they race to create the schema).
    pub fn on(pg: PgServer, storage: &str, nodes: usize) -> Cluster {
        Self::on_with(pg, storage, nodes, &[])
    }

    /// A fresh PostgreSQL server and `nodes` nodes started with more `serve` flags.
    pub fn start_with(nodes: usize, extra: &[&str]) -> Cluster {
        let pg = PgServer::start().expect("start PostgreSQL");
        let url = pg.url();
        Self::on_with(pg, &url, nodes, extra)
    }

    /// [`Cluster::on`] with more `serve` flags for every node.
    pub fn on_with(pg: PgServer, storage: &str, nodes: usize, extra: &[&str]) -> Cluster {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let logs = tempfile::tempdir().expect("log directory");
        let handles: Vec<_> = (0..nodes)
            .map(|i| {
                let storage = storage.to_owned();
                let log = logs.path().join(format!("node{}.log", i + 1));
                let extra = extra.clone();
                std::thread::spawn(move || {
                    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                    Node::start_with(&storage, &log, &extra)
                })
            })
            .collect();
        let mut started = Vec::new();
        let mut failure = None;
        for h in handles {
            match h.join() {
                Ok(node) => started.push(node),
                Err(panic) => failure = Some(panic),
            }
        }
        if let Some(panic) = failure {
            std::panic::resume_unwind(panic);
        }
        Cluster {
            nodes: started,
            pg,
            logs,
        }
    }

    /// One client per node, in node order.
    pub fn clients(&self, timeout: Duration) -> Vec<aws_sdk_dynamodb::Client> {
        self.nodes.iter().map(|n| n.client(timeout)).collect()
    }

    /// Every node's log and the database's sessions, for failure messages.
    pub fn logs(&self) -> String {
        let sessions = self.pg.psql(
            "SELECT pid, application_name, state, wait_event_type, wait_event, \
             now() - xact_start, left(query, 100) FROM pg_stat_activity \
             WHERE datname = 'ferrodyn' ORDER BY xact_start",
        );
        let mut out = match sessions {
            Ok(rows) => format!("--- database sessions ---\n{rows}\n"),
            Err(e) => format!("--- database sessions: {e}\n"),
        };
        for (i, n) in self.nodes.iter().enumerate() {
            out.push_str(&format!("--- node {} ---\n{}\n", i + 1, n.log()));
        }
        out
    }
}

/// An SDK client for `url` with dummy credentials, no retries (every outcome is the server's
/// own) and `timeout` for each whole operation.
pub fn client(url: &str, timeout: Duration) -> aws_sdk_dynamodb::Client {
    let creds = aws_credential_types::Credentials::new("ferrodyn", "ferrodyn", None, None, "test");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(creds)
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(timeout)
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// How a request ended: the server's error code and HTTP status, or a failure to get any
/// response (timeout, connection refused or reset).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    Service {
        code: String,
        status: u16,
        message: String,
    },
    NoResponse(String),
}

impl Failure {
    pub fn code(&self) -> &str {
        match self {
            Failure::Service { code, .. } => code,
            Failure::NoResponse(_) => "",
        }
    }
}

pub fn failure<E>(e: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(s) => Failure::Service {
            code: s.err().code().unwrap_or("").to_owned(),
            status: s.raw().status().as_u16(),
            message: s.err().message().unwrap_or("").to_owned(),
        },
        other => Failure::NoResponse(format!(
            "{}",
            aws_sdk_dynamodb::error::DisplayErrorContext(other)
        )),
    }
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A number attribute of an item as i64 (panics with the item when absent or not a number).
pub fn num(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or_else(|_| panic!("{name}={v}")),
        other => panic!("{name} is {other:?} in {item:?}"),
    }
}

/// A small deterministic PRNG (xorshift64*), so runs are reproducible from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}
