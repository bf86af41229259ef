//! `ferrodyn import DIR --table T`: loads exported files with BatchWriteItem, several files at
//! once and several chunks of each file at once. Bad lines are reported (`file:line: reason`)
//! and skipped; the rest is loaded.
//!
//! Resuming: a checkpoint file (by default `DIR/.ferrodyn-import-T.json`) records, per data file,
//! the last record (line, and index among the records starting on that line) up to which every
//! record has been written or reported bad. It moves only over chunks that completed with none
//! still in flight before them ([`Frontier`]), and is saved at most every 200 ms and whenever a
//! file completes, so a rerun after an interruption skips what it covers and rewrites at most
//! the chunks written after its last save (puts of the same items: idempotent). It is deleted
//! when the import completes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::confirm::confirm;
use crate::convert::scalar_type;
use crate::format::{list_files, read_file, Compression, DataFile, Format, ReadOptions};
use crate::progress::{format_mb, Display, Progress};
use crate::table::{self, parse_key_spec, KeySpec};
use crate::transfer::{item_size, write_items, Item};
use crate::{CommonArgs, DataError, Result};
use ferrodyn_dataio::Location;
use ferrodyn_model::ScalarType;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Directory of the files to import: exports (their manifests list the data files) or any
    /// directory of data files (every file but hidden ones, in path order).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The table to load.
    #[arg(long)]
    pub table: String,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::DynamodbJson)]
    pub format: Format,
    /// Compression of the files [default: by extension: .gz gzip, .zst zstd, else none].
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// Create the table (on demand) when it does not exist, keyed by --hash-key [and --range-key].
    #[arg(long, requires = "hash_key")]
    pub create: bool,
    /// Partition key of the table to create, NAME:TYPE with TYPE S, N or B (also types CSV cells).
    #[arg(long, value_name = "NAME:TYPE", value_parser = parse_key_spec)]
    pub hash_key: Option<KeySpec>,
    /// Sort key of the table to create, NAME:TYPE.
    #[arg(long, value_name = "NAME:TYPE", value_parser = parse_key_spec, requires = "hash_key")]
    pub range_key: Option<KeySpec>,
    /// Files loaded at once (each with up to 4 BatchWriteItem requests in flight).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub writers: u16,
    /// Checkpoint file recording completed positions [default: DIR/.ferrodyn-import-TABLE.json].
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// List the files and their sizes, count their items and bad lines, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Load into a table that already has items without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The checkpoint file's content.
#[derive(Serialize, Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    version: u32,
    table: String,
    /// Per data file (its path relative to DIR).
    files: BTreeMap<String, FileState>,
}

#[derive(Serialize, Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct FileState {
    /// Size of the file when the import started: a file that changed is not resumed.
    size: u64,
    /// The last record handled: every record up to it (line, then index within the line) has
    /// been written or reported. Line 0: none yet.
    line: u64,
    index: u32,
    complete: bool,
    items: u64,
    bad: u64,
}

/// The default checkpoint of importing into `table` from `dir`.
pub fn checkpoint_path(dir: &Path, table: &str) -> PathBuf {
    dir.join(format!(".ferrodyn-import-{table}.json"))
}

struct Saver {
    path: PathBuf,
    checkpoint: Checkpoint,
    last_save: Instant,
}

impl Saver {
    fn save(&mut self) -> Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(&self.checkpoint)
            .map_err(|e| DataError::Failed(format!("checkpoint: {e}")))?;
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .map_err(|e| DataError::io(self.path.display().to_string(), e))?;
        self.last_save = Instant::now();
        Ok(())
    }

    fn update(&mut self, name: &str, f: impl FnOnce(&mut FileState), force: bool) -> Result<()> {
        if let Some(state) = self.checkpoint.files.get_mut(name) {
            f(state);
        }
        if force || self.last_save.elapsed() >= Duration::from_millis(200) {
            self.save()?;
        }
        Ok(())
    }
}

fn read_options(
    args: &ImportArgs,
    desc: Option<&aws_sdk_dynamodb::types::TableDescription>,
) -> ReadOptions {
    let mut key_types: HashMap<String, ScalarType> = HashMap::new();
    if let Some(d) = desc {
        for k in d.key_schema() {
            if let Some(a) = d
                .attribute_definitions()
                .iter()
                .find(|a| a.attribute_name() == k.attribute_name())
            {
                if let Some(t) = scalar_type(a.attribute_type()) {
                    key_types.insert(a.attribute_name().to_owned(), t);
                }
            }
        }
    }
    for k in args.hash_key.iter().chain(args.range_key.iter()) {
        if let Some(t) = scalar_type(&k.kind) {
            key_types.insert(k.name.clone(), t);
        }
    }
    ReadOptions {
        format: args.format,
        compression: args.compression,
        key_types,
    }
}

pub async fn run(args: ImportArgs) -> Result<()> {
    let display = Display::new(args.common.progress, args.common.progress_interval);
    let files = list_files(&args.dir)?;
    let checkpoint_file = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| checkpoint_path(&args.dir, &args.table));
    let files: Vec<DataFile> = files
        .into_iter()
        .filter(|f| f.path != checkpoint_file)
        .collect();
    let client = args.common.conn.client().await?;
    let desc = table::describe(&client, &args.table).await?;
    let previous = load_checkpoint(&checkpoint_file, &args.table, &files)?;

    if args.dry_run {
        return dry_run(
            &client,
            &args,
            desc.as_ref(),
            &files,
            previous.as_ref(),
            &checkpoint_file,
        )
        .await;
    }
    if files.is_empty() {
        return Err(DataError::Usage(format!(
            "no data files in {}",
            args.dir.display()
        )));
    }

    let desc = match desc {
        Some(d) => {
            if previous.is_none() && table::has_items(&client, &args.table).await? {
                confirm(
                    &format!(
                        "Table {} already has items; imported items with the same keys will \
                         overwrite them.",
                        args.table
                    ),
                    args.yes,
                )?;
            }
            d
        }
        None if args.create => {
            let hash = args
                .hash_key
                .as_ref()
                .ok_or_else(|| DataError::Usage("--create needs --hash-key NAME:TYPE".into()))?;
            table::create_simple(&client, &args.table, hash, args.range_key.as_ref()).await?;
            eprintln!("created table {}", args.table);
            table::wait_active(&client, &args.table, display).await?;
            table::describe_existing(&client, &args.table).await?
        }
        None => {
            return Err(DataError::Api {
                operation: "DescribeTable",
                code: "ResourceNotFoundException".into(),
                message: format!(
                    "Requested resource not found: Table: {} not found (pass --create \
                     --hash-key NAME:TYPE to create it)",
                    args.table
                ),
            })
        }
    };
    let options = read_options(&args, Some(&desc));

    let resumed = previous.is_some();
    let mut checkpoint = previous.unwrap_or_else(|| Checkpoint {
        version: 1,
        table: args.table.clone(),
        files: BTreeMap::new(),
    });
    for f in &files {
        checkpoint.files.entry(f.name.clone()).or_insert(FileState {
            size: f.size,
            ..FileState::default()
        });
    }
    let skipped_records: u64 = checkpoint.files.values().map(|s| s.items + s.bad).sum();
    let skipped_files = checkpoint.files.values().filter(|s| s.complete).count();
    if resumed {
        eprintln!(
            "resuming from checkpoint {}: {skipped_files} of {} files done, {skipped_records} \
             records already handled",
            checkpoint_file.display(),
            files.len()
        );
    }
    let mut saver = Saver {
        path: checkpoint_file.clone(),
        checkpoint,
        last_save: Instant::now(),
    };
    saver.save()?;
    let saver = Arc::new(Mutex::new(saver));
    let queue: VecDeque<(DataFile, FileState)> = {
        let s = saver
            .lock()
            .map_err(|_| DataError::Failed("checkpoint lock".into()))?;
        files
            .iter()
            .filter_map(|f| {
                let st = s.checkpoint.files.get(&f.name)?.clone();
                (!st.complete).then(|| (f.clone(), st))
            })
            .collect()
    };
    let queue = Arc::new(Mutex::new(queue));
    // The total is known when every file comes with its export manifest's item count.
    let total = files
        .iter()
        .map(|f| f.items)
        .sum::<Option<u64>>()
        .map(|t| t.saturating_sub(skipped_records))
        .filter(|t| *t > 0);
    let progress = Arc::new(Progress::start(display, "imported", total));
    let bad_total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.writers {
        let queue = queue.clone();
        let client = client.clone();
        let table = args.table.clone();
        let options = options.clone();
        let saver = saver.clone();
        let progress = progress.clone();
        let bad_total = bad_total.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some((file, state)) = next else {
                    return Ok::<(), DataError>(());
                };
                import_file(
                    &client, &table, &file, state, &options, &saver, &progress, &bad_total,
                )
                .await?;
            }
        }));
    }
    let mut failure = None;
    for w in workers {
        let outcome = w
            .await
            .map_err(|e| DataError::Failed(format!("import worker: {e}")))
            .and_then(|r| r);
        if let Err(e) = outcome {
            failure.get_or_insert(e);
        }
    }
    let totals = Arc::try_unwrap(progress)
        .map_err(|_| DataError::Failed("import workers still running".into()))?
        .finish();
    if let Some(e) = failure {
        if let Ok(mut s) = saver.lock() {
            let _ = s.save();
        }
        eprintln!(
            "imported {} items before the failure; rerun the same command to resume from {}",
            totals.items,
            checkpoint_file.display()
        );
        return Err(e);
    }
    std::fs::remove_file(&checkpoint_file)
        .map_err(|e| DataError::io(checkpoint_file.display().to_string(), e))?;
    let bad = bad_total.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "imported {} into {} from {} files; {bad} bad lines skipped{}",
        totals.describe(),
        args.table,
        files.len(),
        if resumed {
            format!(
                "; resumed from checkpoint {} ({skipped_records} records of an earlier run skipped)",
                checkpoint_file.display()
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

/// The checkpoint of an earlier run into `table`, if there is one; refuses one whose files
/// changed since.
fn load_checkpoint(path: &Path, table: &str, files: &[DataFile]) -> Result<Option<Checkpoint>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DataError::io(path.display().to_string(), e)),
    };
    let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| {
        DataError::Failed(format!(
            "{}: not a checkpoint ({e}); delete it to start over",
            path.display()
        ))
    })?;
    if cp.version != 1 {
        return Err(DataError::Failed(format!(
            "{}: checkpoint version {} is not 1; delete it to start over",
            path.display(),
            cp.version
        )));
    }
    if cp.table != table {
        return Err(DataError::Failed(format!(
            "{} is a checkpoint of an import into {}, not {table}",
            path.display(),
            cp.table
        )));
    }
    for f in files {
        if let Some(st) = cp.files.get(&f.name) {
            if st.size != f.size {
                return Err(DataError::Failed(format!(
                    "{} changed since the checkpoint {} was written ({} bytes, then {}); \
                     delete the checkpoint to start over",
                    f.name,
                    path.display(),
                    f.size,
                    st.size
                )));
            }
        }
    }
    Ok(Some(cp))
}

/// A run of consecutive records of one file.
struct Chunk {
    items: Vec<(u64, Item)>,
    bad: Vec<(u64, String)>,
    /// The last record in the chunk (or before it, for an empty chunk).
    last: Location,
}

/// Records per chunk: four BatchWriteItem requests.
const CHUNK: usize = 100;

/// Chunks of one file written at once.
const IN_FLIGHT: usize = 4;

/// A chunk written: what the checkpoint learns from it.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    seq: u64,
    last: Location,
    written: u64,
    bad: u64,
}

/// Chunks of one file, numbered in reading order, complete in any order; the checkpoint may
/// only learn of a chunk once every chunk before it has completed too.
#[derive(Default)]
struct Frontier {
    next: u64,
    waiting: BTreeMap<u64, Written>,
}

impl Frontier {
    /// Records a completed chunk; returns the chunks the checkpoint may now take, in order.
    fn complete(&mut self, w: Written) -> Vec<Written> {
        self.waiting.insert(w.seq, w);
        let mut ready = Vec::new();
        while let Some(w) = self.waiting.remove(&self.next) {
            self.next += 1;
            ready.push(w);
        }
        ready
    }
}

#[allow(clippy::too_many_arguments)]
async fn import_file(
    client: &Client,
    table: &str,
    file: &DataFile,
    state: FileState,
    options: &ReadOptions,
    saver: &Arc<Mutex<Saver>>,
    progress: &Arc<Progress>,
    bad_total: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Chunk>>(4);
    let reader_file = file.clone();
    let reader_options = options.clone();
    let done = Location {
        line: state.line,
        index: state.index,
    };
    let resume = if state.line == 0 {
        Location::default()
    } else {
        done.after()
    };
    let reader = tokio::task::spawn_blocking(move || {
        let lines = match read_file(&reader_file, &reader_options, resume) {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut chunk = Chunk {
            items: Vec::new(),
            bad: Vec::new(),
            last: done,
        };
        for line in lines {
            chunk.last = line.at;
            match line.item {
                Ok(item) => chunk.items.push((line.at.line, item)),
                Err(reason) => chunk.bad.push((line.at.line, reason)),
            }
            if chunk.items.len() + chunk.bad.len() >= CHUNK {
                let last = chunk.last;
                let full = std::mem::replace(
                    &mut chunk,
                    Chunk {
                        items: Vec::new(),
                        bad: Vec::new(),
                        last,
                    },
                );
                if tx.blocking_send(Ok(full)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.blocking_send(Ok(chunk));
    });
    // Up to IN_FLIGHT chunks of the file are written at once; the checkpoint only moves over
    // the chunks that completed without a gap before them, so it never covers an unwritten one.
    let mut in_flight = tokio::task::JoinSet::new();
    let mut frontier = Frontier::default();
    let mut dispatched = 0u64;
    let mut reading = true;
    loop {
        while reading && in_flight.len() < IN_FLIGHT {
            let Some(chunk) = rx.recv().await else {
                reading = false;
                break;
            };
            let chunk = chunk?;
            for (line, reason) in &chunk.bad {
                eprintln!("{}:{line}: {reason}", file.name);
            }
            let seq = dispatched;
            dispatched += 1;
            let (client, table, name) = (client.clone(), table.to_owned(), file.name.clone());
            let (progress, bad_total) = (progress.clone(), bad_total.clone());
            in_flight.spawn(async move {
                let mut bad = chunk.bad.len() as u64;
                let lines: Vec<u64> = chunk.items.iter().map(|(l, _)| *l).collect();
                let items: Vec<Item> = chunk.items.into_iter().map(|(_, i)| i).collect();
                let n = items.len() as u64;
                let bytes: u64 = items.iter().map(item_size).sum();
                let rejected = write_items(&client, &table, items).await?;
                for r in &rejected {
                    let line = lines.get(r.index).copied().unwrap_or(0);
                    eprintln!("{name}:{line}: {}", r.error);
                }
                bad += rejected.len() as u64;
                let written = n - rejected.len() as u64;
                progress.add(written, bytes);
                bad_total.fetch_add(bad, std::sync::atomic::Ordering::Relaxed);
                Ok::<Written, DataError>(Written {
                    seq,
                    last: chunk.last,
                    written,
                    bad,
                })
            });
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        let done = done.map_err(|e| DataError::Failed(format!("writing {}: {e}", file.name)))??;
        let mut saver = saver
            .lock()
            .map_err(|_| DataError::Failed("checkpoint lock".into()))?;
        for w in frontier.complete(done) {
            saver.update(
                &file.name,
                |s| {
                    s.line = w.last.line;
                    s.index = w.last.index;
                    s.items += w.written;
                    s.bad += w.bad;
                },
                false,
            )?;
        }
    }
    reader
        .await
        .map_err(|e| DataError::Failed(format!("reading {}: {e}", file.name)))?;
    saver
        .lock()
        .map_err(|_| DataError::Failed("checkpoint lock".into()))?
        .update(&file.name, |s| s.complete = true, true)
}

async fn dry_run(
    client: &Client,
    args: &ImportArgs,
    desc: Option<&aws_sdk_dynamodb::types::TableDescription>,
    files: &[DataFile],
    previous: Option<&Checkpoint>,
    checkpoint_file: &Path,
) -> Result<()> {
    let options = read_options(args, desc);
    let mut total_items = 0u64;
    let mut total_bad = 0u64;
    let mut total_bytes = 0u64;
    for f in files {
        let (mut items, mut bad) = (0u64, 0u64);
        for line in read_file(f, &options, Location::default())? {
            match line.item {
                Ok(_) => items += 1,
                Err(reason) => {
                    bad += 1;
                    eprintln!("{}:{}: {reason}", f.name, line.at.line);
                }
            }
        }
        println!(
            "file {} ({} bytes): {items} items, {bad} bad lines",
            f.name, f.size
        );
        total_items += items;
        total_bad += bad;
        total_bytes += f.size;
    }
    match desc {
        Some(d) => {
            let has = table::has_items(client, &args.table).await?;
            println!("{}", table::existing_target(&args.table, d, has));
        }
        None if args.create => {
            let key = |k: &KeySpec| format!("{} ({})", k.name, k.kind.as_str());
            println!(
                "would create table {} (on demand) with key {}{}",
                args.table,
                args.hash_key.as_ref().map(key).unwrap_or_default(),
                args.range_key
                    .as_ref()
                    .map(|r| format!(", {}", key(r)))
                    .unwrap_or_default()
            );
        }
        None => println!(
            "table {} does not exist: the import would fail (pass --create --hash-key NAME:TYPE)",
            args.table
        ),
    }
    if let Some(cp) = previous {
        let records: u64 = cp.files.values().map(|s| s.items + s.bad).sum();
        let done = cp.files.values().filter(|s| s.complete).count();
        println!(
            "would resume from checkpoint {}: {done} files done, {records} records already \
             handled",
            checkpoint_file.display()
        );
    }
    println!(
        "would import {total_items} items from {} files ({}) into {} with {} writers; \
         {total_bad} bad lines would be skipped",
        files.len(),
        format_mb(total_bytes),
        args.table,
        args.writers
    );
    println!("dry run: nothing changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chunk(seq: u64) -> Written {
        Written {
            seq,
            last: Location {
                line: (seq + 1) * 100,
                index: 0,
            },
            written: 100,
            bad: 0,
        }
    }

    proptest! {
        /// Whatever order chunks complete in, the checkpoint learns of them in reading order,
        /// never past a chunk still in flight, and of every one in the end.
        #[test]
        fn frontier_only_moves_over_completed_prefixes(order in Just((0..20u64).collect::<Vec<_>>()).prop_shuffle()) {
            let mut f = Frontier::default();
            let mut done = std::collections::BTreeSet::new();
            let mut learned = Vec::new();
            for seq in order {
                done.insert(seq);
                for w in f.complete(chunk(seq)) {
                    learned.push(w.seq);
                }
                // Everything learned so far completed, with nothing missing before it.
                prop_assert!(learned.iter().enumerate().all(|(i, s)| *s == i as u64 && done.contains(s)));
            }
            prop_assert_eq!(learned, (0..20).collect::<Vec<_>>());
        }
    }

    #[test]
    fn default_checkpoint_name() {
        assert_eq!(
            checkpoint_path(Path::new("/data/export"), "orders"),
            PathBuf::from("/data/export/.ferrodyn-import-orders.json")
        );
    }
}
