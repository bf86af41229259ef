//! Property tests: the parser never panics, literals survive a round trip through text, and
//! every random WHERE tree translates into expression text that ferrodyn-expr accepts and
//! evaluates like the tree does.

use std::collections::BTreeMap;

use ferrodyn_expr::{CondKind, Resolver};
use ferrodyn_model::{AttributeValue, Item, Number};
use ferrodyn_partiql::{parse, Expr, Placeholders, Statement};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        "[a-z' ]{0,8}".prop_map(AttributeValue::S),
        (-1000i64..1000).prop_map(|n| AttributeValue::N(Number::from_i64(n))),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(AttributeValue::M),
        ]
    })
}

/// PartiQL text of a value.
fn text(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => format!("'{}'", s.replace('\'', "''")),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::Bool(b) => b.to_string().to_uppercase(),
        AttributeValue::Null => "NULL".into(),
        AttributeValue::L(l) => format!("[{}]", l.iter().map(text).collect::<Vec<_>>().join(", ")),
        AttributeValue::M(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "NULL".into(),
    }
}

fn same(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue::*;
    match (a, b) {
        (S(x), S(y)) => x == y,
        (N(x), N(y)) => x == y,
        (Bool(x), Bool(y)) => x == y,
        (Null, Null) => true,
        (L(x), L(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        (M(x), M(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((k, a), (l, b))| k == l && same(a, b))
        }
        _ => false,
    }
}

/// A random WHERE clause over attributes `a`, `b`, `c` with numeric constants, as text.
fn condition() -> impl Strategy<Value = String> {
    let attr = prop_oneof![Just("a"), Just("b"), Just("\"c\"")];
    let leaf = (attr, 0i64..5, 0usize..7).prop_map(|(a, v, k)| match k {
        0 => format!("{a} = {v}"),
        1 => format!("{a} <> {v}"),
        2 => format!("{a} < {v}"),
        3 => format!("{a} BETWEEN {v} AND {}", v + 1),
        4 => format!("{a} IN [{v}, {}]", v + 2),
        5 => format!("{a} IS MISSING"),
        _ => format!("{a} IS NOT NULL"),
    });
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("({x}) AND ({y})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("{x} OR {y}")),
            inner.prop_map(|x| format!("NOT ({x})")),
        ]
    })
}

/// Direct evaluation of the same conditions (MISSING and NULL as PartiQL defines them).
fn eval(e: &Expr, item: &Item) -> bool {
    use ferrodyn_partiql::ast::{CmpOp, IsKind};
    let get = |x: &Expr| -> Option<AttributeValue> {
        match x {
            Expr::Path(p) => item.get(p.top()).cloned(),
            Expr::Lit(v) => Some(v.clone()),
            _ => None,
        }
    };
    let num = |x: &Expr| match get(x) {
        Some(AttributeValue::N(n)) => Some(n),
        _ => None,
    };
    match e {
        Expr::And(l, r) => eval(l, item) && eval(r, item),
        Expr::Or(l, r) => eval(l, item) || eval(r, item),
        Expr::Not(x) => !eval(x, item),
        Expr::Cmp(op, l, r) => match (num(l), num(r)) {
            (Some(a), Some(b)) => match op {
                CmpOp::Eq => a == b,
                CmpOp::Ne => a != b,
                CmpOp::Lt => a < b,
                CmpOp::Le => a <= b,
                CmpOp::Gt => a > b,
                CmpOp::Ge => a >= b,
            },
            // Different types or a missing attribute: only <> holds.
            _ => *op == CmpOp::Ne,
        },
        Expr::Between(a, lo, hi) => match (num(a), num(lo), num(hi)) {
            (Some(a), Some(lo), Some(hi)) => lo <= a && a <= hi,
            _ => false,
        },
        Expr::In(a, xs) => num(a).is_some_and(|a| xs.iter().any(|x| num(x) == Some(a.clone()))),
        Expr::Is(p, IsKind::Missing, neg) => get(p).is_some() == *neg,
        Expr::Is(p, IsKind::Null, neg) => {
            matches!(get(p), None | Some(AttributeValue::Null)) != *neg
        }
        _ => false,
    }
}

fn item() -> impl Strategy<Value = Item> {
    let v = prop_oneof![
        (0i64..5).prop_map(|n| Some(AttributeValue::N(Number::from_i64(n)))),
        Just(Some(AttributeValue::Null)),
        Just(Some(AttributeValue::S("x".into()))),
        Just(None),
    ];
    (v.clone(), v.clone(), v).prop_map(|(a, b, c)| {
        let mut m = BTreeMap::new();
        for (k, v) in [("a", a), ("b", b), ("c", c)] {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        }
        m
    })
}

proptest! {
    #[test]
    fn parser_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn parser_never_panics_on_statement_like_text(
        parts in prop::collection::vec(prop_oneof![
            Just("SELECT"), Just("*"), Just("FROM"), Just("\"t\""), Just("WHERE"), Just("a"),
            Just("="), Just("?"), Just("AND"), Just("OR"), Just("("), Just(")"), Just("["),
            Just("]"), Just("{"), Just("}"), Just("<<"), Just(">>"), Just("'s'"), Just("1.5"),
            Just(","), Just("."), Just(":"), Just("IS"), Just("NOT"), Just("MISSING"),
            Just("UPDATE"), Just("SET"), Just("REMOVE"), Just("DELETE"), Just("INSERT"),
            Just("INTO"), Just("VALUE"), Just("EXISTS"), Just("RETURNING"),
        ], 0..30)
    ) {
        let _ = parse(&parts.join(" "));
    }

    #[test]
    fn literals_round_trip(v in value()) {
        let stmt = format!("INSERT INTO t VALUE {{'v': {}}}", text(&v));
        let parsed = parse(&stmt).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Statement::Insert(ins) = parsed.statement else {
            return Err(TestCaseError::fail("not an insert"));
        };
        let got = ferrodyn_partiql::constant(&ins.value, &[]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let AttributeValue::M(m) = got else {
            return Err(TestCaseError::fail("not a map"));
        };
        prop_assert!(m.get("v").is_some_and(|g| same(g, &v)), "{stmt}");
    }

    #[test]
    fn where_trees_translate_to_equivalent_expressions(w in condition(), it in item()) {
        let stmt = format!("SELECT * FROM t WHERE {w}");
        let parsed = parse(&stmt).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let Statement::Select(sel) = parsed.statement else {
            return Err(TestCaseError::fail("not a select"));
        };
        let Some(where_) = sel.where_ else {
            return Err(TestCaseError::fail("no where"));
        };
        let mut ph = Placeholders::new(&[]);
        let text = ph.condition(&where_).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (names, values) = ph.into_maps();
        let mut r = Resolver::new(names.as_ref(), values.as_ref());
        let cond = r.condition(&text, CondKind::Filter).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert!(r.finish().is_ok());
        let got = cond.eval(&it).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got, eval(&where_, &it), "{} / {}", w, text);
    }
}
