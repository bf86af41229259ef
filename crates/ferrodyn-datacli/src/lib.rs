//! Moving data in and out of any DynamoDB endpoint (Ferrodyn or Amazon DynamoDB) through the
//! public DynamoDB API, with the official AWS SDK: `copy`, `export`, `import`, `backup ...` and
//! `restore`. The `ferrodyn` binary only adds these subcommands to its command line and calls
//! [`run`]; nothing here knows about the server's internals.
//!
//! Conventions every command keeps:
//! - a command that changes something has `--dry-run`, which prints the plan (tables, item
//!   counts, files and sizes) and changes nothing;
//! - a destructive command (deleting a backup, writing into a table that already has items)
//!   asks on a terminal unless `--yes`, and refuses without a terminal;
//! - progress goes to stderr, the final summary line to stdout;
//! - exit status 0 on success, 1 on failure, 2 on a usage error (see [`DataError::exit_code`]);
//! - errors from the server print as `__type: message`; credentials are never printed.
#![forbid(unsafe_code)]

mod backup;
mod confirm;
mod conn;
mod convert;
mod copy;
mod export;
mod format;
mod import;
mod progress;
mod table;
mod timefmt;
mod transfer;

use clap::{Args, Subcommand};

pub use confirm::confirm;
pub use conn::Connection;
pub use progress::ProgressMode;
pub use timefmt::parse_time;

/// The data commands, flattened into the `ferrodyn` binary's subcommands.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Copy a table (schema, indexes, billing and every item) to a new or existing table, on the
    /// same or another endpoint (DescribeTable, CreateTable, parallel Scan, BatchWriteItem).
    Copy(copy::CopyArgs),
    /// Write a table's items to a directory in DynamoDB's export layout or as CSV (parallel
    /// Scan; with --at, RestoreTableToPointInTime into a temporary table first).
    Export(export::ExportArgs),
    /// Load the items of exported files (DynamoDB JSON, Ion or CSV) into a table with
    /// BatchWriteItem; resumable from a checkpoint file.
    Import(import::ImportArgs),
    /// Create, list, describe, delete and restore on-demand backups (CreateBackup, ListBackups,
    /// DescribeBackup, DeleteBackup, RestoreTableFromBackup).
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Restore a table as it was at a point in time into a new table
    /// (RestoreTableToPointInTime).
    Restore(backup::RestoreArgs),
}

/// Flags shared by every data command: where the endpoint is and how progress is shown.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// How progress is shown on stderr: `auto` (a bar on a terminal, plain lines otherwise),
    /// `bar`, `plain` or `none`.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Seconds between two plain progress lines.
    #[arg(long, default_value_t = 5.0, value_parser = positive_seconds)]
    pub progress_interval: f64,
}

fn positive_seconds(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err("expected a number of seconds above 0 (at most 86400)".to_owned()),
    }
}

/// Why a data command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The command line asks for something impossible (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// A destructive step was not confirmed (exit status 1).
    #[error("{0}")]
    Refused(String),
    /// The endpoint answered with an error: printed as `__type: message`.
    #[error("{operation}: {code}: {message}")]
    Api {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// The endpoint could not be reached, or another client-side failure of a request.
    #[error("{operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    /// Reading or writing local files.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Anything else that stops the command.
    #[error("{0}")]
    Failed(String),
}

impl DataError {
    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            DataError::Usage(_) => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> DataError {
        DataError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, DataError>;

/// Runs one data command to completion and returns the process exit status (0, 1 or 2); the
/// error, if any, has been printed on stderr.
pub fn run(command: DataCommand) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            DataCommand::Copy(args) => copy::run(args).await,
            DataCommand::Export(args) => export::run(args).await,
            DataCommand::Import(args) => import::run(args).await,
            DataCommand::Backup(cmd) => backup::run(cmd).await,
            DataCommand::Restore(args) => backup::restore(args).await,
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
