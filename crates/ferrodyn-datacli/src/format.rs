//! The file-format seam of `export` and `import`: an [`ItemWriter`] that takes items one by one
//! and lays out files, and a reader that yields a file's items with their line numbers (or why
//! a line is bad). Everything else in export and import is format-agnostic.
//!
//! Formats: DynamoDB JSON in DynamoDB's export layout (`AWSDynamoDB/<id>/manifest-summary.json`,
//! `manifest-files.json`, `data/*.json.gz`, one `{"Item":{...}}` per line), and CSV (a header
//! of attribute names, key attributes first; see [`csv_cell`] for what a cell holds).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use base64::Engine as _;
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

/// A writer for `format` in `dir` (created if missing).
pub fn export_writer(
    dir: &Path,
    format: Format,
    compression: Compression,
    info: ExportInfo,
) -> Result<Box<dyn ItemWriter>> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir.display().to_string(), e))?;
    if compression == Compression::Zstd {
        return Err(DataError::Usage(
            "zstd compression is not supported for export yet; use gzip or none".into(),
        ));
    }
    match format {
        Format::DynamodbJson => Ok(Box::new(JsonExport::create(dir, compression, info)?)),
        Format::Csv => Ok(Box::new(CsvExport::create(dir, compression, info)?)),
        Format::Ion => Err(DataError::Usage(
            "the Ion format is not supported yet; use dynamodb-json or csv".into(),
        )),
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

/// Items per data file before the next one starts.
const ITEMS_PER_FILE: u64 = 100_000;

/// DynamoDB JSON in the export layout.
struct JsonExport {
    root: PathBuf,
    prefix: String,
    compression: Compression,
    info: ExportInfo,
    start: std::time::SystemTime,
    current: Option<(PathBuf, Sink, u64)>,
    done: Vec<WrittenFile>,
    line: Vec<u8>,
}

fn random_hex(n: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut x = (nanos as u64) ^ (u64::from(std::process::id()) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    let mut out = String::new();
    while out.len() < n {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.push_str(&format!("{:016x}", x.wrapping_mul(0x2545_F491_4F6C_DD1D)));
    }
    out.truncate(n);
    out
}

impl JsonExport {
    fn create(dir: &Path, compression: Compression, info: ExportInfo) -> Result<JsonExport> {
        let start = std::time::SystemTime::now();
        let millis = start
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let id = format!("{millis:013}-{}", random_hex(8));
        let prefix = format!("AWSDynamoDB/{id}");
        let data = dir.join(&prefix).join("data");
        std::fs::create_dir_all(&data).map_err(|e| DataError::io(data.display().to_string(), e))?;
        Ok(JsonExport {
            root: dir.to_owned(),
            prefix,
            compression,
            info,
            start,
            current: None,
            done: Vec::new(),
            line: Vec::new(),
        })
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some((path, mut sink, items)) = self.current.take() {
            sink.flush()?;
            drop(sink);
            let bytes = std::fs::metadata(&path)?.len();
            self.done.push(WrittenFile { path, items, bytes });
        }
        Ok(())
    }
}

impl ItemWriter for JsonExport {
    fn write(&mut self, item: &Item) -> io::Result<()> {
        if self.current.as_ref().is_some_and(|c| c.2 >= ITEMS_PER_FILE) {
            self.close_current()?;
        }
        if self.current.is_none() {
            let name = format!("{}.json{}", random_hex(26), self.compression.extension());
            let path = self.root.join(&self.prefix).join("data").join(name);
            let sink = open_sink(&path, self.compression)?;
            self.current = Some((path, sink, 0));
        }
        let Some((_, sink, items)) = self.current.as_mut() else {
            return Ok(());
        };
        self.line.clear();
        let mut wrapper = Map::new();
        wrapper.insert("Item".into(), item_to_json(item));
        serde_json::to_writer(&mut self.line, &Value::Object(wrapper))?;
        self.line.push(b'\n');
        sink.write_all(&self.line)?;
        *items += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Vec<WrittenFile>> {
        self.close_current()?;
        let dir = self.root.join(&self.prefix);
        let mut files = String::new();
        let mut total_items = 0;
        let mut total_bytes = 0;
        for f in &self.done {
            let key = f
                .path
                .strip_prefix(&self.root)
                .unwrap_or(&f.path)
                .to_string_lossy()
                .replace('\\', "/");
            files.push_str(
                &serde_json::json!({"itemCount": f.items, "dataFileS3Key": key}).to_string(),
            );
            files.push('\n');
            total_items += f.items;
            total_bytes += f.bytes;
        }
        let files_path = dir.join("manifest-files.json");
        std::fs::write(&files_path, files)?;
        let time = |t: std::time::SystemTime| {
            crate::timefmt::format_time(&aws_sdk_dynamodb::primitives::DateTime::from(t))
        };
        let now = std::time::SystemTime::now();
        let summary = serde_json::json!({
            "version": "2020-06-30",
            "exportArn": format!("{}/export/{}", self.info.table_arn, self.prefix.trim_start_matches("AWSDynamoDB/")),
            "startTime": time(self.start),
            "endTime": time(now),
            "tableArn": self.info.table_arn,
            "tableId": self.info.table_id,
            "exportTime": time(self.start),
            "s3Prefix": Value::Null,
            "manifestFilesS3Key": format!("{}/manifest-files.json", self.prefix),
            "billedSizeBytes": total_bytes,
            "itemCount": total_items,
            "outputFormat": "DYNAMODB_JSON",
            "exportType": "FULL_EXPORT",
        });
        let summary_path = dir.join("manifest-summary.json");
        std::fs::write(&summary_path, serde_json::to_vec_pretty(&summary)?)?;
        let mut out = std::mem::take(&mut self.done);
        for p in [files_path, summary_path] {
            let bytes = std::fs::metadata(&p)?.len();
            out.push(WrittenFile {
                path: p,
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

/// One line (record) of an import file: its 1-based line number and its item or why it is bad.
#[derive(Debug)]
pub struct Line {
    pub line: u64,
    pub item: std::result::Result<Item, String>,
}

/// A data file to import, relative to the import directory.
#[derive(Clone, Debug)]
pub struct DataFile {
    pub path: PathBuf,
    /// The path relative to the import directory, with `/` separators: its name in checkpoints
    /// and reports.
    pub name: String,
    pub size: u64,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&e.path(), out)?;
        } else if ty.is_file()
            && !name.starts_with("manifest-")
            && !name.ends_with(".md5")
            && !name.ends_with(".checksum")
        {
            out.push(e.path());
        }
    }
    Ok(())
}

/// The data files under `dir`: those listed by the export manifests (`manifest-files.json`)
/// when there are any, otherwise every file (hidden files, `_*` markers and manifests left out),
/// in path order.
pub fn list_files(dir: &Path) -> Result<Vec<DataFile>> {
    let io_err = |e| DataError::io(dir.display().to_string(), e);
    let meta = std::fs::metadata(dir).map_err(io_err)?;
    if !meta.is_dir() {
        return Err(DataError::Usage(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let mut manifests = Vec::new();
    find_manifests(dir, &mut manifests).map_err(io_err)?;
    let mut paths = Vec::new();
    if manifests.is_empty() {
        walk(dir, &mut paths).map_err(io_err)?;
    } else {
        manifests.sort();
        for m in manifests {
            let text = std::fs::read_to_string(&m)
                .map_err(|e| DataError::io(m.display().to_string(), e))?;
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: Value = serde_json::from_str(line)
                    .map_err(|e| DataError::Failed(format!("{}:{}: {e}", m.display(), n + 1)))?;
                let key = v["dataFileS3Key"].as_str().ok_or_else(|| {
                    DataError::Failed(format!("{}:{}: no dataFileS3Key", m.display(), n + 1))
                })?;
                if key.split('/').any(|part| part == "..") {
                    return Err(DataError::Failed(format!(
                        "{}:{}: dataFileS3Key {key:?} leaves the directory",
                        m.display(),
                        n + 1
                    )));
                }
                paths.push(dir.join(key));
            }
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let size = std::fs::metadata(&path)
                .map_err(|e| DataError::io(path.display().to_string(), e))?
                .len();
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            Ok(DataFile { path, name, size })
        })
        .collect()
}

fn find_manifests(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ty = e.file_type()?;
        if ty.is_dir() {
            find_manifests(&e.path(), out)?;
        } else if e.file_name() == "manifest-files.json" {
            out.push(e.path());
        }
    }
    Ok(())
}

/// How to read import files.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    pub format: Format,
    /// None: from each file's extension.
    pub compression: Option<Compression>,
    /// Types of the key attributes (CSV cells of other attributes are strings).
    pub key_types: HashMap<String, ScalarAttributeType>,
}

/// The lines of one data file. I/O errors end the iteration with an error line.
pub fn read_file(
    file: &DataFile,
    options: &ReadOptions,
) -> Result<Box<dyn Iterator<Item = Line> + Send>> {
    let raw = File::open(&file.path).map_err(|e| DataError::io(file.name.clone(), e))?;
    let compression = options
        .compression
        .unwrap_or_else(|| Compression::of_path(&file.path));
    let reader: Box<dyn Read + Send> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(raw))),
        Compression::None => Box::new(raw),
        Compression::Zstd => {
            return Err(DataError::Usage(format!(
                "{}: zstd compression is not supported yet",
                file.name
            )))
        }
    };
    let lines = BufReader::new(reader).lines();
    match options.format {
        Format::DynamodbJson => Ok(Box::new(JsonLines { lines, n: 0 })),
        Format::Csv => Ok(Box::new(CsvLines {
            lines,
            n: 0,
            header: None,
            key_types: options.key_types.clone(),
        })),
        Format::Ion => Err(DataError::Usage(
            "the Ion format is not supported yet; use dynamodb-json or csv".into(),
        )),
    }
}

type RawLines = std::io::Lines<BufReader<Box<dyn Read + Send>>>;

struct JsonLines {
    lines: RawLines,
    n: u64,
}

/// An item line: `{"Item":{...}}`.
pub fn parse_json_line(text: &str) -> std::result::Result<Item, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let item = v
        .as_object()
        .and_then(|o| o.get("Item"))
        .ok_or("expected an object {\"Item\": {...}}")?;
    item_from_json(item)
}

impl Iterator for JsonLines {
    type Item = Line;
    fn next(&mut self) -> Option<Line> {
        loop {
            let raw = self.lines.next()?;
            self.n += 1;
            match raw {
                Err(e) => {
                    return Some(Line {
                        line: self.n,
                        item: Err(format!("unreadable: {e}")),
                    })
                }
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => {
                    return Some(Line {
                        line: self.n,
                        item: parse_json_line(&text),
                    })
                }
            }
        }
    }
}

struct CsvLines {
    lines: RawLines,
    n: u64,
    header: Option<Vec<String>>,
    key_types: HashMap<String, ScalarAttributeType>,
}

/// Splits one CSV record; a quoted field may span lines, so more lines are pulled as needed.
fn split_csv(
    first: String,
    more: &mut dyn FnMut() -> Option<String>,
) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut text = first;
    let mut quoted = false;
    let mut at_start = true;
    loop {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if quoted {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                } else {
                    field.push(c);
                }
            } else if c == '"' && at_start {
                quoted = true;
                at_start = false;
            } else if c == ',' {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            } else if c == '"' {
                return Err("a quote inside an unquoted field".into());
            } else {
                field.push(c);
                at_start = false;
            }
        }
        if !quoted {
            fields.push(field);
            return Ok(fields);
        }
        field.push('\n');
        text = more().ok_or("a quoted field is not closed before the end of the file")?;
    }
}

/// A cell of a key attribute with its declared type; other cells are strings.
fn csv_value(
    cell: &str,
    ty: Option<&ScalarAttributeType>,
) -> std::result::Result<AttributeValue, String> {
    match ty {
        Some(ScalarAttributeType::N) => {
            if cell.parse::<f64>().is_err() {
                return Err(format!("{cell:?} is not a number"));
            }
            Ok(AttributeValue::N(cell.to_owned()))
        }
        Some(ScalarAttributeType::B) => base64::engine::general_purpose::STANDARD
            .decode(cell)
            .map(|b| AttributeValue::B(Blob::new(b)))
            .map_err(|e| format!("invalid base64: {e}")),
        _ => Ok(AttributeValue::S(cell.to_owned())),
    }
}

impl Iterator for CsvLines {
    type Item = Line;
    fn next(&mut self) -> Option<Line> {
        loop {
            let raw = self.lines.next()?;
            self.n += 1;
            let start = self.n;
            let text = match raw {
                Ok(t) => t.strip_suffix('\r').map(str::to_owned).unwrap_or(t),
                Err(e) => {
                    return Some(Line {
                        line: start,
                        item: Err(format!("unreadable: {e}")),
                    })
                }
            };
            if text.is_empty() {
                continue;
            }
            let lines = &mut self.lines;
            let n = &mut self.n;
            let mut more = || {
                let next = lines.next()?.ok()?;
                *n += 1;
                Some(next)
            };
            let fields = match split_csv(text, &mut more) {
                Ok(f) => f,
                Err(e) => {
                    return Some(Line {
                        line: start,
                        item: Err(e),
                    })
                }
            };
            let Some(header) = &self.header else {
                self.header = Some(fields);
                continue;
            };
            if fields.len() != header.len() {
                return Some(Line {
                    line: start,
                    item: Err(format!(
                        "{} fields where the header has {}",
                        fields.len(),
                        header.len()
                    )),
                });
            }
            let mut item = Item::new();
            let mut error = None;
            for (name, cell) in header.iter().zip(fields) {
                if cell.is_empty() {
                    continue;
                }
                match csv_value(&cell, self.key_types.get(name)) {
                    Ok(v) => {
                        item.insert(name.clone(), v);
                    }
                    Err(e) => {
                        error = Some(format!("attribute {name:?}: {e}"));
                        break;
                    }
                }
            }
            return Some(Line {
                line: start,
                item: match error {
                    Some(e) => Err(e),
                    None => Ok(item),
                },
            });
        }
    }
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
        /// Every value survives DynamoDB JSON both ways.
        #[test]
        fn json_round_trip(item in prop::collection::hash_map(".{1,6}", arb_value(), 0..6)) {
            let line = serde_json::json!({"Item": item_to_json(&item)}).to_string();
            prop_assert_eq!(parse_json_line(&line).unwrap(), item);
        }

        /// Arbitrary lines never panic the parsers.
        #[test]
        fn arbitrary_lines(s in ".{0,60}") {
            let _ = parse_json_line(&s);
            let _ = split_csv(s, &mut || None);
        }

        /// Quoted fields come back as they were, commas, quotes and line breaks included.
        #[test]
        fn csv_fields_round_trip(fields in prop::collection::vec("[a-z,\"\n ]{0,6}", 1..5)) {
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            let joined = line.join(",");
            let mut parts = joined.split('\n').map(str::to_owned);
            let first = parts.next().unwrap();
            let mut rest = parts;
            prop_assert_eq!(split_csv(first, &mut || rest.next()).unwrap(), fields);
        }
    }

    #[test]
    fn bad_json_lines_say_why() {
        assert!(parse_json_line("{")
            .unwrap_err()
            .starts_with("invalid JSON"));
        assert!(parse_json_line(r#"{"pk":{"S":"a"}}"#)
            .unwrap_err()
            .contains("\"Item\""));
        let e = parse_json_line(r#"{"Item":{"n":{"N":"x"}}}"#).unwrap_err();
        assert_eq!(e, r#"attribute "n": N "x" is not a number"#);
        let e = parse_json_line(r#"{"Item":{"v":{"Q":1}}}"#).unwrap_err();
        assert!(e.contains("unknown type \"Q\""), "{e}");
    }
}
