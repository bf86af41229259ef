//! Ferrodyn's own administrative API, beside DynamoDB's: target prefix
//! `FerrodynAdmin_20261201`, JSON 1.0 like the rest.
//!
//! - `QueryAuditLog` `{TableName?, Key?, Principal?, SinceMs?, UntilMs?, Limit?, ExclusiveStartSeq?}`
//!   → `{Records: [...], LastEvaluatedSeq?}`, records as `ferrodyn audit` prints them;
//! - `VerifyAuditLog` `{}` → `{Intact, Checked, FirstSeq, LastSeq?, HeadHash, BrokenAt?}`;
//! - the trigger operations (`triggers.rs`): CreateTrigger, DescribeTrigger, ListTriggers,
//!   UpdateTrigger, DeleteTrigger, authorized as `ferrodyn:<Op>` on the table's ARN (Create,
//!   List with a TableName) or on `arn:aws:dynamodb:REGION:ACCOUNT:trigger/<TriggerId>`.
//!
//! Invariant: admin operations are authorized like any other request (IAM actions
//! `ferrodyn:QueryAuditLog` / `ferrodyn:VerifyAuditLog` on `arn:aws:dynamodb:REGION:ACCOUNT:audit-log`);
//! `dynamodb:*` does not grant them.

use ferrodyn_core::audit::{to_hex, AuditFilter, AuditRecord};
use ferrodyn_core::Engine;
use ferrodyn_model::{Error, Item};
use ferrodyn_protocol::codec;
use serde_json::{json, Map, Value};

use super::json::{present, string_field};

pub const TARGET_PREFIX: &str = "FerrodynAdmin_20261201";
pub const OPERATIONS: &[&str] = &[
    "QueryAuditLog",
    "VerifyAuditLog",
    "CreateTrigger",
    "DescribeTrigger",
    "ListTriggers",
    "UpdateTrigger",
    "DeleteTrigger",
];

/// The resource admin actions are authorized on.
pub fn audit_log_arn(engine: &Engine) -> String {
    let c = engine.config();
    format!("arn:aws:dynamodb:{}:{}:audit-log", c.region, c.account)
}

/// The resource a trigger operation naming `TriggerId` is authorized on.
pub fn trigger_arn(engine: &Engine, id: &str) -> String {
    let c = engine.config();
    format!("arn:aws:dynamodb:{}:{}:trigger/{id}", c.region, c.account)
}

/// The most records one QueryAuditLog answer holds.
const MAX_LIMIT: u64 = 1000;

fn u64_member(v: &Value, name: &str) -> Result<Option<u64>, Error> {
    match present(v, name) {
        None => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| Error::Validation(format!("{name} must be a non-negative integer"))),
    }
}

fn item_json(item: &Item) -> Value {
    let mut out = Vec::new();
    codec::write_item_json(item, &mut out);
    serde_json::from_slice(&out).unwrap_or(Value::Null)
}

/// `2026-12-05T14:02:31.123Z`.
fn time_text(ms: u64) -> String {
    let secs = crate::authz::iso8601(ms / 1000);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms % 1000)
}

pub fn record_json(r: &AuditRecord) -> Value {
    let mut m = Map::new();
    m.insert("seq".into(), json!(r.seq));
    m.insert("time".into(), json!(time_text(r.time_ms)));
    m.insert("principal".into(), json!(r.principal));
    m.insert("principal_arn".into(), json!(r.principal_arn));
    m.insert("source".into(), json!(r.source));
    m.insert("operation".into(), json!(r.operation));
    m.insert("table".into(), json!(r.table));
    m.insert(
        "key".into(),
        if r.key.is_empty() {
            Value::Null
        } else {
            item_json(&r.key)
        },
    );
    m.insert("outcome".into(), json!(r.outcome));
    m.insert("request_id".into(), json!(r.request_id));
    m.insert(
        "old_image".into(),
        r.old_image.as_ref().map_or(Value::Null, item_json),
    );
    m.insert(
        "new_image".into(),
        r.new_image.as_ref().map_or(Value::Null, item_json),
    );
    m.insert("prev_hash".into(), json!(to_hex(&r.prev_hash)));
    m.insert("hash".into(), json!(to_hex(&r.hash)));
    Value::Object(m)
}

pub fn query_audit_log(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let key = match present(v, "Key") {
        Some(k) => Some(codec::decode_item(k)?),
        None => None,
    };
    let filter = AuditFilter {
        table: string_field(v, "TableName"),
        key,
        principal: string_field(v, "Principal"),
        since_ms: u64_member(v, "SinceMs")?,
        until_ms: u64_member(v, "UntilMs")?,
    };
    let limit = u64_member(v, "Limit")?.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Error::Validation(format!(
            "Limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let after = u64_member(v, "ExclusiveStartSeq")?;
    let (records, next) = engine.audit_records(&filter, limit as usize, after)?;
    let mut out = Map::new();
    out.insert(
        "Records".into(),
        Value::Array(records.iter().map(record_json).collect()),
    );
    if let Some(n) = next {
        out.insert("LastEvaluatedSeq".into(), json!(n));
    }
    Ok(Value::Object(out))
}

pub fn verify_audit_log(engine: &Engine) -> Result<Value, Error> {
    let r = engine.audit_verify()?;
    let mut out = Map::new();
    out.insert("Intact".into(), json!(r.broken.is_none()));
    out.insert("Checked".into(), json!(r.checked));
    out.insert("FirstSeq".into(), json!(r.first_seq));
    if let Some(last) = r.last_seq {
        out.insert("LastSeq".into(), json!(last));
    }
    out.insert("HeadHash".into(), json!(to_hex(&r.head_hash)));
    if let Some(b) = r.broken {
        out.insert(
            "BrokenAt".into(),
            json!({"Seq": b.seq, "Reason": b.reason.to_string()}),
        );
    }
    Ok(Value::Object(out))
}
