//! Property tests of `Number`: order-preserving encoding, exact round trips, arithmetic and size
//! against independent reference computations.

use std::cmp::Ordering;

use ferrodyn_model::number::Number;
use proptest::prelude::*;

/// Random valid numbers: any digit count and exponent in range, plus dense clusters of small
/// exponents and short coefficients so that equal and adjacent values are frequent.
fn number() -> impl Strategy<Value = Number> {
    let wide =
        (any::<bool>(), 1u32..=38, any::<u128>(), any::<u16>()).prop_map(|(neg, n, raw, e)| {
            let coef = raw % 10u128.pow(n);
            // msd = exponent + digits - 1 must lie in -130..=125.
            let digits = coef.checked_ilog10().map_or(1, |d| d as i32 + 1);
            let lo = -130;
            let hi = 125 - (digits - 1);
            let exp = lo + i32::from(e) % (hi - lo + 1);
            Number::from_parts(neg, coef, exp).expect("in range by construction")
        });
    let dense = (any::<bool>(), 0u128..2000, -6i32..6)
        .prop_map(|(neg, coef, exp)| Number::from_parts(neg, coef, exp).expect("small"));
    let edges = prop::sample::select(vec![
        "0",
        "1",
        "-1",
        "1e-130",
        "-1e-130",
        "9.9999999999999999999999999999999999999E+125",
        "-9.9999999999999999999999999999999999999E+125",
        "1e125",
        "99999999999999999999999999999999999999",
        "0.1",
        "0.01",
        "10",
    ])
    .prop_map(|s| Number::parse(s).expect("valid edge"));
    prop_oneof![4 => wide, 4 => dense, 1 => edges]
}

fn encode(n: &Number) -> Vec<u8> {
    let mut out = Vec::new();
    n.encode_ordered(&mut out);
    out
}

/// The size formula as usually stated for DynamoDB: 1 + ceil(digits / 2), one more when the
/// digit count and the leading digit's exponent are both even, one more when negative.
fn reference_size(n: &Number) -> usize {
    if n.is_zero() {
        return 1;
    }
    let s = n.abs().to_string();
    let digits: String = s.chars().filter(|c| *c != '.').collect();
    let point = s.find('.').unwrap_or(s.len()) as i64;
    let first = digits.find(|c| c != '0').unwrap();
    let last = digits.rfind(|c| c != '0').unwrap();
    let count = last - first + 1;
    let msd_exp = point - 1 - first as i64;
    1 + count.div_ceil(2)
        + usize::from(count % 2 == 0 && msd_exp % 2 == 0)
        + usize::from(n.is_negative())
}

/// The stored encoding computed independently from the decimal text: base-100 digit pairs
/// aligned on the decimal point, header `80 ± (E + 64)`, `2d + 1` / last `2d`, complemented when
/// negative. Stored data depends on these exact bytes, not only on their order.
fn reference_encoding(n: &Number) -> Vec<u8> {
    if n.is_zero() {
        return vec![0x80, 0x00];
    }
    let text = n.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    // Pad to whole pairs on both sides of the point, then drop zero pairs at either end.
    let int = if int.len() % 2 == 1 {
        format!("0{int}")
    } else {
        int.to_owned()
    };
    let frac = if frac.len() % 2 == 1 {
        format!("{frac}0")
    } else {
        frac.to_owned()
    };
    let all: Vec<u8> = format!("{int}{frac}").bytes().map(|b| b - b'0').collect();
    let mut pairs: Vec<u8> = all.chunks(2).map(|p| p[0] * 10 + p[1]).collect();
    let mut e = (int.len() / 2) as i64;
    while pairs.first() == Some(&0) {
        pairs.remove(0);
        e -= 1;
    }
    while pairs.last() == Some(&0) {
        pairs.pop();
    }
    let biased = (e + 64) as u8;
    let neg = n.is_negative();
    let mut out = vec![if neg { 0x7F - biased } else { 0x80 + biased }];
    let last = pairs.len() - 1;
    for (k, d) in pairs.iter().enumerate() {
        let b = if k == last { 2 * d } else { 2 * d + 1 };
        out.push(if neg { 255 - b } else { b });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encoding_matches_reference_bytes(a in number()) {
        prop_assert_eq!(encode(&a), reference_encoding(&a), "{}", a);
    }

    #[test]
    fn canonical_text_is_plain_decimal(a in number()) {
        let text = a.to_string();
        let mut written = Vec::new();
        a.write_canonical(&mut written);
        prop_assert_eq!(written, text.as_bytes().to_vec());
        let digits = text.strip_prefix('-').unwrap_or(&text);
        prop_assert!(digits.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        prop_assert!(!digits.starts_with('0') || digits == "0" || digits.starts_with("0."));
        if let Some((_, frac)) = digits.split_once('.') {
            prop_assert!(!frac.is_empty() && !frac.ends_with('0'));
        }
    }

    #[test]
    fn encoding_order_matches_numeric_order(a in number(), b in number()) {
        prop_assert_eq!(encode(&a).cmp(&encode(&b)), a.cmp(&b), "{} vs {}", a, b);
    }

    #[test]
    fn encoding_round_trips(a in number(), tail in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut bytes = encode(&a);
        let len = bytes.len();
        bytes.extend_from_slice(&tail);
        let (back, used) = Number::decode_ordered(&bytes).expect("decodes");
        prop_assert_eq!(used, len);
        prop_assert_eq!(back.to_string(), a.to_string());
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..30)) {
        if let Some((n, used)) = Number::decode_ordered(&bytes) {
            // Whatever decodes is canonical: re-encoding gives back the same bytes.
            prop_assert_eq!(encode(&n), bytes[..used].to_vec());
        }
    }

    #[test]
    fn display_parse_round_trip(a in number()) {
        let text = a.to_string();
        let back = Number::parse(&text).expect("display output parses");
        prop_assert_eq!(&back, &a);
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn scientific_input_equals_plain(neg in any::<bool>(), coef in 1u128..10u128.pow(20), exp in -100i32..100) {
        let sci = format!("{}{}e{}", if neg { "-" } else { "" }, coef, exp);
        let parsed = Number::parse(&sci).expect("in range");
        prop_assert_eq!(parsed, Number::from_parts(neg, coef, exp).expect("in range"));
    }

    #[test]
    fn equal_values_hash_alike(a in number()) {
        use std::hash::{BuildHasher, RandomState};
        // Same value, different spelling: trailing fraction zeros and an explicit exponent.
        let text = a.to_string();
        let zeros = if text.contains('.') { "000" } else { ".000" };
        let padded = Number::parse(&format!("{text}{zeros}E+0")).expect("valid");
        prop_assert_eq!(&padded, &a);
        let h = RandomState::new();
        prop_assert_eq!(h.hash_one(&padded), h.hash_one(&a));
    }

    #[test]
    fn ordering_matches_integers(x in any::<i64>(), y in any::<i64>()) {
        prop_assert_eq!(Number::from_i64(x).cmp(&Number::from_i64(y)), x.cmp(&y));
    }

    #[test]
    fn addition_matches_integers(x in any::<i64>(), y in any::<i64>()) {
        let sum = Number::from_i64(x).checked_add(&Number::from_i64(y)).expect("fits");
        prop_assert_eq!(sum.to_string(), (i128::from(x) + i128::from(y)).to_string());
        let diff = Number::from_i64(x).checked_sub(&Number::from_i64(y)).expect("fits");
        prop_assert_eq!(diff.to_string(), (i128::from(x) - i128::from(y)).to_string());
    }

    #[test]
    fn addition_is_exact_when_it_succeeds(a in number(), b in number()) {
        let ab = a.checked_add(&b);
        prop_assert_eq!(&ab, &b.checked_add(&a));
        if let Ok(sum) = ab {
            let back = sum.checked_sub(&b);
            prop_assert_eq!(back.as_ref(), Ok(&a));
            // Sign of the change agrees with the sign of b.
            let expected = if b.is_zero() { Ordering::Equal } else if b.is_negative() { Ordering::Less } else { Ordering::Greater };
            prop_assert_eq!(sum.cmp(&a), expected);
        }
    }

    #[test]
    fn size_matches_reference_formula(a in number()) {
        prop_assert_eq!(a.size_bytes(), reference_size(&a), "{}", a);
    }

    #[test]
    fn i64_round_trip(x in any::<i64>()) {
        prop_assert_eq!(Number::from_i64(x).to_i64(), Some(x));
        prop_assert_eq!(Number::parse(&x.to_string()).unwrap().to_i64(), Some(x));
    }

    #[test]
    fn parse_never_panics(s in "[-+0-9.eE ]{0,24}") {
        let _ = Number::parse(&s);
    }
}
