//! Recursive-descent parser and validator for condition, update and projection expressions.
//!
//! Owns: the grammar, DynamoDB's syntax-error wording, placeholder resolution (through the
//! [`Resolver`]), and the parse-time checks DynamoDB makes before touching any item (function
//! names and contexts, operand counts, constant operand types, path overlaps, limits).
//!
//! Pipeline per expression: `lex` -> raw tree (placeholders already looked up; the first
//! reserved-word or undefined-placeholder problem is *deferred* so that a later syntax error
//! still wins) -> deferred error, if any -> lowering into the [`crate::ast`] tree with
//! validation.
//!
//! Invariants: every recursion goes through [`Parser::enter`], so nesting never exceeds
//! [`MAX_DEPTH`]; the operator count stops parsing as soon as it exceeds [`MAX_OPERATORS`];
//! error messages are returned without the "Invalid XExpression: " prefix (the caller adds it).

use ferrodyn_model::AttributeValue;

use crate::ast::*;
use crate::lexer::{lex, Tok, Token};
use crate::reserved::is_reserved;
use crate::Resolver;

/// Maximum nesting of parentheses and function calls.
pub const MAX_DEPTH: usize = 300;
/// Maximum number of operators (comparators, AND/OR/NOT, BETWEEN, IN, functions, +/-).
pub const MAX_OPERATORS: usize = 300;
/// Maximum expression size in bytes.
pub const MAX_EXPRESSION_SIZE: usize = 4096;
/// Maximum number of elements of a document path.
pub const MAX_PATH_DEPTH: usize = 32;
/// Maximum number of operands on the right of IN.
pub const MAX_IN_OPERANDS: usize = 100;

type PResult<T> = Result<T, String>;

#[derive(Debug)]
enum RawOperand {
    Path(Path),
    Value(AttributeValue),
    Call(String, Vec<RawOperand>),
}

#[derive(Debug)]
enum RawCond {
    And(Vec<RawCond>),
    Or(Vec<RawCond>),
    Not(Box<RawCond>),
    Cmp(CmpOp, RawOperand, RawOperand),
    Between(RawOperand, RawOperand, RawOperand),
    In(RawOperand, Vec<RawOperand>),
    Call(String, Vec<RawOperand>),
    Paren(Box<RawCond>),
}

#[derive(Debug)]
enum RawSetValue {
    Op(RawOperand),
    Plus(RawOperand, RawOperand),
    Minus(RawOperand, RawOperand),
}

#[derive(Debug)]
enum RawAction {
    Set(Path, RawSetValue),
    Remove(Path),
    Add(Path, AttributeValue),
    Delete(Path, AttributeValue),
}

struct Parser<'s, 'r, 'a> {
    src: &'s str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    ops: usize,
    /// First reserved-word / placeholder error, reported only if parsing succeeds.
    deferred: Option<String>,
    res: &'r mut Resolver<'a>,
}

/// Checks shared by every expression kind before parsing: size and emptiness.
fn precheck(text: &str) -> PResult<()> {
    if text.len() > MAX_EXPRESSION_SIZE {
        return Err(format!(
            "Expression size has exceeded the maximum allowed size; expression size: {}",
            text.len()
        ));
    }
    if text.trim().is_empty() {
        return Err("The expression can not be empty;".to_string());
    }
    Ok(())
}

impl<'s, 'r, 'a> Parser<'s, 'r, 'a> {
    fn new(src: &'s str, res: &'r mut Resolver<'a>) -> Self {
        Parser {
            src,
            toks: lex(src),
            pos: 0,
            depth: 0,
            ops: 0,
            deferred: None,
            res,
        }
    }

    fn peek(&self) -> Token {
        self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, off: usize) -> Token {
        self.toks[(self.pos + off).min(self.toks.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: Token) -> &'s str {
        &self.src[t.start..t.end]
    }

    fn is_kw(&self, t: Token, kw: &str) -> bool {
        t.kind == Tok::Ident && self.text(t).eq_ignore_ascii_case(kw)
    }

    /// `Syntax error; token: "T", near: "N"` where N spans the previous token through the next.
    #[cold]
    #[inline(never)]
    fn syntax(&self) -> String {
        let i = self.pos.min(self.toks.len() - 1);
        let t = self.toks[i];
        let token = if t.kind == Tok::Eof {
            "<EOF>"
        } else {
            self.text(t)
        };
        let start = if i > 0 {
            self.toks[i - 1].start
        } else {
            t.start
        };
        let end = if t.kind == Tok::Eof {
            if i > 0 {
                self.toks[i - 1].end
            } else {
                t.end
            }
        } else {
            self.toks[i + 1].end
        };
        format!(
            "Syntax error; token: \"{token}\", near: \"{}\"",
            &self.src[start..end]
        )
    }

    fn expect(&mut self, kind: Tok) -> PResult<Token> {
        if self.peek().kind == kind {
            Ok(self.advance())
        } else {
            Err(self.syntax())
        }
    }

    fn defer(&mut self, msg: String) {
        if self.deferred.is_none() {
            self.deferred = Some(msg);
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("The expression has redundant parentheses;".to_string());
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn count_op(&mut self) -> PResult<()> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(format!(
                "The expression contains too many operators; operator count: {}",
                self.ops
            ));
        }
        Ok(())
    }

    // ---- paths and operands ----

    /// One name component (`ident` or `#ref`) of a path; the token is already consumed.
    fn name_component(&mut self, t: Token) -> String {
        let text = self.text(t);
        if t.kind == Tok::NameRef {
            match self.res.name(text) {
                Some(n) => n,
                None => {
                    self.defer(format!(
                        "An expression attribute name used in the document path is not defined; attribute name: {text}"
                    ));
                    String::new()
                }
            }
        } else {
            if is_reserved(text) {
                self.defer(format!(
                    "Attribute name is a reserved keyword; reserved keyword: {text}"
                ));
            }
            text.to_string()
        }
    }

    /// A document path whose first token (Ident or NameRef) is next.
    #[inline(never)]
    fn parse_path(&mut self) -> PResult<Path> {
        let t = self.peek();
        if !matches!(t.kind, Tok::Ident | Tok::NameRef) {
            return Err(self.syntax());
        }
        self.advance();
        let mut elems = vec![PathElem::Attr(self.name_component(t))];
        loop {
            match self.peek().kind {
                Tok::Dot => {
                    self.advance();
                    let t = self.peek();
                    if !matches!(t.kind, Tok::Ident | Tok::NameRef) {
                        return Err(self.syntax());
                    }
                    self.advance();
                    elems.push(PathElem::Attr(self.name_component(t)));
                }
                Tok::LBracket => {
                    self.advance();
                    let t = self.expect(Tok::Number)?;
                    self.expect(Tok::RBracket)?;
                    let digits = self.text(t);
                    match digits.parse::<u32>() {
                        Ok(n) if n <= i32::MAX as u32 => elems.push(PathElem::Index(n as usize)),
                        _ => {
                            self.defer(format!(
                                "List index is not within the allowable range; index: [{digits}]"
                            ));
                            elems.push(PathElem::Index(0));
                        }
                    }
                }
                _ => break,
            }
        }
        if elems.len() > MAX_PATH_DEPTH {
            self.defer(format!(
                "The document path has too many nesting levels; nesting levels: {}",
                elems.len()
            ));
        }
        Ok(Path { elems })
    }

    #[inline(never)]
    fn value_ref(&mut self, t: Token) -> AttributeValue {
        let text = self.text(t);
        match self.res.value(text) {
            Some(v) => v,
            None => {
                self.defer(format!(
                    "An expression attribute value used in expression is not defined; attribute value: {text}"
                ));
                AttributeValue::Null
            }
        }
    }

    /// `name(operand, ...)`; `t` is the name token, still unconsumed.
    fn parse_call(&mut self, t: Token) -> PResult<RawOperand> {
        self.advance();
        self.advance();
        self.count_op()?;
        self.enter()?;
        let mut args = Vec::new();
        loop {
            args.push(self.parse_operand()?);
            if self.peek().kind != Tok::Comma {
                break;
            }
            self.advance();
        }
        self.expect(Tok::RParen)?;
        self.leave();
        Ok(RawOperand::Call(self.text(t).to_string(), args))
    }

    fn parse_operand(&mut self) -> PResult<RawOperand> {
        let t = self.peek();
        match t.kind {
            Tok::ValueRef => {
                self.advance();
                Ok(RawOperand::Value(self.value_ref(t)))
            }
            Tok::Ident if self.peek_at(1).kind == Tok::LParen => self.parse_call(t),
            Tok::Ident | Tok::NameRef => Ok(RawOperand::Path(self.parse_path()?)),
            _ => Err(self.syntax()),
        }
    }

    // ---- conditions ----

    /// A whole condition: AND/OR/NOT/parentheses by shunting-yard over explicit stacks, so
    /// parenthesis nesting costs heap, not stack. Precedence: NOT > AND > OR.
    fn parse_cond(&mut self) -> PResult<RawCond> {
        #[derive(Clone, Copy, PartialEq)]
        enum Op {
            LParen,
            Not,
            And,
            Or,
        }
        fn reduce(out: &mut Vec<RawCond>, op: Op) -> PResult<()> {
            let missing = || "internal: condition stack underflow".to_string();
            let b = out.pop().ok_or_else(missing)?;
            let r = match op {
                Op::Not => RawCond::Not(Box::new(b)),
                Op::And | Op::Or => {
                    let a = out.pop().ok_or_else(missing)?;
                    match (op, a) {
                        (Op::And, RawCond::And(mut v)) | (Op::Or, RawCond::Or(mut v)) => {
                            v.push(b);
                            if op == Op::And {
                                RawCond::And(v)
                            } else {
                                RawCond::Or(v)
                            }
                        }
                        (Op::And, a) => RawCond::And(vec![a, b]),
                        (_, a) => RawCond::Or(vec![a, b]),
                    }
                }
                Op::LParen => return Err(missing()),
            };
            out.push(r);
            Ok(())
        }
        let mut ops: Vec<Op> = Vec::new();
        let mut out: Vec<RawCond> = Vec::new();
        let mut open = 0usize;
        let mut want_operand = true;
        loop {
            let t = self.peek();
            if want_operand {
                if t.kind == Tok::LParen {
                    self.advance();
                    open += 1;
                    if open > MAX_DEPTH {
                        return Err("The expression has redundant parentheses;".to_string());
                    }
                    ops.push(Op::LParen);
                } else if self.is_kw(t, "NOT") {
                    self.advance();
                    self.count_op()?;
                    ops.push(Op::Not);
                } else {
                    out.push(self.parse_primary()?);
                    want_operand = false;
                }
                continue;
            }
            let (op, binds) = if self.is_kw(t, "AND") {
                (Op::And, &[Op::Not, Op::And][..])
            } else if self.is_kw(t, "OR") {
                (Op::Or, &[Op::Not, Op::And, Op::Or][..])
            } else if t.kind == Tok::RParen && open > 0 {
                self.advance();
                while let Some(top) = ops.pop() {
                    if top == Op::LParen {
                        break;
                    }
                    reduce(&mut out, top)?;
                }
                open -= 1;
                let inner = out.pop().ok_or("internal: empty parentheses")?;
                if matches!(inner, RawCond::Paren(_)) {
                    return Err("The expression has redundant parentheses;".to_string());
                }
                out.push(RawCond::Paren(Box::new(inner)));
                continue;
            } else {
                break;
            };
            self.advance();
            self.count_op()?;
            while let Some(&top) = ops.last() {
                if !binds.contains(&top) {
                    break;
                }
                ops.pop();
                reduce(&mut out, top)?;
            }
            ops.push(op);
            want_operand = true;
        }
        if open > 0 {
            return Err(self.syntax());
        }
        while let Some(top) = ops.pop() {
            reduce(&mut out, top)?;
        }
        out.pop().ok_or_else(|| self.syntax())
    }

    fn parse_primary(&mut self) -> PResult<RawCond> {
        let lhs = self.parse_operand()?;
        let t = self.peek();
        let cmp = match t.kind {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = cmp {
            self.advance();
            self.count_op()?;
            let rhs = self.parse_operand()?;
            return Ok(RawCond::Cmp(op, lhs, rhs));
        }
        if self.is_kw(t, "BETWEEN") {
            self.advance();
            self.count_op()?;
            let lo = self.parse_operand()?;
            if !self.is_kw(self.peek(), "AND") {
                return Err(self.syntax());
            }
            self.advance();
            let hi = self.parse_operand()?;
            return Ok(RawCond::Between(lhs, lo, hi));
        }
        if self.is_kw(t, "IN") {
            self.advance();
            self.count_op()?;
            self.expect(Tok::LParen)?;
            let mut list = vec![self.parse_operand()?];
            while self.peek().kind == Tok::Comma {
                self.advance();
                list.push(self.parse_operand()?);
            }
            self.expect(Tok::RParen)?;
            return Ok(RawCond::In(lhs, list));
        }
        match lhs {
            RawOperand::Call(name, args) => Ok(RawCond::Call(name, args)),
            _ => Err(self.syntax()),
        }
    }

    fn finish_parse(&self) -> PResult<()> {
        if self.peek().kind != Tok::Eof {
            return Err(self.syntax());
        }
        if let Some(e) = &self.deferred {
            return Err(e.clone());
        }
        Ok(())
    }

    // ---- update ----

    fn parse_update(&mut self) -> PResult<Vec<RawAction>> {
        const CLAUSES: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];
        let mut seen = [false; 4];
        let mut actions = Vec::new();
        while self.peek().kind != Tok::Eof {
            let t = self.peek();
            let Some(clause) = CLAUSES.iter().position(|c| self.is_kw(t, c)) else {
                return Err(self.syntax());
            };
            if seen[clause] {
                return Err(format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    CLAUSES[clause]
                ));
            }
            seen[clause] = true;
            self.advance();
            loop {
                let path = self.parse_path()?;
                let action = match clause {
                    0 => {
                        self.expect(Tok::Eq)?;
                        let a = self.parse_operand()?;
                        let v = match self.peek().kind {
                            Tok::Plus => {
                                self.advance();
                                self.count_op()?;
                                RawSetValue::Plus(a, self.parse_operand()?)
                            }
                            Tok::Minus => {
                                self.advance();
                                self.count_op()?;
                                RawSetValue::Minus(a, self.parse_operand()?)
                            }
                            _ => RawSetValue::Op(a),
                        };
                        RawAction::Set(path, v)
                    }
                    1 => RawAction::Remove(path),
                    _ => {
                        let t = self.expect(Tok::ValueRef)?;
                        let v = self.value_ref(t);
                        if clause == 2 {
                            RawAction::Add(path, v)
                        } else {
                            RawAction::Delete(path, v)
                        }
                    }
                };
                actions.push(action);
                if self.peek().kind == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        Ok(actions)
    }
}

// ---- lowering and validation ----

fn type_error(op: &str, v: &AttributeValue) -> String {
    type_error_named(op, v.type_name())
}

fn type_error_named(op: &str, type_name: &str) -> String {
    format!(
        "Incorrect operand type for operator or function; operator or function: {op}, operand type: {type_name}"
    )
}

fn arity_error(f: &str, n: usize) -> String {
    format!(
        "Incorrect number of operands for operator or function; operator or function: {f}, number of operands: {n}"
    )
}

fn needs_path(f: &str) -> String {
    format!("Operator or function requires a document path; operator or function: {f}")
}

fn misuse(f: &str) -> String {
    format!("The function is not allowed to be used this way in an expression; function: {f}")
}

const BOOL_FUNCTIONS: [&str; 5] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];
const UPDATE_FUNCTIONS: [&str; 2] = ["if_not_exists", "list_append"];

/// The type descriptors `attribute_type` accepts.
pub const TYPE_NAMES: [&str; 10] = ["S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"];

fn lower_operand(raw: RawOperand) -> PResult<Operand> {
    match raw {
        RawOperand::Path(p) => Ok(Operand::Path(p)),
        RawOperand::Value(v) => Ok(Operand::Value(v)),
        RawOperand::Call(name, mut args) => match name.as_str() {
            "size" => {
                if args.len() != 1 {
                    return Err(arity_error("size", args.len()));
                }
                let arg = lower_operand(args.remove(0))?;
                match &arg {
                    Operand::Value(v) if !has_size(v) => return Err(type_error("size", v)),
                    Operand::Size(_) => return Err(type_error_named("size", "N")),
                    _ => {}
                }
                Ok(Operand::Size(Box::new(arg)))
            }
            n if BOOL_FUNCTIONS.contains(&n) => Err(misuse(n)),
            n if UPDATE_FUNCTIONS.contains(&n) => Err(format!(
                "The function is not allowed in a condition expression; function: {n}"
            )),
            n => Err(format!("Invalid function name; function: {n}")),
        },
    }
}

fn has_size(v: &AttributeValue) -> bool {
    use AttributeValue::*;
    matches!(v, S(_) | B(_) | SS(_) | NS(_) | BS(_) | M(_) | L(_))
}

fn check_ordered(op: &str, o: &Operand) -> PResult<()> {
    if let Operand::Value(v) = o {
        if !matches!(
            v,
            AttributeValue::N(_) | AttributeValue::S(_) | AttributeValue::B(_)
        ) {
            return Err(type_error(op, v));
        }
    }
    Ok(())
}

fn render_value(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => format!("{{S:{s}}}"),
        AttributeValue::N(n) => format!("{{N:{n}}}"),
        other => format!("{{{}:{other:?}}}", other.type_name()),
    }
}

/// Recursion over the boolean structure only; the per-leaf work lives in [`lower_leaf`] so
/// that one nesting level costs a small stack frame even in unoptimised builds.
fn lower_cond(raw: RawCond) -> PResult<Cond> {
    match raw {
        RawCond::Paren(inner) => lower_cond(*inner),
        RawCond::And(v) => lower_list(v).map(Cond::And),
        RawCond::Or(v) => lower_list(v).map(Cond::Or),
        RawCond::Not(c) => Ok(Cond::Not(Box::new(lower_cond(*c)?))),
        leaf => lower_leaf(leaf),
    }
}

fn lower_list(v: Vec<RawCond>) -> PResult<Vec<Cond>> {
    let mut out = Vec::with_capacity(v.len());
    for c in v {
        out.push(lower_cond(c)?);
    }
    Ok(out)
}

#[inline(never)]
fn lower_leaf(raw: RawCond) -> PResult<Cond> {
    Ok(match raw {
        RawCond::Paren(_) | RawCond::And(_) | RawCond::Or(_) | RawCond::Not(_) => {
            return lower_cond(raw)
        }
        RawCond::Cmp(op, a, b) => {
            let a = lower_operand(a)?;
            let b = lower_operand(b)?;
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                check_ordered(op.as_str(), &a)?;
                check_ordered(op.as_str(), &b)?;
            }
            Cond::Cmp(op, a, b)
        }
        RawCond::Between(x, lo, hi) => {
            let x = lower_operand(x)?;
            let lo = lower_operand(lo)?;
            let hi = lower_operand(hi)?;
            for o in [&x, &lo, &hi] {
                check_ordered("BETWEEN", o)?;
            }
            if let (Operand::Value(l), Operand::Value(h)) = (&lo, &hi) {
                if crate::eval::compare(l, h) == Some(std::cmp::Ordering::Greater) {
                    return Err(format!(
                        "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {}, upper operand: AttributeValue: {}",
                        render_value(l),
                        render_value(h)
                    ));
                }
            }
            Cond::Between(x, lo, hi)
        }
        RawCond::In(x, list) => {
            if list.len() > MAX_IN_OPERANDS {
                return Err(format!(
                    "Too many operands for the IN operator; number of operands: {}; the maximum allowed is {MAX_IN_OPERANDS}",
                    list.len()
                ));
            }
            Cond::In(
                lower_operand(x)?,
                list.into_iter()
                    .map(lower_operand)
                    .collect::<PResult<_>>()?,
            )
        }
        RawCond::Call(name, args) => lower_bool_call(name, args)?,
    })
}

fn lower_bool_call(name: String, mut args: Vec<RawOperand>) -> PResult<Cond> {
    let n = name.as_str();
    let want = match n {
        "attribute_exists" | "attribute_not_exists" => 1,
        "attribute_type" | "begins_with" | "contains" => 2,
        "size" => return Err(misuse(n)),
        _ if UPDATE_FUNCTIONS.contains(&n) => {
            return Err(format!(
                "The function is not allowed in a condition expression; function: {n}"
            ))
        }
        _ => return Err(format!("Invalid function name; function: {n}")),
    };
    if args.len() != want {
        return Err(arity_error(n, args.len()));
    }
    let second = if want == 2 {
        Some(lower_operand(args.remove(1))?)
    } else {
        None
    };
    let first = lower_operand(args.remove(0))?;
    match (n, first, second) {
        ("attribute_exists", Operand::Path(p), _) => Ok(Cond::AttributeExists(p)),
        ("attribute_not_exists", Operand::Path(p), _) => Ok(Cond::AttributeNotExists(p)),
        ("attribute_type", Operand::Path(p), Some(Operand::Value(AttributeValue::S(t)))) => {
            if TYPE_NAMES.contains(&t.as_str()) {
                Ok(Cond::AttributeType(p, t))
            } else {
                Err(format!(
                    "Invalid attribute type name found; type: {t}, valid types: {{ B, NULL, SS, BOOL, L, BS, N, NS, S, M }}"
                ))
            }
        }
        ("attribute_type", Operand::Path(_), Some(Operand::Value(v))) => {
            Err(type_error("attribute_type", &v))
        }
        ("attribute_type", Operand::Path(_), Some(_)) => Err(format!(
            "Operator or function requires a value; operator or function: {n}"
        )),
        ("attribute_exists" | "attribute_not_exists" | "attribute_type", _, _) => {
            Err(needs_path(n))
        }
        ("begins_with", a, Some(b)) => {
            for o in [&a, &b] {
                match o {
                    Operand::Value(v)
                        if !matches!(v, AttributeValue::S(_) | AttributeValue::B(_)) =>
                    {
                        return Err(type_error(n, v))
                    }
                    Operand::Size(_) => return Err(type_error_named(n, "N")),
                    _ => {}
                }
            }
            Ok(Cond::BeginsWith(a, b))
        }
        ("contains", a, Some(b)) => Ok(Cond::Contains(a, b)),
        _ => Err(format!("Invalid function name; function: {n}")),
    }
}

fn lower_set_operand(raw: RawOperand, in_list_append: bool) -> PResult<SetOperand> {
    match raw {
        RawOperand::Path(p) => Ok(SetOperand::Path(p)),
        RawOperand::Value(v) => Ok(SetOperand::Value(v)),
        RawOperand::Call(name, mut args) => match name.as_str() {
            "if_not_exists" => {
                if args.len() != 2 {
                    return Err(arity_error("if_not_exists", args.len()));
                }
                let dflt = lower_set_operand(args.remove(1), in_list_append)?;
                match args.remove(0) {
                    RawOperand::Path(p) => Ok(SetOperand::IfNotExists(p, Box::new(dflt))),
                    _ => Err(needs_path("if_not_exists")),
                }
            }
            "list_append" => {
                if in_list_append {
                    return Err(misuse("list_append"));
                }
                if args.len() != 2 {
                    return Err(arity_error("list_append", args.len()));
                }
                let b = lower_set_operand(args.remove(1), true)?;
                let a = lower_set_operand(args.remove(0), true)?;
                for o in [&a, &b] {
                    if let SetOperand::Value(v) = o {
                        if !matches!(v, AttributeValue::L(_)) {
                            return Err(type_error("list_append", v));
                        }
                    }
                }
                Ok(SetOperand::ListAppend(Box::new(a), Box::new(b)))
            }
            n if BOOL_FUNCTIONS.contains(&n) || n == "size" => Err(format!(
                "The function is not allowed in an update expression; function: {n}"
            )),
            n => Err(format!("Invalid function name; function: {n}")),
        },
    }
}

fn check_arith(op: &str, o: &SetOperand) -> PResult<()> {
    if let SetOperand::Value(v) = o {
        if !matches!(v, AttributeValue::N(_)) {
            return Err(type_error(op, v));
        }
    }
    Ok(())
}

/// DynamoDB's long type names, used in ADD/DELETE operand messages.
pub(crate) fn long_type_name(v: &AttributeValue) -> &'static str {
    use AttributeValue::*;
    match v {
        S(_) => "STRING",
        N(_) => "NUMBER",
        B(_) => "BINARY",
        Bool(_) => "BOOLEAN",
        Null => "NULL",
        M(_) => "MAP",
        L(_) => "LIST",
        SS(_) => "STRING_SET",
        NS(_) => "NUMBER_SET",
        BS(_) => "BINARY_SET",
    }
}

fn lower_action(raw: RawAction) -> PResult<Action> {
    Ok(match raw {
        RawAction::Set(p, v) => {
            let v = match v {
                RawSetValue::Op(a) => SetValue::Operand(lower_set_operand(a, false)?),
                RawSetValue::Plus(a, b) => {
                    let (a, b) = (lower_set_operand(a, false)?, lower_set_operand(b, false)?);
                    check_arith("+", &a)?;
                    check_arith("+", &b)?;
                    SetValue::Plus(a, b)
                }
                RawSetValue::Minus(a, b) => {
                    let (a, b) = (lower_set_operand(a, false)?, lower_set_operand(b, false)?);
                    check_arith("-", &a)?;
                    check_arith("-", &b)?;
                    SetValue::Minus(a, b)
                }
            };
            Action::Set(p, v)
        }
        RawAction::Remove(p) => Action::Remove(p),
        RawAction::Add(p, v) => {
            use AttributeValue::*;
            if !matches!(v, N(_) | SS(_) | NS(_) | BS(_)) {
                return Err(format!(
                    "Incorrect operand type for operator or function; operator: ADD, operand type: {}, typeSet: ALLOWED_FOR_ADD_OPERAND",
                    long_type_name(&v)
                ));
            }
            Action::Add(p, v)
        }
        RawAction::Delete(p, v) => {
            use AttributeValue::*;
            if !matches!(v, SS(_) | NS(_) | BS(_)) {
                return Err(format!(
                    "Incorrect operand type for operator or function; operator: DELETE, operand type: {}, typeSet: ALLOWED_FOR_DELETE_OPERAND",
                    long_type_name(&v)
                ));
            }
            Action::Delete(p, v)
        }
    })
}

/// Rejects two paths of which one is a prefix of the other ("overlap") or which diverge into
/// a map key on one side and a list index on the other ("conflict").
pub(crate) fn check_overlaps(paths: &[&Path]) -> PResult<()> {
    for i in 0..paths.len() {
        for j in 0..i {
            let (a, b) = (paths[j], paths[i]);
            let mut diverged = false;
            for (x, y) in a.elems.iter().zip(&b.elems) {
                if x != y {
                    if matches!(
                        (x, y),
                        (PathElem::Attr(_), PathElem::Index(_))
                            | (PathElem::Index(_), PathElem::Attr(_))
                    ) {
                        return Err(format!(
                            "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                        ));
                    }
                    diverged = true;
                    break;
                }
            }
            if !diverged {
                return Err(format!(
                    "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {a}, path two: {b}"
                ));
            }
        }
    }
    Ok(())
}

// ---- entry points (messages without prefix) ----

pub(crate) fn parse_condition(text: &str, res: &mut Resolver<'_>) -> PResult<Condition> {
    precheck(text)?;
    let mut p = Parser::new(text, res);
    let raw = p.parse_cond()?;
    p.finish_parse()?;
    Ok(Condition {
        root: lower_cond(raw)?,
    })
}

pub(crate) fn parse_update(text: &str, res: &mut Resolver<'_>) -> PResult<Update> {
    precheck(text)?;
    let mut p = Parser::new(text, res);
    let raw = p.parse_update()?;
    p.finish_parse()?;
    let actions = raw
        .into_iter()
        .map(lower_action)
        .collect::<PResult<Vec<_>>>()?;
    let paths: Vec<&Path> = actions.iter().map(Action::path).collect();
    check_overlaps(&paths)?;
    Ok(Update {
        actions,
        legacy: false,
    })
}

pub(crate) fn parse_projection(text: &str, res: &mut Resolver<'_>) -> PResult<Vec<Path>> {
    precheck(text)?;
    let mut p = Parser::new(text, res);
    let mut paths = vec![p.parse_path()?];
    while p.peek().kind == Tok::Comma {
        p.advance();
        paths.push(p.parse_path()?);
    }
    p.finish_parse()?;
    let refs: Vec<&Path> = paths.iter().collect();
    check_overlaps(&refs)?;
    Ok(paths)
}
