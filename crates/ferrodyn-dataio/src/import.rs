//! The source side of ImportTable: which files under a bucket directory and key prefix to
//! load, and their records in a resumable order.
//!
//! Owns: listing (`S3KeyPrefix` semantics: every file whose key starts with the prefix, sorted
//! by key), following export manifests (a prefix that holds `manifest-summary.json` files is
//! read as those exports: the data files their `manifest-files.json` lists, in manifest order,
//! and nothing else), and [`Position`]s that let a caller resume without loading a record twice.
//!
//! Invariants: a key never resolves outside the bucket directory (manifests are untrusted);
//! files being written ([`TEMP_SUFFIX`]) are never listed; symbolic links are not followed.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use ferrodyn_model::Item;

use crate::error::{LineError, LineErrorKind, SourceError};
use crate::export::{ManifestEntry, ManifestSummary};
use crate::format::Record;
use crate::keys::{key_path, TEMP_SUFFIX};
use crate::read::{Location, ReadOptions, RecordReader};

/// Most files one import reads (DynamoDB's quota of S3 objects per import).
pub const MAX_SOURCE_FILES: usize = 50_000;

/// A place in an import: the index of a file in [`ImportSource::files`] and a [`Location`] in
/// it. Positions are totally ordered in reading order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub file: usize,
    pub line: u64,
    pub index: u32,
}

impl Position {
    /// The beginning of the import.
    pub const START: Position = Position {
        file: 0,
        line: 0,
        index: 0,
    };

    /// The first position after this one: where to resume once this record is loaded.
    pub fn after(self) -> Position {
        Position {
            index: self.index.saturating_add(1),
            ..self
        }
    }

    fn location(self) -> Location {
        Location {
            line: self.line,
            index: self.index,
        }
    }
}

/// One file to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Its S3 key (path under the bucket directory, `/`-separated).
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
    /// Records the export manifest says it holds, for files of an export.
    pub manifest_item_count: Option<u64>,
}

/// The files of one import and how to read them.
#[derive(Debug, Clone)]
pub struct ImportSource {
    files: Vec<SourceFile>,
    exports: Vec<ManifestSummary>,
    options: ReadOptions,
}

impl ImportSource {
    /// Lists the files under `bucket_dir` whose keys start with `key_prefix` (see the module
    /// docs for how exports are recognised).
    pub fn open(
        bucket_dir: &Path,
        key_prefix: &str,
        options: ReadOptions,
    ) -> Result<ImportSource, SourceError> {
        let listed = list(bucket_dir, key_prefix)?;
        let summaries: Vec<&(String, PathBuf, u64)> = listed
            .iter()
            .filter(|(key, _, _)| is_summary_key(key))
            .collect();
        if summaries.is_empty() {
            if listed.len() > MAX_SOURCE_FILES {
                return Err(too_many());
            }
            let files = listed
                .into_iter()
                .map(|(key, path, size)| SourceFile {
                    key,
                    path,
                    size,
                    manifest_item_count: None,
                })
                .collect();
            return Ok(ImportSource {
                files,
                exports: Vec::new(),
                options,
            });
        }
        let mut files = Vec::new();
        let mut exports = Vec::new();
        let mut seen = HashSet::new();
        for (summary_key, summary_path, _) in summaries {
            let (summary, entries) = read_export(bucket_dir, summary_key, summary_path)?;
            for (entry, key, path) in entries {
                if !seen.insert(key.clone()) {
                    continue;
                }
                let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
                files.push(SourceFile {
                    key,
                    path,
                    size,
                    manifest_item_count: Some(entry.item_count),
                });
                if files.len() > MAX_SOURCE_FILES {
                    return Err(too_many());
                }
            }
            exports.push(summary);
        }
        Ok(ImportSource {
            files,
            exports,
            options,
        })
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The summaries of the exports being read (empty for plain files).
    pub fn exports(&self) -> &[ManifestSummary] {
        &self.exports
    }

    pub fn options(&self) -> &ReadOptions {
        &self.options
    }

    /// Every record from `from` on (use [`Position::START`], or [`Position::after`] of the last
    /// record a previous run loaded).
    pub fn records(&self, from: Position) -> Records<'_> {
        Records {
            source: self,
            from,
            file: from.file,
            reader: None,
        }
    }

    /// The items to load from `from` on: items, and the new images of changes; deletions of an
    /// incremental export load nothing and are skipped.
    pub fn items(
        &self,
        from: Position,
    ) -> impl Iterator<Item = (Position, Result<Item, LineError>)> + '_ {
        self.records(from)
            .filter_map(|(position, record)| match record {
                Ok(record) => record.into_item().map(|item| (position, Ok(item))),
                Err(e) => Some((position, Err(e))),
            })
    }
}

/// The records of an [`ImportSource`], file after file.
pub struct Records<'a> {
    source: &'a ImportSource,
    from: Position,
    file: usize,
    reader: Option<RecordReader>,
}

impl Iterator for Records<'_> {
    type Item = (Position, Result<Record, LineError>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(reader) = &mut self.reader {
                if let Some((location, record)) = reader.next() {
                    let position = Position {
                        file: self.file,
                        line: location.line,
                        index: location.index,
                    };
                    return Some((position, record));
                }
                self.reader = None;
                self.file += 1;
            }
            let file = self.source.files.get(self.file)?;
            let opened = File::open(&file.path)
                .and_then(|f| RecordReader::new(&file.key, f, &self.source.options));
            match opened {
                Ok(reader) => {
                    let reader = if self.file == self.from.file {
                        reader.resume_at(self.from.location())
                    } else {
                        reader
                    };
                    self.reader = Some(reader);
                }
                Err(e) => {
                    let position = Position {
                        file: self.file,
                        line: 0,
                        index: 0,
                    };
                    self.file += 1;
                    let error = LineError {
                        file: file.key.clone(),
                        line: 0,
                        kind: LineErrorKind::Io,
                        message: format!("The file could not be read: {e}"),
                    };
                    return Some((position, Err(error)));
                }
            }
        }
    }
}

fn too_many() -> SourceError {
    SourceError::InvalidArgument(format!(
        "The import source holds more than {MAX_SOURCE_FILES} objects"
    ))
}

fn is_summary_key(key: &str) -> bool {
    let mut parts = key.rsplit('/');
    parts.next() == Some("manifest-summary.json")
        && parts.next().is_some()
        && parts.next() == Some("AWSDynamoDB")
}

/// Reads one export's summary and file manifest; data file keys are resolved against the
/// bucket, or failing that against where the export directory actually is (an export copied
/// under another prefix still reads).
type ExportFiles = (ManifestSummary, Vec<(ManifestEntry, String, PathBuf)>);

fn read_export(
    bucket_dir: &Path,
    summary_key: &str,
    summary_path: &Path,
) -> Result<ExportFiles, SourceError> {
    let bad = |key: &str, message: String| SourceError::Manifest {
        key: key.to_string(),
        message,
    };
    let text = read_small(summary_path).map_err(|e| bad(summary_key, e))?;
    let summary = ManifestSummary::parse(&text).map_err(|e| bad(summary_key, e))?;
    // `<base>/AWSDynamoDB/<id>/manifest-summary.json`: the export directory and its base.
    let export_dir = &summary_key[..summary_key.len() - "/manifest-summary.json".len()];
    let base = export_dir
        .rsplit_once('/')
        .map_or("", |(aws, _)| aws)
        .strip_suffix("AWSDynamoDB")
        .unwrap_or("");
    let relocate = |key: &str| -> Option<String> {
        let at = key.find("AWSDynamoDB/")?;
        Some(format!("{base}{}", &key[at..]))
    };
    let resolve = |key: &str| -> Result<(String, PathBuf), SourceError> {
        let direct = key_path(bucket_dir, key).map_err(|e| bad(summary_key, e.to_string()))?;
        if is_regular_file(&direct) {
            return Ok((key.to_string(), direct));
        }
        if let Some(moved) = relocate(key) {
            let path = key_path(bucket_dir, &moved).map_err(|e| bad(summary_key, e.to_string()))?;
            if is_regular_file(&path) {
                return Ok((moved, path));
            }
        }
        Err(bad(summary_key, format!("the file {key} does not exist")))
    };
    let files_key = format!("{export_dir}/manifest-files.json");
    let (files_key, files_path) =
        resolve(&summary.manifest_files_s3_key).or_else(|_| resolve(&files_key))?;
    let text = read_small(&files_path).map_err(|e| bad(&files_key, e))?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry = ManifestEntry::parse(line)
            .map_err(|e| bad(&files_key, format!("line {}: {e}", n + 1)))?;
        let (key, path) = resolve(&entry.data_file_s3_key)?;
        entries.push((entry, key, path));
    }
    Ok((summary, entries))
}

/// Manifests are small; one that is not is not a manifest.
fn read_small(path: &Path) -> Result<String, String> {
    const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;
    let len = fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > MAX_MANIFEST_BYTES {
        return Err("the manifest is too large".to_string());
    }
    fs::read_to_string(path).map_err(|e| e.to_string())
}

fn is_regular_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

/// Every regular file under `bucket_dir` whose key starts with `prefix`, sorted by key.
fn list(bucket_dir: &Path, prefix: &str) -> Result<Vec<(String, PathBuf, u64)>, SourceError> {
    // Walk only the deepest directory the prefix names entirely.
    let dir_part = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
    let start = if dir_part.is_empty() {
        bucket_dir.to_path_buf()
    } else {
        match key_path(bucket_dir, dir_part) {
            Ok(p) => p,
            // A prefix no key can have (`a//b`, `../x`) matches nothing.
            Err(_) => return Ok(Vec::new()),
        }
    };
    let mut out = Vec::new();
    let mut stack = vec![(start, dir_part.to_string())];
    while let Some((dir, key)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let child_key = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}/{name}")
            };
            let meta = entry.metadata()?;
            if meta.is_dir() {
                // Descend only where keys can still match the prefix.
                let as_dir = format!("{child_key}/");
                if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                    stack.push((entry.path(), child_key));
                }
            } else if meta.is_file()
                && child_key.starts_with(prefix)
                && !name.ends_with(TEMP_SUFFIX)
            {
                out.push((child_key, entry.path(), meta.len()));
                if out.len() > 4 * MAX_SOURCE_FILES {
                    return Err(too_many());
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
