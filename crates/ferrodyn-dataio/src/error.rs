//! Errors: one bad record ([`LineError`]) versus a source that cannot be used at all
//! ([`SourceError`]).

use std::fmt;
use std::io;

/// Why a record was not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineErrorKind {
    /// The text is not a valid record of the format, or a value breaks DynamoDB's rules.
    Invalid,
    /// The item is larger than 400 KB, or its text longer than the reader keeps.
    TooLarge,
    /// The file could not be read further (a truncated or corrupt compressed stream, an I/O
    /// failure); the rest of that file is skipped.
    Io,
}

/// One record that could not be loaded: where it is and why. The caller counts these and goes
/// on with the next record, as ImportTable does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The file's key (its path under the bucket directory, `/`-separated).
    pub file: String,
    /// 1-based line where the record starts (for an I/O error, the line being read).
    pub line: u64,
    pub kind: LineErrorKind,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for LineError {}

/// A source or destination that cannot be used at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A manifest that is not what DynamoDB writes, or that names files outside the export.
    #[error("invalid export manifest {key}: {message}")]
    Manifest { key: String, message: String },
    /// An argument the caller passed (a prefix, an export id) that cannot name a file.
    #[error("{0}")]
    InvalidArgument(String),
}
