//! The one path by which item changes reach storage.
//!
//! Invariant: every change to an item (put, update, delete, transactional or not) is staged here
//! into a storage batch, together with everything derived from it (index entries, change
//! records, audit records), so that the item and its derivatives are always written atomically.
//!
//! Durability of item writes: outside a deferral scope, [`Engine::write_items`] returns once the
//! batch is durable (with `Durability::Sync`). Inside [`Engine::deferring_durability`] it
//! returns as soon as the batch is committed (visible) and adds its ticket to the scope; the
//! caller must wait for the scope's ticket ([`Engine::durable`]) before it answers anyone. This
//! lets the server wait for fsync without holding a thread or an item lock.
//!
//! Invariants:
//! - item lock stripes may be released before the batch is durable: any later writer that reads
//!   the change commits after it, so its own (awaited) ticket covers the change as well;
//! - a scope is per thread and covers exactly one synchronous call (no `await` inside), so the
//!   thread-local cannot mix two requests; scopes do not nest;
//! - only item data goes through deferral; catalog and other control writes stay synchronous,
//!   because their later steps rely on the earlier ones being durable.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use ferrodyn_model::size::item_size;
use ferrodyn_model::Error;
use ferrodyn_model::Item;
use ferrodyn_storage::{CommitTicket, Durability, DurableFuture, Transaction, WriteBatch};

use crate::audit::{Fields, Pending, SUCCESS};
use crate::locks::ItemLocks;
use crate::{itemcodec, storage_err, Engine, Table};

thread_local! {
    /// `Some(highest ticket so far)` while this thread runs inside a deferral scope.
    static DEFERRED: Cell<Option<CommitTicket>> = const { Cell::new(None) };
}

/// Ends the scope even if the closure panics.
struct ScopeGuard;

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        DEFERRED.with(|d| d.set(None));
    }
}

impl Engine {
    /// Runs `f`; item writes inside it do not wait for durability. Returns `f`'s result and
    /// the ticket to await before answering (durable already when nothing was written).
    pub fn deferring_durability<R>(&self, f: impl FnOnce() -> R) -> (R, CommitTicket) {
        if !matches!(self.config.durability, Durability::Sync) {
            return (f(), CommitTicket::DURABLE);
        }
        let nested = DEFERRED.with(|d| d.replace(Some(CommitTicket::DURABLE)).is_some());
        debug_assert!(!nested, "deferral scopes do not nest");
        let guard = ScopeGuard;
        let out = f();
        let ticket = DEFERRED.with(|d| d.get()).unwrap_or_default();
        drop(guard);
        (out, ticket)
    }

    /// Resolves once `ticket` is durable.
    pub fn durable(&self, ticket: CommitTicket) -> DurableFuture {
        self.storage.durable(ticket)
    }

    /// An empty storage batch marked with the storage's generation: state cached in memory
    /// and staged into it (stream lanes, the audit head) was read from that store, so the
    /// storage refuses the batch if it reopened its store since (see ARCHITECTURE.md, "Storage
    /// faults").
    fn staged_batch(&self) -> WriteBatch {
        let mut batch = WriteBatch::default();
        batch.staged_at(self.storage.generation());
        batch
    }

    /// An empty batch of item changes made by `operation` (the name audit records carry when
    /// the change is made outside a request's audit context).
    pub(crate) fn item_batch(&self, operation: &'static str) -> ItemBatch {
        ItemBatch {
            batch: self.staged_batch(),
            audit: self.audit.is_some().then(Vec::new),
            operation,
            records: self.shared.then(Vec::new),
        }
    }

    /// An empty batch for loading items into a table being restored or imported: the load
    /// is one audited control-plane operation, so its items carry no audit records.
    pub(crate) fn load_batch(&self) -> ItemBatch {
        ItemBatch {
            batch: self.staged_batch(),
            audit: None,
            operation: "RestoreTable",
            records: self.shared.then(Vec::new),
        }
    }

    /// Commits the item changes staged in `batch` under `locks` (which it releases), with
    /// the statistics of each change. On an embedded engine the batch is written while the
    /// stripes are held and the statistics are applied in memory; on a shared engine the
    /// batch, its change records (numbered here, under their lanes' locks) and the
    /// statistics' counter additions are committed by the locks' transaction, durably.
    pub(crate) fn commit_locked<'t>(
        &self,
        mut locks: ItemLocks<'_>,
        mut batch: ItemBatch,
        deltas: impl IntoIterator<Item = (&'t Table, StatDelta)>,
    ) -> Result<CommitTicket, Error> {
        if let Some(txn) = locks.txn() {
            for (table, d) in deltas {
                add_shared_stats(txn.as_mut(), &table.def.keyspace, &d);
            }
            if let Some(records) = batch.records.take() {
                crate::streams::number_shared(
                    txn.as_mut(),
                    records,
                    &mut batch.batch,
                    self.config.stream_shard_records,
                )?;
            }
            // The audit head is locked last (after items and lanes): see `seal_shared`.
            if let Some(records) = batch.audit.take().filter(|r| !r.is_empty()) {
                self.seal_shared(txn.as_mut(), records, &mut batch.batch)?;
            }
            return match locks.commit_shared(batch.batch) {
                Some(r) => r.map(|()| CommitTicket::DURABLE),
                None => Err(Error::internal("transaction already committed")),
            };
        }
        let ticket = if batch.is_empty() {
            CommitTicket::DURABLE
        } else {
            self.write_items(batch)?
        };
        for (table, d) in deltas {
            apply_stats(table, d);
        }
        drop(locks);
        Ok(ticket)
    }

    /// Writes a batch of item data (items, index entries, stream and audit records) with the
    /// engine's durability, deferring the wait inside a deferral scope. Returns the batch's
    /// ticket.
    pub(crate) fn write_items(&self, batch: ItemBatch) -> Result<CommitTicket, Error> {
        let ticket = self.commit_batch(batch.batch, batch.audit.unwrap_or_default())?;
        if matches!(self.config.durability, Durability::Sync) {
            self.after_commit(ticket)?;
        }
        Ok(ticket)
    }

    /// Makes the current answer depend on `ticket`: recorded in a deferral scope, otherwise
    /// waited for here.
    pub(crate) fn after_commit(&self, ticket: CommitTicket) -> Result<(), Error> {
        let in_scope = DEFERRED.with(|d| match d.get() {
            Some(t) => {
                d.set(Some(t.max(ticket)));
                true
            }
            None => false,
        });
        if in_scope {
            Ok(())
        } else {
            self.storage.wait_durable(ticket).map_err(storage_err)
        }
    }
}

/// The storage batch of one write request's item changes, with their audit records (sealed
/// with sequence numbers and hashes when committed, see `Engine::commit_batch`).
pub(crate) struct ItemBatch {
    pub(crate) batch: WriteBatch,
    /// `Some` when the engine audits.
    audit: Option<Vec<Pending>>,
    operation: &'static str,
    /// `Some` on a shared engine: change records whose sequence numbers are assigned at
    /// commit, under their lanes' database locks (`streams::number_shared`).
    pub(crate) records: Option<Vec<crate::streams::PendingRecord>>,
}

impl ItemBatch {
    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.records.as_ref().is_none_or(Vec::is_empty)
    }
}

/// One staged item change, for statistics once the batch is durable.
#[derive(Debug, Default, Clone)]
pub(crate) struct StatDelta {
    pub items: i64,
    pub bytes: i64,
    /// Change of an item collection's size (tables with local secondary indexes).
    pub collection: Option<(Vec<u8>, i64)>,
}

/// The item a change replaces, as far as staging needs to know it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Old<'a> {
    /// There is none.
    Absent,
    /// Decoded: index entries, stream images and item-collection sizes derive from it.
    Item(&'a Item),
    /// Known by its size only (read from its stored form, not decoded): enough for tables
    /// where [`derives_from_old`] is false.
    Sized(usize),
}

impl<'a> Old<'a> {
    /// From a stored item's size (`None`: there is none).
    pub(crate) fn sized(size: Option<usize>) -> Self {
        size.map_or(Old::Absent, Old::Sized)
    }

    pub(crate) fn item(self) -> Option<&'a Item> {
        match self {
            Old::Item(i) => Some(i),
            Old::Absent | Old::Sized(_) => None,
        }
    }

    pub(crate) fn size(self) -> Option<usize> {
        match self {
            Old::Absent => None,
            Old::Item(i) => Some(item_size(i)),
            Old::Sized(s) => Some(s),
        }
    }
}

impl<'a> From<Option<&'a Item>> for Old<'a> {
    fn from(item: Option<&'a Item>) -> Self {
        item.map_or(Old::Absent, Old::Item)
    }
}

/// Whether staging a change of `table`'s items needs the old item's contents (index entries,
/// stream images, item-collection sizes, the audit record's old image), not just its presence
/// and size.
pub(crate) fn derives_from_old(engine: &Engine, table: &Table) -> bool {
    engine.audit.is_some() || table_derives_from_old(table)
}

/// The part of [`derives_from_old`] that depends on the table alone.
fn table_derives_from_old(table: &Table) -> bool {
    let def = &table.def;
    !def.local_indexes.is_empty()
        || !def.global_indexes.is_empty()
        || def.stream.as_ref().is_some_and(|s| s.enabled)
        || def.pitr.is_some()
}

/// Stages the change of one item from `old` to `new` (`None` = absent) into `batch`, with its
/// audit record when the engine audits. `old` may be [`Old::Sized`] only where
/// [`derives_from_old`] is false.
pub(crate) fn stage_item_change(
    table: &Table,
    key: &[u8],
    old: Old<'_>,
    new: Option<&Item>,
    staged: &mut ItemBatch,
) -> StatDelta {
    debug_assert!(
        !matches!(old, Old::Sized(_)) || (staged.audit.is_none() && !table_derives_from_old(table))
    );
    let new_size = new.map(item_size).unwrap_or(0);
    let encoded = new.map(|item| itemcodec::encode_item_sized(item, new_size));
    let old_item = old.item();
    if let Some(records) = &mut staged.audit {
        let def = &table.def;
        let key_item = new
            .or(old_item)
            .map(|i| itemcodec::encode_item(&crate::keys::key_map(def, i)));
        let old_image = old_item.map(itemcodec::encode_item);
        records.push(Pending::in_context(
            staged.operation,
            &Fields {
                table: Some(&def.name),
                key: key_item.as_deref(),
                outcome: SUCCESS,
                old: old_image.as_deref(),
                new: encoded.as_deref(),
            },
        ));
    }
    let batch = &mut staged.batch;
    match encoded {
        Some(value) => batch.put(&table.def.keyspace, key, value),
        None => batch.delete(&table.def.keyspace, key),
    }
    crate::index::stage(&table.def, old_item, new, batch);
    crate::pitr::stage(&table.def, key, old_item, batch);
    crate::streams::stage(table, key, old_item, new, batch, staged.records.as_mut());
    let old_size = old.size();
    StatDelta {
        items: i64::from(new.is_some()) - i64::from(old_size.is_some()),
        bytes: new_size as i64 - old_size.unwrap_or(0) as i64,
        collection: crate::collections::delta(&table.def, old_item, new),
    }
}

/// Rows over which each statistic of a table is spread on a shared engine, so that
/// concurrent writers of one table rarely add to the same counter row.
const STAT_SLOTS: u64 = 16;

/// Counter key of one statistic of a table on a shared engine. The counters live in the
/// table's own keyspace (counters are apart from its items), so dropping the table's keyspace
/// drops them: `kind ‖ rest`, where kind is `i` (items) or `b` (bytes), each followed by a
/// slot byte, or `c` (item-collection size) followed by the collection's partition prefix.
pub(crate) fn shared_stat_key(kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(kind);
    k.extend_from_slice(rest);
    k
}

/// Adds one change's statistics to the transaction's counter additions (shared engines).
fn add_shared_stats(txn: &mut dyn Transaction, keyspace: &str, d: &StatDelta) {
    use std::hash::BuildHasher;
    let slot =
        [(std::collections::hash_map::RandomState::new().hash_one(d.bytes) % STAT_SLOTS) as u8];
    if d.items != 0 {
        txn.add(keyspace, &shared_stat_key(b'i', &slot), d.items);
    }
    if d.bytes != 0 {
        txn.add(keyspace, &shared_stat_key(b'b', &slot), d.bytes);
    }
    if let Some((prefix, size)) = &d.collection {
        if *size != 0 {
            txn.add(keyspace, &shared_stat_key(b'c', prefix), *size);
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrodyn_model::{AttributeValue as AV, Item};
    use ferrodyn_storage::{CommitTicket, FjallStorage, Storage};

    use crate::items::{GetItemInput, PutItemInput};
    use crate::transact::{TransactWriteInput, TransactWriteItem, WriteAction};
    use crate::{Engine, EngineConfig};

    fn item(pk: &str) -> Item {
        Item::from([("pk".to_string(), AV::S(pk.into()))])
    }

    #[test]
    fn overwriting_puts_and_batch_writes_keep_the_statistics_right() {
        use ferrodyn_model::size::item_size;
        use ferrodyn_storage::MemoryStorage;
        use std::sync::atomic::Ordering;

        let engine = Engine::open(Arc::new(MemoryStorage::new()), EngineConfig::default()).unwrap();
        crate::create_hash_table(&engine, "t");
        let sized = |pk: &str, len: usize| {
            let mut it = item(pk);
            it.insert("v".into(), AV::S("x".repeat(len)));
            it
        };
        let put = |it: &Item| {
            engine
                .put_item(PutItemInput {
                    table: "t".into(),
                    item: it.clone(),
                    ..Default::default()
                })
                .unwrap();
        };
        // Replaced items are sized from their stored form, not decoded (a table without
        // indexes or stream, no condition, no ALL_OLD).
        let table = engine.table("t").unwrap();
        assert!(!super::derives_from_old(&engine, &table));
        let (a1, a2, b) = (sized("a", 10), sized("a", 300), sized("b", 5));
        put(&a1);
        put(&a2);
        put(&b);
        put(&b);
        let stats = || {
            let counters = &engine.table("t").unwrap().counters;
            (
                counters.items.load(Ordering::Relaxed),
                counters.bytes.load(Ordering::Relaxed),
            )
        };
        assert_eq!(stats(), (2, (item_size(&a2) + item_size(&b)) as i64));

        // BatchWriteItem takes the same path: a put over `b`, a new `c`, a delete of `a` and
        // one of an item that does not exist.
        use crate::batch::{BatchWriteInput, WriteRequest};
        let (b2, c) = (sized("b", 50), sized("c", 7));
        engine
            .batch_write_item(BatchWriteInput {
                tables: vec![(
                    "t".into(),
                    vec![
                        WriteRequest::Put(b2.clone()),
                        WriteRequest::Put(c.clone()),
                        WriteRequest::Delete(item("a")),
                        WriteRequest::Delete(item("zz")),
                    ],
                )],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(stats(), (2, (item_size(&b2) + item_size(&c)) as i64));
    }

    #[test]
    fn items_stored_by_earlier_builds_read_the_same() {
        use crate::capacity::ReturnConsumedCapacity;
        use crate::itemcodec;
        use crate::items::{ReadItem, ReturnValues};
        use crate::query::{PageItems, ReadOptions, ScanInput};
        use ferrodyn_storage::{Durability, MemoryStorage, WriteBatch};

        let storage = Arc::new(MemoryStorage::new());
        let engine = Engine::open(storage.clone(), EngineConfig::default()).unwrap();
        crate::create_hash_table(&engine, "t");
        // About 5 KB: a wrong size would change the capacity units.
        let mut it = item("a");
        it.insert("s".into(), AV::S("h\u{e9}llo ".repeat(800)));
        it.insert(
            "n".into(),
            AV::N(ferrodyn_model::Number::parse("-12.5").unwrap()),
        );
        let put = |return_values| {
            engine
                .put_item(PutItemInput {
                    table: "t".into(),
                    item: it.clone(),
                    return_values,
                    ..Default::default()
                })
                .unwrap()
                .attributes
        };
        let get = || {
            let out = engine
                .get_item(GetItemInput {
                    table: "t".into(),
                    key: item("a"),
                    return_consumed: ReturnConsumedCapacity::Total,
                    ..Default::default()
                })
                .unwrap();
            let Some(ReadItem::Stored(raw)) = out.item else {
                panic!("GetItem should return the stored form")
            };
            (raw, out.consumed.unwrap().capacity_units)
        };
        let scan = || {
            let out = engine
                .scan(ScanInput {
                    table: "t".into(),
                    read: ReadOptions {
                        return_consumed: ReturnConsumedCapacity::Total,
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .unwrap();
            let Some(PageItems::Stored(items)) = out.items else {
                panic!("Scan should return stored forms")
            };
            let raw: Vec<Vec<u8>> = items.iter().map(<[u8]>::to_vec).collect();
            (raw, out.consumed.unwrap().capacity_units)
        };
        put(ReturnValues::None);
        let (v2, get_units) = get();
        let (_, scan_units) = scan();
        assert_eq!(v2[0], 2);
        assert_eq!(get_units, 1.0);

        // Store the item in format 1 instead, as a build before format 2 left it.
        let v1 = itemcodec::to_format_1(&v2);
        let table = engine.table("t").unwrap();
        let key = crate::keys::key_of_item(&table.def, &it).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(&table.def.keyspace, &key, v1.clone());
        storage.write(batch, Durability::Sync).unwrap();

        let (raw, units) = get();
        assert_eq!((raw.clone(), units), (v1.clone(), get_units));
        assert_eq!(itemcodec::decode_item(&raw).unwrap(), it);
        assert_eq!(scan(), (vec![v1], scan_units));
        // A write that reads the old item decodes format 1 too, and rewrites it in format 2.
        assert_eq!(put(ReturnValues::AllOld), Some(it.clone()));
        assert_eq!(get(), (v2, get_units));
    }

    #[test]
    fn deferral_scope_returns_the_ticket_to_await() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(FjallStorage::open(dir.path()).unwrap());
        let engine = Engine::open(storage.clone(), EngineConfig::default()).unwrap();
        crate::create_hash_table(&engine, "t");
        let put = |pk: &str| PutItemInput {
            table: "t".into(),
            item: item(pk),
            ..Default::default()
        };

        // Inside a scope: committed and readable, the ticket is left to the caller.
        let (out, ticket) = engine.deferring_durability(|| engine.put_item(put("a")));
        out.unwrap();
        assert!(!ticket.is_durable_already());
        let got = engine.get_item(GetItemInput {
            table: "t".into(),
            key: item("a"),
            ..Default::default()
        });
        assert!(got.unwrap().item.is_some());
        storage.wait_durable(ticket).unwrap();

        // A scope without writes, and a failed write, need no waiting.
        let (_, none) = engine.deferring_durability(|| ());
        assert_eq!(none, CommitTicket::DURABLE);
        let (err, none) = engine.deferring_durability(|| {
            engine.put_item(PutItemInput {
                condition_expression: Some("attribute_not_exists(pk)".into()),
                ..put("a")
            })
        });
        assert!(err.is_err());
        assert_eq!(none, CommitTicket::DURABLE);

        // Outside a scope the write waited itself; the scope is gone after use.
        engine.put_item(put("b")).unwrap();
        let (_, none) = engine.deferring_durability(|| ());
        assert_eq!(none, CommitTicket::DURABLE);

        // An idempotent replay answers only once the original transaction is durable: it
        // carries the original's ticket.
        let tx = || TransactWriteInput {
            items: vec![TransactWriteItem {
                table: "t".into(),
                action: WriteAction::Put {
                    item: item("c"),
                    condition_expression: None,
                },
                params: Default::default(),
                return_old_on_condition_failure: false,
            }],
            client_request_token: Some("tok".into()),
            ..Default::default()
        };
        let (first, t1) = engine.deferring_durability(|| engine.transact_write(tx()));
        first.unwrap();
        let (replay, t2) = engine.deferring_durability(|| engine.transact_write(tx()));
        replay.unwrap();
        assert!(!t1.is_durable_already());
        assert_eq!(t1, t2);
    }
}
