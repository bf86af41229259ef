//! Policy evaluation: identity- and resource-based policies against one request context.
//!
//! The logic of the IAM User Guide's "Policy evaluation logic" restricted to the two policy
//! types this server has (no SCPs, RCPs, permissions boundaries or session policies):
//! 1. an applicable `Deny` statement in any policy decides: explicit deny;
//! 2. otherwise, in the same account, an applicable `Allow` in an identity-based policy, or in a
//!    resource-based policy whose `Principal` names the caller itself, allows. A resource policy
//!    that names only the caller's *account* (`"123456789012"` or `arn:aws:iam::...:root`)
//!    delegates to that account's identity policies and allows nothing by itself;
//! 3. across accounts (the resource ARN's account differs from the caller's), both an identity
//!    `Allow` and a resource `Allow` naming the caller or its account are needed;
//! 4. otherwise: implicit deny.
//!
//! A statement applies when its action, resource, principal (resource policies) and every
//! condition match. A statement whose policy variables cannot be resolved does not apply.

use super::condition::Verdict;
use super::context::RequestContext;
use super::document::{
    Effect, PolicyDocument, PolicyKind, PrincipalEntry, PrincipalSpec, Statement,
};

/// The answer to one authorization question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    /// A matching `Deny` statement.
    ExplicitDeny,
    /// No matching `Allow` (and no matching `Deny`).
    ImplicitDeny,
}

impl Decision {
    /// True for `Allow`.
    pub fn is_allow(self) -> bool {
        self == Decision::Allow
    }
}

/// A decision with the kind of policy behind a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome {
    pub decision: Decision,
    /// For `ExplicitDeny`, the kind of policy holding the matching `Deny` (identity-based first
    /// when both do). For `ImplicitDeny`, the kind of policy whose `Allow` is missing:
    /// identity-based within one account; across accounts, identity-based when the caller's
    /// own policies do not allow, else resource-based. `None` for `Allow`.
    pub policy_kind: Option<PolicyKind>,
}

/// Evaluates identity-based and resource-based policies for one request.
pub fn evaluate(
    identity: &[&PolicyDocument],
    resource: &[&PolicyDocument],
    ctx: &RequestContext,
) -> Decision {
    evaluate_detailed(identity, resource, ctx).decision
}

/// [`evaluate`], also saying which kind of policy a denial comes from.
pub fn evaluate_detailed(
    identity: &[&PolicyDocument],
    resource: &[&PolicyDocument],
    ctx: &RequestContext,
) -> Outcome {
    let deny = |kind| Outcome {
        decision: Decision::ExplicitDeny,
        policy_kind: Some(kind),
    };
    let mut identity_allows = false;
    for st in identity.iter().flat_map(|d| d.statements.iter()) {
        if st.principal.is_some() || !applies(st, ctx) {
            continue;
        }
        match st.effect {
            Effect::Deny => return deny(PolicyKind::Identity),
            Effect::Allow => identity_allows = true,
        }
    }
    let mut resource_allows_caller = false;
    let mut resource_allows_account = false;
    for st in resource.iter().flat_map(|d| d.statements.iter()) {
        let Some(spec) = &st.principal else {
            continue;
        };
        let who = principal_match(spec, ctx);
        if who == PrincipalMatch::None || !applies(st, ctx) {
            continue;
        }
        match (st.effect, who) {
            (Effect::Deny, _) => return deny(PolicyKind::Resource),
            (Effect::Allow, PrincipalMatch::Caller) => resource_allows_caller = true,
            (Effect::Allow, _) => resource_allows_account = true,
        }
    }
    let same_account = match resource_account(&ctx.resource) {
        Some(account) => account == ctx.principal_account,
        None => true,
    };
    let allowed = if same_account {
        identity_allows || resource_allows_caller
    } else {
        identity_allows && (resource_allows_caller || resource_allows_account)
    };
    if allowed {
        return Outcome {
            decision: Decision::Allow,
            policy_kind: None,
        };
    }
    let kind = if same_account || !identity_allows {
        PolicyKind::Identity
    } else {
        PolicyKind::Resource
    };
    Outcome {
        decision: Decision::ImplicitDeny,
        policy_kind: Some(kind),
    }
}

/// The message of DynamoDB's `AccessDeniedException` for a denial, in the format of the IAM
/// User Guide's "Troubleshoot access denied error messages":
///
/// - `User: ARN is not authorized to perform: ACTION on resource: RESOURCE because no
///   identity-based policy allows the ACTION action` (implicit deny; `resource-based` across
///   accounts when the resource policy is what is missing);
/// - `User: ARN is not authorized to perform: ACTION on resource: RESOURCE with an explicit deny
///   in an identity-based policy` (or `in a resource-based policy`).
///
/// `None` for `Allow`.
pub fn access_denied_message(outcome: &Outcome, ctx: &RequestContext) -> Option<String> {
    if outcome.decision == Decision::Allow {
        return None;
    }
    let kind = outcome.policy_kind.unwrap_or(PolicyKind::Identity);
    let head = format!(
        "User: {} is not authorized to perform: {} on resource: {}",
        ctx.principal_arn, ctx.action, ctx.resource
    );
    match outcome.decision {
        Decision::Allow => None,
        Decision::ImplicitDeny => Some(format!(
            "{head} because no {kind} policy allows the {} action",
            ctx.action
        )),
        Decision::ExplicitDeny => Some(format!(
            "{head} with an explicit deny in {} {kind} policy",
            match kind {
                PolicyKind::Identity => "an",
                PolicyKind::Resource => "a",
            }
        )),
    }
}

fn applies(st: &Statement, ctx: &RequestContext) -> bool {
    let action_hit = st
        .actions
        .items
        .iter()
        .any(|p| p.matches(&ctx.action, ctx, true));
    if action_hit == st.actions.negated {
        return false;
    }
    if !st.resources.items.iter().all(|p| p.resolvable(ctx)) {
        return false;
    }
    let resource_hit = st
        .resources
        .items
        .iter()
        .any(|p| p.matches(&ctx.resource, ctx));
    if resource_hit == st.resources.negated {
        return false;
    }
    st.conditions
        .iter()
        .all(|c| c.evaluate(ctx) == Verdict::Holds)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PrincipalMatch {
    None,
    /// The statement names the caller's account (delegation to its identity policies).
    Account,
    /// The statement names the caller (or everyone).
    Caller,
}

fn principal_match(spec: &PrincipalSpec, ctx: &RequestContext) -> PrincipalMatch {
    let best = spec
        .entries
        .iter()
        .map(|e| match e {
            PrincipalEntry::Anyone => PrincipalMatch::Caller,
            PrincipalEntry::Arn(arn) if *arn == ctx.principal_arn => PrincipalMatch::Caller,
            PrincipalEntry::Account(acct) if *acct == ctx.principal_account => {
                if is_root_of(&ctx.principal_arn, acct) {
                    PrincipalMatch::Caller
                } else {
                    PrincipalMatch::Account
                }
            }
            _ => PrincipalMatch::None,
        })
        .max()
        .unwrap_or(PrincipalMatch::None);
    if spec.negated {
        // NotPrincipal: the statement applies to everyone not named (a caller is named when
        // either it or its account is listed).
        if best == PrincipalMatch::None {
            PrincipalMatch::Caller
        } else {
            PrincipalMatch::None
        }
    } else {
        best
    }
}

fn is_root_of(principal_arn: &str, account: &str) -> bool {
    principal_arn
        .strip_prefix("arn:")
        .and_then(|r| r.split_once(':'))
        .and_then(|(_, r)| r.strip_prefix("iam::"))
        .and_then(|r| r.strip_prefix(account))
        .is_some_and(|r| r == ":root")
}

/// The account field of an ARN, when it has one.
fn resource_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let account = parts.nth(3)?;
    parts.next()?;
    (!account.is_empty()).then_some(account)
}
