//! What a request asks to do, in IAM's terms: for each operation, the actions it performs, on
//! which resources, with which DynamoDB condition keys (`dynamodb:LeadingKeys`,
//! `dynamodb:Attributes`, `dynamodb:Select`, `dynamodb:ReturnValues`,
//! `dynamodb:ReturnConsumedCapacity`).
//!
//! Invariants:
//! - every operation the router accepts maps to at least one [`Access`]; batch and transaction
//!   operations map to one per item, so fine-grained conditions apply to each item, with the
//!   action DynamoDB checks for it (`dynamodb:BatchGetItem` per table and item of BatchGetItem,
//!   `dynamodb:PutItem`/`UpdateItem`/`DeleteItem`/`ConditionCheckItem` per action of
//!   TransactWriteItems, `dynamodb:GetItem` per item of TransactGetItems);
//! - PartiQL operations map to one access per statement that parses
//!   (`dynamodb:PartiQLSelect`/`Insert`/`Update`/`Delete` on the statement's table or index),
//!   with `dynamodb:FullTableScan` on a SELECT and no other DynamoDB condition keys;
//! - extraction never fails a request: a member that does not parse yields no condition value,
//!   and the operation's own validation then rejects the request.
//!
//! Choices where AWS documents nothing precise (docs/security.md lists them):
//! - `dynamodb:Attributes` holds the key attributes named by the request plus the top-level
//!   attributes it reads (projection) or writes (item, update targets); a read without a
//!   projection has no `dynamodb:Attributes` value and `dynamodb:Select` = `ALL_ATTRIBUTES`, so
//!   the documented `StringEqualsIfExists dynamodb:Select SPECIFIC_ATTRIBUTES` guard refuses it;
//! - `dynamodb:ReturnValues` and `dynamodb:ReturnConsumedCapacity` take their default (`NONE`)
//!   when the request does not name them.

use std::collections::{BTreeSet, HashMap};

use ferrodyn_core::Engine;
use ferrodyn_expr::ast::{Path, PathElem};
use ferrodyn_expr::{CondKind, Resolver};
use ferrodyn_model::AttributeValue;
use ferrodyn_protocol::codec;
use serde_json::Value;

use super::json::{field, names_field, present, str_field};
use super::Api;

/// One authorization question: may the caller perform `action` on `resource`?
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// `dynamodb:GetItem`, `dynamodb:ListStreams`, ...
    pub action: String,
    /// An ARN, or `*` for operations without a resource (DescribeLimits, DescribeEndpoints).
    pub resource: String,
    pub leading_keys: Option<Vec<String>>,
    pub attributes: Option<Vec<String>>,
    pub select: Option<String>,
    pub return_values: Option<String>,
    pub return_consumed_capacity: Option<String>,
    /// PartiQL SELECT: `dynamodb:FullTableScan`, whether the statement reads the whole table
    /// or index (no partition-key equality or IN in its WHERE clause).
    pub full_table_scan: Option<bool>,
}

/// The ARN prefix of this server's tables: `arn:aws:dynamodb:REGION:ACCOUNT:table/`.
fn table_arn(engine: &Engine, table: &str) -> String {
    let c = engine.config();
    // Appended rather than formatted: this runs for every access of every request.
    let mut arn = String::with_capacity(30 + c.region.len() + c.account.len() + table.len());
    for part in [
        "arn:aws:dynamodb:",
        &c.region,
        ":",
        &c.account,
        ":table/",
        table,
    ] {
        arn.push_str(part);
    }
    arn
}

fn table_or_index_arn(engine: &Engine, table: &str, index: Option<&str>) -> String {
    match index {
        Some(ix) => format!("{}/index/{ix}", table_arn(engine, table)),
        None => table_arn(engine, table),
    }
}

/// The string IAM compares for a key value: S as is, N as written, B in base64.
fn key_string(v: &AttributeValue) -> Option<String> {
    use base64::Engine as _;
    match v {
        AttributeValue::S(s) => Some(s.clone()),
        AttributeValue::N(n) => Some(n.to_string()),
        AttributeValue::B(b) => Some(base64::engine::general_purpose::STANDARD.encode(b)),
        _ => None,
    }
}

fn top_level(path: &Path) -> Option<&str> {
    match path.elems.first()? {
        PathElem::Attr(a) => Some(a),
        PathElem::Index(_) => None,
    }
}

/// The attributes of one item request: key names, then whatever else it reads or writes.
#[derive(Default)]
struct Attrs(BTreeSet<String>);

impl Attrs {
    fn keys_of(mut self, key: Option<&Value>) -> Self {
        if let Some(m) = key.and_then(Value::as_object) {
            self.0.extend(m.keys().cloned());
        }
        self
    }
    fn into_vec(self) -> Vec<String> {
        self.0.into_iter().collect()
    }
}

/// Top-level attribute names of a ProjectionExpression (placeholders resolved) or of
/// AttributesToGet; `None` when the request names neither.
fn projected(req: &Value, names: Option<&HashMap<String, String>>) -> Option<Vec<String>> {
    if let Some(expr) = str_field(req, "ProjectionExpression") {
        let mut r = Resolver::new(names, None);
        let paths = r.projection(expr).ok()?;
        return Some(
            paths
                .iter()
                .filter_map(top_level)
                .map(str::to_owned)
                .collect(),
        );
    }
    present(req, "AttributesToGet")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
}

/// The partition key value of `key` (an item or a Key map in JSON) under `engine`'s schema.
fn leading_key(engine: &Engine, table: &str, key: Option<&Value>) -> Option<Vec<String>> {
    let names = engine.key_names(table, None)?;
    let v = codec::decode_value(field(key?, names.hash.first()?)?).ok()?;
    Some(vec![key_string(&v)?])
}

fn read_select(req: &Value, attrs: &Option<Vec<String>>) -> String {
    match str_field(req, "Select") {
        Some(s) => s.to_owned(),
        None if attrs.is_some() => "SPECIFIC_ATTRIBUTES".into(),
        None => "ALL_ATTRIBUTES".into(),
    }
}

fn consumed(req: &Value) -> Option<String> {
    Some(
        str_field(req, "ReturnConsumedCapacity")
            .unwrap_or("NONE")
            .to_owned(),
    )
}

/// GetItem-shaped read of one key (GetItem, a TransactGetItems action, a BatchGetItem key).
fn item_read(
    engine: &Engine,
    action: &str,
    table: &str,
    key: Option<&Value>,
    shape: &Value,
    outer: &Value,
) -> Access {
    let names = names_field(shape);
    let proj = projected(shape, names.as_ref());
    let select = read_select(shape, &proj);
    let attributes = proj.map(|p| {
        let mut a = Attrs::default().keys_of(key);
        a.0.extend(p);
        a.into_vec()
    });
    Access {
        action: action.into(),
        resource: table_arn(engine, table),
        leading_keys: leading_key(engine, table, key),
        attributes,
        select: Some(select),
        return_values: None,
        return_consumed_capacity: consumed(outer),
        full_table_scan: None,
    }
}

/// Top-level attributes an UpdateExpression or AttributeUpdates writes.
fn update_targets(req: &Value, names: Option<&HashMap<String, String>>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(expr) = str_field(req, "UpdateExpression") {
        let values =
            present(req, "ExpressionAttributeValues").and_then(|v| codec::decode_value_map(v).ok());
        let mut r = Resolver::new(names, values.as_ref());
        if let Ok(u) = r.update(expr) {
            out.extend(
                u.actions
                    .iter()
                    .filter_map(|a| top_level(a.path()))
                    .map(str::to_owned),
            );
        }
    }
    if let Some(m) = present(req, "AttributeUpdates").and_then(Value::as_object) {
        out.extend(m.keys().cloned());
    }
    out
}

/// A write of one item: PutItem/UpdateItem/DeleteItem/ConditionCheckItem, alone, in a batch or
/// in a transaction. `item` is the new item of a put; `key` the Key of the others.
fn item_write(engine: &Engine, action: &str, table: &str, shape: &Value, outer: &Value) -> Access {
    let item = present(shape, "Item");
    let key = present(shape, "Key");
    let names = names_field(shape);
    let mut attrs = Attrs::default().keys_of(item.or(key));
    if action.ends_with("UpdateItem") {
        attrs.0.extend(update_targets(shape, names.as_ref()));
    }
    let return_values = match action {
        "dynamodb:PutItem" | "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => Some(
            str_field(shape, "ReturnValues")
                .unwrap_or("NONE")
                .to_owned(),
        ),
        _ => None,
    };
    Access {
        action: action.into(),
        resource: table_arn(engine, table),
        leading_keys: leading_key(engine, table, item.or(key)),
        attributes: Some(attrs.into_vec()),
        select: None,
        return_values,
        return_consumed_capacity: consumed(outer),
        full_table_scan: None,
    }
}

/// The partition key value a Query's key condition fixes.
fn query_leading_key(engine: &Engine, req: &Value, table: &str) -> Option<Vec<String>> {
    let index = str_field(req, "IndexName");
    let keys = engine.key_names(table, index)?;
    if let Some(expr) = str_field(req, "KeyConditionExpression") {
        let names = names_field(req);
        let values =
            present(req, "ExpressionAttributeValues").and_then(|v| codec::decode_value_map(v).ok());
        let mut r = Resolver::new(names.as_ref(), values.as_ref());
        let cond = r.condition(expr, CondKind::KeyCondition).ok()?;
        let hash: Vec<&str> = keys.hash.iter().map(String::as_str).collect();
        let range: Vec<&str> = keys.range.iter().map(String::as_str).collect();
        let kc = ferrodyn_expr::key_condition(&cond, &hash, &range).ok()?;
        return Some(vec![key_string(kc.partition_key()?)?]);
    }
    let cond = field(present(req, "KeyConditions")?, keys.hash.first()?)?;
    let first = present(cond, "AttributeValueList")?.as_array()?.first()?;
    Some(vec![key_string(&codec::decode_value(first).ok()?)?])
}

fn read_many(engine: &Engine, op: &str, req: &Value) -> Access {
    let table = str_field(req, "TableName").unwrap_or_default();
    let index = str_field(req, "IndexName");
    let names = names_field(req);
    let proj = projected(req, names.as_ref());
    let select = read_select(req, &proj);
    Access {
        action: format!("dynamodb:{op}"),
        resource: table_or_index_arn(engine, table, index),
        leading_keys: if op == "Query" {
            query_leading_key(engine, req, table)
        } else {
            None
        },
        attributes: proj,
        select: Some(select),
        return_values: None,
        return_consumed_capacity: consumed(req),
        full_table_scan: None,
    }
}

fn plain(action: String, resource: String) -> Access {
    Access {
        action,
        resource,
        ..Access::default()
    }
}

/// The authorization questions of one request (already shape-validated), with their condition
/// keys when `detailed`; without, only actions and resources (enough when no policy involved
/// reads a condition key, and much cheaper for item operations).
pub fn accesses(engine: &Engine, api: Api, op: &str, req: &Value, detailed: bool) -> Vec<Access> {
    if api == Api::DynamoDb {
        let statements = match op {
            "ExecuteStatement" => Some(std::slice::from_ref(req)),
            "BatchExecuteStatement" => present(req, "Statements")
                .and_then(Value::as_array)
                .map(Vec::as_slice),
            "ExecuteTransaction" => present(req, "TransactStatements")
                .and_then(Value::as_array)
                .map(Vec::as_slice),
            _ => None,
        };
        if let Some(statements) = statements {
            return statements
                .iter()
                .filter_map(|s| partiql_access(engine, str_field(s, "Statement")?))
                .collect();
        }
    }
    if !detailed {
        if let Some(plain) = plain_item_accesses(engine, api, op, req) {
            return plain;
        }
    }
    let action = ["dynamodb:", op].concat();
    let table = str_field(req, "TableName").unwrap_or_default();
    match (api, op) {
        (Api::DynamoDb, "GetItem") => vec![item_read(
            engine,
            &action,
            table,
            present(req, "Key"),
            req,
            req,
        )],
        (Api::DynamoDb, "PutItem" | "UpdateItem" | "DeleteItem") => {
            vec![item_write(engine, &action, table, req, req)]
        }
        (Api::DynamoDb, "Query" | "Scan") => vec![read_many(engine, op, req)],
        (Api::DynamoDb, "BatchGetItem") => {
            let mut out = Vec::new();
            for (t, spec) in present(req, "RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let keys = present(spec, "Keys").and_then(Value::as_array);
                let keys: Vec<Option<&Value>> = match keys {
                    Some(k) if !k.is_empty() => k.iter().map(Some).collect(),
                    _ => vec![None],
                };
                for key in keys {
                    out.push(item_read(engine, &action, t, key, spec, req));
                }
            }
            out
        }
        (Api::DynamoDb, "BatchWriteItem") => {
            let mut out = Vec::new();
            for (t, writes) in present(req, "RequestItems")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                for w in writes.as_array().into_iter().flatten() {
                    let shape = present(w, "PutRequest")
                        .or_else(|| present(w, "DeleteRequest"))
                        .unwrap_or(w);
                    let mut a = item_write(engine, &action, t, shape, req);
                    a.return_values = None;
                    out.push(a);
                }
                if out.is_empty() {
                    out.push(plain(action.clone(), table_arn(engine, t)));
                }
            }
            out
        }
        (Api::DynamoDb, "TransactWriteItems") => {
            let mut out = Vec::new();
            for it in present(req, "TransactItems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for (member, act) in [
                    ("Put", "dynamodb:PutItem"),
                    ("Update", "dynamodb:UpdateItem"),
                    ("Delete", "dynamodb:DeleteItem"),
                    ("ConditionCheck", "dynamodb:ConditionCheckItem"),
                ] {
                    if let Some(shape) = present(it, member) {
                        let t = str_field(shape, "TableName").unwrap_or_default();
                        let mut a = item_write(engine, act, t, shape, req);
                        // ReturnValuesOnConditionCheckFailure is not ReturnValues.
                        a.return_values = None;
                        out.push(a);
                    }
                }
            }
            out
        }
        (Api::DynamoDb, "TransactGetItems") => present(req, "TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|it| present(it, "Get"))
            .map(|g| {
                let t = str_field(g, "TableName").unwrap_or_default();
                item_read(engine, "dynamodb:GetItem", t, present(g, "Key"), g, req)
            })
            .collect(),
        (Api::DynamoDb, "TagResource" | "UntagResource" | "ListTagsOfResource")
        | (Api::DynamoDb, "PutResourcePolicy" | "GetResourcePolicy" | "DeleteResourcePolicy") => {
            vec![plain(
                action,
                str_field(req, "ResourceArn").unwrap_or_default().to_owned(),
            )]
        }
        // DynamoDB evaluates (and names in its AccessDeniedException) ListTables on every table
        // of the account and region: `...:table/*`, which a policy's `table/*` resource matches.
        (Api::DynamoDb, "ListTables") => vec![plain(action, table_arn(engine, "*"))],
        (Api::DynamoDb, "DescribeLimits" | "DescribeEndpoints") => {
            vec![plain(action, "*".into())]
        }
        (Api::Streams, "ListStreams") => {
            let resource = match str_field(req, "TableName") {
                Some(t) => format!("{}/stream/*", table_arn(engine, t)),
                None => "*".into(),
            };
            vec![plain(action, resource)]
        }
        (Api::Streams, "DescribeStream" | "GetShardIterator") => vec![plain(
            action,
            str_field(req, "StreamArn").unwrap_or_default().to_owned(),
        )],
        (Api::Streams, "GetRecords") => {
            let resource = str_field(req, "ShardIterator")
                .and_then(ferrodyn_core::streams::iterator_stream_arn)
                .unwrap_or_else(|| "*".into());
            vec![plain(action, resource)]
        }
        (Api::DynamoDb, "CreateTable") => {
            let arn = table_arn(engine, table);
            let mut out = vec![plain(action, arn.clone())];
            // Attaching a policy at creation needs the permission to attach it.
            if present(req, "ResourcePolicy").is_some() {
                out.push(plain("dynamodb:PutResourcePolicy".into(), arn));
            }
            out
        }
        // Backups are resources of their own; a restore also creates its target table.
        (Api::DynamoDb, "DescribeBackup" | "DeleteBackup") => vec![plain(
            action,
            str_field(req, "BackupArn").unwrap_or("*").to_owned(),
        )],
        (Api::DynamoDb, "RestoreTableFromBackup") => vec![
            plain(
                action.clone(),
                str_field(req, "BackupArn").unwrap_or("*").to_owned(),
            ),
            plain(
                action,
                table_arn(
                    engine,
                    str_field(req, "TargetTableName").unwrap_or_default(),
                ),
            ),
        ],
        (Api::DynamoDb, "RestoreTableToPointInTime") => {
            let source = match str_field(req, "SourceTableArn") {
                Some(arn) => arn.to_owned(),
                None => table_arn(
                    engine,
                    str_field(req, "SourceTableName").unwrap_or_default(),
                ),
            };
            vec![
                plain(action.clone(), source),
                plain(
                    action,
                    table_arn(
                        engine,
                        str_field(req, "TargetTableName").unwrap_or_default(),
                    ),
                ),
            ]
        }
        (Api::DynamoDb, "ListBackups") => vec![plain(action, "*".into())],
        // Exports and imports: the table exported or created, or the job itself.
        (Api::DynamoDb, "ExportTableToPointInTime") => vec![plain(
            action,
            str_field(req, "TableArn").unwrap_or("*").to_owned(),
        )],
        (Api::DynamoDb, "DescribeExport") => vec![plain(
            action,
            str_field(req, "ExportArn").unwrap_or("*").to_owned(),
        )],
        (Api::DynamoDb, "DescribeImport") => vec![plain(
            action,
            str_field(req, "ImportArn").unwrap_or("*").to_owned(),
        )],
        (Api::DynamoDb, "ListExports" | "ListImports") => vec![plain(
            action,
            str_field(req, "TableArn").unwrap_or("*").to_owned(),
        )],
        (Api::DynamoDb, "ImportTable") => {
            let name = present(req, "TableCreationParameters")
                .and_then(|p| str_field(p, "TableName"))
                .unwrap_or_default();
            vec![plain(action, table_arn(engine, name))]
        }
        (Api::Admin, "CreateTrigger" | "ListTriggers") => vec![plain(
            format!("ferrodyn:{op}"),
            str_field(req, "TableName").map_or_else(|| "*".to_owned(), |t| table_arn(engine, t)),
        )],
        (Api::Admin, "DescribeTrigger" | "UpdateTrigger" | "DeleteTrigger") => vec![plain(
            format!("ferrodyn:{op}"),
            super::admin::trigger_arn(engine, str_field(req, "TriggerId").unwrap_or("*")),
        )],
        (Api::Admin, _) => vec![plain(
            format!("ferrodyn:{op}"),
            super::admin::audit_log_arn(engine),
        )],
        // Table-level operations (CreateTable, DescribeTable, UpdateTable, DeleteTable,
        // UpdateTimeToLive, DescribeTimeToLive, DescribeContinuousBackups, ...).
        _ if !table.is_empty() => vec![plain(action, table_arn(engine, table))],
        _ => vec![plain(action, "*".into())],
    }
}

/// The access of one PartiQL statement: `dynamodb:PartiQLSelect` (also for `EXISTS`),
/// `PartiQLInsert`, `PartiQLUpdate` or `PartiQLDelete` on the table (or, for a SELECT from an
/// index, the index) it names; a SELECT carries `dynamodb:FullTableScan`, the other condition
/// keys are not set. A statement that does not parse touches
/// nothing (it fails with a ValidationException), so it asks nothing.
fn partiql_access(engine: &Engine, text: &str) -> Option<Access> {
    use ferrodyn_partiql::Statement;
    let parsed = ferrodyn_partiql::parse(text).ok()?;
    let (action, resource) = match &parsed.statement {
        Statement::Select(s) | Statement::Exists(s) => {
            let hash = engine
                .key_names(&s.table, s.index.as_deref())
                .map(|k| k.hash);
            let full_table_scan = match (&s.where_, hash) {
                // Every partition-key attribute (an index may have several) must be fixed.
                (Some(w), Some(h)) => !h
                    .iter()
                    .all(|h| ferrodyn_partiql::translate::fixes_partition_key(w, h)),
                _ => true,
            };
            return Some(Access {
                full_table_scan: Some(full_table_scan),
                ..plain(
                    "dynamodb:PartiQLSelect".to_owned(),
                    table_or_index_arn(engine, &s.table, s.index.as_deref()),
                )
            });
        }
        Statement::Insert(s) => ("dynamodb:PartiQLInsert", table_arn(engine, &s.table)),
        Statement::Update(s) => ("dynamodb:PartiQLUpdate", table_arn(engine, &s.table)),
        Statement::Delete(s) => ("dynamodb:PartiQLDelete", table_arn(engine, &s.table)),
    };
    Some(plain(action.to_owned(), resource))
}

/// The accesses of item operations without condition keys: the same actions on the same
/// resources as the detailed mapping, one per table for batches (the per-item accesses differ
/// only in condition keys). `None` for other operations, whose mapping is cheap already.
fn plain_item_accesses(engine: &Engine, api: Api, op: &str, req: &Value) -> Option<Vec<Access>> {
    let action = || ["dynamodb:", op].concat();
    let table = || str_field(req, "TableName").unwrap_or_default();
    let tables = |member: &str| -> Vec<Access> {
        present(req, member)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(t, _)| plain(action(), table_arn(engine, t)))
            .collect()
    };
    let transact = |actions: &[(&str, &str)]| -> Vec<Access> {
        let mut out = Vec::new();
        for it in present(req, "TransactItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for (member, act) in actions {
                if let Some(shape) = present(it, member) {
                    let t = str_field(shape, "TableName").unwrap_or_default();
                    out.push(plain((*act).to_owned(), table_arn(engine, t)));
                }
            }
        }
        out
    };
    Some(match (api, op) {
        (Api::DynamoDb, "GetItem" | "PutItem" | "UpdateItem" | "DeleteItem") => {
            vec![plain(action(), table_arn(engine, table()))]
        }
        (Api::DynamoDb, "Query" | "Scan") => vec![plain(
            action(),
            table_or_index_arn(engine, table(), str_field(req, "IndexName")),
        )],
        (Api::DynamoDb, "BatchGetItem" | "BatchWriteItem") => tables("RequestItems"),
        (Api::DynamoDb, "TransactWriteItems") => transact(&[
            ("Put", "dynamodb:PutItem"),
            ("Update", "dynamodb:UpdateItem"),
            ("Delete", "dynamodb:DeleteItem"),
            ("ConditionCheck", "dynamodb:ConditionCheckItem"),
        ]),
        (Api::DynamoDb, "TransactGetItems") => transact(&[("Get", "dynamodb:GetItem")]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrodyn_storage::MemoryStorage;
    use std::sync::Arc;

    fn engine() -> Engine {
        let e = Engine::open(Arc::new(MemoryStorage::new()), Default::default()).unwrap();
        crate::ops::dispatch(
            &e,
            Api::DynamoDb,
            "CreateTable",
            br#"{"TableName":"Tab","KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"s","KeyType":"RANGE"}],
                "AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"s","AttributeType":"N"},{"AttributeName":"g","AttributeType":"N"}],
                "GlobalSecondaryIndexes":[{"IndexName":"Gix","KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"}}],
                "BillingMode":"PAY_PER_REQUEST"}"#,
        )
        .unwrap();
        e
    }

    fn one(e: &Engine, op: &str, body: &str) -> Access {
        let v: Value = serde_json::from_str(body).unwrap();
        let mut all = accesses(e, Api::DynamoDb, op, &v, true);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    #[test]
    fn get_item_with_and_without_projection() {
        let e = engine();
        let a = one(
            &e,
            "GetItem",
            r##"{"TableName":"Tab","Key":{"p":{"S":"alice"},"s":{"N":"1"}},
                "ProjectionExpression":"#a, b.c[1]","ExpressionAttributeNames":{"#a":"name"}}"##,
        );
        assert_eq!(a.action, "dynamodb:GetItem");
        assert_eq!(
            a.resource,
            "arn:aws:dynamodb:us-east-1:000000000000:table/Tab"
        );
        assert_eq!(a.leading_keys, Some(vec!["alice".to_string()]));
        assert_eq!(
            a.attributes,
            Some(vec!["b".into(), "name".into(), "p".into(), "s".into()])
        );
        assert_eq!(a.select.as_deref(), Some("SPECIFIC_ATTRIBUTES"));
        assert_eq!(a.return_consumed_capacity.as_deref(), Some("NONE"));
        let b = one(
            &e,
            "GetItem",
            r#"{"TableName":"Tab","Key":{"p":{"S":"bob"},"s":{"N":"1"}}}"#,
        );
        assert_eq!(b.attributes, None);
        assert_eq!(b.select.as_deref(), Some("ALL_ATTRIBUTES"));
    }

    #[test]
    fn writes_name_their_attributes_and_return_values() {
        let e = engine();
        let p = one(
            &e,
            "PutItem",
            r#"{"TableName":"Tab","Item":{"p":{"S":"u1"},"s":{"N":"2"},"x":{"S":"v"}},"ReturnValues":"ALL_OLD"}"#,
        );
        assert_eq!(p.leading_keys, Some(vec!["u1".to_string()]));
        assert_eq!(p.attributes, Some(vec!["p".into(), "s".into(), "x".into()]));
        assert_eq!(p.return_values.as_deref(), Some("ALL_OLD"));
        let u = one(
            &e,
            "UpdateItem",
            r##"{"TableName":"Tab","Key":{"p":{"S":"u1"},"s":{"N":"2"}},
                "UpdateExpression":"SET #n = :v, m.k = :v REMOVE gone","ExpressionAttributeNames":{"#n":"nick"},
                "ExpressionAttributeValues":{":v":{"S":"z"}}}"##,
        );
        assert_eq!(
            u.attributes,
            Some(vec![
                "gone".into(),
                "m".into(),
                "nick".into(),
                "p".into(),
                "s".into()
            ])
        );
        assert_eq!(u.return_values.as_deref(), Some("NONE"));
    }

    #[test]
    fn query_on_table_and_index() {
        let e = engine();
        let q = one(
            &e,
            "Query",
            r#"{"TableName":"Tab","KeyConditionExpression":"p = :p AND s > :s",
                "ExpressionAttributeValues":{":p":{"S":"alice"},":s":{"N":"0"}}}"#,
        );
        assert_eq!(q.leading_keys, Some(vec!["alice".to_string()]));
        assert_eq!(q.select.as_deref(), Some("ALL_ATTRIBUTES"));
        let g = one(
            &e,
            "Query",
            r#"{"TableName":"Tab","IndexName":"Gix","KeyConditionExpression":"g = :g",
                "ExpressionAttributeValues":{":g":{"N":"7"}},"Select":"COUNT"}"#,
        );
        assert_eq!(
            g.resource,
            "arn:aws:dynamodb:us-east-1:000000000000:table/Tab/index/Gix"
        );
        assert_eq!(g.leading_keys, Some(vec!["7".to_string()]));
        assert_eq!(g.select.as_deref(), Some("COUNT"));
        let l = one(
            &e,
            "Query",
            r#"{"TableName":"Tab","KeyConditions":{"p":{"ComparisonOperator":"EQ","AttributeValueList":[{"S":"carol"}]}}}"#,
        );
        assert_eq!(l.leading_keys, Some(vec!["carol".to_string()]));
    }

    #[test]
    fn batches_and_transactions_are_checked_per_item() {
        let e = engine();
        let v: Value = serde_json::from_str(
            r#"{"RequestItems":{"Tab":[{"PutRequest":{"Item":{"p":{"S":"a"},"s":{"N":"1"}}}},
                                     {"DeleteRequest":{"Key":{"p":{"S":"b"},"s":{"N":"1"}}}}]}}"#,
        )
        .unwrap();
        let all = accesses(&e, Api::DynamoDb, "BatchWriteItem", &v, true);
        let keys: Vec<_> = all.iter().map(|a| a.leading_keys.clone()).collect();
        assert_eq!(keys, vec![Some(vec!["a".into()]), Some(vec!["b".into()])]);
        assert!(all.iter().all(|a| a.action == "dynamodb:BatchWriteItem"));
        let v: Value = serde_json::from_str(
            r#"{"TransactItems":[
                {"Put":{"TableName":"Tab","Item":{"p":{"S":"a"},"s":{"N":"1"}}}},
                {"ConditionCheck":{"TableName":"Tab","Key":{"p":{"S":"c"},"s":{"N":"1"}},"ConditionExpression":"attribute_exists(p)"}}]}"#,
        )
        .unwrap();
        let all = accesses(&e, Api::DynamoDb, "TransactWriteItems", &v, true);
        let actions: Vec<_> = all.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"]);
        let v: Value = serde_json::from_str(
            r#"{"TransactItems":[{"Get":{"TableName":"Tab","Key":{"p":{"S":"x"},"s":{"N":"1"}}}}]}"#,
        )
        .unwrap();
        let all = accesses(&e, Api::DynamoDb, "TransactGetItems", &v, true);
        assert_eq!(all[0].action, "dynamodb:GetItem");
        assert_eq!(all[0].leading_keys, Some(vec!["x".into()]));
    }

    #[test]
    fn trigger_operations_are_ferrodyn_actions_on_tables_and_triggers() {
        let e = engine();
        let one = |op: &str, body: &str| {
            let v: Value = serde_json::from_str(body).unwrap();
            let a = accesses(&e, Api::Admin, op, &v, true);
            assert_eq!(a.len(), 1, "{op}");
            (a[0].action.clone(), a[0].resource.clone())
        };
        let table = "arn:aws:dynamodb:us-east-1:000000000000:table/Tab".to_owned();
        let trigger = "arn:aws:dynamodb:us-east-1:000000000000:trigger/t-1".to_owned();
        assert_eq!(
            one("CreateTrigger", r#"{"TableName":"Tab"}"#),
            ("ferrodyn:CreateTrigger".into(), table.clone())
        );
        assert_eq!(
            one("ListTriggers", r#"{"TableName":"Tab"}"#),
            ("ferrodyn:ListTriggers".into(), table)
        );
        assert_eq!(
            one("ListTriggers", "{}"),
            ("ferrodyn:ListTriggers".into(), "*".into())
        );
        for op in ["DescribeTrigger", "UpdateTrigger", "DeleteTrigger"] {
            assert_eq!(
                one(op, r#"{"TriggerId":"t-1"}"#),
                (format!("ferrodyn:{op}"), trigger.clone())
            );
        }
    }

    #[test]
    fn plain_accesses_name_the_same_actions_and_resources() {
        let e = engine();
        for (op, body) in [
            (
                "GetItem",
                r#"{"TableName":"Tab","Key":{"p":{"S":"a"},"s":{"N":"1"}}}"#,
            ),
            (
                "Query",
                r#"{"TableName":"Tab","IndexName":"Gix","KeyConditionExpression":"g = :g","ExpressionAttributeValues":{":g":{"N":"7"}}}"#,
            ),
            (
                "BatchWriteItem",
                r#"{"RequestItems":{"Tab":[{"PutRequest":{"Item":{"p":{"S":"a"},"s":{"N":"1"}}}}]}}"#,
            ),
            (
                "TransactWriteItems",
                r#"{"TransactItems":[{"Put":{"TableName":"Tab","Item":{"p":{"S":"a"},"s":{"N":"1"}}}},{"ConditionCheck":{"TableName":"Tab","Key":{"p":{"S":"c"},"s":{"N":"1"}},"ConditionExpression":"attribute_exists(p)"}}]}"#,
            ),
        ] {
            let v: Value = serde_json::from_str(body).unwrap();
            let pairs = |detailed| {
                let mut p: Vec<(String, String)> = accesses(&e, Api::DynamoDb, op, &v, detailed)
                    .into_iter()
                    .map(|a| (a.action, a.resource))
                    .collect();
                p.dedup();
                p
            };
            assert_eq!(pairs(false), pairs(true), "{op}");
            assert!(accesses(&e, Api::DynamoDb, op, &v, false)
                .iter()
                .all(|a| a.leading_keys.is_none() && a.attributes.is_none()));
        }
    }

    #[test]
    fn backup_export_and_import_operations_name_their_resources() {
        let e = engine();
        let table = "arn:aws:dynamodb:us-east-1:000000000000:table/Tab";
        let backup = format!("{table}/backup/01700000000000-0a1b2c3d");
        let pairs = |op: &str, body: &str| -> Vec<(String, String)> {
            let v: Value = serde_json::from_str(body).unwrap();
            accesses(&e, Api::DynamoDb, op, &v, true)
                .into_iter()
                .map(|a| (a.action, a.resource))
                .collect()
        };
        let p = |a: &str, r: &str| (format!("dynamodb:{a}"), r.to_owned());
        assert_eq!(
            pairs("CreateBackup", r#"{"TableName":"Tab","BackupName":"b1x"}"#),
            [p("CreateBackup", table)]
        );
        assert_eq!(
            pairs("DescribeBackup", &format!(r#"{{"BackupArn":"{backup}"}}"#)),
            [p("DescribeBackup", &backup)]
        );
        assert_eq!(
            pairs(
                "RestoreTableFromBackup",
                &format!(r#"{{"BackupArn":"{backup}","TargetTableName":"New"}}"#)
            ),
            [
                p("RestoreTableFromBackup", &backup),
                p(
                    "RestoreTableFromBackup",
                    "arn:aws:dynamodb:us-east-1:000000000000:table/New"
                )
            ]
        );
        assert_eq!(
            pairs(
                "RestoreTableToPointInTime",
                r#"{"SourceTableName":"Tab","TargetTableName":"New","UseLatestRestorableTime":true}"#
            ),
            [
                p("RestoreTableToPointInTime", table),
                p(
                    "RestoreTableToPointInTime",
                    "arn:aws:dynamodb:us-east-1:000000000000:table/New"
                )
            ]
        );
        assert_eq!(
            pairs(
                "ExportTableToPointInTime",
                &format!(r#"{{"TableArn":"{table}","S3Bucket":"bkt"}}"#)
            ),
            [p("ExportTableToPointInTime", table)]
        );
        assert_eq!(
            pairs(
                "ImportTable",
                r#"{"TableCreationParameters":{"TableName":"Imp"}}"#
            ),
            [p(
                "ImportTable",
                "arn:aws:dynamodb:us-east-1:000000000000:table/Imp"
            )]
        );
        assert_eq!(pairs("ListBackups", "{}"), [p("ListBackups", "*")]);
        assert_eq!(pairs("ListExports", "{}"), [p("ListExports", "*")]);
    }

    #[test]
    fn table_level_and_resourceless_operations() {
        let e = engine();
        let d = one(&e, "DescribeTable", r#"{"TableName":"Tab"}"#);
        assert_eq!(
            d.resource,
            "arn:aws:dynamodb:us-east-1:000000000000:table/Tab"
        );
        let l = one(&e, "ListTables", "{}");
        assert_eq!(
            l.resource,
            "arn:aws:dynamodb:us-east-1:000000000000:table/*"
        );
        assert_eq!(one(&e, "DescribeLimits", "{}").resource, "*");
        let v: Value = serde_json::from_str(r#"{"ShardIterator":"garbage"}"#).unwrap();
        let g = accesses(&e, Api::Streams, "GetRecords", &v, true);
        assert_eq!(g[0].resource, "*");
        assert_eq!(g[0].action, "dynamodb:GetRecords");
    }
}
