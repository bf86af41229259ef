//! Authorization: may this identity do what this request asks? One IAM evaluation per
//! [`Access`] of the request, with the key's identity-based policy and the resource-based
//! policy of the table or stream involved.
//!
//! Invariant: every request of an enforced server passes here after shape validation and
//! before the engine runs it; one denied access denies the whole request, and nothing of it
//! has been done.

use std::net::IpAddr;

use ferrodyn_auth::policy::{self, Decision, PolicyDocument, RequestContext};
use ferrodyn_core::Engine;
use ferrodyn_model::Error;

use crate::auth::Identity;
use crate::ops::access::Access;

/// What the connection says about a request, for `aws:SourceIp` and `aws:SecureTransport`.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub source: IpAddr,
    pub secure: bool,
}

/// The caller of an operation on an enforced server.
pub struct Caller<'a> {
    pub identity: &'a Identity,
    pub connection: Connection,
}

/// The resource policy that governs `resource`: the table's (for a table, its indexes) or the
/// stream's own.
fn governing_arn(resource: &str) -> &str {
    match resource.find("/index/") {
        Some(i) => &resource[..i],
        None => resource,
    }
}

fn context(caller: &Caller<'_>, access: &Access) -> RequestContext {
    let id = caller.identity;
    let mut ctx = RequestContext::new(&access.action, &access.resource, &id.arn, &id.account);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.set("aws:username", &id.key.name);
    ctx.set("aws:userid", &id.key.access_key_id);
    ctx.set("aws:PrincipalArn", &id.arn);
    ctx.set("aws:PrincipalAccount", &id.account);
    ctx.set("aws:PrincipalType", "User");
    ctx.set("aws:SourceIp", &caller.connection.source.to_string());
    ctx.set(
        "aws:SecureTransport",
        if caller.connection.secure {
            "true"
        } else {
            "false"
        },
    );
    ctx.set("aws:EpochTime", &now.as_secs().to_string());
    ctx.set("aws:CurrentTime", &policy::iso8601(now.as_secs()));
    if id.key.session_token.is_some() {
        ctx.set("aws:TokenIssueTime", &policy::iso8601(0));
    }
    if let Some(v) = &access.leading_keys {
        ctx.set_multi("dynamodb:LeadingKeys", v.clone());
    }
    if let Some(v) = &access.attributes {
        ctx.set_multi("dynamodb:Attributes", v.clone());
    }
    if let Some(v) = &access.select {
        ctx.set("dynamodb:Select", v);
    }
    if let Some(v) = &access.return_values {
        ctx.set("dynamodb:ReturnValues", v);
    }
    if let Some(v) = &access.return_consumed_capacity {
        ctx.set("dynamodb:ReturnConsumedCapacity", v);
    }
    ctx
}

/// Evaluates every access of a request; the first one denied fails the request with
/// DynamoDB's AccessDeniedException message.
pub fn authorize(engine: &Engine, caller: &Caller<'_>, accesses: &[Access]) -> Result<(), Error> {
    let identity: Vec<&PolicyDocument> = caller.identity.key.policy.iter().collect();
    for access in accesses {
        let stored = engine.resource_policy(governing_arn(&access.resource));
        let parsed = stored
            .as_ref()
            .and_then(|p| PolicyDocument::parse(&p.document, policy::PolicyKind::Resource).ok());
        let resource: Vec<&PolicyDocument> = parsed.iter().collect();
        let ctx = context(caller, access);
        let decision = policy::evaluate(&identity, &resource, &ctx);
        if !matches!(decision, Decision::Allow) {
            return Err(Error::AccessDenied(policy::denied_message(&decision, &ctx)));
        }
    }
    Ok(())
}
