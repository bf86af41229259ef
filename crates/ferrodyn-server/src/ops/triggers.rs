//! Ferrodyn's trigger operations (admin API, `FerrodynAdmin_20261201`): CreateTrigger,
//! DescribeTrigger, ListTriggers, UpdateTrigger, DeleteTrigger. JSON in, the trigger service
//! (ferrodyn-triggers) does the work, JSON out.
//!
//! - `CreateTrigger` `{TableName, Target: {Url} | {Nats, Subject}, <settings>}`: the settings
//!   carry Lambda's event source mapping names (BatchSize, MaximumBatchingWindowInSeconds,
//!   StartingPosition, StartingPositionTimestamp, ParallelizationFactor, MaximumRetryAttempts,
//!   MaximumRecordAgeInSeconds, BisectBatchOnFunctionError, FunctionResponseTypes,
//!   FilterCriteria, DestinationConfig, Enabled) and TimeoutSeconds;
//! - `DescribeTrigger` / `DeleteTrigger` `{TriggerId}`; `ListTriggers` `{TableName?}` →
//!   `{Triggers: [...]}`; `UpdateTrigger` `{TriggerId, Target?, <settings to change>}`.

use std::sync::Arc;

use ferrodyn_core::Engine;
use ferrodyn_model::Error;
use ferrodyn_triggers::{Settings, TargetSpec, TriggerDescription, Triggers};
use serde_json::{Map, Value};

use super::json::string_field;

fn service(engine: &Engine) -> Result<Arc<Triggers>, Error> {
    engine
        .attached::<Triggers>()
        .ok_or_else(|| Error::internal("the trigger service is not running"))
}

fn describe(d: &TriggerDescription) -> Result<Value, Error> {
    serde_json::to_value(d).map_err(Error::internal)
}

fn required(v: &Value, name: &str) -> Result<String, Error> {
    string_field(v, name).ok_or_else(|| {
        Error::validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn target(v: &Value) -> Result<TargetSpec, Error> {
    serde_json::from_value(v.clone()).map_err(|e| Error::validation(format!("Invalid Target: {e}")))
}

/// The request's members other than `skip`.
fn rest(v: &Value, skip: &[&str]) -> Map<String, Value> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn create_trigger(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let table = required(v, "TableName")?;
    let t = v.get("Target").ok_or_else(|| {
        Error::validation(
            "1 validation error detected: Value null at 'Target' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let target = target(t)?;
    let settings = Settings::from_json(Value::Object(rest(v, &["TableName", "Target"])))?;
    describe(&service(engine)?.create(&table, target, settings)?)
}

pub fn describe_trigger(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let id = required(v, "TriggerId")?;
    describe(&service(engine)?.describe(&id)?)
}

pub fn list_triggers(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let table = string_field(v, "TableName");
    let all = service(engine)?.list(table.as_deref())?;
    let list: Result<Vec<Value>, Error> = all.iter().map(describe).collect();
    Ok(serde_json::json!({ "Triggers": list? }))
}

pub fn update_trigger(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let id = required(v, "TriggerId")?;
    let target = v.get("Target").map(target).transpose()?;
    let changes = rest(v, &["TriggerId", "Target"]);
    describe(&service(engine)?.update(&id, target, &changes)?)
}

pub fn delete_trigger(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let id = required(v, "TriggerId")?;
    describe(&service(engine)?.delete(&id)?)
}
