//! Query and Scan: JSON in, engine call, JSON out.

use std::collections::BTreeMap;

use ferrodyn_core::items::ExprParams;
use ferrodyn_core::query::{PageItems, QueryInput, ReadOptions, ReadOutput, ScanInput, Select};
use ferrodyn_core::Engine;
use ferrodyn_expr::legacy::Condition as LegacyCondition;
use ferrodyn_model::Error;
use ferrodyn_protocol::codec;
use serde_json::Value;

use super::json::{
    bool_field, consumed_json, i64_field, item_field, names_field, present, return_consumed,
    str_field, string_field, table_name, values_field, write_stored_item,
};

fn legacy_conditions(
    v: &Value,
    name: &str,
) -> Result<Option<BTreeMap<String, LegacyCondition>>, Error> {
    let Some(m) = present(v, name).and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    for (attr, c) in m {
        let list = match present(c, "AttributeValueList").and_then(Value::as_array) {
            Some(a) => Some(
                a.iter()
                    .map(codec::decode_value)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        out.insert(
            attr.clone(),
            LegacyCondition {
                comparison_operator: string_field(c, "ComparisonOperator").unwrap_or_default(),
                attribute_value_list: list,
            },
        );
    }
    Ok(Some(out))
}

fn read_options(v: &Value, filter_name: &str) -> Result<ReadOptions, Error> {
    Ok(ReadOptions {
        index_name: string_field(v, "IndexName"),
        filter_expression: string_field(v, "FilterExpression"),
        legacy_filter: legacy_conditions(v, filter_name)?,
        conditional_operator: string_field(v, "ConditionalOperator"),
        projection_expression: string_field(v, "ProjectionExpression"),
        attributes_to_get: present(v, "AttributesToGet")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            }),
        select: str_field(v, "Select").map(|s| match s {
            "ALL_PROJECTED_ATTRIBUTES" => Select::AllProjectedAttributes,
            "SPECIFIC_ATTRIBUTES" => Select::SpecificAttributes,
            "COUNT" => Select::Count,
            _ => Select::AllAttributes,
        }),
        limit: i64_field(v, "Limit").map(|l| l.max(0) as usize),
        exclusive_start_key: item_field(v, "ExclusiveStartKey")?,
        consistent_read: bool_field(v, "ConsistentRead").unwrap_or(false),
        params: ExprParams {
            names: names_field(v),
            values: values_field(v)?,
        },
        return_consumed: return_consumed(v),
    })
}

/// Writes the response straight into bytes: Query/Scan pages are the largest responses, and
/// building a JSON tree first doubled their cost.
/// A page's items as the members of a JSON array (without the brackets), each written from the
/// item built in memory or straight from its stored form.
pub(super) fn write_page_items(items: &PageItems, body: &mut Vec<u8>) -> Result<(), Error> {
    match items {
        PageItems::Built(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                codec::write_item_json(item, body);
            }
        }
        PageItems::Stored(items) => {
            for (i, raw) in items.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                write_stored_item(raw, body)?;
            }
        }
    }
    Ok(())
}

fn output(out: ReadOutput) -> Result<Vec<u8>, Error> {
    let mut body = Vec::with_capacity(512);
    body.push(b'{');
    if let Some(items) = &out.items {
        if let PageItems::Stored(stored) = items {
            // JSON adds a few dozen bytes per attribute to the stored form.
            body.reserve(stored.stored_bytes() + 64 * stored.len());
        }
        body.extend_from_slice(b"\"Items\":[");
        write_page_items(items, &mut body)?;
        body.extend_from_slice(b"],");
    }
    let mut num = itoa::Buffer::new();
    body.extend_from_slice(b"\"Count\":");
    body.extend_from_slice(num.format(out.count).as_bytes());
    body.extend_from_slice(b",\"ScannedCount\":");
    body.extend_from_slice(num.format(out.scanned_count).as_bytes());
    if let Some(k) = &out.last_evaluated_key {
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

pub fn query(engine: &Engine, v: &Value) -> Result<Vec<u8>, Error> {
    let input = QueryInput {
        table: table_name(v),
        key_condition_expression: string_field(v, "KeyConditionExpression"),
        key_conditions: legacy_conditions(v, "KeyConditions")?,
        scan_index_forward: bool_field(v, "ScanIndexForward").unwrap_or(true),
        read: read_options(v, "QueryFilter")?,
    };
    output(engine.query(input)?)
}

pub fn scan(engine: &Engine, v: &Value) -> Result<Vec<u8>, Error> {
    let input = ScanInput {
        table: table_name(v),
        segment: i64_field(v, "Segment").map(|s| s.clamp(0, u32::MAX as i64) as u32),
        total_segments: i64_field(v, "TotalSegments").map(|s| s.clamp(0, u32::MAX as i64) as u32),
        read: read_options(v, "ScanFilter")?,
    };
    output(engine.scan(input)?)
}
