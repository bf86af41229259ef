//! Operations: routing on `X-Amz-Target`, decoding request JSON into engine inputs, and encoding
//! engine outputs as response JSON.
//!
//! Invariant: a request body reaches a handler only after it parsed as a JSON object and passed
//! shape validation, so handlers may rely on member types; they still never panic on content.

pub mod access;
pub mod admin;
mod backups;
mod batch;
mod exchange;
mod items;
mod json;
mod partiql;
mod policies;
mod read;
mod streams;
mod tables;
mod tags;
mod transact;
mod triggers;
mod ttl;

use ferrodyn_core::Engine;

use crate::authz::{self, Caller};
use ferrodyn_model::Error;
use ferrodyn_protocol::shapes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    DynamoDb,
    Streams,
    /// Ferrodyn's administrative API (`admin.rs`).
    Admin,
}

/// Splits `DynamoDB_20120810.PutItem` into (api, operation), if the API is known.
pub fn parse_target(target: &str) -> Option<(Api, &str)> {
    let (prefix, op) = target.split_once('.')?;
    let api = match prefix {
        "DynamoDB_20120810" => Api::DynamoDb,
        "DynamoDBStreams_20120810" => Api::Streams,
        admin::TARGET_PREFIX => {
            return admin::OPERATIONS.contains(&op).then_some((Api::Admin, op));
        }
        _ => return None,
    };
    let shapes_api = match api {
        Api::DynamoDb => shapes::Api::DynamoDb,
        Api::Streams | Api::Admin => shapes::Api::Streams,
    };
    shapes::operation_exists(shapes_api, op).then_some((api, op))
}

/// Operations that write (they may wait for durability).
/// Operations whose only writes are item data, which the engine can commit without waiting for
/// durability (see `Engine::deferring_durability`): these run on the async workers and await
/// their ticket instead of blocking a thread.
pub fn is_item_write(api: Api, op: &str) -> bool {
    api == Api::DynamoDb
        && matches!(
            op,
            "PutItem"
                | "DeleteItem"
                | "UpdateItem"
                | "BatchWriteItem"
                | "TransactWriteItems"
                | "ExecuteStatement"
                | "BatchExecuteStatement"
                | "ExecuteTransaction"
        )
}

pub fn is_write(api: Api, op: &str) -> bool {
    api == Api::DynamoDb
        && matches!(
            op,
            "PutItem"
                | "DeleteItem"
                | "UpdateItem"
                | "BatchWriteItem"
                | "TransactWriteItems"
                | "CreateTable"
                | "DeleteTable"
                | "UpdateTable"
                | "UpdateTimeToLive"
                | "TagResource"
                | "UntagResource"
                | "PutResourcePolicy"
                | "DeleteResourcePolicy"
                | "CreateBackup"
                | "DeleteBackup"
                | "RestoreTableFromBackup"
                | "RestoreTableToPointInTime"
                | "UpdateContinuousBackups"
                | "ExportTableToPointInTime"
                | "ImportTable"
                | "ExecuteStatement"
                | "BatchExecuteStatement"
                | "ExecuteTransaction"
        )
}

/// Admin operations that read or write durable records and may scan a stream (the trigger
/// operations): always run on the blocking pool.
pub fn is_blocking_admin(api: Api, op: &str) -> bool {
    api == Api::Admin
        && matches!(
            op,
            "CreateTrigger"
                | "DescribeTrigger"
                | "ListTriggers"
                | "UpdateTrigger"
                | "DeleteTrigger"
        )
}

/// The table and item key a request names, for an audit record of its outcome (reparsed: only
/// failed writes and audited reads need it). Multi-table operations name none.
pub fn audit_target(body: &[u8]) -> (Option<String>, Option<ferrodyn_model::Item>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    // A PartiQL statement names its table in its text (ExecuteStatement).
    let table = json::string_field(&v, "TableName").or_else(|| {
        let statement = json::string_field(&v, "Statement")?;
        let parsed = ferrodyn_partiql::parse(&statement).ok()?;
        Some(parsed.statement.table().to_owned())
    });
    let key = json::present(&v, "Key")
        .or_else(|| json::present(&v, "Item"))
        .and_then(|k| ferrodyn_protocol::codec::decode_item(k).ok());
    (table, key)
}

/// Runs one operation on a raw request body without authorization (`--auth none`); returns
/// the response body.
pub fn dispatch(engine: &Engine, api: Api, op: &str, body: &[u8]) -> Result<Vec<u8>, Error> {
    dispatch_as(engine, None, api, op, body)
}

/// Runs one operation for `caller` (`None`: not authorized, `--auth none`): the request is
/// parsed and shape-validated, then authorized, then run.
pub fn dispatch_as(
    engine: &Engine,
    caller: Option<&Caller<'_>>,
    api: Api,
    op: &str,
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    dispatch_to(engine, caller, api, op, body, None)
}

/// [`dispatch_as`] for a request sent to `host` (its Host header), which DescribeEndpoints
/// answers with so that clients with endpoint discovery keep talking to this server.
pub fn dispatch_to(
    engine: &Engine,
    caller: Option<&Caller<'_>>,
    api: Api,
    op: &str,
    body: &[u8],
    host: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        // DynamoDB answers malformed JSON with a bare SerializationException.
        tracing::debug!(error = %e, "malformed request JSON");
        Error::Serialization(String::new())
    })?;
    if !value.is_object() {
        return Err(Error::Serialization(String::new()));
    }
    match api {
        Api::DynamoDb => shapes::validate(shapes::Api::DynamoDb, op, &value)?,
        Api::Streams => shapes::validate(shapes::Api::Streams, op, &value)?,
        // Admin operations validate their own members.
        Api::Admin => {}
    }
    if let Some(caller) = caller {
        let detailed = authz::needs_condition_keys(caller);
        let first = access::accesses(engine, api, op, &value, detailed);
        if authz::authorize(engine, caller, &first, detailed)?
            == authz::Authorized::NeedsConditionKeys
        {
            let all = access::accesses(engine, api, op, &value, true);
            authz::authorize(engine, caller, &all, true)?;
        }
    }
    // Hot read paths write their response bytes directly.
    match (api, op) {
        (Api::DynamoDb, "GetItem") => return items::get_item(engine, &value),
        (Api::DynamoDb, "Query") => return read::query(engine, &value),
        (Api::DynamoDb, "Scan") => return read::scan(engine, &value),
        (Api::DynamoDb, "ExecuteStatement") => return partiql::execute_statement(engine, &value),
        _ => {}
    }
    let out = match (api, op) {
        (Api::DynamoDb, "CreateTable") => tables::create_table(engine, &value)?,
        (Api::DynamoDb, "DescribeTable") => tables::describe_table(engine, &value)?,
        (Api::DynamoDb, "ListTables") => tables::list_tables(engine, &value)?,
        (Api::DynamoDb, "DeleteTable") => tables::delete_table(engine, &value)?,
        (Api::DynamoDb, "UpdateTable") => tables::update_table(engine, &value)?,
        (Api::DynamoDb, "DescribeEndpoints") => tables::describe_endpoints(engine, host)?,
        (Api::DynamoDb, "DescribeLimits") => tables::describe_limits()?,
        (Api::DynamoDb, "DescribeContinuousBackups") => {
            backups::describe_continuous_backups(engine, &value)?
        }
        (Api::DynamoDb, "UpdateContinuousBackups") => {
            backups::update_continuous_backups(engine, &value)?
        }
        (Api::DynamoDb, "CreateBackup") => backups::create_backup(engine, &value)?,
        (Api::DynamoDb, "DescribeBackup") => backups::describe_backup(engine, &value)?,
        (Api::DynamoDb, "DeleteBackup") => backups::delete_backup(engine, &value)?,
        (Api::DynamoDb, "ListBackups") => backups::list_backups(engine, &value)?,
        (Api::DynamoDb, "RestoreTableFromBackup") => {
            backups::restore_table_from_backup(engine, &value)?
        }
        (Api::DynamoDb, "RestoreTableToPointInTime") => {
            backups::restore_table_to_point_in_time(engine, &value)?
        }
        (Api::DynamoDb, "ExportTableToPointInTime") => exchange::export_table(engine, &value)?,
        (Api::DynamoDb, "DescribeExport") => exchange::describe_export(engine, &value)?,
        (Api::DynamoDb, "ListExports") => exchange::list_exports(engine, &value)?,
        (Api::DynamoDb, "ImportTable") => exchange::import_table(engine, &value)?,
        (Api::DynamoDb, "DescribeImport") => exchange::describe_import(engine, &value)?,
        (Api::DynamoDb, "ListImports") => exchange::list_imports(engine, &value)?,
        (Api::DynamoDb, "PutItem") => items::put_item(engine, &value)?,
        (Api::DynamoDb, "DeleteItem") => items::delete_item(engine, &value)?,
        (Api::DynamoDb, "UpdateItem") => items::update_item(engine, &value)?,
        (Api::DynamoDb, "BatchWriteItem") => batch::batch_write_item(engine, &value)?,
        (Api::DynamoDb, "BatchGetItem") => batch::batch_get_item(engine, &value)?,
        (Api::DynamoDb, "TagResource") => tags::tag_resource(engine, &value)?,
        (Api::DynamoDb, "UntagResource") => tags::untag_resource(engine, &value)?,
        (Api::DynamoDb, "ListTagsOfResource") => tags::list_tags_of_resource(engine, &value)?,
        (Api::DynamoDb, "PutResourcePolicy") => policies::put_resource_policy(engine, &value)?,
        (Api::DynamoDb, "GetResourcePolicy") => policies::get_resource_policy(engine, &value)?,
        (Api::DynamoDb, "DeleteResourcePolicy") => {
            policies::delete_resource_policy(engine, &value)?
        }
        (Api::DynamoDb, "TransactWriteItems") => transact::transact_write(engine, &value)?,
        (Api::DynamoDb, "TransactGetItems") => transact::transact_get(engine, &value)?,
        (Api::DynamoDb, "BatchExecuteStatement") => {
            partiql::batch_execute_statement(engine, &value)?
        }
        (Api::DynamoDb, "ExecuteTransaction") => partiql::execute_transaction(engine, &value)?,
        (Api::DynamoDb, "UpdateTimeToLive") => ttl::update_time_to_live(engine, &value)?,
        (Api::DynamoDb, "DescribeTimeToLive") => ttl::describe_time_to_live(engine, &value)?,
        (Api::Streams, "ListStreams") => streams::list_streams(engine, &value)?,
        (Api::Streams, "DescribeStream") => streams::describe_stream(engine, &value)?,
        (Api::Streams, "GetShardIterator") => streams::get_shard_iterator(engine, &value)?,
        (Api::Streams, "GetRecords") => streams::get_records(engine, &value)?,
        (Api::Admin, "QueryAuditLog") => admin::query_audit_log(engine, &value)?,
        (Api::Admin, "VerifyAuditLog") => admin::verify_audit_log(engine)?,
        (Api::Admin, "CreateTrigger") => triggers::create_trigger(engine, &value)?,
        (Api::Admin, "DescribeTrigger") => triggers::describe_trigger(engine, &value)?,
        (Api::Admin, "ListTriggers") => triggers::list_triggers(engine, &value)?,
        (Api::Admin, "UpdateTrigger") => triggers::update_trigger(engine, &value)?,
        (Api::Admin, "DeleteTrigger") => triggers::delete_trigger(engine, &value)?,
        _ => {
            return Err(Error::validation(format!(
                "The operation {op} is not supported by this server yet"
            )));
        }
    };
    if out.is_null() {
        // Operations without output members answer with an empty body.
        return Ok(Vec::new());
    }
    serde_json::to_vec(&out).map_err(Error::internal)
}
