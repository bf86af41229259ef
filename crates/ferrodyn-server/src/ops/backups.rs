//! Backup and restore operations: CreateBackup, DescribeBackup, ListBackups, DeleteBackup,
//! RestoreTableFromBackup, UpdateContinuousBackups, DescribeContinuousBackups,
//! RestoreTableToPointInTime.

use ferrodyn_core::backups::{Backup, ListBackupsInput};
use ferrodyn_core::pitr::PitrWindow;
use ferrodyn_core::restore::RestoreOverrides;
use ferrodyn_core::table::ProjectionType;
use ferrodyn_core::{BillingMode, Engine};
use ferrodyn_model::Error;
use serde_json::{json, Map, Value};

use super::json::{
    bool_field, i64_field, num, present, str_field, string_field, table_name, time_field,
};
use super::tables::{
    description_json, indexes, key_schema_json, on_demand, on_demand_json, throughput,
    throughput_json,
};

fn backup_details(b: &Backup) -> Value {
    let mut m = Map::new();
    m.insert("BackupArn".into(), json!(b.arn));
    m.insert("BackupName".into(), json!(b.name));
    if let Some(size) = b.size_bytes {
        m.insert("BackupSizeBytes".into(), json!(size));
    }
    m.insert("BackupStatus".into(), json!(b.status.as_str()));
    m.insert("BackupType".into(), json!(b.backup_type.as_str()));
    m.insert("BackupCreationDateTime".into(), num(b.created));
    if let Some(e) = b.expires {
        m.insert("BackupExpiryDateTime".into(), num(e));
    }
    Value::Object(m)
}

fn backup_description(b: &Backup) -> Value {
    let def = &b.def;
    let mut source = Map::new();
    source.insert("TableName".into(), json!(def.name));
    source.insert("TableId".into(), json!(def.id));
    source.insert("TableArn".into(), json!(b.table_arn));
    if let Some(size) = b.size_bytes {
        source.insert("TableSizeBytes".into(), json!(size));
    }
    source.insert(
        "KeySchema".into(),
        key_schema_json([&def.hash_key], def.range_key.as_ref()),
    );
    source.insert("TableCreationDateTime".into(), num(def.created));
    let mut tp = throughput_json(&def.throughput);
    if let Some(m) = tp.as_object_mut() {
        // SourceTableDetails carries only the two capacities.
        m.retain(|k, _| k == "ReadCapacityUnits" || k == "WriteCapacityUnits");
    }
    source.insert("ProvisionedThroughput".into(), tp);
    if let Some(o) = def.on_demand {
        source.insert("OnDemandThroughput".into(), on_demand_json(o));
    }
    source.insert("ItemCount".into(), json!(b.item_count));
    source.insert("BillingMode".into(), json!(def.billing_mode.as_str()));

    let projection = |ix: &ferrodyn_core::table::IndexDef| {
        let mut p = Map::new();
        p.insert("ProjectionType".into(), json!(ix.projection.as_str()));
        if ix.projection == ProjectionType::Include {
            p.insert("NonKeyAttributes".into(), json!(ix.non_key_attributes));
        }
        Value::Object(p)
    };
    let mut features = Map::new();
    if !def.local_indexes.is_empty() {
        let lsis: Vec<Value> = def
            .local_indexes
            .iter()
            .map(|ix| {
                json!({
                    "IndexName": ix.name,
                    "KeySchema": key_schema_json(ix.hash_keys(), ix.range_keys()),
                    "Projection": projection(ix),
                })
            })
            .collect();
        features.insert("LocalSecondaryIndexes".into(), Value::Array(lsis));
    }
    if !def.global_indexes.is_empty() {
        let gsis: Vec<Value> = def
            .global_indexes
            .iter()
            .map(|ix| {
                let mut m = Map::new();
                m.insert("IndexName".into(), json!(ix.name));
                m.insert(
                    "KeySchema".into(),
                    key_schema_json(ix.hash_keys(), ix.range_keys()),
                );
                m.insert("Projection".into(), projection(ix));
                if let Some(t) = &ix.throughput {
                    m.insert(
                        "ProvisionedThroughput".into(),
                        json!({"ReadCapacityUnits": t.read, "WriteCapacityUnits": t.write}),
                    );
                }
                if let Some(o) = ix.on_demand {
                    m.insert("OnDemandThroughput".into(), on_demand_json(o));
                }
                Value::Object(m)
            })
            .collect();
        features.insert("GlobalSecondaryIndexes".into(), Value::Array(gsis));
    }
    if let Some(s) = def.stream.as_ref().filter(|s| s.enabled) {
        let mut sm = Map::new();
        sm.insert("StreamEnabled".into(), json!(true));
        if let Some(vt) = &s.view_type {
            sm.insert("StreamViewType".into(), json!(vt));
        }
        features.insert("StreamDescription".into(), Value::Object(sm));
    }
    if let Some(attr) = &b.ttl_attribute {
        features.insert(
            "TimeToLiveDescription".into(),
            json!({"TimeToLiveStatus": "ENABLED", "AttributeName": attr}),
        );
    }
    let mut out = Map::new();
    out.insert("BackupDetails".into(), backup_details(b));
    out.insert("SourceTableDetails".into(), Value::Object(source));
    out.insert("SourceTableFeatureDetails".into(), Value::Object(features));
    Value::Object(out)
}

pub fn create_backup(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let name = string_field(v, "BackupName").unwrap_or_default();
    let b = engine.create_backup(&table_name(v), &name)?;
    Ok(json!({ "BackupDetails": backup_details(&b) }))
}

pub fn describe_backup(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let b = engine.describe_backup(str_field(v, "BackupArn").unwrap_or_default())?;
    Ok(json!({ "BackupDescription": backup_description(&b) }))
}

pub fn delete_backup(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let b = engine.delete_backup(str_field(v, "BackupArn").unwrap_or_default())?;
    Ok(json!({ "BackupDescription": backup_description(&b) }))
}

pub fn list_backups(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let (page, last) = engine.list_backups(ListBackupsInput {
        table: string_field(v, "TableName"),
        lower: time_field(v, "TimeRangeLowerBound"),
        upper: time_field(v, "TimeRangeUpperBound"),
        backup_type: string_field(v, "BackupType"),
        limit: i64_field(v, "Limit").map(|l| l.clamp(1, 100) as usize),
        exclusive_start: string_field(v, "ExclusiveStartBackupArn"),
    })?;
    let summaries: Vec<Value> = page
        .iter()
        .map(|b| {
            let mut m = Map::new();
            m.insert("TableName".into(), json!(b.def.name));
            m.insert("TableId".into(), json!(b.def.id));
            m.insert("TableArn".into(), json!(b.table_arn));
            if let Some(Value::Object(d)) = Some(backup_details(b)) {
                m.extend(d);
            }
            Value::Object(m)
        })
        .collect();
    let mut out = Map::new();
    out.insert("BackupSummaries".into(), Value::Array(summaries));
    if let Some(l) = last {
        out.insert("LastEvaluatedBackupArn".into(), json!(l));
    }
    Ok(Value::Object(out))
}

fn overrides(v: &Value) -> RestoreOverrides {
    RestoreOverrides {
        billing_mode: match str_field(v, "BillingModeOverride") {
            Some("PAY_PER_REQUEST") => Some(BillingMode::PayPerRequest),
            Some("PROVISIONED") => Some(BillingMode::Provisioned),
            _ => None,
        },
        provisioned: throughput(v.get("ProvisionedThroughputOverride")),
        on_demand: present(v, "OnDemandThroughputOverride")
            .and_then(|o| on_demand(&json!({ "OnDemandThroughput": o }))),
        global_indexes: indexes(v.get("GlobalSecondaryIndexOverride")),
        local_indexes: indexes(v.get("LocalSecondaryIndexOverride")),
    }
}

pub fn restore_table_from_backup(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let desc = engine.restore_table_from_backup(
        str_field(v, "TargetTableName").unwrap_or_default(),
        str_field(v, "BackupArn").unwrap_or_default(),
        overrides(v),
    )?;
    Ok(json!({ "TableDescription": description_json(&desc) }))
}

/// The table a request names by SourceTableName or SourceTableArn (`arn:...:table/NAME`).
fn source_table(v: &Value) -> Result<String, Error> {
    match (
        string_field(v, "SourceTableName"),
        str_field(v, "SourceTableArn"),
    ) {
        (Some(name), None) => Ok(name),
        (None, Some(arn)) => arn
            .split_once(":table/")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::validation(format!("Invalid TableArn: {arn}"))),
        (Some(_), Some(_)) => Err(Error::validation(
            "Only one of SourceTableArn or SourceTableName can be specified",
        )),
        (None, None) => Err(Error::validation(
            "Either SourceTableArn or SourceTableName must be specified",
        )),
    }
}

pub fn restore_table_to_point_in_time(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let source = source_table(v)?;
    let latest = bool_field(v, "UseLatestRestorableTime").unwrap_or(false);
    let at = time_field(v, "RestoreDateTime");
    let at = match (latest, at) {
        (true, Some(_)) => {
            return Err(Error::validation(
                "Only one of RestoreDateTime or UseLatestRestorableTime can be specified",
            ))
        }
        (true, None) => None,
        (false, Some(t)) => Some(t),
        (false, None) => {
            return Err(Error::validation(
                "Either RestoreDateTime or UseLatestRestorableTime must be specified",
            ))
        }
    };
    let desc = engine.restore_table_to_point_in_time(
        &source,
        str_field(v, "TargetTableName").unwrap_or_default(),
        at,
        overrides(v),
    )?;
    Ok(json!({ "TableDescription": description_json(&desc) }))
}

fn continuous_backups_json(window: Option<PitrWindow>) -> Value {
    let pitr = match window {
        Some(w) => json!({
            "PointInTimeRecoveryStatus": "ENABLED",
            "RecoveryPeriodInDays": w.period_days,
            "EarliestRestorableDateTime": num(w.earliest),
            "LatestRestorableDateTime": num(w.latest),
        }),
        None => json!({ "PointInTimeRecoveryStatus": "DISABLED" }),
    };
    let status = if window_enabled(&pitr) {
        "ENABLED"
    } else {
        "DISABLED"
    };
    json!({
        "ContinuousBackupsStatus": status,
        "PointInTimeRecoveryDescription": pitr,
    })
}

fn window_enabled(pitr: &Value) -> bool {
    str_field(pitr, "PointInTimeRecoveryStatus") == Some("ENABLED")
}

pub fn describe_continuous_backups(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let window = engine.describe_continuous_backups(&table_name(v))?;
    Ok(json!({ "ContinuousBackupsDescription": continuous_backups_json(window) }))
}

pub fn update_continuous_backups(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let spec = present(v, "PointInTimeRecoverySpecification").unwrap_or(&Value::Null);
    let enabled = bool_field(spec, "PointInTimeRecoveryEnabled").unwrap_or(false);
    let period =
        i64_field(spec, "RecoveryPeriodInDays").map(|d| u32::try_from(d).unwrap_or(u32::MAX));
    let window = engine.update_continuous_backups(&table_name(v), enabled, period)?;
    Ok(json!({ "ContinuousBackupsDescription": continuous_backups_json(window) }))
}
