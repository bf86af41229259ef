//! Key and number codecs: round trips and order preservation.
//!
//! - `Number::parse` of any text: accepted numbers print canonically and parse back equal.
//! - Generated key values: decode(encode(v)) == v, consuming exactly the encoding, and byte
//!   order of encodings == DynamoDB's order (S, B by bytes; N by value), also for tuples and
//!   for the engine's storage keys (`keys.rs`: partition prefix, then sort key).
//! - Raw bytes: decoders never panic, and what they accept re-encodes to the bytes consumed
//!   (one encoding per value, so equal keys are equal bytes).
#![no_main]

use std::cmp::Ordering;

use ferrodyn_core::keys;
use ferrodyn_model::keycodec::{
    decode_key_tuple, decode_key_value, encode_key_tuple, encode_key_value,
};
use ferrodyn_model::{AttributeValue, Number, ScalarType};
use fuzz_support::Gen;
use libfuzzer_sys::fuzz_target;

fn order(a: &AttributeValue, b: &AttributeValue) -> Ordering {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x.as_bytes().cmp(y.as_bytes()),
        (AttributeValue::B(x), AttributeValue::B(y)) => x.cmp(y),
        (AttributeValue::N(x), AttributeValue::N(y)) => x.cmp(y),
        _ => unreachable!("same key types only"),
    }
}

fn enc(v: &AttributeValue) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(encode_key_value(v, &mut out));
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            // Number text.
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(n) = Number::parse(text) {
                let canonical = n.to_string();
                let again = Number::parse(&canonical).expect("canonical text parses");
                assert_eq!(again, n, "{text:?} -> {canonical:?}");
                assert_eq!(again.to_string(), canonical);
                let mut e = Vec::new();
                n.encode_ordered(&mut e);
                assert_eq!(Number::decode_ordered(&e), Some((n, e.len())));
            }
        }
        1 => {
            // Raw bytes into the decoders.
            for t in [ScalarType::S, ScalarType::N, ScalarType::B] {
                if let Some((v, used)) = decode_key_value(t, rest) {
                    assert!(used <= rest.len());
                    assert_eq!(enc(&v), &rest[..used], "{t:?} {v:?}");
                }
            }
            if let Some((vs, used)) = decode_key_tuple(&[ScalarType::N, ScalarType::S], rest) {
                let mut out = Vec::new();
                assert!(encode_key_tuple(&vs, &mut out));
                assert_eq!(out, &rest[..used]);
            }
        }
        _ => {
            // Generated values: round trips and orders.
            let mut g = Gen::new(rest);
            let t = g.scalar_type();
            let (a, b) = (g.key_value(t), g.key_value(t));
            let (ea, eb) = (enc(&a), enc(&b));
            assert_eq!(decode_key_value(t, &ea), Some((a.clone(), ea.len())));
            assert_eq!(
                ea.cmp(&eb),
                order(&a, &b),
                "byte order differs from DynamoDB order: {a:?} {b:?}"
            );
            assert_eq!(ea == eb, a == b);
            // Tuples sort member by member.
            let t2 = g.scalar_type();
            let (c, d) = (g.key_value(t2), g.key_value(t2));
            let mut ta = Vec::new();
            let mut tb = Vec::new();
            assert!(encode_key_tuple([&a, &c], &mut ta));
            assert!(encode_key_tuple([&b, &d], &mut tb));
            assert_eq!(ta.cmp(&tb), order(&a, &b).then(order(&c, &d)));
            assert_eq!(
                decode_key_tuple(&[t, t2], &ta),
                Some((vec![a.clone(), c.clone()], ta.len()))
            );
            // Storage keys: one partition's keys share its prefix and sort by sort key.
            let ka = keys::storage_key(&a, Some(&c));
            let kb = keys::storage_key(&a, Some(&d));
            let prefix = keys::partition_prefix(&a);
            assert!(ka.starts_with(&prefix) && kb.starts_with(&prefix));
            assert_eq!(ka.cmp(&kb), order(&c, &d));
            assert!(keys::storage_key(&a, None).starts_with(&prefix));
        }
    }
});
