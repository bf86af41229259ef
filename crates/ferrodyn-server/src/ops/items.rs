//! Item operations: JSON in, engine call, JSON out.

use std::collections::BTreeMap;

use ferrodyn_core::items::{
    DeleteItemInput, ExprParams, GetItemInput, PutItemInput, ReadItem, ReturnValues,
    UpdateItemInput, WriteOutput,
};
use ferrodyn_core::Engine;
use ferrodyn_expr::legacy::{AttributeValueUpdate, ExpectedAttributeValue};
use ferrodyn_model::{Error, Item};
use ferrodyn_protocol::codec;
use serde_json::{Map, Value};

use super::json::{
    bool_field, consumed_json, item_field, names_field, present, return_consumed, str_field,
    string_field, table_name, values_field, write_stored_item,
};

fn params(v: &Value) -> Result<ExprParams, Error> {
    Ok(ExprParams {
        names: names_field(v),
        values: values_field(v)?,
    })
}

fn return_values(v: &Value) -> ReturnValues {
    match str_field(v, "ReturnValues") {
        Some("ALL_OLD") => ReturnValues::AllOld,
        Some("UPDATED_OLD") => ReturnValues::UpdatedOld,
        Some("ALL_NEW") => ReturnValues::AllNew,
        Some("UPDATED_NEW") => ReturnValues::UpdatedNew,
        _ => ReturnValues::None,
    }
}

fn on_ccf_all_old(v: &Value) -> bool {
    str_field(v, "ReturnValuesOnConditionCheckFailure") == Some("ALL_OLD")
}

fn return_icm(v: &Value) -> bool {
    str_field(v, "ReturnItemCollectionMetrics") == Some("SIZE")
}

fn values_list(v: Option<&Value>) -> Result<Option<Vec<ferrodyn_model::AttributeValue>>, Error> {
    match v.filter(|x| !x.is_null()).and_then(Value::as_array) {
        Some(a) => Ok(Some(
            a.iter()
                .map(codec::decode_value)
                .collect::<Result<_, _>>()?,
        )),
        None => Ok(None),
    }
}

fn expected(v: &Value) -> Result<Option<BTreeMap<String, ExpectedAttributeValue>>, Error> {
    let Some(m) = present(v, "Expected").and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for (name, e) in m {
        out.insert(
            name.clone(),
            ExpectedAttributeValue {
                value: present(e, "Value").map(codec::decode_value).transpose()?,
                exists: bool_field(e, "Exists"),
                comparison_operator: string_field(e, "ComparisonOperator"),
                attribute_value_list: values_list(e.get("AttributeValueList"))?,
            },
        );
    }
    Ok(Some(out))
}

fn attribute_updates(v: &Value) -> Result<Option<BTreeMap<String, AttributeValueUpdate>>, Error> {
    let Some(m) = present(v, "AttributeUpdates").and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for (name, u) in m {
        out.insert(
            name.clone(),
            AttributeValueUpdate {
                action: string_field(u, "Action"),
                value: present(u, "Value").map(codec::decode_value).transpose()?,
            },
        );
    }
    Ok(Some(out))
}

fn write_output(out: WriteOutput) -> Value {
    let mut m = Map::new();
    if let Some(a) = &out.attributes {
        m.insert("Attributes".into(), codec::encode_item(a));
    }
    if let Some(c) = &out.consumed {
        m.insert("ConsumedCapacity".into(), consumed_json(c));
    }
    if let Some(k) = &out.item_collection_key {
        m.insert(
            "ItemCollectionMetrics".into(),
            serde_json::json!({
                "ItemCollectionKey": codec::encode_item(k),
                "SizeEstimateRangeGB": [out.item_collection_size_gb.0, out.item_collection_size_gb.1]
            }),
        );
    }
    Value::Object(m)
}

fn required_item(v: &Value, name: &str) -> Result<Item, Error> {
    Ok(item_field(v, name)?.unwrap_or_default())
}

pub fn put_item(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = PutItemInput {
        table: table_name(v),
        item: required_item(v, "Item")?,
        condition_expression: string_field(v, "ConditionExpression"),
        expected: expected(v)?,
        conditional_operator: string_field(v, "ConditionalOperator"),
        params: params(v)?,
        return_values: return_values(v),
        return_old_on_condition_failure: on_ccf_all_old(v),
        return_consumed: return_consumed(v),
        return_item_collection_metrics: return_icm(v),
    };
    Ok(write_output(engine.put_item(input)?))
}

pub fn delete_item(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = DeleteItemInput {
        table: table_name(v),
        key: required_item(v, "Key")?,
        condition_expression: string_field(v, "ConditionExpression"),
        expected: expected(v)?,
        conditional_operator: string_field(v, "ConditionalOperator"),
        params: params(v)?,
        return_values: return_values(v),
        return_old_on_condition_failure: on_ccf_all_old(v),
        return_consumed: return_consumed(v),
        return_item_collection_metrics: return_icm(v),
    };
    Ok(write_output(engine.delete_item(input)?))
}

pub fn update_item(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = UpdateItemInput {
        table: table_name(v),
        key: required_item(v, "Key")?,
        update_expression: string_field(v, "UpdateExpression"),
        attribute_updates: attribute_updates(v)?,
        condition_expression: string_field(v, "ConditionExpression"),
        expected: expected(v)?,
        conditional_operator: string_field(v, "ConditionalOperator"),
        params: params(v)?,
        return_values: return_values(v),
        return_old_on_condition_failure: on_ccf_all_old(v),
        return_consumed: return_consumed(v),
        return_item_collection_metrics: return_icm(v),
    };
    Ok(write_output(engine.update_item(input)?))
}

pub fn get_item(engine: &Engine, v: &Value) -> Result<Vec<u8>, Error> {
    let input = GetItemInput {
        table: table_name(v),
        key: required_item(v, "Key")?,
        consistent_read: bool_field(v, "ConsistentRead").unwrap_or(false),
        projection_expression: string_field(v, "ProjectionExpression"),
        attributes_to_get: present(v, "AttributesToGet")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            }),
        params: params(v)?,
        return_consumed: return_consumed(v),
    };
    let out = engine.get_item(input)?;
    // Hot path: the item is written straight into the response bytes.
    let mut body = Vec::with_capacity(256);
    body.push(b'{');
    match &out.item {
        Some(ReadItem::Built(item)) => {
            body.extend_from_slice(b"\"Item\":");
            codec::write_item_json(item, &mut body);
        }
        Some(ReadItem::Stored(raw)) => {
            // JSON adds a few dozen bytes per attribute to the stored form.
            body.reserve(raw.len() + 256);
            body.extend_from_slice(b"\"Item\":");
            write_stored_item(raw, &mut body)?;
        }
        None => {}
    }
    if let Some(c) = &out.consumed {
        if out.item.is_some() {
            body.push(b',');
        }
        body.extend_from_slice(b"\"ConsumedCapacity\":");
        serde_json::to_writer(&mut body, &consumed_json(c)).map_err(Error::internal)?;
    }
    body.push(b'}');
    Ok(body)
}
