//! Conversion between DynamoDB JSON attribute values (`{"S": "x"}`, `{"M": {...}}`, ...) and the
//! model's [`AttributeValue`] / [`Item`].
//!
//! Owns: every check DynamoDB applies to an attribute value on its own (JSON types of the
//! members, base64, number syntax and range, empty and duplicate sets, `NULL` must be true, one
//! datatype per value, the 32-level nesting limit) and their exact messages; and the JSON output
//! of values and items, including a direct byte writer for responses.
//!
//! Not owned: key-attribute rules (empty key strings, key types), attribute-name rules (empty
//! names), item size, and the `1 validation error detected: ` envelope that some operations put
//! around these messages. Callers add those.
//!
//! How DynamoDB checks a value, reproduced here:
//! 1. Deserialization of the whole request (here: [`check_value`] / [`check_item`]) rejects JSON
//!    of the wrong type and bad base64 with a `SerializationException`. It runs over the whole
//!    document before any validation, so it reports such problems at any depth.
//! 2. Validation (the `decode_*` functions, which run step 1 first) walks the value in document
//!    order and reports the first problem it meets as a `ValidationException`; a value nested
//!    deeper than 32 levels is reported when the walk reaches its 33rd level, so validation never
//!    recurses further than that.
//!
//! Two generations of DynamoDB's validation word some messages differently ([`Layer`]); the
//! operation decides which one applies.

mod decode;
mod encode;
mod messages;
mod number;

pub use decode::{
    check_item, check_value, decode_item, decode_item_with, decode_value, decode_value_list_with,
    decode_value_map, decode_value_map_with, decode_value_with, Layer, Position,
};
pub use encode::{
    encode_item, encode_value, write_item_json, write_json_string, write_value_json, JsonWriter,
};
pub use messages::MAX_NESTING_LEVELS;
