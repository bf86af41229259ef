//! Policy documents: the grammar of the IAM JSON policy language, parsed into data.

use super::condition::{self, Condition};
use super::json::{self, Json};
use super::pattern::{ArnPattern, Pattern, Syntax};
use std::fmt;

/// Where a policy is attached, which decides whether it names a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user, group or role: no `Principal` element.
    Identity,
    /// Attached to a resource (a table, an index, a stream): every statement names its
    /// `Principal` or `NotPrincipal`.
    Resource,
}

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    /// `2008-10-17` (also the default when `Version` is missing): no policy variables.
    V2008_10_17,
    /// `2012-10-17`: policy variables such as `${aws:username}`.
    V2012_10_17,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Why a policy document was rejected: a message naming the element that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PolicyError {
    message: String,
}

impl PolicyError {
    fn new(message: impl Into<String>) -> PolicyError {
        PolicyError {
            message: message.into(),
        }
    }

    /// The message, e.g. `Statement[1].Condition: unknown condition operator 'StringEqualz'`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    kind: PolicyKind,
    version: PolicyVersion,
    id: Option<String>,
    pub(crate) statements: Vec<Statement>,
    /// Whether evaluation may read the request context's condition keys (a statement has a
    /// Condition, or a Resource/NotResource with a policy variable); computed at parse time.
    reads_context_keys: bool,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    /// `Some` only in resource policies.
    pub(crate) principal: Option<PrincipalSpec>,
    pub(crate) actions: Negatable<Vec<Pattern>>,
    pub(crate) resources: Negatable<Vec<ArnPattern>>,
    pub(crate) conditions: Vec<Condition>,
}

/// An element and its `Not...` form (`Action`/`NotAction`, ...).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Negatable<T> {
    pub(crate) negated: bool,
    pub(crate) items: T,
}

/// A `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PrincipalSpec {
    pub(crate) negated: bool,
    pub(crate) entries: Vec<PrincipalEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrincipalEntry {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    Anyone,
    /// `{"AWS": "123456789012"}` or `{"AWS": "arn:aws:iam::123456789012:root"}`: the account.
    Account(String),
    /// `{"AWS": "arn:aws:iam::123456789012:user/alice"}` (or a role ARN): that principal.
    Arn(String),
    /// `Service`, `Federated` or `CanonicalUser` principals: never IAM users of this server.
    Other,
}

impl PolicyDocument {
    /// Parses a policy document of the given kind, rejecting anything malformed.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
        let json = json::parse(text).map_err(PolicyError::new)?;
        parse_document(&json, kind).map_err(PolicyError::new)
    }

    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether evaluating this document may read any condition key of the request context.
    /// When no document of an evaluation does, the decision depends only on the action, the
    /// resource and the principal, so a caller may leave the condition keys out.
    pub fn reads_context_keys(&self) -> bool {
        self.reads_context_keys
    }

    /// Number of statements.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The `Sid` of each statement, in order.
    pub fn sids(&self) -> impl Iterator<Item = Option<&str>> {
        self.statements.iter().map(|s| s.sid.as_deref())
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::Identity => "identity-based",
            PolicyKind::Resource => "resource-based",
        })
    }
}

fn parse_document(json: &Json, kind: PolicyKind) -> Result<PolicyDocument, String> {
    let Json::Object(members) = json else {
        return Err(format!(
            "a policy must be a JSON object, not {}",
            json.kind()
        ));
    };
    no_duplicates(members, "the policy")?;
    let mut version = PolicyVersion::V2008_10_17;
    let mut id = None;
    let mut statement = None;
    for (name, value) in members {
        match name.as_str() {
            "Version" => {
                version = match value {
                    Json::String(v) if v == "2012-10-17" => PolicyVersion::V2012_10_17,
                    Json::String(v) if v == "2008-10-17" => PolicyVersion::V2008_10_17,
                    Json::String(v) => {
                        return Err(format!(
                            "Version '{v}' is not supported (use 2012-10-17 or 2008-10-17)"
                        ))
                    }
                    other => return Err(format!("Version must be a string, not {}", other.kind())),
                }
            }
            "Id" => match value {
                Json::String(v) => id = Some(v.clone()),
                other => return Err(format!("Id must be a string, not {}", other.kind())),
            },
            "Statement" => statement = Some(value),
            other => return Err(format!("unknown policy element '{other}'")),
        }
    }
    let statement = statement.ok_or("the policy has no Statement element")?;
    let raw: Vec<&Json> = match statement {
        Json::Array(items) => items.iter().collect(),
        one @ Json::Object(_) => vec![one],
        other => {
            return Err(format!(
                "Statement must be an object or an array of objects, not {}",
                other.kind()
            ))
        }
    };
    let variables = version == PolicyVersion::V2012_10_17;
    let mut statements: Vec<Statement> = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let st = parse_statement(s, kind, variables).map_err(|e| format!("Statement[{i}]: {e}"))?;
        if let Some(sid) = &st.sid {
            if statements.iter().any(|o| o.sid.as_ref() == Some(sid)) {
                return Err(format!(
                    "Statement[{i}]: Sid '{sid}' is not unique in the policy"
                ));
            }
        }
        statements.push(st);
    }
    let reads_context_keys = statements
        .iter()
        .any(|st| !st.conditions.is_empty() || st.resources.items.iter().any(|r| r.has_vars()));
    Ok(PolicyDocument {
        kind,
        version,
        id,
        statements,
        reads_context_keys,
    })
}

fn no_duplicates(members: &[(String, Json)], what: &str) -> Result<(), String> {
    for (i, (name, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("element '{name}' appears twice in {what}"));
        }
    }
    Ok(())
}

fn parse_statement(json: &Json, kind: PolicyKind, variables: bool) -> Result<Statement, String> {
    let Json::Object(members) = json else {
        return Err(format!(
            "a statement must be an object, not {}",
            json.kind()
        ));
    };
    no_duplicates(members, "the statement")?;
    let mut sid = None;
    let mut effect = None;
    let mut principal: Option<(bool, &Json)> = None;
    let mut action: Option<(bool, &Json)> = None;
    let mut resource: Option<(bool, &Json)> = None;
    let mut condition = None;
    let both = |a: &str, b: &str| format!("a statement cannot have both {a} and {b}");
    for (name, value) in members {
        match name.as_str() {
            "Sid" => match value {
                Json::String(s) => sid = Some(s.clone()),
                other => return Err(format!("Sid must be a string, not {}", other.kind())),
            },
            "Effect" => {
                effect = Some(match value {
                    Json::String(s) if s == "Allow" => Effect::Allow,
                    Json::String(s) if s == "Deny" => Effect::Deny,
                    Json::String(s) => {
                        return Err(format!("Effect must be Allow or Deny, not '{s}'"))
                    }
                    other => return Err(format!("Effect must be a string, not {}", other.kind())),
                })
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return Err(both("Principal", "NotPrincipal"));
                }
                principal = Some((name == "NotPrincipal", value));
            }
            "Action" | "NotAction" => {
                if action.is_some() {
                    return Err(both("Action", "NotAction"));
                }
                action = Some((name == "NotAction", value));
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return Err(both("Resource", "NotResource"));
                }
                resource = Some((name == "NotResource", value));
            }
            "Condition" => condition = Some(value),
            other => return Err(format!("unknown statement element '{other}'")),
        }
    }
    let effect = effect.ok_or("missing Effect")?;
    let principal = match (kind, principal) {
        (PolicyKind::Identity, Some((negated, _))) => {
            return Err(format!(
                "{} is not allowed in an identity-based policy",
                if negated { "NotPrincipal" } else { "Principal" }
            ))
        }
        (PolicyKind::Identity, None) => None,
        (PolicyKind::Resource, None) => {
            return Err(
                "a resource-based policy statement needs a Principal or NotPrincipal".into(),
            )
        }
        (PolicyKind::Resource, Some((negated, value))) => Some(PrincipalSpec {
            negated,
            entries: parse_principal(value).map_err(|e| {
                format!(
                    "{}: {e}",
                    if negated { "NotPrincipal" } else { "Principal" }
                )
            })?,
        }),
    };
    let (negated, value) = action.ok_or("missing Action or NotAction")?;
    let elem = if negated { "NotAction" } else { "Action" };
    let actions = Negatable {
        negated,
        items: strings(value)
            .and_then(|v| v.iter().map(|a| parse_action(a)).collect())
            .map_err(|e| format!("{elem}: {e}"))?,
    };
    let (negated, value) = resource.ok_or("missing Resource or NotResource")?;
    let elem = if negated { "NotResource" } else { "Resource" };
    let resources = Negatable {
        negated,
        items: strings(value)
            .and_then(|v| v.iter().map(|r| parse_resource(r, variables)).collect())
            .map_err(|e| format!("{elem}: {e}"))?,
    };
    let conditions = match condition {
        Some(c) => condition::parse_block(c, variables)?,
        None => Vec::new(),
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        actions,
        resources,
        conditions,
    })
}

/// A string or a non-empty array of strings.
fn strings(json: &Json) -> Result<Vec<&str>, String> {
    match json {
        Json::String(s) => Ok(vec![s]),
        Json::Array(items) if items.is_empty() => Err("empty list".into()),
        Json::Array(items) => items
            .iter()
            .map(|i| match i {
                Json::String(s) => Ok(s.as_str()),
                other => Err(format!("expected strings, found {}", other.kind())),
            })
            .collect(),
        other => Err(format!(
            "expected a string or an array of strings, not {}",
            other.kind()
        )),
    }
}

fn parse_action(a: &str) -> Result<Pattern, String> {
    let syntax = Syntax {
        wildcards: true,
        variables: false,
    };
    let valid = a == "*"
        || a.split_once(':').is_some_and(|(svc, name)| {
            !svc.is_empty()
                && !name.is_empty()
                && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(format!(
            "'{a}' is not an action (expected service:Action or '*')"
        ));
    }
    Pattern::parse(a, syntax)
}

fn parse_resource(r: &str, variables: bool) -> Result<ArnPattern, String> {
    if r != "*" && !r.starts_with("arn:") {
        return Err(format!("'{r}' is not an ARN (expected arn:... or '*')"));
    }
    ArnPattern::parse(r, variables)
}

fn parse_principal(json: &Json) -> Result<Vec<PrincipalEntry>, String> {
    match json {
        Json::String(s) if s == "*" => Ok(vec![PrincipalEntry::Anyone]),
        Json::String(s) => Err(format!(
            "'{s}' is not a principal (use \"*\" or {{\"AWS\": ...}})"
        )),
        Json::Object(members) => {
            if members.is_empty() {
                return Err("names no principal".into());
            }
            no_duplicates(members, "the principal")?;
            let mut out = Vec::new();
            for (kind, value) in members {
                let values = strings(value).map_err(|e| format!("{kind}: {e}"))?;
                match kind.as_str() {
                    "AWS" => {
                        for v in values {
                            out.push(parse_aws_principal(v)?);
                        }
                    }
                    "Service" | "Federated" | "CanonicalUser" => out.push(PrincipalEntry::Other),
                    other => return Err(format!("unknown principal type '{other}'")),
                }
            }
            Ok(out)
        }
        other => Err(format!(
            "must be \"*\" or an object such as {{\"AWS\": ...}}, not {}",
            other.kind()
        )),
    }
}

fn parse_aws_principal(v: &str) -> Result<PrincipalEntry, String> {
    if v == "*" {
        return Ok(PrincipalEntry::Anyone);
    }
    if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(PrincipalEntry::Account(v.to_owned()));
    }
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && (parts[2] == "iam" || parts[2] == "sts")
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[5].is_empty();
    if !valid {
        return Err(format!(
            "'{v}' is not an AWS principal (expected \"*\", an account id or an IAM ARN)"
        ));
    }
    if v.contains(['*', '?']) {
        return Err(format!(
            "'{v}': wildcards are not allowed in a principal ARN"
        ));
    }
    if parts[2] == "iam" && parts[5] == "root" {
        Ok(PrincipalEntry::Account(parts[4].to_owned()))
    } else {
        Ok(PrincipalEntry::Arn(v.to_owned()))
    }
}
