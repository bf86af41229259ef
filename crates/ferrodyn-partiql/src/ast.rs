//! The parsed form of a PartiQL statement, before parameters are bound.
//!
//! Invariants of a tree built by the parser: a [`Path`] has at least one element and starts with
//! a name; [`Expr::Param`] indices count the `?` markers from 0 in text order; trees are at most
//! [`crate::parser::MAX_DEPTH`] levels deep, so recursive walks over them are bounded.

use ferrodyn_model::AttributeValue;

/// One step of a document path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathElem {
    Name(String),
    Index(u32),
}

/// `a.b[0].c`, `"quoted name"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub elems: Vec<PathElem>,
}

impl Path {
    /// The path's first (top-level attribute) name.
    pub fn top(&self) -> &str {
        match self.elems.first() {
            Some(PathElem::Name(n)) => n,
            _ => "",
        }
    }

    /// The single top-level attribute this path names, if it is just one name.
    pub fn as_attr(&self) -> Option<&str> {
        match self.elems.as_slice() {
            [PathElem::Name(n)] => Some(n),
            _ => None,
        }
    }
}

/// The comparison operators, shared with the expression language the statements become.
pub use ferrodyn_expr::ast::CmpOp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
}

/// `IS [NOT] MISSING` / `IS [NOT] NULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsKind {
    Missing,
    Null,
}

/// Value expressions and conditions (PartiQL does not separate them syntactically).
#[derive(Debug, Clone)]
pub enum Expr {
    Path(Path),
    Lit(AttributeValue),
    /// A number literal outside DynamoDB's range or precision (the error message, reported
    /// with the literal's place when its value is used).
    BadNumber(String),
    /// The `n`-th `?` of the statement.
    Param(usize),
    /// `[a, b]` with elements still to be evaluated.
    List(Vec<Expr>),
    /// `{'k': v}`.
    Map(Vec<(String, Expr)>),
    /// `<<a, b>>`.
    Set(Vec<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Between(Box<Expr>, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `x IS [NOT] MISSING|NULL` (`bool`: NOT).
    Is(Box<Expr>, IsKind, bool),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// A function call; the name is lowercased.
    Call(String, Vec<Expr>),
    /// `EXISTS(SELECT ...)` (transactions only).
    Exists(Box<Select>),
}

/// The projection of a SELECT.
#[derive(Debug, Clone)]
pub enum Projection {
    All,
    Paths(Vec<Path>),
}

#[derive(Debug, Clone)]
pub struct Select {
    pub projection: Projection,
    pub table: String,
    pub index: Option<String>,
    pub where_: Option<Expr>,
    /// ORDER BY keys, `true` = DESC.
    pub order_by: Vec<(Path, bool)>,
}

#[derive(Debug, Clone)]
pub struct Insert {
    pub table: String,
    pub value: Expr,
}

#[derive(Debug, Clone)]
pub enum UpdateAction {
    Set(Path, Expr),
    Remove(Path),
}

/// `RETURNING ...` of UPDATE and DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returning {
    AllOld,
    ModifiedOld,
    AllNew,
    ModifiedNew,
}

#[derive(Debug, Clone)]
pub struct Update {
    pub table: String,
    /// `UPDATE "t"."i"`: parsed, refused when run.
    pub index: Option<String>,
    pub actions: Vec<UpdateAction>,
    pub where_: Option<Expr>,
    pub returning: Option<Returning>,
}

#[derive(Debug, Clone)]
pub struct Delete {
    pub table: String,
    /// `DELETE FROM "t"."i"`: parsed, refused when run.
    pub index: Option<String>,
    pub where_: Option<Expr>,
    pub returning: Option<Returning>,
}

#[derive(Debug, Clone)]
pub enum Statement {
    Select(Select),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    /// `EXISTS(SELECT ...)`: a condition check (ExecuteTransaction only).
    Exists(Select),
}

impl Statement {
    /// The table the statement names.
    pub fn table(&self) -> &str {
        match self {
            Statement::Select(s) => &s.table,
            Statement::Insert(s) => &s.table,
            Statement::Update(s) => &s.table,
            Statement::Delete(s) => &s.table,
            Statement::Exists(s) => &s.table,
        }
    }

    /// Whether the statement only reads.
    pub fn is_read(&self) -> bool {
        matches!(self, Statement::Select(_))
    }
}
