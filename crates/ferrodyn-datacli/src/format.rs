//! The file-format seam of `export` and `import`: an [`ItemWriter`] that takes items one by one
//! and lays out files, and a reader that yields a file's items with their line numbers (or why
//! a line is bad). Everything else in export and import is format-agnostic.
//!
//! DynamoDB JSON and Ion are ferrodyn-dataio's: DynamoDB's export layout
//! (`AWSDynamoDB/<id>/manifest-summary.json`, `manifest-files.json`, `data/*.json.gz` or
//! `*.ion.gz`) on the way out, and ImportTable's readers (DynamoDB JSON, Ion, CSV; gzip, zstd)
//! on the way in. CSV exports are written here (a header of attribute names, key attributes
//! first; see [`csv_cell`] for what a cell holds).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use ferrodyn_dataio::{
    Compression as DataioCompression, ExportFormat, ExportKind, ExportSpec, ExportWriter,
    FileLimits, ImportSource, InputFormat, Location, ManifestEntry,
    ReadOptions as DataioReadOptions, RecordReader,
};
use ferrodyn_model::ScalarType;
use serde_json::{Map, Value};

use crate::transfer::Item;
use crate::{DataError, Result};

/// File format of an export or an import.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One `{"Item":{...}}` object of DynamoDB JSON per line, in DynamoDB's export layout.
    DynamodbJson,
    /// Amazon Ion text, in DynamoDB's export layout.
    Ion,
    /// Comma-separated values with a header line.
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DynamodbJson => "DYNAMODB_JSON",
            Format::Ion => "ION",
            Format::Csv => "CSV",
        }
    }
}

/// Compression of data files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// From a file name's extension: `.gz` gzip, `.zst` zstd, anything else none.
    pub fn of_path(path: &Path) -> Compression {
        match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst") | Some("zstd") => Compression::Zstd,
            _ => Compression::None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
            Compression::None => "",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DynamoDB JSON values

/// An item as DynamoDB JSON (`{"pk":{"S":"a"},...}`).
pub fn item_to_json(item: &Item) -> Value {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    let mut m = Map::new();
    for k in keys {
        m.insert(k.clone(), value_to_json(&item[k]));
    }
    Value::Object(m)
}

fn b64(b: &Blob) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
}

pub fn value_to_json(v: &AttributeValue) -> Value {
    let one = |tag: &str, inner: Value| {
        let mut m = Map::new();
        m.insert(tag.to_owned(), inner);
        Value::Object(m)
    };
    match v {
        AttributeValue::S(s) => one("S", Value::String(s.clone())),
        AttributeValue::N(n) => one("N", Value::String(n.clone())),
        AttributeValue::B(b) => one("B", b64(b)),
        AttributeValue::Bool(b) => one("BOOL", Value::Bool(*b)),
        AttributeValue::Null(_) => one("NULL", Value::Bool(true)),
        AttributeValue::Ss(v) => one(
            "SS",
            Value::Array(v.iter().cloned().map(Value::String).collect()),
        ),
        AttributeValue::Ns(v) => one(
            "NS",
            Value::Array(v.iter().cloned().map(Value::String).collect()),
        ),
        AttributeValue::Bs(v) => one("BS", Value::Array(v.iter().map(b64).collect())),
        AttributeValue::L(l) => one("L", Value::Array(l.iter().map(value_to_json).collect())),
        AttributeValue::M(m) => one("M", item_to_json(m)),
        _ => one("NULL", Value::Bool(true)),
    }
}

/// An item from DynamoDB JSON; the error says what is wrong and where.
pub fn item_from_json(v: &Value) -> std::result::Result<Item, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| "an item must be a JSON object".to_owned())?;
    obj.iter()
        .map(|(k, v)| {
            value_from_json(v)
                .map(|av| (k.clone(), av))
                .map_err(|e| format!("attribute {k:?}: {e}"))
        })
        .collect()
}

fn blob(v: &Value) -> std::result::Result<Blob, String> {
    let s = v.as_str().ok_or("a binary value must be a base64 string")?;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(Blob::new)
        .map_err(|e| format!("invalid base64: {e}"))
}

fn strings(v: &Value, what: &str) -> std::result::Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("{what} must be an array"))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{what} must hold strings"))
        })
        .collect()
}

pub fn value_from_json(v: &Value) -> std::result::Result<AttributeValue, String> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or("a value must be an object with exactly one type key (S, N, B, ...)")?;
    let (tag, inner) = obj.iter().next().ok_or("empty value")?;
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str().ok_or("S must be a string")?.to_owned()),
        "N" => {
            let n = inner.as_str().ok_or("N must be a string")?;
            if n.is_empty() || n.parse::<f64>().is_err() {
                return Err(format!("N {n:?} is not a number"));
            }
            AttributeValue::N(n.to_owned())
        }
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or("BOOL must be true or false")?),
        "NULL" => {
            if inner != &Value::Bool(true) {
                return Err("NULL must be true".into());
            }
            AttributeValue::Null(true)
        }
        "SS" => AttributeValue::Ss(strings(inner, "SS")?),
        "NS" => AttributeValue::Ns(strings(inner, "NS")?),
        "BS" => AttributeValue::Bs(
            inner
                .as_array()
                .ok_or("BS must be an array")?
                .iter()
                .map(blob)
                .collect::<std::result::Result<_, _>>()?,
        ),
        "L" => AttributeValue::L(
            inner
                .as_array()
                .ok_or("L must be an array")?
                .iter()
                .map(value_from_json)
                .collect::<std::result::Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        other => return Err(format!("unknown type {other:?}")),
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

/// A file an export wrote.
#[derive(Clone, Debug)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub items: u64,
    pub bytes: u64,
}

/// Takes an export's items one by one; `finish` completes the files (manifests included).
pub trait ItemWriter: Send {
    fn write(&mut self, item: &Item) -> io::Result<()>;
    fn finish(self: Box<Self>) -> io::Result<Vec<WrittenFile>>;
}

/// What an export writer needs to know about its table.
pub struct ExportInfo {
    pub table_arn: String,
    pub table_id: String,
    /// Key attribute names, hash first (CSV puts them first).
    pub key_names: Vec<String>,
}

/// Checks that `format` can be written with `compression`: DynamoDB's export layout is always
/// gzip; CSV is gzip or plain.
pub fn check_export_compression(format: Format, compression: Compression) -> Result<()> {
    match (format, compression) {
        (Format::DynamodbJson | Format::Ion, Compression::Gzip) => Ok(()),
        (Format::DynamodbJson | Format::Ion, _) => Err(DataError::Usage(
            "DynamoDB's export layout is gzip-compressed; --compression gzip is the only choice \
             for dynamodb-json and ion"
                .into(),
        )),
        (Format::Csv, Compression::Zstd) => Err(DataError::Usage(
            "CSV exports are gzip-compressed or plain (--compression gzip or none)".into(),
        )),
        (Format::Csv, _) => Ok(()),
    }
}

/// A writer for `format` in `dir` (created if missing).
pub fn export_writer(
    dir: &Path,
    format: Format,
    compression: Compression,
    info: ExportInfo,
) -> Result<Box<dyn ItemWriter>> {
    check_export_compression(format, compression)?;
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir.display().to_string(), e))?;
    match format {
        Format::DynamodbJson => Ok(Box::new(LayoutExport::create(
            dir,
            ExportFormat::DynamoDbJson,
            info,
        )?)),
        Format::Ion => Ok(Box::new(LayoutExport::create(
            dir,
            ExportFormat::Ion,
            info,
        )?)),
        Format::Csv => Ok(Box::new(CsvExport::create(dir, compression, info)?)),
    }
}

/// Counts bytes written through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Sink = Box<dyn Write + Send>;

fn open_sink(path: &Path, compression: Compression) -> io::Result<Sink> {
    let file = BufWriter::new(File::create(path)?);
    Ok(match compression {
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        )),
        _ => Box::new(file),
    })
}

/// DynamoDB JSON or Ion in DynamoDB's export layout, written by ferrodyn-dataio.
struct LayoutExport {
    root: PathBuf,
    writer: ExportWriter,
}

impl LayoutExport {
    fn create(dir: &Path, format: ExportFormat, info: ExportInfo) -> Result<LayoutExport> {
        let now = SystemTime::now();
        let export_id = ferrodyn_dataio::export::new_export_id(now);
        let spec = ExportSpec {
            export_arn: format!("{}/export/{export_id}", info.table_arn),
            export_id,
            table_arn: info.table_arn,
            table_id: info.table_id,
            s3_bucket: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            s3_prefix: None,
            s3_sse_algorithm: None,
            s3_sse_kms_key_id: None,
            format,
            kind: ExportKind::Full { export_time: now },
            start_time: now,
        };
        let writer = ExportWriter::create(dir, spec, FileLimits::default())
            .map_err(|e| DataError::Failed(format!("{}: {e}", dir.display())))?;
        Ok(LayoutExport {
            root: dir.to_owned(),
            writer,
        })
    }
}

impl ItemWriter for LayoutExport {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        let item = crate::convert::to_model(item).map_err(io::Error::other)?;
        self.writer.write_item(&item)
    }

    fn finish(self: Box<Self>) -> io::Result<Vec<WrittenFile>> {
        let export_dir = self.root.join(self.writer.export_key());
        self.writer.finish(SystemTime::now())?;
        // Data files with their item counts from the manifest, then the manifests.
        let manifest = std::fs::read_to_string(export_dir.join("manifest-files.json"))?;
        let mut out = Vec::new();
        for line in manifest.lines().filter(|l| !l.trim().is_empty()) {
            let entry = ManifestEntry::parse(line).map_err(io::Error::other)?;
            let path = self.root.join(&entry.data_file_s3_key);
            let bytes = std::fs::metadata(&path)?.len();
            out.push(WrittenFile {
                path,
                items: entry.item_count,
                bytes,
            });
        }
        let mut names: Vec<_> = std::fs::read_dir(&export_dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect();
        names.sort();
        for path in names {
            let bytes = std::fs::metadata(&path)?.len();
            out.push(WrittenFile {
                path,
                items: 0,
                bytes,
            });
        }
        Ok(out)
    }
}

/// CSV: items go to a scratch file of JSON lines while the columns are collected, then the CSV
/// (header first) is written from it.
struct CsvExport {
    path: PathBuf,
    scratch_path: PathBuf,
    scratch: BufWriter<File>,
    compression: Compression,
    key_names: Vec<String>,
    columns: BTreeSet<String>,
    items: u64,
}

impl CsvExport {
    fn create(dir: &Path, compression: Compression, info: ExportInfo) -> Result<CsvExport> {
        let table = info
            .table_arn
            .rsplit('/')
            .next()
            .unwrap_or("table")
            .to_owned();
        let path = dir.join(format!("{table}.csv{}", compression.extension()));
        let scratch_path = dir.join(format!(".{table}.csv.partial"));
        let scratch = File::create(&scratch_path)
            .map(BufWriter::new)
            .map_err(|e| DataError::io(scratch_path.display().to_string(), e))?;
        Ok(CsvExport {
            path,
            scratch_path,
            scratch,
            compression,
            key_names: info.key_names,
            columns: BTreeSet::new(),
            items: 0,
        })
    }
}

/// A CSV cell: strings and numbers as they are, binary as base64, booleans `true`/`false`,
/// NULL as an empty cell, sets, lists and maps as their DynamoDB JSON (`{"SS":["a"]}`).
pub fn csv_cell(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b.as_ref()),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::Null(_) => String::new(),
        other => value_to_json(other).to_string(),
    }
}

/// RFC 4180 quoting: a field with a comma, quote, CR or LF is quoted, quotes doubled.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl ItemWriter for CsvExport {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        for k in item.keys() {
            if !self.columns.contains(k) {
                self.columns.insert(k.clone());
            }
        }
        serde_json::to_writer(&mut self.scratch, &item_to_json(item))?;
        self.scratch.write_all(b"\n")?;
        self.items += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Vec<WrittenFile>> {
        self.scratch.flush()?;
        let mut columns: Vec<String> = self
            .key_names
            .iter()
            .filter(|k| self.columns.contains(*k))
            .cloned()
            .collect();
        columns.extend(
            self.columns
                .iter()
                .filter(|c| !self.key_names.contains(c))
                .cloned(),
        );
        let mut out = Counting {
            inner: open_sink(&self.path, self.compression)?,
            bytes: 0,
        };
        let header: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
        writeln!(out, "{}", header.join(","))?;
        let scratch = BufReader::new(File::open(&self.scratch_path)?);
        for line in scratch.lines() {
            let value: Value = serde_json::from_str(&line?)?;
            let item = item_from_json(&value).map_err(io::Error::other)?;
            let row: Vec<String> = columns
                .iter()
                .map(|c| {
                    item.get(c)
                        .map(|v| csv_field(&csv_cell(v)))
                        .unwrap_or_default()
                })
                .collect();
            writeln!(out, "{}", row.join(","))?;
        }
        out.flush()?;
        drop(out);
        std::fs::remove_file(&self.scratch_path)?;
        let bytes = std::fs::metadata(&self.path)?.len();
        Ok(vec![WrittenFile {
            path: self.path.clone(),
            items: self.items,
            bytes,
        }])
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// One record of an import file: where it starts and its item, or why it is bad.
#[derive(Debug)]
pub struct Line {
    pub at: Location,
    pub item: std::result::Result<Item, String>,
}

/// A data file to import.
#[derive(Clone, Debug)]
pub struct DataFile {
    pub path: PathBuf,
    /// The path relative to the import directory, with `/` separators: its name in checkpoints
    /// and reports.
    pub name: String,
    pub size: u64,
    /// Records the export manifest says the file holds, for files of an export.
    pub items: Option<u64>,
}

/// The data files under `dir`, as ImportTable lists an S3 prefix: the data files of the exports
/// whose manifests are there (only those, in manifest order), otherwise every file in key order.
/// Hidden files (a checkpoint, say) are left out.
pub fn list_files(dir: &Path) -> Result<Vec<DataFile>> {
    let meta = std::fs::metadata(dir).map_err(|e| DataError::io(dir.display().to_string(), e))?;
    if !meta.is_dir() {
        return Err(DataError::Usage(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let options = DataioReadOptions::new(InputFormat::DynamoDbJson, DataioCompression::None);
    let source = ImportSource::open(dir, "", options)
        .map_err(|e| DataError::Failed(format!("{}: {e}", dir.display())))?;
    Ok(source
        .files()
        .iter()
        .filter(|f| !f.key.rsplit('/').next().unwrap_or("").starts_with('.'))
        .map(|f| DataFile {
            path: f.path.clone(),
            name: f.key.clone(),
            size: f.size,
            items: f.manifest_item_count,
        })
        .collect())
}

/// How to read import files.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub format: Format,
    /// None: from each file's extension.
    pub compression: Option<Compression>,
    /// Types of the key attributes (CSV cells of other attributes are strings).
    pub key_types: HashMap<String, ScalarType>,
}

/// The records of one data file from `resume` on (`Location::default()`: from the start). The
/// iterator is not `Send`: make it on the thread that reads it.
pub fn read_file(
    file: &DataFile,
    options: &ReadOptions,
    resume: Location,
) -> Result<Box<dyn Iterator<Item = Line>>> {
    let raw = File::open(&file.path).map_err(|e| DataError::io(file.name.clone(), e))?;
    let compression = match options
        .compression
        .unwrap_or_else(|| Compression::of_path(&file.path))
    {
        Compression::Gzip => DataioCompression::Gzip,
        Compression::Zstd => DataioCompression::Zstd,
        Compression::None => DataioCompression::None,
    };
    let format = match options.format {
        Format::DynamodbJson => InputFormat::DynamoDbJson,
        Format::Ion => InputFormat::Ion,
        Format::Csv => InputFormat::Csv,
    };
    let mut dataio_options = DataioReadOptions::new(format, compression);
    dataio_options.key_types = options.key_types.clone();
    let reader = RecordReader::new(&file.name, raw, &dataio_options)
        .map_err(|e| DataError::io(file.name.clone(), e))?
        .resume_at(resume);
    Ok(Box::new(reader.filter_map(|(at, record)| {
        let item = match record {
            // A deletion in an incremental export loads nothing.
            Ok(record) => Ok(crate::convert::from_model(record.into_item()?)),
            Err(e) => Err(e.message),
        };
        Some(Line { at, item })
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_value() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            ".{0,8}".prop_map(AttributeValue::S),
            (-1000i64..1000).prop_map(|n| AttributeValue::N(n.to_string())),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| AttributeValue::B(Blob::new(b))),
            any::<bool>().prop_map(AttributeValue::Bool),
            Just(AttributeValue::Null(true)),
            prop::collection::btree_set(".{1,4}", 1..4)
                .prop_map(|s| AttributeValue::Ss(s.into_iter().collect())),
            prop::collection::btree_set(0u32..100, 1..4)
                .prop_map(|s| AttributeValue::Ns(s.into_iter().map(|n| n.to_string()).collect())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
                prop::collection::hash_map(".{1,4}", inner, 0..4).prop_map(AttributeValue::M),
            ]
        })
    }

    proptest! {
        /// Every value survives DynamoDB JSON both ways (CSV exports stage items this way).
        #[test]
        fn json_round_trip(item in prop::collection::hash_map(".{1,6}", arb_value(), 0..6)) {
            let text = item_to_json(&item).to_string();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(item_from_json(&back).unwrap(), item);
        }

        /// Arbitrary JSON never panics the value parser.
        #[test]
        fn arbitrary_json(s in "[\\[\\]{}\":,A-Z0-9a-z ]{0,40}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = item_from_json(&v);
            }
        }

        /// Rows this writer quotes are read back by ImportTable's CSV reader (ferrodyn-dataio)
        /// as the same strings: commas, quotes and line breaks included.
        #[test]
        fn csv_rows_read_back(rows in prop::collection::vec(
            prop::collection::vec("[a-z,\"\n ]{1,6}", 3), 1..5)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut text = "a,b,c\n".to_owned();
            for r in &rows {
                let fields: Vec<String> = r.iter().map(|f| csv_field(f)).collect();
                text.push_str(&fields.join(","));
                text.push('\n');
            }
            let path = dir.path().join("x.csv");
            std::fs::write(&path, &text).unwrap();
            let file = DataFile { path, name: "x.csv".into(), size: text.len() as u64, items: None };
            let options = ReadOptions {
                format: Format::Csv,
                compression: None,
                key_types: HashMap::new(),
            };
            let items: Vec<Item> = read_file(&file, &options, Location::default())
                .unwrap()
                .map(|l| l.item.unwrap())
                .collect();
            prop_assert_eq!(items.len(), rows.len());
            for (item, row) in items.iter().zip(&rows) {
                for (name, want) in ["a", "b", "c"].iter().zip(row) {
                    prop_assert_eq!(item.get(*name), Some(&AttributeValue::S(want.clone())));
                }
            }
        }
    }

    #[test]
    fn bad_values_say_why() {
        let e = item_from_json(&serde_json::json!({"n": {"N": "x"}})).unwrap_err();
        assert_eq!(e, r#"attribute "n": N "x" is not a number"#);
        let e = item_from_json(&serde_json::json!({"v": {"Q": 1}})).unwrap_err();
        assert!(e.contains("unknown type \"Q\""), "{e}");
        assert!(item_from_json(&serde_json::json!([])).is_err());
    }

    #[test]
    fn export_compression_choices() {
        assert!(check_export_compression(Format::DynamodbJson, Compression::Gzip).is_ok());
        assert!(check_export_compression(Format::Ion, Compression::None).is_err());
        assert!(check_export_compression(Format::Csv, Compression::None).is_ok());
        assert!(check_export_compression(Format::Csv, Compression::Zstd).is_err());
    }
}
