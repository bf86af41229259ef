//! Property tests of the key codec: byte order of encodings == DynamoDB order of key values, and
//! concatenated (hash, range) encodings sort by hash then range, and tuples of key values (the
//! attributes of a multi-attribute index key) sort as tuples.

use std::cmp::Ordering;

use ferrodyn_model::keycodec::{
    decode_key_tuple, decode_key_value, encode_key_tuple, encode_key_value,
};
use ferrodyn_model::number::Number;
use ferrodyn_model::{AttributeValue, ScalarType};
use proptest::prelude::*;

/// Byte strings rich in the bytes that the stuffing treats specially.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0x00u8), Just(0x01), Just(0xFF), any::<u8>()],
        0..8,
    )
}

fn strings() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('\0'),
            Just('\u{1}'),
            Just('a'),
            Just('é'),
            Just('\u{10FFFF}'),
            any::<char>()
        ],
        0..6,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn numbers() -> impl Strategy<Value = Number> {
    (any::<bool>(), 0u128..100_000, -3i32..3)
        .prop_map(|(neg, c, e)| Number::from_parts(neg, c, e).expect("small"))
}

fn enc(v: &AttributeValue) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(encode_key_value(v, &mut out));
    out
}

/// A key value of type `t`.
fn value_of(t: ScalarType) -> BoxedStrategy<AttributeValue> {
    match t {
        ScalarType::S => strings().prop_map(AttributeValue::S).boxed(),
        ScalarType::N => numbers().prop_map(AttributeValue::N).boxed(),
        ScalarType::B => bytes().prop_map(AttributeValue::B).boxed(),
    }
}

fn scalar_type() -> impl Strategy<Value = ScalarType> {
    prop_oneof![
        Just(ScalarType::S),
        Just(ScalarType::N),
        Just(ScalarType::B)
    ]
}

/// Two tuples of one to eight key values sharing one type sequence (as two items' values of one
/// index's key attributes do), often equal in their leading members.
fn tuple_pair() -> impl Strategy<Value = (Vec<ScalarType>, Vec<AttributeValue>, Vec<AttributeValue>)>
{
    prop::collection::vec(scalar_type(), 1..=8).prop_flat_map(|types| {
        let a: Vec<_> = types.iter().map(|&t| value_of(t)).collect();
        let b: Vec<_> = types.iter().map(|&t| value_of(t)).collect();
        let shared = 0..=types.len();
        (Just(types), a, b, shared).prop_map(|(types, a, mut b, shared)| {
            b[..shared].clone_from_slice(&a[..shared]);
            (types, a, b)
        })
    })
}

/// DynamoDB's order of two key values of one type.
fn dynamo_cmp(a: &AttributeValue, b: &AttributeValue) -> Ordering {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x.as_bytes().cmp(y.as_bytes()),
        (AttributeValue::N(x), AttributeValue::N(y)) => x.cmp(y),
        (AttributeValue::B(x), AttributeValue::B(y)) => x.cmp(y),
        _ => unreachable!("same types"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn binary_order(a in bytes(), b in bytes()) {
        let (ea, eb) = (enc(&AttributeValue::B(a.clone())), enc(&AttributeValue::B(b.clone())));
        prop_assert_eq!(ea.cmp(&eb), a.cmp(&b));
        let (back, used) = decode_key_value(ScalarType::B, &ea).expect("decodes");
        prop_assert_eq!(used, ea.len());
        prop_assert_eq!(back, AttributeValue::B(a));
    }

    #[test]
    fn string_order(a in strings(), b in strings()) {
        let (ea, eb) = (enc(&AttributeValue::S(a.clone())), enc(&AttributeValue::S(b.clone())));
        // DynamoDB orders S by the unsigned bytes of its UTF-8 form, as Rust's str does.
        prop_assert_eq!(ea.cmp(&eb), a.as_bytes().cmp(b.as_bytes()));
        let (back, used) = decode_key_value(ScalarType::S, &ea).expect("decodes");
        prop_assert_eq!(used, ea.len());
        prop_assert_eq!(back, AttributeValue::S(a));
    }

    #[test]
    fn composite_keys_sort_by_hash_then_range(
        h1 in bytes(), r1 in bytes(), h2 in bytes(), r2 in bytes(),
    ) {
        let key = |h: &Vec<u8>, r: &Vec<u8>| {
            let mut out = enc(&AttributeValue::B(h.clone()));
            out.extend(enc(&AttributeValue::B(r.clone())));
            out
        };
        prop_assert_eq!(key(&h1, &r1).cmp(&key(&h2, &r2)), (&h1, &r1).cmp(&(&h2, &r2)));
    }

    #[test]
    fn composite_string_number_keys(
        h1 in strings(), r1 in numbers(), h2 in strings(), r2 in numbers(),
    ) {
        let key = |h: &String, r: &Number| {
            let mut out = enc(&AttributeValue::S(h.clone()));
            out.extend(enc(&AttributeValue::N(r.clone())));
            out
        };
        let (k1, k2) = (key(&h1, &r1), key(&h2, &r2));
        let expected = h1.as_bytes().cmp(h2.as_bytes()).then(r1.cmp(&r2));
        prop_assert_eq!(k1.cmp(&k2), expected);
        // Both parts decode back from the concatenation.
        let (h, used) = decode_key_value(ScalarType::S, &k1).expect("hash");
        let (r, used2) = decode_key_value(ScalarType::N, &k1[used..]).expect("range");
        prop_assert_eq!(used + used2, k1.len());
        prop_assert_eq!(h, AttributeValue::S(h1));
        prop_assert_eq!(r, AttributeValue::N(r1));
    }

    #[test]
    fn composite_number_binary_keys(
        h1 in numbers(), r1 in bytes(), h2 in numbers(), r2 in bytes(),
    ) {
        let key = |h: &Number, r: &Vec<u8>| {
            let mut out = enc(&AttributeValue::N(h.clone()));
            out.extend(enc(&AttributeValue::B(r.clone())));
            out
        };
        prop_assert_eq!(key(&h1, &r1).cmp(&key(&h2, &r2)), h1.cmp(&h2).then(r1.cmp(&r2)));
    }

    #[test]
    fn key_tuples_sort_as_tuples((types, a, b) in tuple_pair()) {
        let enc_tuple = |t: &[AttributeValue]| {
            let mut out = Vec::new();
            assert!(encode_key_tuple(t, &mut out));
            out
        };
        let (ea, eb) = (enc_tuple(&a), enc_tuple(&b));
        let expected = a
            .iter()
            .zip(&b)
            .map(|(x, y)| dynamo_cmp(x, y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal);
        prop_assert_eq!(ea.cmp(&eb), expected);
        // A tuple is a prefix of its extensions' encodings, so a leading-members range read
        // finds exactly the tuples that share those members.
        for n in 0..=types.len() {
            let prefix = enc_tuple(&a[..n]);
            let shares = a[..n].iter().zip(&b[..n]).all(|(x, y)| dynamo_cmp(x, y).is_eq());
            prop_assert_eq!(eb.starts_with(&prefix), shares);
        }
        let (back, used) = decode_key_tuple(&types, &ea).expect("decodes");
        prop_assert_eq!(used, ea.len());
        prop_assert_eq!(back, a);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..20)) {
        for t in [ScalarType::S, ScalarType::B, ScalarType::N] {
            let _ = decode_key_value(t, &bytes);
        }
    }
}
