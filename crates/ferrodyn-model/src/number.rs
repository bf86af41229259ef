//! Exact decimal numbers with DynamoDB's precision and range.
//!
//! Invariant: a [`Number`] always holds at most 38 significant digits and a magnitude of 0 or
//! within 1E-130 ..= 9.9999999999999999999999999999999999999E+125. No floating point anywhere.
//! (Interface fixed; implementation to be completed.)

use std::cmp::Ordering;
use std::fmt;

/// Why a number was rejected or an arithmetic result is out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    /// Not a number at all (syntax), e.g. "abc", "1e", "".
    Invalid,
    /// More than 38 significant digits.
    TooManyDigits,
    /// Magnitude larger than 9.9999999999999999999999999999999999999E+125.
    Overflow,
    /// Non-zero magnitude smaller than 1E-130.
    Underflow,
}

/// A decimal number: sign, significant digits (no leading/trailing zeros), and exponent.
#[derive(Debug, Clone)]
pub struct Number {
    // representation private to this module
}

impl Number {
    pub fn zero() -> Number {
        todo!()
    }
    /// Parses DynamoDB's number syntax (leading/trailing spaces rejected? see impl notes).
    pub fn parse(_s: &str) -> Result<Number, NumberError> {
        todo!()
    }
    pub fn from_i64(_v: i64) -> Number {
        todo!()
    }
    pub fn is_zero(&self) -> bool {
        todo!()
    }
    pub fn is_negative(&self) -> bool {
        todo!()
    }
    /// Exact sum; errors if the result is out of range or needs more than 38 digits.
    pub fn checked_add(&self, _other: &Number) -> Result<Number, NumberError> {
        todo!()
    }
    pub fn checked_sub(&self, _other: &Number) -> Result<Number, NumberError> {
        todo!()
    }
    /// Number of significant digits (used by item-size arithmetic).
    pub fn significant_digits(&self) -> usize {
        todo!()
    }
    /// Bytes DynamoDB charges for this number in item size.
    pub fn size_bytes(&self) -> usize {
        todo!()
    }
    /// Appends an order-preserving encoding: byte order of encodings == numeric order.
    pub fn encode_ordered(&self, _out: &mut Vec<u8>) {
        todo!()
    }
    /// Decodes what [`Number::encode_ordered`] wrote; returns the number and bytes consumed.
    pub fn decode_ordered(_bytes: &[u8]) -> Option<(Number, usize)> {
        todo!()
    }
    /// If the value is an integer fitting i64.
    pub fn to_i64(&self) -> Option<i64> {
        todo!()
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Number {}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Number {
    fn cmp(&self, _other: &Self) -> Ordering {
        todo!()
    }
}
impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, _state: &mut H) {
        todo!()
    }
}

/// DynamoDB's canonical output form (e.g. "1E+2" is output as "100", "0.10" as "0.1").
impl fmt::Display for Number {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}
