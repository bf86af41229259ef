//! PartiQL statements (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction) run as the
//! classic operations they stand for.
//!
//! A statement is parsed and translated by `ferrodyn-partiql` into expression text over
//! placeholders; this module decides which classic operation runs it (SELECT: GetItem when the
//! WHERE clause is exactly the full key, Query when it fixes the partition key, one Query per
//! value of an IN or branch of an OR of partition keys, else Scan; INSERT: PutItem that must not
//! find the key; UPDATE: UpdateItem that must find it; DELETE: DeleteItem; transactions:
//! TransactWriteItems / TransactGetItems) and calls that operation's engine method with
//! ordinary inputs. Statement counts (25 per batch, 100 per transaction) and the 8192-character
//! statement limit are enforced by shape validation before this module runs.
//!
//! Invariant: nothing here reads or writes storage itself; every item read and write goes
//! through `query.rs`, `items.rs` and `transact.rs`, so indexes, streams, TTL, capacity and the
//! audit log see PartiQL exactly as they see the classic calls.

use ferrodyn_model::error::CancellationReason;
use ferrodyn_model::{AttributeValue, Error, Item};
use ferrodyn_partiql::ast::{Delete, Expr, Insert, Path, PathElem, Projection, Select, Update};
use ferrodyn_partiql::translate::{
    conjuncts, equality_on, in_on, is_range_condition, mentions, top_names,
};
use ferrodyn_partiql::{Placeholders, Returning, Statement, PARAM_COUNT};

use crate::capacity::{ConsumedCapacity, ReturnConsumedCapacity};
use crate::items::{
    DeleteItemInput, ExprParams, GetItemInput, PutItemInput, ReadItem, ReturnValues,
    UpdateItemInput, WriteOutput,
};
use crate::query::{PageItems, QueryInput, ReadOptions, ReadOutput, ScanInput, StoredItems};
use crate::transact::{
    TransactGetInput, TransactGetItem, TransactWriteInput, TransactWriteItem, WriteAction,
};
use crate::{itemcodec, Engine};

/// DynamoDB's message for an UPDATE or DELETE (or a batch/transaction read) without the key.
pub const KEY_REQUIRED: &str =
    "Where clause does not contain a mandatory equality on all key attributes";
/// DynamoDB's message for an UPDATE or DELETE of an index.
pub const NOT_ON_INDEX: &str = "This operation is not supported on an index";
/// DynamoDB's message for an INSERT whose key exists.
pub const DUPLICATE_ITEM: &str = "Duplicate primary key exists in table";

/// One statement with its parameters (`ParameterizedStatement`, `BatchStatementRequest`).
#[derive(Debug, Clone, Default)]
pub struct StatementInput {
    pub statement: String,
    pub parameters: Vec<AttributeValue>,
    /// ReturnValuesOnConditionCheckFailure = ALL_OLD.
    pub return_old_on_condition_failure: bool,
    /// ConsistentRead of a batch's SELECT.
    pub consistent_read: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ExecuteStatementInput {
    pub statement: StatementInput,
    pub consistent_read: bool,
    pub limit: Option<usize>,
    /// The key a previous page ended at (decoded from NextToken by the caller).
    pub exclusive_start_key: Option<Item>,
    pub return_consumed: ReturnConsumedCapacity,
}

#[derive(Debug, Clone)]
pub struct ExecuteStatementOutput {
    pub items: PageItems,
    pub last_evaluated_key: Option<Item>,
    pub consumed: Option<ConsumedCapacity>,
}

#[derive(Debug, Clone, Default)]
pub struct BatchExecuteInput {
    pub statements: Vec<StatementInput>,
    pub return_consumed: ReturnConsumedCapacity,
}

/// One entry of `Responses` (`BatchStatementResponse`).
#[derive(Debug, Clone, Default)]
pub struct StatementOutcome {
    pub table: Option<String>,
    pub item: Option<Item>,
    /// Why the statement failed (the server renders it as a `BatchStatementError`).
    pub error: Option<Error>,
}

#[derive(Debug, Clone, Default)]
pub struct BatchExecuteOutput {
    pub responses: Vec<StatementOutcome>,
    pub consumed: Vec<ConsumedCapacity>,
}

#[derive(Debug, Clone, Default)]
pub struct ExecuteTransactionInput {
    pub statements: Vec<StatementInput>,
    pub client_request_token: Option<String>,
    pub return_consumed: ReturnConsumedCapacity,
}

#[derive(Debug, Clone, Default)]
pub struct ExecuteTransactionOutput {
    /// Read transactions: one entry per statement (`None`: no such item); write transactions:
    /// `None`.
    pub responses: Option<Vec<Option<Item>>>,
    pub consumed: Vec<ConsumedCapacity>,
}

/// Parses a statement and checks its parameter count.
pub fn parse_statement(text: &str, params: &[AttributeValue]) -> Result<Statement, Error> {
    let parsed = ferrodyn_partiql::parse(text)?;
    if parsed.params != params.len() {
        return Err(Error::validation(PARAM_COUNT));
    }
    Ok(parsed.statement)
}

/// Key attribute names of a table or index.
struct Keys {
    hash: String,
    range: Option<String>,
    /// An index's projected attributes, keys included (`None`: all of them).
    projected: Option<Vec<String>>,
}

/// DynamoDB's message prefixes of expression errors, which PartiQL's messages do not carry.
const EXPRESSION_PREFIXES: [&str; 5] = [
    "Invalid FilterExpression: ",
    "Invalid ConditionExpression: ",
    "Invalid KeyConditionExpression: ",
    "Invalid UpdateExpression: ",
    "Invalid ProjectionExpression: ",
];

/// An error of the generated expressions, worded as PartiQL's (without the expression kind).
fn statement_error(e: Error) -> Error {
    match e {
        Error::Validation(m) => match EXPRESSION_PREFIXES.iter().find_map(|p| m.strip_prefix(p)) {
            Some(rest) => Error::Validation(rest.to_owned()),
            None => Error::Validation(m),
        },
        e => e,
    }
}

/// DynamoDB refuses a read keyed on an index whose filter names an attribute the index does
/// not project (an unkeyed read of the index scans it and simply finds no such attribute).
pub const UNPROJECTED_FILTER: &str =
    "Where clause refers to attributes that are not projected by the index";

fn expr_path(p: &Path) -> ferrodyn_expr::Path {
    ferrodyn_expr::Path {
        elems: p
            .elems
            .iter()
            .map(|e| match e {
                PathElem::Name(n) => ferrodyn_expr::PathElem::Attr(n.clone()),
                PathElem::Index(i) => ferrodyn_expr::PathElem::Index(*i as usize),
            })
            .collect(),
    }
}

/// `a AND b AND ...` of condition texts, each already an operand of AND as it is
/// (`Placeholders::condition`); None when empty.
fn and_all(parts: Vec<String>) -> Option<String> {
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// `attribute_exists(<hash key>)`, then the other conditions: the condition of an UPDATE and of
/// an `EXISTS(SELECT ...)` check.
fn exists_and(keys: &Keys, rest: Vec<String>, ph: &mut Placeholders<'_>) -> String {
    let exists = format!(
        "attribute_exists({})",
        ph.path(&Path {
            elems: vec![PathElem::Name(keys.hash.clone())]
        })
    );
    and_all(std::iter::once(exists).chain(rest).collect()).unwrap_or_default()
}

/// A write's full key, taken from the equalities of its WHERE clause; the other conjuncts as
/// condition text.
fn full_key(
    where_: Option<&Expr>,
    keys: &Keys,
    ph: &mut Placeholders<'_>,
) -> Result<(Item, Vec<String>), Error> {
    let Some(w) = where_ else {
        return Err(Error::validation(KEY_REQUIRED));
    };
    let mut key = Item::new();
    let mut rest = Vec::new();
    let names: Vec<&str> = std::iter::once(keys.hash.as_str())
        .chain(keys.range.as_deref())
        .collect();
    for c in conjuncts(w) {
        let taken = names
            .iter()
            .find(|n| !key.contains_key(**n) && equality_on(c, n).is_some());
        match taken {
            Some(n) => {
                let v = ph.constant(equality_on(c, n).unwrap_or(c))?;
                key.insert((*n).to_owned(), v);
            }
            None => rest.push(c),
        }
    }
    if key.len() != names.len() {
        return Err(Error::validation(KEY_REQUIRED));
    }
    let rest = rest
        .into_iter()
        .map(|c| ph.condition(c))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((key, rest))
}

/// The name a projected path's value gets in the result: its last attribute name.
fn projected_name(p: &Path) -> &str {
    p.elems
        .iter()
        .rev()
        .find_map(|e| match e {
            PathElem::Name(n) => Some(n.as_str()),
            PathElem::Index(_) => None,
        })
        .unwrap_or("")
}

/// Rebuilds projected items so each selected path's value sits under its own name
/// (`SELECT a.b` yields `{"b": ...}`).
fn reshape(items: Vec<Item>, paths: &[Path]) -> Vec<Item> {
    if paths.iter().all(|p| p.elems.len() == 1) {
        return items;
    }
    let exprs: Vec<_> = paths.iter().map(expr_path).collect();
    items
        .into_iter()
        .map(|item| {
            let mut out = Item::new();
            for (p, e) in paths.iter().zip(&exprs) {
                if let Some(v) = ferrodyn_expr::resolve(&item, e) {
                    out.insert(projected_name(p).to_owned(), v.clone());
                }
            }
            out
        })
        .collect()
}

fn page_items(items: PageItems) -> Result<Vec<Item>, Error> {
    match items {
        PageItems::Built(v) => Ok(v),
        PageItems::Stored(s) => s.iter().map(itemcodec::decode_item).collect(),
    }
}

fn items_len(items: &PageItems) -> usize {
    match items {
        PageItems::Built(v) => v.len(),
        PageItems::Stored(s) => s.len(),
    }
}

fn write_items(out: &WriteOutput) -> PageItems {
    PageItems::Built(out.attributes.iter().cloned().collect())
}

/// A ProjectionExpression for a projection of top-level names only (`None` for `*` or when a
/// nested path is selected: those are read from whole items and reshaped).
fn top_level_projection(projection: &Projection, ph: &mut Placeholders<'_>) -> Option<String> {
    match projection {
        Projection::Paths(paths) if paths.iter().all(|p| p.elems.len() == 1) => Some(
            paths
                .iter()
                .map(|p| ph.path(p))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => None,
    }
}

impl Engine {
    /// The table's key names, and the full key its statement names in `where_` (with the
    /// other conjuncts as condition text, see [`full_key`]).
    fn statement_key(
        &self,
        table: &str,
        where_: Option<&Expr>,
        ph: &mut Placeholders<'_>,
    ) -> Result<(Keys, Item, Vec<String>), Error> {
        let keys = self
            .keys_of(table, None)?
            .ok_or_else(|| Error::internal("no keys"))?;
        let (key, rest) = full_key(where_, &keys, ph)?;
        Ok((keys, key, rest))
    }

    fn keys_of(&self, table: &str, index: Option<&str>) -> Result<Option<Keys>, Error> {
        let t = self.table(table)?;
        let def = &t.def;
        let Some(index) = index else {
            return Ok(Some(Keys {
                hash: def.hash_key.name.clone(),
                range: def.range_key.as_ref().map(|k| k.name.clone()),
                projected: None,
            }));
        };
        // An index with a multi-attribute key has no key plan here: a SELECT on it runs as a
        // Scan of the index, its WHERE clause as the filter (docs/compatibility.md).
        Ok(def
            .global_indexes
            .iter()
            .chain(&def.local_indexes)
            .find(|i| i.name == index)
            .filter(|i| i.more_hash_keys.is_empty() && i.more_range_keys.is_empty())
            .map(|i| Keys {
                hash: i.hash_key.name.clone(),
                range: i.range_key.as_ref().map(|k| k.name.clone()),
                projected: match i.projection {
                    crate::table::ProjectionType::All => None,
                    crate::table::ProjectionType::KeysOnly
                    | crate::table::ProjectionType::Include => Some(
                        def.key_names()
                            .chain(std::iter::once(i.hash_key.name.as_str()))
                            .chain(i.range_key.as_ref().map(|k| k.name.as_str()))
                            .map(str::to_owned)
                            .chain(i.non_key_attributes.iter().cloned())
                            .collect(),
                    ),
                },
            }))
    }

    /// Runs one statement (ExecuteStatement).
    pub fn execute_statement(
        &self,
        input: ExecuteStatementInput,
    ) -> Result<ExecuteStatementOutput, Error> {
        self.run_statement(input).map_err(statement_error)
    }

    fn run_statement(&self, input: ExecuteStatementInput) -> Result<ExecuteStatementOutput, Error> {
        let s = &input.statement;
        let statement = parse_statement(&s.statement, &s.parameters)?;
        let params = &s.parameters;
        let rc = input.return_consumed;
        let write = |out: WriteOutput| ExecuteStatementOutput {
            items: write_items(&out),
            last_evaluated_key: None,
            consumed: out.consumed,
        };
        match &statement {
            Statement::Select(sel) => {
                let (out, paths) = self.select(
                    sel,
                    params,
                    input.consistent_read,
                    input.limit,
                    input.exclusive_start_key,
                    rc,
                )?;
                let items = match (out.items, paths) {
                    (Some(items), Some(paths)) => {
                        PageItems::Built(reshape(page_items(items)?, &paths))
                    }
                    (Some(items), None) => items,
                    (None, _) => PageItems::Built(Vec::new()),
                };
                Ok(ExecuteStatementOutput {
                    items,
                    last_evaluated_key: out.last_evaluated_key,
                    consumed: out.consumed,
                })
            }
            Statement::Insert(ins) => Ok(write(self.insert(ins, params, rc)?)),
            Statement::Update(up) => Ok(write(self.update(
                up,
                params,
                rc,
                s.return_old_on_condition_failure,
            )?)),
            Statement::Delete(del) => Ok(write(self.delete(
                del,
                params,
                rc,
                s.return_old_on_condition_failure,
            )?)),
            Statement::Exists(_) => Err(Error::validation(format!(
                "{}EXISTS is only supported in ExecuteTransaction",
                ferrodyn_partiql::MALFORMED
            ))),
        }
    }

    /// SELECT as a Query (partition-key equality in WHERE) or a Scan. Returns the read's output
    /// and, for a projection list, its paths (to reshape the items).
    fn select(
        &self,
        sel: &Select,
        params: &[AttributeValue],
        consistent_read: bool,
        limit: Option<usize>,
        exclusive_start_key: Option<Item>,
        return_consumed: ReturnConsumedCapacity,
    ) -> Result<(ReadOutput, Option<Vec<Path>>), Error> {
        // A SELECT of one item by its full key and nothing else is a GetItem.
        if exclusive_start_key.is_none() {
            if let Ok((key, projection, expr)) = self.point_select(sel, params) {
                let out = self.get_item(GetItemInput {
                    table: sel.table.clone(),
                    key,
                    consistent_read,
                    projection_expression: projection,
                    attributes_to_get: None,
                    params: expr,
                    return_consumed,
                })?;
                let items = match out.item {
                    Some(ReadItem::Stored(raw)) => {
                        let mut stored = StoredItems::default();
                        stored.push(&raw);
                        PageItems::Stored(stored)
                    }
                    Some(ReadItem::Built(item)) => PageItems::Built(vec![item]),
                    None => PageItems::Built(Vec::new()),
                };
                let paths = match &sel.projection {
                    Projection::All => None,
                    Projection::Paths(p) => Some(p.clone()),
                };
                let count = items_len(&items);
                let out = ReadOutput {
                    items: Some(items),
                    count,
                    scanned_count: count,
                    last_evaluated_key: None,
                    consumed: out.consumed,
                };
                return Ok((out, paths));
            }
        }
        let keys = self.keys_of(&sel.table, sel.index.as_deref())?;
        if let (Some(w), Some(k)) = (&sel.where_, &keys) {
            if sel.order_by.is_empty() {
                if let Some(plan) = in_plan(w, k, params)? {
                    return self.select_in(
                        sel,
                        plan,
                        params,
                        consistent_read,
                        limit,
                        exclusive_start_key,
                        return_consumed,
                    );
                }
            }
        }
        let mut ph = Placeholders::new(params);
        // Nested paths are read from whole items (a projected list keeps only the selected
        // elements, renumbered), top-level names by a ProjectionExpression.
        let projection = top_level_projection(&sel.projection, &mut ph);
        // Query when the partition key is fixed by an equality and nothing else in the WHERE
        // clause names a key attribute (a Query's filter may not).
        let mut key_parts = Vec::new();
        let mut rest = Vec::new();
        let mut query = false;
        let mut forward = true;
        if let (Some(w), Some(keys)) = (&sel.where_, &keys) {
            let cs = conjuncts(w);
            if let Some(projected) = &keys.projected {
                let keyed = cs
                    .iter()
                    .any(|c| equality_on(c, &keys.hash).is_some() || in_on(c, &keys.hash));
                if keyed {
                    let mut names = Vec::new();
                    for c in &cs {
                        top_names(c, &mut names);
                    }
                    if names.iter().any(|n| !projected.iter().any(|p| p == n)) {
                        return Err(Error::validation(UNPROJECTED_FILTER));
                    }
                }
            }
            let hash_eq = cs.iter().position(|c| equality_on(c, &keys.hash).is_some());
            if let Some(h) = hash_eq {
                let range_ix = keys.range.as_deref().and_then(|r| {
                    cs.iter()
                        .enumerate()
                        .position(|(i, c)| i != h && is_range_condition(c, r))
                });
                let others: Vec<&Expr> = cs
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != h && Some(*i) != range_ix)
                    .map(|(_, c)| *c)
                    .collect();
                let clean = others.iter().all(|c| {
                    !mentions(c, &keys.hash)
                        && keys.range.as_deref().is_none_or(|r| !mentions(c, r))
                });
                if clean {
                    query = true;
                    key_parts.push(ph.condition(cs[h])?);
                    if let Some(r) = range_ix {
                        key_parts.push(ph.condition(cs[r])?);
                    }
                    for c in others {
                        rest.push(ph.condition(c)?);
                    }
                }
            }
        }
        if !sel.order_by.is_empty() {
            let Some(keys) = keys.as_ref().filter(|_| query) else {
                return Err(Error::validation(
                    "Must have WHERE clause in the statement when using ORDER BY clause.",
                ));
            };
            for (p, desc) in &sel.order_by {
                let name = p.as_attr().unwrap_or("");
                if name != keys.hash && Some(name) != keys.range.as_deref() {
                    return Err(Error::validation(
                        "Order by clause must only contain the hash or range key attributes of the table or index",
                    ));
                }
                if Some(name) == keys.range.as_deref() {
                    forward = !desc;
                }
            }
        }
        if !query {
            if let Some(w) = &sel.where_ {
                rest = vec![ph.condition(w)?];
            }
        }
        let key_condition = and_all(key_parts);
        let filter = and_all(rest);
        let (names, values) = ph.into_maps();
        let read = ReadOptions {
            index_name: sel.index.clone(),
            filter_expression: filter,
            projection_expression: projection,
            limit,
            exclusive_start_key,
            consistent_read,
            params: ExprParams { names, values },
            return_consumed,
            ..ReadOptions::default()
        };
        let out = if query {
            self.query(QueryInput {
                table: sel.table.clone(),
                key_condition_expression: key_condition,
                key_conditions: None,
                scan_index_forward: forward,
                read,
            })?
        } else {
            self.scan(ScanInput {
                table: sel.table.clone(),
                segment: None,
                total_segments: None,
                read,
            })?
        };
        let paths = match &sel.projection {
            Projection::All => None,
            Projection::Paths(p) => Some(p.clone()),
        };
        Ok((out, paths))
    }

    /// A SELECT whose WHERE clause fixes the partition key with IN: one Query per value, in
    /// the order written, as DynamoDB runs it (no full scan). A page that stops early ends at a
    /// key whose partition value tells the next page which Query to resume.
    #[allow(clippy::too_many_arguments)]
    fn select_in(
        &self,
        sel: &Select,
        plan: InPlan,
        params: &[AttributeValue],
        consistent_read: bool,
        limit: Option<usize>,
        exclusive_start_key: Option<Item>,
        return_consumed: ReturnConsumedCapacity,
    ) -> Result<(ReadOutput, Option<Vec<Path>>), Error> {
        let start = match &exclusive_start_key {
            None => 0,
            Some(k) => plan
                .values
                .iter()
                .position(|v| {
                    k.get(&plan.hash).and_then(|x| ferrodyn_expr::compare(x, v))
                        == Some(std::cmp::Ordering::Equal)
                })
                .ok_or_else(|| Error::validation("Invalid NextToken"))?,
        };
        let mut items = Vec::new();
        let mut out = ReadOutput::default();
        let mut consumed: Vec<ConsumedCapacity> = Vec::new();
        let mut paths = None;
        let mut esk = exclusive_start_key;
        for (v, branch) in plan.values[start..].iter().zip(&plan.branch[start..]) {
            let remaining = limit.map(|l| l.saturating_sub(out.scanned_count));
            if remaining == Some(0) {
                break;
            }
            let eq = Expr::Cmp(
                ferrodyn_partiql::ast::CmpOp::Eq,
                Box::new(Expr::Path(Path {
                    elems: vec![PathElem::Name(plan.hash.clone())],
                })),
                Box::new(Expr::Lit(v.clone())),
            );
            let where_ = plan
                .others
                .iter()
                .chain(branch)
                .cloned()
                .fold(eq, |acc, c| Expr::And(Box::new(acc), Box::new(c)));
            let one = Select {
                where_: Some(where_),
                ..sel.clone()
            };
            let (page, p) = self.select(
                &one,
                params,
                consistent_read,
                remaining,
                esk.take(),
                return_consumed,
            )?;
            paths = p;
            out.count += page.count;
            out.scanned_count += page.scanned_count;
            if let Some(c) = page.consumed {
                add_consumed(&mut consumed, c);
            }
            if let Some(i) = page.items {
                items.extend(page_items(i)?);
            }
            if page.last_evaluated_key.is_some() {
                out.last_evaluated_key = page.last_evaluated_key;
                break;
            }
        }
        out.items = Some(PageItems::Built(items));
        out.consumed = consumed.into_iter().next();
        if paths.is_none() {
            paths = match &sel.projection {
                Projection::All => None,
                Projection::Paths(p) => Some(p.clone()),
            };
        }
        Ok((out, paths))
    }

    fn insert_input(
        &self,
        ins: &Insert,
        params: &[AttributeValue],
    ) -> Result<(Item, String, ExprParams), Error> {
        let keys = self
            .keys_of(&ins.table, None)?
            .ok_or_else(|| Error::internal("no keys"))?;
        let mut ph = Placeholders::new(params);
        let AttributeValue::M(item) = ph.constant(&ins.value)? else {
            return Err(Error::validation(format!(
                "{}INSERT value must be a map (tuple)",
                ferrodyn_partiql::MALFORMED
            )));
        };
        let cond = format!(
            "attribute_not_exists({})",
            ph.path(&Path {
                elems: vec![PathElem::Name(keys.hash)]
            })
        );
        let (names, values) = ph.into_maps();
        Ok((item, cond, ExprParams { names, values }))
    }

    fn insert(
        &self,
        ins: &Insert,
        params: &[AttributeValue],
        return_consumed: ReturnConsumedCapacity,
    ) -> Result<WriteOutput, Error> {
        let (item, cond, params) = self.insert_input(ins, params)?;
        self.put_item(PutItemInput {
            table: ins.table.clone(),
            item,
            condition_expression: Some(cond),
            params,
            return_consumed,
            ..PutItemInput::default()
        })
        .map_err(|e| match e {
            Error::ConditionalCheckFailed { .. } => Error::DuplicateItem(DUPLICATE_ITEM.into()),
            e => e,
        })
    }

    /// An UPDATE's key, update expression, condition and placeholders.
    fn update_input(
        &self,
        up: &Update,
        params: &[AttributeValue],
    ) -> Result<(Item, String, String, ExprParams), Error> {
        if up.index.is_some() {
            return Err(Error::validation(NOT_ON_INDEX));
        }
        let mut ph = Placeholders::new(params);
        let (keys, key, rest) = self.statement_key(&up.table, up.where_.as_ref(), &mut ph)?;
        let update = ph.update(&up.actions)?;
        let cond = exists_and(&keys, rest, &mut ph);
        let (names, values) = ph.into_maps();
        Ok((key, update, cond, ExprParams { names, values }))
    }

    fn update(
        &self,
        up: &Update,
        params: &[AttributeValue],
        return_consumed: ReturnConsumedCapacity,
        return_old_on_condition_failure: bool,
    ) -> Result<WriteOutput, Error> {
        let (key, update, cond, params) = self.update_input(up, params)?;
        self.update_item(UpdateItemInput {
            table: up.table.clone(),
            key,
            update_expression: Some(update),
            condition_expression: Some(cond),
            params,
            return_values: match up.returning {
                None => ReturnValues::None,
                Some(Returning::AllOld) => ReturnValues::AllOld,
                Some(Returning::ModifiedOld) => ReturnValues::UpdatedOld,
                Some(Returning::AllNew) => ReturnValues::AllNew,
                Some(Returning::ModifiedNew) => ReturnValues::UpdatedNew,
            },
            return_old_on_condition_failure,
            return_consumed,
            ..UpdateItemInput::default()
        })
    }

    fn delete_input(
        &self,
        del: &Delete,
        params: &[AttributeValue],
    ) -> Result<(Item, Option<String>, ExprParams), Error> {
        if del.index.is_some() {
            return Err(Error::validation(NOT_ON_INDEX));
        }
        let mut ph = Placeholders::new(params);
        let (_, key, rest) = self.statement_key(&del.table, del.where_.as_ref(), &mut ph)?;
        let cond = and_all(rest);
        let (names, values) = ph.into_maps();
        Ok((key, cond, ExprParams { names, values }))
    }

    fn delete(
        &self,
        del: &Delete,
        params: &[AttributeValue],
        return_consumed: ReturnConsumedCapacity,
        return_old_on_condition_failure: bool,
    ) -> Result<WriteOutput, Error> {
        let return_values = match del.returning {
            None => ReturnValues::None,
            Some(Returning::AllOld) => ReturnValues::AllOld,
            Some(_) => {
                return Err(Error::validation(format!(
                    "{}DELETE supports only RETURNING ALL OLD *",
                    ferrodyn_partiql::MALFORMED
                )))
            }
        };
        let (key, cond, params) = self.delete_input(del, params)?;
        self.delete_item(DeleteItemInput {
            table: del.table.clone(),
            key,
            condition_expression: cond,
            params,
            return_values,
            return_old_on_condition_failure,
            return_consumed,
            ..DeleteItemInput::default()
        })
    }

    /// A SELECT that names one item by its full key (batches and transactions): its key,
    /// projection expression and placeholders.
    fn point_select(
        &self,
        sel: &Select,
        params: &[AttributeValue],
    ) -> Result<(Item, Option<String>, ExprParams), Error> {
        if sel.index.is_some() || !sel.order_by.is_empty() {
            return Err(Error::validation(KEY_REQUIRED));
        }
        let mut ph = Placeholders::new(params);
        let (_, key, rest) = self.statement_key(&sel.table, sel.where_.as_ref(), &mut ph)?;
        if !rest.is_empty() {
            return Err(Error::validation(KEY_REQUIRED));
        }
        let projection = top_level_projection(&sel.projection, &mut ph);
        let (names, values) = ph.into_maps();
        Ok((key, projection, ExprParams { names, values }))
    }

    /// Runs the statements of a BatchExecuteStatement one by one; each succeeds or fails on
    /// its own.
    pub fn batch_execute_statement(
        &self,
        input: BatchExecuteInput,
    ) -> Result<BatchExecuteOutput, Error> {
        let parsed: Vec<Result<Statement, Error>> = input
            .statements
            .iter()
            .map(|s| parse_statement(&s.statement, &s.parameters))
            .collect();
        let reads = parsed.iter().flatten().filter(|s| s.is_read()).count();
        let parsed_ok = parsed.iter().flatten().count();
        if reads != 0 && reads != parsed_ok {
            return Err(Error::validation(
                "Statements in a batch must be either all reads or all writes",
            ));
        }
        let rc = input.return_consumed;
        let mut consumed: Vec<ConsumedCapacity> = Vec::new();
        let mut responses = Vec::with_capacity(parsed.len());
        for (s, p) in input.statements.iter().zip(parsed) {
            let table = p.as_ref().ok().map(|st| st.table().to_owned());
            let result = p.and_then(|st| self.batch_statement(&st, s, rc).map_err(statement_error));
            let mut outcome = StatementOutcome {
                table,
                ..StatementOutcome::default()
            };
            match result {
                Ok((item, c)) => {
                    outcome.item = item;
                    if let Some(c) = c {
                        add_consumed(&mut consumed, c);
                    }
                }
                Err(e) => outcome.error = Some(e),
            }
            responses.push(outcome);
        }
        Ok(BatchExecuteOutput {
            responses,
            consumed,
        })
    }

    fn batch_statement(
        &self,
        st: &Statement,
        s: &StatementInput,
        rc: ReturnConsumedCapacity,
    ) -> Result<(Option<Item>, Option<ConsumedCapacity>), Error> {
        let params = &s.parameters;
        let ccf = s.return_old_on_condition_failure;
        match st {
            Statement::Select(sel) => {
                self.point_select(sel, params)?;
                let (out, paths) = self.select(sel, params, s.consistent_read, None, None, rc)?;
                let items = page_items(out.items.unwrap_or(PageItems::Built(Vec::new())))?;
                let items = match paths {
                    Some(p) => reshape(items, &p),
                    None => items,
                };
                Ok((items.into_iter().next(), out.consumed))
            }
            Statement::Insert(ins) => Ok((None, self.insert(ins, params, rc)?.consumed)),
            Statement::Update(up) => Ok((None, self.update(up, params, rc, ccf)?.consumed)),
            Statement::Delete(del) => Ok((None, self.delete(del, params, rc, ccf)?.consumed)),
            Statement::Exists(_) => Err(Error::validation(format!(
                "{}EXISTS is only supported in ExecuteTransaction",
                ferrodyn_partiql::MALFORMED
            ))),
        }
    }

    /// Runs an ExecuteTransaction: all SELECTs as a TransactGetItems, otherwise every statement
    /// as one action of a TransactWriteItems.
    pub fn execute_transaction(
        &self,
        input: ExecuteTransactionInput,
    ) -> Result<ExecuteTransactionOutput, Error> {
        self.run_transaction(input).map_err(statement_error)
    }

    fn run_transaction(
        &self,
        input: ExecuteTransactionInput,
    ) -> Result<ExecuteTransactionOutput, Error> {
        let parsed = input
            .statements
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_statement(&s.statement, &s.parameters).map_err(|e| match e {
                    Error::Validation(m) => Error::Validation(format!(
                        "Validation failed in TransactStatements[{i}]: {m}"
                    )),
                    e => e,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let reads = parsed.iter().filter(|s| s.is_read()).count();
        if reads != 0 && reads != parsed.len() {
            return Err(Error::validation(
                "Transaction statements must be either all reads or all writes",
            ));
        }
        if reads != 0 {
            // A read-only transaction changes nothing, so its ClientRequestToken has nothing
            // to make idempotent.
            let mut items = Vec::with_capacity(parsed.len());
            let mut shapes = Vec::with_capacity(parsed.len());
            for (st, s) in parsed.iter().zip(&input.statements) {
                let Statement::Select(sel) = st else {
                    return Err(Error::internal("read transaction with a write"));
                };
                let (key, projection, params) = self.point_select(sel, &s.parameters)?;
                shapes.push(match &sel.projection {
                    Projection::All => None,
                    Projection::Paths(p) => Some(p.clone()),
                });
                items.push(TransactGetItem {
                    table: sel.table.clone(),
                    key,
                    projection_expression: projection,
                    names: params.names,
                });
            }
            let out = self.transact_get(TransactGetInput {
                items,
                return_consumed: input.return_consumed,
            })?;
            let responses = out
                .items
                .into_iter()
                .zip(shapes)
                .map(|(item, shape)| match (item, shape) {
                    (Some(i), Some(p)) => reshape(vec![i], &p).into_iter().next(),
                    (i, _) => i,
                })
                .collect();
            return Ok(ExecuteTransactionOutput {
                responses: Some(responses),
                consumed: out.consumed,
            });
        }
        let mut items = Vec::with_capacity(parsed.len());
        let mut inserts = Vec::with_capacity(parsed.len());
        for (st, s) in parsed.iter().zip(&input.statements) {
            let params = &s.parameters;
            let (table, action, expr) = match st {
                Statement::Insert(ins) => {
                    let (item, cond, p) = self.insert_input(ins, params)?;
                    let a = WriteAction::Put {
                        item,
                        condition_expression: Some(cond),
                    };
                    (ins.table.clone(), a, p)
                }
                Statement::Update(up) => {
                    if up.returning.is_some() {
                        return Err(Error::validation(format!(
                            "{}RETURNING is not supported in transactions",
                            ferrodyn_partiql::MALFORMED
                        )));
                    }
                    let (key, update, cond, p) = self.update_input(up, params)?;
                    let a = WriteAction::Update {
                        key,
                        update_expression: update,
                        condition_expression: Some(cond),
                    };
                    (up.table.clone(), a, p)
                }
                Statement::Delete(del) => {
                    if del.returning.is_some() {
                        return Err(Error::validation(format!(
                            "{}RETURNING is not supported in transactions",
                            ferrodyn_partiql::MALFORMED
                        )));
                    }
                    let (key, cond, p) = self.delete_input(del, params)?;
                    let a = WriteAction::Delete {
                        key,
                        condition_expression: cond,
                    };
                    (del.table.clone(), a, p)
                }
                Statement::Exists(sel) => {
                    let (key, cond, p) = self.exists_input(sel, params)?;
                    let a = WriteAction::ConditionCheck {
                        key,
                        condition_expression: cond,
                    };
                    (sel.table.clone(), a, p)
                }
                Statement::Select(_) => {
                    return Err(Error::internal("write transaction with a read"))
                }
            };
            inserts.push(matches!(st, Statement::Insert(_)));
            items.push(TransactWriteItem {
                table,
                action,
                params: expr,
                return_old_on_condition_failure: s.return_old_on_condition_failure,
            });
        }
        let out = self
            .transact_write(TransactWriteInput {
                items,
                client_request_token: input.client_request_token,
                return_consumed: input.return_consumed,
                return_item_collection_metrics: false,
            })
            .map_err(|e| match e {
                Error::TransactionCanceled { reasons } => Error::TransactionCanceled {
                    reasons: reasons
                        .into_iter()
                        .zip(&inserts)
                        .map(|(r, insert)| duplicate_reason(r, *insert))
                        .collect(),
                },
                e => e,
            })?;
        Ok(ExecuteTransactionOutput {
            responses: None,
            consumed: out.consumed,
        })
    }

    /// `EXISTS(SELECT ... WHERE <full key> [AND conditions])`: a condition check that the item
    /// exists and satisfies the conditions.
    fn exists_input(
        &self,
        sel: &Select,
        params: &[AttributeValue],
    ) -> Result<(Item, String, ExprParams), Error> {
        if sel.index.is_some() || !sel.order_by.is_empty() {
            return Err(Error::validation(KEY_REQUIRED));
        }
        let mut ph = Placeholders::new(params);
        let (keys, key, rest) = self.statement_key(&sel.table, sel.where_.as_ref(), &mut ph)?;
        let cond = exists_and(&keys, rest, &mut ph);
        let (names, values) = ph.into_maps();
        Ok((key, cond, ExprParams { names, values }))
    }
}

/// A SELECT run as one Query per partition-key value of an IN, or per branch of an OR of
/// partition-key equalities.
struct InPlan {
    hash: String,
    /// The partition-key values, distinct, in the order written.
    values: Vec<AttributeValue>,
    /// Per value, the conditions of its OR branch besides the equality (empty for IN).
    branch: Vec<Vec<Expr>>,
    /// The other conjuncts of the WHERE clause.
    others: Vec<Expr>,
}

/// The branches of an OR tree (a left-deep chain is walked without recursion).
fn or_branches(e: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Or(l, r) => {
                stack.push(r);
                stack.push(l);
            }
            _ => out.push(e),
        }
    }
    out
}

/// `pk = a [AND ...] OR pk = b [AND ...] ...` with distinct constant values: each branch's
/// value and its other conditions (none of which may name the partition key).
fn or_plan(
    e: &Expr,
    hash: &str,
    params: &[AttributeValue],
) -> Option<(Vec<AttributeValue>, Vec<Vec<Expr>>)> {
    let branches = or_branches(e);
    if branches.len() < 2 {
        return None;
    }
    let mut values: Vec<AttributeValue> = Vec::new();
    let mut rests = Vec::new();
    for b in branches {
        let cs = conjuncts(b);
        let ix = cs.iter().position(|c| equality_on(c, hash).is_some())?;
        let v = ferrodyn_partiql::constant(equality_on(cs[ix], hash)?, params).ok()?;
        v.scalar_type()?;
        // The same value in two branches would read its partition twice.
        if values
            .iter()
            .any(|x| ferrodyn_expr::compare(x, &v) == Some(std::cmp::Ordering::Equal))
        {
            return None;
        }
        let rest: Vec<Expr> = cs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != ix)
            .map(|(_, c)| (*c).clone())
            .collect();
        if rest.iter().any(|c| mentions(c, hash)) {
            return None;
        }
        values.push(v);
        rests.push(rest);
    }
    Some((values, rests))
}

/// Whether a WHERE clause is `hash IN [constants]` and conjuncts a Query can take beside a
/// partition-key equality (at most one sort-key condition, nothing else naming a key).
fn in_plan(w: &Expr, keys: &Keys, params: &[AttributeValue]) -> Result<Option<InPlan>, Error> {
    let cs = conjuncts(w);
    if cs.iter().any(|c| equality_on(c, &keys.hash).is_some()) {
        return Ok(None);
    }
    if let Some(ix) = cs
        .iter()
        .position(|c| matches!(c, Expr::Or(..)) && mentions(c, &keys.hash))
    {
        let Some((values, branch)) = or_plan(cs[ix], &keys.hash, params) else {
            return Ok(None);
        };
        let others: Vec<Expr> = cs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != ix)
            .map(|(_, c)| (*c).clone())
            .collect();
        if others.iter().any(|c| mentions(c, &keys.hash)) {
            return Ok(None);
        }
        return Ok(Some(InPlan {
            hash: keys.hash.clone(),
            values,
            branch,
            others,
        }));
    }
    let Some(ix) = cs.iter().position(|c| in_on(c, &keys.hash)) else {
        return Ok(None);
    };
    let Expr::In(_, list) = cs[ix] else {
        return Ok(None);
    };
    let mut values: Vec<AttributeValue> = Vec::new();
    let mut push = |v: AttributeValue| {
        if v.scalar_type().is_some()
            && !values
                .iter()
                .any(|x| ferrodyn_expr::compare(x, &v) == Some(std::cmp::Ordering::Equal))
        {
            values.push(v);
        }
    };
    for e in list {
        match ferrodyn_partiql::constant(e, params) {
            Ok(AttributeValue::L(vs)) if list.len() == 1 && !matches!(e, Expr::List(_)) => {
                vs.into_iter().for_each(&mut push)
            }
            Ok(v) => push(v),
            Err(_) => return Ok(None),
        }
    }
    let others: Vec<&Expr> = cs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != ix)
        .map(|(_, c)| *c)
        .collect();
    let mut range_seen = false;
    for c in &others {
        if mentions(c, &keys.hash) {
            return Ok(None);
        }
        if let Some(r) = keys.range.as_deref() {
            if mentions(c, r) {
                if range_seen || !is_range_condition(c, r) {
                    return Ok(None);
                }
                range_seen = true;
            }
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    Ok(Some(InPlan {
        hash: keys.hash.clone(),
        branch: vec![Vec::new(); values.len()],
        values,
        others: others.into_iter().cloned().collect(),
    }))
}

/// An INSERT's failed condition is a duplicate key.
fn duplicate_reason(mut r: CancellationReason, insert: bool) -> CancellationReason {
    if insert && r.code.as_deref() == Some("ConditionalCheckFailed") {
        r.code = Some("DuplicateItem".into());
        r.message = Some(DUPLICATE_ITEM.into());
    }
    r
}

/// Adds one statement's capacity to the per-table totals of a batch.
fn add_consumed(all: &mut Vec<ConsumedCapacity>, c: ConsumedCapacity) {
    let Some(t) = all.iter_mut().find(|x| x.table_name == c.table_name) else {
        all.push(c);
        return;
    };
    fn add(a: &mut Option<f64>, b: Option<f64>) {
        if let Some(b) = b {
            *a = Some(a.unwrap_or(0.0) + b);
        }
    }
    t.capacity_units += c.capacity_units;
    // Statements of one batch are all reads or all writes: one kind of unit.
    t.split = t.split.or(c.split);
    add(&mut t.table_units, c.table_units);
    let merge = |dst: &mut Vec<(String, f64)>, src: Vec<(String, f64)>| {
        for (n, u) in src {
            match dst.iter_mut().find(|(m, _)| *m == n) {
                Some((_, v)) => *v += u,
                None => dst.push((n, u)),
            }
        }
    };
    merge(&mut t.global_indexes, c.global_indexes);
    merge(&mut t.local_indexes, c.local_indexes);
}
