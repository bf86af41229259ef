//! TransactWriteItems and TransactGetItems: JSON in, engine call, JSON out.
//!
//! Invariant: decoding is structural only (which action, which members); every semantic check
//! happens in the engine, which decides whether a problem fails the request or cancels the
//! transaction.

use ferrodyn_core::capacity::ConsumedCapacity;
use ferrodyn_core::items::ExprParams;
use ferrodyn_core::transact::{
    TransactGetInput, TransactGetItem, TransactWriteInput, TransactWriteItem, WriteAction,
};
use ferrodyn_core::Engine;
use ferrodyn_model::{Error, Item};
use ferrodyn_protocol::codec;
use serde_json::{Map, Value};

use super::json::{
    consumed_json, item_field, names_field, present, return_consumed, str_field, string_field,
    table_name, values_field,
};

const ACTIONS: [&str; 4] = ["ConditionCheck", "Put", "Delete", "Update"];

fn items_list(v: &Value) -> &[Value] {
    present(v, "TransactItems")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn required_item(v: &Value, name: &str) -> Result<Item, Error> {
    Ok(item_field(v, name)?.unwrap_or_default())
}

fn write_item(entry: &Value) -> Result<TransactWriteItem, Error> {
    let mut found = ACTIONS
        .iter()
        .filter_map(|&name| present(entry, name).map(|body| (name, body)));
    let (Some((kind, body)), None) = (found.next(), found.next()) else {
        return Err(Error::validation(
            "TransactItems can only contain one of Check, Put, Update or Delete",
        ));
    };
    let condition_expression = string_field(body, "ConditionExpression");
    let action = match kind {
        "Put" => WriteAction::Put {
            item: required_item(body, "Item")?,
            condition_expression,
        },
        "Update" => WriteAction::Update {
            key: required_item(body, "Key")?,
            update_expression: string_field(body, "UpdateExpression").unwrap_or_default(),
            condition_expression,
        },
        "Delete" => WriteAction::Delete {
            key: required_item(body, "Key")?,
            condition_expression,
        },
        _ => WriteAction::ConditionCheck {
            key: required_item(body, "Key")?,
            condition_expression: condition_expression.unwrap_or_default(),
        },
    };
    Ok(TransactWriteItem {
        table: table_name(body),
        action,
        params: ExprParams {
            names: names_field(body),
            values: values_field(body)?,
        },
        return_old_on_condition_failure: str_field(body, "ReturnValuesOnConditionCheckFailure")
            == Some("ALL_OLD"),
    })
}

fn consumed_list(c: &[ConsumedCapacity]) -> Value {
    Value::Array(c.iter().map(consumed_json).collect())
}

pub fn transact_write(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = TransactWriteInput {
        items: items_list(v)
            .iter()
            .map(write_item)
            .collect::<Result<_, _>>()?,
        client_request_token: string_field(v, "ClientRequestToken"),
        return_consumed: return_consumed(v),
        return_item_collection_metrics: str_field(v, "ReturnItemCollectionMetrics") == Some("SIZE"),
    };
    let out = engine.transact_write(input)?;
    let mut m = Map::new();
    if !out.consumed.is_empty() {
        m.insert("ConsumedCapacity".into(), consumed_list(&out.consumed));
    }
    if !out.item_collection_metrics.is_empty() {
        let mut icm = Map::new();
        for (table, keys) in &out.item_collection_metrics {
            let list = keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "ItemCollectionKey": codec::encode_item(k),
                        "SizeEstimateRangeGB": [0.0, 1.0],
                    })
                })
                .collect();
            icm.insert(table.clone(), Value::Array(list));
        }
        m.insert("ItemCollectionMetrics".into(), Value::Object(icm));
    }
    Ok(Value::Object(m))
}

pub fn transact_get(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let mut items = Vec::new();
    for entry in items_list(v) {
        let get = present(entry, "Get").unwrap_or(&Value::Null);
        items.push(TransactGetItem {
            table: table_name(get),
            key: required_item(get, "Key")?,
            projection_expression: string_field(get, "ProjectionExpression"),
            names: names_field(get),
        });
    }
    let out = engine.transact_get(TransactGetInput {
        items,
        return_consumed: return_consumed(v),
    })?;
    let responses = item_responses(&out.items);
    let mut m = Map::new();
    if !out.consumed.is_empty() {
        m.insert("ConsumedCapacity".into(), consumed_list(&out.consumed));
    }
    m.insert("Responses".into(), responses);
    Ok(Value::Object(m))
}

/// `Responses` of a read transaction: one object per item, with `Item` when it exists.
pub(super) fn item_responses(items: &[Option<Item>]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|item| {
                let mut r = Map::new();
                if let Some(i) = item {
                    r.insert("Item".into(), codec::encode_item(i));
                }
                Value::Object(r)
            })
            .collect(),
    )
}
