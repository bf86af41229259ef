//! Small accessors over shape-validated request JSON, and shared response encoders.

use std::collections::HashMap;

use ferrodyn_core::capacity::{ConsumedCapacity, ReturnConsumedCapacity, UnitKind};
use ferrodyn_core::itemcodec::walk_stored;
use ferrodyn_model::{AttributeValue, Error, Item};
use ferrodyn_protocol::codec;
use serde_json::{Map, Value};

/// Appends a stored item as a JSON object, straight from its stored form.
pub fn write_stored_item(raw: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    out.push(b'{');
    walk_stored(raw, &mut codec::JsonWriter::new(out))?;
    out.push(b'}');
    Ok(())
}

/// Objects with at most this many members are searched by scanning their entries.
const SCAN_MEMBERS: usize = 16;

/// `v[name]` for an object `v` (`None` for anything else). A request names few members, and
/// comparing a few names costs less than hashing one (serde_json's ordered map hashes with
/// SipHash), so small objects are scanned; one entry per name either way, as a repeated name
/// keeps only its last value.
pub fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if obj.len() <= SCAN_MEMBERS {
        obj.iter().find(|(k, _)| k.as_str() == name).map(|(_, x)| x)
    } else {
        obj.get(name)
    }
}

pub fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    field(v, name).and_then(Value::as_str)
}

pub fn string_field(v: &Value, name: &str) -> Option<String> {
    str_field(v, name).map(str::to_owned)
}

pub fn bool_field(v: &Value, name: &str) -> Option<bool> {
    field(v, name).and_then(Value::as_bool)
}

pub fn i64_field(v: &Value, name: &str) -> Option<i64> {
    field(v, name).and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

/// A member that is present and not JSON null.
pub fn present<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    field(v, name).filter(|x| !x.is_null())
}

pub fn table_name(v: &Value) -> String {
    string_field(v, "TableName").unwrap_or_default()
}

pub fn item_field(v: &Value, name: &str) -> Result<Option<Item>, Error> {
    present(v, name).map(codec::decode_item).transpose()
}

pub fn names_field(v: &Value) -> Option<HashMap<String, String>> {
    present(v, "ExpressionAttributeNames")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
}

pub fn values_field(v: &Value) -> Result<Option<HashMap<String, AttributeValue>>, Error> {
    present(v, "ExpressionAttributeValues")
        .map(codec::decode_value_map)
        .transpose()
}

pub fn return_consumed(v: &Value) -> ReturnConsumedCapacity {
    match str_field(v, "ReturnConsumedCapacity") {
        Some("TOTAL") => ReturnConsumedCapacity::Total,
        Some("INDEXES") => ReturnConsumedCapacity::Indexes,
        _ => ReturnConsumedCapacity::None,
    }
}

pub fn consumed_json(c: &ConsumedCapacity) -> Value {
    let mut m = Map::new();
    m.insert("TableName".into(), Value::String(c.table_name.clone()));
    m.insert("CapacityUnits".into(), num(c.capacity_units));
    let split = c.split.map(|k| match k {
        UnitKind::Read => "ReadCapacityUnits",
        UnitKind::Write => "WriteCapacityUnits",
    });
    if let Some(name) = split {
        m.insert(name.into(), num(c.capacity_units));
    }
    if let Some(t) = c.table_units {
        let mut tm = Map::new();
        tm.insert("CapacityUnits".into(), num(t));
        if let Some(name) = split {
            tm.insert(name.into(), num(t));
        }
        m.insert("Table".into(), Value::Object(tm));
    }
    for (member, list) in [
        ("GlobalSecondaryIndexes", &c.global_indexes),
        ("LocalSecondaryIndexes", &c.local_indexes),
    ] {
        if !list.is_empty() {
            let per: Map<String, Value> = list
                .iter()
                .map(|(name, u)| {
                    let mut im = Map::new();
                    im.insert("CapacityUnits".into(), num(*u));
                    if let Some(name) = split {
                        im.insert(name.into(), num(*u));
                    }
                    (name.clone(), Value::Object(im))
                })
                .collect();
            m.insert(member.into(), Value::Object(per));
        }
    }
    Value::Object(m)
}

pub fn num(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A timestamp member: epoch seconds (the JSON protocol's form), also accepted as a string.
pub fn time_field(v: &Value, name: &str) -> Option<f64> {
    match present(v, name)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
