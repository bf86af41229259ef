//! Encoding: round trips through JSON, the direct byte writer against `serde_json`, and decoding
//! arbitrary JSON without panicking.

use std::collections::BTreeMap;

use ferrodyn_model::{AttributeValue, Item, Number};
use ferrodyn_protocol::codec::{
    decode_item, decode_item_with, decode_value, decode_value_map_with, encode_item, encode_value,
    write_item_json, write_json_string, write_value_json, Layer,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from_i64),
        (any::<bool>(), "[0-9]{1,20}", "[0-9]{0,18}", -130i32..=100).prop_filter_map(
            "in range",
            |(neg, int, frac, exp)| {
                let sign = if neg { "-" } else { "" };
                Number::parse(&format!("{sign}{int}.{frac}e{exp}")).ok()
            }
        ),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,8}",
        any::<String>(),
        Just("quote\" back\\ slash\n\t\r\u{0}\u{1f}\u{7f}é😀".to_owned()),
    ]
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        string().prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        prop::collection::btree_set(string(), 1..5)
            .prop_map(|s| AttributeValue::SS(s.into_iter().collect())),
        prop::collection::btree_set(number(), 1..5)
            .prop_map(|s| AttributeValue::NS(s.into_iter().collect())),
        prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..6), 1..5)
            .prop_map(|s| AttributeValue::BS(s.into_iter().collect())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(AttributeValue::L),
            prop::collection::btree_map(string(), inner, 0..5).prop_map(AttributeValue::M),
        ]
    })
}

fn item() -> impl Strategy<Value = Item> {
    prop::collection::btree_map(string(), attribute_value(), 0..6)
}

/// Arbitrary JSON shaped enough like attribute values to reach every branch of the decoder.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("S"),
        Just("N"),
        Just("B"),
        Just("BOOL"),
        Just("NULL"),
        Just("SS"),
        Just("NS"),
        Just("BS"),
        Just("M"),
        Just("L"),
        Just("x"),
    ]
    .prop_map(str::to_owned);
    let text = prop_oneof![
        "[0-9.eE+-]{0,12}",
        "[A-Za-z0-9+/=]{0,12}",
        Just("1e99999999999".to_owned()),
        Just("1e2147483647".to_owned()),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text.prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 128, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn value_round_trips(v in attribute_value()) {
        prop_assert_eq!(decode_value(&encode_value(&v)).unwrap(), v);
    }

    #[test]
    fn item_round_trips_and_writer_matches_serde_json(it in item()) {
        let encoded = encode_item(&it);
        prop_assert_eq!(decode_item(&encoded).unwrap(), it.clone());
        let mut written = Vec::new();
        write_item_json(&it, &mut written);
        prop_assert_eq!(&written, &serde_json::to_vec(&encoded).unwrap());
        let reparsed: Value = serde_json::from_slice(&written).unwrap();
        prop_assert_eq!(decode_item(&reparsed).unwrap(), it);
    }

    #[test]
    fn decoding_arbitrary_json_never_panics(v in json_value()) {
        let item = json!({"a": v.clone()});
        for layer in [Layer::Current, Layer::Older] {
            let _ = decode_item_with(&item, layer);
            let _ = decode_item_with(&v, layer);
            let _ = decode_value_map_with(&v, layer);
        }
        let _ = decode_value(&v);
    }

    #[test]
    fn string_writer_matches_serde_json(s in any::<String>()) {
        let mut out = Vec::new();
        write_json_string(&s, &mut out);
        prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
    }
}

#[test]
fn encoded_forms() {
    let mut m = BTreeMap::new();
    m.insert("k".to_owned(), AttributeValue::Null);
    let cases = [
        (AttributeValue::S("a\"b".into()), json!({"S": "a\"b"})),
        (
            AttributeValue::N(Number::parse("1.50e2").unwrap()),
            json!({"N": "150"}),
        ),
        (AttributeValue::B(b"abc".to_vec()), json!({"B": "YWJj"})),
        (AttributeValue::B(vec![0xff]), json!({"B": "/w=="})),
        (AttributeValue::Bool(false), json!({"BOOL": false})),
        (AttributeValue::Null, json!({"NULL": true})),
        (AttributeValue::M(m), json!({"M": {"k": {"NULL": true}}})),
        (AttributeValue::L(vec![]), json!({"L": []})),
        (
            AttributeValue::SS(vec!["b".into(), "a".into()]),
            json!({"SS": ["b", "a"]}),
        ),
        (
            AttributeValue::NS(vec![Number::from_i64(2), Number::parse("-0.5").unwrap()]),
            json!({"NS": ["2", "-0.5"]}),
        ),
        (
            AttributeValue::BS(vec![vec![], vec![1]]),
            json!({"BS": ["", "AQ=="]}),
        ),
    ];
    for (v, expected) in cases {
        assert_eq!(encode_value(&v), expected);
        let mut out = Vec::new();
        write_value_json(&v, &mut out);
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), expected);
    }
    let mut out = Vec::new();
    write_item_json(&Item::new(), &mut out);
    assert_eq!(out, b"{}");
}
