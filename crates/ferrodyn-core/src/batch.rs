//! BatchGetItem and BatchWriteItem.
//!
//! Invariants: a BatchWriteItem is validated completely (tables, keys, items, duplicates) before
//! anything is written, and is then applied as one atomic storage batch under the locks of all
//! its items (stronger than DynamoDB, which only promises per-item atomicity). A BatchGetItem
//! answer never exceeds 16 MB; keys beyond that are returned as unprocessed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferrodyn_expr::{Path, Resolver};
use ferrodyn_model::size::item_size;
use ferrodyn_model::{Error, Item};

use crate::capacity::{
    read_units, write_units, ConsumedCapacity, IndexUnits, ReturnConsumedCapacity,
};
use crate::items::check_size;
use crate::keys::{key_of_item, key_of_key_param};
use crate::throttle::Access;
use crate::write::Old;
use crate::{write, Engine, Table};

pub const MAX_BATCH_WRITE: usize = 25;
pub const MAX_BATCH_GET: usize = 100;
pub const MAX_BATCH_GET_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum WriteRequest {
    Put(Item),
    Delete(Item),
}

#[derive(Debug, Clone, Default)]
pub struct BatchWriteInput {
    /// In request order.
    pub tables: Vec<(String, Vec<WriteRequest>)>,
    pub return_consumed: ReturnConsumedCapacity,
}

#[derive(Debug, Clone, Default)]
pub struct BatchWriteOutput {
    pub consumed: Vec<ConsumedCapacity>,
    /// Tables whose requests were not processed (their capacity was exhausted), in request
    /// order.
    pub unprocessed: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct BatchGetTable {
    pub table: String,
    pub keys: Vec<Item>,
    pub projection_expression: Option<String>,
    pub attributes_to_get: Option<Vec<String>>,
    pub names: Option<HashMap<String, String>>,
    pub consistent_read: bool,
}

#[derive(Debug, Clone, Default)]
pub struct BatchGetOutput {
    /// Per requested table (request order), the items found.
    pub responses: Vec<(String, Vec<Item>)>,
    /// Per table, the indexes (into that table's `keys`) that were not processed.
    pub unprocessed: Vec<(String, Vec<usize>)>,
    pub consumed: Vec<ConsumedCapacity>,
}

fn duplicates() -> Error {
    Error::validation("Provided list of item keys contains duplicates")
}

impl Engine {
    pub fn batch_write_item(&self, mut input: BatchWriteInput) -> Result<BatchWriteOutput, Error> {
        if !self.enforcing() {
            return self.retrying(input, Self::batch_write_now);
        }
        // The requests of a table whose capacity is exhausted come back unprocessed; only when
        // that is every table does the whole call fail.
        let mut throttled = Vec::new();
        let mut first_error = None;
        input
            .tables
            .retain(|(name, _)| match self.admit(name, Access::Write) {
                Ok(()) => true,
                Err(e) => {
                    first_error.get_or_insert(e);
                    throttled.push(name.clone());
                    false
                }
            });
        if input.tables.is_empty() {
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        let wanted = std::mem::replace(&mut input.return_consumed, ReturnConsumedCapacity::Indexes);
        let mut out = self.retrying(input, Self::batch_write_now)?;
        self.charge_all(Access::Write, &mut out.consumed, wanted);
        out.unprocessed = throttled;
        Ok(out)
    }

    fn batch_write_now(&self, input: BatchWriteInput) -> Result<BatchWriteOutput, Error> {
        let total: usize = input.tables.iter().map(|(_, r)| r.len()).sum();
        if total > MAX_BATCH_WRITE {
            return Err(Error::validation(
                "Too many items requested for the BatchWriteItem call",
            ));
        }
        // Validate everything first; nothing is written if any request is invalid.
        struct Planned {
            table: Arc<Table>,
            key: Vec<u8>,
            new: Option<Item>,
        }
        let mut planned = Vec::with_capacity(total);
        let mut seen = HashSet::new();
        for (name, requests) in &input.tables {
            let table = self.table(name)?;
            for r in requests {
                let (key, new) = match r {
                    WriteRequest::Put(item) => {
                        let key = key_of_item(&table.def, item)?;
                        check_size(item)?;
                        crate::index::validate_index_keys(&table.def, item)?;
                        (key, Some(item.clone()))
                    }
                    WriteRequest::Delete(k) => (key_of_key_param(&table.def, k)?, None),
                };
                if !seen.insert((table.def.id.clone(), key.clone())) {
                    return Err(duplicates());
                }
                planned.push(Planned {
                    table: table.clone(),
                    key,
                    new,
                });
            }
        }
        let targets: Vec<(&Table, &[u8])> = planned
            .iter()
            .map(|p| (&*p.table, p.key.as_slice()))
            .collect();
        let locks = self.lock_items(&targets)?;
        let mut batch = self.item_batch("BatchWriteItem");
        let mut deltas = Vec::with_capacity(planned.len());
        let mut units: Vec<(String, f64, Vec<IndexUnits>)> = Vec::new();
        // Per write, for the tables' activity once committed: bytes written (`None`: nothing
        // was), table units and index shares.
        let mut done: Vec<(&Table, Option<usize>, f64, Vec<IndexUnits>)> =
            Vec::with_capacity(planned.len());
        for p in &planned {
            // Where nothing derived depends on the old item, its stored form gives its size and
            // it is not decoded.
            let decoded;
            let old = if write::derives_from_old(self, &p.table) {
                decoded = locks.item(&p.table.def, &p.key)?;
                Old::from(decoded.as_ref())
            } else {
                Old::sized(locks.item_size(&p.table.def, &p.key)?)
            };
            self.check_collection(&p.table, old.item(), p.new.as_ref())?;
            let old_size = old.size();
            if old_size.is_none() && p.new.is_none() {
                add_units(&mut units, &p.table.def.name, 1.0, Vec::new());
                done.push((&p.table, None, 1.0, Vec::new()));
                continue;
            }
            let new_size = p.new.as_ref().map(item_size);
            let size = old_size.unwrap_or(0).max(new_size.unwrap_or(0));
            let index_units = crate::index::write_units(&p.table.def, old.item(), p.new.as_ref());
            done.push((
                &p.table,
                new_size.or(old_size),
                write_units(size),
                index_units.clone(),
            ));
            add_units(
                &mut units,
                &p.table.def.name,
                write_units(size),
                index_units,
            );
            let delta = write::stage_item_change(&p.table, &p.key, old, p.new.as_ref(), &mut batch);
            deltas.push((&*p.table, delta));
        }
        self.commit_locked(locks, batch, deltas)?;
        for (table, bytes, u, ix) in done {
            let activity = &table.counters.activity;
            if let Some(b) = bytes {
                activity.wrote(b);
            }
            activity.write_units(u, &ix);
        }
        Ok(BatchWriteOutput {
            consumed: units
                .into_iter()
                .filter_map(|(t, u, ix)| {
                    ConsumedCapacity::with_indexes(input.return_consumed, &t, Some(u), &ix)
                })
                .collect(),
            unprocessed: Vec::new(),
        })
    }

    pub fn batch_get_item(
        &self,
        mut tables: Vec<BatchGetTable>,
        return_consumed: ReturnConsumedCapacity,
    ) -> Result<BatchGetOutput, Error> {
        if !self.enforcing() {
            return self.batch_get_now(tables, return_consumed);
        }
        let mut throttled = Vec::new();
        let mut first_error = None;
        tables.retain(|t| match self.admit(&t.table, Access::Read) {
            Ok(()) => true,
            Err(e) => {
                first_error.get_or_insert(e);
                throttled.push((t.table.clone(), (0..t.keys.len()).collect()));
                false
            }
        });
        if tables.is_empty() {
            if let Some(e) = first_error {
                return Err(e);
            }
        }
        let mut out = self.batch_get_now(tables, ReturnConsumedCapacity::Indexes)?;
        self.charge_all(Access::Read, &mut out.consumed, return_consumed);
        out.unprocessed.extend(throttled);
        Ok(out)
    }

    fn batch_get_now(
        &self,
        tables: Vec<BatchGetTable>,
        return_consumed: ReturnConsumedCapacity,
    ) -> Result<BatchGetOutput, Error> {
        let total: usize = tables.iter().map(|t| t.keys.len()).sum();
        if total > MAX_BATCH_GET {
            return Err(Error::validation(
                "Too many items requested for the BatchGetItem call",
            ));
        }
        struct Planned {
            table: Arc<Table>,
            keys: Vec<Vec<u8>>,
            projection: Option<Vec<Path>>,
        }
        let mut planned = Vec::with_capacity(tables.len());
        for t in &tables {
            let table = self.table(&t.table)?;
            if t.projection_expression.is_some() && t.attributes_to_get.is_some() {
                return Err(Error::validation(
                    "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}",
                ));
            }
            if let Some(n) = &t.names {
                if n.is_empty() {
                    return Err(Error::validation(
                        "ExpressionAttributeNames must not be empty",
                    ));
                }
                if t.projection_expression.is_none() {
                    return Err(Error::validation(
                        "ExpressionAttributeNames can only be specified when using expressions: ProjectionExpression is null",
                    ));
                }
            }
            let mut resolver = Resolver::new(t.names.as_ref(), None);
            let projection = match (&t.projection_expression, &t.attributes_to_get) {
                (Some(text), _) => Some(resolver.projection(text)?),
                (None, Some(names)) => Some(ferrodyn_expr::legacy::attributes_to_get(names)),
                (None, None) => None,
            };
            resolver.finish()?;
            let mut keys = Vec::with_capacity(t.keys.len());
            let mut seen = HashSet::new();
            for k in &t.keys {
                let key = key_of_key_param(&table.def, k)?;
                if !seen.insert(key.clone()) {
                    return Err(duplicates());
                }
                keys.push(key);
            }
            planned.push(Planned {
                table,
                keys,
                projection,
            });
        }
        let mut out = BatchGetOutput::default();
        let mut bytes_out = 0usize;
        for (p, req) in planned.iter().zip(&tables) {
            let mut items = Vec::new();
            let mut units = 0.0;
            let mut skipped = Vec::new();
            for (i, key) in p.keys.iter().enumerate() {
                if bytes_out >= MAX_BATCH_GET_BYTES {
                    skipped.push(i);
                    continue;
                }
                let item = self.read_item_for(req.consistent_read, &p.table.def, key)?;
                let size = item.as_ref().map(item_size).unwrap_or(0);
                units += read_units(size, req.consistent_read);
                p.table
                    .counters
                    .activity
                    .read(u64::from(item.is_some()), size as u64);
                if let Some(item) = item {
                    bytes_out += size;
                    items.push(match &p.projection {
                        Some(paths) => ferrodyn_expr::project(&item, paths),
                        None => item,
                    });
                }
            }
            if !skipped.is_empty() {
                out.unprocessed.push((p.table.def.name.clone(), skipped));
            }
            p.table.counters.activity.read_units(None, units);
            out.responses.push((p.table.def.name.clone(), items));
            if let Some(c) = ConsumedCapacity::read(return_consumed, &p.table.def.name, units) {
                out.consumed.push(c);
            }
        }
        Ok(out)
    }
}

/// Adds one write's units to its table's figures (request order of first appearance).
pub(crate) fn add_units(
    acc: &mut Vec<(String, f64, Vec<IndexUnits>)>,
    table: &str,
    u: f64,
    ix: Vec<IndexUnits>,
) {
    let slot = match acc.iter().position(|(t, _, _)| t == table) {
        Some(i) => &mut acc[i],
        None => {
            acc.push((table.to_string(), 0.0, Vec::new()));
            let last = acc.len() - 1;
            &mut acc[last]
        }
    };
    slot.1 += u;
    for i in ix {
        match slot.2.iter_mut().find(|x| x.index == i.index) {
            Some(x) => x.units += i.units,
            None => slot.2.push(i),
        }
    }
}
