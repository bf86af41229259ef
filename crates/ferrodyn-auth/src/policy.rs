//! IAM policy documents and their evaluation.
//!
//! Placeholder until the evaluator lands: documents are only checked for their outline.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Identity,
    Resource,
}

#[derive(Debug, Clone)]
pub struct PolicyDocument {
    pub source: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(String);

impl PolicyDocument {
    pub fn parse(text: &str, _kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
        let source: serde_json::Value =
            serde_json::from_str(text).map_err(|e| PolicyError(e.to_string()))?;
        match source.get("Statement") {
            Some(serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
                Ok(PolicyDocument { source })
            }
            _ => Err(PolicyError("Statement must be an object or array".into())),
        }
    }
}

pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

pub struct RequestContext {
    pub action: String,
}

impl RequestContext {
    pub fn new(action: &str, _resource: &str, _principal_arn: &str, _account: &str) -> Self {
        RequestContext {
            action: action.into(),
        }
    }
    pub fn set(&mut self, _key: &str, _value: &str) {}
    pub fn set_multi(&mut self, _key: &str, _values: Vec<String>) {}
}

pub fn evaluate(
    identity: &[&PolicyDocument],
    _resource: &[&PolicyDocument],
    _ctx: &RequestContext,
) -> Decision {
    if identity.is_empty() {
        Decision::ImplicitDeny
    } else {
        Decision::Allow
    }
}

pub fn denied_message(_d: &Decision, ctx: &RequestContext) -> String {
    format!("not authorized to perform: {}", ctx.action)
}

pub fn iso8601(_secs: u64) -> String {
    String::new()
}
