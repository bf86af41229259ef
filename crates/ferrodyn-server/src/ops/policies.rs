//! PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy: JSON in, engine call, JSON out.
//! A document is checked against IAM's grammar for resource-based policies before it is
//! stored, so that authorization never meets a policy it cannot read.

use ferrodyn_auth::policy::{PolicyDocument, PolicyKind};
use ferrodyn_core::Engine;
use ferrodyn_model::Error;
use serde_json::{json, Value};

use super::json::str_field;

fn arn(v: &Value) -> &str {
    str_field(v, "ResourceArn").unwrap_or_default()
}

/// The policy document in member `name`, if given, once it parses as a resource-based policy.
pub fn checked_document<'v>(v: &'v Value, name: &str) -> Result<Option<&'v str>, Error> {
    let Some(document) = str_field(v, name) else {
        return Ok(None);
    };
    PolicyDocument::parse(document, PolicyKind::Resource)
        .map_err(|e| Error::Validation(format!("Invalid policy document: {e}")))?;
    Ok(Some(document))
}

pub fn put_resource_policy(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let document = checked_document(v, "Policy")?.unwrap_or_default();
    let revision = engine.put_resource_policy(
        arn(v),
        document.to_owned(),
        str_field(v, "ExpectedRevisionId"),
    )?;
    Ok(json!({ "RevisionId": revision }))
}

pub fn get_resource_policy(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let p = engine.get_resource_policy(arn(v))?;
    Ok(json!({ "Policy": p.document, "RevisionId": p.revision_id }))
}

pub fn delete_resource_policy(engine: &Engine, v: &Value) -> Result<Value, Error> {
    let revision = engine.delete_resource_policy(arn(v), str_field(v, "ExpectedRevisionId"))?;
    Ok(json!({ "RevisionId": revision }))
}
