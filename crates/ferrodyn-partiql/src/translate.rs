//! Translation of parsed statements into DynamoDB's expression language.
//!
//! WHERE clauses and SET/REMOVE actions become Condition/Filter/KeyCondition/Update expression
//! text whose every name and value is a placeholder (`#n0`, `:v0`), with the maps that resolve
//! them, so one parser and one evaluator (ferrodyn-expr) serve both languages. Parameters (`?`)
//! and literal constructors are evaluated here to attribute values.
//!
//! Invariant: generated text never contains a name or value literally, so reserved words,
//! quoting and escaping of the PartiQL text never reach the expression parser.

use std::collections::{BTreeMap, HashMap};

use ferrodyn_model::{AttributeValue, Error, Number};

use crate::ast::*;
use crate::parser::MALFORMED;

/// Precedence of generated condition text.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const ATOM: u8 = 4;

fn unsupported(what: &str) -> Error {
    Error::Validation(format!("{MALFORMED}Unsupported {what}"))
}

/// ExpressionAttributeNames of generated expressions.
pub type Names = HashMap<String, String>;
/// ExpressionAttributeValues of generated expressions.
pub type Values = HashMap<String, AttributeValue>;

/// Placeholder maps for the expressions generated from one statement, and the statement's
/// bound parameters.
#[derive(Debug)]
pub struct Placeholders<'p> {
    params: &'p [AttributeValue],
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
    by_name: HashMap<String, String>,
}

impl<'p> Placeholders<'p> {
    pub fn new(params: &'p [AttributeValue]) -> Self {
        Placeholders {
            params,
            names: HashMap::new(),
            values: HashMap::new(),
            by_name: HashMap::new(),
        }
    }

    /// The maps as optional (DynamoDB rejects empty maps; absent ones are fine).
    pub fn into_maps(self) -> (Option<Names>, Option<Values>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }

    fn name(&mut self, n: &str) -> String {
        if let Some(p) = self.by_name.get(n) {
            return p.clone();
        }
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), n.to_owned());
        self.by_name.insert(n.to_owned(), p.clone());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    /// A path as placeholder text: `#n0.#n1[2]`.
    pub fn path(&mut self, p: &Path) -> String {
        let mut s = String::new();
        for e in &p.elems {
            match e {
                PathElem::Name(n) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    let ph = self.name(n);
                    s.push_str(&ph);
                }
                PathElem::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        s
    }

    /// The value of a constant expression (literals, parameters and constructors of them).
    pub fn constant(&self, e: &Expr) -> Result<AttributeValue, Error> {
        constant(e, self.params)
    }

    fn operand(&mut self, e: &Expr) -> Result<String, Error> {
        match e {
            Expr::Path(p) => Ok(self.path(p)),
            Expr::Call(f, args) if f == "size" => match args.as_slice() {
                [Expr::Path(p)] => Ok(format!("size({})", self.path(p))),
                _ => Err(unsupported("argument of function size")),
            },
            Expr::Lit(_)
            | Expr::BadNumber(_)
            | Expr::Param(_)
            | Expr::List(_)
            | Expr::Map(_)
            | Expr::Set(_) => {
                let v = self.constant(e)?;
                Ok(self.value(v))
            }
            _ => Err(unsupported("operand")),
        }
    }

    /// A WHERE clause (or part of one) as condition text that can be an operand of AND as it
    /// is (an OR comes back parenthesized).
    pub fn condition(&mut self, e: &Expr) -> Result<String, Error> {
        let (text, prec) = self.cond(e)?;
        Ok(if prec < AND {
            format!("({text})")
        } else {
            text
        })
    }

    /// `text` wrapped in parentheses if its precedence is below `min`. DynamoDB rejects
    /// parentheses around a parenthesized expression, so they are added only where needed.
    fn operand_of(&mut self, e: &Expr, min: u8) -> Result<String, Error> {
        let (text, prec) = self.cond(e)?;
        Ok(if prec < min {
            format!("({text})")
        } else {
            text
        })
    }

    /// Condition text and its precedence (OR, AND, NOT, ATOM).
    fn cond(&mut self, e: &Expr) -> Result<(String, u8), Error> {
        Ok(match e {
            Expr::Cmp(op, l, r) => (
                format!("{} {} {}", self.operand(l)?, op.as_str(), self.operand(r)?),
                ATOM,
            ),
            Expr::Between(a, lo, hi) => (
                format!(
                    "{} BETWEEN {} AND {}",
                    self.operand(a)?,
                    self.operand(lo)?,
                    self.operand(hi)?
                ),
                ATOM,
            ),
            Expr::In(a, items) => {
                let lhs = self.operand(a)?;
                let mut list = Vec::new();
                for it in items {
                    match (items.len(), self.constant(it)) {
                        // `a IN ?` with a list parameter.
                        (1, Ok(AttributeValue::L(vs))) if !matches!(it, Expr::List(_)) => {
                            for v in vs {
                                list.push(self.value(v));
                            }
                        }
                        _ => list.push(self.operand(it)?),
                    }
                }
                if list.is_empty() {
                    return Err(unsupported("empty IN list"));
                }
                (format!("{lhs} IN ({})", list.join(", ")), ATOM)
            }
            Expr::And(l, r) => (
                format!(
                    "{} AND {}",
                    self.operand_of(l, AND)?,
                    self.operand_of(r, AND)?
                ),
                AND,
            ),
            Expr::Or(l, r) => (
                format!("{} OR {}", self.operand_of(l, OR)?, self.operand_of(r, OR)?),
                OR,
            ),
            // The operand of NOT is never parenthesized already: `cond` adds parentheses only
            // around operands of AND and OR.
            Expr::Not(e) => (format!("NOT ({})", self.cond(e)?.0), NOT),
            Expr::Is(e, kind, negated) => {
                let Expr::Path(p) = &**e else {
                    return Err(unsupported("operand of IS"));
                };
                let p = self.path(p);
                match (kind, negated) {
                    (IsKind::Missing, false) => (format!("attribute_not_exists({p})"), ATOM),
                    (IsKind::Missing, true) => (format!("attribute_exists({p})"), ATOM),
                    (IsKind::Null, false) => {
                        let t = self.value(AttributeValue::S("NULL".into()));
                        (
                            format!("attribute_not_exists({p}) OR attribute_type({p}, {t})"),
                            OR,
                        )
                    }
                    (IsKind::Null, true) => {
                        let t = self.value(AttributeValue::S("NULL".into()));
                        (
                            format!("attribute_exists({p}) AND NOT attribute_type({p}, {t})"),
                            AND,
                        )
                    }
                }
            }
            Expr::Call(f, args) => {
                let text = match (f.as_str(), args.as_slice()) {
                    ("begins_with" | "contains" | "attribute_type", [a, b]) => {
                        format!("{f}({}, {})", self.operand(a)?, self.operand(b)?)
                    }
                    ("missing", [Expr::Path(p)]) => {
                        format!("attribute_not_exists({})", self.path(p))
                    }
                    ("exists" | "attribute_exists", [Expr::Path(p)]) => {
                        format!("attribute_exists({})", self.path(p))
                    }
                    ("attribute_not_exists", [Expr::Path(p)]) => {
                        format!("attribute_not_exists({})", self.path(p))
                    }
                    _ => return Err(unknown_function(f)),
                };
                (text, ATOM)
            }
            _ => return Err(unsupported("condition")),
        })
    }

    /// SET/REMOVE actions as UpdateExpression text (`set_add` / `set_delete` become ADD /
    /// DELETE clauses).
    pub fn update(&mut self, actions: &[UpdateAction]) -> Result<String, Error> {
        let (mut set, mut remove, mut add, mut delete) = (vec![], vec![], vec![], vec![]);
        for a in actions {
            match a {
                UpdateAction::Remove(p) => remove.push(self.path(p)),
                UpdateAction::Set(p, e) => {
                    let target = self.path(p);
                    match e {
                        Expr::Call(f, args) if f == "set_add" || f == "set_delete" => {
                            let [Expr::Path(q), v] = args.as_slice() else {
                                return Err(unsupported(&format!("arguments of function {f}")));
                            };
                            if q != p {
                                return Err(unsupported(&format!(
                                    "function {f} on a path other than the one being set"
                                )));
                            }
                            let v = self.constant(v)?;
                            let clause = format!("{target} {}", self.value(v));
                            if f == "set_add" {
                                add.push(clause);
                            } else {
                                delete.push(clause);
                            }
                        }
                        _ => {
                            let v = self.set_value(e)?;
                            set.push(format!("{target} = {v}"));
                        }
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (kw, parts) in [
            ("SET", set),
            ("REMOVE", remove),
            ("ADD", add),
            ("DELETE", delete),
        ] {
            if !parts.is_empty() {
                out.push(format!("{kw} {}", parts.join(", ")));
            }
        }
        Ok(out.join(" "))
    }

    fn set_value(&mut self, e: &Expr) -> Result<String, Error> {
        match e {
            Expr::Arith(op, a, b) => {
                let op = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                };
                Ok(format!(
                    "{} {op} {}",
                    self.set_operand(a)?,
                    self.set_operand(b)?
                ))
            }
            _ => self.set_operand(e),
        }
    }

    fn set_operand(&mut self, e: &Expr) -> Result<String, Error> {
        match e {
            Expr::Call(f, args) if f == "list_append" || f == "if_not_exists" => {
                let [a, b] = args.as_slice() else {
                    return Err(unsupported(&format!("arguments of function {f}")));
                };
                Ok(format!(
                    "{f}({}, {})",
                    self.set_operand(a)?,
                    self.set_operand(b)?
                ))
            }
            Expr::Call(f, _) => Err(unknown_function(f)),
            Expr::Path(p) => Ok(self.path(p)),
            _ => {
                let v = self.constant(e)?;
                Ok(self.value(v))
            }
        }
    }
}

fn unknown_function(f: &str) -> Error {
    Error::Validation(format!("{MALFORMED}Unsupported function: {f}"))
}

/// The value of a constant expression.
pub fn constant(e: &Expr, params: &[AttributeValue]) -> Result<AttributeValue, Error> {
    constant_at(e, params, &mut String::from("root"))
}

/// [`constant`], with `at` naming the place of `e` in the value (`root`, `root.k`,
/// `root[1]`) for DynamoDB's number messages.
fn constant_at(
    e: &Expr,
    params: &[AttributeValue],
    at: &mut String,
) -> Result<AttributeValue, Error> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::BadNumber(msg) => return Err(Error::Validation(format!("{msg} under {at}"))),
        Expr::Param(i) => params
            .get(*i)
            .cloned()
            .ok_or_else(|| Error::validation(PARAM_COUNT))?,
        Expr::List(xs) => {
            let mut out = Vec::with_capacity(xs.len());
            for (i, x) in xs.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                out.push(constant_at(x, params, at)?);
                at.truncate(len);
            }
            AttributeValue::L(out)
        }
        Expr::Map(entries) => {
            let mut m = BTreeMap::new();
            for (k, v) in entries {
                let len = at.len();
                at.push('.');
                at.push_str(k);
                let value = constant_at(v, params, at)?;
                at.truncate(len);
                if m.insert(k.clone(), value).is_some() {
                    return Err(Error::Validation(format!(
                        "{MALFORMED}Duplicate key in map: {k}"
                    )));
                }
            }
            AttributeValue::M(m)
        }
        Expr::Set(xs) => set(xs
            .iter()
            .map(|x| constant_at(x, params, at))
            .collect::<Result<Vec<_>, _>>()?)?,
        Expr::Arith(op, a, b) => match (constant_at(a, params, at)?, constant_at(b, params, at)?) {
            (AttributeValue::N(x), AttributeValue::N(y)) => {
                let y = match op {
                    ArithOp::Add => y,
                    ArithOp::Sub => y.negated(),
                };
                AttributeValue::N(
                    x.checked_add(&y)
                        .map_err(|e| Error::Validation(e.to_string()))?,
                )
            }
            _ => return Err(unsupported("arithmetic on non-numbers")),
        },
        _ => return Err(unsupported("expression where a value is expected")),
    })
}

/// DynamoDB's message when `Parameters` and the `?` markers disagree in number.
pub const PARAM_COUNT: &str = "Number of parameters in request and statement don't match.";

fn set(items: Vec<AttributeValue>) -> Result<AttributeValue, Error> {
    let bad = || {
        Error::Validation(format!(
            "{MALFORMED}A set must hold strings, numbers or binaries of one type and not be empty"
        ))
    };
    let first = items.first().ok_or_else(bad)?;
    Ok(match first {
        AttributeValue::S(_) => {
            let mut v: Vec<String> = Vec::new();
            for i in items {
                let AttributeValue::S(s) = i else {
                    return Err(bad());
                };
                if !v.contains(&s) {
                    v.push(s);
                }
            }
            AttributeValue::SS(v)
        }
        AttributeValue::N(_) => {
            let mut v: Vec<Number> = Vec::new();
            for i in items {
                let AttributeValue::N(n) = i else {
                    return Err(bad());
                };
                if !v.contains(&n) {
                    v.push(n);
                }
            }
            AttributeValue::NS(v)
        }
        AttributeValue::B(_) => {
            let mut v: Vec<Vec<u8>> = Vec::new();
            for i in items {
                let AttributeValue::B(b) = i else {
                    return Err(bad());
                };
                if !v.contains(&b) {
                    v.push(b);
                }
            }
            AttributeValue::BS(v)
        }
        _ => return Err(bad()),
    })
}

/// The conjuncts of a WHERE clause (its top-level AND operands, in order).
pub fn conjuncts(e: &Expr) -> Vec<&Expr> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::And(l, r) => {
                stack.push(r);
                stack.push(l);
            }
            _ => out.push(e),
        }
    }
    out
}

/// If `e` is `attr = <constant>` (either way round), the constant's expression.
pub fn equality_on<'e>(e: &'e Expr, attr: &str) -> Option<&'e Expr> {
    let Expr::Cmp(CmpOp::Eq, l, r) = e else {
        return None;
    };
    match (&**l, &**r) {
        (Expr::Path(p), v) | (v, Expr::Path(p)) if p.as_attr() == Some(attr) && is_constant(v) => {
            Some(v)
        }
        _ => None,
    }
}

fn is_constant(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Lit(_)
            | Expr::BadNumber(_)
            | Expr::Param(_)
            | Expr::List(_)
            | Expr::Map(_)
            | Expr::Set(_)
    )
}

/// Whether any path in `e` starts at top-level attribute `attr`.
pub fn mentions(e: &Expr, attr: &str) -> bool {
    match e {
        Expr::Path(p) => p.top() == attr,
        Expr::Lit(_) | Expr::BadNumber(_) | Expr::Param(_) => false,
        Expr::List(xs) | Expr::Set(xs) | Expr::Call(_, xs) => xs.iter().any(|x| mentions(x, attr)),
        Expr::Map(m) => m.iter().any(|(_, x)| mentions(x, attr)),
        Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) | Expr::Arith(_, a, b) => {
            mentions(a, attr) || mentions(b, attr)
        }
        Expr::Between(a, b, c) => mentions(a, attr) || mentions(b, attr) || mentions(c, attr),
        Expr::In(a, xs) => mentions(a, attr) || xs.iter().any(|x| mentions(x, attr)),
        Expr::Not(a) | Expr::Is(a, _, _) => mentions(a, attr),
        Expr::Exists(_) => false,
    }
}

/// The top-level attribute names the paths in `e` start at (repeats included).
pub fn top_names<'e>(e: &'e Expr, out: &mut Vec<&'e str>) {
    match e {
        Expr::Path(p) => out.push(p.top()),
        Expr::Lit(_) | Expr::BadNumber(_) | Expr::Param(_) | Expr::Exists(_) => {}
        Expr::List(xs) | Expr::Set(xs) | Expr::Call(_, xs) => {
            xs.iter().for_each(|x| top_names(x, out))
        }
        Expr::Map(m) => m.iter().for_each(|(_, x)| top_names(x, out)),
        Expr::Cmp(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) | Expr::Arith(_, a, b) => {
            top_names(a, out);
            top_names(b, out);
        }
        Expr::Between(a, b, c) => {
            top_names(a, out);
            top_names(b, out);
            top_names(c, out);
        }
        Expr::In(a, xs) => {
            top_names(a, out);
            xs.iter().for_each(|x| top_names(x, out));
        }
        Expr::Not(a) | Expr::Is(a, _, _) => top_names(a, out),
    }
}

/// Whether a WHERE clause confines a read to given values of partition key `hash`: a
/// top-level conjunct is an equality or IN on it, or an OR whose every branch does so
/// (DynamoDB runs such a SELECT without a full table scan).
pub fn fixes_partition_key(e: &Expr, hash: &str) -> bool {
    conjuncts(e).into_iter().any(|c| {
        equality_on(c, hash).is_some()
            || in_on(c, hash)
            || matches!(c, Expr::Or(l, r) if fixes_partition_key(l, hash) && fixes_partition_key(r, hash))
    })
}

/// Whether `e` is `attr IN ...` (a partition key named by IN still makes a read keyed).
pub fn in_on(e: &Expr, attr: &str) -> bool {
    matches!(e, Expr::In(a, _) if matches!(&**a, Expr::Path(p) if p.as_attr() == Some(attr)))
}

/// Whether `e` can be a sort-key condition of a Query on `attr` (`=`, `<`, `<=`, `>`, `>=`,
/// BETWEEN or begins_with against constants).
pub fn is_range_condition(e: &Expr, attr: &str) -> bool {
    let on = |x: &Expr| matches!(x, Expr::Path(p) if p.as_attr() == Some(attr));
    match e {
        Expr::Cmp(op, l, r) => {
            *op != CmpOp::Ne && ((on(l) && is_constant(r)) || (on(r) && is_constant(l)))
        }
        Expr::Between(a, lo, hi) => on(a) && is_constant(lo) && is_constant(hi),
        Expr::Call(f, args) if f == "begins_with" => {
            matches!(args.as_slice(), [a, b] if on(a) && is_constant(b))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn where_of(s: &str) -> Expr {
        match parse(s).map(|p| p.statement) {
            Ok(Statement::Select(s)) => s.where_.unwrap_or(Expr::Lit(AttributeValue::Null)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conditions() {
        let e = where_of("SELECT * FROM t WHERE \"data\" = 'x' AND (a.b[1] > ? OR size(c) BETWEEN 1 AND 2) AND d IS NOT MISSING");
        let params = [AttributeValue::N(Number::from_i64(3))];
        let mut ph = Placeholders::new(&params);
        let text = ph.condition(&e).unwrap_or_default();
        assert_eq!(
            text,
            "#n0 = :v0 AND (#n1.#n2[1] > :v1 OR size(#n3) BETWEEN :v2 AND :v3) AND attribute_exists(#n4)"
        );
        assert_eq!(ph.names.get("#n0").map(String::as_str), Some("data"));
        assert!(matches!(ph.values.get(":v1"), Some(AttributeValue::N(_))));
    }

    #[test]
    fn updates() {
        let Ok(Statement::Update(u)) = parse(
            "UPDATE t SET a = a + 1, b = list_append(b, ['x']), s = set_add(s, <<'y'>>) REMOVE c WHERE pk = 1",
        )
        .map(|p| p.statement) else {
            panic!()
        };
        let mut ph = Placeholders::new(&[]);
        assert_eq!(
            ph.update(&u.actions).unwrap_or_default(),
            "SET #n0 = #n0 + :v0, #n1 = list_append(#n1, :v1) REMOVE #n3 ADD #n2 :v2"
        );
    }

    #[test]
    fn keys() {
        let e = where_of("SELECT * FROM t WHERE 'k' = pk AND sk >= 3 AND x = 1");
        let cs = conjuncts(&e);
        assert_eq!(cs.len(), 3);
        assert!(equality_on(cs[0], "pk").is_some());
        assert!(is_range_condition(cs[1], "sk"));
        assert!(!is_range_condition(cs[2], "sk"));
        assert!(mentions(&e, "x"));
    }

    #[test]
    fn full_table_scans() {
        for (w, fixed) in [
            ("pk = 1", true),
            ("x = 2 AND pk IN [1, 2]", true),
            ("pk = 1 OR (pk = 2 AND x = 3)", true),
            ("pk = 1 OR x = 3", false),
            ("pk > 1", false),
            ("NOT pk = 1", false),
            ("x = 1", false),
        ] {
            let e = where_of(&format!("SELECT * FROM t WHERE {w}"));
            assert_eq!(fixes_partition_key(&e, "pk"), fixed, "{w}");
        }
    }

    #[test]
    fn constants() {
        let e = Expr::Set(vec![
            Expr::Lit(AttributeValue::S("a".into())),
            Expr::Lit(AttributeValue::S("a".into())),
        ]);
        assert!(matches!(constant(&e, &[]), Ok(AttributeValue::SS(v)) if v.len() == 1));
        assert!(constant(&Expr::Param(0), &[]).is_err());
        assert!(constant(&Expr::Set(vec![]), &[]).is_err());
        let bad = Expr::Map(vec![(
            "l".into(),
            Expr::List(vec![
                Expr::Lit(AttributeValue::Null),
                Expr::BadNumber("Too big".into()),
            ]),
        )]);
        assert_eq!(
            constant(&bad, &[]).err().map(|e| e.to_string()),
            Some("Too big under root.l[1]".to_owned())
        );
    }
}
