//! Item size as DynamoDB computes it (for the 400 KB limit and capacity units).
//!
//! Rules (DynamoDB developer guide, "Item sizes and formats", and observed behaviour):
//! * S: UTF-8 bytes; B: raw bytes; BOOL and NULL: 1 byte.
//! * N: [`Number::size_bytes`](crate::number::Number::size_bytes): base-100 digit pairs aligned
//!   on the decimal point + 1 byte, + 1 byte if negative; zero is 1 byte.
//! * SS, NS, BS: the sum of their members' sizes, without per-member overhead.
//! * M: 3 bytes + for each entry (UTF-8 name length + value size + 1 byte).
//! * L: 3 bytes + for each element (value size + 1 byte).
//! * An item: the sum over its attributes of UTF-8 name length + value size (no per-item bytes).
//!
//! Invariant: computing a size never recurses, so arbitrarily deep values cannot overflow the
//! stack.

use crate::value::{AttributeValue, Item};

/// Overhead of an M or L value, whatever its contents.
pub const CONTAINER_OVERHEAD: usize = 3;
/// Overhead of each element of an M or L.
pub const ELEMENT_OVERHEAD: usize = 1;

/// Size of one attribute value in bytes, by DynamoDB's rules.
pub fn value_size(v: &AttributeValue) -> usize {
    let mut total = 0usize;
    let mut pending: Vec<&AttributeValue> = vec![v];
    while let Some(v) = pending.pop() {
        total += match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::B(b) => b.len(),
            AttributeValue::N(n) => n.size_bytes(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::SS(ss) => ss.iter().map(String::len).sum(),
            AttributeValue::NS(ns) => ns.iter().map(|n| n.size_bytes()).sum(),
            AttributeValue::BS(bs) => bs.iter().map(Vec::len).sum(),
            AttributeValue::M(m) => {
                pending.extend(m.values());
                CONTAINER_OVERHEAD + m.keys().map(|k| k.len() + ELEMENT_OVERHEAD).sum::<usize>()
            }
            AttributeValue::L(l) => {
                pending.extend(l.iter());
                CONTAINER_OVERHEAD + l.len() * ELEMENT_OVERHEAD
            }
        };
    }
    total
}

/// Size of an item: sum over attributes of UTF-8 name length + value size.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;
    use std::collections::BTreeMap;

    fn num(s: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(s).unwrap())
    }

    #[test]
    fn scalar_sizes() {
        assert_eq!(value_size(&AttributeValue::S("héllo".into())), 6);
        assert_eq!(value_size(&AttributeValue::S(String::new())), 0);
        assert_eq!(value_size(&AttributeValue::B(vec![0; 7])), 7);
        assert_eq!(value_size(&AttributeValue::Bool(false)), 1);
        assert_eq!(value_size(&AttributeValue::Null), 1);
        assert_eq!(value_size(&num("123")), 3);
        assert_eq!(value_size(&num("-1.5")), 4);
    }

    #[test]
    fn set_sizes() {
        assert_eq!(
            value_size(&AttributeValue::SS(vec!["ab".into(), "cde".into()])),
            5
        );
        assert_eq!(
            value_size(&AttributeValue::BS(vec![vec![1], vec![2, 3]])),
            3
        );
        let ns = AttributeValue::NS(vec![Number::from_i64(1), Number::from_i64(-1234)]);
        assert_eq!(value_size(&ns), 2 + 4);
    }

    #[test]
    fn container_sizes() {
        assert_eq!(value_size(&AttributeValue::M(BTreeMap::new())), 3);
        assert_eq!(value_size(&AttributeValue::L(vec![])), 3);
        let l = AttributeValue::L(vec![AttributeValue::S("abc".into()), AttributeValue::Null]);
        assert_eq!(value_size(&l), 3 + (3 + 1) + (1 + 1));
        let mut m = BTreeMap::new();
        m.insert("key".to_string(), AttributeValue::S("v".into()));
        m.insert("l".to_string(), l.clone());
        let m = AttributeValue::M(m);
        assert_eq!(value_size(&m), 3 + (3 + 1 + 1) + (1 + 9 + 1));
    }

    #[test]
    fn item_sizes() {
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S("abc".into()));
        item.insert("n".into(), num("12"));
        assert_eq!(item_size(&item), 2 + 3 + 1 + 2);
        assert_eq!(item_size(&Item::new()), 0);
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut v = AttributeValue::Null;
        for _ in 0..100_000 {
            v = AttributeValue::L(vec![v]);
        }
        assert_eq!(value_size(&v), 100_000 * 4 + 1);
        // Dismantle iteratively: the derived Drop of a deep value recurses.
        let mut cur = v;
        while let AttributeValue::L(mut l) = cur {
            cur = l.pop().unwrap_or(AttributeValue::Null);
        }
    }
}
