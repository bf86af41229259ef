//! Table statistics across restarts: ItemCount, TableSizeBytes and item-collection sizes.
//!
//! These figures live in memory and change with every write (`write::apply_stats`). Recomputing
//! them means scanning every table, which takes minutes for tens of gigabytes, so a clean
//! shutdown saves them and the next start loads them instead.
//!
//! Invariants:
//! - Saved figures are trusted only with the `clean` marker. [`Engine::close`] writes every
//!   table's record and the marker in one durable batch, after the server stopped taking
//!   requests. Opening consumes the records and the marker in one durable batch before any
//!   write is accepted, so after a crash (no fresh marker) every table is recounted by a scan.
//! - Records are keyed by table id, so a record never applies to a re-created table of the same
//!   name; a table without a record is recounted.
//! - A recount of a table without local secondary indexes runs in the background, so a crash
//!   of a large data directory does not delay the first answer: its counters start at zero,
//!   writes add their deltas as usual, and the scan reads a snapshot taken at open, before any
//!   write was accepted, then adds its totals. Snapshot totals plus the deltas of every later
//!   write are the exact figures. Until then DescribeTable shows a partial (never negative)
//!   ItemCount, as DynamoDB's figures are themselves refreshed only periodically. A table whose
//!   recount has not finished has no record saved at close, so the next open recounts it.
//! - Tables with local secondary indexes are recounted before open returns: writes check
//!   item-collection sizes against the 10 GB limit, so those must be exact from the start.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use ferrodyn_model::Error;
use ferrodyn_storage::{Durability, Snapshot, Storage, WriteBatch};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{collections, itemcodec, storage_err, Engine, Table};

pub(crate) const STATS: &str = "stats";
pub(crate) const CLEAN: &[u8] = b"clean";
const TABLE_PREFIX: &[u8] = b"t:";

#[derive(Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) items: i64,
    pub(crate) bytes: i64,
    /// Item collection sizes: (hex of the partition prefix, bytes).
    pub(crate) collections: Vec<(String, i64)>,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn record_key(table_id: &str) -> Vec<u8> {
    [TABLE_PREFIX, table_id.as_bytes()].concat()
}

impl Engine {
    /// Loads the figures saved by the last clean shutdown into `tables` and consumes them.
    /// Returns the tables that still need a recount (all of them after a crash).
    pub(crate) fn load_stats(&self, tables: Vec<Arc<Table>>) -> Result<Vec<Arc<Table>>, Error> {
        self.storage.create_keyspace(STATS).map_err(storage_err)?;
        let mut saved: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        self.storage
            .scan(
                STATS,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
                &mut |k, v| {
                    saved.insert(k.to_vec(), v.to_vec());
                    true
                },
            )
            .map_err(storage_err)?;
        if saved.is_empty() {
            return Ok(tables);
        }
        let clean = saved.contains_key(CLEAN);
        let mut consume = WriteBatch::default();
        for k in saved.keys() {
            consume.delete(STATS, k);
        }
        self.storage
            .write(consume, Durability::Sync)
            .map_err(storage_err)?;
        if !clean {
            return Ok(tables);
        }
        let mut missing = Vec::new();
        for t in tables {
            let rec = saved
                .get(&record_key(&t.def.id))
                .and_then(|v| serde_json::from_slice::<Saved>(v).ok());
            let Some(rec) = rec else {
                missing.push(t);
                continue;
            };
            t.counters.items.store(rec.items, Ordering::Relaxed);
            t.counters.bytes.store(rec.bytes, Ordering::Relaxed);
            let mut map = t.counters.collections.lock();
            map.clear();
            for (k, size) in rec.collections {
                if let Some(k) = unhex(&k) {
                    map.insert(k, size);
                }
            }
        }
        Ok(missing)
    }

    /// Ends the engine's life cleanly: saves the statistics (see the module invariants) and
    /// makes everything durable. Call it once no more requests are served; writes after it
    /// are not reflected in the saved figures.
    pub fn close(&self) -> Result<(), Error> {
        if self.shared {
            // Statistics are database counters, current after every commit.
            return Ok(());
        }
        if self.storage.generation() != 0 {
            // The store was reopened after a full disk: the counters may count writes the
            // reopen lost, so none are saved and the next open recounts every table.
            tracing::info!(
                "table statistics not saved (the store was reopened): the next start recounts them"
            );
            return self.flush();
        }
        let mut batch = WriteBatch::default();
        for t in self.tables.read().values() {
            if t.counters.recounting.load(Ordering::Acquire) {
                continue; // partial figures: the next open recounts this table
            }
            let rec = Saved {
                items: t.counters.items.load(Ordering::Relaxed),
                bytes: t.counters.bytes.load(Ordering::Relaxed),
                collections: t
                    .counters
                    .collections
                    .lock()
                    .iter()
                    .map(|(k, v)| (hex(k), *v))
                    .collect(),
            };
            batch.put(
                STATS,
                record_key(&t.def.id),
                serde_json::to_vec(&rec).map_err(Error::internal)?,
            );
        }
        batch.put(STATS, CLEAN, b"1".to_vec());
        self.storage
            .write(batch, Durability::Sync)
            .map_err(storage_err)?;
        self.flush()
    }
}

/// The background recount of tables whose figures were not saved (see the module invariants).
/// Dropping it stops the scan at the next item and waits for its thread, so nothing outlives
/// the engine's handle on the storage.
#[derive(Default)]
pub(crate) struct Recount {
    cancel: Arc<AtomicBool>,
    /// The thread while it may still run; [`Engine::wait_for_statistics`] joins it under the
    /// lock, so a second waiter returns only once it has ended.
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Recount {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.get_mut().take() {
            let _ = worker.join();
        }
    }
}

/// Totals of one table's scan: (items, bytes). Every item is sized from its stored form;
/// item-collection sizes are added to `counters` when the table has local secondary indexes.
fn scan_totals(
    snapshot: &dyn Snapshot,
    table: &Table,
    cancel: &AtomicBool,
) -> Result<(i64, i64), Error> {
    let (mut n, mut bytes) = (0i64, 0i64);
    let with_collections = !table.def.local_indexes.is_empty();
    let mut first_error = None;
    let mut visit = |_: &[u8], v: &[u8]| {
        n += 1;
        let size = if with_collections {
            itemcodec::decode_item(v).map(|item| {
                if let Some((key, size)) = collections::delta(&table.def, None, Some(&item)) {
                    *table.counters.collections.lock().entry(key).or_insert(0) += size;
                }
                ferrodyn_model::size::item_size(&item)
            })
        } else {
            itemcodec::stored_size(v)
        };
        match size {
            Ok(size) => bytes += size as i64,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        !cancel.load(Ordering::Relaxed)
    };
    snapshot
        .scan(
            &table.def.keyspace,
            Bound::Unbounded,
            Bound::Unbounded,
            false,
            &mut visit,
        )
        .map_err(storage_err)?;
    if let Some(e) = first_error {
        tracing::warn!(table = %table.def.name, error = %e, "unreadable items left out of the table's size");
    }
    Ok((n, bytes))
}

impl Recount {
    /// Recounts `tables` (fresh counters at zero): those with local secondary indexes now,
    /// the others on a background thread from a snapshot taken here. Call it before the
    /// engine accepts any write.
    pub(crate) fn start(
        &self,
        storage: &dyn Storage,
        tables: Vec<Arc<Table>>,
    ) -> Result<(), Error> {
        if tables.is_empty() {
            return Ok(()); // a clean start
        }
        let (now, later): (Vec<_>, Vec<_>) = tables
            .into_iter()
            .partition(|t| !t.def.local_indexes.is_empty());
        // One instant for both: taken before any write is accepted.
        let snapshot = storage.snapshot();
        let never = AtomicBool::new(false);
        for t in now {
            let (n, bytes) = scan_totals(&*snapshot, &t, &never)?;
            t.counters.items.store(n, Ordering::Relaxed);
            t.counters.bytes.store(bytes, Ordering::Relaxed);
        }
        if later.is_empty() {
            return Ok(());
        }
        for t in &later {
            t.counters.recounting.store(true, Ordering::Release);
        }
        let cancel = self.cancel.clone();
        let worker = std::thread::Builder::new()
            .name("stats-recount".into())
            .spawn(move || {
                #[cfg(test)]
                drop(tests::RECOUNT_GATE.lock());
                let started = std::time::Instant::now();
                for t in later {
                    let totals = scan_totals(&*snapshot, &t, &cancel);
                    if cancel.load(Ordering::Relaxed) {
                        return; // the engine is going away; figures stay marked partial
                    }
                    match totals {
                        Ok((n, bytes)) => {
                            t.counters.items.fetch_add(n, Ordering::Relaxed);
                            t.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                            t.counters.recounting.store(false, Ordering::Release);
                            tracing::info!(table = %t.def.name, items = n, elapsed = ?started.elapsed(), "table statistics recounted");
                        }
                        // A table dropped meanwhile, or a read error: the figures stay partial
                        // and unsaved, so the next open tries again.
                        Err(e) => tracing::warn!(table = %t.def.name, error = %e, "table statistics not recounted"),
                    }
                }
            })
            .map_err(|e| Error::internal(format!("starting the statistics recount: {e}")))?;
        *self.worker.lock() = Some(worker);
        Ok(())
    }
}

impl Engine {
    /// (name, ItemCount, TableSizeBytes) of every table, read from the live counters (the
    /// figures DescribeTable reports; partial while a background recount runs).
    pub fn table_statistics(&self) -> Vec<(String, u64, u64)> {
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        let mut out: Vec<(String, u64, u64)> = tables
            .iter()
            .map(|t| {
                let (items, bytes) = self.item_statistics(t);
                (t.def.name.clone(), items, bytes)
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// (ItemCount, TableSizeBytes) of a table: its live counters in memory, or on a shared
    /// engine the sums of its counter rows.
    pub(crate) fn item_statistics(&self, table: &Table) -> (u64, u64) {
        if !self.shared {
            let items = table.counters.items.load(Ordering::Relaxed).max(0) as u64;
            let bytes = table.counters.bytes.load(Ordering::Relaxed).max(0) as u64;
            return (items, bytes);
        }
        let prefix = crate::write::shared_stat_key(b'i', &[]);
        let items: i64 = match self.storage.counters(&table.def.keyspace, &prefix) {
            Ok(rows) => rows.iter().map(|(_, n)| *n).sum(),
            Err(e) => {
                tracing::warn!(error = %e, "reading table statistics failed");
                0
            }
        };
        let prefix = crate::write::shared_stat_key(b'b', &[]);
        let bytes: i64 = match self.storage.counters(&table.def.keyspace, &prefix) {
            Ok(rows) => rows.iter().map(|(_, n)| *n).sum(),
            Err(e) => {
                tracing::warn!(error = %e, "reading table statistics failed");
                0
            }
        };
        (items.max(0) as u64, bytes.max(0) as u64)
    }

    /// Blocks until the statistics of every table are complete: returns at once unless a
    /// recount after a crash is still running in the background (see `stats.rs`).
    pub fn wait_for_statistics(&self) {
        let mut worker = self.recount.worker.lock();
        if let Some(w) = worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrodyn_model::{AttributeValue as AV, Item};
    use ferrodyn_storage::{FjallStorage, Storage};

    use super::{hex, unhex};
    use crate::items::{DeleteItemInput, PutItemInput};
    use crate::{Engine, EngineConfig};

    /// Held by a test to keep background recounts from starting until it lets go.
    pub(super) static RECOUNT_GATE: parking_lot::Mutex<()> = parking_lot::const_mutex(());

    #[test]
    fn hex_round_trips() {
        let b = vec![0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(unhex(&hex(&b)), Some(b));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    fn counts(engine: &Engine) -> (i64, i64) {
        let t = engine.table("t").unwrap();
        (
            t.counters.items.load(std::sync::atomic::Ordering::Relaxed),
            t.counters.bytes.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn put(engine: &Engine, pk: &str) {
        engine
            .put_item(PutItemInput {
                table: "t".into(),
                item: Item::from([
                    ("pk".to_string(), AV::S(pk.into())),
                    ("v".to_string(), AV::S("x".repeat(100))),
                ]),
                ..Default::default()
            })
            .unwrap();
    }

    fn open_dir(dir: &std::path::Path) -> Engine {
        let s: Arc<dyn Storage> = Arc::new(FjallStorage::open(dir).unwrap());
        Engine::open(s, EngineConfig::default()).unwrap()
    }

    /// `engine` with a hash table `t` holding `n` items, `k0`..`k{n-1}`.
    fn with_items(engine: Engine, n: usize) -> Engine {
        crate::create_hash_table(&engine, "t");
        for i in 0..n {
            put(&engine, &format!("k{i}"));
        }
        engine
    }

    /// A clean close saves the figures and the next open uses them; a crash (no close) after
    /// more writes makes the next open recount, so the figures stay right either way.
    #[test]
    fn statistics_survive_clean_restarts_and_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let open = || open_dir(dir.path());
        let engine = with_items(open(), 50);
        engine
            .delete_item(DeleteItemInput {
                table: "t".into(),
                key: Item::from([("pk".to_string(), AV::S("k0".into()))]),
                ..Default::default()
            })
            .unwrap();
        let before = counts(&engine);
        assert_eq!(before.0, 49);
        engine.close().unwrap();
        drop(engine);

        let engine = open();
        assert_eq!(counts(&engine), before, "loaded from the clean shutdown");
        // The saved figures are consumed at open: a crash now must not reuse them.
        assert_eq!(
            engine.storage.get(super::STATS, super::CLEAN).unwrap(),
            None
        );
        put(&engine, "late");
        let after = counts(&engine);
        assert_eq!(after.0, 50);
        drop(engine); // no close: like a crash

        let engine = open();
        engine.wait_for_statistics();
        assert_eq!(counts(&engine), after, "recounted after the crash");
    }

    /// The exact figures of table `t`, from a scan of what it stores.
    fn scanned(engine: &Engine) -> (i64, i64) {
        let t = engine.table("t").unwrap();
        let (mut n, mut bytes) = (0, 0);
        engine
            .storage
            .scan(
                &t.def.keyspace,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
                &mut |_, v| {
                    n += 1;
                    bytes += crate::itemcodec::stored_size(v).unwrap() as i64;
                    true
                },
            )
            .unwrap();
        (n, bytes)
    }

    /// After a crash the recount runs beside new writes; its snapshot plus their deltas must
    /// give the exact figures however the two interleave, and those survive a clean restart.
    #[test]
    fn writes_during_a_background_recount_keep_the_figures_exact() {
        let dir = tempfile::tempdir().unwrap();
        let open = || open_dir(dir.path());
        let engine = with_items(open(), 400);
        drop(engine); // no close: like a crash

        // The recount's snapshot is taken at open; its scan waits until the writes are done.
        let gate = RECOUNT_GATE.lock();
        let engine = open();
        for i in 0..40 {
            put(&engine, &format!("new{i}"));
            if i < 10 {
                engine
                    .delete_item(DeleteItemInput {
                        table: "t".into(),
                        key: Item::from([("pk".to_string(), AV::S(format!("k{i}")))]),
                        ..Default::default()
                    })
                    .unwrap();
            }
            engine
                .put_item(PutItemInput {
                    table: "t".into(),
                    item: Item::from([
                        ("pk".to_string(), AV::S(format!("k{}", 100 + i))),
                        ("v".to_string(), AV::S("y".repeat(300))),
                    ]),
                    ..Default::default()
                })
                .unwrap();
        }
        let partial = counts(&engine);
        assert_eq!(
            partial.0, 30,
            "40 puts of new keys, 10 deletes; the rest is pending"
        );
        drop(gate);
        engine.wait_for_statistics();
        let exact = scanned(&engine);
        assert_eq!(exact.0, 430);
        assert_eq!(counts(&engine), exact);
        engine.close().unwrap();
        drop(engine);

        let engine = open();
        engine.wait_for_statistics();
        assert_eq!(counts(&engine), exact, "saved at close once complete");
    }

    /// Figures still partial at close are not saved: the next open recounts the table.
    #[test]
    fn partial_figures_are_not_saved() {
        let dir = tempfile::tempdir().unwrap();
        let open = || open_dir(dir.path());
        let engine = with_items(open(), 30);
        let exact = scanned(&engine);
        let t = engine.table("t").unwrap();
        t.counters
            .items
            .store(12345, std::sync::atomic::Ordering::Relaxed);
        t.counters
            .recounting
            .store(true, std::sync::atomic::Ordering::Release);
        engine.close().unwrap();
        drop(engine);

        let engine = open();
        engine.wait_for_statistics();
        assert_eq!(counts(&engine), exact);
    }
}
