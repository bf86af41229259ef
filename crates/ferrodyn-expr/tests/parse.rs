//! Table-driven tests of parsing and validation: valid inputs and exact error messages.

use std::collections::HashMap;

use ferrodyn_expr::{CondKind, Resolver};
use ferrodyn_model::{AttributeValue, Error, Number};

fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.to_string())
}
fn n(x: &str) -> AttributeValue {
    AttributeValue::N(Number::parse(x).expect("number"))
}

fn values() -> HashMap<String, AttributeValue> {
    let mut v = HashMap::new();
    v.insert(":s".into(), s("abc"));
    v.insert(":t".into(), s("S"));
    v.insert(":dog".into(), s("DOG"));
    v.insert(":n".into(), n("5"));
    v.insert(":m".into(), n("3"));
    v.insert(":l".into(), AttributeValue::L(vec![s("x")]));
    v.insert(":b".into(), AttributeValue::Bool(true));
    v.insert(":ss".into(), AttributeValue::SS(vec!["a".into()]));
    v
}

fn names() -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("#a".into(), "a".into());
    m.insert("#size".into(), "size".into());
    m
}

fn msg(r: Result<(), Error>) -> String {
    match r {
        Ok(()) => "OK".to_string(),
        Err(Error::Validation(m)) => m,
        Err(e) => format!("other error: {e:?}"),
    }
}

fn cond(text: &str) -> String {
    let (nm, vs) = (names(), values());
    let mut r = Resolver::new(Some(&nm), Some(&vs));
    msg(r.condition(text, CondKind::Condition).map(|_| ()))
}

fn update(text: &str) -> String {
    let (nm, vs) = (names(), values());
    let mut r = Resolver::new(Some(&nm), Some(&vs));
    msg(r.update(text).map(|_| ()))
}

fn projection(text: &str) -> String {
    let nm = names();
    let mut r = Resolver::new(Some(&nm), None);
    msg(r.projection(text).map(|_| ()))
}

#[test]
fn conditions() {
    let cases: &[(&str, &str)] = &[
        ("a = :s", "OK"),
        ("#a <> :n AND (b < :n OR NOT c >= :n)", "OK"),
        ("a BETWEEN :m AND :n", "OK"),
        ("a IN (:s, :n, :l)", "OK"),
        ("attribute_exists(a.b[3].c) and attribute_not_exists(#a)", "OK"),
        ("attribute_type(a, :t)", "OK"),
        ("begins_with(a, :s) OR contains(a, :n)", "OK"),
        ("size(a) > :n", "OK"),
        ("size(:s) > :n", "OK"),
        ("(a = :s)", "OK"),
        ("((a = :s) and b = :s)", "OK"),
        ("((a = :s))", "Invalid ConditionExpression: The expression has redundant parentheses;"),
        ("", "Invalid ConditionExpression: The expression can not be empty;"),
        ("a != :s", "Invalid ConditionExpression: Syntax error; token: \"!\", near: \"a !=\""),
        ("a = ", "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"=\""),
        ("a IN ()", "Invalid ConditionExpression: Syntax error; token: \")\", near: \"()\""),
        ("size = :s", "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: size"),
        ("#size = :s", "OK"),
        ("#x = :s", "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x"),
        ("a = :zz", "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :zz"),
        ("dog(a)", "Invalid ConditionExpression: Invalid function name; function: dog"),
        ("size(a)", "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size"),
        ("attribute_exists(a) < :n", "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists"),
        ("if_not_exists(a, a) = :n", "Invalid ConditionExpression: The function is not allowed in a condition expression; function: if_not_exists"),
        ("size(a, a) = :n", "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: size, number of operands: 2"),
        ("size(:n) = :n", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N"),
        ("size(size(a)) = :n", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N"),
        ("begins_with(a, :n)", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
        ("a < :b", "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: BOOL"),
        ("attribute_exists(:s)", "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists"),
        ("attribute_type(a, :dog)", "Invalid ConditionExpression: Invalid attribute type name found; type: DOG, valid types: { B, NULL, SS, BOOL, L, BS, N, NS, S, M }"),
        ("a BETWEEN :n AND :m", "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {N:5}, upper operand: AttributeValue: {N:3}"),
        ("a[99999999999999] = :s", "Invalid ConditionExpression: List index is not within the allowable range; index: [99999999999999]"),
        ("a[-1] = :s", "Invalid ConditionExpression: Syntax error; token: \"-\", near: \"[-1\""),
        // A syntax error wins over an undefined placeholder met earlier.
        ("#x = :s AND", "Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\""),
    ];
    for (text, want) in cases {
        assert_eq!(cond(text), *want, "expression: {text}");
    }
}

#[test]
fn updates() {
    let cases: &[(&str, &str)] = &[
        ("SET a = :s", "OK"),
        ("set a = :s, b = a + :n REMOVE c, d[2] ADD e :n DELETE f :ss", "OK"),
        ("SET a = if_not_exists(a, :n) - :n", "OK"),
        ("SET a = list_append(if_not_exists(a, :l), :l)", "OK"),
        ("SET a[3].b = :s", "OK"),
        ("", "Invalid UpdateExpression: The expression can not be empty;"),
        ("INVALID SYNTAX HERE", "Invalid UpdateExpression: Syntax error; token: \"INVALID\", near: \"INVALID SYNTAX\""),
        ("SET _123 = :s", "Invalid UpdateExpression: Syntax error; token: \"_\", near: \"SET _123\""),
        ("SET a = :s SET b = :s", "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;"),
        ("SET a = :n + :n + :n", "Invalid UpdateExpression: Syntax error; token: \"+\", near: \":n + :n\""),
        ("SET a = if_not_exists(a, :n + :n)", "Invalid UpdateExpression: Syntax error; token: \"+\", near: \":n + :n\""),
        ("SET a[:n] = :s", "Invalid UpdateExpression: Syntax error; token: \":n\", near: \"[:n]\""),
        ("SET :n = :s", "Invalid UpdateExpression: Syntax error; token: \":n\", near: \"SET :n =\""),
        ("SET a = :s REMOVE a", "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]"),
        ("SET a = :s, a.b = :s", "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]"),
        ("SET a.b = :s, a[1] = :s", "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]"),
        ("SET a.b = :s, a.c = :s", "OK"),
        ("SET a = f(b)", "Invalid UpdateExpression: Invalid function name; function: f"),
        ("SET a = attribute_exists(b)", "Invalid UpdateExpression: The function is not allowed in an update expression; function: attribute_exists"),
        ("SET a = :s + :n", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S"),
        ("SET a = list_append(:s, a)", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S"),
        ("SET a = list_append(a)", "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1"),
        ("SET a = list_append(list_append(a, :l), :l)", "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append"),
        ("SET a = if_not_exists(:n, :n)", "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists"),
        ("SET a = if_not_exists(:zz, :n)", "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :zz"),
        ("ADD a :s", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING, typeSet: ALLOWED_FOR_ADD_OPERAND"),
        ("DELETE a :n", "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER, typeSet: ALLOWED_FOR_DELETE_OPERAND"),
        ("ADD a b", "Invalid UpdateExpression: Syntax error; token: \"b\", near: \"a b\""),
        ("SET a = :v", "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :v"),
    ];
    for (text, want) in cases {
        assert_eq!(update(text), *want, "expression: {text}");
    }
}

#[test]
fn projections() {
    let deep33 = format!("a{}", ".b".repeat(32));
    let deep32 = format!("a{}", ".b".repeat(31));
    let cases: Vec<(&str, String)> = vec![
        ("a, b.c, d[1], #a.x", "Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, x]".into()),
        ("a, b.c, d[1]", "OK".into()),
        ("!!! INVALID !!!", "Invalid ProjectionExpression: Syntax error; token: \"!\", near: \"!!\"".into()),
        ("a,", "Invalid ProjectionExpression: Syntax error; token: \"<EOF>\", near: \",\"".into()),
        ("a[]", "Invalid ProjectionExpression: Syntax error; token: \"]\", near: \"[]\"".into()),
        (&deep32, "OK".into()),
        (&deep33, "Invalid ProjectionExpression: The document path has too many nesting levels; nesting levels: 33".into()),
        ("a.b, a[0]", "Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]".into()),
    ];
    for (text, want) in cases {
        assert_eq!(projection(text), want, "expression: {text}");
    }
}

#[test]
fn limits() {
    let big = format!("a = :s{}", " ".repeat(5000));
    assert_eq!(
        cond(&big),
        format!(
            "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: {}",
            big.len()
        )
    );
    // 149 levels: 299 operators, accepted.
    let ok = format!("a < :n{}{}", " or (a < :n".repeat(149), ")".repeat(149));
    assert_eq!(cond(&ok), "OK");
    let too_many = format!("a < :n{}{}", " or (a < :n".repeat(160), ")".repeat(160));
    assert_eq!(
        cond(&too_many),
        "Invalid ConditionExpression: The expression contains too many operators; operator count: 301"
    );
    let nots = format!("{}a < :n", "NOT ".repeat(1000));
    assert!(cond(&nots).contains("too many operators"));
    let parens = format!("{}a < :n{}", "(".repeat(2000), ")".repeat(2000));
    assert_eq!(
        cond(&parens),
        "Invalid ConditionExpression: The expression has redundant parentheses;"
    );
    let mut ins = String::from("a IN (");
    for i in 0..101 {
        if i > 0 {
            ins.push_str(", ");
        }
        ins.push_str(":n");
    }
    ins.push(')');
    assert!(cond(&ins).contains("IN"), "{}", cond(&ins));
}

/// A 10,000-deep nested expression must be rejected cleanly, even on a small stack.
#[test]
fn ten_thousand_deep() {
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(|| {
            let vs = values();
            let mut out = Vec::new();
            for text in [
                format!("{}a = :s{}", "(".repeat(10_000), ")".repeat(10_000)),
                format!("{}a = :s", "NOT ".repeat(10_000)),
                format!("a = {}b{}", "f(".repeat(10_000), ")".repeat(10_000)),
                format!("{}a", "(".repeat(10_000)),
            ] {
                let mut r = Resolver::new(None, Some(&vs));
                out.push(r.condition(&text, CondKind::Filter).is_err());
                // Without the size limit, the depth limits must still hold.
                let short: String = text.chars().take(4000).collect();
                let mut r = Resolver::new(None, Some(&vs));
                out.push(r.condition(&short, CondKind::Filter).is_err());
                let mut r = Resolver::new(None, Some(&vs));
                let _ = r.update(&format!("SET a = {short}"));
            }
            out
        })
        .expect("spawn");
    let results = handle.join().expect("no stack overflow");
    assert!(results.iter().all(|e| *e));
}

#[test]
fn unused_placeholders() {
    let (nm, vs) = (names(), values());
    let mut r = Resolver::new(Some(&nm), Some(&vs));
    r.condition("#a = :s", CondKind::Condition).expect("parse");
    assert_eq!(
        msg(r.finish()),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#size}"
    );
    let mut r = Resolver::new(Some(&nm), Some(&vs));
    r.condition("#a = :s AND #size = :n", CondKind::Condition)
        .expect("parse");
    r.update("SET x = :t, y = :dog, z = :m").expect("parse");
    assert_eq!(
        msg(r.finish()),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:b, :l, :ss}"
    );
    let empty = HashMap::new();
    let r = Resolver::new(Some(&empty), None);
    assert_eq!(
        msg(r.check_not_empty()),
        "ExpressionAttributeNames must not be empty"
    );
}
