//! The JSON side of a request (ferrodyn-protocol): shape validation of an operation's input
//! and the attribute-value codec, both ways.
//!
//! Input: a selector byte (which operation's shape), then JSON text. Invariants: nothing
//! panics; every item, key and value map that decodes encodes back to JSON (both as a
//! `serde_json::Value` and as the bytes responses are written with) that decodes to the same
//! item; and the two encoders agree.
#![no_main]

use ferrodyn_model::Item;
use ferrodyn_protocol::codec::{
    check_item, decode_item, decode_item_with, decode_value_map, encode_item, write_item_json,
    Layer,
};
use ferrodyn_protocol::shapes::{operations, validate, Api};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn round_trip(item: &Item) {
    let value = encode_item(item);
    assert_eq!(&decode_item(&value).expect("encoded item decodes"), item);
    let mut bytes = Vec::new();
    write_item_json(item, &mut bytes);
    let parsed: Value = serde_json::from_slice(&bytes).expect("written item is JSON");
    assert_eq!(parsed, value, "the two encoders differ");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let ops: Vec<&str> = operations(Api::DynamoDb).collect();
    let op = ops[selector as usize % ops.len()];
    let valid = validate(Api::DynamoDb, op, &value).is_ok();
    let _ = validate(Api::Streams, "GetRecords", &value);
    // The whole document as an item, as either layer decodes it.
    let direct = decode_item(&value);
    let _ = decode_item_with(&value, Layer::Older);
    if let Ok(item) = &direct {
        assert!(check_item(&value).is_ok(), "decodes but does not check");
        round_trip(item);
    }
    if !valid {
        return;
    }
    for member in ["Item", "Key", "ExclusiveStartKey"] {
        if let Some(Ok(item)) = value.get(member).map(decode_item) {
            round_trip(&item);
        }
    }
    if let Some(v) = value.get("ExpressionAttributeValues") {
        if let Ok(map) = decode_value_map(v) {
            let item: Item = map.into_iter().collect();
            round_trip(&item);
        }
    }
});
