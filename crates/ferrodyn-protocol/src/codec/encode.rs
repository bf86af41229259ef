//! Encoding attribute values and items as DynamoDB JSON.
//!
//! Output form: numbers in [`Number`]'s canonical text, binary as standard base64 with padding,
//! sets as arrays in stored order, `BOOL` as a JSON boolean, `NULL` as `true`; map members in the
//! item's (sorted) order.
//!
//! Invariant: [`write_item_json`] and [`write_value_json`] always append one complete, valid JSON
//! value and produce exactly the text `serde_json` would for [`encode_item`] / [`encode_value`].
//! Recursion follows the value's nesting, which DynamoDB's rules bound to 32 levels for any value
//! that was accepted from a request or built by an update.

use base64::Engine as _;
use ferrodyn_model::visit::{walk_item, walk_value, Kind, Visitor};
use ferrodyn_model::{AttributeValue, Item, Number};
use serde_json::{Map, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One attribute value as a `serde_json::Value` (`{"S": "x"}`, ...).
pub fn encode_value(v: &AttributeValue) -> Value {
    let (tag, inner) = match v {
        AttributeValue::S(s) => ("S", Value::String(s.clone())),
        AttributeValue::N(n) => ("N", Value::String(n.to_string())),
        AttributeValue::B(b) => ("B", Value::String(B64.encode(b))),
        AttributeValue::Bool(b) => ("BOOL", Value::Bool(*b)),
        AttributeValue::Null => ("NULL", Value::Bool(true)),
        AttributeValue::M(m) => ("M", encode_item(m)),
        AttributeValue::L(l) => ("L", Value::Array(l.iter().map(encode_value).collect())),
        AttributeValue::SS(ss) => (
            "SS",
            Value::Array(ss.iter().map(|s| Value::String(s.clone())).collect()),
        ),
        AttributeValue::NS(ns) => (
            "NS",
            Value::Array(ns.iter().map(|n| Value::String(n.to_string())).collect()),
        ),
        AttributeValue::BS(bs) => (
            "BS",
            Value::Array(bs.iter().map(|b| Value::String(B64.encode(b))).collect()),
        ),
    };
    let mut map = Map::with_capacity(1);
    map.insert(tag.to_owned(), inner);
    Value::Object(map)
}

/// An item (or a map value's members) as a JSON object of attribute values.
pub fn encode_item(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, v)| (name.clone(), encode_value(v)))
            .collect(),
    )
}

/// Appends an item as JSON text, without building a `serde_json::Value`.
pub fn write_item_json(item: &Item, out: &mut Vec<u8>) {
    out.push(b'{');
    walk_item(item, &mut JsonWriter::new(out));
    out.push(b'}');
}

/// Appends one attribute value as JSON text.
pub fn write_value_json(v: &AttributeValue, out: &mut Vec<u8>) {
    walk_value(v, &mut JsonWriter::new(out));
}

/// Writes DynamoDB JSON text from [`ferrodyn_model::visit`] events, so that an item can be
/// written straight from its stored form. The events of an item give the members of its JSON
/// object: the caller writes the enclosing `{` and `}`.
pub struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> JsonWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        JsonWriter { out }
    }
}

impl Visitor for JsonWriter<'_> {
    fn begin(&mut self, kind: Kind) {
        self.out.extend_from_slice(match kind {
            Kind::S => b"{\"S\":",
            Kind::N => b"{\"N\":",
            Kind::B => b"{\"B\":",
            Kind::Bool => b"{\"BOOL\":",
            Kind::Null => b"{\"NULL\":true",
            Kind::M => b"{\"M\":{",
            Kind::L => b"{\"L\":[",
            Kind::SS => b"{\"SS\":[",
            Kind::NS => b"{\"NS\":[",
            Kind::BS => b"{\"BS\":[",
        });
    }
    fn end(&mut self, kind: Kind) {
        self.out.extend_from_slice(match kind {
            Kind::M => b"}}",
            Kind::L | Kind::SS | Kind::NS | Kind::BS => b"]}",
            _ => b"}",
        });
    }
    fn name(&mut self, name: &str, _top_level: bool, first: bool) {
        if !first {
            self.out.push(b',');
        }
        write_json_string(name, self.out);
        self.out.push(b':');
    }
    fn element(&mut self, first: bool, _in_set: bool) {
        if !first {
            self.out.push(b',');
        }
    }
    fn string(&mut self, s: &str) {
        write_json_string(s, self.out);
    }
    fn string_bytes(&mut self, b: &[u8]) -> bool {
        write_json_string_checked(b, self.out)
    }
    fn name_bytes(&mut self, b: &[u8], _top_level: bool, first: bool) -> bool {
        let mark = self.out.len();
        if !first {
            self.out.push(b',');
        }
        if !write_json_string_checked(b, self.out) {
            self.out.truncate(mark);
            return false;
        }
        self.out.push(b':');
        true
    }
    fn number(&mut self, n: &Number) {
        self.out.push(b'"');
        n.write_canonical(self.out);
        self.out.push(b'"');
    }
    fn binary(&mut self, b: &[u8]) {
        write_base64(b, self.out);
    }
    fn boolean(&mut self, b: bool) {
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }
}

/// Appends `s` as a JSON string literal: `"` and `\` escaped, control characters as short
/// escapes or `\u00XX`, everything else (including non-ASCII UTF-8) copied as is.
pub fn write_json_string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if scan(bytes).escape {
        write_escaped(bytes, out);
    } else {
        write_plain(bytes, out);
    }
}

/// [`write_json_string`] for bytes not yet known to be UTF-8: ASCII is recognised in the same
/// pass that looks for characters to escape, and only strings with other bytes go through
/// `str::from_utf8`. Returns false, having written nothing, if `bytes` are not UTF-8.
pub fn write_json_string_checked(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    let found = scan(bytes);
    if found.non_ascii && std::str::from_utf8(bytes).is_err() {
        return false;
    }
    if found.escape {
        write_escaped(bytes, out);
    } else {
        write_plain(bytes, out);
    }
    true
}

/// What one pass over a string found.
struct Scan {
    /// Some byte needs escaping ([`word_needs_escape`]).
    escape: bool,
    /// Some byte is >= 0x80.
    non_ascii: bool,
}

/// Looks at `bytes` eight at a time; the last partial word is padded with spaces, which need
/// no escaping and are ASCII.
fn scan(bytes: &[u8]) -> Scan {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut escape = false;
    let mut high = 0u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        escape |= word_needs_escape(w);
        high |= w & HIGH;
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut w = [b' '; 8];
        w[..rest.len()].copy_from_slice(rest);
        let w = u64::from_le_bytes(w);
        escape |= word_needs_escape(w);
        high |= w & HIGH;
    }
    Scan {
        escape,
        non_ascii: high != 0,
    }
}

/// A string literal of bytes that need no escaping.
fn write_plain(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
}

/// A string literal of UTF-8 `bytes`, escaping what needs it.
fn write_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(escape);
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// True if any byte of the eight in `w` is a control character (< 0x20), `"` or `\`.
/// (Classic SWAR tests: `has_less(w, 0x20)` and `has_zero(w ^ pattern)`; bytes >= 0x80 never
/// trigger them, so UTF-8 continuation bytes are skipped too.)
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = zero_byte(w ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(w ^ (ONES * u64::from(b'\\')));
    (control | quote | backslash) != 0
}

fn write_base64(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let start = out.len();
    // Four output bytes per three input bytes, rounded up: cannot overflow for any real slice.
    let len = b.len().div_ceil(3).saturating_mul(4);
    out.resize(start + len, 0);
    let written = B64.encode_slice(b, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_json_string(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_json() {
        assert_eq!(
            escaped("plain text, long enough"),
            "\"plain text, long enough\""
        );
        assert_eq!(escaped("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(escaped("12345678\u{1f}"), r#""12345678\u001f""#);
        assert_eq!(escaped("ü€😀 and \u{7f}"), "\"ü€😀 and \u{7f}\"");
    }

    #[test]
    fn word_test_is_exact_for_every_byte_at_every_position() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                for filler in [b'a', 0xff, 0x80, b' '] {
                    let mut word = [filler; 8];
                    word[pos] = b;
                    let expected = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(
                        word_needs_escape(u64::from_le_bytes(word)),
                        expected,
                        "byte {b:#x} at {pos} among {filler:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn checked_writer_refuses_bad_utf8_and_writes_nothing() {
        for bad in [
            &b"\xff"[..],
            b"abc\xc3",
            b"12345678\x80",
            b"\xed\xa0\x80 surrogate",
        ] {
            let mut out = b"keep".to_vec();
            assert!(!write_json_string_checked(bad, &mut out), "{bad:?}");
            assert_eq!(out, b"keep");
            let mut w = JsonWriter::new(&mut out);
            assert!(!w.name_bytes(bad, true, false));
            assert!(!w.string_bytes(bad));
            assert_eq!(out, b"keep");
        }
    }

    proptest! {
        /// The checked writer writes exactly what the `&str` writer writes for UTF-8, and
        /// refuses anything else.
        #[test]
        fn checked_writer_agrees_with_str_writer(
            s in "(\\PC|[\\x00-\\x1f\"\\\\]){0,40}",
            raw in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let mut a = Vec::new();
            prop_assert!(write_json_string_checked(s.as_bytes(), &mut a));
            prop_assert_eq!(a, escaped(&s).into_bytes());
            let mut b = Vec::new();
            match std::str::from_utf8(&raw) {
                Ok(t) => {
                    prop_assert!(write_json_string_checked(&raw, &mut b));
                    prop_assert_eq!(b, escaped(t).into_bytes());
                }
                Err(_) => {
                    prop_assert!(!write_json_string_checked(&raw, &mut b));
                    prop_assert!(b.is_empty());
                }
            }
        }

        /// Any string round-trips through a JSON parser, whatever lands on the 8-byte words.
        #[test]
        fn any_string_round_trips(s in "(\\PC|[\\x00-\\x1f\"\\\\]){0,40}") {
            let json = escaped(&s);
            let back: String = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, s);
        }
    }
}
