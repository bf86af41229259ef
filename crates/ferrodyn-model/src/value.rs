//! Attribute values and items.
//!
//! Invariant: a value held in an [`Item`] that was accepted from a request is valid: sets are
//! non-empty and duplicate-free, numbers are within DynamoDB's range. Sets keep their members in
//! the order the request gave; set equality ignores order.

use std::collections::BTreeMap;

use crate::number::Number;

/// An item: attribute name to value. Ordered so that output and size arithmetic are deterministic.
pub type Item = BTreeMap<String, AttributeValue>;

#[derive(Debug, Clone)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    M(BTreeMap<String, AttributeValue>),
    L(Vec<AttributeValue>),
    SS(Vec<String>),
    NS(Vec<Number>),
    BS(Vec<Vec<u8>>),
}

/// The three types a key attribute may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ScalarType {
    S,
    N,
    B,
}

impl ScalarType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }
}

impl AttributeValue {
    /// The DynamoDB type descriptor: "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS".
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::SS(_) => "SS",
            AttributeValue::NS(_) => "NS",
            AttributeValue::BS(_) => "BS",
        }
    }

    /// The key type of this value, if it is a scalar usable as a key.
    pub fn scalar_type(&self) -> Option<ScalarType> {
        match self {
            AttributeValue::S(_) => Some(ScalarType::S),
            AttributeValue::N(_) => Some(ScalarType::N),
            AttributeValue::B(_) => Some(ScalarType::B),
            _ => None,
        }
    }
}

/// DynamoDB equality: numbers compare by value, sets compare as sets (order-insensitive).
impl PartialEq for AttributeValue {
    fn eq(&self, other: &Self) -> bool {
        use AttributeValue::*;
        match (self, other) {
            (S(a), S(b)) => a == b,
            (N(a), N(b)) => a == b,
            (B(a), B(b)) => a == b,
            (Bool(a), Bool(b)) => a == b,
            (Null, Null) => true,
            (M(a), M(b)) => a == b,
            (L(a), L(b)) => a == b,
            (SS(a), SS(b)) => set_eq(a, b),
            (NS(a), NS(b)) => set_eq(a, b),
            (BS(a), BS(b)) => set_eq(a, b),
            _ => false,
        }
    }
}

fn set_eq<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}
