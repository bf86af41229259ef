//! IAM policy documents and their evaluation.
//!
//! [`PolicyDocument::parse`] reads an identity-based or resource-based policy (the IAM JSON
//! policy language, versions `2012-10-17` and `2008-10-17`) into data, with every pattern split
//! once; [`evaluate`] is a pure function of the policies and a [`RequestContext`] that answers
//! Allow, explicit Deny or implicit Deny; [`access_denied_message`] renders the message of
//! DynamoDB's `AccessDeniedException` for a denial.

mod condition;
mod context;
mod document;
mod evaluate;
mod json;
mod pattern;

pub use context::{ContextValue, RequestContext};
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
