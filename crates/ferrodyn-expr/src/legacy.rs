//! Translation of the legacy (pre-expression) parameters into the expression trees.
//!
//! Owns: Expected, QueryFilter/ScanFilter, KeyConditions, AttributeUpdates and AttributesToGet,
//! with DynamoDB's validation messages for their parameter combinations. The output trees are
//! evaluated by the same evaluator as expressions; they are at most two levels deep.

use std::collections::BTreeMap;

use ferrodyn_model::{AttributeValue, Error};

use crate::ast::{self, Action, CmpOp, Cond, Operand, Path, Update};
use crate::keycond::{assemble, KeyCondition, RangeCondition};

/// One entry of `Expected`.
#[derive(Debug, Clone, Default)]
pub struct ExpectedAttributeValue {
    pub value: Option<AttributeValue>,
    pub exists: Option<bool>,
    pub comparison_operator: Option<String>,
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// One entry of `KeyConditions`, `QueryFilter` or `ScanFilter`.
#[derive(Debug, Clone, Default)]
pub struct Condition {
    pub comparison_operator: String,
    pub attribute_value_list: Option<Vec<AttributeValue>>,
}

/// One entry of `AttributeUpdates`.
#[derive(Debug, Clone, Default)]
pub struct AttributeValueUpdate {
    pub action: Option<String>,
    pub value: Option<AttributeValue>,
}

fn invalid(msg: impl std::fmt::Display) -> Error {
    Error::Validation(format!("One or more parameter values were invalid: {msg}"))
}

fn is_scalar(v: &AttributeValue) -> bool {
    matches!(
        v,
        AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
    )
}

/// Builds the condition for one attribute from a ComparisonOperator and its arguments.
fn comparison(name: &str, op: &str, args: &[AttributeValue]) -> Result<Cond, Error> {
    let want = match op {
        "EQ" | "NE" | "LE" | "LT" | "GE" | "GT" | "CONTAINS" | "NOT_CONTAINS" | "BEGINS_WITH" => {
            Some(1)
        }
        "NULL" | "NOT_NULL" => Some(0),
        "BETWEEN" => Some(2),
        "IN" => None,
        other => {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{other}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
            )))
        }
    };
    let count_ok = match want {
        Some(n) => args.len() == n,
        None => !args.is_empty(),
    };
    if !count_ok {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    let type_ok = |v: &AttributeValue| match op {
        "LE" | "LT" | "GE" | "GT" | "BETWEEN" | "IN" | "CONTAINS" | "NOT_CONTAINS" => is_scalar(v),
        "BEGINS_WITH" => matches!(v, AttributeValue::S(_) | AttributeValue::B(_)),
        _ => true,
    };
    for v in args {
        if !type_ok(v) {
            return Err(invalid(format!(
                "ComparisonOperator {op} is not valid for {} AttributeValue type",
                v.type_name()
            )));
        }
    }
    let path = || Operand::Path(Path::attr(name));
    let val = |i: usize| Operand::Value(args[i].clone());
    Ok(match op {
        "EQ" => Cond::Cmp(CmpOp::Eq, path(), val(0)),
        "NE" => Cond::Cmp(CmpOp::Ne, path(), val(0)),
        "LE" => Cond::Cmp(CmpOp::Le, path(), val(0)),
        "LT" => Cond::Cmp(CmpOp::Lt, path(), val(0)),
        "GE" => Cond::Cmp(CmpOp::Ge, path(), val(0)),
        "GT" => Cond::Cmp(CmpOp::Gt, path(), val(0)),
        "NULL" => Cond::AttributeNotExists(Path::attr(name)),
        "NOT_NULL" => Cond::AttributeExists(Path::attr(name)),
        "CONTAINS" => Cond::Contains(path(), val(0)),
        "NOT_CONTAINS" => Cond::And(vec![
            Cond::AttributeExists(Path::attr(name)),
            Cond::Not(Box::new(Cond::Contains(path(), val(0)))),
        ]),
        "BEGINS_WITH" => Cond::BeginsWith(path(), val(0)),
        "IN" => {
            if args.iter().any(|a| a.type_name() != args[0].type_name()) {
                return Err(invalid(
                    "AttributeValues inside AttributeValueList must be of same type",
                ));
            }
            Cond::In(path(), args.iter().cloned().map(Operand::Value).collect())
        }
        _ => {
            // BETWEEN
            if args[0].type_name() != args[1].type_name() {
                return Err(invalid(
                    "AttributeValues inside AttributeValueList must be of same type",
                ));
            }
            if crate::eval::compare(&args[0], &args[1]) == Some(std::cmp::Ordering::Greater) {
                return Err(invalid(
                    "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
                ));
            }
            Cond::Between(path(), val(0), val(1))
        }
    })
}

fn combine(conds: Vec<Cond>, conditional_operator: Option<&str>) -> Result<ast::Condition, Error> {
    let or = match conditional_operator {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [AND, OR]"
            )))
        }
    };
    let root = if conds.is_empty() {
        Cond::True
    } else if or {
        Cond::Or(conds)
    } else {
        Cond::And(conds)
    };
    Ok(ast::Condition { root })
}

/// Translates `Expected` (+ `ConditionalOperator`).
pub fn expected(
    map: &BTreeMap<String, ExpectedAttributeValue>,
    conditional_operator: Option<&str>,
) -> Result<ast::Condition, Error> {
    let mut conds = Vec::new();
    for (name, e) in map {
        if e.attribute_value_list.is_some() && e.value.is_some() {
            return Err(invalid(format!(
                "Value and AttributeValueList cannot be used together for Attribute: {name}"
            )));
        }
        match &e.comparison_operator {
            None => {
                if e.attribute_value_list.is_some() {
                    return Err(invalid(format!(
                        "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
                    )));
                }
                let exists = e.exists.unwrap_or(true);
                match (&e.value, exists) {
                    (None, true) => {
                        let shown = match e.exists {
                            None => "null".to_string(),
                            Some(b) => b.to_string(),
                        };
                        return Err(invalid(format!(
                            "Value must be provided when Exists is {shown} for Attribute: {name}"
                        )));
                    }
                    (Some(_), false) => {
                        return Err(invalid(format!(
                            "Value cannot be used when Exists is false for Attribute: {name}"
                        )))
                    }
                    (Some(v), true) => conds.push(Cond::Cmp(
                        CmpOp::Eq,
                        Operand::Path(Path::attr(name.as_str())),
                        Operand::Value(v.clone()),
                    )),
                    (None, false) => {
                        conds.push(Cond::AttributeNotExists(Path::attr(name.as_str())))
                    }
                }
            }
            Some(op) => {
                if e.exists.is_some() {
                    return Err(invalid(format!(
                        "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                    )));
                }
                let args: Vec<AttributeValue> = match (&e.value, &e.attribute_value_list) {
                    (Some(v), _) => vec![v.clone()],
                    (None, Some(l)) => l.clone(),
                    (None, None) => Vec::new(),
                };
                conds.push(comparison(name, op, &args)?);
            }
        }
    }
    combine(conds, conditional_operator)
}

/// Translates `QueryFilter` / `ScanFilter` (+ `ConditionalOperator`).
pub fn filter(
    map: &BTreeMap<String, Condition>,
    conditional_operator: Option<&str>,
) -> Result<ast::Condition, Error> {
    let mut conds = Vec::new();
    for (name, c) in map {
        let args = c.attribute_value_list.clone().unwrap_or_default();
        conds.push(comparison(name, &c.comparison_operator, &args)?);
    }
    combine(conds, conditional_operator)
}

/// Translates `KeyConditions` and validates it against the key schema.
/// `hash_keys` and `range_keys` name the key schema's attributes in key-schema order; a
/// multi-attribute key follows the same rules as a KeyConditionExpression on it.
pub fn key_conditions(
    map: &BTreeMap<String, Condition>,
    hash_keys: &[&str],
    range_keys: &[&str],
) -> Result<KeyCondition, Error> {
    let mut parts = Vec::new();
    for (name, c) in map {
        let args = c.attribute_value_list.clone().unwrap_or_default();
        let op = c.comparison_operator.as_str();
        if !matches!(
            op,
            "EQ" | "LE" | "LT" | "GE" | "GT" | "BEGINS_WITH" | "BETWEEN"
        ) {
            // Validate the operator name and arguments first, as for filters.
            comparison(name, op, &args)?;
            return Err(invalid(
                "Attempted conditional constraint is not an indexable operation",
            ));
        }
        comparison(name, op, &args)?;
        let v = |i: usize| args[i].clone();
        let rc = match op {
            "EQ" => RangeCondition::Eq(v(0)),
            "LE" => RangeCondition::Le(v(0)),
            "LT" => RangeCondition::Lt(v(0)),
            "GE" => RangeCondition::Ge(v(0)),
            "GT" => RangeCondition::Gt(v(0)),
            "BEGINS_WITH" => RangeCondition::BeginsWith(v(0)),
            _ => RangeCondition::Between(v(0), v(1)),
        };
        parts.push((name.as_str(), rc));
    }
    assemble(parts, hash_keys, range_keys)
}

/// Translates `AttributeUpdates`.
pub fn attribute_updates(map: &BTreeMap<String, AttributeValueUpdate>) -> Result<Update, Error> {
    let mut actions = Vec::new();
    for (name, u) in map {
        let action = u.action.as_deref().unwrap_or("PUT");
        let path = Path::attr(name.as_str());
        match (action, &u.value) {
            ("PUT", Some(v)) => actions.push(Action::Set(
                path,
                ast::SetValue::Operand(ast::SetOperand::Value(v.clone())),
            )),
            ("DELETE", None) => actions.push(Action::Remove(path)),
            ("DELETE", Some(v)) => {
                if !matches!(
                    v,
                    AttributeValue::SS(_) | AttributeValue::NS(_) | AttributeValue::BS(_)
                ) {
                    return Err(invalid(format!(
                        "DELETE action with value is not supported for the type {}",
                        v.type_name()
                    )));
                }
                actions.push(Action::Delete(path, v.clone()));
            }
            ("ADD", Some(v)) => {
                if !matches!(
                    v,
                    AttributeValue::N(_)
                        | AttributeValue::SS(_)
                        | AttributeValue::NS(_)
                        | AttributeValue::BS(_)
                        | AttributeValue::L(_)
                ) {
                    return Err(invalid(format!(
                        "ADD action is not supported for the type {}",
                        v.type_name()
                    )));
                }
                actions.push(Action::LegacyAdd(path, v.clone()));
            }
            ("PUT" | "ADD", None) => {
                return Err(invalid(
                    "Only DELETE action is allowed when no attribute value is specified",
                ))
            }
            (other, _) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'attributeUpdates.{name}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )))
            }
        }
    }
    Ok(Update {
        actions,
        legacy: true,
    })
}

/// Translates `AttributesToGet` into projection paths (top-level attributes only).
pub fn attributes_to_get(names: &[String]) -> Vec<Path> {
    names.iter().map(|n| Path::attr(n.as_str())).collect()
}
