//! The resolved expression tree shared by every expression kind and by the legacy translation.
//!
//! Owns: document paths, condition trees, update actions and projections, after placeholder
//! resolution and validation. Invariants of a tree built by this crate:
//! - no placeholders remain (`#n` and `:v` are replaced by names and values);
//! - every function is known, has the right number of operands and is legal in its context;
//! - condition trees are at most [`crate::parser::MAX_DEPTH`] levels deep (And/Or are n-ary),
//!   so recursive evaluation and drop are bounded;
//! - a [`Path`] has at least one element and starts with [`PathElem::Attr`].

use std::fmt;

use ferrodyn_model::AttributeValue;

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElem {
    /// A top-level attribute name or a key of a nested map.
    Attr(String),
    /// A list index.
    Index(usize),
}

/// A document path: an attribute name followed by `.name` and `[index]` elements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    pub elems: Vec<PathElem>,
}

impl Path {
    /// A path naming one top-level attribute.
    pub fn attr(name: impl Into<String>) -> Path {
        Path {
            elems: vec![PathElem::Attr(name.into())],
        }
    }

    /// The top-level attribute this path starts in.
    pub fn top(&self) -> &str {
        match self.elems.first() {
            Some(PathElem::Attr(a)) => a,
            // Unreachable by construction; an empty name matches nothing.
            _ => "",
        }
    }

    /// Whether this path is a single top-level attribute.
    pub fn is_top_level(&self) -> bool {
        self.elems.len() == 1
    }

    /// Whether `self` is a (non-strict) prefix of `other`.
    pub fn is_prefix_of(&self, other: &Path) -> bool {
        self.elems.len() <= other.elems.len() && other.elems[..self.elems.len()] == self.elems[..]
    }
}

/// DynamoDB's rendering in overlap/conflict messages: `[a, b, [1]]`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, e) in self.elems.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match e {
                PathElem::Attr(a) => f.write_str(a)?,
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        f.write_str("]")
    }
}

/// A value-producing operand of a condition.
#[derive(Debug, Clone)]
pub enum Operand {
    Path(Path),
    Value(AttributeValue),
    /// `size(operand)`: a number, or undefined if the operand has no size.
    Size(Box<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped (`a < b` == `b > a`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// A boolean condition tree.
#[derive(Debug, Clone)]
pub enum Cond {
    /// Always true (an empty legacy condition map).
    True,
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(CmpOp, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    /// `attribute_type(path, :t)`; the type descriptor is validated ("S", "NS", ...).
    AttributeType(Path, String),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

/// A parsed ConditionExpression, FilterExpression or KeyConditionExpression.
#[derive(Debug, Clone)]
pub struct Condition {
    pub root: Cond,
}

/// An operand of a SET action's right-hand side.
#[derive(Debug, Clone)]
pub enum SetOperand {
    Path(Path),
    Value(AttributeValue),
    IfNotExists(Path, Box<SetOperand>),
    ListAppend(Box<SetOperand>, Box<SetOperand>),
}

/// The right-hand side of a SET action.
#[derive(Debug, Clone)]
pub enum SetValue {
    Operand(SetOperand),
    Plus(SetOperand, SetOperand),
    Minus(SetOperand, SetOperand),
}

/// One update action, in expression order.
#[derive(Debug, Clone)]
pub enum Action {
    Set(Path, SetValue),
    Remove(Path),
    /// ADD of a number or a set (UpdateExpression).
    Add(Path, AttributeValue),
    /// DELETE of set members.
    Delete(Path, AttributeValue),
    /// Legacy AttributeUpdates ADD: numbers, sets, and appending to lists.
    LegacyAdd(Path, AttributeValue),
}

impl Action {
    pub fn path(&self) -> &Path {
        match self {
            Action::Set(p, _)
            | Action::Remove(p)
            | Action::Add(p, _)
            | Action::Delete(p, _)
            | Action::LegacyAdd(p, _) => p,
        }
    }
}

/// A parsed UpdateExpression (or translated AttributeUpdates).
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub actions: Vec<Action>,
    /// Set for legacy AttributeUpdates, whose runtime errors are worded differently.
    pub legacy: bool,
}
