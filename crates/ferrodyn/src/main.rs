//! The `ferrodyn` command: serve a DynamoDB-compatible endpoint (and tools around it).
#![forbid(unsafe_code)]

mod audit_cli;
mod check_cli;
mod config;
mod triggers_cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ferrodyn_core::{Engine, EngineConfig};
use ferrodyn_storage::{
    CachedStorage, Durability, FjallOptions, FjallStorage, MemoryStorage, Storage,
};

/// Request handling allocates many small short-lived objects across threads; mimalloc serves
/// that pattern far better than the system allocator (measured: glibc malloc was a third of
/// Query's CPU profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ferrodyn",
    version,
    about = "A DynamoDB-compatible database server"
)]
struct Cli {
    /// Log line format on standard error: `text` for people, `json` (one object per line) for
    /// log collectors. Request-scoped lines carry the request id (`x-amzn-RequestId`); see
    /// docs/operations.md.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "FERRODYN_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the DynamoDB API (JSON 1.0 over HTTP) on a local port.
    Serve(ServeArgs),
    /// Load-test any DynamoDB endpoint (YCSB workloads and single operations, SigV4-signed).
    Bench(ferrodyn_bench::BenchCommand),
    /// Print audit records of a running server as JSON lines, or `audit verify` its hash chain
    /// (admin API, signed with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    Audit(audit_cli::AuditArgs),
    /// Stream triggers of a running server: deliver every change of a table to an HTTP(S)
    /// endpoint or a NATS JetStream subject (admin API, signed like `audit`).
    Triggers(triggers_cli::TriggersArgs),
    /// Manage the access keys kept in a data directory (a running server that enforces keys
    /// reads them within a second; one started without keys picks them up at its next start).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Verify a data directory offline (stop the server first): every keyspace read whole,
    /// every data file against its checksum, every index against its table, statistics,
    /// catalog and stream records. Exit 0 when clean, 1 with problems, 2 when unopenable.
    Check(check_cli::CheckArgs),
    /// Rebuild what derives from the items of a data directory (stop the server first):
    /// indexes with problems and wrong statistics. Never changes an item.
    Repair(check_cli::RepairArgs),
    #[command(flatten)]
    Data(ferrodyn_datacli::DataCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key; prints its access key id and secret (the only time the secret is shown).
    Create {
        name: String,
        /// IAM policy document (JSON) attached to the key; without one the key may do nothing.
        #[arg(long)]
        policy: Option<PathBuf>,
        #[command(flatten)]
        dir: KeysDir,
    },
    /// List keys: name, access key id, whether a policy is attached (never secrets).
    List {
        #[command(flatten)]
        dir: KeysDir,
    },
    /// Give a key a new access key id and secret; the old ones stop working.
    Rotate {
        name: String,
        #[command(flatten)]
        dir: KeysDir,
    },
    /// Delete a key.
    Delete {
        name: String,
        #[command(flatten)]
        dir: KeysDir,
    },
}

#[derive(Args)]
struct KeysDir {
    /// The server's data directory.
    #[arg(long, default_value = "./ferrodyn-data", env = "FERRODYN_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuthArg {
    /// Accept any well-formed request without checking its signature (the test double).
    None,
    /// Verify every request's SigV4 signature and authorize it with the key's IAM policy.
    Keys,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML file setting any of these flags by long name (`port = 8000`, `data-dir = "..."`);
    /// the command line and FERRODYN_* variables take precedence over it.
    #[arg(long, env = "FERRODYN_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "FERRODYN_HOST")]
    host: String,
    /// Port to listen on (0 picks a free port).
    #[arg(long, default_value_t = 8000, env = "FERRODYN_PORT")]
    port: u16,
    /// Directory of the durable on-disk store.
    #[arg(
        long,
        default_value = "./ferrodyn-data",
        env = "FERRODYN_DATA_DIR",
        conflicts_with = "in_memory"
    )]
    data_dir: PathBuf,
    /// Keep everything in memory (nothing survives a restart); for tests.
    #[arg(long, env = "FERRODYN_IN_MEMORY")]
    in_memory: bool,
    /// Keep one database per access key id and signing region, as DynamoDB Local does without
    /// -sharedDb: requests signed with another key or for another region see other tables.
    /// Each is kept in memory, or under --data-dir in a directory named KEY_REGION.
    #[arg(long, env = "FERRODYN_PER_KEY_DATABASES")]
    per_key_databases: bool,
    /// Store data in a PostgreSQL-compatible database shared by any number of Ferrodyn nodes
    /// (PostgreSQL, CockroachDB, YugabyteDB): a `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`
    /// URL or a `key=value` connection string (several hosts with
    /// `target_session_attrs=read-write` follow a failover; `sslmode=require` for TLS).
    #[arg(long, env = "FERRODYN_STORAGE", conflicts_with = "in_memory")]
    storage: Option<String>,
    /// Database connections per node (with --storage).
    #[arg(long, default_value_t = 16, env = "FERRODYN_STORAGE_POOL_SIZE")]
    storage_pool_size: usize,
    /// Longest a database statement may run, in milliseconds (with --storage; 0: no limit).
    #[arg(
        long,
        default_value_t = 30_000,
        env = "FERRODYN_STORAGE_STATEMENT_TIMEOUT_MS"
    )]
    storage_statement_timeout_ms: u64,
    /// A hot standby of the --storage database that answers eventually consistent reads
    /// (ConsistentRead false); strongly consistent reads and writes go to the primary.
    #[arg(long, env = "FERRODYN_STORAGE_REPLICA", requires = "storage")]
    storage_replica: Option<String>,
    /// Region reported in ARNs.
    #[arg(long, default_value = "us-east-1", env = "FERRODYN_REGION")]
    region: String,
    /// Account id reported in ARNs.
    #[arg(long, default_value = "000000000000", env = "FERRODYN_ACCOUNT")]
    account: String,
    /// Seconds between two sweeps for expired (TTL) items; fractions allowed.
    #[arg(long, default_value_t = 60.0, env = "FERRODYN_TTL_INTERVAL")]
    ttl_interval: f64,
    /// Tests only: seconds stream records are kept (DynamoDB: 24 hours).
    #[arg(long, hide = true, default_value_t = ferrodyn_core::streams::RETENTION_SECS)]
    stream_retention_secs: f64,
    /// Tests only: records after which a stream shard is closed and succeeded by a child.
    #[arg(long, hide = true, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    stream_shard_records: u64,
    /// With --storage: seconds after which a backup still being created whose node stopped
    /// reporting progress (it died) is removed by another node; fractions allowed.
    #[arg(long, default_value_t = 60.0, env = "FERRODYN_BACKUP_STALE_SECS")]
    backup_stale_secs: f64,
    /// Enforce tables' capacity as DynamoDB does: provisioned tables and their global
    /// secondary indexes throttle (ProvisionedThroughputExceededException) beyond their read
    /// and write capacity units, with 300 seconds of burst capacity; on-demand tables beyond
    /// their OnDemandThroughput maximum or the default per-table quota (ThrottlingException).
    #[arg(long, env = "FERRODYN_ENFORCE_CAPACITY")]
    enforce_capacity: bool,
    /// Block cache of the on-disk store, in MiB [default: a sixteenth of the machine's
    /// memory]. Memory is taken only as data is read; this is the upper bound.
    #[arg(long, env = "FERRODYN_CACHE_MB", value_parser = clap::value_parser!(u64).range(8..))]
    cache_mb: Option<u64>,
    /// Read cache of the on-disk store (recently read items and whole small partitions, in
    /// front of the LSM tree), in MiB; 0 turns it off [default: three sixteenths of the
    /// machine's memory]. Memory is taken only as data is read; this is the upper bound.
    #[arg(long, env = "FERRODYN_READ_CACHE_MB")]
    read_cache_mb: Option<u64>,
    /// Background flush/compaction threads of the on-disk store [default: chosen from the
    /// number of cores].
    #[arg(long, env = "FERRODYN_STORAGE_WORKERS", value_parser = clap::value_parser!(u64).range(1..=64))]
    storage_workers: Option<u64>,
    /// Memtable size of each table and index of the on-disk store, in MiB; applies to tables
    /// and indexes created afterwards.
    #[arg(long, env = "FERRODYN_MEMTABLE_MB", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1024))]
    memtable_mb: u64,
    /// Keep item values of at least this many bytes in blob files beside the LSM tree (0: keep
    /// every item in the tree); applies to tables and indexes created afterwards.
    #[arg(long, env = "FERRODYN_KV_SEPARATION_BYTES", default_value_t = 0, value_parser = clap::value_parser!(u32))]
    kv_separation_bytes: u32,
    /// Free space kept on the data directory's filesystem, in MiB: below it writes are
    /// refused (InternalServerError "No space left on device") and reads go on, until space
    /// is freed; 0 turns the check off. It leaves the on-disk store room for its journal,
    /// flushes and compactions, whose failure would need a restart.
    #[arg(long, env = "FERRODYN_MIN_FREE_MB", default_value_t = ferrodyn_storage::DEFAULT_MIN_FREE_BYTES >> 20)]
    min_free_mb: u64,
    /// Authentication [default: `keys` when access keys are configured (--keys-file, or keys in
    /// the data directory); `none` on a loopback address without keys; any other address
    /// without keys refuses to start unless `--auth none` is given].
    #[arg(long, value_enum, env = "FERRODYN_AUTH")]
    auth: Option<AuthArg>,
    /// JSON file of access keys and their IAM policies; re-read when it changes or on SIGHUP.
    #[arg(long, env = "FERRODYN_KEYS_FILE")]
    keys_file: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); reloaded when it changes.
    #[arg(long, env = "FERRODYN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "FERRODYN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Audit log of every change (who, what, when, old and new images), hash-chained
    /// [default: on when authentication is enforced, off with --auth none].
    #[arg(long, value_enum, env = "FERRODYN_AUDIT")]
    audit: Option<OnOff>,
    /// Also record every read in the audit log.
    #[arg(long, env = "FERRODYN_AUDIT_READS")]
    audit_reads: bool,
    /// Log requests that take at least this many milliseconds at warn: operation, table,
    /// duration, outcome and request id (never keys or item contents).
    #[arg(long, env = "FERRODYN_SLOW_REQUEST_MS")]
    slow_request_ms: Option<u64>,
    /// Directory standing for S3 in ExportTableToPointInTime and ImportTable: bucket B and
    /// prefix P are the directory DIR/B/P [default: DATA_DIR/exports; with --in-memory or
    /// --storage, ferrodyn-exports in the system's temporary directory].
    #[arg(long, env = "FERRODYN_EXPORT_DIR")]
    export_dir: Option<PathBuf>,
    /// Also serve `GET /metrics` and `/health/*` (plain HTTP, nothing else) on this address,
    /// e.g. 127.0.0.1:9100; they are always served on the API port too.
    #[arg(long, env = "FERRODYN_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// Days audit records are kept.
    #[arg(long, default_value_t = 90, env = "FERRODYN_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u64).range(1..=36500))]
    audit_retention_days: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// The machine's physical memory in bytes, if it can be read.
fn total_memory() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = m
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// The two caches share a quarter of physical memory (what fjall recommends for its block
/// cache alone). Most of it goes to the read cache: an entry there is a hot item or partition,
/// while a 4 KiB block holds a few items of which often one is hot (docs/benchmarks.md).
/// The block cache keeps the rest for the data blocks that misses read (index and filter
/// blocks of data keyspaces are pinned in memory beside it, about 1% of the data).
/// A sixteenth of physical memory, or 64 MiB when it cannot be read.
fn default_cache_bytes() -> u64 {
    total_memory().map_or(64 << 20, |m| (m / 16).max(64 << 20))
}

/// Three sixteenths of physical memory, or 192 MiB when it cannot be read.
fn default_read_cache_bytes() -> u64 {
    total_memory().map_or(192 << 20, |m| (m / 16 * 3).max(16 << 20))
}

fn main() -> anyhow::Result<()> {
    // First, before the allocator has touched more memory (see the function).
    let thp = disable_transparent_huge_pages();
    if std::env::args().nth(1).as_deref() == Some("-help") {
        print!("{DYNAMODB_LOCAL_HELP}");
        return Ok(());
    }
    let raw: Vec<String> = std::env::args().collect();
    let args = dynamodb_local_args(raw.clone());
    let from_dynamodb_local = args != raw;
    let cli: Cli = config::parse(args.into_iter().map(Into::into).collect())?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRODYN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    if let Err(e) = thp {
        tracing::debug!(error = %e, "could not opt out of transparent huge pages");
    }
    if from_dynamodb_local {
        tracing::info!(
            "DynamoDB Local's command line: serving as the test double on every interface, \
             accepting any credentials (--auth none --host 0.0.0.0)"
        );
    }
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Bench(cmd) => ferrodyn_bench::main_with_command(cmd),
        Command::Keys(cmd) => keys_command(cmd),
        Command::Audit(args) => audit_cli::run(args),
        Command::Data(cmd) => std::process::exit(ferrodyn_datacli::run(cmd)),
        Command::Triggers(args) => triggers_cli::run(args),
        Command::Check(args) => std::process::exit(check_cli::run_check(args)),
        Command::Repair(args) => std::process::exit(check_cli::run_repair(args)),
    }
}

/// `ferrodyn -help`, as DynamoDB Local's `-help` lists its flags.
const DYNAMODB_LOCAL_HELP: &str = "\
DynamoDB Local's command line, accepted as is (it means `ferrodyn serve --auth none --host 0.0.0.0`):
  -inMemory                  keep everything in memory (--in-memory)
  -port PORT                 port to listen on, default 8000 (--port)
  -dbPath DIR                directory of the durable store (--data-dir)
  -sharedDb                  one database for every access key and region; without it, one
                             database per access key id and region (--per-key-databases)
  -cors ORIGINS              accepted; CORS is always answered
  -delayTransientStatuses    accepted; tables, indexes and streams are ACTIVE at once
  -optimizeDbBeforeStartup   accepted; nothing to do (the store needs no optimization at startup)
  -disableTelemetry          accepted; Ferrodyn sends no telemetry
  -help                      this text
Other flags of `ferrodyn serve` may follow them; `ferrodyn serve --help` lists those.
";

/// DynamoDB Local's command line (`-inMemory -port 8000 -dbPath DIR -sharedDb -cors *`...)
/// becomes `serve` with the same meaning: Ferrodyn is then the test double, listening on every
/// interface like DynamoDB Local and accepting any credentials (`--auth none`), with one
/// database per access key and region unless `-sharedDb` is given (`--per-key-databases`).
/// Other command lines are returned unchanged.
///
/// The "-help" spelling is handled in main.
fn dynamodb_local_args(args: Vec<String>) -> Vec<String> {
    let is_local_flag = |a: &str| {
        matches!(
            a,
            "-inMemory"
                | "-port"
                | "-dbPath"
                | "-sharedDb"
                | "-cors"
                | "-delayTransientStatuses"
                | "-optimizeDbBeforeStartup"
                | "-disableTelemetry"
        )
    };
    // The `java -Dprop=... -jar DynamoDBLocal.jar` prefix of `amazon/dynamodb-local` commands
    // (e.g. a compose file's `command:`) is skipped, so such a command works unchanged.
    let mut args = args;
    let java = args
        .iter()
        .skip(1)
        .take_while(|a| a.starts_with("-D") || a.as_str() == "-jar" || a.ends_with(".jar"))
        .count();
    let had_java = args
        .get(1..=java)
        .is_some_and(|p| p.iter().any(|a| a == "-jar"));
    if had_java {
        args.drain(1..=java);
    }
    if !had_java && !args.get(1).is_some_and(|a| is_local_flag(a)) {
        return args;
    }
    let mut out = vec![
        args[0].clone(),
        "serve".into(),
        "--auth".into(),
        "none".into(),
        "--host".into(),
        "0.0.0.0".into(),
    ];
    if !args.iter().any(|a| a == "-sharedDb") && !args.iter().any(|a| a == "-help") {
        out.push("--per-key-databases".into());
    }
    let mut it = args.into_iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-inMemory" => out.push("--in-memory".into()),
            "-port" => {
                out.push("--port".into());
                out.extend(it.next());
            }
            "-dbPath" => {
                out.push("--data-dir".into());
                out.extend(it.next());
            }
            "-help" => out.push("--help".into()),
            // Accepted for compatibility: one database for every key and region (its absence
            // added --per-key-databases above), CORS (always on), and flags without an
            // equivalent: tables are ACTIVE at once (-delayTransientStatuses) and the store
            // needs no optimization at startup (-optimizeDbBeforeStartup); see
            // DYNAMODB_LOCAL_HELP.
            "-cors" => {
                it.next();
            }
            "-sharedDb"
            | "-delayTransientStatuses"
            | "-optimizeDbBeforeStartup"
            | "-disableTelemetry" => {}
            other => out.push(other.to_owned()),
        }
    }
    out
}

/// The access-key file a data directory holds (managed by `ferrodyn keys`).
fn data_dir_keys(dir: &std::path::Path) -> PathBuf {
    dir.join(ferrodyn_auth::keys::DATA_DIR_KEYS_FILE)
}

fn keys_command(cmd: KeysCommand) -> anyhow::Result<()> {
    use ferrodyn_auth::keys::KeyFile;
    let (dir, path) = match &cmd {
        KeysCommand::Create { dir, .. }
        | KeysCommand::List { dir }
        | KeysCommand::Rotate { dir, .. }
        | KeysCommand::Delete { dir, .. } => (dir.data_dir.clone(), data_dir_keys(&dir.data_dir)),
    };
    let mut file = KeyFile::read(&path, true)?;
    match cmd {
        KeysCommand::List { .. } => {
            for k in &file.keys {
                println!(
                    "{}\t{}\t{}",
                    k.name,
                    k.access_key_id,
                    if k.policy.is_some() {
                        "policy"
                    } else {
                        "no policy"
                    }
                );
            }
            return Ok(());
        }
        KeysCommand::Create { name, policy, .. } => {
            let policy = policy
                .map(|p| -> anyhow::Result<serde_json::Value> {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", p.display()))
                })
                .transpose()?;
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating data directory {}", dir.display()))?;
            let k = file.create(&name, policy)?;
            file.write(&path)?;
            print_key(&k);
            eprintln!(
                "a server already running on this directory uses the key within a second if it \
                 enforces keys; one that started without keys accepts any request until restarted"
            );
        }
        KeysCommand::Rotate { name, .. } => {
            let k = file.rotate(&name)?;
            file.write(&path)?;
            print_key(&k);
        }
        KeysCommand::Delete { name, .. } => {
            file.delete(&name)?;
            file.write(&path)?;
            println!("deleted {name}");
        }
    }
    Ok(())
}

/// Prints a new key on stdout (never logged).
fn print_key(k: &ferrodyn_auth::keys::KeyRecord) {
    println!("name: {}", k.name);
    println!("access_key_id: {}", k.access_key_id);
    println!("secret_access_key: {}", k.secret_access_key.expose());
}

/// mimalloc asks for transparent huge pages on its arenas, so every thread's first allocation
/// faulted in (and zeroed) 2 MiB: 8 MiB of an idle server's 15 MiB RSS, and 10% of the async
/// workers' CPU under durable puts as purged pages were faulted in again. Opting the process out
/// keeps 4 KiB pages; it is a no-op where THP is unavailable.
fn disable_transparent_huge_pages() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    return nix::sys::prctl::set_thp_disable(true).map_err(|e| e.to_string());
    #[cfg(not(target_os = "linux"))]
    Ok(())
}

/// Whether `host` names only this machine (127.0.0.0/8, ::1, localhost).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Chooses the authentication mode and loads the keys (see `ServeArgs::auth`).
fn auth_mode(args: &ServeArgs) -> anyhow::Result<ferrodyn_server::auth::AuthMode> {
    use ferrodyn_auth::keys::{KeySource, KeyStore};
    use ferrodyn_server::auth::AuthMode;
    let mut sources = Vec::new();
    if let Some(path) = &args.keys_file {
        sources.push(KeySource {
            path: path.clone(),
            required: true,
        });
    }
    if !args.in_memory && args.storage.is_none() {
        sources.push(KeySource {
            path: data_dir_keys(&args.data_dir),
            required: false,
        });
    }
    let store = KeyStore::open(sources).context("loading access keys")?;
    let has_keys = !store.keys().is_empty() || args.keys_file.is_some();
    match args.auth {
        Some(AuthArg::None) => {
            if has_keys {
                tracing::warn!("--auth none: access keys are configured but not checked");
            }
            Ok(AuthMode::None)
        }
        Some(AuthArg::Keys) => Ok(AuthMode::Enforced(Arc::new(store))),
        None if has_keys => Ok(AuthMode::Enforced(Arc::new(store))),
        None if is_loopback(&args.host) => {
            tracing::info!(
                "no access keys: accepting any request on this loopback address (keys created \
                 later with `ferrodyn keys` are enforced after a restart, or at once with --auth keys)"
            );
            Ok(AuthMode::None)
        }
        None => anyhow::bail!(
            "refusing to listen on {} without access keys: anyone who can reach it could read and \
             change every table. Configure keys (--keys-file FILE, or `ferrodyn keys create NAME \
             --policy FILE`), or pass --auth none to accept any request.",
            args.host
        ),
    }
}

/// Re-reads the key files when they change (checked every second) and on SIGHUP. A broken
/// file is logged and the keys in force stay; errors never contain secrets.
fn spawn_key_reloader(store: Arc<ferrodyn_auth::keys::KeyStore>) {
    let reload = move |force: bool| match store.reload(force) {
        Ok(true) => tracing::info!(keys = store.keys().len(), "access keys reloaded"),
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "access keys not reloaded; the previous keys stay in force")
        }
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = tick.tick() => reload(false),
                _ = hup_recv => reload(true),
            }
        }
    });
}

/// Raises the soft limit on open descriptors to the hard limit (at most 2^20). The embedded
/// engine caches up to 900 table files (fjall's descriptor table on Linux), and every
/// connection takes one more: under the common soft limit of 1024 a busy server would otherwise
/// refuse connections (`accept` fails with EMFILE; the accept loop logs it and retries) long
/// before the machine's real limit.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let target = hard.min(1 << 20);
    if soft < target {
        match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
            Ok(()) => tracing::debug!(from = soft, to = target, "raised the open file limit"),
            Err(e) => tracing::warn!(error = %e, soft, "could not raise the open file limit"),
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    raise_open_file_limit();
    let auth = auth_mode(&args)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            ferrodyn_tls::ReloadingTls::load(ferrodyn_tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })
            .context("loading the TLS certificate")?,
        ),
        _ => None,
    };
    if args.per_key_databases && args.storage.is_some() {
        anyhow::bail!(
            "--per-key-databases keeps each database in memory or under --data-dir; it cannot be \
             combined with --storage"
        );
    }
    let plan = storage_plan(&args);
    let enforced = matches!(auth, ferrodyn_server::auth::AuthMode::Enforced(_));
    let audit = ferrodyn_core::audit::AuditConfig {
        enabled: match args.audit {
            Some(OnOff::On) => true,
            Some(OnOff::Off) => false,
            // On shared storage every audited write of the cluster takes its turn on the
            // chain's head row (docs/scale-out.md): on only when asked for.
            None => (enforced || args.audit_reads) && args.storage.is_none(),
        },
        reads: args.audit_reads,
        retention: std::time::Duration::from_secs(args.audit_retention_days * 86_400),
    };
    if args.storage.is_some() && args.audit.is_none() && enforced {
        tracing::info!(
            "audit log off: on shared storage it is enabled with --audit on (audited writes of the whole cluster then take turns)"
        );
    }
    let config = EngineConfig {
        audit,
        region: args.region.clone(),
        account: args.account,
        durability: plan.durability(),
        ttl_interval: std::time::Duration::try_from_secs_f64(args.ttl_interval)
            .context("--ttl-interval must be a non-negative number of seconds")?,
        stream_retention: std::time::Duration::try_from_secs_f64(args.stream_retention_secs)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--stream-retention-secs must be a positive number of seconds")?,
        stream_shard_records: args.stream_shard_records,
        backup_stale_after: std::time::Duration::try_from_secs_f64(args.backup_stale_secs)
            .ok()
            .filter(|d| !d.is_zero())
            .context("--backup-stale-secs must be a positive number of seconds")?,
        capacity: args
            .enforce_capacity
            .then(ferrodyn_core::throttle::ThrottleConfig::default),
        ..EngineConfig::default()
    };
    let databases = args.per_key_databases.then(|| {
        let plan = plan.clone();
        let config = config.clone();
        let root = args.data_dir.clone();
        Arc::new(ferrodyn_server::databases::Databases::new(
            args.region.clone(),
            Box::new(move |id| {
                let dir = (!plan.in_memory()).then(|| root.join(id.file_name()));
                let config = EngineConfig {
                    region: id.region.clone(),
                    ..config.clone()
                };
                let engine =
                    open_engine(&plan, dir.as_deref(), config).map_err(|e| format!("{e:#}"))?;
                Ok(engine)
            }),
        ))
    });
    // With one database per key and region, the server's own engine holds no tables (it
    // answers only `/metrics`): an empty in-memory one.
    let engine = if databases.is_some() {
        open_engine(&StoragePlan::Memory, None, config)?
    } else {
        open_engine(&plan, Some(&args.data_dir), config)?
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let serving = engine.clone();
    let serving_databases = databases.clone();
    runtime.block_on(async move {
        let addr: SocketAddr = format!("{}:{}", args.host, args.port)
            .parse()
            .or_else(|_| {
                std::net::ToSocketAddrs::to_socket_addrs(&(args.host.as_str(), args.port))
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or(())
            })
            .map_err(|_| anyhow::anyhow!("invalid listen address {}:{}", args.host, args.port))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let enforced = match &auth {
            ferrodyn_server::auth::AuthMode::Enforced(store) => {
                spawn_key_reloader(store.clone());
                true
            }
            ferrodyn_server::auth::AuthMode::None => false,
        };
        let _watcher = tls
            .as_ref()
            .map(|t| t.spawn_watcher(std::time::Duration::from_secs(5)));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let options = ferrodyn_server::ServerOptions {
            auth,
            tls,
            slow_request: args.slow_request_ms.map(std::time::Duration::from_millis),
            exchange: Some(ferrodyn_exchange::ExchangeConfig::new(
                args.export_dir.clone().unwrap_or_else(|| {
                    if args.in_memory || args.storage.is_some() {
                        std::env::temp_dir().join("ferrodyn-exports")
                    } else {
                        args.data_dir.join("exports")
                    }
                }),
            )),
            triggers: None,
            databases: serving_databases,
        };
        let mut handle = ferrodyn_server::start_with(listener, serving, options)?;
        if let Some(maddr) = args.metrics_addr {
            let l = tokio::net::TcpListener::bind(maddr)
                .await
                .with_context(|| format!("binding --metrics-addr {maddr}"))?;
            tracing::info!(addr = %l.local_addr()?, "serving /metrics and /health");
            handle.serve_metrics(l);
        }
        tracing::info!(
            addr = %handle.addr,
            in_memory = args.in_memory,
            shared_storage = args.storage.is_some(),
            auth = if enforced { "keys" } else { "none" },
            "ferrodyn listening"
        );
        // Printed on stdout so scripts can discover the port when --port 0 is used.
        println!("listening on {scheme}://{}", handle.addr);
        shutdown_signal().await;
        tracing::info!("shutting down");
        handle.shutdown().await;
        anyhow::Ok(())
    })?;
    engine.close().context("final flush")?;
    if let Some(dbs) = &databases {
        dbs.close_all()
            .map_err(|e| anyhow::anyhow!("final flush: {e}"))?;
    }
    // Test facility (crash points): the counts of a crash-free run, when asked for.
    ferrodyn_storage::crash::write_report().context("writing the crash-point report")?;
    Ok(())
}

/// Where a server keeps its data, decided once from the flags; every database the server opens
/// (one, or one per access key and region) follows it.
#[derive(Clone)]
enum StoragePlan {
    Memory,
    Postgres {
        url: String,
        options: ferrodyn_postgres::PgOptions,
    },
    Fjall {
        options: FjallOptions,
        read_cache: u64,
    },
}

impl StoragePlan {
    fn in_memory(&self) -> bool {
        matches!(self, StoragePlan::Memory)
    }

    fn durability(&self) -> Durability {
        match self {
            StoragePlan::Memory => Durability::Buffered,
            _ => Durability::Sync,
        }
    }
}

fn storage_plan(args: &ServeArgs) -> StoragePlan {
    if args.in_memory {
        StoragePlan::Memory
    } else if let Some(url) = &args.storage {
        let timeout = (args.storage_statement_timeout_ms > 0)
            .then(|| std::time::Duration::from_millis(args.storage_statement_timeout_ms));
        StoragePlan::Postgres {
            url: url.clone(),
            options: ferrodyn_postgres::PgOptions {
                pool_size: args.storage_pool_size.max(1),
                statement_timeout: timeout,
                lock_timeout: timeout,
                replica: args.storage_replica.clone(),
                ..ferrodyn_postgres::PgOptions::default()
            },
        }
    } else {
        let options = FjallOptions {
            cache_bytes: args
                .cache_mb
                .map_or_else(default_cache_bytes, |mb| mb << 20),
            worker_threads: args.storage_workers.map(|n| n as usize),
            memtable_bytes: args.memtable_mb << 20,
            kv_separation: (args.kv_separation_bytes > 0).then_some(args.kv_separation_bytes),
            min_free_bytes: args.min_free_mb.saturating_mul(1 << 20),
            ..FjallOptions::default()
        };
        tracing::debug!(cache_bytes = options.cache_bytes, "block cache");
        let read_cache = args
            .read_cache_mb
            .map_or_else(default_read_cache_bytes, |mb| mb << 20);
        tracing::debug!(read_cache_bytes = read_cache, "read cache");
        StoragePlan::Fjall {
            options,
            read_cache,
        }
    }
}

/// Opens storage as planned (`dir`: the data directory, for the embedded store) and an engine
/// on it, with its background work started.
fn open_engine(
    plan: &StoragePlan,
    dir: Option<&std::path::Path>,
    config: EngineConfig,
) -> anyhow::Result<Arc<Engine>> {
    let storage: Arc<dyn Storage> = match plan {
        StoragePlan::Memory => Arc::new(MemoryStorage::new()),
        StoragePlan::Postgres { url, options } => {
            // The URL may hold a password: it is never logged, nor put in error messages.
            let s = ferrodyn_postgres::PostgresStorage::connect(url, options.clone())
                .map_err(|e| anyhow::anyhow!("connecting to the --storage database: {e}"))?;
            Arc::new(s)
        }
        StoragePlan::Fjall {
            options,
            read_cache,
        } => {
            let dir = dir.context("no data directory")?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating data directory {}", dir.display()))?;
            let s = FjallStorage::open_with(dir, options.clone())
                .with_context(|| format!("opening data directory {}", dir.display()))?;
            if *read_cache == 0 {
                Arc::new(s)
            } else {
                Arc::new(CachedStorage::new(s, *read_cache))
            }
        }
    };
    let engine = Arc::new(Engine::open(storage, config).context("opening the engine")?);
    engine.start_background();
    Ok(engine)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::dynamodb_local_args;

    #[test]
    fn serving_raises_the_soft_open_file_limit_to_the_hard_one() {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let low = hard.min(256);
        setrlimit(Resource::RLIMIT_NOFILE, low, hard).unwrap();
        super::raise_open_file_limit();
        let (soft, hard_after) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(hard_after, hard);
        assert_eq!(soft, hard.min(1 << 20));
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dynamodb_local_command_lines() {
        let serve = ["f", "serve", "--auth", "none", "--host", "0.0.0.0"];
        let with = |rest: &[&str]| {
            let mut v = args(&serve);
            v.extend(args(rest));
            v
        };
        assert_eq!(
            dynamodb_local_args(args(&["f", "-inMemory", "-port", "8001", "-sharedDb"])),
            with(&["--in-memory", "--port", "8001"])
        );
        assert_eq!(
            dynamodb_local_args(args(&[
                "f",
                "-Djava.library.path=./DynamoDBLocal_lib",
                "-jar",
                "DynamoDBLocal.jar",
                "-sharedDb",
                "-dbPath",
                "./data",
                "-cors",
                "*",
                "-delayTransientStatuses",
                "-optimizeDbBeforeStartup",
            ])),
            with(&["--data-dir", "./data"])
        );
        assert_eq!(
            dynamodb_local_args(args(&["f", "-jar", "DynamoDBLocal.jar"])),
            with(&["--per-key-databases"])
        );
        assert_eq!(
            dynamodb_local_args(args(&["f", "-inMemory", "-port", "8001"])),
            with(&["--per-key-databases", "--in-memory", "--port", "8001"])
        );
        assert_eq!(
            dynamodb_local_args(args(&["f", "-inMemory", "-help"])),
            with(&["--in-memory", "--help"])
        );
        assert_eq!(
            dynamodb_local_args(args(&["f", "serve", "--port", "1"])),
            args(&["f", "serve", "--port", "1"])
        );
    }
}
