//! DynamoDB's export and import file formats, as a small synchronous library (`std::io` only:
//! no async runtime, no engine, no HTTP).
//!
//! Ferrodyn's ExportTableToPointInTime / ImportTable and the `ferrodyn export` / `ferrodyn
//! import` commands write and read exactly the files DynamoDB writes to S3, with a directory
//! standing for the bucket:
//!
//! * **Records as lines** — DynamoDB JSON ([`json`]: `{"Item":{...}}`, and incremental changes
//!   with `Metadata.WriteTimestampMicros`, `Keys`, `NewImage`, `OldImage`), Amazon Ion text
//!   ([`ion`]: `$ion_1_0 {Item:{...}}`, sets as `$dynamodb_SS::[...]` etc.) and CSV for
//!   imports ([`csv`]: header line or `HeaderList`, key columns typed, other columns strings).
//!   Attribute values always go through ferrodyn-protocol's codec, so an imported item is
//!   checked by the same rules, with the same messages, as a PutItem.
//! * **Compression** ([`compress`]) — GZIP, ZSTD and NONE readers; exports write GZIP.
//! * **The export layout** ([`ExportWriter`]) — `AWSDynamoDB/<export-id>/data/*.json.gz`,
//!   `manifest-files.json`, `manifest-summary.json`, `_started`; crash-safe (temporary names
//!   and renames, the summary last).
//! * **The import side** ([`ImportSource`]) — the files under a key prefix (or the data files
//!   of the exports found there), read record by record as `Result<Record, LineError>`, with a
//!   [`Position`] to resume an interrupted import without loading a record twice. A bad line,
//!   an item over 400 KB or a truncated file is an error for that record (or the rest of that
//!   file), never a panic.
//!
//! Not owned: key-schema checks (missing or mistyped key attributes, empty key values), which
//! need the table and belong to the caller, as do S3 itself and the ARNs.
//!
//! ```
//! use std::time::SystemTime;
//! use ferrodyn_dataio::{
//!     export::new_export_id, Compression, ExportFormat, ExportKind, ExportSpec, ExportWriter,
//!     FileLimits, ImportSource, Position, ReadOptions,
//! };
//! use ferrodyn_model::{AttributeValue, Item};
//!
//! let bucket = tempfile::tempdir()?;
//! let now = SystemTime::now();
//! let export_id = new_export_id(now);
//! let table_arn = "arn:aws:dynamodb:us-east-1:000000000000:table/Books".to_string();
//! let spec = ExportSpec {
//!     export_arn: format!("{table_arn}/export/{export_id}"),
//!     export_id,
//!     table_arn,
//!     table_id: "0b8a1c52-0000-4000-8000-000000000000".into(),
//!     s3_bucket: "my-bucket".into(),
//!     s3_prefix: Some("exports".into()),
//!     s3_sse_algorithm: Some("AES256".into()),
//!     s3_sse_kms_key_id: None,
//!     format: ExportFormat::DynamoDbJson,
//!     kind: ExportKind::Full { export_time: now },
//!     start_time: now,
//! };
//! let mut writer = ExportWriter::create(bucket.path(), spec, FileLimits::default())?;
//! let item: Item = [("pk".to_string(), AttributeValue::S("book-1".into()))].into();
//! writer.write_item(&item)?;
//! let summary = writer.finish(SystemTime::now())?;
//! assert_eq!(summary.item_count, 1);
//!
//! // Import it back: the prefix holds an export, so its manifest is followed.
//! let source = ImportSource::open(
//!     bucket.path(),
//!     "exports/",
//!     ReadOptions::new(ExportFormat::DynamoDbJson.as_input(), Compression::Gzip),
//! )?;
//! let items: Vec<Item> = source
//!     .items(Position::START)
//!     .map(|(_position, result)| result.expect("a valid line"))
//!     .collect();
//! assert_eq!(items, vec![item]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod compress;
pub mod csv;
mod error;
pub mod export;
pub mod format;
mod import;
pub mod ion;
pub mod json;
mod keys;
mod lines;
mod read;

pub use error::{LineError, LineErrorKind, SourceError};
pub use export::{
    ExportKind, ExportSpec, ExportWriter, FileLimits, ManifestEntry, ManifestSummary,
};
pub use format::{
    ChangeRecord, Compression, ExportFormat, ExportType, ExportViewType, InputFormat, Record,
};
pub use import::{ImportSource, Position, Records, SourceFile, MAX_SOURCE_FILES};
pub use keys::TEMP_SUFFIX;
pub use lines::MAX_LINE_BYTES;
pub use read::{Location, ReadOptions, RecordReader, ITEM_TOO_LARGE, MAX_ITEM_BYTES};
