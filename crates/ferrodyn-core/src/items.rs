//! Single-item operations: PutItem, GetItem, DeleteItem, UpdateItem.
//!
//! Invariant: a write is computed from (old item, request) under the item's lock stripe and
//! applied as one storage batch; nothing is written when a condition fails or validation fails.

use std::collections::{BTreeMap, HashMap};

use ferrodyn_expr::legacy::{AttributeValueUpdate, ExpectedAttributeValue};
use ferrodyn_expr::{CondKind, Condition, Path, Resolver, Update};
use ferrodyn_model::size::item_size;
use ferrodyn_model::{AttributeValue, Error, Item};

use crate::capacity::{read_units, write_units, ConsumedCapacity, ReturnConsumedCapacity};
use crate::keys::{key_of_item, key_of_key_param};
use crate::locks::ItemLocks;
use crate::table::TableDef;
use crate::write::Old;
use crate::{itemcodec, storage_err, Engine, Table};

pub const MAX_ITEM_BYTES: usize = 400 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnValues {
    #[default]
    None,
    AllOld,
    UpdatedOld,
    AllNew,
    UpdatedNew,
}

/// Placeholder maps shared by all expressions of one request.
#[derive(Debug, Clone, Default)]
pub struct ExprParams {
    pub names: Option<HashMap<String, String>>,
    pub values: Option<HashMap<String, AttributeValue>>,
}

#[derive(Debug, Clone, Default)]
pub struct PutItemInput {
    pub table: String,
    pub item: Item,
    pub condition_expression: Option<String>,
    pub expected: Option<BTreeMap<String, ExpectedAttributeValue>>,
    pub conditional_operator: Option<String>,
    pub params: ExprParams,
    pub return_values: ReturnValues,
    pub return_old_on_condition_failure: bool,
    pub return_consumed: ReturnConsumedCapacity,
    pub return_item_collection_metrics: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteItemInput {
    pub table: String,
    pub key: Item,
    pub condition_expression: Option<String>,
    pub expected: Option<BTreeMap<String, ExpectedAttributeValue>>,
    pub conditional_operator: Option<String>,
    pub params: ExprParams,
    pub return_values: ReturnValues,
    pub return_old_on_condition_failure: bool,
    pub return_consumed: ReturnConsumedCapacity,
    pub return_item_collection_metrics: bool,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateItemInput {
    pub table: String,
    pub key: Item,
    pub update_expression: Option<String>,
    pub attribute_updates: Option<BTreeMap<String, AttributeValueUpdate>>,
    pub condition_expression: Option<String>,
    pub expected: Option<BTreeMap<String, ExpectedAttributeValue>>,
    pub conditional_operator: Option<String>,
    pub params: ExprParams,
    pub return_values: ReturnValues,
    pub return_old_on_condition_failure: bool,
    pub return_consumed: ReturnConsumedCapacity,
    pub return_item_collection_metrics: bool,
}

#[derive(Debug, Clone, Default)]
pub struct GetItemInput {
    pub table: String,
    pub key: Item,
    pub consistent_read: bool,
    pub projection_expression: Option<String>,
    pub attributes_to_get: Option<Vec<String>>,
    pub params: ExprParams,
    pub return_consumed: ReturnConsumedCapacity,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOutput {
    /// The attributes requested by ReturnValues (None when nothing is to be returned).
    pub attributes: Option<Item>,
    pub consumed: Option<ConsumedCapacity>,
    /// ItemCollectionMetrics (only for tables with local secondary indexes).
    pub item_collection_key: Option<Item>,
    /// SizeEstimateRangeGB of that item collection.
    pub item_collection_size_gb: (f64, f64),
}

#[derive(Debug, Clone, Default)]
pub struct GetOutput {
    pub item: Option<ReadItem>,
    pub consumed: Option<ConsumedCapacity>,
}

/// An item a read returns.
#[derive(Debug, Clone)]
pub enum ReadItem {
    /// Built in memory (e.g. by a projection).
    Built(Item),
    /// Exactly as stored, sized from its encoding: the caller writes it out from its stored form
    /// (see [`itemcodec::walk_stored`]) and nothing decodes it.
    Stored(Vec<u8>),
}

/// Which expression parameters a request used, for AWS's mixing rules.
pub(crate) struct Usage<'a> {
    pub(crate) legacy: Vec<&'static str>,
    pub(crate) expressions: Vec<&'static str>,
    pub(crate) params: &'a ExprParams,
}

impl<'a> Usage<'a> {
    /// AWS checks: legacy and expression parameters never mix; placeholder maps are non-empty and
    /// only given together with an expression.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if !self.legacy.is_empty() && !self.expressions.is_empty() {
            return Err(Error::validation(format!(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
                self.legacy.join(", "),
                self.expressions.join(", ")
            )));
        }
        if let Some(n) = &self.params.names {
            if n.is_empty() {
                return Err(Error::validation(
                    "ExpressionAttributeNames must not be empty",
                ));
            }
        }
        if let Some(v) = &self.params.values {
            if v.is_empty() {
                return Err(Error::validation(
                    "ExpressionAttributeValues must not be empty",
                ));
            }
        }
        Ok(())
    }

    /// AWS names the missing expressions when placeholders come without any.
    pub(crate) fn check_placeholders_need(&self, all: &[&str]) -> Result<(), Error> {
        if self.expressions.is_empty() {
            let missing = match all.len() {
                1 => format!("{} is null", all[0]),
                _ => format!("{} are null", all.join(" and ")),
            };
            if self.params.names.is_some() {
                return Err(Error::validation(format!(
                    "ExpressionAttributeNames can only be specified when using expressions: {missing}"
                )));
            }
            if self.params.values.is_some() {
                return Err(Error::validation(format!(
                    "ExpressionAttributeValues can only be specified when using expressions: {missing}"
                )));
            }
        }
        Ok(())
    }
}

fn condition_from(
    resolver: &mut Resolver<'_>,
    expr: &Option<String>,
    expected: &Option<BTreeMap<String, ExpectedAttributeValue>>,
    conditional_operator: &Option<String>,
) -> Result<Option<Condition>, Error> {
    if let Some(text) = expr {
        return Ok(Some(resolver.condition(text, CondKind::Condition)?));
    }
    if let Some(exp) = expected {
        if exp.is_empty() {
            if conditional_operator.is_some() {
                return Err(Error::validation(
                    "ConditionalOperator can only be used when Filter or Expected has two or more elements",
                ));
            }
            return Ok(None);
        }
        return Ok(Some(ferrodyn_expr::legacy::expected(
            exp,
            conditional_operator.as_deref(),
        )?));
    }
    if conditional_operator.is_some() {
        return Err(Error::validation(
            "ConditionalOperator can only be used when Filter or Expected has two or more elements",
        ));
    }
    Ok(None)
}

/// Fails with ConditionalCheckFailed (carrying the old item when asked) unless `cond` holds for
/// the current item (a missing item is evaluated as an empty one).
pub(crate) fn check_condition(
    cond: Option<&Condition>,
    old: Option<&Item>,
    return_old: bool,
) -> Result<(), Error> {
    let Some(c) = cond else { return Ok(()) };
    let empty = Item::new();
    if c.eval(old.unwrap_or(&empty))? {
        return Ok(());
    }
    Err(Error::ConditionalCheckFailed {
        item: if return_old { old.cloned() } else { None },
    })
}

/// The parameter rules shared by PutItem and DeleteItem: legacy and expression conditions don't
/// mix, placeholders need an expression, and ReturnValues is NONE or ALL_OLD.
fn check_conditional_write_params(
    legacy: bool,
    expression: bool,
    params: &ExprParams,
    return_values: ReturnValues,
) -> Result<(), Error> {
    let usage = Usage {
        legacy: if legacy { vec!["Expected"] } else { Vec::new() },
        expressions: if expression {
            vec!["ConditionExpression"]
        } else {
            Vec::new()
        },
        params,
    };
    usage.check()?;
    usage.check_placeholders_need(&["ConditionExpression"])?;
    if !matches!(return_values, ReturnValues::None | ReturnValues::AllOld) {
        return Err(Error::validation("Return values set to invalid value"));
    }
    Ok(())
}

/// Write capacity of one item change: the table's units plus every touched index's share,
/// also counted in the table's activity (the change itself is counted by the caller).
pub(crate) fn write_capacity(
    mode: ReturnConsumedCapacity,
    table: &Table,
    table_units: f64,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Option<ConsumedCapacity> {
    let def = &table.def;
    // Empty (no allocation) for a table without secondary indexes.
    let indexes = crate::index::write_units(def, old, new);
    table.counters.activity.write_units(table_units, &indexes);
    if mode == ReturnConsumedCapacity::None {
        return None;
    }
    ConsumedCapacity::with_indexes(mode, &def.name, Some(table_units), &indexes)
}

/// AttributesToGet may not name an attribute twice.
pub(crate) fn check_attributes_to_get(names: &[String]) -> Result<(), Error> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n.as_str()) {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: Duplicate value in attribute name: {n}"
            )));
        }
    }
    Ok(())
}

pub(crate) fn check_size(item: &Item) -> Result<usize, Error> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(Error::validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    Ok(size)
}

impl Engine {
    /// The value at `key`: the latest for a strongly consistent read, otherwise possibly from a
    /// replica that lags behind (`Storage::get_eventual`; the same on engines without one).
    pub(crate) fn get_for(
        &self,
        consistent: bool,
        keyspace: &str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, Error> {
        let r = if consistent {
            self.storage.get(keyspace, key)
        } else {
            self.storage.get_eventual(keyspace, key)
        };
        r.map_err(storage_err)
    }

    /// [`Engine::read_item`] for a read that is strongly consistent or not.
    pub(crate) fn read_item_for(
        &self,
        consistent: bool,
        def: &TableDef,
        key: &[u8],
    ) -> Result<Option<Item>, Error> {
        match self.get_for(consistent, &def.keyspace, key)? {
            Some(raw) => Ok(Some(itemcodec::decode_item(&raw)?)),
            None => Ok(None),
        }
    }

    /// A range scan for a strongly consistent read or not (see [`Engine::get_for`]).
    pub(crate) fn scan_for(
        &self,
        consistent: bool,
        keyspace: &str,
        lower: std::ops::Bound<&[u8]>,
        upper: std::ops::Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), Error> {
        let r = if consistent {
            self.storage.scan(keyspace, lower, upper, reverse, f)
        } else {
            self.storage
                .scan_eventual(keyspace, lower, upper, reverse, f)
        };
        r.map_err(storage_err)
    }

    /// The size of the item stored at `key` (`None`: there is none), from its stored form,
    /// without decoding it.
    pub(crate) fn read_item_size(
        &self,
        def: &TableDef,
        key: &[u8],
    ) -> Result<Option<usize>, Error> {
        let raw = self.storage.get(&def.keyspace, key).map_err(storage_err)?;
        raw.as_deref().map(itemcodec::stored_size).transpose()
    }

    /// Checks the write's condition against the item read under `locks`; returns the old item.
    fn read_checked(
        locks: &ItemLocks<'_>,
        def: &TableDef,
        key: &[u8],
        cond: Option<&Condition>,
        return_old_on_failure: bool,
    ) -> Result<Option<Item>, Error> {
        let old = locks.item(def, key)?;
        check_condition(cond, old.as_ref(), return_old_on_failure)?;
        Ok(old)
    }

    /// Writes (or deletes, with `new == None`) one item for `operation` under `locks`, with
    /// its statistics.
    fn commit_item(
        &self,
        locks: ItemLocks<'_>,
        operation: &'static str,
        table: &Table,
        key: &[u8],
        old: Old<'_>,
        new: Option<&Item>,
    ) -> Result<(), Error> {
        let mut batch = self.item_batch(operation);
        let delta = crate::write::stage_item_change(table, key, old, new, &mut batch);
        self.commit_locked(locks, batch, [(table, delta)])?;
        Ok(())
    }

    pub fn put_item(&self, input: PutItemInput) -> Result<WriteOutput, Error> {
        self.with_capacity(input, |e, i| e.retrying(i, Self::put_item_now))
    }

    fn put_item_now(&self, input: PutItemInput) -> Result<WriteOutput, Error> {
        check_conditional_write_params(
            input.expected.is_some(),
            input.condition_expression.is_some(),
            &input.params,
            input.return_values,
        )?;
        let table = self.table(&input.table)?;
        let def = &table.def;
        let key = key_of_item(def, &input.item)?;
        let mut resolver = Resolver::new(input.params.names.as_ref(), input.params.values.as_ref());
        let cond = condition_from(
            &mut resolver,
            &input.condition_expression,
            &input.expected,
            &input.conditional_operator,
        )?;
        resolver.finish()?;
        let new_size = check_size(&input.item)?;
        crate::index::validate_index_keys(def, &input.item)?;

        let locks = self.lock_item(&table, &key)?;
        let mut decoded = None;
        let old = if cond.is_none()
            && input.return_values != ReturnValues::AllOld
            && !crate::write::derives_from_old(self, &table)
        {
            // Nothing needs the old item but its presence and size, which its stored form
            // records: no need to decode it.
            Old::sized(locks.item_size(def, &key)?)
        } else {
            decoded = Self::read_checked(
                &locks,
                def,
                &key,
                cond.as_ref(),
                input.return_old_on_condition_failure,
            )?;
            self.check_collection(&table, decoded.as_ref(), Some(&input.item))?;
            Old::from(decoded.as_ref())
        };
        self.commit_item(locks, "PutItem", &table, &key, old, Some(&input.item))?;
        table.counters.activity.wrote(new_size);
        let consumed = write_capacity(
            input.return_consumed,
            &table,
            write_units(old.size().unwrap_or(0).max(new_size)),
            old.item(),
            Some(&input.item),
        );
        Ok(WriteOutput {
            consumed,
            item_collection_key: self.icm(def, input.return_item_collection_metrics, &input.item),
            item_collection_size_gb: self.collection_size_gb(&table, &input.item),
            attributes: match input.return_values {
                ReturnValues::AllOld => decoded,
                _ => None,
            },
        })
    }

    pub(crate) fn icm(&self, def: &TableDef, wanted: bool, item: &Item) -> Option<Item> {
        if !wanted || def.local_indexes.is_empty() {
            return None;
        }
        let mut m = Item::new();
        if let Some(v) = item.get(&def.hash_key.name) {
            m.insert(def.hash_key.name.clone(), v.clone());
        }
        Some(m)
    }

    pub fn delete_item(&self, input: DeleteItemInput) -> Result<WriteOutput, Error> {
        self.with_capacity(input, |e, i| e.retrying(i, Self::delete_item_now))
    }

    fn delete_item_now(&self, input: DeleteItemInput) -> Result<WriteOutput, Error> {
        check_conditional_write_params(
            input.expected.is_some(),
            input.condition_expression.is_some(),
            &input.params,
            input.return_values,
        )?;
        let table = self.table(&input.table)?;
        let def = &table.def;
        let key = key_of_key_param(def, &input.key)?;
        let mut resolver = Resolver::new(input.params.names.as_ref(), input.params.values.as_ref());
        let cond = condition_from(
            &mut resolver,
            &input.condition_expression,
            &input.expected,
            &input.conditional_operator,
        )?;
        resolver.finish()?;

        let locks = self.lock_item(&table, &key)?;
        let old = Self::read_checked(
            &locks,
            def,
            &key,
            cond.as_ref(),
            input.return_old_on_condition_failure,
        )?;
        if old.is_some() {
            self.commit_item(locks, "DeleteItem", &table, &key, old.as_ref().into(), None)?;
        }
        let old_size = old.as_ref().map(item_size).unwrap_or(0);
        if old.is_some() {
            table.counters.activity.wrote(old_size);
        }
        Ok(WriteOutput {
            consumed: write_capacity(
                input.return_consumed,
                &table,
                write_units(old_size),
                old.as_ref(),
                None,
            ),
            item_collection_key: self.icm(def, input.return_item_collection_metrics, &input.key),
            item_collection_size_gb: self.collection_size_gb(&table, &input.key),
            attributes: match input.return_values {
                ReturnValues::AllOld => old,
                _ => None,
            },
        })
    }

    pub fn update_item(&self, input: UpdateItemInput) -> Result<WriteOutput, Error> {
        self.with_capacity(input, |e, i| e.retrying(i, Self::update_item_now))
    }

    fn update_item_now(&self, input: UpdateItemInput) -> Result<WriteOutput, Error> {
        let mut legacy = Vec::new();
        if input.attribute_updates.is_some() {
            legacy.push("AttributeUpdates");
        }
        if input.expected.is_some() {
            legacy.push("Expected");
        }
        let mut expressions = Vec::new();
        if input.update_expression.is_some() {
            expressions.push("UpdateExpression");
        }
        if input.condition_expression.is_some() {
            expressions.push("ConditionExpression");
        }
        let usage = Usage {
            legacy,
            expressions,
            params: &input.params,
        };
        usage.check()?;
        usage.check_placeholders_need(&["UpdateExpression", "ConditionExpression"])?;
        let table = self.table(&input.table)?;
        let def = &table.def;
        let key = key_of_key_param(def, &input.key)?;
        let mut resolver = Resolver::new(input.params.names.as_ref(), input.params.values.as_ref());
        let update: Option<Update> = match (&input.update_expression, &input.attribute_updates) {
            (Some(text), _) => Some(resolver.update(text)?),
            (None, Some(au)) => Some(ferrodyn_expr::legacy::attribute_updates(au)?),
            (None, None) => None,
        };
        let cond = condition_from(
            &mut resolver,
            &input.condition_expression,
            &input.expected,
            &input.conditional_operator,
        )?;
        resolver.finish()?;
        if let Some(u) = &update {
            for name in u.top_level_attributes() {
                if def.is_key(name) {
                    return Err(Error::validation(format!(
                        "One or more parameter values were invalid: Cannot update attribute {name}. This attribute is part of the key"
                    )));
                }
            }
        }

        let locks = self.lock_item(&table, &key)?;
        let old = Self::read_checked(
            &locks,
            def,
            &key,
            cond.as_ref(),
            input.return_old_on_condition_failure,
        )?;
        // An update that only removes attributes neither creates a missing item nor fails on
        // paths that cannot exist in it (DynamoDB silently ignores `REMOVE x.y` there).
        let only_removes = update.as_ref().is_some_and(Update::only_removes);
        let mut new = old.clone().unwrap_or_else(|| input.key.clone());
        let written = old.is_some() || !only_removes;
        if written {
            if let Some(u) = &update {
                u.apply(&mut new)?;
            }
            let new_size = item_size(&new);
            if new_size > MAX_ITEM_BYTES {
                return Err(Error::validation(
                    "Item size to update has exceeded the maximum allowed size",
                ));
            }
            crate::index::validate_index_keys(def, &new)?;
            self.check_collection(&table, old.as_ref(), Some(&new))?;
            self.commit_item(
                locks,
                "UpdateItem",
                &table,
                &key,
                old.as_ref().into(),
                Some(&new),
            )?;
        }
        let new_size = item_size(&new);
        let old_size = old.as_ref().map(item_size).unwrap_or(0);
        if written {
            table.counters.activity.wrote(new_size);
        }
        let paths: Vec<Path> = update
            .as_ref()
            .map(|u| u.updated_paths())
            .unwrap_or_default();
        let attributes = match input.return_values {
            ReturnValues::None => None,
            ReturnValues::AllOld => old.clone(),
            ReturnValues::AllNew => Some(new.clone()),
            ReturnValues::UpdatedOld => old.as_ref().map(|o| ferrodyn_expr::project(o, &paths)),
            ReturnValues::UpdatedNew => Some(ferrodyn_expr::project(&new, &paths)),
        };
        Ok(WriteOutput {
            consumed: write_capacity(
                input.return_consumed,
                &table,
                write_units(old_size.max(new_size)),
                old.as_ref(),
                written.then_some(&new),
            ),
            item_collection_key: self.icm(def, input.return_item_collection_metrics, &input.key),
            item_collection_size_gb: self.collection_size_gb(&table, &input.key),
            attributes: attributes.filter(|a| !a.is_empty()),
        })
    }

    pub fn get_item(&self, input: GetItemInput) -> Result<GetOutput, Error> {
        self.with_capacity(input, Self::get_item_now)
    }

    fn get_item_now(&self, input: GetItemInput) -> Result<GetOutput, Error> {
        let usage = Usage {
            legacy: input
                .attributes_to_get
                .as_ref()
                .map(|_| "AttributesToGet")
                .into_iter()
                .collect(),
            expressions: input
                .projection_expression
                .as_ref()
                .map(|_| "ProjectionExpression")
                .into_iter()
                .collect(),
            params: &input.params,
        };
        usage.check()?;
        usage.check_placeholders_need(&["ProjectionExpression"])?;
        let table = self.table(&input.table)?;
        let def = &table.def;
        let key = key_of_key_param(def, &input.key)?;
        let mut resolver = Resolver::new(input.params.names.as_ref(), input.params.values.as_ref());
        let projection: Option<Vec<Path>> =
            match (&input.projection_expression, &input.attributes_to_get) {
                (Some(text), _) => Some(resolver.projection(text)?),
                (None, Some(names)) => {
                    check_attributes_to_get(names)?;
                    Some(ferrodyn_expr::legacy::attributes_to_get(names))
                }
                (None, None) => None,
            };
        resolver.finish()?;
        let raw = self.get_for(input.consistent_read, &def.keyspace, &key)?;
        let (item, size) = match (raw, &projection) {
            (None, _) => (None, 0),
            (Some(raw), Some(p)) => {
                let item = itemcodec::decode_item(&raw)?;
                let size = item_size(&item);
                (
                    Some(ReadItem::Built(ferrodyn_expr::project(&item, p))),
                    size,
                )
            }
            (Some(raw), None) => {
                let size = itemcodec::stored_size(&raw)?;
                (Some(ReadItem::Stored(raw)), size)
            }
        };
        let units = read_units(size, input.consistent_read);
        let activity = &table.counters.activity;
        activity.read(u64::from(item.is_some()), size as u64);
        activity.read_units(None, units);
        Ok(GetOutput {
            item,
            consumed: ConsumedCapacity::read(input.return_consumed, &def.name, units),
        })
    }
}
