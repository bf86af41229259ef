//! Examples for every operator, validation errors, and properties (no panics, determinism).

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn pattern(text: &str) -> Pattern {
    Pattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn check(text: &str, event: Value, expected: bool) {
    assert_eq!(
        pattern(text).matches(&event),
        expected,
        "pattern {text} on event {event}"
    );
}

fn refused(text: &str, needle: &str) {
    match Pattern::parse(text) {
        Ok(p) => panic!("{text} was accepted: {p:?}"),
        Err(e) => assert!(
            e.to_string().contains(needle),
            "{text}: error {e:?} lacks {needle:?}"
        ),
    }
}

/// A stream record in Lambda's DynamoDB event shape.
fn ddb_record(event_name: &str, status: &str, amount: &str) -> Value {
    json!({
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": {"S": "order#17"}},
            "NewImage": {
                "pk": {"S": "order#17"},
                "status": {"S": status},
                "amount": {"N": amount},
                "tags": {"SS": ["rush", "gift"]}
            },
            "SequenceNumber": "4200000000000000001",
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    })
}

#[test]
fn exact_strings_and_or_of_values() {
    let p = r#"{"eventName": ["INSERT", "MODIFY"]}"#;
    check(p, ddb_record("INSERT", "new", "1"), true);
    check(p, ddb_record("MODIFY", "new", "1"), true);
    check(p, ddb_record("REMOVE", "new", "1"), false);
    // Case matters for exact values.
    check(p, ddb_record("insert", "new", "1"), false);
}

#[test]
fn nested_fields_and_conjunction() {
    let p = r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}"#;
    check(p, ddb_record("INSERT", "paid", "1"), true);
    check(p, ddb_record("INSERT", "open", "1"), false);
    check(p, ddb_record("MODIFY", "paid", "1"), false);
    // The nested path must exist.
    check(p, json!({"eventName": "INSERT", "dynamodb": {}}), false);
    check(p, json!({"eventName": "INSERT"}), false);
}

#[test]
fn null_empty_and_type_strictness() {
    let null = r#"{"a": [null]}"#;
    check(null, json!({"a": null}), true);
    check(null, json!({"a": ""}), false);
    check(null, json!({}), false);
    let empty = r#"{"a": [""]}"#;
    check(empty, json!({"a": ""}), true);
    check(empty, json!({"a": null}), false);
    check(empty, json!({}), false);
    // Numbers match numbers by representation (Lambda: 300 and 300.0 differ), never strings.
    let num = r#"{"n": [5]}"#;
    check(num, json!({"n": 5}), true);
    check(num, json!({"n": 5.0}), false);
    check(r#"{"n": [5.0]}"#, json!({"n": 5.0}), true);
    check(r#"{"n": [-2]}"#, json!({"n": -2}), true);
    check(num, json!({"n": "5"}), false);
    let text = r#"{"n": ["5"]}"#;
    check(text, json!({"n": 5}), false);
    check(text, json!({"n": "5"}), true);
    let booleans = r#"{"b": [true]}"#;
    check(booleans, json!({"b": true}), true);
    check(booleans, json!({"b": false}), false);
    check(booleans, json!({"b": "true"}), false);
}

#[test]
fn arrays_in_the_event_match_any_element() {
    let p = r#"{"dynamodb": {"NewImage": {"tags": {"SS": ["gift"]}}}}"#;
    check(p, ddb_record("INSERT", "x", "1"), true);
    let p = r#"{"dynamodb": {"NewImage": {"tags": {"SS": ["none"]}}}}"#;
    check(p, ddb_record("INSERT", "x", "1"), false);
    // Arrays of arrays are flattened.
    check(r#"{"a": [3]}"#, json!({"a": [[1, 2], [3]]}), true);
    // A nested pattern over an array of objects: one element must match all of it.
    let p = r#"{"items": {"sku": ["A"], "qty": [2]}}"#;
    check(
        p,
        json!({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}),
        false,
    );
    check(
        p,
        json!({"items": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]}),
        true,
    );
    // An empty array holds no value.
    check(r#"{"a": [{"exists": true}]}"#, json!({"a": []}), false);
    check(r#"{"a": [{"exists": false}]}"#, json!({"a": []}), true);
}

#[test]
fn prefix_and_suffix() {
    let p = r#"{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "order#"}]}}}}"#;
    check(p, ddb_record("INSERT", "x", "1"), true);
    let p = r#"{"region": [{"prefix": "us-"}]}"#;
    check(p, json!({"region": "us-east-1"}), true);
    check(p, json!({"region": "eu-west-1"}), false);
    check(p, json!({"region": "US-east-1"}), false);
    check(p, json!({"region": 5}), false);
    let p = r#"{"region": [{"prefix": {"equals-ignore-case": "us-"}}]}"#;
    check(p, json!({"region": "US-east-1"}), true);
    let p = r#"{"file": [{"suffix": ".png"}]}"#;
    check(p, json!({"file": "a/b.png"}), true);
    check(p, json!({"file": "a/b.PNG"}), false);
    check(p, json!({"file": "a/b.jpg"}), false);
    let p = r#"{"file": [{"suffix": {"equals-ignore-case": ".png"}}]}"#;
    check(p, json!({"file": "a/b.PNG"}), true);
}

#[test]
fn equals_ignore_case() {
    let p = r#"{"name": [{"equals-ignore-case": "alice"}]}"#;
    check(p, json!({"name": "ALICE"}), true);
    check(p, json!({"name": "Alice"}), true);
    check(p, json!({"name": "Alicia"}), false);
    check(p, json!({"name": ["bob", "aLiCe"]}), true);
}

#[test]
fn wildcard() {
    let p = r#"{"path": [{"wildcard": "orders/*/lines/*.json"}]}"#;
    check(p, json!({"path": "orders/17/lines/3.json"}), true);
    check(p, json!({"path": "orders/17/3.json"}), false);
    check(p, json!({"path": 17}), false);
    refused(r#"{"path": [{"wildcard": "a**"}]}"#, "consecutive");
    refused(r#"{"path": [{"wildcard": 3}]}"#, "expects a string");
}

#[test]
fn numeric_ranges() {
    let eq = r#"{"price": [{"numeric": ["=", 100]}]}"#;
    check(eq, json!({"price": 100}), true);
    check(eq, json!({"price": 100.0}), true);
    check(eq, json!({"price": 100.5}), false);
    check(eq, json!({"price": "100"}), false);
    let range = r#"{"price": [{"numeric": [">", 10, "<=", 20]}]}"#;
    check(range, json!({"price": 10}), false);
    check(range, json!({"price": 10.01}), true);
    check(range, json!({"price": 20}), true);
    check(range, json!({"price": 20.5}), false);
    check(range, json!({"price": [1, 15]}), true);
    let open = r#"{"t": [{"numeric": ["<", 0]}]}"#;
    check(open, json!({"t": -1}), true);
    check(open, json!({"t": 0}), false);
    let ge = r#"{"t": [{"numeric": [">=", 0]}]}"#;
    check(ge, json!({"t": 0}), true);
    check(ge, json!({"t": -0.5}), false);
    // Bounds in either order.
    check(
        r#"{"t": [{"numeric": ["<", 5, ">", 1]}]}"#,
        json!({"t": 3}),
        true,
    );
    // DynamoDB numbers are strings in stream records: numeric never matches them.
    let ddb = r#"{"dynamodb": {"NewImage": {"amount": {"N": [{"numeric": [">", 0]}]}}}}"#;
    check(ddb, ddb_record("INSERT", "x", "5"), false);
}

#[test]
fn numeric_validation() {
    refused(r#"{"p": [{"numeric": []}]}"#, "pairs");
    refused(r#"{"p": [{"numeric": [">"]}]}"#, "pairs");
    refused(
        r#"{"p": [{"numeric": [">", "5"]}]}"#,
        "followed by a number",
    );
    refused(
        r#"{"p": [{"numeric": ["!=", 5]}]}"#,
        "unrecognized numeric operator",
    );
    refused(
        r#"{"p": [{"numeric": [">", 1, ">", 2]}]}"#,
        "at most one lower",
    );
    refused(
        r#"{"p": [{"numeric": ["=", 1, "<", 2]}]}"#,
        "no other bound",
    );
    refused(r#"{"p": [{"numeric": [">", 5, "<", 5]}]}"#, "less than");
    refused(r#"{"p": [{"numeric": [">", 1, "<", 2, ">", 0]}]}"#, "pairs");
    refused(r#"{"p": [{"numeric": 5}]}"#, "expects an array");
}

#[test]
fn exists() {
    let yes = r#"{"dynamodb": {"OldImage": [{"exists": true}]}}"#;
    // exists tests leaf values only: an object is not a leaf.
    check(yes, ddb_record("INSERT", "x", "1"), false);
    let leaf = r#"{"dynamodb": {"NewImage": {"status": {"S": [{"exists": true}]}}}}"#;
    check(leaf, ddb_record("INSERT", "x", "1"), true);
    let no = r#"{"dynamodb": {"OldImage": {"status": {"S": [{"exists": false}]}}}}"#;
    check(no, ddb_record("INSERT", "x", "1"), true);
    let no = r#"{"dynamodb": {"NewImage": {"status": {"S": [{"exists": false}]}}}}"#;
    check(no, ddb_record("INSERT", "x", "1"), false);
    check(r#"{"a": [{"exists": true}]}"#, json!({"a": null}), true);
    check(r#"{"a": [{"exists": false}]}"#, json!({"a": null}), false);
    // exists false on a non-object event: nothing is there.
    check(r#"{"a": [{"exists": false}]}"#, json!("scalar"), true);
    refused(r#"{"a": [{"exists": "yes"}]}"#, "true or false");
}

#[test]
fn anything_but() {
    let p = r#"{"weather": [{"anything-but": ["Raining", "Snowing"]}]}"#;
    check(p, json!({"weather": "Sunny"}), true);
    check(p, json!({"weather": "Raining"}), false);
    // The field must be there.
    check(p, json!({}), false);
    let single = r#"{"state": [{"anything-but": "initializing"}]}"#;
    check(single, json!({"state": "running"}), true);
    check(single, json!({"state": "initializing"}), false);
    let numbers = r#"{"code": [{"anything-but": [404, 500]}]}"#;
    check(numbers, json!({"code": 200}), true);
    check(numbers, json!({"code": 404}), false);
    // 404.0 is not the value 404 for exact matching.
    check(numbers, json!({"code": 404.0}), true);
    let prefix = r#"{"region": [{"anything-but": {"prefix": "us-"}}]}"#;
    check(prefix, json!({"region": "eu-west-1"}), true);
    check(prefix, json!({"region": "us-east-1"}), false);
    let suffix = r#"{"file": [{"anything-but": {"suffix": ".png"}}]}"#;
    check(suffix, json!({"file": "a.jpg"}), true);
    check(suffix, json!({"file": "a.png"}), false);
    let ic = r#"{"state": [{"anything-but": {"equals-ignore-case": ["Off", "idle"]}}]}"#;
    check(ic, json!({"state": "OFF"}), false);
    check(ic, json!({"state": "IDLE"}), false);
    check(ic, json!({"state": "on"}), true);
    let wc = r#"{"path": [{"anything-but": {"wildcard": "*/lib/*"}}]}"#;
    check(wc, json!({"path": "src/lib/x.rs"}), false);
    check(wc, json!({"path": "src/bin/x.rs"}), true);
    // Over an array: some element is not excluded.
    check(p, json!({"weather": ["Raining", "Windy"]}), true);
    check(p, json!({"weather": ["Raining"]}), false);

    refused(
        r#"{"a": [{"anything-but": ["x", 1]}]}"#,
        "only strings or only numbers",
    );
    refused(r#"{"a": [{"anything-but": []}]}"#, "must not be empty");
    refused(
        r#"{"a": [{"anything-but": {"numeric": [">", 1]}}]}"#,
        "unsupported operator",
    );
    refused(
        r#"{"a": [{"anything-but": {"prefix": 1}}]}"#,
        "expects a string",
    );
    refused(
        r#"{"a": [{"anything-but": true}]}"#,
        "expects a string, a number",
    );
}

#[test]
fn cidr() {
    let p = r#"{"sourceIp": [{"cidr": "10.0.0.0/24"}]}"#;
    check(p, json!({"sourceIp": "10.0.0.255"}), true);
    check(p, json!({"sourceIp": "10.0.1.0"}), false);
    check(p, json!({"sourceIp": "not an ip"}), false);
    check(p, json!({"sourceIp": "::1"}), false);
    let v6 = r#"{"ip": [{"cidr": "2001:db8::/32"}]}"#;
    check(v6, json!({"ip": "2001:db8:ffff::1"}), true);
    check(v6, json!({"ip": "2001:db9::1"}), false);
    check(
        r#"{"ip": [{"cidr": "0.0.0.0/0"}]}"#,
        json!({"ip": "8.8.8.8"}),
        true,
    );
    refused(r#"{"ip": [{"cidr": "10.0.0.0/33"}]}"#, "not a CIDR block");
    refused(r#"{"ip": [{"cidr": "10.0.0/8"}]}"#, "not a CIDR block");
    refused(r#"{"ip": [{"cidr": "10.0.0.0/+8"}]}"#, "not a CIDR block");
}

#[test]
fn or_across_fields() {
    let p = r#"{"$or": [{"eventName": ["REMOVE"]}, {"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}]}"#;
    check(p, ddb_record("REMOVE", "open", "1"), true);
    check(p, ddb_record("INSERT", "paid", "1"), true);
    check(p, ddb_record("INSERT", "open", "1"), false);
    // $or combines with sibling fields by AND, and nests.
    let p = r#"{"source": ["shop"], "$or": [{"a": [1]}, {"$or": [{"b": [2]}, {"c": [3]}]}]}"#;
    check(p, json!({"source": "shop", "c": 3}), true);
    check(p, json!({"source": "shop", "d": 3}), false);
    check(p, json!({"source": "bank", "a": 1}), false);
    refused(r#"{"$or": [{"a": [1]}]}"#, "at least two");
    refused(r#"{"$or": {"a": [1]}}"#, "must be an array");
    refused(r#"{"$or": [{"a": [1]}, 3]}"#, "must be an object");
}

#[test]
fn structural_validation() {
    refused("", "not valid JSON");
    refused("{\"a\": [1]", "not valid JSON");
    refused("[1]", "must be a JSON object");
    refused("{}", "empty object");
    refused(r#"{"a": {}}"#, "empty object");
    refused(r#"{"a": "x"}"#, "array of matchers");
    refused(r#"{"a": 5}"#, "array of matchers");
    refused(r#"{"a": []}"#, "empty array");
    refused(r#"{"a": [[1]]}"#, "cannot be an array");
    refused(
        r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
        "exactly one operator",
    );
    refused(r#"{"a": [{}]}"#, "exactly one operator");
    refused(
        r#"{"a": [{"regex": "x"}]}"#,
        "unrecognized match type \"regex\"",
    );
    refused(r#"{"a": [{"prefix": 5}]}"#, "expects a string");
    refused(
        r#"{"a": [{"prefix": {"wildcard": "x"}}]}"#,
        "equals-ignore-case",
    );
    refused(
        r#"{"a": [{"equals-ignore-case": ["x"]}]}"#,
        "expects a string",
    );
    // The error names where the problem is.
    refused(
        r#"{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": 1}]}}}}"#,
        "\"dynamodb\".\"Keys\".\"pk\".\"S\"",
    );
    let long = format!(r#"{{"a": ["{}"]}}"#, "x".repeat(MAX_PATTERN_LENGTH));
    assert!(matches!(
        Pattern::parse(&long),
        Err(FilterError::PatternTooLong(_))
    ));
}

#[test]
fn filters_or_patterns_together() {
    let filters = Filters::parse([
        r#"{"eventName": ["REMOVE"]}"#,
        r#"{"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}"#,
    ])
    .unwrap();
    assert_eq!(filters.patterns().len(), 2);
    assert!(filters.matches(&ddb_record("REMOVE", "x", "1")));
    assert!(filters.matches(&ddb_record("MODIFY", "paid", "1")));
    assert!(!filters.matches(&ddb_record("MODIFY", "open", "1")));
    // No filters: everything passes.
    assert!(Filters::default().matches(&json!({})));
    assert!(Filters::parse(Vec::<String>::new()).unwrap().is_empty());
    let six = vec![r#"{"a": [1]}"#; 6];
    assert_eq!(Filters::parse(six), Err(FilterError::TooManyFilters(6)));
    assert!(Filters::parse([r#"{"a": [1]}"#, "{}"]).is_err());
}

#[test]
fn filter_criteria_object() {
    let criteria = json!({"Filters": [{"Pattern": "{\"eventName\": [\"INSERT\"]}"}]});
    let filters = Filters::from_criteria(&criteria).unwrap();
    assert!(filters.matches(&ddb_record("INSERT", "x", "1")));
    assert!(!filters.matches(&ddb_record("REMOVE", "x", "1")));
    assert_eq!(
        filters.patterns()[0].source(),
        "{\"eventName\": [\"INSERT\"]}"
    );
    assert!(Filters::from_criteria(&json!({})).unwrap().is_empty());
    assert!(Filters::from_criteria(&json!({"Filters": [{"Pattern": 3}]})).is_err());
    assert!(Filters::from_criteria(&json!({"Filters": "x"})).is_err());
    assert!(Filters::from_criteria(&json!([])).is_err());
    let seven: Vec<Value> = (0..7).map(|_| json!({"Pattern": "{\"a\":[1]}"})).collect();
    assert_eq!(
        Filters::from_criteria(&json!({ "Filters": seven })),
        Err(FilterError::TooManyFilters(7))
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|n| json!(n)),
        "[a-c*\\\\/.#-]{0,6}".prop_map(Value::String),
        prop_oneof![Just("10.0.0.7"), Just("::1"), Just("us-east-1")]
            .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[abc$]{1,3}|\\$or|numeric|prefix|exists", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Mostly valid patterns over fields a, b, c.
fn arb_pattern_json() -> impl Strategy<Value = Value> {
    let matcher = prop_oneof![
        arb_json().prop_filter("scalar", |v| !v.is_array() && !v.is_object()),
        "[a-c]{0,3}".prop_map(|s| json!({"prefix": s})),
        "[a-c]{0,3}".prop_map(|s| json!({"suffix": {"equals-ignore-case": s}})),
        "[a-c]{0,3}".prop_map(|s| json!({"equals-ignore-case": s})),
        "[a-c*]{0,4}".prop_map(|s| json!({"wildcard": s})),
        (-10i32..10, 0i32..10).prop_map(|(a, w)| json!({"numeric": [">=", a, "<", a + w]})),
        any::<bool>().prop_map(|b| json!({"exists": b})),
        "[a-c]{0,2}".prop_map(|s| json!({"anything-but": [s]})),
        Just(json!({"cidr": "10.0.0.0/8"})),
    ];
    let leaf = prop::collection::vec(matcher, 0..3).prop_map(Value::Array);
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop::collection::vec(("[abc]|\\$or", inner), 0..3).prop_map(|fields| {
            let map: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| {
                    if k == "$or" {
                        (k, json!([{"a": v.clone()}, {"b": v}]))
                    } else {
                        (k, v)
                    }
                })
                .collect();
            Value::Object(map)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,64}") {
        let _ = Pattern::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_json(value in arb_json()) {
        let _ = Pattern::parse(&value.to_string());
    }

    #[test]
    fn matching_is_total_and_deterministic(p in arb_pattern_json(), event in arb_json()) {
        let text = p.to_string();
        if let Ok(parsed) = Pattern::parse(&text) {
            let first = parsed.matches(&event);
            prop_assert_eq!(first, parsed.matches(&event));
            // Parsing the same text again gives the same answer.
            prop_assert_eq!(first, Pattern::parse(&text).unwrap().matches(&event));
        }
    }

    #[test]
    fn exists_true_and_false_are_complements(event in arb_json()) {
        let yes = pattern(r#"{"a": [{"exists": true}]}"#).matches(&event);
        let no = pattern(r#"{"a": [{"exists": false}]}"#).matches(&event);
        prop_assert_ne!(yes, no);
    }

    #[test]
    fn anything_but_complements_exact_on_present_strings(s in "[a-d]{0,3}", t in "[a-d]{0,3}") {
        let event = json!({"f": s});
        let exact = Pattern::parse(&json!({"f": [t.clone()]}).to_string()).unwrap().matches(&event);
        let but = Pattern::parse(&json!({"f": [{"anything-but": [t]}]}).to_string()).unwrap().matches(&event);
        prop_assert_ne!(exact, but);
    }
}
