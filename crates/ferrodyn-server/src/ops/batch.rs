//! BatchGetItem and BatchWriteItem: JSON in, engine call, JSON out.

use ferrodyn_core::batch::{BatchGetTable, BatchWriteInput, WriteRequest};
use ferrodyn_core::Engine;
use ferrodyn_model::Error;
use ferrodyn_protocol::codec;
use serde_json::{Map, Value};

use super::json::{bool_field, consumed_json, present, return_consumed, string_field};

pub fn batch_write_item(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let mut tables = Vec::new();
    if let Some(m) = present(v, "RequestItems").and_then(Value::as_object) {
        for (name, requests) in m {
            let mut reqs = Vec::new();
            for r in requests.as_array().map(Vec::as_slice).unwrap_or_default() {
                let put = present(r, "PutRequest");
                let del = present(r, "DeleteRequest");
                match (put, del) {
                    (Some(p), None) => {
                        let item = present(p, "Item").map(codec::decode_item).transpose()?.unwrap_or_default();
                        reqs.push(WriteRequest::Put(item));
                    }
                    (None, Some(d)) => {
                        let key = present(d, "Key").map(codec::decode_item).transpose()?.unwrap_or_default();
                        reqs.push(WriteRequest::Delete(key));
                    }
                    (Some(_), Some(_)) => {
                        return Err(Error::validation(
                            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                        ))
                    }
                    (None, None) => {
                        return Err(Error::validation(
                            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
                        ))
                    }
                }
            }
            tables.push((name.clone(), reqs));
        }
    }
    let out = engine.batch_write_item(BatchWriteInput {
        tables,
        return_consumed: return_consumed(v),
    })?;
    let mut unprocessed = Map::new();
    for name in &out.unprocessed {
        if let Some(requests) = present(v, "RequestItems").and_then(|r| r.get(name)) {
            unprocessed.insert(name.clone(), requests.clone());
        }
    }
    let mut m = Map::new();
    m.insert("UnprocessedItems".into(), Value::Object(unprocessed));
    if !out.consumed.is_empty() {
        m.insert(
            "ConsumedCapacity".into(),
            Value::Array(out.consumed.iter().map(consumed_json).collect()),
        );
    }
    Ok(Value::Object(m))
}

pub fn batch_get_item(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let mut tables = Vec::new();
    let mut originals = Vec::new();
    if let Some(m) = present(v, "RequestItems").and_then(Value::as_object) {
        for (name, t) in m {
            let keys = match present(t, "Keys").and_then(Value::as_array) {
                Some(a) => a
                    .iter()
                    .map(codec::decode_item)
                    .collect::<Result<Vec<_>, _>>()?,
                None => Vec::new(),
            };
            tables.push(BatchGetTable {
                table: name.clone(),
                keys,
                projection_expression: string_field(t, "ProjectionExpression"),
                attributes_to_get: present(t, "AttributesToGet").and_then(Value::as_array).map(
                    |a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    },
                ),
                names: present(t, "ExpressionAttributeNames")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                            .collect()
                    }),
                consistent_read: bool_field(t, "ConsistentRead").unwrap_or(false),
            });
            originals.push((name.clone(), t.clone()));
        }
    }
    let out = engine.batch_get_item(tables, return_consumed(v))?;
    let mut responses = Map::new();
    for (name, items) in &out.responses {
        responses.insert(
            name.clone(),
            Value::Array(items.iter().map(codec::encode_item).collect()),
        );
    }
    let mut unprocessed = Map::new();
    for (name, idx) in &out.unprocessed {
        if let Some((_, orig)) = originals.iter().find(|(n, _)| n == name) {
            let mut t = orig.as_object().cloned().unwrap_or_default();
            let keys: Vec<Value> = orig
                .get("Keys")
                .and_then(Value::as_array)
                .map(|a| idx.iter().filter_map(|&i| a.get(i).cloned()).collect())
                .unwrap_or_default();
            t.insert("Keys".into(), Value::Array(keys));
            unprocessed.insert(name.clone(), Value::Object(t));
        }
    }
    let mut m = Map::new();
    m.insert("Responses".into(), Value::Object(responses));
    m.insert("UnprocessedKeys".into(), Value::Object(unprocessed));
    if !out.consumed.is_empty() {
        m.insert(
            "ConsumedCapacity".into(),
            Value::Array(out.consumed.iter().map(consumed_json).collect()),
        );
    }
    Ok(Value::Object(m))
}
