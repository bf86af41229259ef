//! Tagging operations. TagResource and UntagResource answer with an empty body, as AWS does.

use ferrodyn_core::Engine;
use ferrodyn_model::Error;
use serde_json::{json, Value};

use super::json::{present, str_field, string_field};

fn arn(v: &Value) -> &str {
    str_field(v, "ResourceArn").unwrap_or("")
}

pub fn tag_resource(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let tags: Vec<(String, String)> = present(v, "Tags")
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
        .unwrap_or_default();
    engine.tag_resource(arn(v), tags)?;
    Ok(Value::Null)
}

pub fn untag_resource(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let keys: Vec<String> = present(v, "TagKeys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    engine.untag_resource(arn(v), &keys)?;
    Ok(Value::Null)
}

pub fn list_tags_of_resource(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let tags = engine.list_tags(arn(v))?;
    Ok(
        json!({ "Tags": tags.into_iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>() }),
    )
}
