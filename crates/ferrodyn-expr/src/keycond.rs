//! Analysis of a Query's key condition against the key schema.
//!
//! Owns: turning a parsed KeyConditionExpression (or translated legacy KeyConditions) into a
//! [`KeyCondition`]: one equality on the hash key and at most one range condition on the range
//! key. Every other shape is rejected with DynamoDB's message. Checking that the values have
//! the key attributes' declared types is left to the engine, which knows the schema types
//! ("One or more parameter values were invalid: Condition parameter type does not match
//! schema type").
//!
//! A global secondary index may have a multi-attribute key (up to 4 HASH and 4 RANGE
//! attributes). Its key condition needs an equality on every HASH attribute; conditions on
//! RANGE attributes go left to right in key-schema order without gaps, all equalities except
//! possibly the last one, which may be any key operator. A schema of one HASH and at most one
//! RANGE attribute keeps the single-key rules and messages exactly.

use ferrodyn_model::{AttributeValue, Error};

use crate::ast::*;

/// A validated key condition.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    /// The values of the HASH attributes, in key-schema order (one for a single-attribute key).
    pub hash: Vec<AttributeValue>,
    /// Equalities on the leading RANGE attributes, in key-schema order, before the one `range`
    /// constrains (always empty for a single-attribute sort key).
    pub range_prefix: Vec<AttributeValue>,
    /// The condition on the RANGE attribute after `range_prefix`; `None` with no RANGE
    /// condition at all.
    pub range: Option<RangeCondition>,
}

impl KeyCondition {
    /// The values of the partition key (the only HASH attribute's for a single-attribute key).
    pub fn partition_key(&self) -> Option<&AttributeValue> {
        self.hash.first()
    }
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

/// Validates conjuncts already reduced to (attribute, condition) pairs against the key schema:
/// its HASH and RANGE attribute names in key-schema order (`hash_keys` not empty).
pub(crate) fn assemble(
    parts: Vec<(&str, RangeCondition)>,
    hash_keys: &[&str],
    range_keys: &[&str],
) -> Result<KeyCondition, Error> {
    match (hash_keys, range_keys) {
        ([hash_key], [] | [_]) => assemble_single(parts, hash_key, range_keys.first().copied()),
        _ => assemble_multi(parts, hash_keys, range_keys),
    }
}

/// The key condition of a one-HASH, at-most-one-RANGE key schema.
fn assemble_single(
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
    Ok(KeyCondition {
        hash: vec![hash],
        range_prefix: Vec::new(),
        range,
    })
}

/// The key condition of a multi-attribute key schema (a global secondary index's).
///
/// Checks, in this order: one condition per attribute, no condition on a non-key attribute, an
/// equality on every HASH attribute, then the RANGE conditions: a condition on a RANGE attribute
/// needs equalities on every RANGE attribute before it.
fn assemble_multi(
    parts: Vec<(&str, RangeCondition)>,
    hash_keys: &[&str],
    range_keys: &[&str],
) -> Result<KeyCondition, Error> {
    let mut hash: Vec<Option<AttributeValue>> = vec![None; hash_keys.len()];
    let mut hash_ops: Vec<bool> = vec![false; hash_keys.len()];
    let mut range: Vec<Option<RangeCondition>> = vec![None; range_keys.len()];
    for (name, rc) in parts {
        if let Some(i) = hash_keys.iter().position(|k| *k == name) {
            if hash_ops[i] {
                return Err(Error::validation(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            hash_ops[i] = true;
            if let RangeCondition::Eq(v) = rc {
                hash[i] = Some(v);
            }
        } else if let Some(i) = range_keys.iter().position(|k| *k == name) {
            if range[i].is_some() {
                return Err(Error::validation(
                    "KeyConditionExpressions must only contain one condition per key",
                ));
            }
            range[i] = Some(rc);
        } else {
            return Err(Error::validation("Query key condition not supported"));
        }
    }
    let mut hash_values = Vec::with_capacity(hash.len());
    for (name, v) in hash_keys.iter().zip(hash) {
        match v {
            Some(v) => hash_values.push(v),
            None => {
                return Err(Error::Validation(format!(
                    "Query key condition not supported: HASH key attribute {name} must be specified with an equality condition"
                )))
            }
        }
    }
    // RANGE conditions: a prefix of the RANGE attributes, equalities but the last.
    let given = range.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
    let mut range_prefix = Vec::with_capacity(given.saturating_sub(1));
    let mut last = None;
    for (i, rc) in range.into_iter().take(given).enumerate() {
        match rc {
            Some(rc) if i + 1 == given => last = Some(rc),
            Some(RangeCondition::Eq(v)) => range_prefix.push(v),
            _ => {
                return Err(Error::Validation(format!(
                    "Query key condition not supported: RANGE key attribute {} is specified, so RANGE key attribute {} must be specified with an equality condition",
                    range_keys[given - 1],
                    range_keys[i]
                )))
            }
        }
    }
    Ok(KeyCondition {
        hash: hash_values,
        range_prefix,
        range: last,
    })
}

/// Analyses a parsed KeyConditionExpression against the key schema of the table or index:
/// its HASH and RANGE attribute names in key-schema order (`hash_keys` not empty).
pub fn key_condition(
    cond: &Condition,
    hash_keys: &[&str],
    range_keys: &[&str],
) -> Result<KeyCondition, Error> {
    check_operators(&cond.root)?;
    let mut conj = Vec::new();
    flatten(&cond.root, &mut conj);
    let parts = conj
        .into_iter()
        .map(simple)
        .collect::<Result<Vec<_>, Error>>()?;
    assemble(parts, hash_keys, range_keys)
}
