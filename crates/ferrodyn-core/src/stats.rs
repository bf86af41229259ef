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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ferrodyn_model::Error;
use ferrodyn_storage::{Durability, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::{storage_err, Engine, Table};

pub(crate) const STATS: &str = "stats";
const CLEAN: &[u8] = b"clean";
const TABLE_PREFIX: &[u8] = b"t:";

#[derive(Serialize, Deserialize)]
struct Saved {
    items: i64,
    bytes: i64,
    /// Item collection sizes: (hex of the partition prefix, bytes).
    collections: Vec<(String, i64)>,
}

fn hex(bytes: &[u8]) -> String {
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

fn record_key(table_id: &str) -> Vec<u8> {
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
        let mut batch = WriteBatch::default();
        for t in self.tables.read().values() {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrodyn_model::{AttributeValue as AV, Item};
    use ferrodyn_storage::{FjallStorage, Storage};

    use super::{hex, unhex};
    use crate::items::{DeleteItemInput, PutItemInput};
    use crate::{Engine, EngineConfig};

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

    /// A clean close saves the figures and the next open uses them; a crash (no close) after
    /// more writes makes the next open recount, so the figures stay right either way.
    #[test]
    fn statistics_survive_clean_restarts_and_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let s: Arc<dyn Storage> = Arc::new(FjallStorage::open(dir.path()).unwrap());
            Engine::open(s, EngineConfig::default()).unwrap()
        };
        let engine = open();
        crate::create_hash_table(&engine, "t");
        for i in 0..50 {
            put(&engine, &format!("k{i}"));
        }
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
        assert_eq!(counts(&engine), after, "recounted after the crash");
    }
}
