//! `ferrodyn bench soak`: a long mixed workload that checks its answers and watches the server's
//! memory and open files.
//!
//! Owns: the soak's options ([`SoakArgs`]), its tasks (item workers, the stream consumer, table
//! churn, the /proc sampler) and its report ([`SoakReport`], text and JSON schema
//! `ferrodyn-bench-soak/v1`).
//!
//! Invariants:
//! - each worker owns its keys (`pk = "w{worker}-p{j/4}"`, `sk = "{j%4}"`) and keeps a model of
//!   their versions (`v`), so every consistent read, conditional write and query count on them
//!   can be checked exactly; a key whose request failed in transport becomes unknown until it is
//!   written blindly again, so one failure is reported once, not as a cascade;
//! - every error answer fails the soak except the few the workload expects and retries: a table
//!   or index still being created or deleted (`ResourceInUseException`, `LimitExceededException`
//!   during churn) and stream iterators that expired or point at trimmed records;
//! - the tables the soak creates carry a run id in their names, and without `--keep` every one
//!   of them is deleted at the end, whatever the outcome;
//! - /proc is only read: the server is sampled, never signalled.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::client::{CallError, Conn, Endpoint};
use crate::keygen::Rng;
use crate::retryable;

/// The JSON report schema identifier.
pub const SOAK_SCHEMA: &str = "ferrodyn-bench-soak/v1";

/// How many error and check-failure messages the report keeps (all are counted).
const KEEP_MESSAGES: usize = 20;
/// Items per partition key in a worker's key space.
const GROUP: u64 = 4;

/// Options of `ferrodyn bench soak`.
#[derive(clap::Args, Clone, Debug)]
pub struct SoakArgs {
    /// Endpoint of a running server (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,

    /// Seconds to run the workload.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,

    /// Process id of the server: its RSS and open file descriptors are sampled from /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Seconds between two samples.
    #[arg(long, default_value_t = 5.0)]
    pub sample_every: f64,

    /// Write every sample to this CSV file (elapsed_s,rss_kib,fds,ops,errors).
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,

    /// Samples taken before this many seconds are left out of the summary (caches filling)
    /// [default: a fifth of --duration, at most 300].
    #[arg(long)]
    pub warmup: Option<f64>,

    /// Item workers (one connection each).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,

    /// Keys owned by each worker.
    #[arg(long, default_value_t = 400)]
    pub keys: u64,

    /// Seconds between two table-churn steps (create + delete a table, or add / remove a GSI).
    #[arg(long, default_value_t = 10.0)]
    pub churn_every: f64,

    /// Prefix of the names of the tables the soak creates.
    #[arg(long, default_value = "soak")]
    pub prefix: String,

    /// Keep the main table at the end.
    #[arg(long)]
    pub keep: bool,

    /// Print the machine-readable report (schema ferrodyn-bench-soak/v1) to stdout.
    #[arg(long)]
    pub json: bool,

    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,

    /// How requests are signed.
    #[command(flatten)]
    pub signing: crate::SigningArgs,

    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,

    /// Random seed.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// One sample of the server process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub elapsed_s: f64,
    pub rss_kib: u64,
    pub fds: u64,
    pub ops: u64,
    pub errors: u64,
}

/// First, last, extremes and least-squares slope (per hour) of one sampled figure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    pub first: f64,
    pub last: f64,
    pub min: f64,
    pub max: f64,
    pub slope_per_hour: f64,
}

impl Trend {
    /// The trend of `(seconds, value)` points; `None` without points.
    pub fn of(points: &[(f64, f64)]) -> Option<Trend> {
        let (first, last) = (points.first()?.1, points.last()?.1);
        let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let n = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let slope = if sxx > 0.0 { sxy / sxx * 3600.0 } else { 0.0 };
        Some(Trend {
            first,
            last,
            min,
            max,
            slope_per_hour: slope,
        })
    }

    fn to_json(self) -> Value {
        json!({"first": self.first, "last": self.last, "min": self.min, "max": self.max,
               "slope_per_hour": self.slope_per_hour})
    }
}

/// What a soak did and found.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub duration_secs: f64,
    pub ops: BTreeMap<&'static str, u64>,
    /// Error answers (and transport failures) that fail the soak.
    pub errors: u64,
    pub error_messages: Vec<String>,
    /// Answers that contradict the workers' models.
    pub check_failures: u64,
    pub check_messages: Vec<String>,
    /// Expected errors, retried (by type).
    pub expected_errors: BTreeMap<String, u64>,
    pub stream_records: u64,
    pub ttl_deletions: u64,
    pub tables_created: u64,
    pub tables_deleted: u64,
    pub gsis_added: u64,
    pub gsis_removed: u64,
    pub samples: Vec<Sample>,
    pub warmup_secs: f64,
    pub rss_kib: Option<Trend>,
    pub fds: Option<Trend>,
}

impl SoakReport {
    /// True when no error answer and no check failure was seen.
    pub fn all_ok(&self) -> bool {
        self.errors == 0 && self.check_failures == 0
    }

    pub fn total_ops(&self) -> u64 {
        self.ops.values().sum()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "schema": SOAK_SCHEMA,
            "ok": self.all_ok(),
            "duration_secs": self.duration_secs,
            "total_ops": self.total_ops(),
            "ops": self.ops,
            "errors": self.errors,
            "error_messages": self.error_messages,
            "check_failures": self.check_failures,
            "check_messages": self.check_messages,
            "expected_errors": self.expected_errors,
            "stream_records": self.stream_records,
            "ttl_deletions": self.ttl_deletions,
            "tables_created": self.tables_created,
            "tables_deleted": self.tables_deleted,
            "gsis_added": self.gsis_added,
            "gsis_removed": self.gsis_removed,
            "samples": self.samples.len(),
            "warmup_secs": self.warmup_secs,
            "rss_kib": self.rss_kib.map(Trend::to_json),
            "fds": self.fds.map(Trend::to_json),
        })
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "soak: {:.0} s, {} operations ({:.0}/s), {} errors, {} check failures: {}",
            self.duration_secs,
            self.total_ops(),
            self.total_ops() as f64 / self.duration_secs.max(1e-9),
            self.errors,
            self.check_failures,
            if self.all_ok() { "OK" } else { "FAILED" }
        );
        for (op, n) in &self.ops {
            let _ = writeln!(s, "  {op:<22} {n:>10}");
        }
        let _ = writeln!(
            s,
            "streams: {} records read, {} TTL deletions; churn: {} tables created, {} deleted, \
             {} GSIs added, {} removed",
            self.stream_records,
            self.ttl_deletions,
            self.tables_created,
            self.tables_deleted,
            self.gsis_added,
            self.gsis_removed
        );
        if !self.expected_errors.is_empty() {
            let _ = writeln!(s, "expected errors (retried): {:?}", self.expected_errors);
        }
        let _ = writeln!(
            s,
            "{} samples; after {:.0} s of warm-up:",
            self.samples.len(),
            self.warmup_secs
        );
        if let Some(t) = self.rss_kib {
            let _ = writeln!(
                s,
                "  RSS MiB   first {:.1} last {:.1} min {:.1} max {:.1} slope {:+.1}/h",
                t.first / 1024.0,
                t.last / 1024.0,
                t.min / 1024.0,
                t.max / 1024.0,
                t.slope_per_hour / 1024.0
            );
        }
        if let Some(t) = self.fds {
            let _ = writeln!(
                s,
                "  open fds  first {:.0} last {:.0} min {:.0} max {:.0} slope {:+.1}/h",
                t.first, t.last, t.min, t.max, t.slope_per_hour
            );
        }
        for m in self.error_messages.iter().chain(&self.check_messages) {
            let _ = writeln!(s, "  ! {m}");
        }
        s
    }
}

/// Everything the tasks share.
struct Shared {
    endpoint: Arc<Endpoint>,
    signer: crate::sigv4::Signer,
    timeout: Duration,
    table: String,
    stop: AtomicBool,
    ops: Mutex<BTreeMap<&'static str, u64>>,
    total_ops: AtomicU64,
    errors: AtomicU64,
    error_messages: Mutex<Vec<String>>,
    check_failures: AtomicU64,
    check_messages: Mutex<Vec<String>>,
    expected: Mutex<BTreeMap<String, u64>>,
    stream_records: AtomicU64,
    ttl_deletions: AtomicU64,
    tables_created: AtomicU64,
    tables_deleted: AtomicU64,
    gsis_added: AtomicU64,
    gsis_removed: AtomicU64,
}

impl Shared {
    fn conn(&self) -> anyhow::Result<Conn> {
        Conn::new(self.endpoint.clone(), self.signer.clone(), self.timeout)
    }

    fn count(&self, op: &'static str) {
        *self
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(op)
            .or_insert(0) += 1;
        self.total_ops.fetch_add(1, Ordering::Relaxed);
    }

    fn error(&self, op: &str, e: &CallError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let msg = match e {
            CallError::Service(kind, body) => {
                format!("{op}: {kind}: {}", crate::service_message(body))
            }
            CallError::Transport(t) => format!("{op}: transport: {t}"),
        };
        let mut m = self
            .error_messages
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.len() < KEEP_MESSAGES {
            m.push(msg);
        }
    }

    fn check_failed(&self, msg: String) {
        self.check_failures.fetch_add(1, Ordering::Relaxed);
        let mut m = self
            .check_messages
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.len() < KEEP_MESSAGES {
            m.push(msg);
        }
    }

    fn expected_error(&self, kind: &str) {
        *self
            .expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind.to_string())
            .or_insert(0) += 1;
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Sends one request, counts it, and parses the answer.
async fn call(
    sh: &Shared,
    conn: &mut Conn,
    target: &'static str,
    op: &'static str,
    body: &Value,
) -> Result<Value, CallError> {
    let bytes = Bytes::from(body.to_string());
    let res = conn.call_target(target, bytes).await;
    sh.count(op);
    let resp = res?;
    Ok(serde_json::from_slice(&resp).unwrap_or(Value::Null))
}

fn ddb(op: &str) -> &'static str {
    match op {
        "PutItem" => "DynamoDB_20120810.PutItem",
        "GetItem" => "DynamoDB_20120810.GetItem",
        "UpdateItem" => "DynamoDB_20120810.UpdateItem",
        "DeleteItem" => "DynamoDB_20120810.DeleteItem",
        "BatchWriteItem" => "DynamoDB_20120810.BatchWriteItem",
        "BatchGetItem" => "DynamoDB_20120810.BatchGetItem",
        "Query" => "DynamoDB_20120810.Query",
        "Scan" => "DynamoDB_20120810.Scan",
        "TransactWriteItems" => "DynamoDB_20120810.TransactWriteItems",
        "TransactGetItems" => "DynamoDB_20120810.TransactGetItems",
        "ExecuteStatement" => "DynamoDB_20120810.ExecuteStatement",
        "CreateTable" => "DynamoDB_20120810.CreateTable",
        "DeleteTable" => "DynamoDB_20120810.DeleteTable",
        "DescribeTable" => "DynamoDB_20120810.DescribeTable",
        "UpdateTable" => "DynamoDB_20120810.UpdateTable",
        "UpdateTimeToLive" => "DynamoDB_20120810.UpdateTimeToLive",
        "DescribeStream" => "DynamoDBStreams_20120810.DescribeStream",
        "GetShardIterator" => "DynamoDBStreams_20120810.GetShardIterator",
        "GetRecords" => "DynamoDBStreams_20120810.GetRecords",
        _ => "DynamoDB_20120810.ListTables",
    }
}

/// Runs the soak and returns its report (the caller decides what a failure means).
pub async fn run(args: &SoakArgs) -> anyhow::Result<SoakReport> {
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    if !(args.sample_every > 0.0 && args.sample_every.is_finite()) {
        bail!("--sample-every must be a positive number of seconds");
    }
    if !(args.churn_every > 0.0 && args.churn_every.is_finite()) {
        bail!("--churn-every must be a positive number of seconds");
    }
    if args.connections == 0 || args.keys < GROUP {
        bail!("--connections must be at least 1 and --keys at least {GROUP}");
    }
    let chatty = !args.json && !args.quiet;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x50A4)
    });
    let run_id = format!("{:06x}", seed & 0xff_ffff);
    let sh = Arc::new(Shared {
        endpoint: Arc::new(Endpoint::resolve(&args.endpoint).await?),
        signer: args.signing.signer(),
        timeout: Duration::from_secs_f64(args.timeout),
        table: format!("{}-main-{run_id}", args.prefix),
        stop: AtomicBool::new(false),
        ops: Mutex::default(),
        total_ops: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        error_messages: Mutex::default(),
        check_failures: AtomicU64::new(0),
        check_messages: Mutex::default(),
        expected: Mutex::default(),
        stream_records: AtomicU64::new(0),
        ttl_deletions: AtomicU64::new(0),
        tables_created: AtomicU64::new(0),
        tables_deleted: AtomicU64::new(0),
        gsis_added: AtomicU64::new(0),
        gsis_removed: AtomicU64::new(0),
    });
    let mut control = sh.conn()?;
    control
        .connect()
        .await
        .with_context(|| format!("cannot reach {}", args.endpoint))?;
    if chatty {
        eprintln!("soak: creating table {} ...", sh.table);
    }
    create_main(&sh, &mut control).await?;

    let mut csv = match &args.csv {
        Some(p) => {
            let mut f =
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
            writeln!(f, "elapsed_s,rss_kib,fds,ops,errors")?;
            Some(f)
        }
        None => None,
    };

    let start = Instant::now();
    let mut tasks = Vec::new();
    for id in 0..args.connections {
        let sh = sh.clone();
        let keys = args.keys;
        let seed = seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        tasks.push(tokio::spawn(
            async move { worker(sh, id, keys, seed).await },
        ));
    }
    {
        let sh = sh.clone();
        tasks.push(tokio::spawn(async move { stream_consumer(sh).await }));
    }
    {
        let sh = sh.clone();
        let every = Duration::from_secs_f64(args.churn_every);
        let prefix = format!("{}-churn-{run_id}", args.prefix);
        tasks.push(tokio::spawn(async move { churn(sh, every, prefix).await }));
    }

    // The sampler runs here, on the caller's task, until the deadline.
    let end = start + Duration::from_secs_f64(args.duration);
    let every = Duration::from_secs_f64(args.sample_every);
    let mut samples = Vec::new();
    let mut next = start;
    loop {
        let now = Instant::now();
        if now >= next {
            let elapsed_s = now.duration_since(start).as_secs_f64();
            let (rss_kib, fds) = match args.server_pid {
                Some(pid) => (read_rss_kib(pid).unwrap_or(0), count_fds(pid).unwrap_or(0)),
                None => (0, 0),
            };
            let s = Sample {
                elapsed_s,
                rss_kib,
                fds,
                ops: sh.total_ops.load(Ordering::Relaxed),
                errors: sh.errors.load(Ordering::Relaxed)
                    + sh.check_failures.load(Ordering::Relaxed),
            };
            if let Some(f) = csv.as_mut() {
                writeln!(
                    f,
                    "{:.1},{},{},{},{}",
                    s.elapsed_s, s.rss_kib, s.fds, s.ops, s.errors
                )?;
                f.flush()?;
            }
            if chatty {
                eprintln!(
                    "[{:>6.0} s] ops {:>9} errors {:>3} rss {:>7.1} MiB fds {:>4}",
                    s.elapsed_s,
                    s.ops,
                    s.errors,
                    s.rss_kib as f64 / 1024.0,
                    s.fds
                );
            }
            samples.push(s);
            next += every;
        }
        if now >= end {
            break;
        }
        tokio::time::sleep(next.min(end).saturating_duration_since(Instant::now())).await;
    }
    sh.stop.store(true, Ordering::Relaxed);
    let duration_secs = start.elapsed().as_secs_f64();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                sh.error_messages
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("task failed: {e:#}"));
            }
            Err(e) => bail!("soak task panicked: {e}"),
        }
    }
    if !args.keep {
        delete_table(&sh, &mut control, &sh.table).await?;
    }

    let warmup_secs = args
        .warmup
        .unwrap_or((args.duration / 5.0).min(300.0))
        .max(0.0);
    let after: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.elapsed_s >= warmup_secs)
        .collect();
    let (rss_kib, fds) = if args.server_pid.is_some() {
        let rss: Vec<(f64, f64)> = after
            .iter()
            .map(|s| (s.elapsed_s, s.rss_kib as f64))
            .collect();
        let fds: Vec<(f64, f64)> = after.iter().map(|s| (s.elapsed_s, s.fds as f64)).collect();
        (Trend::of(&rss), Trend::of(&fds))
    } else {
        (None, None)
    };
    let take =
        |m: &Mutex<Vec<String>>| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()));
    let report = SoakReport {
        duration_secs,
        ops: std::mem::take(&mut *sh.ops.lock().unwrap_or_else(|e| e.into_inner())),
        errors: sh.errors.load(Ordering::Relaxed),
        error_messages: take(&sh.error_messages),
        check_failures: sh.check_failures.load(Ordering::Relaxed),
        check_messages: take(&sh.check_messages),
        expected_errors: std::mem::take(
            &mut *sh.expected.lock().unwrap_or_else(|e| e.into_inner()),
        ),
        stream_records: sh.stream_records.load(Ordering::Relaxed),
        ttl_deletions: sh.ttl_deletions.load(Ordering::Relaxed),
        tables_created: sh.tables_created.load(Ordering::Relaxed),
        tables_deleted: sh.tables_deleted.load(Ordering::Relaxed),
        gsis_added: sh.gsis_added.load(Ordering::Relaxed),
        gsis_removed: sh.gsis_removed.load(Ordering::Relaxed),
        samples,
        warmup_secs,
        rss_kib,
        fds,
    };
    Ok(report)
}

/// Entry point of `ferrodyn bench soak`: runs on a fresh runtime, prints the report, and fails
/// when the soak found an error.
pub fn main_with_args(args: SoakArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the client runtime")?;
    let report = rt.block_on(run(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    if !report.all_ok() {
        bail!(
            "the soak failed: {} errors, {} check failures",
            report.errors,
            report.check_failures
        );
    }
    Ok(())
}

/// `VmRSS` of a process in KiB.
pub fn read_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Open file descriptors of a process.
pub fn count_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn s(v: &str) -> Value {
    json!({ "S": v })
}

fn n(v: u64) -> Value {
    json!({ "N": v.to_string() })
}

/// Retries a control-plane call while the answer is one the churn expects.
async fn control(
    sh: &Shared,
    conn: &mut Conn,
    op: &'static str,
    body: &Value,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match call(sh, conn, ddb(op), op, body).await {
            Ok(v) => return Ok(v),
            Err(CallError::Service(kind, _))
                if kind == "ResourceInUseException"
                    || kind == "LimitExceededException"
                    || retryable(&kind) && kind != "InternalServerError" =>
            {
                sh.expected_error(&kind);
            }
            Err(e) => bail!("{op}: {}", describe(&e)),
        }
        if Instant::now() >= deadline {
            bail!("{op} kept failing for 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn describe(e: &CallError) -> String {
    match e {
        CallError::Service(kind, body) => format!("{kind}: {}", crate::service_message(body)),
        CallError::Transport(t) => format!("transport: {t}"),
    }
}

/// Waits until `done` holds for the table's description (`None`: the table is gone).
async fn wait_table(
    sh: &Shared,
    conn: &mut Conn,
    table: &str,
    done: impl Fn(Option<&Value>) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let desc = match call(
            sh,
            conn,
            ddb("DescribeTable"),
            "DescribeTable",
            &json!({ "TableName": table }),
        )
        .await
        {
            Ok(v) => Some(v),
            Err(CallError::Service(kind, _)) if kind == "ResourceNotFoundException" => None,
            Err(e) => bail!("DescribeTable {table}: {}", describe(&e)),
        };
        if done(desc.as_ref().map(|d| &d["Table"])) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("table {table} did not reach the awaited state within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn active(t: Option<&Value>) -> bool {
    t.is_some_and(|t| {
        t["TableStatus"] == "ACTIVE"
            && t["GlobalSecondaryIndexes"]
                .as_array()
                .is_none_or(|g| g.iter().all(|i| i["IndexStatus"] == "ACTIVE"))
    })
}

async fn create_main(sh: &Shared, conn: &mut Conn) -> anyhow::Result<()> {
    let key = |a: &str, t: &str| json!({"AttributeName": a, "KeyType": t});
    let def = |a: &str| json!({"AttributeName": a, "AttributeType": "S"});
    let body = json!({
        "TableName": sh.table,
        "AttributeDefinitions": [def("pk"), def("sk"), def("g"), def("l")],
        "KeySchema": [key("pk", "HASH"), key("sk", "RANGE")],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [{
            "IndexName": "gsi1",
            "KeySchema": [key("g", "HASH"), key("sk", "RANGE")],
            "Projection": {"ProjectionType": "ALL"}
        }],
        "LocalSecondaryIndexes": [{
            "IndexName": "lsi1",
            "KeySchema": [key("pk", "HASH"), key("l", "RANGE")],
            "Projection": {"ProjectionType": "KEYS_ONLY"}
        }],
        "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    });
    control(sh, conn, "CreateTable", &body).await?;
    wait_table(sh, conn, &sh.table, active).await?;
    control(
        sh,
        conn,
        "UpdateTimeToLive",
        &json!({"TableName": sh.table,
                "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "exp"}}),
    )
    .await?;
    Ok(())
}

async fn delete_table(sh: &Shared, conn: &mut Conn, table: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match call(
            sh,
            conn,
            ddb("DeleteTable"),
            "DeleteTable",
            &json!({ "TableName": table }),
        )
        .await
        {
            Ok(_) => break,
            Err(CallError::Service(kind, _)) if kind == "ResourceNotFoundException" => break,
            Err(CallError::Service(kind, _))
                if kind == "ResourceInUseException" || kind == "LimitExceededException" =>
            {
                sh.expected_error(&kind);
            }
            Err(e) => bail!("DeleteTable {table}: {}", describe(&e)),
        }
        if Instant::now() >= deadline {
            bail!("DeleteTable {table} kept failing for 300 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_table(sh, conn, table, |t| t.is_none()).await
}

/// A worker's knowledge of one key: `Some(None)` absent, `Some(Some(v))` at version `v`,
/// `None` unknown (a request on it failed).
type Known = Option<Option<u64>>;

struct Worker {
    sh: Arc<Shared>,
    conn: Conn,
    rng: Rng,
    id: usize,
    model: Vec<Known>,
    ttl_items: u64,
}

impl Worker {
    fn pk(&self, j: u64) -> String {
        format!("w{}-p{}", self.id, j / GROUP)
    }

    fn key(&self, j: u64) -> Value {
        json!({"pk": s(&self.pk(j)), "sk": s(&(j % GROUP).to_string())})
    }

    fn item(&mut self, j: u64, v: u64) -> Value {
        let len = 50 + self.rng.below(400) as usize;
        let data: String = (0..len)
            .map(|i| (b'a' + ((j as usize + i + v as usize) % 26) as u8) as char)
            .collect();
        json!({
            "pk": s(&self.pk(j)),
            "sk": s(&(j % GROUP).to_string()),
            "v": n(v),
            "g": s(&format!("w{}-g{}", self.id, j % 8)),
            "l": s(&format!("l{j}")),
            "g2": s(&format!("b{}", j % 4)),
            "data": s(&data),
        })
    }

    fn next_version(&self, j: u64) -> u64 {
        match self.model[j as usize] {
            Some(Some(v)) => v + 1,
            _ => 1,
        }
    }

    fn check_version(&self, what: &str, j: u64, got: Option<u64>) {
        if let Some(want) = self.model[j as usize] {
            if want != got {
                self.sh.check_failed(format!(
                    "{what}: key {} sk {}: expected version {want:?}, got {got:?}",
                    self.pk(j),
                    j % GROUP
                ));
            }
        }
    }

    /// Runs one request; on an error answer records it, and marks `keys` unknown.
    async fn send(&mut self, op: &'static str, body: &Value, keys: &[u64]) -> Option<Value> {
        match call(&self.sh, &mut self.conn, ddb(op), op, body).await {
            Ok(v) => Some(v),
            Err(e) => {
                self.sh.error(op, &e);
                for &j in keys {
                    self.model[j as usize] = None;
                }
                if let CallError::Transport(_) = e {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None
            }
        }
    }

    fn distinct(&mut self, count: u64, keys: u64) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        while (out.len() as u64) < count.min(keys) {
            let j = self.rng.below(keys);
            if !out.contains(&j) {
                out.push(j);
            }
        }
        out
    }

    async fn step(&mut self, keys: u64) {
        let table = self.sh.table.clone();
        let j = self.rng.below(keys);
        match self.rng.below(100) {
            0..=17 => {
                let v = self.next_version(j);
                let body = json!({"TableName": table, "Item": self.item(j, v),
                                  "ReturnValues": "ALL_OLD"});
                if let Some(r) = self.send("PutItem", &body, &[j]).await {
                    self.check_version("PutItem old image", j, version(&r["Attributes"]));
                    self.model[j as usize] = Some(Some(v));
                }
            }
            18..=37 => {
                let body = json!({"TableName": table, "Key": self.key(j), "ConsistentRead": true});
                if let Some(r) = self.send("GetItem", &body, &[j]).await {
                    let got = version(&r["Item"]);
                    self.check_version("GetItem", j, got);
                    self.model[j as usize] = Some(got);
                }
            }
            38..=51 => {
                let body = json!({
                    "TableName": table, "Key": self.key(j),
                    "UpdateExpression": "SET #d = :d, g = :g, l = :l, g2 = :g2 ADD v :one",
                    "ExpressionAttributeNames": {"#d": "data"},
                    "ExpressionAttributeValues": {
                        ":d": s(&format!("updated-{}", self.rng.next_u64())),
                        ":g": s(&format!("w{}-g{}", self.id, j % 8)),
                        ":l": s(&format!("l{j}")),
                        ":g2": s(&format!("b{}", j % 4)),
                        ":one": n(1)
                    },
                    "ReturnValues": "UPDATED_NEW"
                });
                let want = self.model[j as usize].map(|_| self.next_version(j));
                if let Some(r) = self.send("UpdateItem", &body, &[j]).await {
                    let got = version(&r["Attributes"]);
                    if want.is_some() && got != want {
                        self.sh.check_failed(format!(
                            "UpdateItem: key {} sk {}: expected new version {want:?}, got {got:?}",
                            self.pk(j),
                            j % GROUP
                        ));
                    }
                    self.model[j as usize] = Some(got);
                }
            }
            52..=56 => {
                let body =
                    json!({"TableName": table, "Key": self.key(j), "ReturnValues": "ALL_OLD"});
                if let Some(r) = self.send("DeleteItem", &body, &[j]).await {
                    self.check_version("DeleteItem old image", j, version(&r["Attributes"]));
                    self.model[j as usize] = Some(None);
                }
            }
            57..=61 => self.batch_write(keys).await,
            62..=68 => self.batch_get(keys).await,
            69..=75 => {
                // The whole partition, from the table or from the LSI: counts are exact.
                let index = self.rng.below(2) == 1;
                let first = j / GROUP * GROUP;
                let mut body = json!({
                    "TableName": table, "ConsistentRead": true,
                    "KeyConditionExpression": "pk = :p",
                    "ExpressionAttributeValues": {":p": s(&self.pk(j))}
                });
                if index {
                    body["IndexName"] = json!("lsi1");
                }
                let members: Vec<u64> = (first..(first + GROUP).min(keys)).collect();
                if let Some(r) = self.send("Query", &body, &[]).await {
                    let got = r["Count"].as_u64();
                    let known: Option<Vec<Option<u64>>> =
                        members.iter().map(|&m| self.model[m as usize]).collect();
                    if let Some(known) = known {
                        let want = known.iter().filter(|v| v.is_some()).count() as u64;
                        if got != Some(want) {
                            self.sh.check_failed(format!(
                                "Query{}: partition {}: expected {want} items, got {got:?}",
                                if index { " (LSI)" } else { "" },
                                self.pk(j)
                            ));
                        }
                    }
                }
            }
            76..=80 => {
                let body = json!({
                    "TableName": table, "IndexName": "gsi1",
                    "KeyConditionExpression": "g = :g",
                    "ExpressionAttributeValues": {":g": s(&format!("w{}-g{}", self.id, j % 8))}
                });
                self.send("Query", &body, &[]).await;
            }
            81..=82 => {
                let mut body = json!({"TableName": table, "Limit": 25});
                if self.rng.below(2) == 1 {
                    body["IndexName"] = json!("gsi1");
                }
                self.send("Scan", &body, &[]).await;
            }
            83..=89 => self.transact_write(keys).await,
            90..=95 => self.transact_get(keys).await,
            _ => {
                let body = json!({
                    "Statement": format!("SELECT * FROM \"{table}\" WHERE pk = ? AND sk = ?"),
                    "Parameters": [s(&self.pk(j)), s(&(j % GROUP).to_string())],
                    "ConsistentRead": true
                });
                if let Some(r) = self.send("ExecuteStatement", &body, &[j]).await {
                    let got = r["Items"]
                        .as_array()
                        .and_then(|a| a.first())
                        .and_then(|i| i["v"]["N"].as_str().and_then(|v| v.parse().ok()));
                    self.check_version("ExecuteStatement SELECT", j, got);
                    self.model[j as usize] = Some(got);
                }
            }
        }
    }

    async fn batch_write(&mut self, keys: u64) {
        let js = self.distinct(4, keys);
        let mut requests = Vec::new();
        let mut versions = Vec::new();
        for &j in &js {
            let v = self.next_version(j);
            versions.push(v);
            requests.push(json!({"PutRequest": {"Item": self.item(j, v)}}));
        }
        // An item that is already expired: the TTL sweeper deletes it (seen in the stream).
        self.ttl_items += 1;
        requests.push(json!({"PutRequest": {"Item": {
            "pk": s(&format!("w{}-ttl", self.id)),
            "sk": s(&self.ttl_items.to_string()),
            "exp": n(now_epoch().saturating_sub(3600)),
            "g": s("expiring"), "l": s("expiring"),
        }}}));
        let mut body = json!({"RequestItems": {self.sh.table.clone(): requests}});
        for _ in 0..20 {
            let Some(r) = self.send("BatchWriteItem", &body, &js).await else {
                return;
            };
            match r.get("UnprocessedItems") {
                Some(u) if u.as_object().is_some_and(|m| !m.is_empty()) => {
                    body = json!({ "RequestItems": u });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    for (&j, &v) in js.iter().zip(&versions) {
                        self.model[j as usize] = Some(Some(v));
                    }
                    return;
                }
            }
        }
        self.sh
            .check_failed("BatchWriteItem left items unprocessed 20 times".into());
        for &j in &js {
            self.model[j as usize] = None;
        }
    }

    async fn batch_get(&mut self, keys: u64) {
        let js = self.distinct(4, keys);
        let table = self.sh.table.clone();
        let wanted: Vec<Value> = js.iter().map(|&j| self.key(j)).collect();
        let mut body =
            json!({"RequestItems": {table.clone(): {"Keys": wanted, "ConsistentRead": true}}});
        let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
        for _ in 0..20 {
            let Some(r) = self.send("BatchGetItem", &body, &[]).await else {
                return;
            };
            for item in r["Responses"][&table].as_array().into_iter().flatten() {
                let pk = item["pk"]["S"].as_str().unwrap_or_default().to_string();
                let sk = item["sk"]["S"].as_str().unwrap_or_default().to_string();
                seen.insert((pk, sk), version(item).unwrap_or(0));
            }
            match r.get("UnprocessedKeys") {
                Some(u) if u.as_object().is_some_and(|m| !m.is_empty()) => {
                    body = json!({ "RequestItems": u });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => {
                    for &j in &js {
                        let got = seen.get(&(self.pk(j), (j % GROUP).to_string())).copied();
                        self.check_version("BatchGetItem", j, got);
                        self.model[j as usize] = Some(got);
                    }
                    return;
                }
            }
        }
        self.sh
            .check_failed("BatchGetItem left keys unprocessed 20 times".into());
    }

    async fn transact_write(&mut self, keys: u64) {
        let js = self.distinct(3, keys);
        if js.iter().any(|&j| self.model[j as usize].is_none()) {
            // Conditions need a known state: write the unknown keys blindly first.
            for &j in &js {
                if self.model[j as usize].is_none() {
                    let v = 1_000_000 + self.rng.below(1000);
                    let body = json!({"TableName": self.sh.table, "Item": self.item(j, v)});
                    if self.send("PutItem", &body, &[j]).await.is_some() {
                        self.model[j as usize] = Some(Some(v));
                    }
                }
            }
            return;
        }
        let table = self.sh.table.clone();
        let mut items = Vec::new();
        let mut after = Vec::new();
        for (i, &j) in js.iter().enumerate() {
            let cur = self.model[j as usize].flatten();
            let (cond, vals) = match cur {
                Some(v) => ("v = :old", json!({":old": n(v)})),
                None => ("attribute_not_exists(pk)", json!({})),
            };
            let v = self.next_version(j);
            if i == 0 {
                let mut put = json!({"TableName": table, "Item": self.item(j, v),
                                     "ConditionExpression": cond});
                if cur.is_some() {
                    put["ExpressionAttributeValues"] = vals;
                }
                items.push(json!({ "Put": put }));
                after.push(Some(v));
            } else if cur.is_some() {
                items.push(json!({"Update": {
                    "TableName": table, "Key": self.key(j),
                    "UpdateExpression": "ADD v :one",
                    "ConditionExpression": cond,
                    "ExpressionAttributeValues": {":old": n(cur.unwrap_or(0)), ":one": n(1)}
                }}));
                after.push(Some(v));
            } else {
                items.push(json!({"ConditionCheck": {
                    "TableName": table, "Key": self.key(j),
                    "ConditionExpression": cond
                }}));
                after.push(None);
            }
        }
        let body = json!({
            "TransactItems": items,
            "ClientRequestToken": format!("soak-{}-{}", self.id, self.rng.next_u64())
        });
        if self.send("TransactWriteItems", &body, &js).await.is_some() {
            for (&j, v) in js.iter().zip(after) {
                self.model[j as usize] = Some(v);
            }
        }
    }

    async fn transact_get(&mut self, keys: u64) {
        let js = self.distinct(3, keys);
        let table = self.sh.table.clone();
        let items: Vec<Value> = js
            .iter()
            .map(|&j| json!({"Get": {"TableName": table, "Key": self.key(j)}}))
            .collect();
        if let Some(r) = self
            .send("TransactGetItems", &json!({ "TransactItems": items }), &[])
            .await
        {
            let responses = r["Responses"].as_array().cloned().unwrap_or_default();
            if responses.len() != js.len() {
                self.sh.check_failed(format!(
                    "TransactGetItems: {} responses for {} gets",
                    responses.len(),
                    js.len()
                ));
                return;
            }
            for (&j, resp) in js.iter().zip(&responses) {
                let got = version(&resp["Item"]);
                self.check_version("TransactGetItems", j, got);
                self.model[j as usize] = Some(got);
            }
        }
    }
}

/// The `v` attribute of an item (`None` for no item).
fn version(item: &Value) -> Option<u64> {
    item.get("v")?.get("N")?.as_str()?.parse().ok()
}

async fn worker(sh: Arc<Shared>, id: usize, keys: u64, seed: u64) -> anyhow::Result<()> {
    let mut w = Worker {
        conn: sh.conn()?,
        sh,
        rng: Rng::new(seed),
        id,
        // Nothing was written yet: every key is known to be absent.
        model: vec![Some(None); keys as usize],
        ttl_items: 0,
    };
    while !w.sh.stopping() {
        w.step(keys).await;
    }
    Ok(())
}

/// Reads the main table's stream from every shard, checking that sequence numbers grow within
/// a shard, and counting records and TTL deletions.
async fn stream_consumer(sh: Arc<Shared>) -> anyhow::Result<()> {
    let mut conn = sh.conn()?;
    let desc = control(
        &sh,
        &mut conn,
        "DescribeTable",
        &json!({"TableName": sh.table}),
    )
    .await?;
    let Some(arn) = desc["Table"]["LatestStreamArn"]
        .as_str()
        .map(str::to_string)
    else {
        bail!("the main table has no LatestStreamArn");
    };
    // Shard id → (iterator or None when closed, last sequence number: its value, to check the
    // order, and its text as the server wrote it, to start again after it).
    type Seen = Option<(u128, String)>;
    let mut shards: BTreeMap<String, (Option<String>, Seen)> = BTreeMap::new();
    let mut last_describe: Option<Instant> = None;
    let mut draining = 0;
    loop {
        let stopping = sh.stopping();
        if last_describe.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) || stopping {
            let mut from: Option<String> = None;
            loop {
                let mut body = json!({ "StreamArn": arn });
                if let Some(f) = &from {
                    body["ExclusiveStartShardId"] = json!(f);
                }
                let d = match call(
                    &sh,
                    &mut conn,
                    ddb("DescribeStream"),
                    "DescribeStream",
                    &body,
                )
                .await
                {
                    Ok(d) => d,
                    Err(e) => {
                        sh.error("DescribeStream", &e);
                        break;
                    }
                };
                for shard in d["StreamDescription"]["Shards"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let Some(id) = shard["ShardId"].as_str() else {
                        continue;
                    };
                    if !shards.contains_key(id) {
                        match shard_iterator(&sh, &mut conn, &arn, id, None).await {
                            Ok(it) => {
                                shards.insert(id.to_string(), (it, None));
                            }
                            Err(e) => sh.error("GetShardIterator", &e),
                        }
                    }
                }
                from = d["StreamDescription"]["LastEvaluatedShardId"]
                    .as_str()
                    .map(str::to_string);
                if from.is_none() {
                    break;
                }
            }
            last_describe = Some(Instant::now());
        }
        let mut got = 0;
        let ids: Vec<String> = shards.keys().cloned().collect();
        for id in ids {
            let Some((Some(it), last)) = shards.get(&id).cloned() else {
                continue;
            };
            match call(
                &sh,
                &mut conn,
                ddb("GetRecords"),
                "GetRecords",
                &json!({"ShardIterator": it, "Limit": 1000}),
            )
            .await
            {
                Ok(r) => {
                    let mut last = last;
                    for rec in r["Records"].as_array().into_iter().flatten() {
                        got += 1;
                        sh.stream_records.fetch_add(1, Ordering::Relaxed);
                        if rec["userIdentity"]["principalId"] == "dynamodb.amazonaws.com" {
                            sh.ttl_deletions.fetch_add(1, Ordering::Relaxed);
                        }
                        let seq = rec["dynamodb"]["SequenceNumber"]
                            .as_str()
                            .and_then(|s| Some((s.parse::<u128>().ok()?, s.to_string())));
                        match (&last, seq) {
                            (_, None) => sh.check_failed(format!(
                                "GetRecords: shard {id}: a record without a sequence number"
                            )),
                            (Some((prev, _)), Some((cur, _))) if cur <= *prev => {
                                sh.check_failed(format!(
                                    "GetRecords: shard {id}: sequence number {cur} after {prev}"
                                ))
                            }
                            (_, seq) => last = seq,
                        }
                    }
                    let next = r["NextShardIterator"].as_str().map(str::to_string);
                    shards.insert(id, (next, last));
                }
                Err(CallError::Service(kind, _))
                    if kind == "ExpiredIteratorException"
                        || kind == "TrimmedDataAccessException" =>
                {
                    sh.expected_error(&kind);
                    // Start again after the last record seen (the sequence number exactly as
                    // the server wrote it), or from the oldest one: when the consumer fell
                    // further behind than the retention, the records after the last one seen
                    // are trimmed too, and so is that position.
                    let after = last
                        .as_ref()
                        .filter(|_| kind == "ExpiredIteratorException")
                        .map(|(_, seq)| seq.as_str());
                    let mut it = shard_iterator(&sh, &mut conn, &arn, &id, after).await;
                    if after.is_some()
                        && matches!(&it, Err(CallError::Service(k, _)) if k == "TrimmedDataAccessException")
                    {
                        // Trimmed since: from the oldest record.
                        sh.expected_error("TrimmedDataAccessException");
                        it = shard_iterator(&sh, &mut conn, &arn, &id, None).await;
                    }
                    match it {
                        Ok(it) => {
                            shards.insert(id, (it, last));
                        }
                        Err(e) => sh.error("GetShardIterator", &e),
                    }
                }
                Err(e) => {
                    sh.error("GetRecords", &e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if stopping {
            // Drain what the workers wrote last: stop after two empty rounds.
            draining = if got == 0 { draining + 1 } else { 0 };
            if draining >= 2 {
                return Ok(());
            }
        }
        if got == 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// A shard iterator: after the sequence number `after` (as the server wrote it), or from the
/// oldest record; `None` for a shard with nothing more to read.
async fn shard_iterator(
    sh: &Shared,
    conn: &mut Conn,
    arn: &str,
    shard: &str,
    after: Option<&str>,
) -> Result<Option<String>, CallError> {
    let body = match after {
        Some(seq) => json!({"StreamArn": arn, "ShardId": shard,
            "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": seq}),
        None => json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    };
    let v = call(sh, conn, ddb("GetShardIterator"), "GetShardIterator", &body).await?;
    Ok(v["ShardIterator"].as_str().map(str::to_string))
}

/// Table churn: alternately creates, uses and deletes a small table, and adds or removes a GSI
/// on the main table (which the workers keep writing to).
async fn churn(sh: Arc<Shared>, every: Duration, prefix: String) -> anyhow::Result<()> {
    let mut conn = sh.conn()?;
    let mut round: u64 = 0;
    let mut gsi2 = false;
    loop {
        let pause = Instant::now() + every;
        while Instant::now() < pause {
            if sh.stopping() {
                // The main table, GSI or not, is deleted by the caller.
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        round += 1;
        if round % 2 == 1 {
            let name = format!("{prefix}-{round}");
            let key = |a: &str, t: &str| json!({"AttributeName": a, "KeyType": t});
            let def = |a: &str| json!({"AttributeName": a, "AttributeType": "S"});
            control(
                &sh,
                &mut conn,
                "CreateTable",
                &json!({
                    "TableName": name,
                    "AttributeDefinitions": [def("pk"), def("x")],
                    "KeySchema": [key("pk", "HASH")],
                    "BillingMode": "PAY_PER_REQUEST",
                    "GlobalSecondaryIndexes": [{"IndexName": "byx",
                        "KeySchema": [key("x", "HASH")],
                        "Projection": {"ProjectionType": "KEYS_ONLY"}}],
                    "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"}
                }),
            )
            .await?;
            sh.tables_created.fetch_add(1, Ordering::Relaxed);
            wait_table(&sh, &mut conn, &name, active).await?;
            for i in 0..20 {
                let body = json!({"TableName": name,
                    "Item": {"pk": s(&format!("k{i}")), "x": s(&format!("x{}", i % 3))}});
                if let Err(e) = call(&sh, &mut conn, ddb("PutItem"), "PutItem", &body).await {
                    sh.error("PutItem (churn)", &e);
                }
            }
            let r = call(
                &sh,
                &mut conn,
                ddb("Scan"),
                "Scan",
                &json!({"TableName": name, "ConsistentRead": true}),
            )
            .await;
            match r {
                Ok(v) if v["Count"] == 20 => {}
                Ok(v) => sh.check_failed(format!(
                    "Scan of churn table {name}: expected 20 items, got {}",
                    v["Count"]
                )),
                Err(e) => sh.error("Scan (churn)", &e),
            }
            delete_table(&sh, &mut conn, &name).await?;
            sh.tables_deleted.fetch_add(1, Ordering::Relaxed);
        } else if !gsi2 {
            control(
                &sh,
                &mut conn,
                "UpdateTable",
                &json!({
                    "TableName": sh.table,
                    "AttributeDefinitions": [{"AttributeName": "g2", "AttributeType": "S"}],
                    "GlobalSecondaryIndexUpdates": [{"Create": {
                        "IndexName": "gsi2",
                        "KeySchema": [{"AttributeName": "g2", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"}
                    }}]
                }),
            )
            .await?;
            gsi2 = true;
            sh.gsis_added.fetch_add(1, Ordering::Relaxed);
            wait_table(&sh, &mut conn, &sh.table, active).await?;
            let body = json!({"TableName": sh.table, "IndexName": "gsi2",
                "KeyConditionExpression": "g2 = :g", "Limit": 50,
                "ExpressionAttributeValues": {":g": s("b1")}});
            if let Err(e) = call(&sh, &mut conn, ddb("Query"), "Query", &body).await {
                sh.error("Query (gsi2)", &e);
            }
        } else {
            remove_gsi2(&sh, &mut conn).await?;
            gsi2 = false;
        }
    }
}

async fn remove_gsi2(sh: &Shared, conn: &mut Conn) -> anyhow::Result<()> {
    control(
        sh,
        conn,
        "UpdateTable",
        &json!({"TableName": sh.table,
                "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "gsi2"}}]}),
    )
    .await?;
    sh.gsis_removed.fetch_add(1, Ordering::Relaxed);
    wait_table(sh, conn, &sh.table, |t| {
        t.is_some_and(|t| {
            t["GlobalSecondaryIndexes"]
                .as_array()
                .is_none_or(|g| g.iter().all(|i| i["IndexName"] != "gsi2"))
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_fit_a_line() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64 * 60.0, 100.0 + i as f64))
            .collect();
        let t = Trend::of(&pts).unwrap();
        assert_eq!(
            (t.first, t.last, t.min, t.max),
            (100.0, 109.0, 100.0, 109.0)
        );
        assert!(
            (t.slope_per_hour - 60.0).abs() < 1e-9,
            "{}",
            t.slope_per_hour
        );
        let flat = Trend::of(&[(0.0, 5.0), (10.0, 5.0)]).unwrap();
        assert_eq!(flat.slope_per_hour, 0.0);
        assert!(Trend::of(&[]).is_none());
        assert_eq!(Trend::of(&[(3.0, 7.0)]).unwrap().slope_per_hour, 0.0);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let pid = std::process::id();
        assert!(read_rss_kib(pid).unwrap() > 0);
        assert!(count_fds(pid).unwrap() >= 3);
        assert_eq!(read_rss_kib(u32::MAX), None);
    }

    #[test]
    fn versions_are_read_from_items() {
        assert_eq!(version(&json!({"v": {"N": "7"}})), Some(7));
        assert_eq!(version(&Value::Null), None);
        assert_eq!(version(&json!({"v": {"S": "7"}})), None);
    }
}
