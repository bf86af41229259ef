//! Item collections: on a table with local secondary indexes, all items sharing a partition key
//! value (with their LSI entries) form a collection limited to 10 GB.
//!
//! Invariant: sizes are derived data, kept in memory next to the table's other statistics,
//! updated once a change is durable and recomputed from storage at open (embedded engines), or
//! kept as database counters added to in the change's own transaction (shared engines). The limit is checked
//! before anything is staged; concurrent writers of one collection may overshoot it by their own
//! sizes, as DynamoDB's estimate may.

use ferrodyn_model::size::item_size;
use ferrodyn_model::{Error, Item};

use crate::index::{entry_key, projected};
use crate::keys::partition_prefix;
use crate::table::TableDef;
use crate::write::shared_stat_key;
use crate::{storage_err, Engine, Table};

/// DynamoDB's limit on an item collection.
pub const MAX_COLLECTION_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// The collection an item belongs to (its partition), for tables with LSIs.
pub(crate) fn collection_of(def: &TableDef, item: &Item) -> Option<Vec<u8>> {
    if def.local_indexes.is_empty() {
        return None;
    }
    item.get(&def.hash_key.name).map(partition_prefix)
}

/// What an item contributes to its collection: itself plus its LSI entries.
pub(crate) fn footprint(def: &TableDef, item: &Item) -> i64 {
    let mut size = item_size(item);
    for ix in &def.local_indexes {
        if entry_key(def, ix, item).is_some() {
            size += item_size(&projected(def, ix, item));
        }
    }
    size as i64
}

/// The change of one collection's size caused by an item going from `old` to `new`.
pub(crate) fn delta(
    def: &TableDef,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Option<(Vec<u8>, i64)> {
    let any = new.or(old)?;
    let key = collection_of(def, any)?;
    let d =
        new.map(|n| footprint(def, n)).unwrap_or(0) - old.map(|o| footprint(def, o)).unwrap_or(0);
    Some((key, d))
}

impl Engine {
    /// The current size of the collection `key` of `table`: in memory on an embedded engine,
    /// the sum of its counter on a shared one.
    fn collection_size(&self, table: &Table, key: &[u8]) -> Result<i64, Error> {
        if !self.shared {
            return Ok(table
                .counters
                .collections
                .lock()
                .get(key)
                .copied()
                .unwrap_or(0));
        }
        let counter = shared_stat_key(b'c', key);
        let rows = self
            .storage
            .counters(&table.def.keyspace, &counter)
            .map_err(storage_err)?;
        Ok(rows
            .iter()
            .filter(|(k, _)| *k == counter)
            .map(|(_, n)| *n)
            .sum())
    }

    /// Refuses a change that would grow a collection past the table's limit.
    pub(crate) fn check_collection(
        &self,
        table: &Table,
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<(), Error> {
        let Some((key, d)) = delta(&table.def, old, new) else {
            return Ok(());
        };
        if d <= 0 {
            return Ok(());
        }
        let current = self.collection_size(table, &key)?;
        if (current + d) as u64 > table.counters.collection_limit() {
            return Err(Error::ItemCollectionSizeLimitExceeded(
                "Collection size exceeded.".into(),
            ));
        }
        Ok(())
    }

    /// DynamoDB's SizeEstimateRangeGB for a collection: the whole gigabytes around its size.
    pub(crate) fn collection_size_gb(&self, table: &Table, item: &Item) -> (f64, f64) {
        let size = collection_of(&table.def, item)
            .and_then(|k| self.collection_size(table, &k).ok())
            .unwrap_or(0)
            .max(0) as f64;
        let gb = (size / (1024.0 * 1024.0 * 1024.0)).floor();
        (gb, gb + 1.0)
    }
}
