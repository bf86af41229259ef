//! Evaluation of condition trees against an item.
//!
//! Owns: DynamoDB's comparison semantics. A missing attribute or a comparison between values of
//! different types makes the comparison false, never an error; `<>` is the negation of `=`
//! (so a missing attribute is "not equal" to everything). Ordering exists only between two
//! numbers, two strings (UTF-8 byte order) or two binaries (unsigned byte order).
//! Recursion follows the tree, whose depth the parser bounds.

use std::borrow::Cow;
use std::cmp::Ordering;

use ferrodyn_model::{AttributeValue, Error, Item, Number};

use crate::ast::*;

/// Resolves a document path in an item; `None` if any step is missing or of the wrong type.
pub fn resolve<'i>(item: &'i Item, path: &Path) -> Option<&'i AttributeValue> {
    let mut elems = path.elems.iter();
    let mut cur = match elems.next()? {
        PathElem::Attr(a) => item.get(a)?,
        PathElem::Index(_) => return None,
    };
    for e in elems {
        cur = match (cur, e) {
            (AttributeValue::M(m), PathElem::Attr(k)) => m.get(k)?,
            (AttributeValue::L(l), PathElem::Index(i)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Ordering between two values of the same orderable type (N, S, B); `None` otherwise.
pub fn compare(a: &AttributeValue, b: &AttributeValue) -> Option<Ordering> {
    match (a, b) {
        (AttributeValue::N(x), AttributeValue::N(y)) => Some(x.cmp(y)),
        (AttributeValue::S(x), AttributeValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttributeValue::B(x), AttributeValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// `size()` of a value: bytes of S/B, members of sets, entries of M/L; `None` for other types.
pub fn size_of(v: &AttributeValue) -> Option<usize> {
    use AttributeValue::*;
    Some(match v {
        S(s) => s.len(),
        B(b) => b.len(),
        SS(s) => s.len(),
        NS(s) => s.len(),
        BS(s) => s.len(),
        M(m) => m.len(),
        L(l) => l.len(),
        _ => return None,
    })
}

fn operand<'i>(o: &'i Operand, item: &'i Item) -> Option<Cow<'i, AttributeValue>> {
    match o {
        Operand::Path(p) => resolve(item, p).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Size(inner) => {
            let v = operand(inner, item)?;
            let n = size_of(&v)?;
            Some(Cow::Owned(AttributeValue::N(Number::from_i64(
                i64::try_from(n).unwrap_or(i64::MAX),
            ))))
        }
    }
}

fn contains(hay: &AttributeValue, needle: &AttributeValue) -> bool {
    use AttributeValue::*;
    match (hay, needle) {
        (S(h), S(n)) => h.contains(n.as_str()),
        (B(h), B(n)) => n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice()),
        (SS(h), S(n)) => h.contains(n),
        (NS(h), N(n)) => h.contains(n),
        (BS(h), B(n)) => h.contains(n),
        (L(h), n) => h.contains(n),
        _ => false,
    }
}

fn begins_with(v: &AttributeValue, prefix: &AttributeValue) -> bool {
    match (v, prefix) {
        (AttributeValue::S(s), AttributeValue::S(p)) => s.starts_with(p.as_str()),
        (AttributeValue::B(s), AttributeValue::B(p)) => s.starts_with(p),
        _ => false,
    }
}

/// Recursion over the boolean structure only; leaves are evaluated by [`eval_leaf`] so that
/// one nesting level costs a small stack frame even in unoptimised builds.
pub(crate) fn eval(c: &Cond, item: &Item) -> bool {
    match c {
        Cond::True => true,
        Cond::And(v) => {
            for c in v {
                if !eval(c, item) {
                    return false;
                }
            }
            true
        }
        Cond::Or(v) => {
            for c in v {
                if eval(c, item) {
                    return true;
                }
            }
            false
        }
        Cond::Not(c) => !eval(c, item),
        leaf => eval_leaf(leaf, item),
    }
}

#[inline(never)]
fn eval_leaf(c: &Cond, item: &Item) -> bool {
    match c {
        Cond::True | Cond::And(_) | Cond::Or(_) | Cond::Not(_) => eval(c, item),
        Cond::Cmp(op, a, b) => {
            let (Some(a), Some(b)) = (operand(a, item), operand(b, item)) else {
                return *op == CmpOp::Ne;
            };
            match op {
                CmpOp::Eq => a == b,
                CmpOp::Ne => a != b,
                CmpOp::Lt => compare(&a, &b) == Some(Ordering::Less),
                CmpOp::Le => matches!(compare(&a, &b), Some(Ordering::Less | Ordering::Equal)),
                CmpOp::Gt => compare(&a, &b) == Some(Ordering::Greater),
                CmpOp::Ge => matches!(compare(&a, &b), Some(Ordering::Greater | Ordering::Equal)),
            }
        }
        Cond::Between(x, lo, hi) => {
            let (Some(x), Some(lo), Some(hi)) =
                (operand(x, item), operand(lo, item), operand(hi, item))
            else {
                return false;
            };
            matches!(compare(&x, &lo), Some(Ordering::Greater | Ordering::Equal))
                && matches!(compare(&x, &hi), Some(Ordering::Less | Ordering::Equal))
        }
        Cond::In(x, list) => {
            let Some(x) = operand(x, item) else {
                return false;
            };
            list.iter()
                .any(|o| operand(o, item).is_some_and(|v| *v == *x))
        }
        Cond::AttributeExists(p) => resolve(item, p).is_some(),
        Cond::AttributeNotExists(p) => resolve(item, p).is_none(),
        Cond::AttributeType(p, t) => resolve(item, p).is_some_and(|v| v.type_name() == t),
        Cond::BeginsWith(a, b) => match (operand(a, item), operand(b, item)) {
            (Some(a), Some(b)) => begins_with(&a, &b),
            _ => false,
        },
        Cond::Contains(a, b) => match (operand(a, item), operand(b, item)) {
            (Some(a), Some(b)) => contains(&a, &b),
            _ => false,
        },
    }
}

impl Condition {
    /// Evaluates the condition; a missing item is evaluated as an empty item.
    pub fn eval(&self, item: &Item) -> Result<bool, Error> {
        Ok(eval(&self.root, item))
    }

    /// Every document path the condition reads (for attribute-level checks by callers).
    pub fn paths(&self) -> Vec<&Path> {
        fn op<'c>(o: &'c Operand, out: &mut Vec<&'c Path>) {
            match o {
                Operand::Path(p) => out.push(p),
                Operand::Value(_) => {}
                Operand::Size(i) => op(i, out),
            }
        }
        fn walk<'c>(c: &'c Cond, out: &mut Vec<&'c Path>) {
            match c {
                Cond::True => {}
                Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| walk(c, out)),
                Cond::Not(c) => walk(c, out),
                Cond::Cmp(_, a, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
                    op(a, out);
                    op(b, out);
                }
                Cond::Between(a, b, c) => {
                    op(a, out);
                    op(b, out);
                    op(c, out);
                }
                Cond::In(a, l) => {
                    op(a, out);
                    l.iter().for_each(|o| op(o, out));
                }
                Cond::AttributeExists(p)
                | Cond::AttributeNotExists(p)
                | Cond::AttributeType(p, _) => out.push(p),
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}
