//! Reading the text of an `N` value (or an `NS` member) the way each validation layer does.
//!
//! [`Number::parse`] holds DynamoDB's syntax and limits. What differs between the layers is only
//! how an exponent far outside the range is read, and the wording of an unconvertible number:
//! * Current: the exponent is read as a 64-bit integer and range-checked exactly, so
//!   "1e2147483647" overflows; one past a 64-bit integer cannot be converted. An unconvertible
//!   number always echoes its text after ": ", even when the text is empty.
//! * Older: the number is read as a Java `BigDecimal` (exponent and scale in 32 bits) and the
//!   magnitude is `precision - scale` computed in wrapping 32-bit arithmetic, so "1e2147483647"
//!   wraps to an underflow. An empty text gets the bare message.
//!
//! Invariant: the range classification here agrees with [`Number::parse`] for every exponent
//! that fits 32 bits without wrapping; this module only decides the cases outside that.

use ferrodyn_model::{Error, Number, NumberError};

use super::decode::Layer;
use super::messages::{bare, NOT_NUMERIC, OVERFLOW, TOO_MANY_DIGITS, UNDERFLOW};

/// Largest `precision - scale` (magnitude exponent + 1) a number may have.
const MAX_PMS: i128 = 126;
/// Smallest `precision - scale` a number may have.
const MIN_PMS: i128 = -129;

/// Parses `text` as an attribute-value number under `layer`'s rules.
pub(crate) fn parse_number(text: &str, layer: Layer) -> Result<Number, Error> {
    let Some(shape) = Shape::scan(text) else {
        return Err(not_numeric(text, layer));
    };
    match shape.classify(layer) {
        Class::NotNumeric => return Err(not_numeric(text, layer)),
        Class::Overflow => return Err(bare(OVERFLOW)),
        Class::Underflow => return Err(bare(UNDERFLOW)),
        Class::InRange => {}
    }
    Number::parse(text).map_err(|e| match e {
        NumberError::Invalid => not_numeric(text, layer),
        NumberError::TooManyDigits => bare(TOO_MANY_DIGITS),
        NumberError::Overflow => bare(OVERFLOW),
        NumberError::Underflow => bare(UNDERFLOW),
    })
}

fn not_numeric(text: &str, layer: Layer) -> Error {
    match layer {
        Layer::Older if text.is_empty() => bare(NOT_NUMERIC),
        _ => bare(format!("{NOT_NUMERIC}: {text}")),
    }
}

enum Class {
    NotNumeric,
    Overflow,
    Underflow,
    InRange,
}

/// The parts of a syntactically valid number that decide its magnitude.
struct Shape {
    /// Mantissa digits without leading zeros, at least 1 (a zero counts 1, as in `BigDecimal`).
    precision: i128,
    /// Number of digits after the decimal point, as written.
    frac_len: i128,
    /// The written exponent; `None` when it does not fit an i64.
    exponent: Option<i64>,
}

impl Shape {
    /// `[+-]digits[.digits][(e|E)[+-]digits]` with integer or fraction digits (not neither).
    fn scan(text: &str) -> Option<Shape> {
        let b = text.as_bytes();
        let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &b[int_start..i];
        let mut frac_digits: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &b[start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let mut exponent = Some(0i64);
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let negative = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            // Accumulate negatively so that i64::MIN itself is representable.
            let mut acc: Option<i64> = Some(0);
            while i < b.len() && b[i].is_ascii_digit() {
                let d = i64::from(b[i] - b'0');
                acc = acc
                    .and_then(|a| a.checked_mul(10))
                    .and_then(|a| a.checked_sub(d));
                i += 1;
            }
            if i == start {
                return None;
            }
            exponent = if negative {
                acc
            } else {
                acc.and_then(i64::checked_neg)
            };
        }
        if i != b.len() {
            return None;
        }
        let leading_zeros = int_digits
            .iter()
            .chain(frac_digits)
            .take_while(|&&d| d == b'0')
            .count();
        let total = int_digits.len() + frac_digits.len();
        let precision = (total - leading_zeros).max(1);
        Some(Shape {
            precision: precision as i128,
            frac_len: frac_digits.len() as i128,
            exponent,
        })
    }

    fn classify(&self, layer: Layer) -> Class {
        let Some(exponent) = self.exponent else {
            return Class::NotNumeric;
        };
        let pms = match layer {
            Layer::Current => self.precision - (self.frac_len - i128::from(exponent)),
            Layer::Older => {
                // BigDecimal: the exponent and the resulting scale must both fit an int.
                let Ok(exp32) = i32::try_from(exponent) else {
                    return Class::NotNumeric;
                };
                let Ok(scale) = i32::try_from(self.frac_len - i128::from(exp32)) else {
                    return Class::NotNumeric;
                };
                let precision = i32::try_from(self.precision).unwrap_or(i32::MAX);
                i128::from(precision.wrapping_sub(scale))
            }
        };
        if pms > MAX_PMS {
            Class::Overflow
        } else if pms < MIN_PMS {
            Class::Underflow
        } else {
            Class::InRange
        }
    }
}
