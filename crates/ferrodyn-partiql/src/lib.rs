//! PartiQL for DynamoDB as a pure library (no I/O).
//!
//! Pipeline: `lexer` (text → tokens with byte positions) → `parser` (tokens → [`ast`], depth
//! bounded, DynamoDB's syntax-error messages) → `translate` (WHERE clauses and SET/REMOVE
//! actions → expression text over placeholders, parameters and literals → attribute values;
//! key equalities and sort-key conditions picked out of WHERE clauses). The engine runs the
//! result through its ordinary expression paths (ferrodyn-expr), so PartiQL has no evaluator
//! of its own.
#![forbid(unsafe_code)]

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod translate;

pub use ast::{Expr, Path, PathElem, Projection, Returning, Select, Statement, UpdateAction};
pub use parser::{parse, Parsed, MALFORMED};
pub use translate::{constant, Placeholders, PARAM_COUNT};
