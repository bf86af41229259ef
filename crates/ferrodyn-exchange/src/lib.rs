//! ExportTableToPointInTime, DescribeExport, ListExports, ImportTable, DescribeImport and
//! ListImports: background jobs that write a table (as of an instant, or its changes between
//! two) in DynamoDB's S3 export layout, and create a table from such files, CSV or Ion.
//!
//! S3 is a directory: bucket `B` is `<export dir>/B`, and keys are paths under it
//! (ferrodyn-dataio writes and reads the layout). The engine supplies consistent reads at an
//! instant (`Engine::read_table_at`, `Engine::read_changes`: point-in-time recovery must be
//! enabled, as on DynamoDB) and loading tables (`Engine::create_loading_table` …
//! `Engine::finish_load`); job descriptions are engine records (`Engine::put_record`), so they
//! live in the same storage as the tables and every node of a cluster sees them.
//!
//! Invariants:
//! - a job's record is written before its work starts and after it ends; while it runs it is
//!   refreshed (`heartbeat`) every few seconds, with an import's resume position;
//! - an export interrupted by a crash is marked `FAILED` (its files are incomplete: no
//!   `manifest-summary.json`, which DynamoDB's layout writes last); an import interrupted by a
//!   crash continues from its last saved position when the server starts again (loading an
//!   item twice writes the same value twice), and its table stays `CREATING` until then;
//! - on a shared engine a job belongs to the node that runs it; another node takes it over
//!   (import) or fails it (export) only once its heartbeat is older than [`STALE_SECS`];
//! - no path outside the export directory is ever read or written: bucket names are checked
//!   here, key prefixes by ferrodyn-dataio.

#![forbid(unsafe_code)]

mod export;
mod import;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ferrodyn_core::Engine;
use ferrodyn_model::Error;
use parking_lot::Mutex;

pub use export::{ExportRecord, ExportRequest, IncrementalSpec};
pub use import::{CsvSettings, ImportRecord, ImportRequest};

/// How often a running job saves its progress.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A job whose runner has not reported for this long is considered dead.
const STALE_SECS: f64 = 60.0;
/// Record spaces (`Engine::put_record`).
const EXPORTS: &str = "exports";
const IMPORTS: &str = "imports";

/// Settings of the export/import service.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    /// The directory that stands for S3: bucket `B` is its subdirectory `B`.
    pub export_dir: PathBuf,
    /// Shortest period of an incremental export (DynamoDB: 15 minutes).
    pub min_incremental: Duration,
    /// Longest period of an incremental export (DynamoDB: 24 hours).
    pub max_incremental: Duration,
}

impl ExchangeConfig {
    pub fn new(export_dir: impl Into<PathBuf>) -> ExchangeConfig {
        ExchangeConfig {
            export_dir: export_dir.into(),
            min_incremental: Duration::from_secs(15 * 60),
            max_incremental: Duration::from_secs(24 * 3600),
        }
    }
}

/// The export/import service of one engine (attached to it with `Engine::attach`).
pub struct Exchange {
    engine: Weak<Engine>,
    config: ExchangeConfig,
    /// Ids of the jobs this process runs.
    running: Mutex<HashSet<String>>,
}

use ferrodyn_core::now_epoch as now;

/// A job id as DynamoDB forms them: milliseconds (14 digits), a dash, 8 hex digits.
fn new_id() -> String {
    ferrodyn_dataio::export::new_export_id(std::time::SystemTime::now())
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

/// Checks an S3 bucket name (it becomes a directory name): DynamoDB's pattern, and nothing
/// that could leave the export directory.
fn check_bucket(bucket: &str) -> Result<(), Error> {
    let ok = bucket.len() <= 255
        && !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "1 validation error detected: Value '{bucket}' at 's3Bucket' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z0-9A-Z]+[\\.\\-\\w]*[a-z0-9A-Z]+$"
        )))
    }
}

/// Pages of a list by an opaque token (the last ARN of the previous page).
fn page<T: Clone>(
    all: &[T],
    arn: impl Fn(&T) -> &str,
    limit: usize,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), Error> {
    let start = match token {
        Some(t) => all
            .iter()
            .position(|x| arn(x) == t)
            .map(|i| i + 1)
            .ok_or_else(|| Error::validation(format!("Invalid NextToken: {t}")))?,
        None => 0,
    };
    let items: Vec<T> = all[start..].iter().take(limit).cloned().collect();
    let next = (start + items.len() < all.len())
        .then(|| items.last().map(|x| arn(x).to_owned()))
        .flatten();
    Ok((items, next))
}

impl Exchange {
    /// Starts the service for `engine`, attaches it, and resumes (imports) or fails (exports)
    /// the jobs a previous run left unfinished.
    pub fn start(engine: &Arc<Engine>, config: ExchangeConfig) -> Arc<Exchange> {
        let exchange = Arc::new(Exchange {
            engine: Arc::downgrade(engine),
            config,
            running: Mutex::new(HashSet::new()),
        });
        engine.attach(exchange.clone());
        if let Err(e) = exchange.recover(true) {
            tracing::error!(error = %e, "cannot recover export and import jobs");
        }
        exchange
    }

    fn engine(&self) -> Result<Arc<Engine>, Error> {
        self.engine
            .upgrade()
            .ok_or_else(|| Error::internal("the engine is shutting down"))
    }

    /// The directory of bucket `bucket`.
    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, Error> {
        check_bucket(bucket)?;
        Ok(self.config.export_dir.join(bucket))
    }

    /// The export directory (S3's stand-in).
    pub fn export_dir(&self) -> &Path {
        &self.config.export_dir
    }

    /// Fails exports and resumes imports whose runner is gone: at start on an embedded engine
    /// every unfinished job (nothing else runs them), otherwise those with a stale heartbeat.
    pub(crate) fn recover(self: &Arc<Self>, at_start: bool) -> Result<(), Error> {
        let engine = self.engine()?;
        let dead = |heartbeat: f64, id: &str| {
            !self.running.lock().contains(id)
                && ((at_start && !engine.is_shared()) || now() - heartbeat > STALE_SECS)
        };
        for mut e in self.exports()? {
            if e.status == "IN_PROGRESS" && dead(e.heartbeat, &e.id) {
                tracing::error!(export = %e.arn, "an export interrupted by a restart is marked FAILED");
                e.fail(
                    "InternalError",
                    "The export was interrupted by a restart of the server",
                );
                self.save_export(&e)?;
            }
        }
        for i in self.imports()? {
            if i.status == "IN_PROGRESS" && dead(i.heartbeat, &i.id) {
                tracing::warn!(import = %i.arn, "resuming an interrupted import");
                self.spawn_import(i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_cannot_leave_the_directory() {
        assert!(check_bucket("my-bucket.1").is_ok());
        for bad in ["", "..", "a/b", "-a", "a-", "a..b", "a\\b", "ä"] {
            assert!(check_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_follow_their_tokens() {
        let all: Vec<String> = (0..5).map(|i| format!("a{i}")).collect();
        let (p1, t1) = page(&all, |s| s, 2, None).unwrap();
        assert_eq!((p1.len(), t1.as_deref()), (2, Some("a1")));
        let (p3, t3) = page(&all, |s| s, 2, Some("a3")).unwrap();
        assert_eq!((p3, t3), (vec!["a4".to_string()], None));
        assert!(page(&all, |s| s, 2, Some("zz")).is_err());
    }
}
