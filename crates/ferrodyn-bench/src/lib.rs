//! `ferrodyn bench`: a load generator for any DynamoDB-compatible endpoint.
//!
//! Owns: command-line options ([`BenchArgs`]), the run phases (optional table
//! creation, optional pre-load, warmup, measurement) and the worker loop.
//!
//! Invariants:
//! - One worker task per connection; each worker sends one request at a time on
//!   its own keep-alive connection, so `--connections` is also the concurrency.
//! - Only operations *started* after the warmup deadline are recorded; with
//!   `--requests N` exactly N recorded operations are started in total.
//! - The hot loop reuses one body buffer per worker and allocates only what the
//!   HTTP stack needs per request (header map, `Authorization` value).
//! - Must be called outside a Tokio runtime ([`main_with_args`] builds its own);
//!   async callers use [`run`] / [`run_until`].

#![forbid(unsafe_code)]

pub mod backup;
pub mod client;
pub mod keygen;
pub mod report;
pub mod sigv4;
pub mod soak;
pub mod workload;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::{CallError, Conn, Endpoint};
use crate::keygen::{zeta_from, Distribution, KeyChooser, Rng, ZIPFIAN_CONSTANT};
use crate::report::{Report, RunInfo, Stats};
use crate::sigv4::{Credentials, Signer};
use crate::workload::{Bodies, OpKind, Target, Workload, BATCH_SIZE};

pub use crate::report::SCHEMA;

/// Largest `--item-size` accepted (DynamoDB's item limit is 400 KB including keys).
const MAX_ITEM_SIZE: usize = 399_000;

/// Options of `ferrodyn bench`.
/// The credentials and region requests are signed with (SigV4), shared by every scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct SigningArgs {
    /// Region used for signing.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,

    /// Access key id used for signing.
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        default_value = "AKIDFERRODYNBENCH",
        hide_env_values = true
    )]
    pub access_key_id: String,

    /// Secret access key used for signing.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "ferrodyn-bench-secret",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub secret_access_key: String,

    /// Optional session token (sent as x-amz-security-token).
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub session_token: Option<String>,
}

impl SigningArgs {
    /// A SigV4 signer for DynamoDB with these credentials.
    pub fn signer(&self) -> Signer {
        Signer::new(
            Credentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
                session_token: self.session_token.clone(),
            },
            &self.region,
            "dynamodb",
        )
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// DynamoDB endpoint (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,

    /// Workload: YCSB a-f or a single operation.
    #[arg(long, value_enum, default_value = "a")]
    pub workload: Workload,

    /// Key distribution [default: latest for workload d, zipfian otherwise].
    #[arg(long, value_enum)]
    pub distribution: Option<Distribution>,

    /// Table name.
    #[arg(long, default_value = "ferrodyn-bench")]
    pub table: String,

    /// Create the table (PAY_PER_REQUEST, pk S + sk S) and wait until ACTIVE.
    #[arg(long)]
    pub create_table: bool,

    /// Pre-load N partition keys (all of --keys when N is omitted) with
    /// BatchWriteItem before measuring.
    #[arg(long, value_name = "N", num_args = 0..=1)]
    pub load: Option<Option<u64>>,

    /// Number of partition keys requests are spread over (user0..user{keys-1}).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,

    /// Rows (sort keys "0".."rows-1") written per partition key by --load
    /// [default: 20 for query and e, 1 otherwise].
    #[arg(long)]
    pub rows_per_key: Option<u64>,

    /// Size in bytes of the "data" attribute.
    #[arg(long, default_value_t = 1024)]
    pub item_size: usize,

    /// Concurrent connections (one worker each).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,

    /// Measured seconds (ignored with --requests).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Stop after N measured operations instead of after --duration.
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,

    /// Seconds of unrecorded load before measuring.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,

    /// Workload e: the maximum Limit of a short Query range.
    #[arg(long, default_value_t = 10)]
    pub max_scan: u64,

    /// Print the machine-readable report (schema ferrodyn-bench/v1) to stdout.
    #[arg(long)]
    pub json: bool,

    /// No progress bar or status messages.
    #[arg(long)]
    pub quiet: bool,

    /// How requests are signed.
    #[command(flatten)]
    pub signing: SigningArgs,

    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,

    /// Client runtime threads [default: number of CPUs].
    #[arg(long)]
    pub threads: Option<usize>,

    /// Random seed (for reproducible key sequences).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `ferrodyn bench`: a workload run (the options of [`BenchArgs`]) or a named scenario.
#[derive(clap::Args, Clone, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchCommand {
    #[command(subcommand)]
    pub scenario: Option<Scenario>,
    #[command(flatten)]
    pub args: BenchArgs,
}

/// Scenarios of `ferrodyn bench` that measure more than one operation's throughput.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum Scenario {
    /// Load N items, CreateBackup, enable point-in-time recovery, change a fraction of the
    /// items, RestoreTableFromBackup and RestoreTableToPointInTime; times, disk growth and
    /// checks of the restored tables.
    Backup(backup::BackupArgs),
    /// A long mixed workload (item operations, batches, transactions, indexes, streams, TTL,
    /// table and index churn) that checks its answers and samples the server's RSS and open
    /// file descriptors; fails on any unexpected error.
    Soak(soak::SoakArgs),
}

/// Entry point of `ferrodyn bench [SCENARIO]`.
pub fn main_with_command(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd.scenario {
        Some(Scenario::Backup(args)) => backup::main_with_args(args),
        Some(Scenario::Soak(args)) => soak::main_with_args(args),
        None => main_with_args(cmd.args),
    }
}

/// Entry point of `ferrodyn bench`: runs the benchmark on a fresh runtime and
/// prints the report (JSON with `--json`, a table otherwise) to stdout.
pub fn main_with_args(args: BenchArgs) -> anyhow::Result<()> {
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .context("building the client runtime")?;
    let report = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let on_ctrl_c = {
            let stop = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    stop.store(true, Ordering::Relaxed);
                }
            })
        };
        let report = run_until(&args, stop).await;
        on_ctrl_c.abort();
        report
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// Everything workers share.
struct Shared {
    endpoint: Arc<Endpoint>,
    signer: Signer,
    timeout: Duration,
    bodies: Bodies,
    workload: Workload,
    distribution: Distribution,
    keys: u64,
    rows: u64,
    max_scan: u64,
    seed: u64,
    /// Keys that exist (or are being inserted): the next insert takes this value.
    inserted: Arc<AtomicU64>,
    /// zeta(keys, 0.99) for the latest distribution (0 otherwise).
    zeta_keys: f64,
    warmup_end: Instant,
    end: Option<Instant>,
    budget: Option<u64>,
    /// Recorded operations started (for `--requests`).
    started: AtomicU64,
    /// Operations completed, warmup included (progress display only).
    completed: AtomicU64,
    /// Set by the caller to end the measurement early.
    stop: Arc<AtomicBool>,
    /// Set once every worker has finished (ends the progress display).
    finished: AtomicBool,
}

fn validate(args: &BenchArgs) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.item_size > MAX_ITEM_SIZE {
        bail!("--item-size must be at most {MAX_ITEM_SIZE} bytes");
    }
    let min_keys = args.workload.min_keys();
    if args.keys < min_keys {
        bail!(
            "workload {} needs --keys >= {min_keys}",
            args.workload.name()
        );
    }
    if args.requests.is_none() && !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    if args.requests == Some(0) {
        bail!("--requests must be at least 1");
    }
    if !(args.warmup >= 0.0 && args.warmup.is_finite()) {
        bail!("--warmup must be a non-negative number of seconds");
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    if args.max_scan == 0 {
        bail!("--max-scan must be at least 1");
    }
    if args.rows_per_key == Some(0) {
        bail!("--rows-per-key must be at least 1");
    }
    if args.table.is_empty() {
        bail!("--table must not be empty");
    }
    Ok(())
}

/// Runs the whole benchmark (create, load, warmup, measure) and returns the report.
pub async fn run(args: &BenchArgs) -> anyhow::Result<Report> {
    run_until(args, Arc::new(AtomicBool::new(false))).await
}

/// Like [`run`], but the measurement also ends early (with a report of what was
/// measured so far) once `stop` becomes true.
pub async fn run_until(args: &BenchArgs, stop: Arc<AtomicBool>) -> anyhow::Result<Report> {
    validate(args)?;
    let chatty = !args.json && !args.quiet;
    let endpoint = Arc::new(Endpoint::resolve(&args.endpoint).await?);
    let signer = args.signing.signer();
    let timeout = Duration::from_secs_f64(args.timeout);
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5EED)
    });
    let bodies = Bodies::new(&args.table, args.item_size, seed);
    let rows = args
        .rows_per_key
        .unwrap_or_else(|| args.workload.default_rows_per_key());

    let mut control = Conn::new(endpoint.clone(), signer.clone(), timeout)?;
    control
        .connect()
        .await
        .with_context(|| format!("cannot reach {}", args.endpoint))?;

    if args.create_table {
        if chatty {
            eprintln!("creating table {} ...", args.table);
        }
        create_table(&mut control, &bodies).await?;
    }

    let mut loaded_items = 0;
    if let Some(n) = args.load {
        let n = n.unwrap_or(args.keys);
        let total = n.saturating_mul(rows);
        if chatty {
            eprintln!("loading {total} items ({n} keys x {rows} rows) ...");
        }
        load(
            &endpoint,
            &signer,
            timeout,
            &bodies,
            args.connections,
            total,
            rows,
            seed,
            chatty,
        )
        .await?;
        loaded_items = total;
    }

    let distribution = args
        .distribution
        .unwrap_or_else(|| args.workload.default_distribution());
    let zeta_keys = if distribution == Distribution::Latest {
        zeta_from(0, args.keys.max(1), ZIPFIAN_CONSTANT, 0.0)
    } else {
        0.0
    };
    let start = Instant::now();
    let warmup_end = start + Duration::from_secs_f64(args.warmup);
    let end = match args.requests {
        Some(_) => None,
        None => Some(warmup_end + Duration::from_secs_f64(args.duration)),
    };
    let shared = Arc::new(Shared {
        endpoint,
        signer,
        timeout,
        bodies,
        workload: args.workload,
        distribution,
        keys: args.keys,
        rows,
        max_scan: args.max_scan,
        seed,
        inserted: Arc::new(AtomicU64::new(args.keys)),
        zeta_keys,
        warmup_end,
        end,
        budget: args.requests,
        started: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        stop,
        finished: AtomicBool::new(false),
    });

    let progress = chatty.then(|| spawn_progress(shared.clone(), start, args));

    let mut handles = Vec::with_capacity(args.connections);
    for id in 0..args.connections {
        let sh = shared.clone();
        handles.push(tokio::spawn(async move { worker(sh, id as u64).await }));
    }
    let mut stats = Stats::default();
    let mut last_finish = warmup_end;
    let mut failure = None;
    for h in handles {
        match h.await {
            Ok(Ok((s, finished))) => {
                stats.merge(&s);
                last_finish = last_finish.max(finished);
            }
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(anyhow::anyhow!("worker task failed: {e}")),
        }
    }
    shared.finished.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }
    if let Some(e) = failure {
        return Err(e);
    }

    let info = RunInfo {
        endpoint: args.endpoint.clone(),
        table: args.table.clone(),
        workload: args.workload.name(),
        distribution: distribution.name(),
        connections: args.connections,
        keys: args.keys,
        item_size: args.item_size,
        duration_secs: args.requests.is_none().then_some(args.duration),
        requests: args.requests,
        warmup_secs: args.warmup,
        region: args.signing.region.clone(),
        loaded_items,
    };
    let elapsed = last_finish.saturating_duration_since(warmup_end);
    Ok(Report::build(info, &stats, elapsed))
}

fn spawn_progress(
    sh: Arc<Shared>,
    start: Instant,
    args: &BenchArgs,
) -> tokio::task::JoinHandle<()> {
    let by_requests = args.requests;
    let total_ms = ((args.warmup + args.duration) * 1000.0) as u64;
    tokio::spawn(async move {
        let (len, template) = match by_requests {
            Some(n) => (
                n,
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} ops {msg}",
            ),
            None => (total_ms, "{spinner} [{elapsed_precise}] {wide_bar} {msg}"),
        };
        let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style);
        }
        let mut last = (Instant::now(), 0u64);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        while !sh.finished.load(Ordering::Relaxed) {
            tick.tick().await;
            let now = Instant::now();
            let done = sh.completed.load(Ordering::Relaxed);
            let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
            last = (now, done);
            let phase = if now < sh.warmup_end {
                "warmup"
            } else {
                "measuring"
            };
            pb.set_message(format!("{phase} {rate:.0} ops/s"));
            match by_requests {
                Some(_) => pb.set_position(sh.started.load(Ordering::Relaxed).min(len)),
                None => pb.set_position((now.duration_since(start).as_millis() as u64).min(len)),
            }
        }
        pb.finish_and_clear();
    })
}

/// Per-worker state.
struct Worker {
    sh: Arc<Shared>,
    conn: Conn,
    rng: Rng,
    chooser: KeyChooser,
    buf: BytesMut,
    buf_capacity: usize,
    stats: Stats,
}

impl Worker {
    /// Writes the body of `op` into the buffer and returns it with its target.
    fn build(&mut self, op: OpKind, key: u64) -> (Target, Bytes) {
        self.buf.clear();
        // Reclaims the previous request's allocation once hyper has dropped it.
        self.buf.reserve(self.buf_capacity);
        let sh = &*self.sh;
        let b = &sh.bodies;
        let buf = &mut self.buf;
        let target = match op {
            OpKind::Get | OpKind::Rmw => {
                b.get_item(buf, key);
                Target::GetItem
            }
            OpKind::Put | OpKind::Insert => {
                b.put_item_body(buf, key, &mut self.rng);
                Target::PutItem
            }
            OpKind::Update => {
                b.update_item(buf, key, &mut self.rng);
                Target::UpdateItem
            }
            OpKind::Query => {
                b.query(buf, key);
                Target::Query
            }
            OpKind::Scan => {
                let start = self.rng.below(sh.rows);
                let limit = 1 + self.rng.below(sh.max_scan);
                b.scan(buf, key, start, limit);
                Target::Query
            }
            OpKind::BatchWrite => {
                b.batch_write(buf, key, sh.keys, &mut self.rng);
                Target::BatchWriteItem
            }
            OpKind::TransactWrite => {
                b.transact_write(buf, key, sh.keys, &mut self.rng);
                Target::TransactWriteItems
            }
            OpKind::PartiqlGet => {
                b.partiql_get(buf, key);
                Target::ExecuteStatement
            }
        };
        self.buf_capacity = self.buf_capacity.max(self.buf.len());
        (target, self.buf.split().freeze())
    }

    /// Sends one request of kind `op` for `key`; records it when `record`.
    async fn single(&mut self, op: OpKind, key: u64, record: bool) -> Result<(), CallError> {
        let (target, body) = self.build(op, key);
        let t0 = Instant::now();
        let res = self.conn.call(target, body).await;
        if record {
            match &res {
                Ok(_) => self.stats.success(op, t0.elapsed()),
                Err(e) => self.stats.error(op, e.kind()),
            }
        }
        if let Err(CallError::Transport(_)) = &res {
            // Avoid a hot spin while the endpoint is down.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        res.map(|_| ())
    }
}

async fn worker(sh: Arc<Shared>, id: u64) -> anyhow::Result<(Stats, Instant)> {
    let conn = Conn::new(sh.endpoint.clone(), sh.signer.clone(), sh.timeout)?;
    let chooser = KeyChooser::new(sh.distribution, sh.keys, sh.inserted.clone(), sh.zeta_keys);
    let mut w = Worker {
        rng: Rng::new(sh.seed ^ id.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        sh,
        conn,
        chooser,
        buf: BytesMut::new(),
        buf_capacity: 4096,
        stats: Stats::default(),
    };
    loop {
        let now = Instant::now();
        let sh = w.sh.clone();
        if sh.stop.load(Ordering::Relaxed) || sh.end.is_some_and(|end| now >= end) {
            break;
        }
        let record = now >= sh.warmup_end;
        if record {
            if let Some(budget) = sh.budget {
                if sh.started.fetch_add(1, Ordering::Relaxed) >= budget {
                    break;
                }
            }
        }
        let op = sh.workload.pick(&mut w.rng);
        let key = match op {
            OpKind::Insert => sh.inserted.fetch_add(1, Ordering::Relaxed),
            _ => w.chooser.next(&mut w.rng),
        };
        if op == OpKind::Rmw {
            let t0 = Instant::now();
            let res = match w.single(OpKind::Get, key, record).await {
                Ok(()) => w.single(OpKind::Update, key, record).await,
                Err(e) => Err(e),
            };
            if record {
                match res {
                    Ok(()) => w.stats.success(OpKind::Rmw, t0.elapsed()),
                    Err(e) => w.stats.error(OpKind::Rmw, e.kind()),
                }
            }
        } else {
            // The outcome is already recorded; errors do not stop the run.
            let _ = w.single(op, key, record).await;
        }
        sh.completed.fetch_add(1, Ordering::Relaxed);
    }
    Ok((w.stats, Instant::now()))
}

/// Error types worth retrying during setup.
pub(crate) fn retryable(kind: &str) -> bool {
    matches!(
        kind,
        "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "LimitExceededException"
    ) || kind.starts_with("HTTP5")
}

pub(crate) fn service_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Creates the table (an existing table is accepted) and waits until ACTIVE.
async fn create_table(conn: &mut Conn, bodies: &Bodies) -> anyhow::Result<()> {
    let mut buf = BytesMut::new();
    bodies.create_table(&mut buf);
    match conn.call(Target::CreateTable, buf.split().freeze()).await {
        Ok(_) => {}
        Err(CallError::Service(kind, _)) if kind == "ResourceInUseException" => {}
        Err(CallError::Service(kind, body)) => {
            bail!("CreateTable failed: {kind}: {}", service_message(&body))
        }
        Err(CallError::Transport(kind)) => bail!("CreateTable failed: {kind}"),
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        bodies.describe_table(&mut buf);
        match conn.call(Target::DescribeTable, buf.split().freeze()).await {
            Ok(body) => {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if v["Table"]["TableStatus"] == "ACTIVE" {
                    return Ok(());
                }
            }
            Err(CallError::Service(kind, body))
                if !retryable(&kind) && kind != "ResourceNotFoundException" =>
            {
                bail!("DescribeTable failed: {kind}: {}", service_message(&body))
            }
            Err(_) => {}
        }
        if Instant::now() >= deadline {
            bail!("table did not become ACTIVE within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Writes items `0..total` (key `i / rows`, sort key `i % rows`) with
/// BatchWriteItem over `connections` connections, retrying unprocessed items.
#[allow(clippy::too_many_arguments)]
async fn load(
    endpoint: &Arc<Endpoint>,
    signer: &Signer,
    timeout: Duration,
    bodies: &Bodies,
    connections: usize,
    total: u64,
    rows: u64,
    seed: u64,
    chatty: bool,
) -> anyhow::Result<()> {
    let batches = total.div_ceil(BATCH_SIZE);
    let next = Arc::new(AtomicU64::new(0));
    let pb = if chatty {
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} load [{elapsed_precise}] {wide_bar} {pos}/{len} items",
        ) {
            pb.set_style(style);
        }
        pb
    } else {
        ProgressBar::hidden()
    };
    let mut handles = Vec::new();
    for id in 0..connections.min(batches as usize).max(1) {
        let mut conn = Conn::new(endpoint.clone(), signer.clone(), timeout)?;
        let bodies = bodies.clone();
        let next = next.clone();
        let pb = pb.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed ^ ((id as u64 + 1) << 32));
            let mut buf = BytesMut::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<(), anyhow::Error>(());
                }
                let first = b * BATCH_SIZE;
                let count = BATCH_SIZE.min(total - first);
                bodies.batch_write_range(&mut buf, first, count, rows, &mut rng);
                write_batch(&mut conn, buf.split().freeze()).await?;
                pb.inc(count);
            }
        }));
    }
    let mut result = Ok(());
    for h in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(anyhow::anyhow!("load task failed: {e}")),
        }
    }
    pb.finish_and_clear();
    result
}

/// Sends one BatchWriteItem, resending unprocessed items and retryable errors
/// with exponential backoff.
pub(crate) async fn write_batch(conn: &mut Conn, body: Bytes) -> anyhow::Result<()> {
    let mut body = body;
    let mut backoff = Duration::from_millis(20);
    for _ in 0..30 {
        match conn.call(Target::BatchWriteItem, body.clone()).await {
            Ok(resp) => {
                let v: serde_json::Value = serde_json::from_slice(&resp).unwrap_or_default();
                match v.get("UnprocessedItems") {
                    Some(u) if u.as_object().is_some_and(|m| !m.is_empty()) => {
                        body = Bytes::from(serde_json::to_vec(
                            &serde_json::json!({ "RequestItems": u }),
                        )?);
                    }
                    _ => return Ok(()),
                }
            }
            Err(CallError::Service(kind, resp)) if !retryable(&kind) => {
                bail!(
                    "BatchWriteItem failed while loading: {kind}: {}",
                    service_message(&resp)
                )
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
    bail!("BatchWriteItem kept failing or leaving unprocessed items while loading")
}
