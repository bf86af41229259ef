//! The layout DynamoDB writes for ExportTableToPointInTime, under a bucket directory:
//!
//! ```text
//! <prefix>/AWSDynamoDB/<export-id>/_started
//! <prefix>/AWSDynamoDB/<export-id>/data/<random>.json.gz      (full exports; .ion.gz for ION)
//! <prefix>/AWSDynamoDB/data/<random>.json.gz                  (incremental exports)
//! <prefix>/AWSDynamoDB/<export-id>/manifest-files.json        (one JSON line per data file)
//! <prefix>/AWSDynamoDB/<export-id>/manifest-files.checksum
//! <prefix>/AWSDynamoDB/<export-id>/manifest-summary.checksum
//! <prefix>/AWSDynamoDB/<export-id>/manifest-summary.json
//! ```
//!
//! Owns: [`ExportWriter`] (data files rolled every N items or bytes, gzip-compressed, with the
//! MD5 and ETag that S3 would report for them) and [`ManifestSummary`] / [`ManifestEntry`], the
//! manifests' fields with DynamoDB's names and casing.
//!
//! Invariants (crash safety): every file is written under a temporary name ending in
//! [`TEMP_SUFFIX`](crate::keys::TEMP_SUFFIX), synced, then renamed; `manifest-summary.json` is
//! renamed into place last, so a directory holding one is a complete export, and readers
//! ([`ImportSource`](crate::ImportSource)) ignore data files no summary vouches for.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ferrodyn_model::calendar::{civil_from_days, days_from_civil};
use ferrodyn_model::size::item_size;
use ferrodyn_model::Item;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::error::SourceError;
use crate::format::{ChangeRecord, ExportFormat, ExportType, ExportViewType};
use crate::keys::{join, key_path, normalize_prefix, TEMP_SUFFIX};
use crate::{compress, ion, json as ddb_json};

/// `version` of a full export's summary.
pub const FULL_EXPORT_VERSION: &str = "2020-06-30";
/// `version` of an incremental export's summary.
pub const INCREMENTAL_EXPORT_VERSION: &str = "2023-08-01";

/// Which export this is, with what only that kind has.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportKind {
    /// The table as of `export_time`.
    Full { export_time: SystemTime },
    /// Changes in `[from, to)`, with the images `view` keeps.
    Incremental {
        from: SystemTime,
        to: SystemTime,
        view: ExportViewType,
    },
}

/// What the summary manifest says about an export, decided before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSpec {
    /// The export id: DynamoDB's form is [`new_export_id`].
    pub export_id: String,
    pub export_arn: String,
    pub table_arn: String,
    pub table_id: String,
    pub s3_bucket: String,
    pub s3_prefix: Option<String>,
    pub s3_sse_algorithm: Option<String>,
    pub s3_sse_kms_key_id: Option<String>,
    pub format: ExportFormat,
    pub kind: ExportKind,
    pub start_time: SystemTime,
}

/// When to start a new data file. Exports write at least one data file (empty when the table
/// is), as DynamoDB does for an empty partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Records per data file.
    pub max_items: u64,
    /// Uncompressed bytes per data file (a record is never split).
    pub max_bytes: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_items: 1_000_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One line of `manifest-files.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub item_count: u64,
    /// Base64 MD5 of the (compressed) data file.
    pub md5_checksum: String,
    /// The S3 ETag of a single-part upload: hex MD5.
    pub etag: String,
    pub data_file_s3_key: String,
}

impl ManifestEntry {
    pub fn to_json_line(&self) -> String {
        json!({
            "itemCount": self.item_count,
            "md5Checksum": self.md5_checksum,
            "etag": self.etag,
            "dataFileS3Key": self.data_file_s3_key,
        })
        .to_string()
    }

    pub fn parse(line: &str) -> Result<ManifestEntry, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let text = |name: &str| -> Result<String, String> {
            match v.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                None | Some(Value::Null) => Ok(String::new()),
                Some(_) => Err(format!("{name} is not a string")),
            }
        };
        let data_file_s3_key = text("dataFileS3Key")?;
        if data_file_s3_key.is_empty() {
            return Err("dataFileS3Key is missing".to_string());
        }
        Ok(ManifestEntry {
            item_count: v.get("itemCount").and_then(Value::as_u64).unwrap_or(0),
            md5_checksum: text("md5Checksum")?,
            etag: text("etag")?,
            data_file_s3_key,
        })
    }
}

/// `manifest-summary.json`. Times are kept as DynamoDB writes them
/// (`2020-11-04T07:28:34.028Z`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSummary {
    pub version: String,
    pub export_arn: String,
    pub start_time: String,
    pub end_time: String,
    pub table_arn: String,
    pub table_id: String,
    /// Full exports only.
    pub export_time: Option<String>,
    /// Incremental exports only.
    pub export_from_time: Option<String>,
    pub export_to_time: Option<String>,
    pub s3_bucket: String,
    pub s3_prefix: Option<String>,
    pub s3_sse_algorithm: Option<String>,
    pub s3_sse_kms_key_id: Option<String>,
    pub manifest_files_s3_key: String,
    pub billed_size_bytes: u64,
    pub item_count: u64,
    /// `DYNAMODB_JSON` or `ION`.
    pub output_format: String,
    /// Incremental exports only.
    pub output_view: Option<String>,
    /// `FULL_EXPORT` or `INCREMENTAL_EXPORT`.
    pub export_type: Option<String>,
}

impl ManifestSummary {
    /// The summary as DynamoDB lays it out: fields in its order, absent optional strings as
    /// `null` (`s3Prefix`, `s3SseKmsKeyId`), fields of the other export kind left out.
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        let s = |v: &str| Value::String(v.to_string());
        let opt = |v: &Option<String>| {
            v.as_deref()
                .map_or(Value::Null, |v| Value::String(v.to_string()))
        };
        m.insert("version".into(), s(&self.version));
        m.insert("exportArn".into(), s(&self.export_arn));
        m.insert("startTime".into(), s(&self.start_time));
        m.insert("endTime".into(), s(&self.end_time));
        m.insert("tableArn".into(), s(&self.table_arn));
        m.insert("tableId".into(), s(&self.table_id));
        if let Some(t) = &self.export_time {
            m.insert("exportTime".into(), s(t));
        }
        if let Some(t) = &self.export_from_time {
            m.insert("exportFromTime".into(), s(t));
        }
        if let Some(t) = &self.export_to_time {
            m.insert("exportToTime".into(), s(t));
        }
        m.insert("s3Bucket".into(), s(&self.s3_bucket));
        m.insert("s3Prefix".into(), opt(&self.s3_prefix));
        m.insert("s3SseAlgorithm".into(), opt(&self.s3_sse_algorithm));
        m.insert("s3SseKmsKeyId".into(), opt(&self.s3_sse_kms_key_id));
        m.insert("manifestFilesS3Key".into(), s(&self.manifest_files_s3_key));
        m.insert("billedSizeBytes".into(), self.billed_size_bytes.into());
        m.insert("itemCount".into(), self.item_count.into());
        m.insert("outputFormat".into(), s(&self.output_format));
        if let Some(v) = &self.output_view {
            m.insert("outputView".into(), s(v));
        }
        if let Some(t) = &self.export_type {
            m.insert("exportType".into(), s(t));
        }
        Value::Object(m).to_string()
    }

    pub fn parse(text: &str) -> Result<ManifestSummary, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !v.is_object() {
            return Err("the summary is not a JSON object".to_string());
        }
        let opt = |name: &str| -> Result<Option<String>, String> {
            match v.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{name} is not a string")),
            }
        };
        let req = |name: &str| -> Result<String, String> {
            opt(name)?.ok_or_else(|| format!("{name} is missing"))
        };
        let count = |name: &str| v.get(name).and_then(Value::as_u64).unwrap_or(0);
        Ok(ManifestSummary {
            version: opt("version")?.unwrap_or_default(),
            export_arn: opt("exportArn")?.unwrap_or_default(),
            start_time: opt("startTime")?.unwrap_or_default(),
            end_time: opt("endTime")?.unwrap_or_default(),
            table_arn: opt("tableArn")?.unwrap_or_default(),
            table_id: opt("tableId")?.unwrap_or_default(),
            export_time: opt("exportTime")?,
            export_from_time: opt("exportFromTime")?,
            export_to_time: opt("exportToTime")?,
            s3_bucket: opt("s3Bucket")?.unwrap_or_default(),
            s3_prefix: opt("s3Prefix")?,
            s3_sse_algorithm: opt("s3SseAlgorithm")?,
            s3_sse_kms_key_id: opt("s3SseKmsKeyId")?,
            manifest_files_s3_key: req("manifestFilesS3Key")?,
            billed_size_bytes: count("billedSizeBytes"),
            item_count: count("itemCount"),
            output_format: opt("outputFormat")?.unwrap_or_default(),
            output_view: opt("outputView")?,
            export_type: opt("exportType")?,
        })
    }
}

/// An export id in DynamoDB's form: 14 digits of milliseconds since the epoch, `-`, 8 random
/// hex digits (`01693685827463-2d8752fd`).
pub fn new_export_id(now: SystemTime) -> String {
    let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{millis:014}-{}", hex(&random_bytes::<4>()))
}

/// `2020-11-04T07:28:34.028Z`: the times of the summary manifest.
pub fn format_time(t: SystemTime) -> String {
    let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(e) => {
            let d = e.duration();
            let mut secs = -(d.as_secs() as i64);
            let mut millis = d.subsec_millis();
            if millis > 0 {
                secs -= 1;
                millis = 1000 - millis;
            }
            (secs, millis)
        }
    };
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Reads a time [`format_time`] wrote (fraction optional) back.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b.last() != Some(&b'Z')
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let millis = match &s[19..s.len() - 1] {
        "" => 0,
        frac if frac.starts_with('.') && frac.len() > 1 && frac.len() <= 10 => {
            let digits = &frac[1..];
            if !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{digits:0<3}");
            padded[..3].parse::<u64>().ok()?
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    let base = if secs >= 0 {
        UNIX_EPOCH + std::time::Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs())
    };
    Some(base + std::time::Duration::from_millis(millis))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: fall back to the clock, which still makes names unlikely to clash.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        for (k, x) in b.iter_mut().enumerate() {
            *x = (nanos >> ((k % 16) * 8)) as u8 ^ (k as u8).wrapping_mul(151);
        }
    }
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 26 lowercase base32 characters, like DynamoDB's data file names.
fn random_name() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    random_bytes::<26>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect()
}

/// Counts and hashes what passes through to the file.
struct HashingWriter<W: Write> {
    inner: W,
    md5: Md5,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.md5.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct OpenFile {
    key: String,
    path: PathBuf,
    temp: PathBuf,
    encoder: GzEncoder<HashingWriter<BufWriter<File>>>,
    items: u64,
    bytes: u64,
}

/// Writes one export: data files, then manifests. Dropping it without [`ExportWriter::finish`]
/// leaves no summary, so the partial export is never taken for a complete one.
pub struct ExportWriter {
    bucket_dir: PathBuf,
    spec: ExportSpec,
    limits: FileLimits,
    /// `<prefix>/AWSDynamoDB/<export-id>`
    export_key: String,
    /// Where data files go.
    data_key: String,
    current: Option<OpenFile>,
    entries: Vec<ManifestEntry>,
    item_count: u64,
    billed_size_bytes: u64,
    line: Vec<u8>,
}

impl ExportWriter {
    /// Starts an export under `bucket_dir` (the directory standing for `spec.s3_bucket`) and
    /// writes its `_started` marker.
    pub fn create(
        bucket_dir: &Path,
        spec: ExportSpec,
        limits: FileLimits,
    ) -> Result<ExportWriter, SourceError> {
        let prefix = normalize_prefix(spec.s3_prefix.as_deref().unwrap_or(""))?;
        if spec.export_id.is_empty()
            || !spec
                .export_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SourceError::InvalidArgument(format!(
                "Invalid export id {:?}",
                spec.export_id
            )));
        }
        let base = join(&prefix, "AWSDynamoDB");
        let export_key = join(&base, &spec.export_id);
        let data_key = match spec.kind {
            ExportKind::Full { .. } => join(&export_key, "data"),
            ExportKind::Incremental { .. } => join(&base, "data"),
        };
        fs::create_dir_all(key_path(bucket_dir, &data_key)?)?;
        let writer = ExportWriter {
            bucket_dir: bucket_dir.to_path_buf(),
            spec,
            limits: FileLimits {
                max_items: limits.max_items.max(1),
                max_bytes: limits.max_bytes.max(1),
            },
            export_key,
            data_key,
            current: None,
            entries: Vec::new(),
            item_count: 0,
            billed_size_bytes: 0,
            line: Vec::with_capacity(4096),
        };
        fs::create_dir_all(key_path(bucket_dir, &writer.export_key)?)?;
        writer.write_whole(&join(&writer.export_key, "_started"), b"")?;
        Ok(writer)
    }

    /// The key of the export's directory: `<prefix>/AWSDynamoDB/<export-id>`.
    pub fn export_key(&self) -> &str {
        &self.export_key
    }

    /// Writes one item of a full export.
    pub fn write_item(&mut self, item: &Item) -> io::Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match self.spec.format {
            ExportFormat::DynamoDbJson => ddb_json::write_item_line(item, &mut line),
            ExportFormat::Ion => ion::write_item_line(item, &mut line),
        }
        self.billed_size_bytes += item_size(item) as u64;
        let result = self.write_line(&line);
        self.line = line;
        result
    }

    /// Writes one change of an incremental export (with the images the spec's view keeps).
    pub fn write_change(&mut self, change: &ChangeRecord) -> io::Result<()> {
        let view = match self.spec.kind {
            ExportKind::Incremental { view, .. } => view,
            ExportKind::Full { .. } => ExportViewType::NewImage,
        };
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match self.spec.format {
            ExportFormat::DynamoDbJson => ddb_json::write_change_line(change, view, &mut line),
            ExportFormat::Ion => ion::write_change_line(change, view, &mut line),
        }
        let image = |i: &Option<Item>| i.as_ref().map_or(0, |i| item_size(i) as u64);
        self.billed_size_bytes += item_size(&change.keys) as u64 + image(&change.new_image);
        if view == ExportViewType::NewAndOldImages {
            self.billed_size_bytes += image(&change.old_image);
        }
        let result = self.write_line(&line);
        self.line = line;
        result
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some(f) = &self.current {
            if f.items >= self.limits.max_items
                || f.bytes + line.len() as u64 > self.limits.max_bytes && f.items > 0
            {
                self.close_file()?;
            }
        }
        if self.current.is_none() {
            self.open_file()?;
        }
        let Some(f) = self.current.as_mut() else {
            return Err(io::Error::other("no data file is open"));
        };
        f.encoder.write_all(line)?;
        f.items += 1;
        f.bytes += line.len() as u64;
        self.item_count += 1;
        Ok(())
    }

    fn open_file(&mut self) -> io::Result<()> {
        let name = format!("{}.{}.gz", random_name(), self.spec.format.extension());
        let key = join(&self.data_key, &name);
        let path = key_path(&self.bucket_dir, &key).map_err(io::Error::other)?;
        let temp = temp_path(&path);
        let file = File::create(&temp)?;
        let encoder = compress::gzip_encoder(HashingWriter {
            inner: BufWriter::with_capacity(256 * 1024, file),
            md5: Md5::new(),
        });
        self.current = Some(OpenFile {
            key,
            path,
            temp,
            encoder,
            items: 0,
            bytes: 0,
        });
        Ok(())
    }

    fn close_file(&mut self) -> io::Result<()> {
        let Some(f) = self.current.take() else {
            return Ok(());
        };
        let mut hashing = f.encoder.finish()?;
        hashing.flush()?;
        let digest = hashing.md5.finalize();
        let file = hashing.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&f.temp, &f.path)?;
        self.entries.push(ManifestEntry {
            item_count: f.items,
            md5_checksum: B64.encode(digest),
            etag: hex(&digest),
            data_file_s3_key: f.key,
        });
        Ok(())
    }

    /// Writes `bytes` to `key` crash-safely (temporary name, sync, rename).
    fn write_whole(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = key_path(&self.bucket_dir, key).map_err(io::Error::other)?;
        let temp = temp_path(&path);
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &path)
    }

    /// Closes the last data file, writes the manifests (the summary last) and returns the
    /// summary.
    pub fn finish(mut self, end_time: SystemTime) -> io::Result<ManifestSummary> {
        if self.current.is_none() && self.entries.is_empty() {
            // An empty table still gets one (empty) data file.
            self.open_file()?;
        }
        self.close_file()?;
        let mut files = String::new();
        for e in &self.entries {
            files.push_str(&e.to_json_line());
            files.push('\n');
        }
        let files_key = join(&self.export_key, "manifest-files.json");
        self.write_whole(&files_key, files.as_bytes())?;
        let files_md5 = hex(&Md5::digest(files.as_bytes()));
        self.write_whole(
            &join(&self.export_key, "manifest-files.checksum"),
            files_md5.as_bytes(),
        )?;

        let spec = &self.spec;
        let (version, export_time, from, to, view, export_type) = match &spec.kind {
            ExportKind::Full { export_time } => (
                FULL_EXPORT_VERSION,
                Some(format_time(*export_time)),
                None,
                None,
                None,
                ExportType::FullExport,
            ),
            ExportKind::Incremental { from, to, view } => (
                INCREMENTAL_EXPORT_VERSION,
                None,
                Some(format_time(*from)),
                Some(format_time(*to)),
                Some(view.as_str().to_string()),
                ExportType::IncrementalExport,
            ),
        };
        let summary = ManifestSummary {
            version: version.to_string(),
            export_arn: spec.export_arn.clone(),
            start_time: format_time(spec.start_time),
            end_time: format_time(end_time),
            table_arn: spec.table_arn.clone(),
            table_id: spec.table_id.clone(),
            export_time,
            export_from_time: from,
            export_to_time: to,
            s3_bucket: spec.s3_bucket.clone(),
            s3_prefix: spec.s3_prefix.clone(),
            s3_sse_algorithm: spec.s3_sse_algorithm.clone(),
            s3_sse_kms_key_id: spec.s3_sse_kms_key_id.clone(),
            manifest_files_s3_key: files_key,
            billed_size_bytes: self.billed_size_bytes,
            item_count: self.item_count,
            output_format: spec.format.as_str().to_string(),
            output_view: view,
            export_type: Some(export_type.as_str().to_string()),
        };
        let text = summary.to_json();
        let summary_md5 = hex(&Md5::digest(text.as_bytes()));
        self.write_whole(
            &join(&self.export_key, "manifest-summary.checksum"),
            summary_md5.as_bytes(),
        )?;
        self.write_whole(
            &join(&self.export_key, "manifest-summary.json"),
            text.as_bytes(),
        )?;
        if let Ok(dir) =
            File::open(key_path(&self.bucket_dir, &self.export_key).map_err(io::Error::other)?)
        {
            // Make the renames durable where the platform allows syncing a directory.
            let _ = dir.sync_all();
        }
        Ok(summary)
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_and_ids() {
        let t = UNIX_EPOCH + Duration::from_millis(1_604_474_914_028);
        assert_eq!(format_time(t), "2020-11-04T07:28:34.028Z");
        assert_eq!(parse_time("2020-11-04T07:28:34.028Z"), Some(t));
        assert_eq!(
            parse_time("2020-11-04T07:28:34Z"),
            Some(t - Duration::from_millis(28))
        );
        assert_eq!(parse_time("2020-11-04 07:28:34Z"), None);
        assert_eq!(
            format_time(UNIX_EPOCH - Duration::from_millis(1)),
            "1969-12-31T23:59:59.999Z"
        );
        let id = new_export_id(t);
        assert!(id.starts_with("01604474914028-"), "{id}");
        assert_eq!(id.len(), 23);
        assert_eq!(random_name().len(), 26);
    }

    #[test]
    fn summary_fields_and_casing() {
        let summary = ManifestSummary {
            version: FULL_EXPORT_VERSION.into(),
            export_arn:
                "arn:aws:dynamodb:us-east-1:123456789012:table/T/export/01234567890123-a1b2c3d4"
                    .into(),
            start_time: "2020-11-04T07:28:34.028Z".into(),
            end_time: "2020-11-04T07:33:43.897Z".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/T".into(),
            table_id: "id".into(),
            export_time: Some("2020-11-04T07:28:34.028Z".into()),
            export_from_time: None,
            export_to_time: None,
            s3_bucket: "bucket".into(),
            s3_prefix: Some("2020-Nov".into()),
            s3_sse_algorithm: Some("AES256".into()),
            s3_sse_kms_key_id: None,
            manifest_files_s3_key:
                "2020-Nov/AWSDynamoDB/01234567890123-a1b2c3d4/manifest-files.json".into(),
            billed_size_bytes: 0,
            item_count: 8,
            output_format: "DYNAMODB_JSON".into(),
            output_view: None,
            export_type: Some("FULL_EXPORT".into()),
        };
        let text = summary.to_json();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&text)
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "version",
                "exportArn",
                "startTime",
                "endTime",
                "tableArn",
                "tableId",
                "exportTime",
                "s3Bucket",
                "s3Prefix",
                "s3SseAlgorithm",
                "s3SseKmsKeyId",
                "manifestFilesS3Key",
                "billedSizeBytes",
                "itemCount",
                "outputFormat",
                "exportType"
            ]
        );
        assert!(text.contains("\"s3SseKmsKeyId\":null"));
        assert_eq!(ManifestSummary::parse(&text).unwrap(), summary);
        let entry = ManifestEntry {
            item_count: 8,
            md5_checksum: "sQMSpEILNgoQmarvDFonGQ==".into(),
            etag: "b10312a4420b360a1099aaef0c5a2719".into(),
            data_file_s3_key: "AWSDynamoDB/x/data/y.json.gz".into(),
        };
        assert_eq!(
            entry.to_json_line(),
            "{\"itemCount\":8,\"md5Checksum\":\"sQMSpEILNgoQmarvDFonGQ==\",\"etag\":\"b10312a4420b360a1099aaef0c5a2719\",\"dataFileS3Key\":\"AWSDynamoDB/x/data/y.json.gz\"}"
        );
        assert_eq!(ManifestEntry::parse(&entry.to_json_line()).unwrap(), entry);
    }
}
