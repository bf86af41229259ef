//! Control-plane operations: JSON in, engine call, JSON out.

use ferrodyn_core::control::{
    CreateTableInput, GsiUpdate, IndexInput, KeySchemaElement, KeyType, UpdateTableInput,
};
use ferrodyn_core::table::{IndexDef, IndexStatus, ProjectionType, StreamSpec, Throughput};
use ferrodyn_core::{BillingMode, Engine, KeyAttr, TableDescription};
use ferrodyn_model::{Error, ScalarType};
use serde_json::{json, Map, Value};

use super::json::{bool_field, i64_field, num, present, str_field, string_field, table_name};

fn scalar(s: &str) -> ScalarType {
    match s {
        "N" => ScalarType::N,
        "B" => ScalarType::B,
        _ => ScalarType::S,
    }
}

pub(super) fn attribute_definitions(v: &Value) -> Vec<KeyAttr> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|d| KeyAttr {
                    name: string_field(d, "AttributeName").unwrap_or_default(),
                    ty: scalar(str_field(d, "AttributeType").unwrap_or("S")),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn key_schema(v: Option<&Value>) -> Vec<KeySchemaElement> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| KeySchemaElement {
                    name: string_field(e, "AttributeName").unwrap_or_default(),
                    key_type: if str_field(e, "KeyType") == Some("RANGE") {
                        KeyType::Range
                    } else {
                        KeyType::Hash
                    },
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn throughput(v: Option<&Value>) -> Option<(i64, i64)> {
    let t = v.filter(|x| !x.is_null())?;
    Some((
        i64_field(t, "ReadCapacityUnits").unwrap_or(0),
        i64_field(t, "WriteCapacityUnits").unwrap_or(0),
    ))
}

/// OnDemandThroughput's MaxReadRequestUnits and MaxWriteRequestUnits.
pub(super) fn on_demand(v: &Value) -> Option<(Option<i64>, Option<i64>)> {
    let o = v.get("OnDemandThroughput").filter(|o| o.is_object())?;
    Some((
        o.get("MaxReadRequestUnits").and_then(Value::as_i64),
        o.get("MaxWriteRequestUnits").and_then(Value::as_i64),
    ))
}

pub(super) fn billing(v: &Value) -> Option<BillingMode> {
    match str_field(v, "BillingMode") {
        Some("PAY_PER_REQUEST") => Some(BillingMode::PayPerRequest),
        Some("PROVISIONED") => Some(BillingMode::Provisioned),
        _ => None,
    }
}

fn stream_spec(v: &Value) -> Option<StreamSpec> {
    let s = present(v, "StreamSpecification")?;
    Some(StreamSpec {
        enabled: bool_field(s, "StreamEnabled").unwrap_or(false),
        view_type: string_field(s, "StreamViewType"),
    })
}

pub(super) fn index_input(ix: &Value) -> IndexInput {
    let proj = ix.get("Projection");
    IndexInput {
        name: string_field(ix, "IndexName").unwrap_or_default(),
        key_schema: key_schema(ix.get("KeySchema")),
        projection_type: proj
            .and_then(|p| str_field(p, "ProjectionType"))
            .map(|t| match t {
                "KEYS_ONLY" => ProjectionType::KeysOnly,
                "INCLUDE" => ProjectionType::Include,
                _ => ProjectionType::All,
            }),
        non_key_attributes: proj
            .and_then(|p| present(p, "NonKeyAttributes"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            }),
        provisioned: throughput(ix.get("ProvisionedThroughput")),
        on_demand: on_demand(ix),
    }
}

pub(super) fn indexes(v: Option<&Value>) -> Option<Vec<IndexInput>> {
    let a = v.filter(|x| !x.is_null())?.as_array()?;
    Some(a.iter().map(index_input).collect())
}

/// Each element must name exactly one of Create, Update or Delete.
fn gsi_updates(v: &Value) -> Result<Option<Vec<GsiUpdate>>, Error> {
    let Some(a) = present(v, "GlobalSecondaryIndexUpdates").and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(a.len());
    for u in a {
        let ops = [
            present(u, "Create"),
            present(u, "Update"),
            present(u, "Delete"),
        ];
        match ops.iter().filter(|o| o.is_some()).count() {
            0 => {
                return Err(Error::validation(
                    "One or more parameter values were invalid: One of GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Update or GlobalSecondaryIndexUpdate.Delete must be specified",
                ))
            }
            1 => {}
            _ => {
                return Err(Error::validation(
                    "One or more parameter values were invalid: Only one of GlobalSecondaryIndexUpdate.Create, GlobalSecondaryIndexUpdate.Update or GlobalSecondaryIndexUpdate.Delete can be specified",
                ))
            }
        }
        out.push(match ops {
            [Some(c), _, _] => GsiUpdate::Create(index_input(c)),
            [_, Some(x), _] => GsiUpdate::Update {
                name: string_field(x, "IndexName").unwrap_or_default(),
                provisioned: throughput(x.get("ProvisionedThroughput")),
                on_demand: on_demand(x),
            },
            [_, _, Some(d)] => GsiUpdate::Delete {
                name: string_field(d, "IndexName").unwrap_or_default(),
            },
            _ => continue,
        });
    }
    Ok(Some(out))
}

pub fn create_table(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = CreateTableInput {
        name: table_name(v),
        attribute_definitions: v
            .get("AttributeDefinitions")
            .map(attribute_definitions)
            .unwrap_or_default(),
        key_schema: key_schema(v.get("KeySchema")),
        billing_mode: billing(v),
        provisioned: throughput(v.get("ProvisionedThroughput")),
        deletion_protection: bool_field(v, "DeletionProtectionEnabled"),
        table_class: string_field(v, "TableClass"),
        stream: stream_spec(v),
        local_indexes: indexes(v.get("LocalSecondaryIndexes")),
        global_indexes: indexes(v.get("GlobalSecondaryIndexes")),
        tags: present(v, "Tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|t| {
                        (
                            string_field(t, "Key").unwrap_or_default(),
                            string_field(t, "Value").unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        on_demand: on_demand(v),
    };
    // A ResourcePolicy is checked before the table exists and attached right after it.
    let policy = super::policies::checked_document(v, "ResourcePolicy")?;
    let desc = engine.create_table(input)?;
    if let Some(document) = policy {
        engine.put_resource_policy(&desc.arn, document.to_owned(), None)?;
    }
    Ok(json!({ "TableDescription": description_json(&desc) }))
}

pub fn describe_table(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let desc = engine.describe_table(&table_name(v))?;
    Ok(json!({ "Table": description_json(&desc) }))
}

pub fn delete_table(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let desc = engine.delete_table(&table_name(v))?;
    // DeleteTable's description is partial on AWS: no schema, creation time or indexes.
    let mut d = description_json(&desc);
    if let Some(m) = d.as_object_mut() {
        for k in [
            "KeySchema",
            "AttributeDefinitions",
            "CreationDateTime",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
        ] {
            m.remove(k);
        }
    }
    Ok(json!({ "TableDescription": d }))
}

pub fn update_table(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let input = UpdateTableInput {
        name: table_name(v),
        attribute_definitions: v.get("AttributeDefinitions").map(attribute_definitions),
        billing_mode: billing(v),
        provisioned: throughput(v.get("ProvisionedThroughput")),
        deletion_protection: bool_field(v, "DeletionProtectionEnabled"),
        table_class: string_field(v, "TableClass"),
        stream: stream_spec(v),
        gsi_updates: gsi_updates(v)?,
        on_demand: on_demand(v),
    };
    let desc = engine.update_table(input)?;
    Ok(json!({ "TableDescription": description_json(&desc) }))
}

pub fn list_tables(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let limit = i64_field(v, "Limit").unwrap_or(100).clamp(1, 100) as usize;
    let (names, last) = engine.list_tables(str_field(v, "ExclusiveStartTableName"), limit);
    let mut m = Map::new();
    m.insert("TableNames".into(), json!(names));
    if let Some(l) = last {
        m.insert("LastEvaluatedTableName".into(), Value::String(l));
    }
    Ok(Value::Object(m))
}

/// The one endpoint is the address the request came to (`host`, its Host header: a client
/// using endpoint discovery then keeps talking to this server); without a Host header, the
/// region's DynamoDB name.
pub fn describe_endpoints(engine: &Engine, host: Option<&str>) -> Result<Value, Error> {
    let address = match host.filter(|h| !h.is_empty()) {
        Some(h) => h.to_owned(),
        None => format!("dynamodb.{}.amazonaws.com", engine.config().region),
    };
    Ok(json!({ "Endpoints": [{ "Address": address, "CachePeriodInMinutes": 1440 }] }))
}

pub fn describe_limits() -> Result<Value, Error> {
    Ok(json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000
    }))
}

/// A KeySchema as given: the HASH attributes, then the RANGE ones, in key-schema order.
pub(super) fn key_schema_json<'a>(
    hash: impl IntoIterator<Item = &'a KeyAttr>,
    range: impl IntoIterator<Item = &'a KeyAttr>,
) -> Value {
    let element = |k: &KeyAttr, t: &str| json!({"AttributeName": k.name, "KeyType": t});
    let ks = hash
        .into_iter()
        .map(|k| element(k, "HASH"))
        .chain(range.into_iter().map(|k| element(k, "RANGE")))
        .collect();
    Value::Array(ks)
}

pub(super) fn throughput_json(t: &Throughput) -> Value {
    let mut m = Map::new();
    if let Some(x) = t.last_increase {
        m.insert("LastIncreaseDateTime".into(), num(x));
    }
    if let Some(x) = t.last_decrease {
        m.insert("LastDecreaseDateTime".into(), num(x));
    }
    m.insert("NumberOfDecreasesToday".into(), json!(t.decreases_today));
    m.insert("ReadCapacityUnits".into(), json!(t.read));
    m.insert("WriteCapacityUnits".into(), json!(t.write));
    Value::Object(m)
}

/// OnDemandThroughput as DescribeTable shows it: the maximums that are set.
pub(super) fn on_demand_json(o: ferrodyn_core::table::OnDemandThroughput) -> Value {
    let mut m = Map::new();
    if let Some(r) = o.read {
        m.insert("MaxReadRequestUnits".into(), json!(r));
    }
    if let Some(w) = o.write {
        m.insert("MaxWriteRequestUnits".into(), json!(w));
    }
    Value::Object(m)
}

fn index_json(ix: &IndexDef, d: &TableDescription, global: bool) -> Value {
    let table_arn = &d.arn;
    let mut m = Map::new();
    m.insert("IndexName".into(), json!(ix.name));
    m.insert(
        "KeySchema".into(),
        key_schema_json(ix.hash_keys(), ix.range_keys()),
    );
    let mut p = Map::new();
    p.insert("ProjectionType".into(), json!(ix.projection.as_str()));
    if ix.projection == ProjectionType::Include {
        p.insert("NonKeyAttributes".into(), json!(ix.non_key_attributes));
    }
    m.insert("Projection".into(), Value::Object(p));
    if global {
        m.insert("IndexStatus".into(), json!(ix.status.as_str()));
        if ix.status == IndexStatus::Creating {
            m.insert("Backfilling".into(), json!(true));
        }
        if let Some(t) = &ix.throughput {
            m.insert("ProvisionedThroughput".into(), throughput_json(t));
        }
        if let Some(o) = ix.on_demand {
            m.insert("OnDemandThroughput".into(), on_demand_json(o));
        }
    }
    let (count, bytes) = d.index_stats.get(&ix.name).copied().unwrap_or((0, 0));
    m.insert("IndexSizeBytes".into(), json!(bytes));
    m.insert("ItemCount".into(), json!(count));
    m.insert(
        "IndexArn".into(),
        json!(format!("{table_arn}/index/{}", ix.name)),
    );
    Value::Object(m)
}

pub fn description_json(d: &TableDescription) -> Value {
    let def = &d.def;
    let mut m = Map::new();
    m.insert(
        "AttributeDefinitions".into(),
        Value::Array(
            def.attribute_definitions
                .iter()
                .map(|a| json!({"AttributeName": a.name, "AttributeType": a.ty.as_str()}))
                .collect(),
        ),
    );
    m.insert("TableName".into(), json!(def.name));
    m.insert(
        "KeySchema".into(),
        key_schema_json([&def.hash_key], def.range_key.as_ref()),
    );
    m.insert("TableStatus".into(), json!(d.status.as_str()));
    m.insert("CreationDateTime".into(), num(def.created));
    m.insert(
        "ProvisionedThroughput".into(),
        throughput_json(&def.throughput),
    );
    m.insert("TableSizeBytes".into(), json!(d.size_bytes));
    m.insert("ItemCount".into(), json!(d.item_count));
    m.insert("TableArn".into(), json!(d.arn));
    m.insert("TableId".into(), json!(def.id));
    if def.billing_mode == BillingMode::PayPerRequest || def.billing_mode_last_update.is_some() {
        let mut b = Map::new();
        b.insert("BillingMode".into(), json!(def.billing_mode.as_str()));
        if let Some(t) = def.billing_mode_last_update {
            b.insert("LastUpdateToPayPerRequestDateTime".into(), num(t));
        }
        m.insert("BillingModeSummary".into(), Value::Object(b));
    }
    if let Some(o) = def.on_demand {
        m.insert("OnDemandThroughput".into(), on_demand_json(o));
    }
    if !def.local_indexes.is_empty() {
        m.insert(
            "LocalSecondaryIndexes".into(),
            Value::Array(
                def.local_indexes
                    .iter()
                    .map(|ix| index_json(ix, d, false))
                    .collect(),
            ),
        );
    }
    if !def.global_indexes.is_empty() {
        m.insert(
            "GlobalSecondaryIndexes".into(),
            Value::Array(
                def.global_indexes
                    .iter()
                    .map(|ix| index_json(ix, d, true))
                    .collect(),
            ),
        );
    }
    if let Some(s) = &def.stream {
        let mut sm = Map::new();
        sm.insert("StreamEnabled".into(), json!(s.enabled));
        if let Some(vt) = &s.view_type {
            sm.insert("StreamViewType".into(), json!(vt));
        }
        m.insert("StreamSpecification".into(), Value::Object(sm));
    }
    if let (Some(label), Some(arn)) = (&def.stream_label, &d.stream_arn) {
        m.insert("LatestStreamLabel".into(), json!(label));
        m.insert("LatestStreamArn".into(), json!(arn));
    }
    if def.table_class != "STANDARD" {
        m.insert(
            "TableClassSummary".into(),
            json!({"TableClass": def.table_class}),
        );
    }
    m.insert(
        "DeletionProtectionEnabled".into(),
        json!(def.deletion_protection),
    );
    if let Some(r) = &def.restore {
        let mut rm = Map::new();
        if let Some(arn) = &r.source_backup_arn {
            rm.insert("SourceBackupArn".into(), json!(arn));
        }
        if let Some(arn) = &r.source_table_arn {
            rm.insert("SourceTableArn".into(), json!(arn));
        }
        rm.insert("RestoreDateTime".into(), num(r.restore_time));
        rm.insert("RestoreInProgress".into(), json!(r.in_progress));
        // Imports are described by DescribeImport, not by a RestoreSummary.
        if r.source_backup_arn.is_some() || r.source_table_arn.is_some() {
            m.insert("RestoreSummary".into(), Value::Object(rm));
        }
    }
    Value::Object(m)
}
