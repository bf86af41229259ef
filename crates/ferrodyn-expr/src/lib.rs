//! DynamoDB's expression language as a pure library (no I/O).
//!
//! Pipeline, for every expression of a request:
//!
//! 1. **Limits** (`parser::precheck`): at most 4096 bytes, not empty.
//! 2. **Lexing** (`lexer`): text -> spanned tokens; unknown characters become tokens too so
//!    that syntax errors can quote them (`Syntax error; token: "!", near: "!!"`).
//! 3. **Parsing** (`parser`): recursive descent with a depth counter (≤ 300) and an operator
//!    counter (≤ 300) into a raw tree. Placeholders are looked up in the [`Resolver`] as they
//!    are met; reserved words and undefined placeholders are recorded and reported only if
//!    the whole text parses, so syntax errors take precedence.
//! 4. **Lowering** (`parser`): raw tree -> [`ast`] tree, checking everything DynamoDB checks
//!    before reading an item: function names and contexts, operand counts, types of constant
//!    operands, BETWEEN bounds, overlapping/conflicting paths, clause repetition.
//! 5. **Use**: [`Condition::eval`] (missing item = empty item), [`Update::apply`],
//!    [`project`], and [`key_condition`] which turns a KeyConditionExpression into a
//!    [`KeyCondition`] for the engine's range scans.
//!
//! Legacy parameters (Expected, QueryFilter/ScanFilter, KeyConditions, AttributeUpdates,
//! AttributesToGet) are translated by [`legacy`] into the same trees, so there is one
//! evaluator and one updater.
//!
//! Error messages are DynamoDB's: parse-time errors carry the "Invalid XExpression: " prefix
//! of the expression kind; evaluation-time errors (from [`Update::apply`]) do not.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use ferrodyn_model::{AttributeValue, Error};

pub mod ast;
mod eval;
mod keycond;
pub mod legacy;
mod lexer;
mod parser;
mod projection;
pub mod reserved;
mod update;

pub use ast::{
    Action, CmpOp, Cond, Condition, Operand, Path, PathElem, SetOperand, SetValue, Update,
};
pub use eval::{compare, resolve, size_of};
pub use keycond::{key_condition, KeyCondition, RangeCondition};
pub use parser::{MAX_EXPRESSION_SIZE, MAX_OPERATORS, MAX_PATH_DEPTH};
pub use projection::project;

/// Which parameter a condition came from; selects the error-message prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CondKind {
    Condition,
    Filter,
    KeyCondition,
}

impl CondKind {
    fn prefix(self) -> &'static str {
        match self {
            CondKind::Condition => "Invalid ConditionExpression: ",
            CondKind::Filter => "Invalid FilterExpression: ",
            CondKind::KeyCondition => "Invalid KeyConditionExpression: ",
        }
    }
}

/// Resolves `#name` / `:value` placeholders for all the expressions of one request and
/// remembers which were used, so that [`Resolver::finish`] can reject unused ones.
pub struct Resolver<'a> {
    names: Option<&'a HashMap<String, String>>,
    values: Option<&'a HashMap<String, AttributeValue>>,
    /// Keys of `names` / `values` used so far, repeats included (borrowed from the maps).
    used_names: Vec<&'a str>,
    used_values: Vec<&'a str>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        names: Option<&'a HashMap<String, String>>,
        values: Option<&'a HashMap<String, AttributeValue>>,
    ) -> Self {
        Resolver {
            names,
            values,
            used_names: Vec::new(),
            used_values: Vec::new(),
        }
    }

    /// DynamoDB rejects an ExpressionAttributeNames/Values map given but empty. Call this once
    /// per request, before parsing (the server may do the same check itself instead).
    pub fn check_not_empty(&self) -> Result<(), Error> {
        if self.names.is_some_and(HashMap::is_empty) {
            return Err(Error::validation(
                "ExpressionAttributeNames must not be empty",
            ));
        }
        if self.values.is_some_and(HashMap::is_empty) {
            return Err(Error::validation(
                "ExpressionAttributeValues must not be empty",
            ));
        }
        Ok(())
    }

    pub(crate) fn name(&mut self, placeholder: &str) -> Option<String> {
        let (k, n) = self.names?.get_key_value(placeholder)?;
        self.used_names.push(k);
        Some(n.clone())
    }

    pub(crate) fn value(&mut self, placeholder: &str) -> Option<AttributeValue> {
        let (k, v) = self.values?.get_key_value(placeholder)?;
        self.used_values.push(k);
        Some(v.clone())
    }

    /// Parses a ConditionExpression, FilterExpression or KeyConditionExpression.
    pub fn condition(&mut self, text: &str, kind: CondKind) -> Result<Condition, Error> {
        parser::parse_condition(text, self)
            .map_err(|m| Error::Validation(format!("{}{m}", kind.prefix())))
    }

    /// Parses an UpdateExpression.
    pub fn update(&mut self, text: &str) -> Result<Update, Error> {
        parser::parse_update(text, self)
            .map_err(|m| Error::Validation(format!("Invalid UpdateExpression: {m}")))
    }

    /// Parses a ProjectionExpression into its paths (for [`project`]).
    pub fn projection(&mut self, text: &str) -> Result<Vec<Path>, Error> {
        parser::parse_projection(text, self)
            .map_err(|m| Error::Validation(format!("Invalid ProjectionExpression: {m}")))
    }

    /// Rejects placeholders that were supplied but used by none of the request's expressions.
    pub fn finish(mut self) -> Result<(), Error> {
        fn unused<V>(map: Option<&HashMap<String, V>>, used: &mut Vec<&str>) -> Option<String> {
            let map = map?;
            used.sort_unstable();
            used.dedup();
            if used.len() == map.len() {
                return None; // every key was used (`used` holds keys of `map` only)
            }
            let mut keys: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| used.binary_search(k).is_err())
                .collect();
            if keys.is_empty() {
                return None;
            }
            keys.sort_unstable();
            Some(keys.join(", "))
        }
        if let Some(k) = unused(self.names, &mut self.used_names) {
            return Err(Error::Validation(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{k}}}"
            )));
        }
        if let Some(k) = unused(self.values, &mut self.used_values) {
            return Err(Error::Validation(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{k}}}"
            )));
        }
        Ok(())
    }
}
