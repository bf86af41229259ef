//! Analysis of a Query's key condition against the key schema.
//!
//! Owns: turning a parsed KeyConditionExpression (or translated legacy KeyConditions) into a
//! [`KeyCondition`]: one equality on the hash key and at most one range condition on the range
//! key. Every other shape is rejected with DynamoDB's message. Checking that the values have
//! the key attributes' declared types is left to the engine, which knows the schema types
//! ("One or more parameter values were invalid: Condition parameter type does not match
//! schema type").

use ferrodyn_model::{AttributeValue, Error};

use crate::ast::*;

/// A validated key condition.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    pub hash: AttributeValue,
    pub range: Option<RangeCondition>,
}

/// The condition on the range key.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeCondition {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

const PREFIX: &str = "Invalid KeyConditionExpression: ";

fn bad_operator(op: &str) -> Error {
    Error::Validation(format!(
        "{PREFIX}Invalid operator used in KeyConditionExpression: {op}"
    ))
}

/// Rejects operators and functions KeyConditionExpression does not allow.
fn check_operators(c: &Cond) -> Result<(), Error> {
    let size_in = |ops: &[&Operand]| {
        if ops.iter().any(|o| matches!(o, Operand::Size(_))) {
            Err(bad_operator("size"))
        } else {
            Ok(())
        }
    };
    match c {
        Cond::And(v) => v.iter().try_for_each(check_operators),
        Cond::Or(_) => Err(bad_operator("OR")),
        Cond::Not(_) => Err(bad_operator("NOT")),
        Cond::Cmp(CmpOp::Ne, ..) => Err(bad_operator("<>")),
        Cond::In(..) => Err(bad_operator("IN")),
        Cond::AttributeExists(_) => Err(bad_operator("attribute_exists")),
        Cond::AttributeNotExists(_) => Err(bad_operator("attribute_not_exists")),
        Cond::AttributeType(..) => Err(bad_operator("attribute_type")),
        Cond::Contains(..) => Err(bad_operator("contains")),
        Cond::Cmp(_, a, b) | Cond::BeginsWith(a, b) => size_in(&[a, b]),
        Cond::Between(a, b, c) => size_in(&[a, b, c]),
        Cond::True => Ok(()),
    }
}

fn flatten<'c>(c: &'c Cond, out: &mut Vec<&'c Cond>) {
    match c {
        Cond::And(v) => v.iter().for_each(|c| flatten(c, out)),
        other => out.push(other),
    }
}

/// One conjunct as (attribute name, condition), values constant.
fn simple(c: &Cond) -> Result<(&str, RangeCondition), Error> {
    fn attr(p: &Path) -> Result<&str, Error> {
        if p.is_top_level() {
            Ok(p.top())
        } else {
            Err(Error::Validation(format!(
                "{PREFIX}KeyConditionExpressions cannot have conditions on nested attributes"
            )))
        }
    }
    let multiple = || {
        Error::Validation(format!(
            "{PREFIX}Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
        ))
    };
    let none = || {
        Error::Validation(format!(
            "{PREFIX}Invalid condition in KeyConditionExpression: No key attribute specified"
        ))
    };
    match c {
        Cond::Cmp(op, a, b) => {
            let (p, v, op) = match (a, b) {
                (Operand::Path(p), Operand::Value(v)) => (p, v, *op),
                (Operand::Value(v), Operand::Path(p)) => (p, v, op.flipped()),
                (Operand::Path(_), Operand::Path(_)) => return Err(multiple()),
                _ => return Err(none()),
            };
            let v = v.clone();
            let rc = match op {
                CmpOp::Eq => RangeCondition::Eq(v),
                CmpOp::Lt => RangeCondition::Lt(v),
                CmpOp::Le => RangeCondition::Le(v),
                CmpOp::Gt => RangeCondition::Gt(v),
                CmpOp::Ge => RangeCondition::Ge(v),
                CmpOp::Ne => return Err(bad_operator("<>")),
            };
            Ok((attr(p)?, rc))
        }
        Cond::Between(Operand::Path(p), Operand::Value(lo), Operand::Value(hi)) => {
            Ok((attr(p)?, RangeCondition::Between(lo.clone(), hi.clone())))
        }
        Cond::Between(Operand::Path(_), _, _) => Err(multiple()),
        Cond::Between(..) => Err(none()),
        Cond::BeginsWith(Operand::Path(p), Operand::Value(v)) => {
            Ok((attr(p)?, RangeCondition::BeginsWith(v.clone())))
        }
        Cond::BeginsWith(Operand::Path(_), _) => Err(multiple()),
        Cond::BeginsWith(..) => Err(none()),
        _ => Err(Error::validation("Query key condition not supported")),
    }
}

/// Validates conjuncts already reduced to (attribute, condition) pairs.
pub(crate) fn assemble(
    parts: Vec<(&str, RangeCondition)>,
    hash_key: &str,
    range_key: Option<&str>,
) -> Result<KeyCondition, Error> {
    if parts.len() > 2 {
        return Err(Error::validation("Conditions can be of length 1 or 2 only"));
    }
    let mut hash = None;
    let mut range = None;
    let mut other = false;
    for (name, rc) in parts {
        if name == hash_key {
            if hash.is_some() {
                return Err(Error::validation(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            match rc {
                RangeCondition::Eq(v) => hash = Some(v),
                _ => return Err(Error::validation("Query key condition not supported")),
            }
        } else if Some(name) == range_key {
            if range.is_some() {
                return Err(Error::validation(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            range = Some(rc);
        } else {
            other = true;
        }
    }
    let Some(hash) = hash else {
        return Err(Error::Validation(format!(
            "Query condition missed key schema element: {hash_key}"
        )));
    };
    if other {
        return Err(match range_key {
            Some(r) => Error::Validation(format!("Query condition missed key schema element: {r}")),
            None => Error::validation("Query key condition not supported"),
        });
    }
    Ok(KeyCondition { hash, range })
}

/// Analyses a parsed KeyConditionExpression against the key schema of the table or index.
pub fn key_condition(
    cond: &Condition,
    hash_key: &str,
    range_key: Option<&str>,
) -> Result<KeyCondition, Error> {
    check_operators(&cond.root)?;
    let mut conj = Vec::new();
    flatten(&cond.root, &mut conj);
    let parts = conj
        .into_iter()
        .map(simple)
        .collect::<Result<Vec<_>, Error>>()?;
    assemble(parts, hash_key, range_key)
}
