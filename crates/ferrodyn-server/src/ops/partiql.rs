//! ExecuteStatement, BatchExecuteStatement and ExecuteTransaction: JSON in, engine call, JSON
//! out. Statements are parsed and run by the engine (`ferrodyn-core/src/partiql.rs`).
//!
//! NextToken is a fingerprint of the statement's text followed by the key its page ended at
//! (DynamoDB JSON), in URL-safe base64; a token that does not decode to a key, or was made for
//! another statement (another table or index), is a ValidationException.

use base64::Engine as _;
use ferrodyn_core::capacity::ConsumedCapacity;
use ferrodyn_core::partiql::{
    BatchExecuteInput, ExecuteStatementInput, ExecuteTransactionInput, StatementInput,
};
use ferrodyn_core::Engine;
use ferrodyn_model::{Error, Item};
use ferrodyn_protocol::codec;
use serde_json::{Map, Value};

use super::json::{
    bool_field, consumed_json, i64_field, present, return_consumed, str_field, string_field,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn statement_input(v: &Value) -> Result<StatementInput, Error> {
    Ok(StatementInput {
        statement: string_field(v, "Statement").unwrap_or_default(),
        parameters: match present(v, "Parameters") {
            Some(p) => codec::decode_value_list_with(p, codec::Layer::Current)?,
            None => Vec::new(),
        },
        return_old_on_condition_failure: str_field(v, "ReturnValuesOnConditionCheckFailure")
            == Some("ALL_OLD"),
        consistent_read: bool_field(v, "ConsistentRead").unwrap_or(false),
    })
}

/// FNV-1a of the statement text: binds a token to the statement that made it.
fn fingerprint(statement: &str) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in statement.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.to_be_bytes()
}

fn encode_token(statement: &str, key: &Item) -> String {
    let mut raw = fingerprint(statement).to_vec();
    codec::write_item_json(key, &mut raw);
    B64.encode(raw)
}

fn decode_token(statement: &str, token: &str) -> Result<Item, Error> {
    let invalid = || Error::validation("Invalid NextToken");
    let bytes = B64.decode(token).map_err(|_| invalid())?;
    let json = bytes
        .strip_prefix(&fingerprint(statement)[..])
        .ok_or_else(invalid)?;
    let v: Value = serde_json::from_slice(json).map_err(|_| invalid())?;
    codec::decode_item(&v).map_err(|_| invalid())
}

fn consumed_list(c: &[ConsumedCapacity]) -> Value {
    Value::Array(c.iter().map(consumed_json).collect())
}

pub fn execute_statement(engine: &Engine, v: &Value) -> Result<Vec<u8>, Error> {
    let statement = statement_input(v)?;
    let text = statement.statement.clone();
    let input = ExecuteStatementInput {
        exclusive_start_key: str_field(v, "NextToken")
            .map(|t| decode_token(&text, t))
            .transpose()?,
        statement,
        consistent_read: bool_field(v, "ConsistentRead").unwrap_or(false),
        limit: i64_field(v, "Limit").map(|l| l.max(0) as usize),
        return_consumed: return_consumed(v),
    };
    let out = engine.execute_statement(input)?;
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(b"{\"Items\":[");
    super::read::write_page_items(&out.items, &mut body)?;
    body.push(b']');
    if let Some(k) = &out.last_evaluated_key {
        body.extend_from_slice(b",\"NextToken\":");
        codec::write_json_string(&encode_token(&text, k), &mut body);
        body.extend_from_slice(b",\"LastEvaluatedKey\":");
        codec::write_item_json(k, &mut body);
    }
    if let Some(c) = &out.consumed {
        body.extend_from_slice(b",\"ConsumedCapacity\":");
        serde_json::to_writer(&mut body, &consumed_json(c)).map_err(Error::internal)?;
    }
    body.push(b'}');
    Ok(body)
}

fn list<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    present(v, name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn batch_execute_statement(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = BatchExecuteInput {
        statements: list(v, "Statements")
            .iter()
            .map(statement_input)
            .collect::<Result<_, _>>()?,
        return_consumed: return_consumed(v),
    };
    let out = engine.batch_execute_statement(input)?;
    let responses = out
        .responses
        .iter()
        .map(|r| {
            let mut m = Map::new();
            if let Some(e) = &r.error {
                let (code, message, item) = crate::wire::batch_statement_error(e);
                let mut err = Map::new();
                err.insert("Code".into(), Value::String(code.into()));
                err.insert("Message".into(), Value::String(message));
                if let Some(item) = item {
                    err.insert("Item".into(), codec::encode_item(item));
                }
                m.insert("Error".into(), Value::Object(err));
            }
            if let Some(t) = &r.table {
                m.insert("TableName".into(), Value::String(t.clone()));
            }
            if let Some(item) = &r.item {
                m.insert("Item".into(), codec::encode_item(item));
            }
            Value::Object(m)
        })
        .collect();
    let mut m = Map::new();
    m.insert("Responses".into(), Value::Array(responses));
    if !out.consumed.is_empty() {
        m.insert("ConsumedCapacity".into(), consumed_list(&out.consumed));
    }
    Ok(Value::Object(m))
}

pub fn execute_transaction(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = ExecuteTransactionInput {
        statements: list(v, "TransactStatements")
            .iter()
            .map(statement_input)
            .collect::<Result<_, _>>()?,
        client_request_token: string_field(v, "ClientRequestToken"),
        return_consumed: return_consumed(v),
    };
    let out = engine.execute_transaction(input)?;
    let mut m = Map::new();
    if let Some(responses) = &out.responses {
        m.insert(
            "Responses".into(),
            super::transact::item_responses(responses),
        );
    }
    if !out.consumed.is_empty() {
        m.insert("ConsumedCapacity".into(), consumed_list(&out.consumed));
    }
    Ok(Value::Object(m))
}
