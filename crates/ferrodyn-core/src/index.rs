//! Secondary indexes: entry layout, maintenance on writes, key validation, and the background
//! jobs that build (backfill) and drop global secondary indexes online.
//!
//! Entry layout in an index's keyspace: `hash64(enc(index pk)) ++ enc(index pk) ++
//! enc(index sk)?` (exactly the partition layout of [`crate::keys`], so Query/Scan code paths are
//! shared) followed by `enc(table pk) ++ enc(table sk)?`, which makes entries unique when several
//! items share an index key. The value is the projected item. With a multi-attribute key (global
//! indexes: up to 4 HASH and 4 RANGE attributes), `enc(index pk)` is the tuple encoding of the
//! HASH attributes' values and `enc(index sk)` that of the RANGE attributes' values, in
//! key-schema order, so a partition's entries sort by the RANGE values as a tuple and a Query
//! fixing the leading RANGE values reads one contiguous range.
//!
//! Invariants:
//! - an item has an entry in an index iff it has every index key attribute (all of them, for a
//!   multi-attribute key) with the declared type (sparse indexes); the entry is staged in the same storage batch as the item itself;
//! - writes maintain every index that is not `Deleting`, including indexes still `Creating`;
//! - the backfill of a `Creating` index only starts once no writer can still hold a table
//!   definition without that index, and it writes each entry from the item as read under the
//!   item's lock stripe; together with the previous point this makes the finished index equal to
//!   the table whatever writes ran concurrently;
//! - an index keyspace is dropped only after its index left the catalog and no writer can still
//!   stage entries into it.

use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_model::keycodec::encode_key_value;
use ferrodyn_model::{AttributeValue, Error, Item};
use ferrodyn_storage::{Durability, Storage, WriteBatch};

use crate::keys::partition_prefix_of;
use crate::table::{IndexDef, IndexStatus, KeyAttr, ProjectionType, TableDef};
use crate::{itemcodec, storage_err, Engine, Table, CATALOG};

/// Key size limits, the same for index keys as for table keys.
const MAX_HASH_KEY_BYTES: usize = 2048;
const MAX_RANGE_KEY_BYTES: usize = 1024;
/// Items read and indexed per backfill step (one storage batch, stripes held for its duration).
const BACKFILL_CHUNK: usize = 256;
/// How long a job waits for requests still holding an outdated table definition.
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(30);

/// The indexes a write must maintain.
pub(crate) fn maintained(def: &TableDef) -> impl Iterator<Item = &IndexDef> {
    def.local_indexes.iter().chain(
        def.global_indexes
            .iter()
            .filter(|ix| ix.status != IndexStatus::Deleting),
    )
}

/// The value of an index key attribute if it can be indexed: right type, not empty, within the
/// size limit (writes reject violations; a backfill leaves such pre-existing items out).
fn typed<'a>(k: &KeyAttr, item: &'a Item, max_len: usize) -> Option<&'a AttributeValue> {
    let v = item.get(&k.name)?;
    if v.scalar_type() != Some(k.ty) {
        return None;
    }
    let len = match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        _ => 1,
    };
    (len > 0 && len <= max_len).then_some(v)
}

/// `enc(pk) ++ enc(sk)?` of the table's primary key in `item`.
fn table_key_suffix(def: &TableDef, item: &Item, out: &mut Vec<u8>) -> Option<()> {
    encode_key_value(item.get(&def.hash_key.name)?, out);
    if let Some(r) = &def.range_key {
        encode_key_value(item.get(&r.name)?, out);
    }
    Some(())
}

/// The storage key of `item`'s entry in `ix`, or `None` when the item is not in the index.
pub(crate) fn entry_key(def: &TableDef, ix: &IndexDef, item: &Item) -> Option<Vec<u8>> {
    let mut pk = Vec::with_capacity(1);
    for k in ix.hash_keys() {
        pk.push(typed(k, item, MAX_HASH_KEY_BYTES)?);
    }
    let mut key = partition_prefix_of(pk);
    for k in ix.range_keys() {
        encode_key_value(typed(k, item, MAX_RANGE_KEY_BYTES)?, &mut key);
    }
    table_key_suffix(def, item, &mut key)?;
    Some(key)
}

/// Storage key of an index entry from a key map holding index and table key attributes
/// (ExclusiveStartKey); `None` when the map does not fit the schemas.
pub(crate) fn entry_key_of_key_map(def: &TableDef, ix: &IndexDef, key: &Item) -> Option<Vec<u8>> {
    let mut expected: Vec<&KeyAttr> = ix.key_attrs().collect();
    for k in std::iter::once(&def.hash_key).chain(def.range_key.as_ref()) {
        if !expected.iter().any(|e| e.name == k.name) {
            expected.push(k);
        }
    }
    if key.len() != expected.len() {
        return None;
    }
    for k in &expected {
        let v = key.get(&k.name)?;
        if v.scalar_type() != Some(k.ty) {
            return None;
        }
    }
    entry_key(def, ix, key)
}

/// Names of the attributes an index stores for each item; `None` = all of them.
pub(crate) fn projected_names<'a>(def: &'a TableDef, ix: &'a IndexDef) -> Option<Vec<&'a str>> {
    if ix.projection == ProjectionType::All {
        return None;
    }
    let mut names: Vec<&str> = def.key_names().collect();
    names.extend(ix.key_attrs().map(|k| k.name.as_str()));
    if ix.projection == ProjectionType::Include {
        names.extend(ix.non_key_attributes.iter().map(String::as_str));
    }
    Some(names)
}

/// The part of `item` an index stores.
pub(crate) fn projected(def: &TableDef, ix: &IndexDef, item: &Item) -> Item {
    match projected_names(def, ix) {
        None => item.clone(),
        Some(names) => names
            .into_iter()
            .filter_map(|n| item.get(n).map(|v| (n.to_string(), v.clone())))
            .collect(),
    }
}

/// The key attributes of an index entry as LastEvaluatedKey reports them: index key plus
/// table key.
pub(crate) fn entry_key_map(def: &TableDef, ix: &IndexDef, item: &Item) -> Item {
    let mut m = Item::new();
    let names = ix
        .key_attrs()
        .chain(std::iter::once(&def.hash_key))
        .chain(def.range_key.as_ref());
    for k in names {
        if let Some(v) = item.get(&k.name) {
            m.insert(k.name.clone(), v.clone());
        }
    }
    m
}

/// Stages the index side of an item change from `old` to `new` into `batch`.
pub(crate) fn stage(
    def: &TableDef,
    old: Option<&Item>,
    new: Option<&Item>,
    batch: &mut WriteBatch,
) {
    for ix in maintained(def) {
        let old_key = old.and_then(|o| entry_key(def, ix, o));
        let new_key = new.and_then(|n| entry_key(def, ix, n));
        if let Some(ok) = &old_key {
            if new_key.as_ref() != Some(ok) {
                batch.delete(&ix.keyspace, ok.as_slice());
            }
        }
        if let (Some(nk), Some(item)) = (new_key, new) {
            batch.put(
                &ix.keyspace,
                nk,
                itemcodec::encode_item(&projected(def, ix, item)),
            );
        }
    }
}

/// Rejects an item whose index key attributes have the wrong type or are empty, with AWS's
/// messages. Called on every put/update path before anything is staged.
pub(crate) fn validate_index_keys(def: &TableDef, item: &Item) -> Result<(), Error> {
    for ix in maintained(def) {
        let keys = ix
            .hash_keys()
            .map(|k| (k, true))
            .chain(ix.range_keys().map(|k| (k, false)));
        for (k, is_hash) in keys {
            if def.is_key(&k.name) {
                continue; // checked as a table key
            }
            let Some(v) = item.get(&k.name) else { continue };
            if v.scalar_type() != Some(k.ty) {
                return Err(Error::validation(format!(
                    "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                    k.name,
                    k.ty.as_str(),
                    v.type_name(),
                    ix.name
                )));
            }
            let empty = match v {
                AttributeValue::S(s) => s.is_empty().then_some("string"),
                AttributeValue::B(b) => b.is_empty().then_some("binary"),
                _ => None,
            };
            let len = match v {
                AttributeValue::S(s) => s.len(),
                AttributeValue::B(b) => b.len(),
                _ => 0,
            };
            if is_hash && len > MAX_HASH_KEY_BYTES {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
                ));
            }
            if !is_hash && len > MAX_RANGE_KEY_BYTES {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
                ));
            }
            if let Some(what) = empty {
                return Err(Error::validation(format!(
                    "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty {what} value. IndexName: {}, IndexKey: {}",
                    ix.name, k.name
                )));
            }
        }
    }
    Ok(())
}

/// What the background index jobs share with the engine.
#[derive(Clone)]
pub(crate) struct JobContext {
    storage: Arc<dyn Storage>,
    durability: Durability,
    tables: Arc<crate::Catalog>,
    ddl: Arc<crate::locks::Ddl>,
    locks: Arc<crate::locks::Locks>,
}

/// Waits until no request holds `table` any more (the caller's reference aside), so that every
/// later write uses a newer definition. Bounded: a stuck reference only delays the job.
pub(crate) fn quiesce(table: Option<Arc<Table>>) {
    let Some(t) = table else { return };
    let start = Instant::now();
    while Arc::strong_count(&t) > 1 && start.elapsed() < QUIESCE_TIMEOUT {
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl JobContext {
    fn current(&self, name: &str, id: &str) -> Option<Arc<Table>> {
        self.tables
            .read()
            .get(name)
            .filter(|t| t.def.id == id)
            .cloned()
    }

    fn persist(&self, def: &TableDef) -> Result<(), Error> {
        let raw = serde_json::to_vec(def).map_err(Error::internal)?;
        let mut batch = WriteBatch::default();
        batch.put(CATALOG, def.name.as_bytes(), &raw);
        self.storage
            .write(batch, self.durability)
            .map_err(storage_err)
    }

    /// Replaces the catalog entry of a table by `def` (caller holds `ddl`); returns the
    /// replaced in-memory table.
    fn install(&self, old: &Arc<Table>, def: TableDef) -> Result<Arc<Table>, Error> {
        self.persist(&def)?;
        let new = Arc::new(Table {
            def,
            counters: old.counters.clone(),
        });
        let replaced = self.tables.write().insert(new.def.name.clone(), new);
        Ok(replaced.unwrap_or_else(|| old.clone()))
    }

    /// Builds a `Creating` global index from the table's current items, then makes it `Active`.
    fn backfill(&self, table: &str, id: &str, index: &str) -> Result<(), Error> {
        let mut cursor: Option<Vec<u8>> = None;
        // Chunks written before a reopen of the store may be lost with it (with buffered
        // durability): the cursor then runs ahead of the index, so every chunk is staged
        // against the store the backfill began on, and the job stops (to resume from the
        // start at the next open) if the store is reopened meanwhile.
        let generation = self.storage.generation();
        loop {
            let Some(t) = self.current(table, id) else {
                return Ok(()); // table deleted meanwhile
            };
            let Some(ix) = t
                .def
                .global_indexes
                .iter()
                .find(|ix| ix.name == index && ix.status == IndexStatus::Creating)
            else {
                return Ok(()); // index deleted meanwhile
            };
            let mut keys: Vec<Vec<u8>> = Vec::with_capacity(BACKFILL_CHUNK);
            let lower = match &cursor {
                Some(c) => Bound::Excluded(c.as_slice()),
                None => Bound::Unbounded,
            };
            self.storage
                .scan(
                    &t.def.keyspace,
                    lower,
                    Bound::Unbounded,
                    false,
                    &mut |k, _| {
                        keys.push(k.to_vec());
                        keys.len() < BACKFILL_CHUNK
                    },
                )
                .map_err(storage_err)?;
            let Some(last) = keys.last().cloned() else {
                break;
            };
            loop {
                match self.backfill_chunk(&t, ix, &keys, generation) {
                    Err(Error::Retry(_)) => std::thread::sleep(Duration::from_millis(5)),
                    other => break other?,
                }
            }
            cursor = Some(last);
        }
        let _ddl = self.ddl.lock()?;
        let Some(t) = self.current(table, id) else {
            return Ok(());
        };
        let mut def = t.def.clone();
        let Some(ix) = def
            .global_indexes
            .iter_mut()
            .find(|ix| ix.name == index && ix.status == IndexStatus::Creating)
        else {
            return Ok(());
        };
        ix.status = IndexStatus::Active;
        self.install(&t, def)?;
        Ok(())
    }

    /// Indexes the items at `keys` (one step of a backfill) under their locks.
    fn backfill_chunk(
        &self,
        t: &Table,
        ix: &IndexDef,
        keys: &[Vec<u8>],
        generation: u64,
    ) -> Result<(), Error> {
        let targets: Vec<(&Table, &[u8])> = keys.iter().map(|k| (t, k.as_slice())).collect();
        let mut locks = self.locks.lock(&targets)?;
        let mut batch = WriteBatch::default();
        batch.staged_at(generation);
        for k in keys {
            let Some(raw) = locks.get(&t.def.keyspace, k)? else {
                continue;
            };
            let item = itemcodec::decode_item(&raw)?;
            if let Some(ek) = entry_key(&t.def, ix, &item) {
                batch.put(
                    &ix.keyspace,
                    ek,
                    itemcodec::encode_item(&projected(&t.def, ix, &item)),
                );
            }
        }
        if locks.txn().is_some() {
            return locks.commit_shared(batch).unwrap_or(Ok(()));
        }
        if !batch.is_empty() {
            self.storage
                .write(batch, self.durability)
                .map_err(storage_err)?;
        }
        Ok(())
    }

    /// Removes a `Deleting` global index from the catalog, then drops its keyspace.
    fn drop_index(&self, table: &str, id: &str, index: &str) -> Result<(), Error> {
        let (keyspace, replaced) = {
            let _ddl = self.ddl.lock()?;
            let Some(t) = self.current(table, id) else {
                return Ok(());
            };
            let mut def = t.def.clone();
            let Some(pos) = def
                .global_indexes
                .iter()
                .position(|ix| ix.name == index && ix.status == IndexStatus::Deleting)
            else {
                return Ok(());
            };
            let ix = def.global_indexes.remove(pos);
            prune_attribute_definitions(&mut def);
            (ix.keyspace, self.install(&t, def)?)
        };
        // Readers of the old definition may still be scanning the keyspace.
        quiesce(Some(replaced));
        if self.storage.keyspace_exists(&keyspace) {
            self.storage.drop_keyspace(&keyspace).map_err(storage_err)?;
        }
        Ok(())
    }
}

/// Keeps only the attribute definitions some key schema still uses (AWS drops the others
/// when an index is deleted).
pub(crate) fn prune_attribute_definitions(def: &mut TableDef) {
    let mut used: Vec<String> = def.key_names().map(str::to_string).collect();
    for ix in def.local_indexes.iter().chain(&def.global_indexes) {
        used.extend(ix.key_attrs().map(|k| k.name.clone()));
    }
    def.attribute_definitions.retain(|a| used.contains(&a.name));
}

/// A background index job.
pub(crate) enum Job {
    Backfill,
    Drop,
}

impl Engine {
    pub(crate) fn job_context(&self) -> JobContext {
        JobContext {
            storage: self.storage.clone(),
            durability: self.config.durability,
            tables: self.tables.clone(),
            ddl: self.ddl.clone(),
            locks: self.locks.clone(),
        }
    }

    /// Starts a background job on index `index` of table `def`. `outdated` is the table
    /// definition just replaced: the job first waits until no request still uses it.
    pub(crate) fn spawn_index_job(
        &self,
        job: Job,
        def: &TableDef,
        index: &str,
        outdated: Option<Arc<Table>>,
    ) {
        if !self.leads_background() {
            // Shared storage: index jobs run on the holder of the background lease, whose
            // cluster sync starts them (`Engine::sync_cluster`) within a second.
            return;
        }
        let ctx = self.job_context();
        let (table, id, index) = (def.name.clone(), def.id.clone(), index.to_string());
        let job_key = format!("{id}/{index}");
        if !self.index_jobs.lock().insert(job_key.clone()) {
            return; // already running in this process
        }
        let running = self.index_jobs.clone();
        let key_on_failure = job_key.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("index-{index}"))
            .spawn(move || {
                quiesce(outdated);
                let r = match job {
                    Job::Backfill => ctx.backfill(&table, &id, &index),
                    Job::Drop => ctx.drop_index(&table, &id, &index),
                };
                running.lock().remove(&job_key);
                if let Err(e) = r {
                    tracing::error!(table = %table, index = %index, error = %e, "index job failed");
                }
            });
        if let Err(e) = spawned {
            self.index_jobs.lock().remove(&key_on_failure);
            tracing::error!(error = %e, "cannot start index job");
        }
    }

    /// Restarts the jobs of indexes left `Creating` or `Deleting` by a previous run.
    pub(crate) fn resume_index_jobs(&self) -> Result<(), Error> {
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        for t in tables {
            for ix in &t.def.global_indexes {
                match ix.status {
                    IndexStatus::Creating => {
                        self.spawn_index_job(Job::Backfill, &t.def, &ix.name, None)
                    }
                    IndexStatus::Deleting => {
                        self.spawn_index_job(Job::Drop, &t.def, &ix.name, None)
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Each secondary index's share of the write capacity of an item change, as DynamoDB charges
/// it: removing an entry and writing an entry each cost that entry's write units; an index the
/// change does not touch costs nothing and is not reported.
pub(crate) fn write_units(
    def: &TableDef,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Vec<crate::capacity::IndexUnits> {
    use crate::capacity::{write_units as units_of, IndexUnits};
    let size = |ix: &IndexDef, item: &Item| {
        units_of(ferrodyn_model::size::item_size(&projected(def, ix, item)))
    };
    let mut out = Vec::new();
    for ix in maintained(def) {
        let old_key = old.and_then(|o| entry_key(def, ix, o));
        let new_key = new.and_then(|n| entry_key(def, ix, n));
        let units = match (old_key, new_key, old, new) {
            (Some(a), Some(b), _, Some(n)) if a == b => size(ix, n),
            (ok, nk, o, n) => {
                let removed = match (ok, o) {
                    (Some(_), Some(o)) => size(ix, o),
                    _ => 0.0,
                };
                let written = match (nk, n) {
                    (Some(_), Some(n)) => size(ix, n),
                    _ => 0.0,
                };
                removed + written
            }
        };
        if units > 0.0 {
            let global = def.global_indexes.iter().any(|g| g.name == ix.name);
            out.push(IndexUnits {
                index: ix.name.clone(),
                global,
                units,
            });
        }
    }
    out
}
