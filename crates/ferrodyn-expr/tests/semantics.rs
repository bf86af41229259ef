//! Evaluation, update application, projection, key conditions and legacy translation.

use std::collections::{BTreeMap, HashMap};

use ferrodyn_expr::legacy::{self, AttributeValueUpdate, ExpectedAttributeValue};
use ferrodyn_expr::{key_condition, project, CondKind, RangeCondition, Resolver};
use ferrodyn_model::{AttributeValue as V, Error, Item, Number};

fn s(x: &str) -> V {
    V::S(x.to_string())
}
fn n(x: &str) -> V {
    V::N(Number::parse(x).expect("number"))
}

fn values() -> HashMap<String, V> {
    [
        (":s", s("abc")),
        (":ab", s("ab")),
        (":one", n("1")),
        (":two", n("2")),
        (":five", n("5")),
        (":big", n("9.9999999999999999999999999999999999999E+125")),
        (":l", V::L(vec![s("x"), n("1")])),
        (":ss", V::SS(vec!["a".into(), "z".into()])),
        (":ssa", V::SS(vec!["a".into()])),
        (":t", s("SS")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn item() -> Item {
    let mut m = BTreeMap::new();
    m.insert("x".to_string(), n("3"));
    m.insert("y".to_string(), V::L(vec![s("p"), s("q")]));
    [
        ("a", s("abc")),
        ("n", n("2")),
        ("st", V::SS(vec!["a".into(), "b".into()])),
        ("lst", V::L(vec![s("l0"), s("l1"), s("l2")])),
        ("mp", V::M(m)),
        ("bool", V::Bool(true)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn eval(text: &str, item: &Item) -> bool {
    let vs = values();
    let mut r = Resolver::new(None, Some(&vs));
    r.condition(text, CondKind::Condition)
        .expect("parse")
        .eval(item)
        .expect("eval")
}

#[test]
fn conditions_evaluate() {
    let it = item();
    let cases: &[(&str, bool)] = &[
        ("a = :s", true),
        ("a <> :s", false),
        ("absent <> :s", true),
        ("absent <> zz", true),
        ("absent = absent", false),
        ("n < :five AND n > :one", true),
        ("n >= :two AND n <= :two", true),
        ("a < :five", false),
        ("n BETWEEN :one AND :five", true),
        ("a BETWEEN :one AND :five", false),
        ("n IN (:one, :s, :two)", true),
        ("n IN (:one, :s)", false),
        ("attribute_exists(mp.y[1])", true),
        ("attribute_exists(mp.y[2])", false),
        ("attribute_not_exists(mp.z)", true),
        ("attribute_type(st, :t)", true),
        ("begins_with(a, :ab)", true),
        ("begins_with(n, :ab)", false),
        ("contains(a, :ab)", true),
        ("contains(st, :ab)", false),
        ("contains(lst, lst[1])", true),
        ("size(a) = :five", false),
        ("size(lst) > :two", true),
        ("size(mp) = :two", true),
        ("size(bool) = :one", false),
        ("NOT a = :s OR n = :two", true),
        ("NOT (a = :s OR n = :two)", false),
        ("a = :s AND n = :one OR n = :two", true),
        ("a = :s AND (n = :one OR bool = :one)", false),
        ("NOT NOT a = :s", true),
    ];
    for (text, want) in cases {
        assert_eq!(eval(text, &it), *want, "condition: {text}");
    }
    // A absent item is an empty item.
    assert!(eval("attribute_not_exists(a)", &Item::new()));
}

fn apply(text: &str, item: &mut Item) -> Result<(), String> {
    let vs = values();
    let mut r = Resolver::new(None, Some(&vs));
    let u = r.update(text).map_err(|e| e.to_string())?;
    u.apply(item).map_err(|e| e.to_string())
}

#[test]
fn updates_apply() {
    let mut it = item();
    apply(
        "SET n = n + :five, z = if_not_exists(z, :one) - :two",
        &mut it,
    )
    .expect("ok");
    assert_eq!(it["n"], n("7"));
    assert_eq!(it["z"], n("-1"));
    apply("SET lst = list_append(:l, lst)", &mut it).expect("ok");
    assert_eq!(
        it["lst"],
        V::L(vec![s("x"), n("1"), s("l0"), s("l1"), s("l2")])
    );
    apply("REMOVE lst[0], lst[1], lst[99]", &mut it).expect("ok");
    assert_eq!(it["lst"], V::L(vec![s("l0"), s("l1"), s("l2")]));
    apply("SET lst[10] = :one, lst[5] = :two, lst[0] = :s", &mut it).expect("ok");
    assert_eq!(
        it["lst"],
        V::L(vec![s("abc"), s("l1"), s("l2"), n("2"), n("1")])
    );
    apply("SET mp.y[0] = :s, mp.w = :one", &mut it).expect("ok");
    assert!(eval("mp.y[0] = :s AND mp.w = :one", &it));
    apply("ADD newset :ss, newnum :two, st :ss", &mut it).expect("ok");
    assert_eq!(it["newnum"], n("2"));
    assert_eq!(it["st"], V::SS(vec!["a".into(), "b".into(), "z".into()]));
    apply("DELETE newset :ss, st :ssa, nothing :ss", &mut it).expect("ok");
    assert!(!it.contains_key("newset"));
    assert_eq!(it["st"], V::SS(vec!["b".into(), "z".into()]));

    let errors: &[(&str, &str)] = &[
        ("SET q = nothing", "The provided expression refers to an attribute that does not exist in the item"),
        ("SET q = a + :one", "An operand in the update expression has an incorrect data type"),
        ("SET q = list_append(a, :l)", "An operand in the update expression has an incorrect data type"),
        ("ADD a :one", "An operand in the update expression has an incorrect data type"),
        ("DELETE a :ss", "An operand in the update expression has an incorrect data type"),
        ("SET a.b = :one", "The document path provided in the update expression is invalid for update"),
        ("SET nothing.b = :one", "The document path provided in the update expression is invalid for update"),
        ("REMOVE a.b", "The document path provided in the update expression is invalid for update"),
        ("SET n = :big + :big", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
    ];
    for (text, want) in errors {
        let mut it = item();
        assert_eq!(
            apply(text, &mut it),
            Err(want.to_string()),
            "update: {text}"
        );
    }
}

#[test]
fn update_paths() {
    let vs = values();
    let mut r = Resolver::new(None, Some(&vs));
    let u = r
        .update("SET a.b = :one, c = :one REMOVE a.c ADD d :one")
        .expect("parse");
    assert_eq!(
        u.top_level_attributes().collect::<Vec<_>>(),
        vec!["a", "c", "d"]
    );
    let paths: Vec<String> = u.updated_paths().iter().map(|p| p.to_string()).collect();
    assert_eq!(paths, vec!["[a, b]", "[c]", "[a, c]", "[d]"]);
}

#[test]
fn projection() {
    let it = item();
    let mut r = Resolver::new(None, None);
    let p = r
        .projection("a, mp.y[1], lst[2], lst[0], absent, mp.nothing, lst[7]")
        .expect("parse");
    let out = project(&it, &p);
    let mut m = BTreeMap::new();
    m.insert("y".to_string(), V::L(vec![s("q")]));
    let want: Item = [
        ("a", s("abc")),
        ("mp", V::M(m)),
        ("lst", V::L(vec![s("l0"), s("l2")])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(out, want);
}

fn kc(text: &str) -> Result<(V, Option<RangeCondition>), String> {
    let vs = values();
    let mut r = Resolver::new(None, Some(&vs));
    let c = r
        .condition(text, CondKind::KeyCondition)
        .map_err(|e| e.to_string())?;
    key_condition(&c, &["p"], &["c"])
        .map(|k| {
            assert!(k.range_prefix.is_empty());
            assert_eq!(k.hash.len(), 1);
            (k.hash[0].clone(), k.range)
        })
        .map_err(|e| e.to_string())
}

/// Key condition on a multi-attribute key: HASH h1, h2; RANGE r1, r2, r3.
type Multi = (Vec<V>, Vec<V>, Option<RangeCondition>);
fn kc_multi(text: &str) -> Result<Multi, String> {
    let vs = values();
    let mut r = Resolver::new(None, Some(&vs));
    let c = r
        .condition(text, CondKind::KeyCondition)
        .map_err(|e| e.to_string())?;
    key_condition(&c, &["h1", "h2"], &["r1", "r2", "r3"])
        .map(|k| (k.hash, k.range_prefix, k.range))
        .map_err(|e| e.to_string())
}

#[test]
fn multi_attribute_key_conditions() {
    use RangeCondition as R;
    assert_eq!(
        kc_multi("h2 = :two AND h1 = :s"),
        Ok((vec![s("abc"), n("2")], vec![], None))
    );
    assert_eq!(
        kc_multi("h1 = :s AND h2 = :s AND r1 = :one"),
        Ok((vec![s("abc"), s("abc")], vec![], Some(R::Eq(n("1")))))
    );
    // Textual order does not matter; key-schema order does.
    assert_eq!(
        kc_multi("r2 >= :two AND h1 = :s AND r1 = :one AND h2 = :s"),
        Ok((vec![s("abc"), s("abc")], vec![n("1")], Some(R::Ge(n("2")))))
    );
    assert_eq!(
        kc_multi("h1 = :s AND h2 = :s AND r1 = :one AND r2 = :two AND begins_with(r3, :ab)"),
        Ok((
            vec![s("abc"), s("abc")],
            vec![n("1"), n("2")],
            Some(R::BeginsWith(s("ab")))
        ))
    );
    assert_eq!(
        kc_multi("h1 = :s AND h2 = :s AND r1 BETWEEN :one AND :two"),
        Ok((
            vec![s("abc"), s("abc")],
            vec![],
            Some(R::Between(n("1"), n("2")))
        ))
    );
    let hash = |a: &str| {
        format!("Query key condition not supported: HASH key attribute {a} must be specified with an equality condition")
    };
    let range = |later: &str, a: &str| {
        format!("Query key condition not supported: RANGE key attribute {later} is specified, so RANGE key attribute {a} must be specified with an equality condition")
    };
    let errors: Vec<(&str, String)> = vec![
        ("h1 = :s", hash("h2")),
        ("h2 = :s", hash("h1")),
        ("h1 = :s AND h2 > :s", hash("h2")),
        ("h1 = :s AND begins_with(h2, :ab)", hash("h2")),
        ("r1 = :s AND r2 = :s", hash("h1")),
        ("h1 = :s AND h2 = :s AND r2 = :two", range("r2", "r1")),
        (
            "h1 = :s AND h2 = :s AND r1 = :one AND r3 = :two",
            range("r3", "r2"),
        ),
        (
            "h1 = :s AND h2 = :s AND r1 > :one AND r2 = :two",
            range("r2", "r1"),
        ),
        (
            "h1 = :s AND h2 = :s AND r1 < :one AND r2 > :two",
            range("r2", "r1"),
        ),
        (
            "h1 = :s AND h2 = :s AND x = :s",
            "Query key condition not supported".into(),
        ),
        (
            "h1 = :s AND h1 = :s AND h2 = :s",
            "KeyConditionExpressions must only contain one condition per key".into(),
        ),
        (
            "h1 = :s AND h2 = :s AND r1 = :s AND r1 > :s",
            "KeyConditionExpressions must only contain one condition per key".into(),
        ),
        (
            "h1 = :s OR h2 = :s",
            "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR"
                .into(),
        ),
    ];
    for (text, want) in errors {
        assert_eq!(kc_multi(text), Err(want), "key condition: {text}");
    }
    // One HASH with several RANGE attributes follows the multi-attribute rules too.
    let vs = values();
    let mut r = Resolver::new(None, Some(&vs));
    let c = r
        .condition("p = :s AND b = :one", CondKind::KeyCondition)
        .expect("parses");
    assert_eq!(
        key_condition(&c, &["p"], &["a", "b"]).map_err(|e| e.to_string()),
        Err(range("b", "a"))
    );
}

#[test]
fn key_conditions() {
    assert_eq!(kc("p = :s"), Ok((s("abc"), None)));
    assert_eq!(
        kc("((c < :two) AND (:s = p))"),
        Ok((s("abc"), Some(RangeCondition::Lt(n("2")))))
    );
    assert_eq!(
        kc(":two > c AND p = :s"),
        Ok((s("abc"), Some(RangeCondition::Lt(n("2")))))
    );
    assert_eq!(
        kc("p = :s AND c BETWEEN :one AND :two"),
        Ok((s("abc"), Some(RangeCondition::Between(n("1"), n("2")))))
    );
    assert_eq!(
        kc("p = :s AND begins_with(c, :ab)"),
        Ok((s("abc"), Some(RangeCondition::BeginsWith(s("ab")))))
    );
    let errors: &[(&str, &str)] = &[
        ("p = :s OR c = :s", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR"),
        ("NOT p = :s", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: NOT"),
        ("p = :s AND c <> :s", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: <>"),
        ("p = :s AND c IN (:s)", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: IN"),
        ("p = :s AND attribute_exists(c)", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: attribute_exists"),
        ("p < :s", "Query key condition not supported"),
        ("c = :s", "Query condition missed key schema element: p"),
        ("p = :s AND p = :s", "KeyConditionExpressions must only contain one condition per key"),
        ("p = :s AND x = :s", "Query condition missed key schema element: c"),
        ("p = :s AND c > :s AND x = :s", "Conditions can be of length 1 or 2 only"),
        ("p = c", "Invalid KeyConditionExpression: Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
    ];
    for (text, want) in errors {
        assert_eq!(kc(text), Err(want.to_string()), "key condition: {text}");
    }
}

fn vmsg<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => "OK".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn legacy_expected() {
    let mut m = BTreeMap::new();
    m.insert(
        "a".to_string(),
        ExpectedAttributeValue {
            value: Some(s("abc")),
            ..Default::default()
        },
    );
    m.insert(
        "gone".to_string(),
        ExpectedAttributeValue {
            exists: Some(false),
            ..Default::default()
        },
    );
    m.insert(
        "n".to_string(),
        ExpectedAttributeValue {
            comparison_operator: Some("BETWEEN".into()),
            attribute_value_list: Some(vec![n("1"), n("5")]),
            ..Default::default()
        },
    );
    let c = legacy::expected(&m, None).expect("valid");
    assert!(c.eval(&item()).expect("eval"));

    let one = |e: ExpectedAttributeValue| {
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), e);
        vmsg(legacy::expected(&m, None))
    };
    assert_eq!(
        one(ExpectedAttributeValue::default()),
        "One or more parameter values were invalid: Value must be provided when Exists is null for Attribute: a"
    );
    assert_eq!(
        one(ExpectedAttributeValue {
            exists: Some(false),
            value: Some(s("x")),
            ..Default::default()
        }),
        "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a"
    );
    assert_eq!(
        one(ExpectedAttributeValue {
            comparison_operator: Some("EQ".into()),
            ..Default::default()
        }),
        "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
    );
    assert_eq!(
        one(ExpectedAttributeValue {
            comparison_operator: Some("LT".into()),
            attribute_value_list: Some(vec![V::Bool(true)]),
            ..Default::default()
        }),
        "One or more parameter values were invalid: ComparisonOperator LT is not valid for BOOL AttributeValue type"
    );
}

#[test]
fn legacy_updates_and_filters() {
    let mut m = BTreeMap::new();
    m.insert(
        "n".to_string(),
        AttributeValueUpdate {
            action: Some("ADD".into()),
            value: Some(n("3")),
        },
    );
    m.insert(
        "lst".to_string(),
        AttributeValueUpdate {
            action: Some("ADD".into()),
            value: Some(V::L(vec![s("l3")])),
        },
    );
    m.insert(
        "a".to_string(),
        AttributeValueUpdate {
            action: Some("DELETE".into()),
            value: None,
        },
    );
    let u = legacy::attribute_updates(&m).expect("valid");
    let mut it = item();
    u.apply(&mut it).expect("apply");
    assert_eq!(it["n"], n("5"));
    assert!(!it.contains_key("a"));
    assert_eq!(it["lst"], V::L(vec![s("l0"), s("l1"), s("l2"), s("l3")]));

    let mut f = BTreeMap::new();
    f.insert(
        "a".to_string(),
        legacy::Condition {
            comparison_operator: "BEGINS_WITH".into(),
            attribute_value_list: Some(vec![s("ab")]),
        },
    );
    f.insert(
        "zzz".to_string(),
        legacy::Condition {
            comparison_operator: "NULL".into(),
            attribute_value_list: None,
        },
    );
    assert!(legacy::filter(&f, Some("AND"))
        .expect("valid")
        .eval(&item())
        .expect("eval"));

    let mut k = BTreeMap::new();
    k.insert(
        "p".to_string(),
        legacy::Condition {
            comparison_operator: "EQ".into(),
            attribute_value_list: Some(vec![s("x")]),
        },
    );
    k.insert(
        "c".to_string(),
        legacy::Condition {
            comparison_operator: "NE".into(),
            attribute_value_list: Some(vec![s("x")]),
        },
    );
    // A multi-attribute key: the same rules as for KeyConditionExpression.
    let eq = |v: V| legacy::Condition {
        comparison_operator: "EQ".into(),
        attribute_value_list: Some(vec![v]),
    };
    let mut m = BTreeMap::new();
    m.insert("h1".to_string(), eq(s("x")));
    m.insert("h2".to_string(), eq(n("1")));
    m.insert(
        "r2".to_string(),
        legacy::Condition {
            comparison_operator: "GT".into(),
            attribute_value_list: Some(vec![n("1")]),
        },
    );
    assert_eq!(
        vmsg(legacy::key_conditions(&m, &["h1", "h2"], &["r1", "r2"])),
        "Query key condition not supported: RANGE key attribute r2 is specified, so RANGE key attribute r1 must be specified with an equality condition"
    );
    m.insert("r1".to_string(), eq(n("5")));
    let kc = legacy::key_conditions(&m, &["h1", "h2"], &["r1", "r2"]).expect("valid");
    assert_eq!(kc.hash, vec![s("x"), n("1")]);
    assert_eq!(kc.range_prefix, vec![n("5")]);
    assert_eq!(kc.range, Some(RangeCondition::Gt(n("1"))));
    m.remove("h2");
    assert_eq!(
        vmsg(legacy::key_conditions(&m, &["h1", "h2"], &["r1", "r2"])),
        "Query key condition not supported: HASH key attribute h2 must be specified with an equality condition"
    );

    assert_eq!(
        vmsg(legacy::key_conditions(&k, &["p"], &["c"])),
        "One or more parameter values were invalid: Attempted conditional constraint is not an indexable operation"
    );
}
