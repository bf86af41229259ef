//! Condition operators: parsing a `Condition` block and deciding it against a request context.
//!
//! Semantics (IAM User Guide, "IAM JSON policy elements: Condition operators", "Conditions with
//! multiple context keys or values", "Single-valued vs. multivalued context keys"):
//! - operators of a block, and keys under one operator, are ANDed; the values listed for one key
//!   are ORed, and for a negated operator (`StringNotEquals`, `NotIpAddress`, ...) NORed: the
//!   negated operator holds when the key's value matches none of them;
//! - a key absent from the request: a plain operator is false, a negated one is true,
//!   `...IfExists` is true, `ForAllValues:` is true, `ForAnyValue:` is false; `Null` tests
//!   absence itself;
//! - a multivalued key present with no values: `ForAllValues:` is true, `ForAnyValue:` is false,
//!   and `Null` counts it as null;
//! - `ForAllValues:` holds when every value of the key satisfies the operator, `ForAnyValue:`
//!   when at least one does (for a negated operator, "satisfies" means "matches none of the
//!   policy's values");
//! - a plain operator on a multivalued key holds when any value matches (negated: when none
//!   does);
//! - a policy variable that cannot be resolved makes the whole statement inapplicable.

use super::context::{ContextValue, RequestContext};
use super::json::Json;
use super::pattern::{ArnPattern, Pattern, Syntax};
use base64::Engine as _;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnLike,
    Null,
}

/// Operator names: (name, base operator, negated).
const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("NumericEquals", Base::NumericEquals, false),
    ("NumericNotEquals", Base::NumericEquals, true),
    ("NumericLessThan", Base::NumericLessThan, false),
    ("NumericLessThanEquals", Base::NumericLessThanEquals, false),
    ("NumericGreaterThan", Base::NumericGreaterThan, false),
    (
        "NumericGreaterThanEquals",
        Base::NumericGreaterThanEquals,
        false,
    ),
    ("DateEquals", Base::DateEquals, false),
    ("DateNotEquals", Base::DateEquals, true),
    ("DateLessThan", Base::DateLessThan, false),
    ("DateLessThanEquals", Base::DateLessThanEquals, false),
    ("DateGreaterThan", Base::DateGreaterThan, false),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals, false),
    ("Bool", Base::Bool, false),
    ("BinaryEquals", Base::BinaryEquals, false),
    ("IpAddress", Base::IpAddress, false),
    ("NotIpAddress", Base::IpAddress, true),
    ("ArnEquals", Base::ArnLike, false),
    ("ArnNotEquals", Base::ArnLike, true),
    ("ArnLike", Base::ArnLike, false),
    ("ArnNotLike", Base::ArnLike, true),
    ("Null", Base::Null, false),
];

/// The policy's values for one key, parsed for the operator's type.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Strings(Vec<Pattern>),
    Numbers(Vec<Number>),
    Dates(Vec<i128>),
    Bools(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ips(Vec<IpNet>),
    Arns(Vec<ArnPattern>),
}

/// One operator applied to one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    base: Base,
    negated: bool,
    if_exists: bool,
    qualifier: Option<SetQualifier>,
    /// The context key, lowercase.
    key: Box<str>,
    values: Values,
}

/// Parses a statement's `Condition` element. `variables` says whether policy variables are
/// recognised (documents of version 2012-10-17).
pub(crate) fn parse_block(json: &Json, variables: bool) -> Result<Vec<Condition>, String> {
    let Json::Object(ops) = json else {
        return Err(format!("Condition must be an object, not {}", json.kind()));
    };
    let mut out = Vec::new();
    for (i, (op_name, keys)) in ops.iter().enumerate() {
        if ops[..i].iter().any(|(n, _)| n == op_name) {
            return Err(format!("Condition: operator '{op_name}' appears twice"));
        }
        let (base, negated, if_exists, qualifier) = parse_operator(op_name)?;
        let Json::Object(keys) = keys else {
            return Err(format!(
                "Condition.{op_name} must be an object of condition keys, not {}",
                keys.kind()
            ));
        };
        if keys.is_empty() {
            return Err(format!("Condition.{op_name} names no condition key"));
        }
        for (j, (key, raw)) in keys.iter().enumerate() {
            if key.is_empty() {
                return Err(format!("Condition.{op_name}: empty condition key"));
            }
            if keys[..j].iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
                return Err(format!("Condition.{op_name}: key '{key}' appears twice"));
            }
            let texts = value_texts(raw).map_err(|e| format!("Condition.{op_name}.{key}: {e}"))?;
            let values = parse_values(base, &texts, variables)
                .map_err(|e| format!("Condition.{op_name}.{key}: {e}"))?;
            out.push(Condition {
                base,
                negated,
                if_exists,
                qualifier,
                key: key.to_ascii_lowercase().into_boxed_str(),
                values,
            });
        }
    }
    Ok(out)
}

fn parse_operator(name: &str) -> Result<(Base, bool, bool, Option<SetQualifier>), String> {
    let unknown = || format!("unknown condition operator '{name}'");
    let (qualifier, rest) = match name.split_once(':') {
        Some((q, rest)) => {
            let q = if q.eq_ignore_ascii_case("ForAllValues") {
                SetQualifier::ForAllValues
            } else if q.eq_ignore_ascii_case("ForAnyValue") {
                SetQualifier::ForAnyValue
            } else {
                return Err(format!(
                    "unknown set qualifier '{q}' in condition operator '{name}' (expected ForAllValues or ForAnyValue)"
                ));
            };
            (Some(q), rest)
        }
        None => (None, name),
    };
    let (if_exists, bare) = match rest.len().checked_sub("IfExists".len()) {
        Some(cut) if rest.is_char_boundary(cut) && rest[cut..].eq_ignore_ascii_case("IfExists") => {
            (true, &rest[..cut])
        }
        _ => (false, rest),
    };
    let &(_, base, negated) = OPERATORS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(bare))
        .ok_or_else(unknown)?;
    if base == Base::Null && (if_exists || qualifier.is_some()) {
        return Err(format!(
            "condition operator '{name}': Null takes neither IfExists nor a set qualifier"
        ));
    }
    Ok((base, negated, if_exists, qualifier))
}

/// A condition value as text: a string, number or boolean, or a non-empty array of them.
fn value_texts(raw: &Json) -> Result<Vec<String>, String> {
    fn scalar(v: &Json) -> Result<String, String> {
        match v {
            Json::String(s) => Ok(s.clone()),
            Json::Number(n) => Ok(n.to_string()),
            Json::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "a condition value must be a string, number or boolean, not {}",
                other.kind()
            )),
        }
    }
    match raw {
        Json::Array(items) if items.is_empty() => Err("empty list of condition values".into()),
        Json::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn parse_values(base: Base, texts: &[String], variables: bool) -> Result<Values, String> {
    fn all<T>(texts: &[String], f: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
        texts.iter().map(|t| f(t)).collect()
    }
    Ok(match base {
        Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike => {
            let syntax = Syntax {
                wildcards: base == Base::StringLike,
                variables,
            };
            Values::Strings(all(texts, |t| Pattern::parse(t, syntax))?)
        }
        Base::NumericEquals
        | Base::NumericLessThan
        | Base::NumericLessThanEquals
        | Base::NumericGreaterThan
        | Base::NumericGreaterThanEquals => Values::Numbers(all(texts, |t| {
            Number::parse(t).ok_or_else(|| format!("'{t}' is not a number"))
        })?),
        Base::DateEquals
        | Base::DateLessThan
        | Base::DateLessThanEquals
        | Base::DateGreaterThan
        | Base::DateGreaterThanEquals => {
            Values::Dates(all(texts, |t| {
                parse_date(t).ok_or_else(|| {
                format!("'{t}' is not a date (ISO 8601 such as 2026-01-31T12:00:00Z, or epoch seconds)")
            })
            })?)
        }
        Base::Bool | Base::Null => Values::Bools(all(texts, |t| {
            parse_bool(t).ok_or_else(|| format!("'{t}' is not true or false"))
        })?),
        Base::BinaryEquals => Values::Binary(all(texts, |t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| format!("'{t}' is not base64"))
        })?),
        Base::IpAddress => Values::Ips(all(texts, |t| {
            parse_ip_net(t).ok_or_else(|| format!("'{t}' is not an IP address or CIDR block"))
        })?),
        Base::ArnLike => Values::Arns(all(texts, |t| ArnPattern::parse(t, variables))?),
    })
}

fn parse_bool(t: &str) -> Option<bool> {
    if t.eq_ignore_ascii_case("true") {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn parse_ip_net(t: &str) -> Option<IpNet> {
    let t = t.trim();
    if let Ok(net) = t.parse::<IpNet>() {
        return Some(net.trunc());
    }
    t.parse::<IpAddr>().ok().map(IpNet::from)
}

/// A number as IAM compares them: integers exactly, anything else as a double.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn parse(t: &str) -> Option<Number> {
        let t = t.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Some(Number::Int(i));
        }
        // Only plain decimal notation: no "inf", "NaN" or hex.
        if t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        {
            return None;
        }
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Float)
    }

    fn cmp(self, other: Number) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// Parses a date as nanoseconds since the Unix epoch: ISO 8601 (`2026-01-31`,
/// `2026-01-31T12:00Z`, `2026-01-31T12:00:00.5+02:00`, ...) or epoch seconds (`1769860800`,
/// possibly with a fraction).
pub(crate) fn parse_date(t: &str) -> Option<i128> {
    let t = t.trim();
    if t.len() >= 10 && t.as_bytes()[4] == b'-' {
        parse_iso(t)
    } else {
        parse_epoch(t)
    }
}

fn parse_epoch(t: &str) -> Option<i128> {
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int.is_empty() || int.len() > 15 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i128 = int.parse().ok()?;
    let nanos = frac_nanos(frac)?;
    let v = secs * 1_000_000_000 + nanos;
    Some(if neg { -v } else { v })
}

fn frac_nanos(frac: &str) -> Option<i128> {
    let mut nanos: i128 = 0;
    for (i, b) in frac.bytes().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        if i < 9 {
            nanos += i128::from(b - b'0') * 10i128.pow(8 - i as u32);
        }
    }
    Some(nanos)
}

fn parse_iso(t: &str) -> Option<i128> {
    fn num(s: &str, len: usize) -> Option<i64> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
    if !t.is_ascii() || t.len() < 10 {
        return None;
    }
    let year = num(&t[0..4], 4)?;
    if &t[4..5] != "-" || &t[7..8] != "-" {
        return None;
    }
    let month = num(&t[5..7], 2)?;
    let day = num(&t[8..10], 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let rest = &t[10..];
    let mut secs_of_day = 0i64;
    let mut nanos = 0i128;
    let mut offset = 0i64;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        // Time: HH:MM[:SS[.fff]] then Z or ±HH:MM (or ±HHMM); no zone means UTC.
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (time, zone) = rest.split_at(zone_at);
        let mut fields = time.splitn(3, ':');
        let hh = num(fields.next()?, 2)?;
        let mm = num(fields.next()?, 2)?;
        let (ss, frac) = match fields.next() {
            None => (0, ""),
            Some(s) => match s.split_once('.') {
                Some((s, f)) if !f.is_empty() => (num(s, 2)?, f),
                Some(_) => return None,
                None => (num(s, 2)?, ""),
            },
        };
        if hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        secs_of_day = hh * 3600 + mm * 60 + ss;
        nanos = frac_nanos(frac)?;
        offset = match zone {
            "" | "Z" | "z" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let z = &z[1..];
                let (zh, zm) = match z.split_once(':') {
                    Some((h, m)) => (num(h, 2)?, num(m, 2)?),
                    None if z.len() == 4 => (num(&z[..2], 2)?, num(&z[2..], 2)?),
                    None => (num(z, 2)?, 0),
                };
                if zh > 23 || zm > 59 {
                    return None;
                }
                sign * (zh * 3600 + zm * 60)
            }
        };
    }
    let secs = days * 86_400 + secs_of_day - offset;
    Some(i128::from(secs) * 1_000_000_000 + nanos)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What one condition says about the request: holds, does not hold, or the statement is
/// inapplicable because a policy variable cannot be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Holds,
    Fails,
    Unresolved,
}

impl Condition {
    pub(crate) fn evaluate(&self, ctx: &RequestContext) -> Verdict {
        let found = lookup(ctx, &self.key);
        if self.base == Base::Null {
            let Values::Bools(wants) = &self.values else {
                return Verdict::Fails;
            };
            let is_null = found.as_ref().is_none_or(Found::is_empty);
            return verdict(wants.contains(&is_null));
        }
        let Some(found) = found else {
            return verdict(
                self.if_exists
                    || match self.qualifier {
                        Some(SetQualifier::ForAllValues) => true,
                        Some(SetQualifier::ForAnyValue) => false,
                        None => self.negated,
                    },
            );
        };
        if !self.resolvable(ctx) {
            return Verdict::Unresolved;
        }
        let matches = |v: &str| self.matches_any(v, ctx);
        let result = match self.qualifier {
            Some(SetQualifier::ForAllValues) => found.all(|v| matches(v) != self.negated),
            Some(SetQualifier::ForAnyValue) => found.any(|v| matches(v) != self.negated),
            None => found.any(matches) != self.negated,
        };
        verdict(result)
    }

    fn resolvable(&self, ctx: &RequestContext) -> bool {
        match &self.values {
            Values::Strings(ps) => ps.iter().all(|p| p.resolvable(ctx)),
            Values::Arns(ps) => ps.iter().all(|p| p.resolvable(ctx)),
            _ => true,
        }
    }

    /// Whether the request value `v` matches at least one of the policy's values, for the
    /// operator read positively.
    fn matches_any(&self, v: &str, ctx: &RequestContext) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match &self.values {
            Values::Strings(ps) => {
                let ignore_case = self.base == Base::StringEqualsIgnoreCase;
                ps.iter().any(|p| p.matches(v, ctx, ignore_case))
            }
            Values::Numbers(ns) => {
                let Some(x) = Number::parse(v) else {
                    return false;
                };
                ns.iter().any(|&n| {
                    let ord = x.cmp(n);
                    match self.base {
                        Base::NumericEquals => ord == Some(Equal),
                        Base::NumericLessThan => ord == Some(Less),
                        Base::NumericLessThanEquals => matches!(ord, Some(Less | Equal)),
                        Base::NumericGreaterThan => ord == Some(Greater),
                        Base::NumericGreaterThanEquals => matches!(ord, Some(Greater | Equal)),
                        _ => false,
                    }
                })
            }
            Values::Dates(ds) => {
                let Some(x) = parse_date(v) else {
                    return false;
                };
                ds.iter().any(|&d| match self.base {
                    Base::DateEquals => x == d,
                    Base::DateLessThan => x < d,
                    Base::DateLessThanEquals => x <= d,
                    Base::DateGreaterThan => x > d,
                    Base::DateGreaterThanEquals => x >= d,
                    _ => false,
                })
            }
            Values::Bools(bs) => parse_bool(v).is_some_and(|x| bs.contains(&x)),
            Values::Binary(bs) => base64::engine::general_purpose::STANDARD
                .decode(v)
                .is_ok_and(|x| bs.contains(&x)),
            Values::Ips(nets) => v
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            Values::Arns(ps) => ps.iter().any(|p| p.matches(v, ctx)),
        }
    }
}

fn verdict(b: bool) -> Verdict {
    if b {
        Verdict::Holds
    } else {
        Verdict::Fails
    }
}

/// A context key's value, whether set explicitly or derived from the context's fixed fields.
enum Found<'a> {
    Value(&'a ContextValue),
    Implicit(&'a str),
}

impl Found<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Found::Value(v) => v.is_empty(),
            Found::Implicit(_) => false,
        }
    }

    fn any(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        match self {
            Found::Value(ContextValue::Single(s)) => f(s),
            Found::Value(ContextValue::Multi(vs)) => vs.iter().any(|v| f(v)),
            Found::Implicit(s) => f(s),
        }
    }

    fn all(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        !self.any(|v| !f(v))
    }
}

fn lookup<'a>(ctx: &'a RequestContext, key: &str) -> Option<Found<'a>> {
    match ctx.get_lower(key) {
        Some(v) => Some(Found::Value(v)),
        None => ctx.implicit(key).map(Found::Implicit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;

    #[test]
    fn dates_in_every_accepted_form() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_date("0"), Some(0));
        // A bare year is read as epoch seconds.
        assert_eq!(parse_date("2026"), Some(2026 * S));
        assert_eq!(parse_date("2026-01-01T00:00:00Z"), Some(1_767_225_600 * S));
        assert_eq!(parse_date("1767225600"), Some(1_767_225_600 * S));
        assert_eq!(parse_date("1767225600.25"), Some(1_767_225_600 * S + S / 4));
        assert_eq!(parse_date("2026-01-01T00:00Z"), Some(1_767_225_600 * S));
        assert_eq!(parse_date("2026-01-01t00:00:00z"), Some(1_767_225_600 * S));
        assert_eq!(parse_date("2026-01-01 00:00:00"), Some(1_767_225_600 * S));
        assert_eq!(
            parse_date("2026-01-01T01:30:00+01:30"),
            Some(1_767_225_600 * S)
        );
        assert_eq!(
            parse_date("2025-12-31T19:00:00-0500"),
            Some(1_767_225_600 * S)
        );
        assert_eq!(
            parse_date("2025-12-31T22:00:00-02"),
            Some(1_767_225_600 * S)
        );
        assert_eq!(
            parse_date("2026-01-01T00:00:00.123456789123Z"),
            Some(1_767_225_600 * S + 123_456_789)
        );
        assert_eq!(parse_date("2000-02-29"), Some(951_782_400 * S));
        assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-S));
        assert_eq!(parse_date("-1"), Some(-S));
    }

    #[test]
    fn bad_dates() {
        for bad in [
            "",
            "2026-1-01",
            "2026-13-01",
            "2026-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-01-01T24:00:00Z",
            "2026-01-01T10:60Z",
            "2026-01-01T10Z",
            "2026-01-01T10:00:00.Z",
            "2026-01-01X",
            "2026-01-01T00:00:00+25:00",
            "1.2.3",
            "12a",
            "9999999999999999999999",
            "२०२६-01-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(Number::parse("10"), Some(Number::Int(10)));
        assert_eq!(Number::parse(" -3 "), Some(Number::Int(-3)));
        assert_eq!(Number::parse("1e3"), Some(Number::Float(1000.0)));
        assert_eq!(Number::parse("inf"), None);
        assert_eq!(Number::parse("NaN"), None);
        assert_eq!(Number::parse("1e999"), None);
        assert_eq!(Number::parse(""), None);
        assert_eq!(Number::parse("0x10"), None);
    }

    #[test]
    fn operator_names() {
        assert_eq!(
            parse_operator("ForAnyValue:StringNotLikeIfExists").unwrap(),
            (
                Base::StringLike,
                true,
                true,
                Some(SetQualifier::ForAnyValue)
            )
        );
        assert_eq!(
            parse_operator("ArnEquals").unwrap(),
            (Base::ArnLike, false, false, None)
        );
        assert!(parse_operator("IfExists").is_err());
        assert!(parse_operator("StringEqualsIfExistsIfExists").is_err());
        assert!(parse_operator("ForAllValues:").is_err());
        assert!(parse_operator("ForAllValues:Null").is_err());
        assert!(parse_operator("Stringé").is_err());
    }
}
