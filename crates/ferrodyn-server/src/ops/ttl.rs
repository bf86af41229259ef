//! UpdateTimeToLive and DescribeTimeToLive.

use ferrodyn_core::Engine;
use ferrodyn_model::Error;
use ferrodyn_protocol::shapes::coerce_bool;
use serde_json::{json, Map, Value};

use super::json::{present, str_field, table_name};

pub fn update_time_to_live(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let spec = present(v, "TimeToLiveSpecification")
        .ok_or_else(|| Error::validation("TimeToLiveSpecification is required"))?;
    let attribute = str_field(spec, "AttributeName")
        .ok_or_else(|| Error::validation("TimeToLiveSpecification.AttributeName is required"))?;
    let enabled = present(spec, "Enabled")
        .and_then(coerce_bool)
        .ok_or_else(|| Error::validation("TimeToLiveSpecification.Enabled is required"))?;
    engine.update_time_to_live(&table_name(v), attribute, enabled)?;
    Ok(json!({
        "TimeToLiveSpecification": {"AttributeName": attribute, "Enabled": enabled}
    }))
}

pub fn describe_time_to_live(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let d = engine.describe_time_to_live(&table_name(v))?;
    let mut m = Map::new();
    m.insert("TimeToLiveStatus".into(), Value::String(d.status.into()));
    if let Some(a) = d.attribute {
        m.insert("AttributeName".into(), Value::String(a));
    }
    Ok(json!({ "TimeToLiveDescription": Value::Object(m) }))
}
