//! Order-preserving encoding of key values.
//!
//! Invariant: for two key values a, b of the same [`ScalarType`], `encode(a) < encode(b)` as bytes
//! iff a < b in DynamoDB's order (S and B by unsigned bytes, N by numeric value), and an encoded
//! value is self-delimiting, so `encode(hash) ++ encode(range)` sorts by hash then range.
//! (Interface fixed; implementation to be completed.)

use crate::value::{AttributeValue, ScalarType};

/// Appends the encoding of a key value (S, N or B); other types are a caller bug and return false.
pub fn encode_key_value(_v: &AttributeValue, _out: &mut Vec<u8>) -> bool {
    todo!()
}

/// Decodes one key value of type `t` from the front of `bytes`; returns it and bytes consumed.
pub fn decode_key_value(_t: ScalarType, _bytes: &[u8]) -> Option<(AttributeValue, usize)> {
    todo!()
}
