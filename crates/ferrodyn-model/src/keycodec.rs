//! Order-preserving encoding of key values.
//!
//! Invariant: for two key values a, b of the same [`ScalarType`], `encode(a) < encode(b)` as bytes
//! iff a < b in DynamoDB's order (S and B by unsigned bytes, N by numeric value), and an encoded
//! value is self-delimiting, so `encode(hash) ++ encode(range)` sorts by hash then range.
//!
//! Layout: S (its UTF-8 bytes) and B are byte-stuffed: every `00` byte becomes `00 FF` and the
//! value ends with `00 01`. A terminator sorts before any continuation (`01` < `FF` and any
//! other byte is above `00`), so a prefix sorts first, as in DynamoDB. N uses
//! [`Number::encode_ordered`], which is self-delimiting by itself. The encoding does not carry
//! the type: the decoder is told which type to expect. Changing it changes every stored key.
//!
//! A tuple of key values (the attributes of a multi-attribute index key) is encoded as the
//! concatenation of its members' encodings ([`encode_key_tuple`]); because each one is
//! self-delimiting, tuples of the same type sequence sort as tuples: by their first members,
//! then by the second, and so on (property tests in `tests/keycodec_props.rs`).

use crate::number::Number;
use crate::value::{AttributeValue, ScalarType};

/// Appends the encoding of a key value (S, N or B); other types are a caller bug and return false.
pub fn encode_key_value(v: &AttributeValue, out: &mut Vec<u8>) -> bool {
    match v {
        AttributeValue::S(s) => encode_bytes(s.as_bytes(), out),
        AttributeValue::B(b) => encode_bytes(b, out),
        AttributeValue::N(n) => n.encode_ordered(out),
        _ => return false,
    }
    true
}

/// Appends the encoding of a tuple of key values, member after member; false (and nothing
/// reliable appended) if one of them is not S, N or B.
pub fn encode_key_tuple<'a>(
    values: impl IntoIterator<Item = &'a AttributeValue>,
    out: &mut Vec<u8>,
) -> bool {
    values.into_iter().all(|v| encode_key_value(v, out))
}

/// Decodes a tuple of key values of the types `types`, in order, from the front of `bytes`;
/// returns them and the bytes consumed. `None` if any member is not a valid encoding.
pub fn decode_key_tuple(
    types: &[ScalarType],
    bytes: &[u8],
) -> Option<(Vec<AttributeValue>, usize)> {
    let mut used = 0;
    let mut values = Vec::with_capacity(types.len());
    for &t in types {
        let (v, n) = decode_key_value(t, bytes.get(used..)?)?;
        values.push(v);
        used += n;
    }
    Some((values, used))
}

/// Decodes one key value of type `t` from the front of `bytes`; returns it and bytes consumed.
/// `None` if the bytes are not a valid encoding (truncated, bad escape, S not UTF-8).
pub fn decode_key_value(t: ScalarType, bytes: &[u8]) -> Option<(AttributeValue, usize)> {
    match t {
        ScalarType::S => {
            let (raw, used) = decode_bytes(bytes)?;
            Some((AttributeValue::S(String::from_utf8(raw).ok()?), used))
        }
        ScalarType::B => {
            let (raw, used) = decode_bytes(bytes)?;
            Some((AttributeValue::B(raw), used))
        }
        ScalarType::N => {
            let (n, used) = Number::decode_ordered(bytes)?;
            Some((AttributeValue::N(n), used))
        }
    }
}

/// Appends the byte-stuffed, terminated form of `raw` (order-preserving for unsigned bytes).
pub fn encode_bytes(raw: &[u8], out: &mut Vec<u8>) {
    out.reserve(raw.len() + 2);
    for &b in raw {
        if b == 0x00 {
            out.extend_from_slice(&[0x00, 0xFF]);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Inverse of [`encode_bytes`]: the raw bytes and the number of encoded bytes consumed.
pub fn decode_bytes(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut raw = Vec::new();
    let mut i = 0;
    loop {
        let &b = bytes.get(i)?;
        if b != 0x00 {
            raw.push(b);
            i += 1;
            continue;
        }
        match bytes.get(i + 1)? {
            0xFF => {
                raw.push(0x00);
                i += 2;
            }
            0x01 => return Some((raw, i + 2)),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &AttributeValue) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode_key_value(v, &mut out));
        out
    }

    #[test]
    fn byte_stuffing_examples() {
        assert_eq!(enc(&AttributeValue::B(vec![])), [0x00, 0x01]);
        assert_eq!(
            enc(&AttributeValue::B(vec![0x00, 0xFF, 0x01])),
            [0x00, 0xFF, 0xFF, 0x01, 0x00, 0x01]
        );
        assert_eq!(
            enc(&AttributeValue::S("ab".into())),
            [b'a', b'b', 0x00, 0x01]
        );
        assert!(enc(&AttributeValue::S("a".into())) < enc(&AttributeValue::S("a\0".into())));
        assert!(enc(&AttributeValue::S("a\0".into())) < enc(&AttributeValue::S("a\x01".into())));
    }

    #[test]
    fn non_key_types_are_refused() {
        let mut out = Vec::new();
        assert!(!encode_key_value(&AttributeValue::Bool(true), &mut out));
        assert!(!encode_key_value(&AttributeValue::Null, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn bad_encodings_are_rejected() {
        for bad in [
            &[][..],
            &[0x61],
            &[0x00],
            &[0x00, 0x02],
            &[0x61, 0x00, 0x00],
        ] {
            assert_eq!(decode_key_value(ScalarType::B, bad), None, "{bad:?}");
        }
        // Not UTF-8.
        assert_eq!(
            decode_key_value(ScalarType::S, &[0xC3, 0x28, 0x00, 0x01]),
            None
        );
    }

    #[test]
    fn decode_reports_consumed_length() {
        let mut out = Vec::new();
        encode_key_value(&AttributeValue::S("x\0y".into()), &mut out);
        let len = out.len();
        out.extend_from_slice(b"rest");
        let (v, used) = decode_key_value(ScalarType::S, &out).unwrap();
        assert_eq!(v, AttributeValue::S("x\0y".into()));
        assert_eq!(used, len);
    }
}
