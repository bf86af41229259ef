//! Exact decimal numbers with DynamoDB's precision and range.
//!
//! Owns: parsing DynamoDB's number syntax, the canonical text form, numeric order, exact
//! addition/subtraction, the size DynamoDB charges for a number, and an order-preserving,
//! self-delimiting binary encoding for keys.
//!
//! Invariant: a [`Number`] is always canonical: `coefficient × 10^exponent` with the coefficient
//! holding 1..=38 decimal digits and not divisible by 10, the most significant digit's position
//! within -130..=125 (magnitude 1E-130 ..= 9.9999999999999999999999999999999999999E+125), or the
//! single zero (coefficient 0, exponent 0, not negative). Because the form is canonical, equality
//! and hashing work on the fields directly. No floating point anywhere.
//!
//! Behaviour of DynamoDB reproduced here (see the tests):
//! * Syntax: optional `+`/`-`, digits with an optional `.` (".5" and "5." are accepted), an
//!   optional exponent `e`/`E` with optional sign. No spaces, "NaN", "Infinity" or hex.
//! * Leading and trailing zeros are not significant: "1.000…0" with 60 zeros is 1 digit.
//! * Range checks, in this order: overflow, underflow, then more than 38 significant digits.
//! * A zero written with a nominal exponent outside the range is rejected as DynamoDB does:
//!   "0e126" overflows and "0e-131" underflows, while "0.0e126" is accepted. The rule is the one of
//!   a decimal that keeps its scale: a zero with `f` fraction digits and exponent `E` has the
//!   magnitude exponent `E - f`.
//! * The text form is plain decimal, never scientific notation: "1e125" prints 126 characters.
//! * Arithmetic results are exact or an error: DynamoDB rejects `1e50 + 1` rather than rounding.

use std::cmp::Ordering;
use std::fmt;

/// Largest number of significant digits a number may have.
pub const MAX_DIGITS: usize = 38;
/// Largest decimal position (power of ten) of a most significant digit.
pub const MAX_MSD_EXPONENT: i64 = 125;
/// Smallest decimal position (power of ten) a significant digit may have.
pub const MIN_MSD_EXPONENT: i64 = -130;
/// Most base-100 digits of a valid number (38 decimal digits straddling pair boundaries).
const CENTIMAL_DIGITS: usize = 20;

/// The message DynamoDB gives for any `+`/`-` result in an update expression that it cannot
/// store (too large, or more than 38 significant digits: DynamoDB words both as an overflow).
pub const ARITHMETIC_OVERFLOW_MESSAGE: &str =
    "Number overflow. Attempting to store a number with magnitude larger than supported range";

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

impl NumberError {
    /// DynamoDB's message for a number value in a request that failed to parse as `input`.
    ///
    /// For an invalid number DynamoDB appends the offending text (none when it is empty). The
    /// caller adds any context DynamoDB puts around it (e.g. "ExpressionAttributeValues contains
    /// invalid value: … for key :v").
    pub fn message_for_input(&self, input: &str) -> String {
        match self {
            NumberError::Invalid if !input.is_empty() => format!("{self}: {input}"),
            _ => self.to_string(),
        }
    }
}

/// DynamoDB's wording for a number rejected in a request (without the offending input).
impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberError::Invalid => "The parameter cannot be converted to a numeric value",
            NumberError::TooManyDigits => {
                "Attempting to store more than 38 significant digits in a Number"
            }
            NumberError::Overflow => {
                "Number overflow. Attempting to store a number with magnitude larger than supported range"
            }
            NumberError::Underflow => {
                "Number underflow. Attempting to store a number with magnitude smaller than supported range"
            }
        })
    }
}

impl std::error::Error for NumberError {}

/// A decimal number: sign, significant digits (no leading/trailing zeros), and exponent.
#[derive(Clone)]
pub struct Number {
    /// Never true for zero.
    negative: bool,
    /// 0 for zero; otherwise 1..=38 digits and not a multiple of 10.
    coefficient: u128,
    /// Decimal position of the least significant digit; 0 for zero.
    exponent: i32,
}

/// Powers of ten that fit a u128 (10^0 ..= 10^38).
const fn pow10(k: u32) -> u128 {
    let mut r: u128 = 1;
    let mut i = 0;
    while i < k {
        r *= 10;
        i += 1;
    }
    r
}

fn digit_count(c: u128) -> usize {
    c.checked_ilog10().map_or(0, |l| l as usize + 1)
}

/// Positions of a fixed-point digit buffer wide enough for any exact sum of two numbers:
/// positions -130..=126 (the carry out of 125 needs one more).
const SPAN: usize = (MAX_MSD_EXPONENT - MIN_MSD_EXPONENT + 2) as usize;

impl Number {
    pub fn zero() -> Number {
        Number {
            negative: false,
            coefficient: 0,
            exponent: 0,
        }
    }

    /// Builds `(-1)^negative × coefficient × 10^exponent`, normalising trailing zeros and
    /// checking DynamoDB's limits (overflow, underflow, then digits).
    pub fn from_parts(
        negative: bool,
        coefficient: u128,
        exponent: i32,
    ) -> Result<Number, NumberError> {
        if coefficient == 0 {
            return Ok(Number::zero());
        }
        let mut c = coefficient;
        let mut e = i64::from(exponent);
        // Strip trailing zeros (terminates: c is non-zero), in u64 once it fits.
        while c > u128::from(u64::MAX) && c % 10 < 1 {
            c /= 10;
            e += 1;
        }
        if let Ok(mut small) = u64::try_from(c) {
            while small % 10 < 1 {
                small /= 10;
                e += 1;
            }
            c = u128::from(small);
        }
        let n = digit_count(c);
        Self::checked_new(negative, c, e, n)
    }

    /// Validates a normalised coefficient (not a multiple of 10, `n` digits) and the position
    /// `lsd` of its least significant digit.
    fn checked_new(negative: bool, c: u128, lsd: i64, n: usize) -> Result<Number, NumberError> {
        let msd = lsd + n as i64 - 1;
        if msd > MAX_MSD_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if msd < MIN_MSD_EXPONENT {
            return Err(NumberError::Underflow);
        }
        if n > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        // lsd >= msd - 37 >= -167 and <= 125, so it fits an i32.
        Ok(Number {
            negative,
            coefficient: c,
            exponent: lsd as i32,
        })
    }

    /// Parses DynamoDB's number syntax: `[+-]digits[.digits][(e|E)[+-]digits]`, where either the
    /// integer or the fraction digits may be missing (not both). Spaces are rejected.
    pub fn parse(s: &str) -> Result<Number, NumberError> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = b.first() {
            if c == b'+' || c == b'-' {
                negative = c == b'-';
                i = 1;
            }
        }
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &b[int_start..i];
        let mut frac_digits: &[u8] = &[];
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = &b[frac_start..i];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(NumberError::Invalid);
        }
        let mut exp: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                exp_negative = b[i] == b'-';
                i += 1;
            }
            let exp_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                // Saturate far beyond i32 so that absurd exponents cannot overflow.
                exp = (exp * 10 + i64::from(b[i] - b'0')).min(1 << 40);
                i += 1;
            }
            if i == exp_start {
                return Err(NumberError::Invalid);
            }
            if exp_negative {
                exp = -exp;
            }
        }
        if i != b.len() {
            return Err(NumberError::Invalid);
        }
        // DynamoDB's decimal parser keeps the exponent in 32 bits: anything larger is not a
        // number at all for it.
        if exp > i64::from(i32::MAX) || exp < i64::from(i32::MIN) {
            return Err(NumberError::Invalid);
        }

        // All mantissa digits, integer part then fraction, as one sequence.
        let total = int_digits.len() + frac_digits.len();
        let digit_at = |k: usize| -> u8 {
            if k < int_digits.len() {
                int_digits[k] - b'0'
            } else {
                frac_digits[k - int_digits.len()] - b'0'
            }
        };
        // Position (power of ten) of the last mantissa digit.
        let last_pos = exp - frac_digits.len() as i64;
        let first_nz = (0..total).find(|&k| digit_at(k) != 0);
        let Some(first_nz) = first_nz else {
            // Zero: DynamoDB range-checks the nominal magnitude exponent of a zero.
            if last_pos > MAX_MSD_EXPONENT {
                return Err(NumberError::Overflow);
            }
            if last_pos < MIN_MSD_EXPONENT {
                return Err(NumberError::Underflow);
            }
            return Ok(Number::zero());
        };
        let last_nz = (0..total)
            .rev()
            .find(|&k| digit_at(k) != 0)
            .unwrap_or(first_nz);
        let n = last_nz - first_nz + 1;
        let lsd = last_pos + (total - 1 - last_nz) as i64;
        let msd = lsd + n as i64 - 1;
        if msd > MAX_MSD_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if msd < MIN_MSD_EXPONENT {
            return Err(NumberError::Underflow);
        }
        if n > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        let mut c: u128 = 0;
        for k in first_nz..=last_nz {
            c = c * 10 + u128::from(digit_at(k));
        }
        Self::checked_new(negative, c, lsd, n)
    }

    pub fn from_i64(v: i64) -> Number {
        let negative = v < 0;
        let magnitude = u128::from(v.unsigned_abs());
        // Any i64 has at most 19 digits and a magnitude below 1E+19: always in range.
        Number::from_parts(negative, magnitude, 0).unwrap_or_else(|_| Number::zero())
    }

    pub fn is_zero(&self) -> bool {
        self.coefficient == 0
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The number with the opposite sign (zero stays zero).
    pub fn negated(&self) -> Number {
        Number {
            negative: !self.negative && !self.is_zero(),
            coefficient: self.coefficient,
            exponent: self.exponent,
        }
    }

    /// The absolute value.
    pub fn abs(&self) -> Number {
        Number {
            negative: false,
            coefficient: self.coefficient,
            exponent: self.exponent,
        }
    }

    /// Exact sum; errors if the result is out of range or needs more than 38 digits.
    ///
    /// Overflow is reported before TooManyDigits; an exact sum of two valid numbers can never
    /// underflow (it is zero or has a digit at position -130 or above). DynamoDB reports every
    /// failure of `+`/`-` in an update expression with [`ARITHMETIC_OVERFLOW_MESSAGE`].
    pub fn checked_add(&self, other: &Number) -> Result<Number, NumberError> {
        if other.is_zero() {
            return Ok(self.clone());
        }
        if self.is_zero() {
            return Ok(other.clone());
        }
        // Fixed-point digits, index 0 = position -130, least significant first.
        let mut a = [0u8; SPAN];
        let mut b = [0u8; SPAN];
        self.fill_fixed(&mut a);
        other.fill_fixed(&mut b);
        let mut r = [0u8; SPAN];
        let negative;
        if self.negative == other.negative {
            negative = self.negative;
            let mut carry = 0u8;
            for ((r, &x), &y) in r.iter_mut().zip(&a).zip(&b) {
                let s = x + y + carry;
                *r = s % 10;
                carry = s / 10;
            }
        } else {
            let (big, small, sign) = match cmp_magnitude(self, other) {
                Ordering::Equal => return Ok(Number::zero()),
                Ordering::Greater => (&a, &b, self.negative),
                Ordering::Less => (&b, &a, other.negative),
            };
            negative = sign;
            let mut borrow = 0u8;
            for ((r, &x), &y) in r.iter_mut().zip(big).zip(small) {
                let sub = y + borrow;
                if x >= sub {
                    *r = x - sub;
                    borrow = 0;
                } else {
                    *r = x + 10 - sub;
                    borrow = 1;
                }
            }
        }
        let Some(hi) = r.iter().rposition(|&d| d != 0) else {
            return Ok(Number::zero());
        };
        let lo = r.iter().position(|&d| d != 0).unwrap_or(hi);
        let msd = hi as i64 + MIN_MSD_EXPONENT;
        let n = hi - lo + 1;
        if msd > MAX_MSD_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if n > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        let c = r[lo..=hi]
            .iter()
            .rev()
            .fold(0u128, |acc, &d| acc * 10 + u128::from(d));
        Self::checked_new(negative, c, lo as i64 + MIN_MSD_EXPONENT, n)
    }

    /// Exact difference, with the same rules as [`Number::checked_add`].
    pub fn checked_sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.checked_add(&other.negated())
    }

    /// Writes the digits into a fixed-point buffer (index 0 = position -130).
    fn fill_fixed(&self, buf: &mut [u8; SPAN]) {
        let mut digits = [0u8; MAX_DIGITS];
        let n = self.coefficient_digits(&mut digits);
        // exponent >= -130 by the invariant, so the index is non-negative.
        let lsd = (i64::from(self.exponent) - MIN_MSD_EXPONENT) as usize;
        for (k, &d) in digits[..n].iter().rev().enumerate() {
            if let Some(slot) = buf.get_mut(lsd + k) {
                *slot = d;
            }
        }
    }

    /// Number of significant digits (used by item-size arithmetic); 0 for zero.
    pub fn significant_digits(&self) -> usize {
        digit_count(self.coefficient)
    }

    /// Position (power of ten) of the most significant digit; `None` for zero.
    fn msd(&self) -> Option<i64> {
        if self.is_zero() {
            None
        } else {
            Some(i64::from(self.exponent) + self.significant_digits() as i64 - 1)
        }
    }

    /// Bytes DynamoDB charges for this number in item size.
    ///
    /// The digits are stored in base-100 pairs aligned on the decimal point (so "12" is one pair
    /// and "1.2" two), plus one byte, plus one more byte for a negative number; zero is 1 byte.
    pub fn size_bytes(&self) -> usize {
        let Some(msd) = self.msd() else {
            return 1;
        };
        let pairs = msd.div_euclid(2) - i64::from(self.exponent).div_euclid(2) + 1;
        1 + pairs as usize + usize::from(self.negative)
    }

    /// Decimal digits of the coefficient, most significant first, in `buf[..n]`; `n` is 0 for
    /// zero. Uses 64-bit division while the remaining value fits, which is the common case.
    fn coefficient_digits(&self, buf: &mut [u8; MAX_DIGITS]) -> usize {
        let mut c = self.coefficient;
        let mut k = MAX_DIGITS;
        while c > u128::from(u64::MAX) && k > 0 {
            k -= 1;
            buf[k] = (c % 10) as u8;
            c /= 10;
        }
        let mut c = c as u64;
        while c > 0 && k > 0 {
            k -= 1;
            buf[k] = (c % 10) as u8;
            c /= 10;
        }
        let n = MAX_DIGITS - k;
        buf.copy_within(k.., 0);
        n
    }

    /// Base-100 digits from the most significant into `out[..len]`, with `E` such that the
    /// value's magnitude is `0.d1 d2 … × 100^E` and `d1 != 0`; the last digit is non-zero too.
    /// Returns `(E, len)`; `len <= CENTIMAL_DIGITS` for every valid number.
    fn centimal(&self, out: &mut [u8; CENTIMAL_DIGITS]) -> (i64, usize) {
        let mut dec = [0u8; MAX_DIGITS];
        let n = self.coefficient_digits(&mut dec);
        let lsd = i64::from(self.exponent);
        let msd = lsd + n as i64 - 1;
        // The decimal digit at position p (power of ten), 0 outside the coefficient.
        let digit_at = |p: i64| -> u8 {
            if p < lsd || p > msd {
                0
            } else {
                dec[(msd - p) as usize]
            }
        };
        let top = msd.div_euclid(2);
        let bottom = lsd.div_euclid(2);
        let mut len = 0;
        for pair in (bottom..=top).rev() {
            out[len] = digit_at(2 * pair + 1) * 10 + digit_at(2 * pair);
            len += 1;
        }
        (top + 1, len)
    }

    /// Appends an order-preserving encoding: byte order of encodings == numeric order.
    ///
    /// Layout: zero is `80 00`. Otherwise one header byte, `80 + (E + 64)` for a positive number
    /// and `7F - (E + 64)` for a negative one, where `E` in -64..=63 is the base-100 exponent
    /// (magnitude `0.d1 d2 … × 100^E`, `d1 != 0`); then one byte per base-100 digit, `2d + 1`
    /// for every digit but the last and `2d` for the last, which makes the encoding
    /// self-delimiting and makes a shorter digit sequence sort before its extensions. For a
    /// negative number the digit bytes are complemented (`255 - b`) so larger magnitudes sort
    /// first. A positive number's first digit byte is at least 2, so `80 00` (zero) sorts between
    /// the negatives (headers below 80) and the positives.
    pub fn encode_ordered(&self, out: &mut Vec<u8>) {
        if self.is_zero() {
            out.extend_from_slice(&[0x80, 0x00]);
            return;
        }
        let mut digits = [0u8; CENTIMAL_DIGITS];
        let (e, len) = self.centimal(&mut digits);
        // e in -64..=63 by the range invariant.
        let biased = (e + 64) as u8;
        out.push(if self.negative {
            0x7F - biased
        } else {
            0x80 + biased
        });
        let last = len - 1;
        for (k, &d) in digits[..len].iter().enumerate() {
            let byte = if k == last { 2 * d } else { 2 * d + 1 };
            out.push(if self.negative { 255 - byte } else { byte });
        }
    }

    /// Decodes what [`Number::encode_ordered`] wrote; returns the number and bytes consumed.
    /// Rejects (`None`) anything that `encode_ordered` cannot have produced.
    pub fn decode_ordered(bytes: &[u8]) -> Option<(Number, usize)> {
        let &header = bytes.first()?;
        if header == 0x80 && bytes.get(1) == Some(&0x00) {
            return Some((Number::zero(), 2));
        }
        let negative = header < 0x80;
        let e = if negative {
            i64::from(0x7F - header) - 64
        } else {
            i64::from(header - 0x80) - 64
        };
        // At most 20 base-100 digits can hold 38 decimal digits.
        let mut digits = [0u8; CENTIMAL_DIGITS];
        let mut len = 0;
        let mut i = 1;
        loop {
            let &raw = bytes.get(i)?;
            i += 1;
            let b = if negative { 255 - raw } else { raw };
            if b > 199 || len == CENTIMAL_DIGITS {
                return None;
            }
            digits[len] = b / 2;
            len += 1;
            if b % 2 == 0 {
                break;
            }
        }
        let digits = &digits[..len];
        if digits.first() == Some(&0) || digits.last() == Some(&0) {
            return None;
        }
        // Rebuild the decimal digits; the first pair covers positions 2E-1 and 2E-2 and the
        // ones digit of the last pair sits at position 2(E - len).
        let mut dec = [0u8; 2 * CENTIMAL_DIGITS];
        for (k, &d) in digits.iter().enumerate() {
            dec[2 * k] = d / 10;
            dec[2 * k + 1] = d % 10;
        }
        let dec = &dec[..2 * len];
        let start = dec.iter().position(|&d| d != 0)?;
        let end = dec.iter().rposition(|&d| d != 0)?;
        if end - start + 1 > MAX_DIGITS {
            return None;
        }
        let significant = &dec[start..=end];
        // Up to 19 digits fit a u64, whose arithmetic is much cheaper than u128's.
        let c = if significant.len() <= 19 {
            u128::from(
                significant
                    .iter()
                    .fold(0u64, |acc, &d| acc * 10 + u64::from(d)),
            )
        } else {
            significant
                .iter()
                .fold(0u128, |acc, &d| acc * 10 + u128::from(d))
        };
        let lsd = 2 * (e - len as i64) + (dec.len() - 1 - end) as i64;
        // `c` is normalised already: its last digit `dec[end]` is not zero.
        let number = Number::checked_new(negative, c, lsd, significant.len()).ok()?;
        Some((number, i))
    }

    /// Appends DynamoDB's canonical output form (what `Display` prints): plain decimal, no
    /// exponent, no leading "+", no trailing fraction zeros, "0" for zero. ASCII only, never
    /// anything that JSON would need to escape. Does not allocate beyond `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; MAX_DIGITS];
        let n = self.coefficient_digits(&mut buf);
        if n == 0 {
            out.push(b'0');
            return;
        }
        let digits = buf[..n].iter().map(|d| b'0' + d);
        if self.negative {
            out.push(b'-');
        }
        if self.exponent >= 0 {
            out.extend(digits);
            out.extend(std::iter::repeat_n(b'0', self.exponent as usize));
        } else {
            let point = n as i64 + i64::from(self.exponent);
            if point > 0 {
                for (k, d) in digits.enumerate() {
                    if k as i64 == point {
                        out.push(b'.');
                    }
                    out.push(d);
                }
            } else {
                out.extend_from_slice(b"0.");
                out.extend(std::iter::repeat_n(b'0', (-point) as usize));
                out.extend(digits);
            }
        }
    }

    /// If the value is an integer fitting i64.
    pub fn to_i64(&self) -> Option<i64> {
        if self.is_zero() {
            return Some(0);
        }
        if self.exponent < 0 {
            return None;
        }
        let scale = 10u128.checked_pow(u32::try_from(self.exponent).ok()?)?;
        let magnitude = i128::try_from(self.coefficient.checked_mul(scale)?).ok()?;
        let signed = if self.negative { -magnitude } else { magnitude };
        i64::try_from(signed).ok()
    }
}

/// Compares absolute values.
fn cmp_magnitude(a: &Number, b: &Number) -> Ordering {
    match (a.msd(), b.msd()) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(ma), Some(mb)) => ma.cmp(&mb).then_with(|| {
            // Same leading position: compare coefficients scaled to the same digit count
            // (both stay below 10^38).
            let na = a.significant_digits();
            let nb = b.significant_digits();
            let ca = a.coefficient * pow10(nb.saturating_sub(na) as u32);
            let cb = b.coefficient * pow10(na.saturating_sub(nb) as u32);
            ca.cmp(&cb)
        }),
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
    fn cmp(&self, other: &Self) -> Ordering {
        let class = |n: &Number| -> i8 {
            if n.is_zero() {
                0
            } else if n.negative {
                -1
            } else {
                1
            }
        };
        class(self).cmp(&class(other)).then_with(|| {
            let m = cmp_magnitude(self, other);
            if self.negative {
                m.reverse()
            } else {
                m
            }
        })
    }
}
/// Consistent with `Eq` because the representation is canonical.
impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.negative.hash(state);
        self.coefficient.hash(state);
        self.exponent.hash(state);
    }
}

/// DynamoDB's canonical output form (e.g. "1E+2" is output as "100", "0.10" as "0.1").
/// Always plain decimal: no exponent, no leading "+", no trailing fraction zeros, "0" for zero.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = Vec::with_capacity(48);
        self.write_canonical(&mut s);
        // Only ASCII digits, '-' and '.' are written.
        f.write_str(std::str::from_utf8(&s).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl std::str::FromStr for Number {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Number, NumberError> {
        Number::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        match Number::parse(s) {
            Ok(v) => v,
            Err(e) => panic!("{s:?} should parse, got {e:?}"),
        }
    }

    #[test]
    fn parse_and_display_canonical() {
        let cases: &[(&str, &str)] = &[
            ("1", "1"),
            ("123", "123"),
            ("-5", "-5"),
            ("0", "0"),
            ("10", "10"),
            ("1000", "1000"),
            ("007", "7"),
            ("001.23", "1.23"),
            ("00", "0"),
            ("+3", "3"),
            ("+0", "0"),
            ("+1.5", "1.5"),
            ("1.0", "1"),
            ("1.10", "1.1"),
            ("100.000", "100"),
            ("0.0", "0"),
            ("0.10", "0.1"),
            ("1e3", "1000"),
            ("1E+3", "1000"),
            ("1e+3", "1000"),
            ("-3e2", "-300"),
            ("1.5e2", "150"),
            ("1.23e4", "12300"),
            ("1e-3", "0.001"),
            ("5e-1", "0.5"),
            ("123e-2", "1.23"),
            ("1.23e-1", "0.123"),
            ("1.0e-1", "0.1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("0e5", "0"),
            ("0.0e3", "0"),
            ("0e-5", "0"),
            ("0.000", "0"),
            (".5", "0.5"),
            ("-.5", "-0.5"),
            ("5.", "5"),
            ("1e20", "100000000000000000000"),
            ("9.9e10", "99000000000"),
            ("1e-20", "0.00000000000000000001"),
            ("3.14159", "3.14159"),
            ("-273.15", "-273.15"),
            ("-17.4E37", "-174000000000000000000000000000000000000"),
            ("1E+2", "100"),
            ("1e-5", "0.00001"),
            ("0.1e126", &format!("1{}", "0".repeat(125))),
            ("0.0e126", "0"),
            ("0e125", "0"),
            ("1e0000000000000000000000000003", "1000"),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345678",
            ),
            (
                "3.1415926535897932384626433832795028841",
                "3.1415926535897932384626433832795028841",
            ),
            (&format!("1.{}", "0".repeat(60)), "1"),
            (&format!("{}1", "0".repeat(60)), "1"),
        ];
        for (input, want) in cases {
            assert_eq!(n(input).to_string(), *want, "input {input:?}");
        }
        assert_eq!(n("1e125").to_string(), format!("1{}", "0".repeat(125)));
        assert_eq!(n("1e-130").to_string(), format!("0.{}1", "0".repeat(129)));
        assert_eq!(
            n("-9.9999999999999999999999999999999999999E+125").to_string(),
            format!("-{}{}", "9".repeat(38), "0".repeat(88))
        );
    }

    #[test]
    fn parse_errors() {
        use NumberError::*;
        let cases: &[(&str, NumberError)] = &[
            ("", Invalid),
            ("NaN", Invalid),
            ("-NaN", Invalid),
            ("Infinity", Invalid),
            ("-Infinity", Invalid),
            ("inf", Invalid),
            ("dog", Invalid),
            ("-dog", Invalid),
            (" 1", Invalid),
            ("1 ", Invalid),
            ("0x10", Invalid),
            ("1e", Invalid),
            ("1e+", Invalid),
            ("e5", Invalid),
            (".", Invalid),
            ("-", Invalid),
            ("+", Invalid),
            ("--1", Invalid),
            ("+-1", Invalid),
            ("1.2.3", Invalid),
            ("1e5.5", Invalid),
            ("1_000", Invalid),
            ("١", Invalid),
            ("1e99999999999", Invalid),
            ("1e126", Overflow),
            ("-1e126", Overflow),
            ("11e125", Overflow),
            ("1.0e100000000", Overflow),
            ("1e-131", Underflow),
            ("-1e-131", Underflow),
            ("0.9e-130", Underflow),
            ("1.0e-100000000", Underflow),
            ("0e126", Overflow),
            ("0e-131", Underflow),
            ("123456789012345678901234567890123456789", TooManyDigits),
            ("-1.23456789012345678901234567890123456789", TooManyDigits),
            ("3.14159265358979323846264338327950288419", TooManyDigits),
            ("314159265358979323846264338327950288419e30", TooManyDigits),
            ("1.00000000000000000000000000000000000001", TooManyDigits),
            // Out of range is reported before too many digits.
            ("123456789012345678901234567890123456789e200", Overflow),
        ];
        for (input, want) in cases {
            assert_eq!(
                Number::parse(input).err().as_ref(),
                Some(want),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn range_limits_accepted() {
        for s in [
            "1e125",
            "9.99999999e125",
            "9.9999999999999999999999999999999999999E+125",
            "-9.9999999999999999999999999999999999999E+125",
            "1e-130",
            "-1e-130",
            "1.2345678901234567890123456789012345678e-93",
            "31415926535897932384626433832795028841e30",
        ] {
            assert!(Number::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn ordering_and_equality() {
        assert_eq!(n("1.0"), n("1"));
        assert_eq!(n("1000"), n("1e3"));
        assert_eq!(n("-0"), n("0"));
        let ordered = [
            "-9.9999999999999999999999999999999999999E+125",
            "-1e100",
            "-10",
            "-9.99",
            "-9.9",
            "-1",
            "-0.5",
            "-1e-130",
            "0",
            "1e-130",
            "0.001",
            "0.5",
            "1",
            "1.000001",
            "9",
            "9.5",
            "10",
            "11",
            "100",
            "1e100",
            "9.9999999999999999999999999999999999999E+125",
        ];
        for w in ordered.windows(2) {
            assert!(n(w[0]) < n(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn arithmetic() {
        let ok: &[(&str, &str, &str)] = &[
            ("1", "10000000000000000000000", "10000000000000000000001"),
            ("9e125", "9e124", "9.9e125"),
            ("0.1", "0.2", "0.3"),
            ("5", "5", "10"),
            ("-5", "5", "0"),
            ("1", "-1.5", "-0.5"),
            ("-1", "-1.5", "-2.5"),
            ("1e38", "-1", "99999999999999999999999999999999999999"),
            ("0", "-7", "-7"),
            ("1e-130", "-1e-130", "0"),
            ("1e-130", "1e-130", "2e-130"),
            (
                "99999999999999999999999999999999999999",
                "1",
                "100000000000000000000000000000000000000",
            ),
        ];
        for (a, b, want) in ok {
            assert_eq!(n(a).checked_add(&n(b)), Ok(n(want)), "{a} + {b}");
            assert_eq!(n(b).checked_add(&n(a)), Ok(n(want)), "{b} + {a}");
            assert_eq!(n(want).checked_sub(&n(b)), Ok(n(a)), "{want} - {b}");
        }
        use NumberError::*;
        let bad: &[(&str, &str, NumberError)] = &[
            ("9e125", "9e125", Overflow),
            ("-9e125", "-9e125", Overflow),
            ("1e50", "1", TooManyDigits),
            ("1e50", "-1", TooManyDigits),
            ("1e125", "1e-130", TooManyDigits),
            (
                "99999999999999999999999999999999999999",
                "0.1",
                TooManyDigits,
            ),
            (
                "9.9999999999999999999999999999999999999E+125",
                "1e88",
                Overflow,
            ),
        ];
        for (a, b, want) in bad {
            assert_eq!(n(a).checked_add(&n(b)).as_ref(), Err(want), "{a} + {b}");
        }
        assert_eq!(n("9e125").checked_sub(&n("-9e125")), Err(Overflow));
    }

    #[test]
    fn sizes() {
        // (number, bytes): pairs aligned on the decimal point + 1, + 1 if negative.
        let cases: &[(&str, usize)] = &[
            ("0", 1),
            ("1", 2),
            ("-1", 3),
            ("12", 2),
            ("123", 3),
            ("1.2", 3),
            ("0.12", 2),
            ("0.1", 2),
            ("10", 2),
            ("100", 2),
            ("1234", 3),
            ("-1234", 4),
            ("3.14", 3),
            ("12345678901234567890123456789012345678", 20),
            ("1.2345678901234567890123456789012345678", 21),
            ("1e125", 2),
            ("1e-130", 2),
        ];
        for (s, want) in cases {
            assert_eq!(n(s).size_bytes(), *want, "{s}");
        }
        assert_eq!(n("0").significant_digits(), 0);
        assert_eq!(n("-120.50").significant_digits(), 4);
    }

    #[test]
    fn i64_conversions() {
        for v in [0, 1, -1, 10, 1000, i64::MAX, i64::MIN, 1234567890123] {
            let x = Number::from_i64(v);
            assert_eq!(x.to_string(), v.to_string());
            assert_eq!(x.to_i64(), Some(v));
        }
        assert_eq!(n("1.5").to_i64(), None);
        assert_eq!(n("1e19").to_i64(), None);
        assert_eq!(n("-9223372036854775809").to_i64(), None);
        assert_eq!(n("1e18").to_i64(), Some(1_000_000_000_000_000_000));
        assert_eq!(n("1e100").to_i64(), None);
    }

    #[test]
    fn encoding_examples() {
        let mut z = Vec::new();
        Number::zero().encode_ordered(&mut z);
        assert_eq!(z, [0x80, 0x00]);
        let mut one = Vec::new();
        n("1").encode_ordered(&mut one);
        // 1 = 0.01 × 100^1: header 0x80 + 65, last digit 1 → 2.
        assert_eq!(one, [0xC1, 0x02]);
        for bad in [
            &[][..],
            &[0x80],
            &[0xC1],
            &[0xC1, 0x00],       // leading digit zero
            &[0xC1, 0x03, 0x00], // trailing digit zero
            &[0xC1, 0xC8],       // digit 100
            &[0x80, 0x01, 0x02], // leading zero digit
        ] {
            assert_eq!(Number::decode_ordered(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            NumberError::Invalid.message_for_input("b"),
            "The parameter cannot be converted to a numeric value: b"
        );
        assert_eq!(
            NumberError::Invalid.message_for_input(""),
            "The parameter cannot be converted to a numeric value"
        );
        assert_eq!(
            NumberError::Underflow.message_for_input("1e-131"),
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        );
    }
}
