//! The error vocabulary of DynamoDB as seen by the engine.
//!
//! Every layer converts its own failures into [`Error`]; exactly one place (the server's wire
//! module) turns an [`Error`] into an HTTP status, `__type` and `message`.

use crate::value::Item;

/// One reason in a `TransactionCanceledException`, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct CancellationReason {
    /// `None` for an action that did not fail.
    pub code: Option<String>,
    pub message: Option<String>,
    pub item: Option<Item>,
}

/// The exception a throttled request gets: provisioned tables and their indexes answer
/// `ProvisionedThroughputExceededException`, on-demand limits `ThrottlingException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleKind {
    ProvisionedThroughputExceeded,
    Throttling,
}

/// One entry of an exception's `ThrottlingReasons`: `reason` is
/// `<Table|Index><Read|Write><limit type>`, `resource` the table's or index's ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlingReason {
    pub reason: String,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("The conditional request failed")]
    ConditionalCheckFailed { item: Option<Item> },
    #[error("Transaction cancelled")]
    TransactionCanceled { reasons: Vec<CancellationReason> },
    #[error("{0}")]
    TransactionConflict(String),
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    /// A TransactWriteItems request whose ClientRequestToken belongs to one still running.
    #[error("{0}")]
    TransactionInProgress(String),
    #[error("{0}")]
    ItemCollectionSizeLimitExceeded(String),
    /// PartiQL INSERT of an item whose key already exists.
    #[error("{0}")]
    DuplicateItem(String),
    #[error("{0}")]
    AccessDenied(String),
    /// No resource-based policy (or not the expected revision) on a table or stream.
    #[error("{0}")]
    PolicyNotFound(String),
    /// The backup APIs' name for a missing table.
    #[error("{0}")]
    TableNotFound(String),
    /// The backup and restore APIs: no backup with that ARN.
    #[error("{0}")]
    BackupNotFound(String),
    /// A backup that is being created, deleted or restored from.
    #[error("{0}")]
    BackupInUse(String),
    /// A restore or import target table that exists already.
    #[error("{0}")]
    TableAlreadyExists(String),
    /// A table that a backup or restore operation cannot use now (being created or restored).
    #[error("{0}")]
    TableInUse(String),
    /// A point-in-time restore or export of a table without point-in-time recovery.
    #[error("{0}")]
    PointInTimeRecoveryUnavailable(String),
    /// A restore time outside the table's restorable window.
    #[error("{0}")]
    InvalidRestoreTime(String),
    /// UpdateContinuousBackups while the table's backups cannot be changed.
    #[error("{0}")]
    ContinuousBackupsUnavailable(String),
    /// DescribeExport of an unknown export.
    #[error("{0}")]
    ExportNotFound(String),
    /// DescribeImport of an unknown import.
    #[error("{0}")]
    ImportNotFound(String),
    /// An export time outside the table's restorable window.
    #[error("{0}")]
    InvalidExportTime(String),
    /// An export with the same ClientToken and different parameters.
    #[error("{0}")]
    ExportConflict(String),
    /// An import with the same ClientToken and different parameters.
    #[error("{0}")]
    ImportConflict(String),
    /// DynamoDB Streams: a shard iterator older than 15 minutes.
    #[error("{0}")]
    ExpiredIterator(String),
    /// DynamoDB Streams: reading before the oldest retained record of a shard.
    #[error("{0}")]
    TrimmedDataAccess(String),
    /// A table's or index's capacity is exhausted (`--enforce-capacity`).
    #[error("{message}")]
    Throttled {
        kind: ThrottleKind,
        message: String,
        reasons: Vec<ThrottlingReason>,
    },
    /// A bug or an I/O failure: answered as a 500 and logged with its source.
    #[error("{0}")]
    Internal(String),
    /// The storage engine refuses writes (a full disk, a failed journal sync): answered as a
    /// 500 `InternalServerError` whose message names the cause, since the client can act on
    /// it (retry later) and the engine already logged it.
    #[error("{0}")]
    StorageFault(String),
    /// Stored data failed an integrity check (a checksum, or an encoding that does not
    /// decode): answered as a 500 whose message names corruption, never served. The detail
    /// (keyspace, file) is logged, not sent.
    #[error("{0}")]
    Corrupt(String),
    /// A shared storage engine's transaction lost to a concurrent one, or this node's copy of
    /// the catalog was out of date: nothing was applied and the engine runs the operation
    /// again. Never leaves the engine: when retries run out it becomes `TransactionConflict`.
    #[error("{0}")]
    Retry(String),
}

impl Error {
    pub fn validation(msg: impl Into<String>) -> Self {
        Error::Validation(msg.into())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
