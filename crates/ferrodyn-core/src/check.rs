//! Verification and repair of stored data (`ferrodyn check` / `ferrodyn repair`), on any
//! storage engine, without an [`crate::Engine`]: everything is read from the storage itself.
//!
//! [`check`] reads every entry of every keyspace (so, on fjall, every data block passes its
//! checksum; [`Storage::verify_files`] hashes each file whole besides) and verifies what the
//! engine's invariants promise:
//! - every catalog record decodes, and the keyspaces of its table and indexes exist;
//! - every item decodes, its stored size matches its contents, and it is stored under its
//!   own key;
//! - every index that is maintained and complete (local indexes, `ACTIVE` global ones) holds
//!   exactly the entries its table's items give (`index::entry_key`), each with the projected
//!   item as its value, and nothing else;
//! - the statistics saved by a clean shutdown (ItemCount, TableSizeBytes, item-collection
//!   sizes) equal a recount; without the clean marker the next open recounts anyway;
//! - every entry of the stream keyspace decodes (`streams::check_entry`).
//!
//! [`repair`] rebuilds only what derives from the items: an index with a problem is dropped
//! and rebuilt from its table, statistics with a problem are rewritten from a recount. It never
//! writes or deletes an item; damage to items or the catalog is reported as not repairable.
//!
//! Both must run with no engine serving the storage (the CLI holds the data directory's
//! lock): a concurrent writer could make a consistent index look wrong, and a rebuild would
//! lose its entries. Global indexes still `CREATING` and tables still loading are skipped:
//! their jobs resume when an engine opens the storage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use ferrodyn_model::size::item_size;
use ferrodyn_model::{AttributeValue, Error, Item};
use ferrodyn_storage::{Durability, Snapshot, Storage, WriteBatch};

use crate::index::{entry_key, maintained, projected};
use crate::keys::key_of_item;
use crate::stats::{self, Saved, STATS};
use crate::streams::{self, STREAMS};
use crate::table::{IndexDef, IndexStatus, TableDef};
use crate::{collections, itemcodec, storage_err, CATALOG};

/// Problems kept in a report; later ones are only counted.
pub const MAX_PROBLEMS: usize = 1000;
/// Entries written per batch by an index rebuild.
const REBUILD_CHUNK: usize = 1024;

/// What kind of problem [`check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// A data file fails its whole-file checksum.
    DamagedFile,
    /// Reading a keyspace failed (a block failed its checksum, an I/O error).
    UnreadableKeyspace,
    /// A keyspace the catalog names does not exist.
    MissingKeyspace,
    /// A catalog record does not decode.
    Catalog,
    /// A stored item does not decode, has a wrong stored size, or sits under another key.
    Item,
    /// An item's index entry is absent.
    MissingIndexEntry,
    /// An index entry holds something else than the item's projection.
    WrongIndexEntry,
    /// An index entry no item of the table gives.
    OrphanIndexEntry,
    /// Saved statistics differ from a recount (or do not decode).
    Statistics,
    /// An entry of the stream keyspace does not decode.
    StreamEntry,
}

impl ProblemKind {
    /// The name used in reports (snake case).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::DamagedFile => "damaged_file",
            ProblemKind::UnreadableKeyspace => "unreadable_keyspace",
            ProblemKind::MissingKeyspace => "missing_keyspace",
            ProblemKind::Catalog => "catalog",
            ProblemKind::Item => "item",
            ProblemKind::MissingIndexEntry => "missing_index_entry",
            ProblemKind::WrongIndexEntry => "wrong_index_entry",
            ProblemKind::OrphanIndexEntry => "orphan_index_entry",
            ProblemKind::Statistics => "statistics",
            ProblemKind::StreamEntry => "stream_entry",
        }
    }
}

/// One problem: what, where (as far as known) and a description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub table: Option<String>,
    pub index: Option<String>,
    pub keyspace: Option<String>,
    /// The item's key attributes (`pk="a", sk=1`), or the storage key in hex when the item
    /// cannot be decoded.
    pub key: Option<String>,
    pub file: Option<String>,
    pub detail: String,
}

impl Problem {
    fn new(kind: ProblemKind, detail: impl Into<String>) -> Problem {
        Problem {
            kind,
            table: None,
            index: None,
            keyspace: None,
            key: None,
            file: None,
            detail: detail.into(),
        }
    }
    fn table(mut self, t: &str) -> Self {
        self.table = Some(t.to_owned());
        self
    }
    fn index(mut self, i: &str) -> Self {
        self.index = Some(i.to_owned());
        self
    }
    fn keyspace(mut self, k: &str) -> Self {
        self.keyspace = Some(k.to_owned());
        self
    }
    fn key(mut self, k: String) -> Self {
        self.key = Some(k);
        self
    }

    /// True if [`repair`] can fix it (it derives from the items).
    pub fn repairable(&self) -> bool {
        match self.kind {
            ProblemKind::MissingIndexEntry
            | ProblemKind::WrongIndexEntry
            | ProblemKind::OrphanIndexEntry
            | ProblemKind::Statistics => true,
            // A damaged or missing keyspace of an index is rebuilt whole.
            ProblemKind::DamagedFile
            | ProblemKind::UnreadableKeyspace
            | ProblemKind::MissingKeyspace => self.index.is_some(),
            _ => false,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind.as_str())?;
        if let Some(t) = &self.table {
            write!(f, " table {t}")?;
        }
        if let Some(i) = &self.index {
            write!(f, " index {i}")?;
        }
        if let Some(k) = &self.key {
            write!(f, " key {{{k}}}")?;
        }
        if let Some(k) = &self.keyspace {
            if self.table.is_none() {
                write!(f, " keyspace {k}")?;
            }
        }
        if let Some(file) = &self.file {
            write!(f, " file {file}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Figures of one table as recounted by [`check`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableFigures {
    pub name: String,
    pub items: u64,
    pub bytes: u64,
    /// Entries per checked index.
    pub index_entries: BTreeMap<String, u64>,
}

/// What [`check`] read and found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Keyspaces read whole.
    pub keyspaces: usize,
    /// Entries read, all keyspaces together.
    pub entries: u64,
    /// Each checked table's recounted figures.
    pub tables: Vec<TableFigures>,
    /// Tables and indexes left out, with why (loading tables, indexes being built).
    pub skipped: Vec<String>,
    /// Whether the statistics saved by a clean shutdown were there to compare.
    pub statistics_saved: bool,
    /// The first [`MAX_PROBLEMS`] problems, in the order found.
    pub problems: Vec<Problem>,
    /// Every problem found, including those not kept.
    pub problem_count: u64,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }

    fn push(&mut self, p: Problem) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

/// `pk="a", sk=1`: an item's key attributes, for reports.
fn render_key(def: &TableDef, item: &Item) -> String {
    def.key_names()
        .map(|n| match item.get(n) {
            Some(AttributeValue::S(s)) => format!("{n}={s:?}"),
            Some(AttributeValue::N(x)) => format!("{n}={x}"),
            Some(AttributeValue::B(b)) => format!("{n}=0x{}", stats::hex(b)),
            Some(other) => format!("{n}={other:?}"),
            None => format!("{n}=<absent>"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn hex_key(k: &[u8]) -> String {
    format!("0x{}", stats::hex(k))
}

/// Scans a whole keyspace; a read error ends the scan and is returned as text.
fn scan_all(
    snap: &dyn Snapshot,
    keyspace: &str,
    f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), String> {
    snap.scan(keyspace, Bound::Unbounded, Bound::Unbounded, false, f)
        .map_err(|e| e.to_string())
}

/// The indexes [`check`] verifies entry by entry: maintained and complete.
fn checked_indexes(def: &TableDef) -> impl Iterator<Item = &IndexDef> {
    maintained(def).filter(|ix| ix.status != IndexStatus::Creating)
}

/// A table's recount, for the statistics.
#[derive(Default)]
struct Recount {
    items: i64,
    bytes: i64,
    collections: HashMap<Vec<u8>, i64>,
}

/// Reads the catalog: decodable definitions by table name, and the problems of the others.
fn read_defs(snap: &dyn Snapshot, report: &mut CheckReport) -> Vec<TableDef> {
    let mut defs = Vec::new();
    let mut bad = Vec::new();
    let read = scan_all(snap, CATALOG, &mut |k, v| {
        report.entries += 1;
        match serde_json::from_slice::<TableDef>(v) {
            Ok(def) => defs.push(def),
            Err(e) => bad.push(
                Problem::new(
                    ProblemKind::Catalog,
                    format!("table definition does not decode: {e}"),
                )
                .table(&String::from_utf8_lossy(k))
                .keyspace(CATALOG),
            ),
        }
        true
    });
    for p in bad {
        report.push(p);
    }
    if let Err(e) = read {
        report.push(Problem::new(ProblemKind::UnreadableKeyspace, e).keyspace(CATALOG));
    }
    defs
}

/// Verifies `storage` (see the module docs). An `Err` means the check itself could not run
/// (the storage failed outright); everything found in the data is a [`Problem`].
pub fn check(storage: &dyn Storage) -> Result<CheckReport, Error> {
    let mut report = CheckReport::default();
    let damaged = storage.verify_files().map_err(storage_err)?;
    let snap = storage.snapshot();
    let names: Vec<String> = storage.list_keyspaces();
    let existing: HashSet<&str> = names.iter().map(String::as_str).collect();
    let mut visited: HashSet<String> = HashSet::new();

    visited.insert(CATALOG.to_owned());
    let defs = read_defs(&*snap, &mut report);
    // Which table or index owns each keyspace, for the problems of damaged files.
    let mut owners: HashMap<&str, (&str, Option<&str>)> = HashMap::new();
    for def in &defs {
        owners.insert(&def.keyspace, (&def.name, None));
        for ix in def.local_indexes.iter().chain(&def.global_indexes) {
            owners.insert(&ix.keyspace, (&def.name, Some(&ix.name)));
        }
    }
    for d in damaged {
        let mut p = Problem::new(ProblemKind::DamagedFile, d.what.clone());
        p.file = Some(d.file.display().to_string());
        if let Some(ks) = &d.keyspace {
            p = p.keyspace(ks);
            if let Some((t, ix)) = owners.get(ks.as_str()) {
                p = p.table(t);
                if let Some(ix) = ix {
                    p = p.index(ix);
                }
            }
        }
        report.push(p);
    }

    let mut recounts: HashMap<String, Recount> = HashMap::new();
    for def in &defs {
        if def.restore.as_ref().is_some_and(|r| r.in_progress) {
            report.skipped.push(format!(
                "table {}: still loading (the load resumes at the next start)",
                def.name
            ));
            visited.insert(def.keyspace.clone());
            for ix in def.local_indexes.iter().chain(&def.global_indexes) {
                visited.insert(ix.keyspace.clone());
            }
            continue;
        }
        for ix in &def.global_indexes {
            if ix.status == IndexStatus::Creating {
                report.skipped.push(format!(
                    "table {} index {}: being built (the build resumes at the next start)",
                    def.name, ix.name
                ));
            }
        }
        let mut missing = false;
        for (ks, ix) in std::iter::once((&def.keyspace, None))
            .chain(checked_indexes(def).map(|ix| (&ix.keyspace, Some(ix.name.as_str()))))
        {
            if !existing.contains(ks.as_str()) {
                missing |= ix.is_none();
                let mut p = Problem::new(ProblemKind::MissingKeyspace, "keyspace does not exist")
                    .table(&def.name)
                    .keyspace(ks);
                if let Some(ix) = ix {
                    p = p.index(ix);
                }
                report.push(p);
            }
        }
        if missing {
            continue;
        }
        let figures = check_table(&*snap, def, &existing, &mut report);
        visited.insert(def.keyspace.clone());
        for ix in def.local_indexes.iter().chain(&def.global_indexes) {
            visited.insert(ix.keyspace.clone());
        }
        recounts.insert(def.id.clone(), figures.1);
        report.tables.push(figures.0);
    }

    visited.insert(STATS.to_owned());
    if existing.contains(STATS) {
        check_statistics(&*snap, &defs, &recounts, &mut report);
    }
    visited.insert(STREAMS.to_owned());
    if existing.contains(STREAMS) {
        let mut bad = Vec::new();
        let read = scan_all(&*snap, STREAMS, &mut |k, v| {
            report.entries += 1;
            if let Err(e) = streams::check_entry(k, v) {
                bad.push(
                    Problem::new(ProblemKind::StreamEntry, e)
                        .keyspace(STREAMS)
                        .key(hex_key(k)),
                );
            }
            true
        });
        for p in bad {
            report.push(p);
        }
        if let Err(e) = read {
            report.push(Problem::new(ProblemKind::UnreadableKeyspace, e).keyspace(STREAMS));
        }
    }
    // Every other keyspace (backups, history, audit, job records, ...) is read whole, so
    // each of its blocks passes the engine's checksum.
    for name in &names {
        if visited.contains(name) {
            continue;
        }
        let mut n = 0u64;
        let read = scan_all(&*snap, name, &mut |_, _| {
            n += 1;
            true
        });
        report.entries += n;
        if let Err(e) = read {
            report.push(Problem::new(ProblemKind::UnreadableKeyspace, e).keyspace(name));
        }
    }
    report.keyspaces = names.len();
    Ok(report)
}

/// Checks one table's items and its indexes both ways; returns its figures and recount.
fn check_table(
    snap: &dyn Snapshot,
    def: &TableDef,
    existing: &HashSet<&str>,
    report: &mut CheckReport,
) -> (TableFigures, Recount) {
    let mut figures = TableFigures {
        name: def.name.clone(),
        ..TableFigures::default()
    };
    let mut recount = Recount::default();
    let indexes: Vec<&IndexDef> = checked_indexes(def)
        .filter(|ix| existing.contains(ix.keyspace.as_str()))
        .collect();
    let mut problems = Vec::new();
    let mut entries = 0u64;
    // Entries found wrong from the item side, so the index side does not report them again.
    let mut wrong: HashSet<(usize, Vec<u8>)> = HashSet::new();
    // Items to their index entries.
    let read = scan_all(snap, &def.keyspace, &mut |k, v| {
        entries += 1;
        let item = match itemcodec::decode_item(v) {
            Ok(item) => item,
            Err(e) => {
                problems.push(
                    Problem::new(ProblemKind::Item, format!("item does not decode: {e}"))
                        .table(&def.name)
                        .keyspace(&def.keyspace)
                        .key(hex_key(k)),
                );
                return true;
            }
        };
        let size = item_size(&item);
        recount.items += 1;
        recount.bytes += size as i64;
        if let Some((c, s)) = collections::delta(def, None, Some(&item)) {
            *recount.collections.entry(c).or_insert(0) += s;
        }
        let rendered = || render_key(def, &item);
        match itemcodec::stored_size(v) {
            Ok(stored) if stored == size => {}
            Ok(stored) => problems.push(
                Problem::new(
                    ProblemKind::Item,
                    format!("stored size {stored} differs from the item's size {size}"),
                )
                .table(&def.name)
                .key(rendered()),
            ),
            Err(e) => problems.push(
                Problem::new(ProblemKind::Item, format!("stored size unreadable: {e}"))
                    .table(&def.name)
                    .key(rendered()),
            ),
        }
        if key_of_item(def, &item).ok().as_deref() != Some(k) {
            problems.push(
                Problem::new(
                    ProblemKind::Item,
                    "item is stored under a key that is not its own",
                )
                .table(&def.name)
                .key(rendered()),
            );
        }
        for (n, ix) in indexes.iter().enumerate() {
            let Some(ek) = entry_key(def, ix, &item) else {
                continue;
            };
            let mut wrong_entry = |p: Problem, ek: &[u8]| {
                wrong.insert((n, ek.to_vec()));
                problems.push(p);
            };
            let index_problem = |kind, detail: String| {
                Problem::new(kind, detail)
                    .table(&def.name)
                    .index(&ix.name)
                    .keyspace(&ix.keyspace)
                    .key(rendered())
            };
            match snap.get(&ix.keyspace, &ek) {
                Ok(None) => problems.push(index_problem(
                    ProblemKind::MissingIndexEntry,
                    "the item's index entry is absent".into(),
                )),
                Ok(Some(raw)) => match itemcodec::decode_item(&raw) {
                    Ok(entry) if entry == projected(def, ix, &item) => {}
                    Ok(_) => wrong_entry(
                        index_problem(
                            ProblemKind::WrongIndexEntry,
                            "the index entry differs from the item's projection".into(),
                        ),
                        &ek,
                    ),
                    Err(e) => wrong_entry(
                        index_problem(
                            ProblemKind::WrongIndexEntry,
                            format!("the index entry does not decode: {e}"),
                        ),
                        &ek,
                    ),
                },
                Err(e) => problems.push(index_problem(
                    ProblemKind::UnreadableKeyspace,
                    format!("reading the index entry: {e}"),
                )),
            }
        }
        true
    });
    report.entries += entries;
    for p in problems.drain(..) {
        report.push(p);
    }
    if let Err(e) = read {
        report.push(
            Problem::new(ProblemKind::UnreadableKeyspace, e)
                .table(&def.name)
                .keyspace(&def.keyspace),
        );
    }
    figures.items = recount.items as u64;
    figures.bytes = recount.bytes as u64;

    // Index entries back to their items: orphans.
    for (ix_n, ix) in indexes.iter().enumerate() {
        let mut n = 0u64;
        let read = scan_all(snap, &ix.keyspace, &mut |k, v| {
            n += 1;
            let orphan = |detail: &str, key: String| {
                Problem::new(ProblemKind::OrphanIndexEntry, detail)
                    .table(&def.name)
                    .index(&ix.name)
                    .keyspace(&ix.keyspace)
                    .key(key)
            };
            if wrong.contains(&(ix_n, k.to_vec())) {
                return true; // reported from its item's side
            }
            // An item giving this entry would have found it wrong or right from its side, so
            // an entry whose value does not give back its own key belongs to no item.
            let entry = match itemcodec::decode_item(v) {
                Ok(entry) if entry_key(def, ix, &entry).as_deref() == Some(k) => entry,
                Ok(_) => {
                    problems.push(orphan(
                        "no item gives this entry, whose value does not match its key",
                        hex_key(k),
                    ));
                    return true;
                }
                Err(_) => {
                    problems.push(orphan(
                        "no item gives this entry, whose value does not decode",
                        hex_key(k),
                    ));
                    return true;
                }
            };
            let Ok(table_key) = key_of_item(def, &entry) else {
                problems.push(orphan("the entry names no table key", hex_key(k)));
                return true;
            };
            match snap.get(&def.keyspace, &table_key) {
                Ok(Some(raw)) => {
                    let given = itemcodec::decode_item(&raw)
                        .ok()
                        .and_then(|item| entry_key(def, ix, &item));
                    if given.as_deref() != Some(k) {
                        problems.push(orphan(
                            "the item no longer gives this entry",
                            render_key(def, &entry),
                        ));
                    }
                }
                Ok(None) => problems.push(orphan("no such item", render_key(def, &entry))),
                // Reported by the table's own scan.
                Err(_) => {}
            }
            true
        });
        report.entries += n;
        for p in problems.drain(..) {
            report.push(p);
        }
        if let Err(e) = read {
            report.push(
                Problem::new(ProblemKind::UnreadableKeyspace, e)
                    .table(&def.name)
                    .index(&ix.name)
                    .keyspace(&ix.keyspace),
            );
        }
        figures.index_entries.insert(ix.name.clone(), n);
    }
    (figures, recount)
}

/// Compares the statistics saved by a clean shutdown with the recounts.
fn check_statistics(
    snap: &dyn Snapshot,
    defs: &[TableDef],
    recounts: &HashMap<String, Recount>,
    report: &mut CheckReport,
) {
    let mut saved: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let read = scan_all(snap, STATS, &mut |k, v| {
        saved.insert(k.to_vec(), v.to_vec());
        true
    });
    report.entries += saved.len() as u64;
    if let Err(e) = read {
        report.push(Problem::new(ProblemKind::UnreadableKeyspace, e).keyspace(STATS));
        return;
    }
    report.statistics_saved = saved.contains_key(stats::CLEAN);
    if !report.statistics_saved {
        return; // the next open recounts every table
    }
    for def in defs {
        let (Some(raw), Some(recount)) = (
            saved.get(&stats::record_key(&def.id)),
            recounts.get(&def.id),
        ) else {
            continue; // no record: recounted at the next open
        };
        let problem = |detail: String| {
            Problem::new(ProblemKind::Statistics, detail)
                .table(&def.name)
                .keyspace(STATS)
        };
        let rec = match serde_json::from_slice::<Saved>(raw) {
            Ok(rec) => rec,
            Err(e) => {
                report.push(problem(format!("saved statistics do not decode: {e}")));
                continue;
            }
        };
        if rec.items != recount.items {
            report.push(problem(format!(
                "ItemCount saved as {}, recounted {}",
                rec.items, recount.items
            )));
        }
        if rec.bytes != recount.bytes {
            report.push(problem(format!(
                "TableSizeBytes saved as {}, recounted {}",
                rec.bytes, recount.bytes
            )));
        }
        if !def.local_indexes.is_empty() {
            let saved_sizes: HashMap<String, i64> = rec
                .collections
                .iter()
                .filter(|(_, s)| *s != 0)
                .cloned()
                .collect();
            let counted: HashMap<String, i64> = recount
                .collections
                .iter()
                .filter(|(_, s)| **s != 0)
                .map(|(k, s)| (stats::hex(k), *s))
                .collect();
            if saved_sizes != counted {
                report.push(problem(
                    "item-collection sizes differ from a recount".to_string(),
                ));
            }
        }
    }
}

/// What [`repair`] will do (or did).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairPlan {
    /// Indexes to rebuild from their tables: (table, index).
    pub indexes: Vec<(String, String)>,
    /// Tables whose saved statistics are rewritten from a recount.
    pub statistics: Vec<String>,
    /// Problems repair cannot fix (damaged items or catalog records, damaged table files):
    /// restore the table from a backup or point in time.
    pub unrepairable: Vec<Problem>,
}

impl RepairPlan {
    /// True when there is nothing to rebuild or rewrite.
    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty() && self.statistics.is_empty()
    }
}

/// What to repair, from a check's report.
pub fn plan_repair(report: &CheckReport) -> RepairPlan {
    let mut plan = RepairPlan::default();
    for p in &report.problems {
        if !p.repairable() {
            plan.unrepairable.push(p.clone());
            continue;
        }
        match (&p.table, &p.index, p.kind) {
            (Some(t), _, ProblemKind::Statistics) => {
                if !plan.statistics.contains(t) {
                    plan.statistics.push(t.clone());
                }
            }
            (Some(t), Some(ix), _) => {
                let pair = (t.clone(), ix.clone());
                if !plan.indexes.contains(&pair) {
                    plan.indexes.push(pair);
                }
            }
            _ => plan.unrepairable.push(p.clone()),
        }
    }
    plan
}

/// What [`repair`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairOutcome {
    /// Rebuilt indexes: (table, index, entries written).
    pub indexes: Vec<(String, String, u64)>,
    /// Tables whose statistics were rewritten.
    pub statistics: Vec<String>,
}

/// Carries out `plan` on `storage` (no engine may serve it meanwhile). Items are only read.
/// An interrupted repair leaves an index partial; running check and repair again finishes it.
pub fn repair(storage: &dyn Storage, plan: &RepairPlan) -> Result<RepairOutcome, Error> {
    let mut outcome = RepairOutcome::default();
    let snap = storage.snapshot();
    let mut report = CheckReport::default();
    let defs = read_defs(&*snap, &mut report);
    drop(snap);
    let by_name: HashMap<&str, &TableDef> = defs.iter().map(|d| (d.name.as_str(), d)).collect();
    for (table, index) in &plan.indexes {
        let def = by_name
            .get(table.as_str())
            .ok_or_else(|| Error::internal(format!("table {table} is not in the catalog")))?;
        let ix = checked_indexes(def)
            .find(|ix| &ix.name == index)
            .ok_or_else(|| Error::internal(format!("table {table} has no index {index}")))?;
        let n = rebuild_index(storage, def, ix)?;
        outcome.indexes.push((table.clone(), index.clone(), n));
    }
    if !plan.statistics.is_empty() {
        let snap = storage.snapshot();
        let mut batch = WriteBatch::default();
        for table in &plan.statistics {
            let def = by_name
                .get(table.as_str())
                .ok_or_else(|| Error::internal(format!("table {table} is not in the catalog")))?;
            let r = recount(&*snap, def)?;
            let rec = Saved {
                items: r.items,
                bytes: r.bytes,
                collections: r
                    .collections
                    .iter()
                    .map(|(k, s)| (stats::hex(k), *s))
                    .collect(),
            };
            let raw = serde_json::to_vec(&rec).map_err(Error::internal)?;
            batch.put(STATS, stats::record_key(&def.id), raw);
            outcome.statistics.push(table.clone());
        }
        storage
            .write(batch, Durability::Sync)
            .map_err(storage_err)?;
    }
    Ok(outcome)
}

/// A table's items, sizes and collection sizes, read from `snap`.
fn recount(snap: &dyn Snapshot, def: &TableDef) -> Result<Recount, Error> {
    let mut r = Recount::default();
    let mut failed = None;
    snap.scan(
        &def.keyspace,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |_, v| match itemcodec::decode_item(v) {
            Ok(item) => {
                r.items += 1;
                r.bytes += item_size(&item) as i64;
                if let Some((c, s)) = collections::delta(def, None, Some(&item)) {
                    *r.collections.entry(c).or_insert(0) += s;
                }
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        },
    )
    .map_err(storage_err)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(r),
    }
}

/// Drops `ix`'s keyspace and writes it again from the table's items; returns the entries.
fn rebuild_index(storage: &dyn Storage, def: &TableDef, ix: &IndexDef) -> Result<u64, Error> {
    tracing::info!(table = %def.name, index = %ix.name, "rebuilding index from its table");
    storage.drop_keyspace(&ix.keyspace).map_err(storage_err)?;
    storage.create_keyspace(&ix.keyspace).map_err(storage_err)?;
    let mut written = 0u64;
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let mut chunk: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(REBUILD_CHUNK);
        let lower = match &cursor {
            Some(c) => Bound::Excluded(c.as_slice()),
            None => Bound::Unbounded,
        };
        storage
            .scan(
                &def.keyspace,
                lower,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    chunk.push((k.to_vec(), v.to_vec()));
                    chunk.len() < REBUILD_CHUNK
                },
            )
            .map_err(storage_err)?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        cursor = Some(last.clone());
        let mut batch = WriteBatch::with_capacity(chunk.len());
        for (_, v) in &chunk {
            // An item that does not decode is reported by check and has no entry.
            let Ok(item) = itemcodec::decode_item(v) else {
                continue;
            };
            if let Some(ek) = entry_key(def, ix, &item) {
                batch.put(
                    &ix.keyspace,
                    ek,
                    itemcodec::encode_item(&projected(def, ix, &item)),
                );
                written += 1;
            }
        }
        if !batch.is_empty() {
            storage
                .write(batch, Durability::Sync)
                .map_err(storage_err)?;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrodyn_model::{AttributeValue as AV, Item, ScalarType};
    use ferrodyn_storage::{MemoryStorage, Storage};

    use super::*;
    use crate::control::{CreateTableInput, IndexInput, KeySchemaElement, KeyType};
    use crate::items::PutItemInput;
    use crate::table::{BillingMode, KeyAttr, ProjectionType};
    use crate::{Engine, EngineConfig};

    fn attr(name: &str, ty: ScalarType) -> KeyAttr {
        KeyAttr {
            name: name.into(),
            ty,
        }
    }

    fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
        KeySchemaElement {
            name: name.into(),
            key_type,
        }
    }

    /// An engine on memory storage with table `t` (pk S, sk N), local index `by_l` (pk, l)
    /// projecting all, global index `by_g` (g) projecting keys only, and 40 items: every
    /// other one has `g`, every third one has `l`.
    fn engine_with_table() -> (Arc<dyn Storage>, Engine) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let engine = Engine::open(storage.clone(), EngineConfig::default()).unwrap();
        engine
            .create_table(CreateTableInput {
                name: "t".into(),
                attribute_definitions: vec![
                    attr("pk", ScalarType::S),
                    attr("sk", ScalarType::N),
                    attr("l", ScalarType::S),
                    attr("g", ScalarType::S),
                ],
                key_schema: vec![key("pk", KeyType::Hash), key("sk", KeyType::Range)],
                billing_mode: Some(BillingMode::PayPerRequest),
                local_indexes: Some(vec![IndexInput {
                    name: "by_l".into(),
                    key_schema: vec![key("pk", KeyType::Hash), key("l", KeyType::Range)],
                    projection_type: Some(ProjectionType::All),
                    non_key_attributes: None,
                    provisioned: None,
                    on_demand: None,
                }]),
                global_indexes: Some(vec![IndexInput {
                    name: "by_g".into(),
                    key_schema: vec![key("g", KeyType::Hash)],
                    projection_type: Some(ProjectionType::KeysOnly),
                    non_key_attributes: None,
                    provisioned: None,
                    on_demand: None,
                }]),
                ..Default::default()
            })
            .unwrap();
        for i in 0..40u32 {
            let mut item = Item::from([
                ("pk".to_string(), AV::S(format!("p{}", i % 5))),
                ("sk".to_string(), AV::N(i.to_string().parse().unwrap())),
                ("v".to_string(), AV::S("x".repeat(i as usize))),
            ]);
            if i % 2 == 0 {
                item.insert("g".into(), AV::S(format!("g{}", i % 7)));
            }
            if i % 3 == 0 {
                item.insert("l".into(), AV::S(format!("l{i}")));
            }
            engine
                .put_item(PutItemInput {
                    table: "t".into(),
                    item,
                    ..Default::default()
                })
                .unwrap();
        }
        (storage, engine)
    }

    fn def(engine: &Engine) -> TableDef {
        engine.table("t").unwrap().def.clone()
    }

    fn index<'a>(def: &'a TableDef, name: &str) -> &'a IndexDef {
        def.local_indexes
            .iter()
            .chain(&def.global_indexes)
            .find(|ix| ix.name == name)
            .unwrap()
    }

    fn entries(storage: &dyn Storage, keyspace: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        storage
            .scan(
                keyspace,
                Bound::Unbounded,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    out.push((k.to_vec(), v.to_vec()));
                    true
                },
            )
            .unwrap();
        out
    }

    fn kinds(report: &CheckReport) -> Vec<(ProblemKind, Option<String>)> {
        let mut k: Vec<_> = report
            .problems
            .iter()
            .map(|p| (p.kind, p.index.clone()))
            .collect();
        k.sort();
        k
    }

    #[test]
    fn a_consistent_table_checks_clean_with_exact_figures() {
        let (storage, engine) = engine_with_table();
        engine.close().unwrap();
        let report = check(&*storage).unwrap();
        assert!(report.is_clean(), "{:?}", report.problems);
        assert!(report.statistics_saved);
        let t = &report.tables[0];
        assert_eq!(t.items, 40);
        assert_eq!(t.index_entries["by_g"], 20);
        assert_eq!(t.index_entries["by_l"], 14);
        assert!(plan_repair(&report).is_empty());
    }

    /// Each kind of damage through the storage API is found, named, repaired, and the items
    /// are left exactly as they were.
    #[test]
    fn check_finds_each_damage_and_repair_fixes_it() {
        let (storage, engine) = engine_with_table();
        engine.close().unwrap();
        let def = def(&engine);
        let gsi = index(&def, "by_g");
        let lsi = index(&def, "by_l");
        let items_before = entries(&*storage, &def.keyspace);

        let mut batch = WriteBatch::default();
        // A wrong entry: the GSI entry of one item holds another projection.
        let (k0, _) = entries(&*storage, &gsi.keyspace).remove(0);
        let mut wrong = Item::new();
        wrong.insert("pk".into(), AV::S("elsewhere".into()));
        batch.put(&gsi.keyspace, k0, itemcodec::encode_item(&wrong));
        // A missing entry: one LSI entry dropped.
        let (k1, _) = entries(&*storage, &lsi.keyspace).remove(3);
        batch.delete(&lsi.keyspace, k1);
        // An orphan: a GSI entry for an item that does not exist.
        let ghost = Item::from([
            ("pk".to_string(), AV::S("ghost".into())),
            ("sk".to_string(), AV::N("7".parse().unwrap())),
            ("g".to_string(), AV::S("g1".into())),
        ]);
        let ghost_key = entry_key(&def, gsi, &ghost).unwrap();
        batch.put(&gsi.keyspace, ghost_key, itemcodec::encode_item(&ghost));
        // A skewed statistic.
        let mut saved: Saved = serde_json::from_slice(
            &storage
                .get(STATS, &stats::record_key(&def.id))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        saved.items += 3;
        batch.put(
            STATS,
            stats::record_key(&def.id),
            serde_json::to_vec(&saved).unwrap(),
        );
        storage.write(batch, Durability::Sync).unwrap();

        let report = check(&*storage).unwrap();
        assert_eq!(
            kinds(&report),
            vec![
                (ProblemKind::MissingIndexEntry, Some("by_l".into())),
                (ProblemKind::WrongIndexEntry, Some("by_g".into())),
                (ProblemKind::OrphanIndexEntry, Some("by_g".into())),
                (ProblemKind::Statistics, None),
            ],
            "{:#?}",
            report.problems
        );
        let orphan = report
            .problems
            .iter()
            .find(|p| p.kind == ProblemKind::OrphanIndexEntry)
            .unwrap();
        assert_eq!(orphan.table.as_deref(), Some("t"));
        assert_eq!(orphan.key.as_deref(), Some(r#"pk="ghost", sk=7"#));
        let stat = report
            .problems
            .iter()
            .find(|p| p.kind == ProblemKind::Statistics)
            .unwrap();
        assert!(
            stat.detail.contains("ItemCount saved as 43, recounted 40"),
            "{stat}"
        );

        let plan = plan_repair(&report);
        let mut rebuilt = plan.indexes.clone();
        rebuilt.sort();
        assert_eq!(
            rebuilt,
            vec![
                ("t".to_string(), "by_g".to_string()),
                ("t".to_string(), "by_l".to_string())
            ]
        );
        assert_eq!(plan.statistics, vec!["t".to_string()]);
        assert!(plan.unrepairable.is_empty());
        let outcome = repair(&*storage, &plan).unwrap();
        assert_eq!(outcome.statistics, vec!["t".to_string()]);

        let after = check(&*storage).unwrap();
        assert!(after.is_clean(), "{:?}", after.problems);
        assert_eq!(entries(&*storage, &def.keyspace), items_before);
        // The engine reads the rebuilt indexes as before.
        assert_eq!(entries(&*storage, &gsi.keyspace).len(), 20);
        assert_eq!(entries(&*storage, &lsi.keyspace).len(), 14);
    }

    #[test]
    fn damaged_items_and_catalog_records_are_reported_as_unrepairable() {
        let (storage, engine) = engine_with_table();
        let def = def(&engine);
        let (k, mut v) = entries(&*storage, &def.keyspace).remove(5);
        v.truncate(v.len() / 2);
        let mut batch = WriteBatch::default();
        batch.put(&def.keyspace, k, v);
        batch.put(CATALOG, b"broken".to_vec(), b"{not json".to_vec());
        batch.put(STREAMS, b"x".to_vec(), b"?".to_vec());
        storage.write(batch, Durability::Sync).unwrap();
        let report = check(&*storage).unwrap();
        let found: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
        assert!(found.contains(&ProblemKind::Item), "{found:?}");
        assert!(found.contains(&ProblemKind::Catalog), "{found:?}");
        assert!(found.contains(&ProblemKind::StreamEntry), "{found:?}");
        let plan = plan_repair(&report);
        assert!(plan
            .unrepairable
            .iter()
            .any(|p| p.kind == ProblemKind::Item));
        // The undecodable item's index entries now look orphaned: rebuilding drops them.
        let outcome = repair(&*storage, &plan).unwrap();
        let after = check(&*storage).unwrap();
        assert!(
            after.problems.iter().all(|p| !p.repairable()),
            "{:?} after {outcome:?}",
            after.problems
        );
        assert_eq!(
            entries(&*storage, &def.keyspace).len(),
            40,
            "no item deleted"
        );
    }
}
