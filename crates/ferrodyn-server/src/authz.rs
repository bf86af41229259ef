//! Authorization: may this identity do what this request asks? One IAM evaluation per
//! [`Access`] of the request, with the key's identity-based policy and the resource-based
//! policy of the table or stream involved.
//!
//! Invariant: every request of an enforced server passes here after shape validation and
//! before the engine runs it; one denied access denies the whole request, and nothing of it
//! has been done.

use std::net::IpAddr;

use ferrodyn_auth::policy::{self, PolicyDocument, RequestContext};
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

thread_local! {
    /// The current second, as `aws:EpochTime` and `aws:CurrentTime` text, made once a second
    /// per thread instead of once per evaluation.
    static CLOCK: std::cell::RefCell<(u64, String, String)> =
        const { std::cell::RefCell::new((0, String::new(), String::new())) };
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
    let mut ctx = RequestContext::new(&access.action, &access.resource, id.arn(), &*id.account);
    ctx.set("aws:username", id.key.name.as_str());
    ctx.set("aws:userid", id.key.access_key_id.as_str());
    ctx.set("aws:PrincipalType", "User");
    ctx.set("aws:SourceIp", caller.connection.source.to_string());
    ctx.set(
        "aws:SecureTransport",
        if caller.connection.secure {
            "true"
        } else {
            "false"
        },
    );
    CLOCK.with(|c| {
        let mut c = c.borrow_mut();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if c.0 != now || c.1.is_empty() {
            *c = (now, now.to_string(), iso8601(now));
        }
        ctx.set("aws:EpochTime", c.1.as_str());
        ctx.set("aws:CurrentTime", c.2.as_str());
    });
    if let Some(v) = &access.leading_keys {
        ctx.set_multi("dynamodb:LeadingKeys", v.iter().map(String::as_str));
    }
    if let Some(v) = &access.attributes {
        ctx.set_multi("dynamodb:Attributes", v.iter().map(String::as_str));
    }
    if let Some(v) = &access.select {
        ctx.set("dynamodb:Select", v.as_str());
    }
    if let Some(v) = &access.return_values {
        ctx.set("dynamodb:ReturnValues", v.as_str());
    }
    if let Some(scan) = access.full_table_scan {
        ctx.set(
            "dynamodb:FullTableScan",
            if scan { "true" } else { "false" },
        );
    }
    if let Some(v) = &access.return_consumed_capacity {
        ctx.set("dynamodb:ReturnConsumedCapacity", v.as_str());
    }
    ctx
}

/// `2026-12-06T00:00:00Z` from seconds since the epoch.
pub(crate) fn iso8601(secs: u64) -> String {
    ferrodyn_model::calendar::iso8601_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Whether an evaluation could decide without condition keys.
#[derive(Debug, PartialEq, Eq)]
pub enum Authorized {
    Yes,
    /// The accesses came without condition keys, and a resource policy reads some: ask again
    /// with the detailed accesses.
    NeedsConditionKeys,
}

/// Evaluates every access of a request; the first one denied fails the request with
/// DynamoDB's AccessDeniedException message. `detailed`: the accesses carry their condition
/// keys (they must whenever the key's own policy reads any, see [`needs_condition_keys`]).
pub fn authorize(
    engine: &Engine,
    caller: &Caller<'_>,
    accesses: &[Access],
    detailed: bool,
) -> Result<Authorized, Error> {
    let key = &caller.identity.key;
    let identity_policy = key.policy.as_ref();
    let identity = identity_policy.as_slice();
    // Read before any resource policy (see `DecisionCache`): a decision made with the policies
    // read below is remembered under a generation no later than theirs.
    let generation = engine.policy_generation();
    for access in accesses {
        if key
            .decisions()
            .allowed(generation, &access.action, &access.resource)
        {
            continue;
        }
        let stored = engine.resource_policy(governing_arn(&access.resource));
        let parsed = stored
            .as_ref()
            .and_then(|p| PolicyDocument::parse(&p.document, policy::PolicyKind::Resource).ok());
        let resource_policy = parsed.as_ref();
        // Condition keys are read only by conditions and by variables in resources; when no
        // policy involved has either, the decision cannot depend on them (docs/security.md).
        let reads_keys = identity
            .iter()
            .copied()
            .chain(resource_policy)
            .any(PolicyDocument::reads_context_keys);
        if reads_keys && !detailed {
            return Ok(Authorized::NeedsConditionKeys);
        }
        let ctx = if reads_keys {
            context(caller, access)
        } else {
            RequestContext::new(
                &access.action,
                &access.resource,
                caller.identity.arn(),
                &*caller.identity.account,
            )
        };
        let outcome = policy::evaluate_detailed(identity, resource_policy.as_slice(), &ctx);
        if let Some(message) = policy::access_denied_message(&outcome, &ctx) {
            return Err(Error::AccessDenied(message));
        }
        if !reads_keys {
            key.decisions()
                .remember_allowed(generation, &access.action, &access.resource);
        }
    }
    Ok(Authorized::Yes)
}

/// Whether a caller's accesses must carry condition keys from the start: its own policy reads
/// them (resource policies are looked at per access by [`authorize`]).
pub fn needs_condition_keys(caller: &Caller<'_>) -> bool {
    caller
        .identity
        .key
        .policy
        .as_ref()
        .is_some_and(PolicyDocument::reads_context_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_resources_are_governed_by_their_table() {
        assert_eq!(
            governing_arn("arn:aws:dynamodb:r:1:table/T/index/G"),
            "arn:aws:dynamodb:r:1:table/T"
        );
        assert_eq!(
            governing_arn("arn:aws:dynamodb:r:1:table/T/stream/L"),
            "arn:aws:dynamodb:r:1:table/T/stream/L"
        );
    }
}
