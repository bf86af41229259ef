//! How database errors become [`StorageError`]s: the one place that reads SQLSTATE codes.
//!
//! * Serialization failures (40001), deadlocks (40P01) and lock timeouts (55P03) are
//!   [`StorageError::Conflict`]: nothing was applied, the caller runs its transaction again.
//! * A closed connection, an I/O error, connection exceptions (08xxx), administrator or crash
//!   shutdowns (57P01..57P03) and writes refused by a read-only server (25006, a standby that
//!   was not promoted) are [`StorageError::Unavailable`], and the client that saw them is
//!   discarded from its pool. So is CockroachDB's 40003 (statement completion unknown): like
//!   a connection lost during `COMMIT`, the outcome is unknown, so it is never retried.
//! * A database out of disk space (53100 `disk_full`) is [`StorageError::Refused`] with
//!   [`WriteFault::DiskFull`]: the client's InternalServerError names the cause; the database
//!   itself resumes once space is freed.
//! * Everything else is [`StorageError::Engine`].

use std::error::Error as _;

use ferrodyn_storage::{StorageError, WriteFault};

/// What an error means for the operation and for the connection that reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Conflict,
    Unavailable,
    Other,
}

/// 25P02: a statement sent after an earlier one failed in the same transaction. It says
/// nothing about the cause; the earlier error does.
pub(crate) fn is_aborted_transaction(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == "25P02")
}

pub(crate) fn classify(e: &tokio_postgres::Error) -> Class {
    if e.is_closed() {
        return Class::Unavailable;
    }
    match e.code().map(|c| c.code()) {
        Some("40001" | "40P01" | "55P03") => Class::Conflict,
        Some("57P01" | "57P02" | "57P03" | "25006" | "40003") => Class::Unavailable,
        Some(code) if code.starts_with("08") => Class::Unavailable,
        Some(_) => Class::Other,
        None => {
            let io = e
                .source()
                .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
            if io {
                Class::Unavailable
            } else {
                Class::Other
            }
        }
    }
}

/// The storage error for a database error, with `what` naming the operation.
pub(crate) fn to_storage(e: &tokio_postgres::Error, what: &str) -> StorageError {
    let msg = match e.as_db_error() {
        Some(db) => format!("{what}: {} ({})", db.message(), db.code().code()),
        None => format!("{what}: {e}"),
    };
    if e.code().is_some_and(|c| c.code() == "53100") {
        return StorageError::Refused(WriteFault::DiskFull(format!(
            "No space left on device: the database refused the write ({msg})"
        )));
    }
    match classify(e) {
        Class::Conflict => StorageError::Conflict(msg),
        Class::Unavailable => StorageError::Unavailable(msg),
        Class::Other => StorageError::Engine(msg),
    }
}

/// A copy of a storage error (they are not `Clone`: `Io` holds an `io::Error`).
pub(crate) fn duplicate(e: &StorageError) -> StorageError {
    match e {
        StorageError::Conflict(m) => StorageError::Conflict(m.clone()),
        StorageError::Unavailable(m) => StorageError::Unavailable(m.clone()),
        StorageError::KeyspaceNotFound(m) => StorageError::KeyspaceNotFound(m.clone()),
        StorageError::InvalidArgument(m) => StorageError::InvalidArgument(m.clone()),
        StorageError::Refused(f) => StorageError::Refused(f.clone()),
        other => StorageError::Engine(other.to_string()),
    }
}
