//! Application of update actions to an item.
//!
//! Owns: DynamoDB's update semantics. Every SET right-hand side is evaluated against the item
//! as it was *before* the update; then SETs are applied in ascending path order (so several
//! out-of-range list indexes append in index order), then REMOVEs (highest list index first, so
//! `REMOVE a[0], a[1]` removes both original elements, and `REMOVE a[1] SET a[3] = :v` addresses
//! original positions, as DynamoDB does), then ADDs and DELETEs.
//! On error the item may be partially modified: callers apply updates to a copy.

use std::collections::HashSet;

use ferrodyn_model::{AttributeValue, Error, Item, NumberError};

use crate::ast::*;
use crate::eval::resolve;

pub(crate) const MISSING_ATTRIBUTE: &str =
    "The provided expression refers to an attribute that does not exist in the item";
pub(crate) const BAD_OPERAND_TYPE: &str =
    "An operand in the update expression has an incorrect data type";
pub(crate) const BAD_PATH: &str =
    "The document path provided in the update expression is invalid for update";
pub(crate) const LEGACY_TYPE_MISMATCH: &str =
    "One or more parameter values were invalid: Type mismatch for attribute to update";

pub(crate) fn number_error(e: NumberError) -> Error {
    Error::validation(match e {
        NumberError::Underflow => {
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        }
        NumberError::TooManyDigits => {
            "Attempting to store a number with more than 38 significant digits"
        }
        NumberError::Overflow | NumberError::Invalid => {
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        }
    })
}

fn set_operand(o: &SetOperand, item: &Item) -> Result<AttributeValue, Error> {
    match o {
        SetOperand::Path(p) => resolve(item, p)
            .cloned()
            .ok_or_else(|| Error::validation(MISSING_ATTRIBUTE)),
        SetOperand::Value(v) => Ok(v.clone()),
        SetOperand::IfNotExists(p, d) => match resolve(item, p) {
            Some(v) => Ok(v.clone()),
            None => set_operand(d, item),
        },
        SetOperand::ListAppend(a, b) => match (set_operand(a, item)?, set_operand(b, item)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                Ok(AttributeValue::L(a))
            }
            _ => Err(Error::validation(BAD_OPERAND_TYPE)),
        },
    }
}

fn set_value(v: &SetValue, item: &Item) -> Result<AttributeValue, Error> {
    let arith = |a: &SetOperand, b: &SetOperand, plus: bool| match (
        set_operand(a, item)?,
        set_operand(b, item)?,
    ) {
        (AttributeValue::N(x), AttributeValue::N(y)) => {
            let r = if plus {
                x.checked_add(&y)
            } else {
                x.checked_sub(&y)
            };
            r.map(AttributeValue::N).map_err(number_error)
        }
        _ => Err(Error::validation(BAD_OPERAND_TYPE)),
    };
    match v {
        SetValue::Operand(o) => set_operand(o, item),
        SetValue::Plus(a, b) => arith(a, b, true),
        SetValue::Minus(a, b) => arith(a, b, false),
    }
}

/// The container holding the last element of `path`; `None` if a step is missing or mistyped.
fn parent_mut<'i>(item: &'i mut Item, path: &Path) -> Option<&'i mut AttributeValue> {
    let (first, rest) = path.elems.split_first()?;
    let rest = &rest[..rest.len().checked_sub(1)?];
    let PathElem::Attr(first) = first else {
        return None;
    };
    let mut cur = item.get_mut(first)?;
    for e in rest {
        cur = match (cur, e) {
            (AttributeValue::M(m), PathElem::Attr(k)) => m.get_mut(k)?,
            (AttributeValue::L(l), PathElem::Index(i)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

pub(crate) fn set_path(item: &mut Item, path: &Path, value: AttributeValue) -> Result<(), Error> {
    if path.elems.len() == 1 {
        item.insert(path.top().to_string(), value);
        return Ok(());
    }
    let last = path.elems.last();
    match (parent_mut(item, path), last) {
        (Some(AttributeValue::M(m)), Some(PathElem::Attr(k))) => {
            m.insert(k.clone(), value);
            Ok(())
        }
        (Some(AttributeValue::L(l)), Some(PathElem::Index(i))) => {
            match l.get_mut(*i) {
                Some(slot) => *slot = value,
                None => l.push(value),
            }
            Ok(())
        }
        _ => Err(Error::validation(BAD_PATH)),
    }
}

pub(crate) fn remove_path(item: &mut Item, path: &Path) -> Result<(), Error> {
    if path.elems.len() == 1 {
        item.remove(path.top());
        return Ok(());
    }
    match (parent_mut(item, path), path.elems.last()) {
        (Some(AttributeValue::M(m)), Some(PathElem::Attr(k))) => {
            m.remove(k);
            Ok(())
        }
        (Some(AttributeValue::L(l)), Some(PathElem::Index(i))) => {
            if *i < l.len() {
                l.remove(*i);
            }
            Ok(())
        }
        _ => Err(Error::validation(BAD_PATH)),
    }
}

fn union<T: PartialEq + Clone>(mut a: Vec<T>, b: &[T]) -> Vec<T> {
    for x in b {
        if !a.contains(x) {
            a.push(x.clone());
        }
    }
    a
}

fn difference<T: PartialEq>(a: Vec<T>, b: &[T]) -> Vec<T> {
    a.into_iter().filter(|x| !b.contains(x)).collect()
}

fn add(
    old: Option<&AttributeValue>,
    v: &AttributeValue,
    legacy: bool,
) -> Result<AttributeValue, Error> {
    use AttributeValue::*;
    let mismatch = || {
        Error::validation(if legacy {
            LEGACY_TYPE_MISMATCH
        } else {
            BAD_OPERAND_TYPE
        })
    };
    let Some(old) = old else {
        return Ok(v.clone());
    };
    Ok(match (old.clone(), v) {
        (N(a), N(b)) => N(a.checked_add(b).map_err(number_error)?),
        (SS(a), SS(b)) => SS(union(a, b)),
        (NS(a), NS(b)) => NS(union(a, b)),
        (BS(a), BS(b)) => BS(union(a, b)),
        (L(mut a), L(b)) if legacy => {
            a.extend(b.iter().cloned());
            L(a)
        }
        _ => return Err(mismatch()),
    })
}

/// `None` means the set became empty and the attribute is removed.
fn delete(
    old: &AttributeValue,
    v: &AttributeValue,
    legacy: bool,
) -> Result<Option<AttributeValue>, Error> {
    use AttributeValue::*;
    let r = match (old.clone(), v) {
        (SS(a), SS(b)) => SS(difference(a, b)),
        (NS(a), NS(b)) => NS(difference(a, b)),
        (BS(a), BS(b)) => BS(difference(a, b)),
        _ => {
            return Err(Error::validation(if legacy {
                LEGACY_TYPE_MISMATCH
            } else {
                BAD_OPERAND_TYPE
            }))
        }
    };
    let empty = match &r {
        SS(s) => s.is_empty(),
        NS(s) => s.is_empty(),
        BS(s) => s.is_empty(),
        _ => false,
    };
    Ok(if empty { None } else { Some(r) })
}

impl Update {
    /// Applies the update to `item` (an empty item if it did not exist).
    pub fn apply(&self, item: &mut Item) -> Result<(), Error> {
        // 1. Evaluate every SET right-hand side against the original item.
        let mut sets = Vec::new();
        for a in &self.actions {
            if let Action::Set(p, v) = a {
                sets.push((p, set_value(v, item)?));
            }
        }
        // 2. SETs in ascending path order.
        sets.sort_by(|a, b| a.0.cmp(b.0));
        for (p, v) in sets {
            set_path(item, p, v)?;
        }
        // 3. REMOVEs, deepest / highest index first.
        let mut removes: Vec<&Path> = self
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Remove(p) => Some(p),
                _ => None,
            })
            .collect();
        removes.sort_by(|a, b| b.cmp(a));
        for p in removes {
            remove_path(item, p)?;
        }
        // 4. ADD and DELETE in expression order.
        for a in &self.actions {
            match a {
                Action::Add(p, v) | Action::LegacyAdd(p, v) => {
                    let legacy = matches!(a, Action::LegacyAdd(..));
                    let new = add(resolve(item, p), v, legacy)?;
                    set_path(item, p, new)?;
                }
                Action::Delete(p, v) => {
                    let Some(old) = resolve(item, p) else {
                        continue;
                    };
                    match delete(old, v, self.legacy)? {
                        Some(new) => set_path(item, p, new)?,
                        None => remove_path(item, p)?,
                    }
                }
                Action::Set(..) | Action::Remove(_) => {}
            }
        }
        Ok(())
    }

    /// Whether the update only removes attributes or set members (REMOVE / DELETE). DynamoDB
    /// does not create a missing item for such an update.
    pub fn only_removes(&self) -> bool {
        !self.actions.is_empty()
            && self
                .actions
                .iter()
                .all(|a| matches!(a, Action::Remove(_) | Action::Delete(..)))
    }

    /// The document paths this update writes, in expression order (for ReturnValues
    /// UPDATED_OLD / UPDATED_NEW: project the old or new item on these paths).
    pub fn updated_paths(&self) -> Vec<Path> {
        self.actions.iter().map(|a| a.path().clone()).collect()
    }

    /// The distinct top-level attribute names this update writes, in expression order.
    pub fn top_level_attributes(&self) -> impl Iterator<Item = &str> {
        let mut seen = HashSet::new();
        self.actions
            .iter()
            .map(|a| a.path().top())
            .filter(move |t| seen.insert(*t))
    }
}
