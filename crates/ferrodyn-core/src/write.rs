//! The one path by which item changes reach storage.
//!
//! Invariant: every change to an item (put, update, delete, transactional or not) is staged here
//! into a storage batch, together with everything derived from it (index entries, change
//! records), so that the item and its derivatives are always written atomically.

use std::sync::atomic::Ordering;

use ferrodyn_model::size::item_size;
use ferrodyn_model::Item;
use ferrodyn_storage::WriteBatch;

use crate::{itemcodec, Table};

/// One staged item change, for statistics once the batch is durable.
#[derive(Debug, Default, Clone)]
pub(crate) struct StatDelta {
    pub items: i64,
    pub bytes: i64,
    /// Change of an item collection's size (tables with local secondary indexes).
    pub collection: Option<(Vec<u8>, i64)>,
}

/// Stages the change of one item from `old` to `new` (`None` = absent) into `batch`.
pub(crate) fn stage_item_change(
    table: &Table,
    key: &[u8],
    old: Option<&Item>,
    new: Option<&Item>,
    batch: &mut WriteBatch,
) -> StatDelta {
    match new {
        Some(item) => batch.put(&table.def.keyspace, key, itemcodec::encode_item(item)),
        None => batch.delete(&table.def.keyspace, key),
    }
    crate::index::stage(&table.def, old, new, batch);
    crate::streams::stage(table, key, old, new, batch);
    let old_size = old.map(|i| item_size(i) as i64).unwrap_or(0);
    let new_size = new.map(|i| item_size(i) as i64).unwrap_or(0);
    StatDelta {
        items: i64::from(new.is_some()) - i64::from(old.is_some()),
        bytes: new_size - old_size,
        collection: crate::collections::delta(&table.def, old, new),
    }
}

/// Applies statistics after the batch that carried the change is durable.
pub(crate) fn apply_stats(table: &Table, d: StatDelta) {
    table.counters.items.fetch_add(d.items, Ordering::Relaxed);
    table.counters.bytes.fetch_add(d.bytes, Ordering::Relaxed);
    if let Some((key, size)) = d.collection {
        let mut map = table.counters.collections.lock();
        let slot = map.entry(key).or_insert(0);
        *slot += size;
        if *slot <= 0 {
            map.retain(|_, v| *v > 0);
        }
    }
}
