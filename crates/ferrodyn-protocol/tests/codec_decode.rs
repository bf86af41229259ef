//! Decoding: DynamoDB's exact exception types and messages for malformed attribute values.

use ferrodyn_model::{AttributeValue, Error, Number};
use ferrodyn_protocol::codec::{
    check_item, decode_item, decode_item_with, decode_value, decode_value_list_with,
    decode_value_map, decode_value_map_with, decode_value_with, Layer, Position,
};
use serde_json::{json, Value};

const OVERFLOW: &str =
    "Number overflow. Attempting to store a number with magnitude larger than supported range";
const UNDERFLOW: &str =
    "Number underflow. Attempting to store a number with magnitude smaller than supported range";
const NOT_NUMERIC: &str = "The parameter cannot be converted to a numeric value";
const DIGITS: &str = "Attempting to store more than 38 significant digits in a Number";
const NEST: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";
const EMPTY: &str =
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
const MANY: &str = "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes";

fn validation(m: &str) -> Error {
    Error::Validation(m.to_owned())
}
fn serialization(m: &str) -> Error {
    Error::Serialization(m.to_owned())
}
fn item_err(item: Value, layer: Layer) -> Error {
    decode_item_with(&item, layer).expect_err("should be rejected")
}
/// Error for `{"a": value}` as an item attribute.
fn attr_err(value: Value, layer: Layer) -> Error {
    item_err(json!({ "a": value }), layer)
}
fn num(s: &str) -> Number {
    Number::parse(s).unwrap()
}

/// `{key: v}` without `json!`, which would clone (recursively) an interpolated `Value`.
fn object(key: &str, v: Value) -> Value {
    let mut map = serde_json::Map::new();
    map.insert(key.to_owned(), v);
    Value::Object(map)
}

/// A value wrapped in `depth` single-member maps.
fn deep(depth: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for _ in 0..depth {
        v = object("M", object("n", v));
    }
    v
}

#[test]
fn decodes_every_type() {
    let item = decode_item(&json!({
        "s": {"S": "x"}, "e": {"S": ""}, "n": {"N": "-1.50"}, "b": {"B": "AQI="}, "eb": {"B": ""},
        "t": {"BOOL": true}, "z": {"NULL": true}, "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]}, "bs": {"BS": ["AA==", "/w=="]},
        "m": {"M": {"k": {"S": "v"}}}, "l": {"L": [{"N": "1"}, {"S": "x"}]}, "em": {"M": {}}, "el": {"L": []}
    }))
    .unwrap();
    assert_eq!(item["s"], AttributeValue::S("x".into()));
    assert_eq!(item["e"], AttributeValue::S(String::new()));
    assert_eq!(item["n"], AttributeValue::N(num("-1.5")));
    assert_eq!(item["b"], AttributeValue::B(vec![1, 2]));
    assert_eq!(item["eb"], AttributeValue::B(vec![]));
    assert_eq!(item["t"], AttributeValue::Bool(true));
    assert_eq!(item["z"], AttributeValue::Null);
    assert_eq!(item["ss"], AttributeValue::SS(vec!["a".into(), "b".into()]));
    assert_eq!(item["ns"], AttributeValue::NS(vec![num("1"), num("2")]));
    assert_eq!(item["bs"], AttributeValue::BS(vec![vec![0], vec![255]]));
    assert!(matches!(&item["m"], AttributeValue::M(m) if m["k"] == AttributeValue::S("v".into())));
    assert!(matches!(&item["l"], AttributeValue::L(l) if l.len() == 2));
    assert!(matches!(&item["em"], AttributeValue::M(m) if m.is_empty()));
    assert!(matches!(&item["el"], AttributeValue::L(l) if l.is_empty()));
}

#[test]
fn unknown_and_null_members_are_ignored() {
    assert_eq!(
        decode_value(&json!({"S": "x", "X": 5, "N": null})).unwrap(),
        AttributeValue::S("x".into())
    );
    for v in [
        json!({}),
        json!({"a": ""}),
        json!({"S": null}),
        json!({"M": {"a": {}}}),
        json!({"L": [{}]}),
        json!({"L": [null]}),
    ] {
        assert_eq!(attr_err(v, Layer::Current), validation(EMPTY));
    }
}

#[test]
fn boolean_strings_are_read_as_booleans() {
    for (s, b) in [
        ("true", true),
        ("YES", true),
        ("1", true),
        ("False", false),
        ("no", false),
        ("0", false),
    ] {
        assert_eq!(
            decode_value(&json!({"BOOL": s})).unwrap(),
            AttributeValue::Bool(b)
        );
    }
    assert_eq!(
        decode_value(&json!({"NULL": "yes"})).unwrap(),
        AttributeValue::Null
    );
}

#[test]
fn validation_messages() {
    let p = "One or more parameter values were invalid: ";
    let cases: Vec<(Value, String)> = vec![
        (
            json!({"NULL": false}),
            format!("{p}Null attribute value types must have the value of true"),
        ),
        (
            json!({"NULL": "no"}),
            format!("{p}Null attribute value types must have the value of true"),
        ),
        (
            json!({"SS": []}),
            format!("{p}An string set  may not be empty"),
        ),
        (
            json!({"NS": []}),
            format!("{p}An number set  may not be empty"),
        ),
        (
            json!({"BS": []}),
            format!("{p}Binary sets should not be empty"),
        ),
        (json!({"S": "a", "N": "1"}), MANY.to_owned()),
        (json!({"S": "", "N": ""}), format!("{NOT_NUMERIC}: ")),
        (json!({"S": "a", "N": "b"}), format!("{NOT_NUMERIC}: b")),
        (json!({"NS": ["1", ""]}), format!("{NOT_NUMERIC}: ")),
        (
            json!({"M": {"x": {"SS": []}}}),
            format!("{p}An string set  may not be empty"),
        ),
        (
            json!({"L": [{"SS": []}]}),
            format!("{p}An string set  may not be empty"),
        ),
    ];
    for (v, msg) in cases {
        assert_eq!(attr_err(v.clone(), Layer::Current), validation(&msg), "{v}");
    }
}

#[test]
fn number_messages_current_layer() {
    let cases: &[(&str, String)] = &[
        ("1e99999999999", OVERFLOW.into()),
        ("-1e99999999999", OVERFLOW.into()),
        ("1e-99999999999", UNDERFLOW.into()),
        ("1e2147483648", OVERFLOW.into()),
        ("1e2147483647", OVERFLOW.into()),
        ("1e-2147483648", UNDERFLOW.into()),
        ("1e126", OVERFLOW.into()),
        ("-1e126", OVERFLOW.into()),
        ("11e125", OVERFLOW.into()),
        ("1e-131", UNDERFLOW.into()),
        ("0.9e-130", UNDERFLOW.into()),
        ("0e126", OVERFLOW.into()),
        ("0e-131", UNDERFLOW.into()),
        (
            "1e9223372036854775808",
            format!("{NOT_NUMERIC}: 1e9223372036854775808"),
        ),
        ("abc", format!("{NOT_NUMERIC}: abc")),
        ("1.2.3", format!("{NOT_NUMERIC}: 1.2.3")),
        ("", format!("{NOT_NUMERIC}: ")),
        (" 1", format!("{NOT_NUMERIC}:  1")),
        ("1 ", format!("{NOT_NUMERIC}: 1 ")),
        ("0x10", format!("{NOT_NUMERIC}: 0x10")),
        ("1e", format!("{NOT_NUMERIC}: 1e")),
        ("NaN", format!("{NOT_NUMERIC}: NaN")),
        ("Infinity", format!("{NOT_NUMERIC}: Infinity")),
        ("-Infinity", format!("{NOT_NUMERIC}: -Infinity")),
        ("1234567890123456789012345678901234567890", DIGITS.into()),
        ("-1.23456789012345678901234567890123456789", DIGITS.into()),
    ];
    for (n, msg) in cases {
        assert_eq!(
            attr_err(json!({"N": n}), Layer::Current),
            validation(msg),
            "{n}"
        );
        // The same wording for a set member and a nested number.
        assert_eq!(
            attr_err(json!({"NS": ["1", n]}), Layer::Current),
            validation(msg),
            "{n}"
        );
        assert_eq!(
            attr_err(json!({"M": {"x": {"L": [{"N": n}]}}}), Layer::Current),
            validation(msg),
            "{n}"
        );
    }
}

#[test]
fn number_messages_older_layer() {
    let cases: &[(&str, String)] = &[
        ("abc", format!("{NOT_NUMERIC}: abc")),
        ("", NOT_NUMERIC.into()),
        ("1e126", OVERFLOW.into()),
        ("1e2147483647", UNDERFLOW.into()),
        ("1e99999999999", format!("{NOT_NUMERIC}: 1e99999999999")),
        ("1e2147483648", format!("{NOT_NUMERIC}: 1e2147483648")),
        ("1e-2147483648", format!("{NOT_NUMERIC}: 1e-2147483648")),
        ("1e-131", UNDERFLOW.into()),
    ];
    for (n, msg) in cases {
        assert_eq!(
            attr_err(json!({"N": n}), Layer::Older),
            validation(msg),
            "{n}"
        );
    }
}

#[test]
fn accepted_numbers() {
    for (input, canonical) in [
        ("3", Some("3")),
        ("+3", Some("3")),
        (".123", Some("0.123")),
        ("0001.23", Some("1.23")),
        ("1e+5", Some("100000")),
        ("-17e5", Some("-1700000")),
        ("5.", Some("5")),
        ("0e125", Some("0")),
        ("0.0e126", Some("0")),
        ("1e-130", None),
        ("9.9999999999999999999999999999999999999E+125", None),
        (
            "12345678901234567890123456789012345678",
            Some("12345678901234567890123456789012345678"),
        ),
    ] {
        let v = decode_value(&json!({ "N": input })).unwrap_or_else(|e| panic!("{input}: {e}"));
        let AttributeValue::N(n) = v else {
            panic!("not a number")
        };
        if let Some(c) = canonical {
            assert_eq!(n.to_string(), c, "{input}");
        }
    }
}

#[test]
fn duplicate_messages_current_layer() {
    let p = "One or more parameter values were invalid: ";
    assert_eq!(
        attr_err(json!({"SS": ["b", "a", "b"]}), Layer::Current),
        validation(&format!(
            "{p}Input collection [a, b, b] contains duplicates."
        ))
    );
    assert_eq!(
        attr_err(json!({"SS": ["c", "a", "c", "b", "a"]}), Layer::Current),
        validation(&format!(
            "{p}Input collection [a, c, c, b, a] contains duplicates."
        ))
    );
    assert_eq!(
        attr_err(json!({"BS": ["/w==", "AA==", "AA=="]}), Layer::Current),
        validation(&format!(
            "{p}Input collection [\"AA==\",\"/w==\",\"AA==\"]of type BS contains duplicates."
        ))
    );
    assert_eq!(
        attr_err(json!({"NS": ["2", "1", "2"]}), Layer::Current),
        validation(&format!("{p}Input collection contains duplicates."))
    );
    // Numbers compare by value.
    assert_eq!(
        attr_err(json!({"NS": ["1", "1.0"]}), Layer::Current),
        validation(&format!("{p}Input collection contains duplicates."))
    );
    assert!(decode_value(&json!({"SS": ["", "a"]})).is_ok());
}

#[test]
fn duplicate_messages_older_layer() {
    let p = "One or more parameter values were invalid: ";
    assert_eq!(
        attr_err(json!({"SS": ["b", "a", "b"]}), Layer::Older),
        validation(&format!(
            "{p}Input collection [b, a, b] contains duplicates."
        ))
    );
    assert_eq!(
        attr_err(json!({"BS": ["/w==", "AA==", "AA=="]}), Layer::Older),
        validation(&format!(
            "{p}Input collection [/w==, AA==, AA==]of type BS contains duplicates."
        ))
    );
    assert_eq!(
        attr_err(json!({"NS": ["2", "1", "2"]}), Layer::Older),
        validation("Input collection contains duplicates")
    );
}

#[test]
fn serialization_messages() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"S": 5}), "NUMBER_VALUE cannot be converted to String"),
        (json!({"S": 5.5}), "DECIMAL_VALUE cannot be converted to String"),
        (json!({"N": 123}), "NUMBER_VALUE cannot be converted to String"),
        (json!({"S": true}), "TRUE_VALUE cannot be converted to String"),
        (json!({"S": false}), "FALSE_VALUE cannot be converted to String"),
        (json!({"S": []}), "Unrecognized collection type class java.lang.String"),
        (json!({"S": {}}), "Start of structure or map found where not expected"),
        (json!({"BOOL": "23"}), "Unexpected token received from parser"),
        (json!({"BOOL": 23}), "NUMBER_VALUE cannot be converted to Boolean"),
        (json!({"NULL": 34.56}), "DECIMAL_VALUE cannot be converted to Boolean"),
        (json!({"BOOL": []}), "Unrecognized collection type class java.lang.Boolean"),
        (json!({"BOOL": {}}), "Start of structure or map found where not expected"),
        (json!({"B": true}), "only base-64-encoded strings are convertible to bytes"),
        (json!({"B": 23}), "only base-64-encoded strings are convertible to bytes"),
        (json!({"B": []}), "Unrecognized collection type class java.nio.ByteBuffer"),
        (json!({"B": {}}), "Start of structure or map found where not expected"),
        (json!({"B": "23456"}), "Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
        (json!({"B": "YWJjZGVmZ2g"}), "Base64 encoded length is expected a multiple of 4 bytes but found: 11"),
        (json!({"B": "=+/="}), "Invalid last non-pad Base64 character dectected"),
        (json!({"B": "+/+="}), "Invalid last non-pad Base64 character dectected"),
        (json!({"B": "YWJj??!!"}), "Invalid last non-pad Base64 character dectected"),
        (json!({"SS": "a"}), "Unexpected field type"),
        (json!({"NS": 1}), "Unexpected field type"),
        (json!({"L": {}}), "Start of structure or map found where not expected"),
        (json!({"SS": [1]}), "NUMBER_VALUE cannot be converted to String"),
        (json!({"BS": [true]}), "only base-64-encoded strings are convertible to bytes"),
        (json!({"M": []}), "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"),
        (json!({"M": "x"}), "Unexpected field type"),
        (json!({"L": ["x"]}), "Unexpected value type in payload"),
        (json!({"L": [[]]}), "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"),
        (json!({"M": {"a": 1}}), "Unexpected value type in payload"),
        (json!("x"), "Unexpected value type in payload"),
        (json!([]), "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"),
    ];
    for (v, msg) in cases {
        assert_eq!(
            attr_err(v.clone(), Layer::Current),
            serialization(msg),
            "{v}"
        );
    }
    // A structure field holding a non-object.
    assert_eq!(
        decode_value_with(&json!(5), Position::Field, Layer::Current).unwrap_err(),
        serialization("Unexpected field type")
    );
    // The item itself.
    assert_eq!(
        decode_item(&json!("x")).unwrap_err(),
        serialization("Unexpected field type")
    );
    assert_eq!(
        decode_item(&json!([])).unwrap_err(),
        serialization("Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>")
    );
    assert!(decode_item(&Value::Null).unwrap().is_empty());
}

#[test]
fn serialization_problems_beat_validation_problems() {
    // A type error in a later attribute wins over a validation error in an earlier one,
    // because DynamoDB deserializes the whole request before validating it.
    assert_eq!(
        item_err(json!({"a": {"SS": []}, "b": {"N": 5}}), Layer::Current),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
    // Even below the nesting limit.
    assert_eq!(
        item_err(json!({"a": deep(100, json!({"S": 1}))}), Layer::Current),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
}

#[test]
fn first_problem_in_document_order() {
    let p = "One or more parameter values were invalid: ";
    assert_eq!(
        item_err(json!({"b": {"NS": []}, "a": {"SS": []}}), Layer::Current),
        validation(&format!("{p}An number set  may not be empty"))
    );
    assert_eq!(
        item_err(json!({"a": {"SS": []}, "b": {"NS": []}}), Layer::Current),
        validation(&format!("{p}An string set  may not be empty"))
    );
    // Serialization problems too.
    assert_eq!(
        item_err(json!({"a": {"S": 1}, "b": {"B": 1}}), Layer::Current),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
    assert_eq!(
        item_err(
            json!({"a": {"L": [{"B": 1}]}, "b": {"S": 1}}),
            Layer::Current
        ),
        serialization("only base-64-encoded strings are convertible to bytes")
    );
}

#[test]
fn nesting_limit() {
    // 31 wraps: the leaf is at level 32, the deepest accepted.
    assert!(decode_item(&json!({"d": deep(31, json!({"S": "leaf"}))})).is_ok());
    assert!(decode_value(&deep(31, json!({"L": []}))).is_ok());
    assert_eq!(
        decode_item(&json!({"d": deep(32, json!({"S": "leaf"}))})).unwrap_err(),
        validation(NEST)
    );
    // Lists count as levels too.
    let mut v = json!({"S": "leaf"});
    for _ in 0..32 {
        v = json!({ "L": [v] });
    }
    assert_eq!(decode_value(&v).unwrap_err(), validation(NEST));
    // Document order between a deep value and a bad number.
    for depth in [40, 100] {
        assert_eq!(
            item_err(
                json!({"d": deep(depth, json!({"S": "x"})), "bad": {"N": "abc"}}),
                Layer::Current
            ),
            validation(NEST)
        );
        assert_eq!(
            item_err(
                json!({"bad": {"N": "abc"}, "d": deep(depth, json!({"S": "x"}))}),
                Layer::Current
            ),
            validation(&format!("{NOT_NUMERIC}: abc"))
        );
        assert_eq!(
            decode_value(&deep(depth, json!({"N": "abc"}))).unwrap_err(),
            validation(NEST)
        );
        assert_eq!(
            item_err(
                json!({"d": deep(depth, json!({"S": "x"})), "big": {"N": "1e126"}}),
                Layer::Current
            ),
            validation(NEST)
        );
    }
}

#[test]
fn ten_thousand_levels_do_not_overflow_the_stack() {
    for leaf in [json!({"S": "x"}), json!({"N": "abc"}), json!({"S": 5})] {
        let mut v = leaf.clone();
        for i in 0..10_000 {
            v = if i % 2 == 0 {
                object("M", object("n", v))
            } else {
                object("L", Value::Array(vec![v]))
            };
        }
        let item = object("d", v);
        let err = decode_item(&item).unwrap_err();
        if leaf["S"] == json!(5) {
            assert_eq!(
                err,
                serialization("NUMBER_VALUE cannot be converted to String")
            );
        } else {
            assert_eq!(err, validation(NEST));
        }
        assert!(check_item(&item).is_ok() || leaf["S"] == json!(5));
        // serde_json's own drop of a 10,000-deep Value recurses; leak it to keep the test
        // about the codec.
        std::mem::forget(item);
    }
}

#[test]
fn value_map_wraps_errors_in_the_older_layer() {
    let eav = json!({":ok": {"S": "x"}, ":v": {"N": "abc"}});
    assert_eq!(
        decode_value_map(&eav).unwrap_err(),
        validation(&format!("{NOT_NUMERIC}: abc"))
    );
    assert_eq!(
        decode_value_map_with(&eav, Layer::Older).unwrap_err(),
        validation(&format!(
            "ExpressionAttributeValues contains invalid value: {NOT_NUMERIC}: abc for key :v"
        ))
    );
    assert_eq!(
        decode_value_map_with(&json!({":deep": deep(40, json!({"S": "x"}))}), Layer::Older)
            .unwrap_err(),
        validation(&format!(
            "ExpressionAttributeValues contains invalid value: {NEST} for key :deep"
        ))
    );
    // Serialization problems are not wrapped.
    assert_eq!(
        decode_value_map_with(&json!({":v": {"N": 1}}), Layer::Older).unwrap_err(),
        serialization("NUMBER_VALUE cannot be converted to String")
    );
    let ok = decode_value_map(&json!({":a": {"S": "x"}, ":b": {"BOOL": false}})).unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[":b"], AttributeValue::Bool(false));
}

#[test]
fn value_lists() {
    let l = decode_value_list_with(&json!([{"S": "a"}, {"N": "1"}]), Layer::Current).unwrap();
    assert_eq!(
        l,
        vec![AttributeValue::S("a".into()), AttributeValue::N(num("1"))]
    );
    assert_eq!(
        decode_value_list_with(&json!(["a"]), Layer::Current).unwrap_err(),
        serialization("Unexpected value type in payload")
    );
    assert_eq!(
        decode_value_list_with(&json!({}), Layer::Current).unwrap_err(),
        serialization("Start of structure or map found where not expected")
    );
}
