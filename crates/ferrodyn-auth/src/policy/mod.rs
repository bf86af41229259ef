//! IAM policy documents and their evaluation.
//!
//! [`PolicyDocument::parse`] reads an identity-based or resource-based policy (the IAM JSON
//! policy language, versions `2012-10-17` and `2008-10-17`) into data, with every pattern split
//! once; [`evaluate`] is a pure function of the policies and a [`RequestContext`] that answers
//! Allow, explicit Deny or implicit Deny; [`access_denied_message`] renders the message of
//! DynamoDB's `AccessDeniedException` for a denial.
//!
//! ```
//! use ferrodyn_auth::policy::{
//!     access_denied_message, evaluate_detailed, Decision, PolicyDocument, PolicyKind,
//!     RequestContext,
//! };
//!
//! let policy = PolicyDocument::parse(
//!     r#"{"Version": "2012-10-17", "Statement": {
//!         "Effect": "Allow",
//!         "Action": ["dynamodb:GetItem", "dynamodb:Query"],
//!         "Resource": "arn:aws:dynamodb:*:*:table/Books",
//!         "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": "${aws:username}"}}
//!     }}"#,
//!     PolicyKind::Identity,
//! )?;
//!
//! // One context per request (or per item of a batch).
//! let mut ctx = RequestContext::new(
//!     "dynamodb:GetItem",
//!     "arn:aws:dynamodb:us-east-1:000000000000:table/Books",
//!     "arn:aws:iam::000000000000:user/reporting",
//!     "000000000000",
//! );
//! ctx.set("aws:username", "reporting");
//! ctx.set_multi("dynamodb:LeadingKeys", ["reporting"]);
//! assert_eq!(evaluate_detailed(&[&policy], &[], &ctx).decision, Decision::Allow);
//!
//! ctx.set_multi("dynamodb:LeadingKeys", ["someone-else"]);
//! let outcome = evaluate_detailed(&[&policy], &[], &ctx);
//! assert_eq!(outcome.decision, Decision::ImplicitDeny);
//! assert_eq!(
//!     access_denied_message(&outcome, &ctx).unwrap(),
//!     "User: arn:aws:iam::000000000000:user/reporting is not authorized to perform: \
//!      dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/Books \
//!      because no identity-based policy allows the dynamodb:GetItem action"
//! );
//! # Ok::<(), ferrodyn_auth::policy::PolicyError>(())
//! ```

mod condition;
mod context;
mod decisions;
mod document;
mod evaluate;
mod json;
mod pattern;

pub use context::{ContextValue, RequestContext};
pub use decisions::DecisionCache;
pub use document::{Effect, PolicyDocument, PolicyError, PolicyKind, PolicyVersion};
pub use evaluate::{access_denied_message, evaluate, evaluate_detailed, Decision, Outcome};

/// Wildcard matching as policies use it (`*` any run of characters, `?` exactly one), exposed
/// for tests and diagnostics. `ignore_case` as for actions.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let syntax = pattern::Syntax {
        wildcards: true,
        variables: false,
    };
    pattern::Pattern::parse(pattern, syntax)
        .map(|p| p.matches(text, &RequestContext::default(), ignore_case))
        .unwrap_or(false)
}
