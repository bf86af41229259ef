//! Tokens → [`Statement`]: recursive descent with a depth bound.
//!
//! Invariant: every failure is a `ValidationException` whose message starts with DynamoDB's
//! "Statement wasn't well formed, can't be processed: "; nothing here panics on any input.

use ferrodyn_model::{AttributeValue, Error, Number};

use crate::ast::*;
use crate::lexer::{lex, Spanned, Tok};

/// Deepest nesting of expressions, lists, maps and sets the parser accepts.
pub const MAX_DEPTH: usize = 64;

const KEYWORDS: [&str; 31] = [
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IS",
    "BETWEEN",
    "IN",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "SET",
    "REMOVE",
    "RETURNING",
    "VALUE",
    "VALUES",
    "INTO",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MISSING",
    "NULL",
    "TRUE",
    "FALSE",
    "EXISTS",
    "LIMIT",
    "UNION",
    "JOIN",
    "AS",
];

fn is_keyword(s: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(s))
}

/// The message prefix of every syntax error.
pub const MALFORMED: &str = "Statement wasn't well formed, can't be processed: ";

fn malformed(detail: &str) -> Error {
    Error::Validation(format!("{MALFORMED}{detail}"))
}

/// A parsed statement and the number of `?` markers it contains.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub statement: Statement,
    pub params: usize,
}

/// Parses one statement.
pub fn parse(text: &str) -> Result<Parsed, Error> {
    let toks = lex(text);
    let mut p = Parser {
        toks,
        i: 0,
        params: 0,
        depth: 0,
    };
    let statement = p.statement()?;
    if p.eat_punct(";") {
        // A trailing semicolon ends the statement.
    }
    if let Some(t) = p.peek() {
        if matches!(t, Tok::Unknown(_) | Tok::Unterminated) {
            return Err(malformed(""));
        }
        return Err(malformed("Unexpected token after expression"));
    }
    Ok(Parsed {
        statement,
        params: p.params,
    })
}

struct Parser {
    toks: Vec<Spanned>,
    i: usize,
    params: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.i + n).map(|t| &t.tok)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|t| t.tok.clone());
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// The error for the token at the cursor.
    fn unexpected(&self) -> Error {
        match self.peek() {
            None => malformed("Unexpected end of statement"),
            Some(Tok::Ident(s)) if is_keyword(s) => malformed("Unexpected keyword"),
            // Text no token starts with has no detail in DynamoDB's message.
            Some(Tok::Unterminated | Tok::Unknown(_)) => malformed(""),
            Some(_) => malformed("Unexpected token"),
        }
    }

    /// The error where a term (operand or condition) should start.
    fn unexpected_term(&self) -> Error {
        match self.peek() {
            None | Some(Tok::Punct(";" | ")" | "]" | "}" | ">>" | ",")) => {
                malformed("Unexpected term")
            }
            Some(Tok::Punct(_)) => malformed("Unexpected operator"),
            _ => self.unexpected(),
        }
    }

    /// After a table name: an alias is refused with its own message.
    fn no_alias(&self) -> Result<(), Error> {
        let alias = match self.peek() {
            Some(Tok::Quoted(_)) => true,
            Some(Tok::Ident(s)) => !is_keyword(s) || s.eq_ignore_ascii_case("AS"),
            _ => false,
        };
        if alias {
            return Err(Error::validation("Aliasing is not supported"));
        }
        Ok(())
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), Error> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), Error> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    /// An infix operator must have a right-hand side.
    fn infix_rhs(&self) -> Result<(), Error> {
        if matches!(self.peek(), None | Some(Tok::Punct(";"))) {
            return Err(malformed(
                "Missing right-hand side expression of infix operator",
            ));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(malformed("Statement is nested too deeply"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn statement(&mut self) -> Result<Statement, Error> {
        if self.eat_kw("SELECT") {
            return Ok(Statement::Select(self.select_rest()?));
        }
        if self.eat_kw("INSERT") {
            self.expect_kw("INTO")?;
            let table = self.table_name()?;
            if self.is_punct(".") {
                return Err(Error::validation(
                    "FROM clause may only contain a single table name",
                ));
            }
            if !self.eat_kw("VALUE") {
                return Err(match self.peek() {
                    Some(Tok::Ident(s)) if !is_keyword(s) => {
                        malformed("Unexpected token after expression")
                    }
                    _ => self.unexpected(),
                });
            }
            let value = self.expr()?;
            return Ok(Statement::Insert(Insert { table, value }));
        }
        if self.eat_kw("UPDATE") {
            let table = self.table_name()?;
            let index = self.index_qualifier()?;
            self.no_alias()?;
            let mut actions = Vec::new();
            loop {
                if self.eat_kw("SET") {
                    loop {
                        let path = self.path()?;
                        self.expect_punct("=")?;
                        let value = self.expr()?;
                        actions.push(UpdateAction::Set(path, value));
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                } else if self.eat_kw("REMOVE") {
                    loop {
                        actions.push(UpdateAction::Remove(self.path()?));
                        if !self.eat_punct(",") {
                            break;
                        }
                    }
                } else {
                    break;
                }
            }
            if actions.is_empty() {
                return Err(self.unexpected());
            }
            let where_ = self.where_clause()?;
            let returning = self.returning()?;
            return Ok(Statement::Update(Update {
                table,
                index,
                actions,
                where_,
                returning,
            }));
        }
        if self.is_kw("EXISTS") && matches!(self.peek_at(1), Some(Tok::Punct("("))) {
            self.i += 2;
            self.expect_kw("SELECT")?;
            let sel = self.select_rest()?;
            self.expect_punct(")")?;
            return Ok(Statement::Exists(sel));
        }
        if self.eat_kw("DELETE") {
            self.expect_kw("FROM")?;
            let table = self
                .name()
                .map_err(|_| malformed("Expected identifier for simple path"))?;
            let index = self.index_qualifier()?;
            self.no_alias()?;
            let where_ = self.where_clause()?;
            let returning = self.returning()?;
            return Ok(Statement::Delete(Delete {
                table,
                index,
                where_,
                returning,
            }));
        }
        match self.peek() {
            Some(Tok::Ident(s)) if !is_keyword(s) => Err(malformed("Expected data manipulation")),
            _ => Err(self.unexpected_term()),
        }
    }

    fn where_clause(&mut self) -> Result<Option<Expr>, Error> {
        if self.eat_kw("WHERE") {
            if matches!(self.peek(), None | Some(Tok::Punct(";"))) {
                return Err(malformed("Unexpected term"));
            }
            Ok(Some(self.expr()?))
        } else {
            Ok(None)
        }
    }

    fn returning(&mut self) -> Result<Option<Returning>, Error> {
        if !self.eat_kw("RETURNING") {
            return Ok(None);
        }
        let all = if self.eat_kw("ALL") {
            true
        } else if self.eat_kw("MODIFIED") {
            false
        } else {
            return Err(self.unexpected());
        };
        let old = if self.eat_kw("OLD") {
            true
        } else if self.eat_kw("NEW") {
            false
        } else {
            return Err(self.unexpected());
        };
        self.expect_punct("*")?;
        Ok(Some(match (all, old) {
            (true, true) => Returning::AllOld,
            (false, true) => Returning::ModifiedOld,
            (true, false) => Returning::AllNew,
            (false, false) => Returning::ModifiedNew,
        }))
    }

    fn select_rest(&mut self) -> Result<Select, Error> {
        let projection = if self.eat_punct("*") {
            Projection::All
        } else {
            let mut paths = vec![self.path()?];
            while self.eat_punct(",") {
                paths.push(self.path()?);
            }
            Projection::Paths(paths)
        };
        self.expect_kw("FROM")?;
        let table = self.table_name()?;
        let index = self.index_qualifier()?;
        self.no_alias()?;
        let where_ = self.where_clause()?;
        let mut order_by = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let path = self.path()?;
                let desc = if self.eat_kw("DESC") {
                    true
                } else {
                    self.eat_kw("ASC");
                    false
                };
                order_by.push((path, desc));
                if !self.eat_punct(",") {
                    break;
                }
            }
        }
        Ok(Select {
            projection,
            table,
            index,
            where_,
            order_by,
        })
    }

    /// `."index"` after a table name.
    fn index_qualifier(&mut self) -> Result<Option<String>, Error> {
        if self.eat_punct(".") {
            Ok(Some(self.name()?))
        } else {
            Ok(None)
        }
    }

    /// The table name of a statement.
    fn table_name(&mut self) -> Result<String, Error> {
        if self.peek().is_none() {
            return Err(self.unexpected_term());
        }
        self.name()
    }

    /// A table, index or attribute name: an identifier that is not a keyword, or a quoted one.
    fn name(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some(Tok::Quoted(s)) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            Some(Tok::Ident(s)) if !is_keyword(s) => {
                let s = s.clone();
                self.i += 1;
                Ok(s)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn path(&mut self) -> Result<Path, Error> {
        let mut elems = vec![PathElem::Name(self.name()?)];
        self.path_rest(&mut elems)?;
        Ok(Path { elems })
    }

    fn path_rest(&mut self, elems: &mut Vec<PathElem>) -> Result<(), Error> {
        loop {
            if self.eat_punct(".") {
                elems.push(PathElem::Name(self.name()?));
            } else if self.eat_punct("[") {
                let n = match self.next() {
                    Some(Tok::Num(n)) => n.parse::<u32>().map_err(|_| {
                        malformed("List index must be a non-negative integer literal")
                    })?,
                    Some(Tok::Str(s)) => {
                        // `a['key']` is another spelling of `a.key`.
                        self.expect_punct("]")?;
                        elems.push(PathElem::Name(s));
                        continue;
                    }
                    _ => {
                        self.i = self.i.saturating_sub(1);
                        return Err(self.unexpected());
                    }
                };
                self.expect_punct("]")?;
                elems.push(PathElem::Index(n));
            } else {
                return Ok(());
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        self.enter()?;
        let r = self.or();
        self.leave();
        r
    }

    fn or(&mut self) -> Result<Expr, Error> {
        let mut l = self.and()?;
        while self.eat_kw("OR") {
            self.infix_rhs()?;
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, Error> {
        let mut l = self.not()?;
        while self.eat_kw("AND") {
            self.infix_rhs()?;
            let r = self.not()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, Error> {
        if self.eat_kw("NOT") {
            self.enter()?;
            let e = self.not();
            self.leave();
            return Ok(Expr::Not(Box::new(e?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, Error> {
        let l = self.additive()?;
        let op = match self.peek() {
            Some(Tok::Punct("=")) => Some(CmpOp::Eq),
            Some(Tok::Punct("<>")) | Some(Tok::Punct("!=")) => Some(CmpOp::Ne),
            Some(Tok::Punct("<")) => Some(CmpOp::Lt),
            Some(Tok::Punct("<=")) => Some(CmpOp::Le),
            Some(Tok::Punct(">")) => Some(CmpOp::Gt),
            Some(Tok::Punct(">=")) => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.i += 1;
            let r = self.additive()?;
            return Ok(Expr::Cmp(op, Box::new(l), Box::new(r)));
        }
        if self.eat_kw("IS") {
            let negated = self.eat_kw("NOT");
            let kind = if self.eat_kw("MISSING") {
                IsKind::Missing
            } else if self.eat_kw("NULL") {
                IsKind::Null
            } else {
                return Err(self.unexpected());
            };
            return Ok(Expr::Is(Box::new(l), kind, negated));
        }
        let negated = self.is_kw("NOT")
            && matches!(self.peek_at(1), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("BETWEEN") || s.eq_ignore_ascii_case("IN"));
        if negated {
            self.i += 1;
        }
        let e = if self.eat_kw("BETWEEN") {
            let lo = self.additive()?;
            self.expect_kw("AND")?;
            let hi = self.additive()?;
            Expr::Between(Box::new(l), Box::new(lo), Box::new(hi))
        } else if self.eat_kw("IN") {
            let items = if self.eat_punct("[") {
                self.elements("]")?
            } else if self.eat_punct("(") {
                self.elements(")")?
            } else {
                vec![self.primary()?]
            };
            Expr::In(Box::new(l), items)
        } else {
            return Ok(l);
        };
        Ok(if negated { Expr::Not(Box::new(e)) } else { e })
    }

    fn additive(&mut self) -> Result<Expr, Error> {
        let mut l = self.primary()?;
        loop {
            let op = if self.eat_punct("+") {
                ArithOp::Add
            } else if self.is_punct("-") {
                self.i += 1;
                ArithOp::Sub
            } else {
                return Ok(l);
            };
            let r = self.primary()?;
            l = Expr::Arith(op, Box::new(l), Box::new(r));
        }
    }

    /// Comma-separated expressions up to `close` (which is consumed).
    fn elements(&mut self, close: &str) -> Result<Vec<Expr>, Error> {
        let mut out = Vec::new();
        if self.eat_punct(close) {
            return Ok(out);
        }
        loop {
            out.push(self.expr()?);
            if self.eat_punct(close) {
                return Ok(out);
            }
            self.expect_punct(",")?;
        }
    }

    fn primary(&mut self) -> Result<Expr, Error> {
        self.enter()?;
        let r = self.primary_inner();
        self.leave();
        r
    }

    fn primary_inner(&mut self) -> Result<Expr, Error> {
        let Some(tok) = self.peek().cloned() else {
            return Err(self.unexpected_term());
        };
        match tok {
            Tok::Str(s) => {
                self.i += 1;
                Ok(Expr::Lit(AttributeValue::S(s)))
            }
            Tok::Num(n) => {
                self.i += 1;
                number(&n)
            }
            Tok::Punct("-") if matches!(self.peek_at(1), Some(Tok::Num(_))) => {
                self.i += 1;
                let Some(Tok::Num(n)) = self.next() else {
                    return Err(self.unexpected());
                };
                number(&format!("-{n}"))
            }
            Tok::Punct("?") => {
                self.i += 1;
                self.params += 1;
                Ok(Expr::Param(self.params - 1))
            }
            Tok::Punct("(") => {
                self.i += 1;
                let e = self.expr()?;
                self.expect_punct(")")?;
                Ok(e)
            }
            Tok::Punct("[") => {
                self.i += 1;
                Ok(Expr::List(self.elements("]")?))
            }
            Tok::Punct("<<") => {
                self.i += 1;
                Ok(Expr::Set(self.elements(">>")?))
            }
            Tok::Punct("{") => {
                self.i += 1;
                let mut entries = Vec::new();
                if !self.eat_punct("}") {
                    loop {
                        let key = match self.next() {
                            Some(Tok::Str(s)) | Some(Tok::Quoted(s)) => s,
                            _ => {
                                self.i = self.i.saturating_sub(1);
                                return Err(self.unexpected());
                            }
                        };
                        self.expect_punct(":")?;
                        entries.push((key, self.expr()?));
                        if self.eat_punct("}") {
                            break;
                        }
                        self.expect_punct(",")?;
                    }
                }
                Ok(Expr::Map(entries))
            }
            Tok::Ident(s) => {
                if s.eq_ignore_ascii_case("TRUE") || s.eq_ignore_ascii_case("FALSE") {
                    self.i += 1;
                    return Ok(Expr::Lit(AttributeValue::Bool(
                        s.eq_ignore_ascii_case("TRUE"),
                    )));
                }
                if s.eq_ignore_ascii_case("NULL") {
                    self.i += 1;
                    return Ok(Expr::Lit(AttributeValue::Null));
                }
                if s.eq_ignore_ascii_case("EXISTS")
                    && matches!(self.peek_at(1), Some(Tok::Punct("(")))
                {
                    self.i += 2;
                    self.expect_kw("SELECT")?;
                    let sel = self.select_rest()?;
                    self.expect_punct(")")?;
                    return Ok(Expr::Exists(Box::new(sel)));
                }
                if !is_keyword(&s) && matches!(self.peek_at(1), Some(Tok::Punct("("))) {
                    self.i += 2;
                    let args = self.elements(")")?;
                    return Ok(Expr::Call(s.to_ascii_lowercase(), args));
                }
                Ok(Expr::Path(self.path()?))
            }
            Tok::Quoted(_) => Ok(Expr::Path(self.path()?)),
            _ => Err(self.unexpected_term()),
        }
    }
}

/// A number literal. One whose exponent or scale does not fit 32 bits is not well formed
/// (DynamoDB gives no detail); one outside DynamoDB's number range is reported when its value is
/// used, with its place in the value (`Expr::BadNumber`).
fn number(text: &str) -> Result<Expr, Error> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, "0"),
    };
    let exp: i64 = exp.parse::<i32>().map_err(|_| malformed(""))?.into();
    let frac = mantissa
        .split_once('.')
        .map_or(0, |(_, f)| f.trim_start_matches('-').len() as i64);
    if i32::try_from(frac - exp).is_err() {
        return Err(malformed(""));
    }
    Ok(match Number::parse(text) {
        Ok(n) => Expr::Lit(AttributeValue::N(n)),
        Err(e) => Expr::BadNumber(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Statement {
        match parse(s) {
            Ok(p) => p.statement,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(p) => panic!("{s} parsed: {:?}", p.statement),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn statements() {
        let Statement::Select(s) = ok(
            r#"select a.b[0].c, "x y" FROM "T"."I" WHERE pk = ? AND sk BETWEEN 1 AND 2 ORDER BY sk DESC"#,
        ) else {
            panic!()
        };
        assert_eq!(s.table, "T");
        assert_eq!(s.index.as_deref(), Some("I"));
        assert_eq!(s.order_by.len(), 1);
        assert!(s.order_by[0].1);
        assert!(
            matches!(s.projection, Projection::Paths(ref p) if p.len() == 2 && p[0].elems.len() == 4)
        );
        let Statement::Insert(i) =
            ok("INSERT INTO t VALUE {'pk': 'a', 'n': -1.5, 's': <<1, 2>>, 'l': [TRUE, NULL]}")
        else {
            panic!()
        };
        assert!(matches!(i.value, Expr::Map(ref m) if m.len() == 4));
        let Statement::Update(u) =
            ok("UPDATE t SET a = a + 1, b = list_append(b, [1]) SET c = 'x' REMOVE d WHERE pk = 'k' RETURNING ALL NEW *")
        else {
            panic!()
        };
        assert_eq!(u.actions.len(), 4);
        assert_eq!(u.returning, Some(Returning::AllNew));
        assert!(matches!(
            ok("DELETE FROM t WHERE pk = 1;"),
            Statement::Delete(_)
        ));
        assert_eq!(
            parse("SELECT * FROM t WHERE a = ? OR b IN [?, ?]")
                .map(|p| p.params)
                .ok(),
            Some(3)
        );
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("SELECTT * FROMM t", "Expected data manipulation"),
            ("SELECT * FROM", "Unexpected term"),
            ("SELECT * FROM t WHERE", "Unexpected term"),
            ("SELECT * FROM t WHERE;", "Unexpected term"),
            ("SELECT * FROM t WHERE NOT", "Unexpected term"),
            ("SELECT * FROM t WHERE (", "Unexpected term"),
            (
                "SELECT * FROM t WHERE pk = 'a' AND",
                "Missing right-hand side expression of infix operator",
            ),
            (
                "SELECT * FROM t WHERE pk = 'a' OR",
                "Missing right-hand side expression of infix operator",
            ),
            ("SELECT * FROM t WHERE ORDER BY pk", "Unexpected keyword"),
            ("SELECT * FROM t WHERE pk = = 1", "Unexpected operator"),
            ("SELECT * FROM select", "Unexpected keyword"),
            (
                "SELECT * FROM t WHERE pk = 1 foo",
                "Unexpected token after expression",
            ),
            (
                "SELECT * FROM t WHERE pk = 1)",
                "Unexpected token after expression",
            ),
            (
                "SELECT * FROM t ORDER BY pk WHERE pk = 1",
                "Unexpected token after expression",
            ),
            (
                "DELETE FROM t WHERE pk = 1 ORDER BY pk",
                "Unexpected token after expression",
            ),
            (
                "INSERT INTO t x VALUE {'pk': 1}",
                "Unexpected token after expression",
            ),
            (
                "INSERT INTO t VALUE {'pk': 1} foo",
                "Unexpected token after expression",
            ),
            ("DELETE FROM", "Expected identifier for simple path"),
            ("DELETE FROM;", "Expected identifier for simple path"),
            (
                "DELETE FROM WHERE pk = 'a'",
                "Expected identifier for simple path",
            ),
            ("SELECT * FROM t WHERE pk = 1e2147483648", ""),
            ("SELECT * FROM t WHERE pk = 1.5e-2147483647", ""),
            ("SELECT * FROM t WHERE pk = 1 # c", ""),
            ("SELECT * FROM t WHERE pk = 1 /* c", ""),
        ];
        for (text, detail) in cases {
            assert_eq!(err(text), format!("{MALFORMED}{detail}"), "{text}");
        }
        for text in [
            "SELECT * FROM t x",
            "SELECT * FROM t AS x WHERE pk = 'x'",
            "UPDATE t x SET a = 3 WHERE pk = 'x'",
            "DELETE FROM t x WHERE pk = 'x'",
        ] {
            assert_eq!(err(text), "Aliasing is not supported", "{text}");
        }
        assert!(err(&format!(
            "SELECT * FROM t WHERE {}1{}",
            "(".repeat(100),
            ")".repeat(100)
        ))
        .starts_with(MALFORMED));
        assert!(err("UPDATE t WHERE pk = 1").starts_with(MALFORMED));
    }
}
