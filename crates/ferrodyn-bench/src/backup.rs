//! `ferrodyn bench backup`: the cost of on-demand backups and point-in-time recovery at scale.
//!
//! Owns: the scenario's options ([`BackupArgs`]), its phases (load, CreateBackup, enabling
//! recovery, changes, RestoreTableFromBackup, RestoreTableToPointInTime, checks) and its report
//! ([`BackupReport`], text and JSON schema `ferrodyn-bench-backup/v1`).
//!
//! Invariants:
//! - item `i` is `pk = "user{i}"`, `sk = "0"`, `data` = [`value_of`]`(i, version)`: a value is a
//!   pure function of the item and its version (0 when loaded, 1 once overwritten), so every
//!   check knows the expected state without remembering what was written;
//! - the changed items are `i = j * stride` for `j = 0, 1, ...` ([`Changes`]): even `j`
//!   overwritten, odd `j` deleted; both restores must give back all `N` items at version 0;
//! - without `--keep` nothing is left behind: restored tables, the backup and the source
//!   (recovery turned off first, so no system backup) are deleted;
//! - the data directory is only read (sizes), never written; a server started by the scenario
//!   is killed when the scenario ends, whatever its outcome.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use crate::client::{CallError, Conn, Endpoint};
use crate::keygen::Rng;
use crate::sigv4::Signer;
use crate::workload::{Target, BATCH_SIZE};
use crate::{retryable, service_message, write_batch};

/// The JSON report schema identifier.
pub const BACKUP_SCHEMA: &str = "ferrodyn-bench-backup/v1";

/// How long a backup or a restore may take before the scenario gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(6 * 3600);
/// Polling interval of DescribeBackup / DescribeTable.
const POLL: Duration = Duration::from_millis(200);
/// After the final deletions, the size counts once it has not fallen for this long...
const SETTLE: Duration = Duration::from_secs(3);
/// ... or after this long at most.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// Options of `ferrodyn bench backup`.
#[derive(clap::Args, Clone, Debug)]
pub struct BackupArgs {
    /// Endpoint of a running server (plain http). Without it, the scenario starts
    /// `ferrodyn serve --port PORT --data-dir DIR` itself and stops it at the end.
    #[arg(long)]
    pub endpoint: Option<String>,

    /// The server's data directory (measured, never written). With --endpoint it is optional
    /// (sizes are then not reported); without, the started server uses it
    /// [default: a new directory under the system's temporary directory].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,

    /// Port of the started server (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,

    /// More arguments for the started server's `serve` (repeatable), e.g. --server-arg=--memtable-mb=64.
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub server_args: Vec<String>,

    /// Items loaded into the source table.
    #[arg(long, default_value_t = 1_000_000)]
    pub items: u64,

    /// Length of each item's `data` attribute in bytes.
    #[arg(long, default_value_t = 100)]
    pub item_bytes: usize,

    /// Fraction of the items changed after the backup (half overwritten, half deleted).
    #[arg(long, default_value_t = 0.1)]
    pub change_fraction: f64,

    /// Items read back with GetItem from each table checked.
    #[arg(long, default_value_t = 1000)]
    pub samples: u64,

    /// Concurrent connections for loading, changing and counting.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,

    /// Source table name (restores are named `<table>-from-backup` and `<table>-pitr`).
    #[arg(long, default_value = "ferrodyn-bench-backup")]
    pub table: String,

    /// Keep the tables and the backup at the end (by default they are deleted, each restored
    /// table right after its checks, to bound the disk used).
    #[arg(long)]
    pub keep: bool,

    /// Print the JSON report (schema ferrodyn-bench-backup/v1) to stdout instead of the table.
    #[arg(long)]
    pub json: bool,

    /// No progress bars or status messages.
    #[arg(long)]
    pub quiet: bool,

    /// How requests are signed.
    #[command(flatten)]
    pub signing: crate::SigningArgs,

    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
}

fn validate(a: &BackupArgs) -> anyhow::Result<()> {
    if a.items == 0 {
        bail!("--items must be at least 1");
    }
    if a.item_bytes == 0 || a.item_bytes > 390_000 {
        bail!("--item-bytes must be between 1 and 390000");
    }
    if !(a.change_fraction > 0.0 && a.change_fraction <= 1.0) {
        bail!("--change-fraction must be in (0, 1]");
    }
    if a.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    // DynamoDB's table names are 3 to 255 characters; the restores add "-from-backup".
    if a.table.len() < 3 || a.table.len() > 243 {
        bail!("--table must be 3 to 243 characters");
    }
    Ok(())
}

/// The `data` value of item `i` at `version`: `len` alphanumeric bytes from a SplitMix64
/// stream seeded by both.
pub fn value_of(i: u64, version: u64, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = Rng::new(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (version.wrapping_add(1) << 56));
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let mut w = rng.next_u64();
        for _ in 0..8 {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(w % 62) as usize]);
            w >>= 8;
        }
    }
    out
}

/// Which items the change phase touches: `i = j * stride`, even `j` overwritten, odd `j`
/// deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Changes {
    pub items: u64,
    pub stride: u64,
}

/// What the change phase does to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Unchanged,
    Overwritten,
    Deleted,
}

impl Changes {
    pub fn new(items: u64, fraction: f64) -> Changes {
        let stride = (1.0 / fraction).round().max(1.0) as u64;
        Changes { items, stride }
    }

    /// Number of changed items.
    pub fn count(&self) -> u64 {
        self.items.div_ceil(self.stride)
    }

    /// Number of deleted items (odd `j`).
    pub fn deleted(&self) -> u64 {
        self.count() / 2
    }

    pub fn overwritten(&self) -> u64 {
        self.count() - self.deleted()
    }

    /// The item of change `j`.
    pub fn item(&self, j: u64) -> u64 {
        j * self.stride
    }

    pub fn fate(&self, i: u64) -> Fate {
        if i >= self.items || !i.is_multiple_of(self.stride) {
            Fate::Unchanged
        } else if (i / self.stride).is_multiple_of(2) {
            Fate::Overwritten
        } else {
            Fate::Deleted
        }
    }
}

/// Request bodies of the scenario.
struct Bodies {
    table_json: String,
    item_bytes: usize,
}

impl Bodies {
    fn table_field(&self, buf: &mut BytesMut, name_json: &str) {
        buf.put_slice(b"{\"TableName\":");
        buf.put_slice(name_json.as_bytes());
    }

    fn put_key(buf: &mut BytesMut, i: u64) {
        buf.put_slice(b"\"pk\":{\"S\":\"user");
        buf.put_slice(i.to_string().as_bytes());
        buf.put_slice(b"\"},\"sk\":{\"S\":\"0\"}");
    }

    fn put_item(&self, buf: &mut BytesMut, i: u64, version: u64) {
        buf.put_slice(b"{");
        Self::put_key(buf, i);
        buf.put_slice(b",\"data\":{\"S\":\"");
        buf.put_slice(&value_of(i, version, self.item_bytes));
        buf.put_slice(b"\"}}");
    }

    /// BatchWriteItem of items `first..first+count` at version 0.
    fn load_batch(&self, buf: &mut BytesMut, first: u64, count: u64) {
        self.batch(
            buf,
            (first..first + count).map(|i| (i, Fate::Overwritten, 0)),
        );
    }

    /// BatchWriteItem of changes `first..first+count`.
    fn change_batch(&self, buf: &mut BytesMut, changes: &Changes, first: u64, count: u64) {
        self.batch(
            buf,
            (first..first + count).map(|j| {
                let i = changes.item(j);
                (i, changes.fate(i), 1)
            }),
        );
    }

    fn batch(&self, buf: &mut BytesMut, writes: impl Iterator<Item = (u64, Fate, u64)>) {
        buf.put_slice(b"{\"RequestItems\":{");
        buf.put_slice(self.table_json.as_bytes());
        buf.put_slice(b":[");
        for (n, (i, fate, version)) in writes.enumerate() {
            if n > 0 {
                buf.put_slice(b",");
            }
            if fate == Fate::Deleted {
                buf.put_slice(b"{\"DeleteRequest\":{\"Key\":{");
                Self::put_key(buf, i);
                buf.put_slice(b"}}}");
            } else {
                buf.put_slice(b"{\"PutRequest\":{\"Item\":");
                self.put_item(buf, i, version);
                buf.put_slice(b"}}");
            }
        }
        buf.put_slice(b"]}}");
    }

    fn create_table(&self, buf: &mut BytesMut) {
        self.table_field(buf, &self.table_json);
        buf.put_slice(
            b",\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},\
              {\"AttributeName\":\"sk\",\"AttributeType\":\"S\"}],\
              \"KeySchema\":[{\"AttributeName\":\"pk\",\"KeyType\":\"HASH\"},\
              {\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}],\
              \"BillingMode\":\"PAY_PER_REQUEST\"}",
        );
    }
}

/// One measured phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    /// Items the phase handled (loaded, copied, changed, restored).
    pub items: u64,
    pub secs: f64,
    /// Size of the data directory after the phase, in bytes (when measured).
    pub dir_bytes: Option<u64>,
    /// Growth of the data directory during the phase (when measured).
    pub growth: Option<i64>,
}

impl Phase {
    /// The phase's row of the text report (without a newline).
    pub fn row(&self) -> String {
        let rate = if self.secs > 0.0 && self.items > 0 {
            format!("{:.0}", self.items as f64 / self.secs)
        } else {
            "-".into()
        };
        format!(
            "{:<26} {:>11} {:>10.2} {:>11} {:>12} {:>12}",
            self.name,
            self.items,
            self.secs,
            rate,
            self.dir_bytes
                .map_or("-".into(), |b| human_bytes(b.min(i64::MAX as u64) as i64)),
            self.growth.map_or("-".into(), human_bytes),
        )
    }
}

/// One check of a table's contents.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub table: String,
    pub expected_items: u64,
    /// Items counted by a parallel Scan (Select COUNT).
    pub counted_items: u64,
    pub count_secs: f64,
    pub samples: u64,
    /// Samples whose item differed from the expected state.
    pub sample_mismatches: u64,
}

impl Check {
    pub fn ok(&self) -> bool {
        self.counted_items == self.expected_items && self.sample_mismatches == 0
    }
}

/// The scenario's report.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupReport {
    pub endpoint: String,
    pub data_dir: Option<String>,
    pub items: u64,
    pub item_bytes: usize,
    pub connections: usize,
    pub overwritten: u64,
    pub deleted: u64,
    /// BackupSizeBytes as DescribeBackup reports it.
    pub backup_size_bytes: Option<u64>,
    pub phases: Vec<Phase>,
    pub checks: Vec<Check>,
}

/// `1234567` → `"1.18 MiB"`; negative growth keeps its sign.
pub fn human_bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let v = n.unsigned_abs() as f64;
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut u = 0;
    let mut x = v;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{sign}{} B", n.unsigned_abs())
    } else {
        format!("{sign}{x:.2} {}", UNITS[u])
    }
}

impl BackupReport {
    pub fn all_ok(&self) -> bool {
        self.checks.iter().all(Check::ok)
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "endpoint {}  data dir {}\n{} items of {} data bytes, {} connections; {} overwritten, {} deleted after the backup\n\n",
            self.endpoint,
            self.data_dir.as_deref().unwrap_or("(not measured)"),
            self.items,
            self.item_bytes,
            self.connections,
            self.overwritten,
            self.deleted,
        ));
        s.push_str(&format!(
            "{:<26} {:>11} {:>10} {:>11} {:>12} {:>12}\n",
            "phase", "items", "seconds", "items/s", "dir after", "dir growth"
        ));
        for p in &self.phases {
            s.push_str(&p.row());
            s.push('\n');
        }
        if let Some(b) = self.backup_size_bytes {
            s.push_str(&format!(
                "\nBackupSizeBytes (DescribeBackup): {b} ({})\n",
                human_bytes(b.min(i64::MAX as u64) as i64)
            ));
        }
        s.push('\n');
        s.push_str(&format!(
            "{:<36} {:>11} {:>11} {:>10} {:>8} {:>10}  {}\n",
            "check", "expected", "counted", "count s", "samples", "mismatch", "result"
        ));
        for c in &self.checks {
            s.push_str(&format!(
                "{:<36} {:>11} {:>11} {:>10.2} {:>8} {:>10}  {}\n",
                c.table,
                c.expected_items,
                c.counted_items,
                c.count_secs,
                c.samples,
                c.sample_mismatches,
                if c.ok() { "ok" } else { "WRONG" }
            ));
        }
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "schema": BACKUP_SCHEMA,
            "config": {
                "endpoint": self.endpoint,
                "data_dir": self.data_dir,
                "items": self.items,
                "item_bytes": self.item_bytes,
                "connections": self.connections,
                "overwritten": self.overwritten,
                "deleted": self.deleted,
            },
            "backup_size_bytes": self.backup_size_bytes,
            "phases": self.phases.iter().map(|p| json!({
                "name": p.name,
                "items": p.items,
                "secs": p.secs,
                "items_per_sec": if p.secs > 0.0 { p.items as f64 / p.secs } else { 0.0 },
                "dir_bytes": p.dir_bytes,
                "dir_growth_bytes": p.growth,
            })).collect::<Vec<_>>(),
            "checks": self.checks.iter().map(|c| json!({
                "table": c.table,
                "expected_items": c.expected_items,
                "counted_items": c.counted_items,
                "count_secs": c.count_secs,
                "samples": c.samples,
                "sample_mismatches": c.sample_mismatches,
                "ok": c.ok(),
            })).collect::<Vec<_>>(),
            "ok": self.all_ok(),
        })
    }
}

/// Bytes the files under `dir` occupy on disk (allocated blocks where the platform says,
/// apparent sizes otherwise). Files that vanish during the walk are skipped.
pub fn dir_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d != dir => continue,
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += allocated(&meta);
            }
        }
    }
    Ok(total)
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

/// A server the scenario started; killed on drop.
struct Spawned {
    child: std::process::Child,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(dir: &Path, port: u16, extra: &[String]) -> anyhow::Result<(Spawned, String)> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("locating the ferrodyn binary")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut child = std::process::Command::new(exe)
        .arg("serve")
        .args(["--port", &port.to_string(), "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("FERRODYN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting `ferrodyn serve`")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let spawned = Spawned { child };
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("reading the server's listening line")?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow!("the server did not start (its first line: {line:?})"))?
        .to_string();
    // Keep draining the server's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Ok((spawned, url))
}

/// Entry point of `ferrodyn bench backup`: runs the scenario and prints its report. Fails
/// when a check found a wrong count or item.
pub fn main_with_args(args: BackupArgs) -> anyhow::Result<()> {
    validate(&args)?;
    let mut spawned = None;
    let (endpoint, data_dir) = match &args.endpoint {
        Some(e) => (e.clone(), args.data_dir.clone()),
        None => {
            let dir = args.data_dir.clone().unwrap_or_else(|| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                std::env::temp_dir().join(format!("ferrodyn-bench-backup-{now}"))
            });
            let (s, url) = spawn_server(&dir, args.port, &args.server_args)?;
            if !args.quiet && !args.json {
                eprintln!("started ferrodyn serve on {url}, data in {}", dir.display());
            }
            spawned = Some(s);
            (url, Some(dir))
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the client runtime")?;
    let report = rt.block_on(run(&args, &endpoint, data_dir.as_deref()));
    drop(spawned);
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    if !report.all_ok() {
        bail!("a restored table does not hold the expected items");
    }
    Ok(())
}

/// Everything the phases share.
struct Ctx {
    endpoint: Arc<Endpoint>,
    signer: Signer,
    timeout: Duration,
    connections: usize,
    chatty: bool,
    data_dir: Option<PathBuf>,
    control: Conn,
}

impl Ctx {
    fn size(&self) -> anyhow::Result<Option<u64>> {
        match &self.data_dir {
            Some(d) => Ok(Some(
                dir_size(d).with_context(|| format!("measuring {}", d.display()))?,
            )),
            None => Ok(None),
        }
    }

    /// The data directory's size once it has not fallen for [`SETTLE`] (at most
    /// [`SETTLE_LIMIT`] of waiting).
    async fn settled_size(&self) -> anyhow::Result<Option<u64>> {
        let Some(mut low) = self.size()? else {
            return Ok(None);
        };
        let deadline = Instant::now() + SETTLE_LIMIT;
        let mut since = Instant::now();
        while since.elapsed() < SETTLE && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            let now = self.size()?.unwrap_or(low);
            if now < low {
                low = now;
                since = Instant::now();
            }
        }
        Ok(Some(low))
    }

    /// Records a finished phase and shows its row at once (a run stopped later still tells
    /// what it measured).
    fn done(&self, phases: &mut Vec<Phase>, phase: Phase) {
        self.say(phase.row());
        phases.push(phase);
    }

    fn say(&self, msg: impl AsRef<str>) {
        if self.chatty {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// One control-plane call, retried on throttling and transport errors.
    async fn call(&mut self, target: Target, body: Value) -> anyhow::Result<Value> {
        let body = Bytes::from(serde_json::to_vec(&body)?);
        let mut backoff = Duration::from_millis(50);
        for _ in 0..20 {
            match self.control.call(target, body.clone()).await {
                Ok(resp) => {
                    return serde_json::from_slice(&resp)
                        .with_context(|| format!("{target:?}: unreadable answer"))
                }
                Err(CallError::Service(kind, resp)) if !retryable(&kind) => {
                    bail!("{target:?} failed: {kind}: {}", service_message(&resp))
                }
                Err(_) => {}
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        bail!("{target:?} kept failing")
    }

    /// Polls DescribeTable until the table is ACTIVE.
    async fn wait_active(&mut self, table: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + PHASE_LIMIT;
        loop {
            let v = self
                .call(Target::DescribeTable, json!({ "TableName": table }))
                .await?;
            if v["Table"]["TableStatus"] == "ACTIVE" {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("table {table} did not become ACTIVE");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends `batches` BatchWriteItem requests built by `build(batch, buf)` (which returns
    /// the items it wrote) over the scenario's connections.
    async fn batches<F>(
        &self,
        label: &str,
        batches: u64,
        total: u64,
        build: F,
    ) -> anyhow::Result<()>
    where
        F: Fn(u64, &mut BytesMut) -> u64 + Send + Sync + 'static,
    {
        let pb = self.progress(label, total);
        let build = Arc::new(build);
        let next = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for _ in 0..self.connections.min(batches as usize).max(1) {
            let mut conn = Conn::new(self.endpoint.clone(), self.signer.clone(), self.timeout)?;
            let (build, next, pb) = (build.clone(), next.clone(), pb.clone());
            handles.push(tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let n = build(b, &mut buf);
                    write_batch(&mut conn, buf.split().freeze()).await?;
                    pb.inc(n);
                }
            }));
        }
        let mut result = Ok(());
        for h in handles {
            match h.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(anyhow!("{label} task failed: {e}")),
            }
        }
        pb.finish_and_clear();
        result
    }

    fn progress(&self, label: &str, total: u64) -> ProgressBar {
        if !self.chatty {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{spinner}} {label} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} items ({{per_sec}})"
        )) {
            pb.set_style(style);
        }
        pb
    }

    /// Counts a table's items with a parallel Scan (Select COUNT, one segment per connection).
    async fn count(&self, table: &str) -> anyhow::Result<u64> {
        let segments = self.connections.clamp(1, 64) as u64;
        let total = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for seg in 0..segments {
            let mut conn = Conn::new(self.endpoint.clone(), self.signer.clone(), self.timeout)?;
            let total = total.clone();
            let table = table.to_string();
            handles.push(tokio::spawn(async move {
                let mut start: Option<Value> = None;
                loop {
                    let mut req = json!({
                        "TableName": table,
                        "Select": "COUNT",
                        "Segment": seg,
                        "TotalSegments": segments,
                    });
                    if let Some(k) = start.take() {
                        req["ExclusiveStartKey"] = k;
                    }
                    let body = Bytes::from(serde_json::to_vec(&req)?);
                    let resp = call_retrying(&mut conn, Target::Scan, body).await?;
                    let n = resp["Count"]
                        .as_u64()
                        .ok_or_else(|| anyhow!("Scan answered without Count"))?;
                    total.fetch_add(n, Ordering::Relaxed);
                    match resp.get("LastEvaluatedKey") {
                        Some(k) if !k.is_null() => start = Some(k.clone()),
                        _ => return Ok::<(), anyhow::Error>(()),
                    }
                }
            }));
        }
        for h in handles {
            h.await.map_err(|e| anyhow!("count task failed: {e}"))??;
        }
        Ok(total.load(Ordering::Relaxed))
    }

    /// Reads `samples` items of `table` (half of them among the changed items) and counts
    /// those that differ from `expect(i)` (the expected version, `None`: absent).
    async fn sample(
        &mut self,
        table: &str,
        items: u64,
        changes: &Changes,
        samples: u64,
        expect: impl Fn(u64) -> Option<u64>,
        item_bytes: usize,
    ) -> anyhow::Result<u64> {
        let mut rng = Rng::new(0x5A3B_1E5E ^ items);
        let mut wrong = 0;
        for s in 0..samples {
            let i = if s % 2 == 0 {
                changes.item(rng.below(changes.count()))
            } else {
                rng.below(items)
            };
            let v = self
                .call(
                    Target::GetItem,
                    json!({
                        "TableName": table,
                        "Key": { "pk": { "S": format!("user{i}") }, "sk": { "S": "0" } },
                        "ConsistentRead": true,
                    }),
                )
                .await?;
            let got = v.get("Item").and_then(|it| it["data"]["S"].as_str());
            let want = expect(i).map(|version| value_of(i, version, item_bytes));
            if got.map(str::as_bytes) != want.as_deref() {
                wrong += 1;
            }
        }
        Ok(wrong)
    }
}

/// One data-plane call on a worker connection, retried on throttling and transport errors.
async fn call_retrying(conn: &mut Conn, target: Target, body: Bytes) -> anyhow::Result<Value> {
    let mut backoff = Duration::from_millis(20);
    for _ in 0..30 {
        match conn.call(target, body.clone()).await {
            Ok(resp) => return Ok(serde_json::from_slice(&resp)?),
            Err(CallError::Service(kind, resp)) if !retryable(&kind) => {
                bail!("{target:?} failed: {kind}: {}", service_message(&resp))
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
    bail!("{target:?} kept failing")
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn growth(before: Option<u64>, after: Option<u64>) -> Option<i64> {
    Some(after? as i64 - before? as i64)
}

/// Runs the scenario against `endpoint` (whose data directory is `data_dir`, when known).
pub async fn run(
    args: &BackupArgs,
    endpoint: &str,
    data_dir: Option<&Path>,
) -> anyhow::Result<BackupReport> {
    validate(args)?;
    let resolved = Arc::new(Endpoint::resolve(endpoint).await?);
    let signer = args.signing.signer();
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut control = Conn::new(resolved.clone(), signer.clone(), timeout)?;
    control
        .connect()
        .await
        .with_context(|| format!("cannot reach {endpoint}"))?;
    let bodies = Arc::new(Bodies {
        table_json: serde_json::to_string(&args.table)?,
        item_bytes: args.item_bytes,
    });
    let mut cx = Ctx {
        endpoint: resolved,
        signer,
        timeout,
        connections: args.connections,
        chatty: !args.json && !args.quiet,
        data_dir: data_dir.map(Path::to_path_buf),
        control,
    };
    let n = args.items;
    let changes = Changes::new(n, args.change_fraction);
    let from_backup = format!("{}-from-backup", args.table);
    let pitr = format!("{}-pitr", args.table);
    let mut phases = Vec::new();
    let mut checks = Vec::new();

    // Table.
    let mut buf = BytesMut::new();
    bodies.create_table(&mut buf);
    let create: Value = serde_json::from_slice(&buf)?;
    cx.say(format!("creating table {} ...", args.table));
    cx.call(Target::CreateTable, create).await?;
    cx.wait_active(&args.table).await?;
    let mut size = cx.size()?;

    // Load.
    let t = Instant::now();
    let b = bodies.clone();
    cx.batches("load", n.div_ceil(BATCH_SIZE), n, move |batch, buf| {
        let first = batch * BATCH_SIZE;
        let count = BATCH_SIZE.min(n - first);
        b.load_batch(buf, first, count);
        count
    })
    .await?;
    let after = cx.size()?;
    cx.done(
        &mut phases,
        Phase {
            name: "load (BatchWriteItem)",
            items: n,
            secs: t.elapsed().as_secs_f64(),
            dir_bytes: after,
            growth: growth(size, after),
        },
    );
    size = after;

    // CreateBackup → AVAILABLE.
    cx.say("CreateBackup ...");
    let t = Instant::now();
    let v = cx
        .call(
            Target::CreateBackup,
            json!({ "TableName": args.table, "BackupName": "bench" }),
        )
        .await?;
    let arn = v["BackupDetails"]["BackupArn"]
        .as_str()
        .ok_or_else(|| anyhow!("CreateBackup answered without BackupArn"))?
        .to_string();
    let deadline = Instant::now() + PHASE_LIMIT;
    let backup_size = loop {
        let v = cx
            .call(Target::DescribeBackup, json!({ "BackupArn": arn }))
            .await?;
        let d = &v["BackupDescription"]["BackupDetails"];
        if d["BackupStatus"] == "AVAILABLE" {
            break d["BackupSizeBytes"].as_u64();
        }
        if Instant::now() >= deadline {
            bail!("the backup did not become AVAILABLE");
        }
        tokio::time::sleep(POLL).await;
    };
    let after = cx.size()?;
    cx.done(
        &mut phases,
        Phase {
            name: "CreateBackup → AVAILABLE",
            items: n,
            secs: t.elapsed().as_secs_f64(),
            dir_bytes: after,
            growth: growth(size, after),
        },
    );
    size = after;

    // Enable point-in-time recovery; the restore point lies between enabling and changing.
    let t = Instant::now();
    cx.call(
        Target::UpdateContinuousBackups,
        json!({
            "TableName": args.table,
            "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": true },
        }),
    )
    .await?;
    cx.done(
        &mut phases,
        Phase {
            name: "enable PITR",
            items: 0,
            secs: t.elapsed().as_secs_f64(),
            dir_bytes: None,
            growth: None,
        },
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restore_point = epoch_now();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Changes.
    let t = Instant::now();
    let b = bodies.clone();
    let count = changes.count();
    cx.batches(
        "changes",
        count.div_ceil(BATCH_SIZE),
        count,
        move |batch, buf| {
            let first = batch * BATCH_SIZE;
            let k = BATCH_SIZE.min(count - first);
            b.change_batch(buf, &changes, first, k);
            k
        },
    )
    .await?;
    let after = cx.size()?;
    cx.done(
        &mut phases,
        Phase {
            name: "changes (PITR on)",
            items: count,
            secs: t.elapsed().as_secs_f64(),
            dir_bytes: after,
            growth: growth(size, after),
        },
    );
    size = after;

    // The source now.
    let t = Instant::now();
    let counted = cx.count(&args.table).await?;
    let count_secs = t.elapsed().as_secs_f64();
    let wrong = cx
        .sample(
            &args.table,
            n,
            &changes,
            args.samples,
            |i| match changes.fate(i) {
                Fate::Unchanged => Some(0),
                Fate::Overwritten => Some(1),
                Fate::Deleted => None,
            },
            args.item_bytes,
        )
        .await?;
    checks.push(Check {
        table: format!("{} (after changes)", args.table),
        expected_items: n - changes.deleted(),
        counted_items: counted,
        count_secs,
        samples: args.samples,
        sample_mismatches: wrong,
    });

    // The two restores, each checked and (unless kept) dropped before the next.
    for (target, name) in [
        (from_backup.as_str(), "RestoreTableFromBackup"),
        (pitr.as_str(), "RestoreTableToPointInTime"),
    ] {
        cx.say(format!("{name} → {target} ..."));
        let t = Instant::now();
        if name == "RestoreTableFromBackup" {
            cx.call(
                Target::RestoreTableFromBackup,
                json!({ "TargetTableName": target, "BackupArn": arn }),
            )
            .await?;
        } else {
            cx.call(
                Target::RestoreTableToPointInTime,
                json!({
                    "SourceTableName": args.table,
                    "TargetTableName": target,
                    "RestoreDateTime": restore_point,
                }),
            )
            .await?;
        }
        cx.wait_active(target).await?;
        let after = cx.size()?;
        cx.done(
            &mut phases,
            Phase {
                name: if name == "RestoreTableFromBackup" {
                    "RestoreTableFromBackup"
                } else {
                    "RestoreTableToPointInTime"
                },
                items: n,
                secs: t.elapsed().as_secs_f64(),
                dir_bytes: after,
                growth: growth(size, after),
            },
        );
        let t = Instant::now();
        let counted = cx.count(target).await?;
        let count_secs = t.elapsed().as_secs_f64();
        let wrong = cx
            .sample(
                target,
                n,
                &changes,
                args.samples,
                |_| Some(0),
                args.item_bytes,
            )
            .await?;
        checks.push(Check {
            table: target.to_string(),
            expected_items: n,
            counted_items: counted,
            count_secs,
            samples: args.samples,
            sample_mismatches: wrong,
        });
        if !args.keep {
            cx.call(Target::DeleteTable, json!({ "TableName": target }))
                .await?;
        }
        size = cx.size()?;
    }

    if !args.keep {
        let t = Instant::now();
        cx.call(Target::DeleteBackup, json!({ "BackupArn": arn }))
            .await?;
        // A table deleted with recovery on would live on as a system backup (DynamoDB keeps
        // one for 35 days): turn recovery off first so that nothing stays behind.
        cx.call(
            Target::UpdateContinuousBackups,
            json!({
                "TableName": args.table,
                "PointInTimeRecoverySpecification": { "PointInTimeRecoveryEnabled": false },
            }),
        )
        .await?;
        cx.call(Target::DeleteTable, json!({ "TableName": args.table }))
            .await?;
        let secs = t.elapsed().as_secs_f64();
        // Space comes back as the server removes files: wait until the size stops falling.
        let after = cx.settled_size().await?;
        cx.done(
            &mut phases,
            Phase {
                name: "delete all (space back)",
                items: 0,
                secs,
                dir_bytes: after,
                growth: growth(size, after),
            },
        );
    }

    Ok(BackupReport {
        endpoint: endpoint.to_string(),
        data_dir: data_dir.map(|d| d.display().to_string()),
        items: n,
        item_bytes: args.item_bytes,
        connections: args.connections,
        overwritten: changes.overwritten(),
        deleted: changes.deleted(),
        backup_size_bytes: backup_size,
        phases,
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BackupArgs,
    }

    fn parse(args: &[&str]) -> Result<BackupArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("backup").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn options_parse_with_defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.items, 1_000_000);
        assert_eq!(a.item_bytes, 100);
        assert_eq!(a.change_fraction, 0.1);
        assert_eq!(a.connections, 32);
        assert!(a.endpoint.is_none() && !a.keep && !a.json);
        assert_eq!(a.port, 0);
        let a = parse(&[
            "--items",
            "10000000",
            "--item-bytes",
            "200",
            "--endpoint",
            "http://127.0.0.1:9",
            "--data-dir",
            "/tmp/x",
            "--port",
            "19601",
            "--server-arg=--memtable-mb=64",
            "--server-arg",
            "--cache-mb=128",
        ])
        .unwrap();
        assert_eq!(a.items, 10_000_000);
        assert_eq!(a.item_bytes, 200);
        assert_eq!(a.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(a.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(a.port, 19601);
        assert_eq!(a.server_args, ["--memtable-mb=64", "--cache-mb=128"]);
        assert!(validate(&a).is_ok());
        assert!(parse(&["--items", "ten"]).is_err());
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            &["--items", "0"][..],
            &["--item-bytes", "0"],
            &["--change-fraction", "0"],
            &["--change-fraction", "1.5"],
            &["--connections", "0"],
            &["--timeout", "0"],
            &["--table", ""],
            &["--table", "ab"],
        ] {
            let a = parse(bad).unwrap();
            assert!(validate(&a).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn values_are_a_function_of_item_and_version() {
        let v = value_of(42, 0, 100);
        assert_eq!(v.len(), 100);
        assert!(v.iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(v, value_of(42, 0, 100));
        assert_ne!(v, value_of(42, 1, 100));
        assert_ne!(v, value_of(43, 0, 100));
        assert_eq!(value_of(7, 1, 3).len(), 3);
        assert_eq!(&value_of(7, 1, 300)[..3], &value_of(7, 1, 3)[..]);
    }

    #[test]
    fn changes_alternate_overwrites_and_deletes() {
        let c = Changes::new(1000, 0.1);
        assert_eq!(c.stride, 10);
        assert_eq!(c.count(), 100);
        assert_eq!((c.overwritten(), c.deleted()), (50, 50));
        assert_eq!(c.fate(0), Fate::Overwritten);
        assert_eq!(c.fate(10), Fate::Deleted);
        assert_eq!(c.fate(20), Fate::Overwritten);
        assert_eq!(c.fate(5), Fate::Unchanged);
        assert_eq!(c.fate(1000), Fate::Unchanged);
        // The fates agree with a direct count.
        let deleted = (0..1000).filter(|&i| c.fate(i) == Fate::Deleted).count() as u64;
        let overwritten = (0..1000)
            .filter(|&i| c.fate(i) == Fate::Overwritten)
            .count() as u64;
        assert_eq!((overwritten, deleted), (c.overwritten(), c.deleted()));
        let odd = Changes::new(25, 0.1);
        assert_eq!(odd.count(), 3);
        assert_eq!((odd.overwritten(), odd.deleted()), (2, 1));
        assert_eq!(Changes::new(10, 1.0).count(), 10);
    }

    #[test]
    fn batches_are_valid_batch_write_requests() {
        let b = Bodies {
            table_json: serde_json::to_string("t\"x").unwrap(),
            item_bytes: 10,
        };
        let mut buf = BytesMut::new();
        b.load_batch(&mut buf, 5, 3);
        let v: Value = serde_json::from_slice(&buf).unwrap();
        let reqs = v["RequestItems"]["t\"x"].as_array().unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0]["PutRequest"]["Item"]["pk"]["S"], "user5");
        assert_eq!(
            reqs[2]["PutRequest"]["Item"]["data"]["S"]
                .as_str()
                .unwrap()
                .as_bytes(),
            value_of(7, 0, 10)
        );
        let c = Changes::new(100, 0.1);
        buf.clear();
        b.change_batch(&mut buf, &c, 0, 4);
        let v: Value = serde_json::from_slice(&buf).unwrap();
        let reqs = v["RequestItems"]["t\"x"].as_array().unwrap();
        assert_eq!(reqs[0]["PutRequest"]["Item"]["pk"]["S"], "user0");
        assert_eq!(
            reqs[0]["PutRequest"]["Item"]["data"]["S"]
                .as_str()
                .unwrap()
                .as_bytes(),
            value_of(0, 1, 10)
        );
        assert_eq!(reqs[1]["DeleteRequest"]["Key"]["pk"]["S"], "user10");
        assert_eq!(reqs[3]["DeleteRequest"]["Key"]["sk"]["S"], "0");
        buf.clear();
        b.create_table(&mut buf);
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["TableName"], "t\"x");
    }

    #[test]
    fn byte_sizes_read_naturally() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(-3 * 1024 * 1024), "-3.00 MiB");
        assert_eq!(human_bytes(5 << 30), "5.00 GiB");
    }

    fn sample_report() -> BackupReport {
        BackupReport {
            endpoint: "http://127.0.0.1:1".into(),
            data_dir: Some("/tmp/d".into()),
            items: 1000,
            item_bytes: 100,
            connections: 4,
            overwritten: 50,
            deleted: 50,
            backup_size_bytes: Some(150_000),
            phases: vec![
                Phase {
                    name: "load (BatchWriteItem)",
                    items: 1000,
                    secs: 0.5,
                    dir_bytes: Some(2 << 20),
                    growth: Some(1 << 20),
                },
                Phase {
                    name: "enable PITR",
                    items: 0,
                    secs: 0.01,
                    dir_bytes: None,
                    growth: None,
                },
            ],
            checks: vec![
                Check {
                    table: "t-pitr".into(),
                    expected_items: 1000,
                    counted_items: 1000,
                    count_secs: 0.1,
                    samples: 10,
                    sample_mismatches: 0,
                },
                Check {
                    table: "t-from-backup".into(),
                    expected_items: 1000,
                    counted_items: 999,
                    count_secs: 0.1,
                    samples: 10,
                    sample_mismatches: 0,
                },
            ],
        }
    }

    #[test]
    fn the_text_report_has_a_row_per_phase_and_check() {
        let r = sample_report();
        let text = r.to_text();
        let load = text.lines().find(|l| l.starts_with("load")).unwrap();
        assert!(load.contains(" 1000 ") && load.contains(" 2000 "), "{load}");
        assert!(
            load.contains("2.00 MiB") && load.contains("1.00 MiB"),
            "{load}"
        );
        let pitr = text.lines().find(|l| l.starts_with("enable PITR")).unwrap();
        assert!(pitr.trim_end().ends_with('-'), "{pitr}");
        assert!(text.contains("BackupSizeBytes (DescribeBackup): 150000"));
        assert!(text
            .lines()
            .any(|l| l.starts_with("t-pitr") && l.ends_with("ok")));
        assert!(text
            .lines()
            .any(|l| l.starts_with("t-from-backup") && l.ends_with("WRONG")));
        assert!(!r.all_ok());
    }

    #[test]
    fn the_json_report_follows_its_schema() {
        let v = sample_report().to_json();
        assert_eq!(v["schema"], BACKUP_SCHEMA);
        assert_eq!(v["config"]["items"], 1000);
        assert_eq!(v["phases"][0]["items_per_sec"], 2000.0);
        assert_eq!(v["phases"][0]["dir_growth_bytes"], 1 << 20);
        assert_eq!(v["phases"][1]["dir_bytes"], Value::Null);
        assert_eq!(v["checks"][0]["ok"], true);
        assert_eq!(v["checks"][1]["ok"], false);
        assert_eq!(v["ok"], false);
    }

    #[test]
    fn directory_sizes_add_up_nested_files() {
        let dir = std::env::temp_dir().join(format!(
            "ferrodyn-bench-dirsize-{}-{}",
            std::process::id(),
            epoch_now()
        ));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("x"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.join("a/b/y"), vec![2u8; 20_000]).unwrap();
        let size = dir_size(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // Allocated blocks: at least the bytes written, at most a few blocks more each.
        assert!((30_000..=30_000 + 2 * 65_536).contains(&size), "{size}");
        assert!(dir_size(&dir).is_err());
    }
}
