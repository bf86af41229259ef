//! AWS Lambda's event filtering pattern language (the `FilterCriteria` of an event source
//! mapping): [`Pattern::parse`] validates one pattern, [`Pattern::matches`] tests a JSON event
//! against it, and [`Filters`] OR-s up to [`MAX_FILTERS`] patterns the way
//! `FilterCriteria.Filters[].Pattern` does.
//!
//! # The language
//!
//! A pattern is a JSON object shaped like the events it selects. Every key names a field of the
//! event; its value is either a nested object (a field of that field) or a non-empty array of
//! *matchers*, one of which must match the field's value. All keys of one object must match
//! (AND); `"$or": [ {..}, {..} ]` matches when any of its (two or more) alternatives does.
//!
//! | Matcher                                   | Matches a value that …                           |
//! |-------------------------------------------|--------------------------------------------------|
//! | `"text"`, `12.5`, `true`, `null`           | equals it (`""` matches the empty string)        |
//! | `{"prefix": "us-"}`                        | is a string starting with it                     |
//! | `{"prefix": {"equals-ignore-case": "US-"}}`| … ignoring case                                  |
//! | `{"suffix": ".png"}` (same ignore-case form)| is a string ending with it                      |
//! | `{"equals-ignore-case": "alice"}`          | is a string equal to it ignoring case            |
//! | `{"wildcard": "dir/*.png"}`                | is a string matching the glob (`*` = any run)    |
//! | `{"numeric": [">", 0, "<=", 5]}`           | is a JSON number in the range (`=` alone, or one lower and one upper bound) |
//! | `{"exists": true}` / `{"exists": false}`   | is present (a leaf value) / is absent            |
//! | `{"anything-but": ...}`                    | is present and not one of the values (a string, a number, or a list of either), or does not start / end with `{"prefix": ..}` / `{"suffix": ..}`, or is not equal ignoring case to `{"equals-ignore-case": ..}`, or does not match `{"wildcard": ..}` |
//! | `{"cidr": "10.0.0.0/24"}`                  | is a string holding an IP address in the block   |
//!
//! # Matching rules
//!
//! * Types are never converted: a number matches numbers only (`"5"` is not `5`), and strings
//!   match character by character without case folding or normalization.
//! * Exact number values (and `anything-but` numbers) compare by representation, as Lambda
//!   documents: `300` and `300.0` are different values. (Events and patterns are parsed into
//!   `serde_json` numbers, which keep integers and floats apart but read `300.0` and `3.0e2` as
//!   the same float.) `numeric` compares by value. It never matches a string such as
//!   DynamoDB's `{"N": "5"}`: match those with exact strings or `prefix`.
//! * A field whose value is an array matches when any element matches (arrays of arrays are
//!   flattened); a nested pattern under an array of objects matches when one element matches
//!   the whole nested pattern.
//! * Only leaf values (strings, numbers, booleans, null) count as present: `exists: true`
//!   never matches an object or an empty array, `exists: false` matches them and a missing key.
//!   `null` is a present value: it matches `[null]` and `exists: true`, not `[""]`.
//!
//! Invariant: parsing validates everything; [`Pattern::matches`] is a pure, total function of
//! (pattern, event) that never panics. Must not depend on anything but serde_json.

#![forbid(unsafe_code)]

mod wildcard;

use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

use wildcard::Wildcard;

/// Most patterns one `FilterCriteria` may hold (Lambda's default quota).
pub const MAX_FILTERS: usize = 5;
/// Longest accepted pattern text, in characters (`Filter.Pattern` in Lambda's API).
pub const MAX_PATTERN_LENGTH: usize = 4096;

/// Why a pattern or a set of filters was refused. The message says what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterError {
    /// The pattern is not valid JSON.
    InvalidJson(String),
    /// Valid JSON that is not a valid pattern.
    InvalidPattern(String),
    /// The pattern text is longer than [`MAX_PATTERN_LENGTH`].
    PatternTooLong(usize),
    /// More than [`MAX_FILTERS`] patterns.
    TooManyFilters(usize),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterError::InvalidJson(e) => {
                write!(f, "Invalid filter pattern definition: not valid JSON ({e})")
            }
            FilterError::InvalidPattern(e) => write!(f, "Invalid filter pattern definition: {e}"),
            FilterError::PatternTooLong(n) => write!(
                f,
                "Invalid filter pattern definition: {n} characters, more than the maximum of \
                 {MAX_PATTERN_LENGTH}"
            ),
            FilterError::TooManyFilters(n) => write!(
                f,
                "FilterCriteria holds {n} filters, more than the maximum of {MAX_FILTERS}"
            ),
        }
    }
}

impl std::error::Error for FilterError {}

fn invalid(path: &Path<'_>, message: impl fmt::Display) -> FilterError {
    FilterError::InvalidPattern(format!("at {path}: {message}"))
}

/// The position in a pattern an error refers to, e.g. `dynamodb.NewImage.status`.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    name: &'a str,
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parent {
            None => f.write_str(if self.name.is_empty() {
                "the top level"
            } else {
                self.name
            }),
            Some(parent) if parent.parent.is_none() => write!(f, "{:?}", self.name),
            Some(parent) => write!(f, "{parent}.{:?}", self.name),
        }
    }
}

/// One parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    source: String,
    root: Object,
}

/// One level of a pattern: fields (AND) and `$or` groups (each: any alternative).
#[derive(Debug, Clone, PartialEq)]
struct Object {
    fields: Vec<(String, Field)>,
    ors: Vec<Vec<Object>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    /// A leaf: one of the matchers must match.
    Leaf(Vec<Matcher>),
    Nested(Object),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    /// Compared by representation, as Lambda does: `300`, `300.0` are different values.
    Num(serde_json::Number),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    Exact(Literal),
    Prefix { text: String, ignore_case: bool },
    Suffix { text: String, ignore_case: bool },
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    Numeric(Range),
    Exists(bool),
    AnythingBut(AnythingBut),
    Cidr(Cidr),
}

#[derive(Debug, Clone, PartialEq)]
enum AnythingBut {
    Values(Vec<Literal>),
    Prefix(String),
    Suffix(String),
    IgnoreCase(Vec<String>),
    Wildcard(Vec<Wildcard>),
}

/// A numeric interval; `None` bounds are open-ended.
#[derive(Debug, Clone, PartialEq)]
struct Range {
    lower: Option<(f64, bool)>,
    upper: Option<(f64, bool)>,
}

/// An IP block: the network address and the prefix length.
#[derive(Debug, Clone, PartialEq)]
struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Pattern {
    /// Parses and validates one pattern (the text of `FilterCriteria.Filters[].Pattern`).
    pub fn parse(text: &str) -> Result<Pattern, FilterError> {
        let chars = text.chars().count();
        if chars > MAX_PATTERN_LENGTH {
            return Err(FilterError::PatternTooLong(chars));
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| FilterError::InvalidJson(e.to_string()))?;
        let top = Path {
            parent: None,
            name: "",
        };
        let Value::Object(map) = &value else {
            return Err(invalid(&top, "a filter pattern must be a JSON object"));
        };
        Ok(Pattern {
            source: text.to_owned(),
            root: parse_object(map, &top)?,
        })
    }

    /// The text this pattern was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the event matches. An event that is not an object matches only patterns made of
    /// `exists: false` tests.
    pub fn matches(&self, event: &Value) -> bool {
        match_object(&self.root, Some(event))
    }
}

fn parse_object(map: &Map<String, Value>, path: &Path<'_>) -> Result<Object, FilterError> {
    if map.is_empty() {
        return Err(invalid(
            path,
            "an empty object matches nothing; name at least one field",
        ));
    }
    let mut object = Object {
        fields: Vec::new(),
        ors: Vec::new(),
    };
    for (name, value) in map {
        let here = Path {
            parent: Some(path),
            name,
        };
        if name == "$or" {
            object.ors.push(parse_or(value, &here)?);
            continue;
        }
        let field = match value {
            Value::Object(inner) => Field::Nested(parse_object(inner, &here)?),
            Value::Array(items) => Field::Leaf(parse_matchers(items, &here)?),
            _ => {
                return Err(invalid(
                    &here,
                    "a field's value must be an array of matchers or a nested object",
                ))
            }
        };
        object.fields.push((name.clone(), field));
    }
    Ok(object)
}

fn parse_or(value: &Value, path: &Path<'_>) -> Result<Vec<Object>, FilterError> {
    let Value::Array(items) = value else {
        return Err(invalid(path, "\"$or\" must be an array of objects"));
    };
    if items.len() < 2 {
        return Err(invalid(path, "\"$or\" needs at least two alternatives"));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => parse_object(map, path),
            _ => Err(invalid(
                path,
                "every alternative of \"$or\" must be an object",
            )),
        })
        .collect()
}

fn parse_matchers(items: &[Value], path: &Path<'_>) -> Result<Vec<Matcher>, FilterError> {
    if items.is_empty() {
        return Err(invalid(path, "an empty array of matchers matches nothing"));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => parse_operator(map, path),
            Value::Array(_) => Err(invalid(path, "a matcher cannot be an array")),
            scalar => Ok(Matcher::Exact(literal(scalar).unwrap_or(Literal::Null))),
        })
        .collect()
}

/// A scalar as a literal; `None` for arrays and objects.
fn literal(value: &Value) -> Option<Literal> {
    Some(match value {
        Value::String(s) => Literal::Str(s.clone()),
        Value::Number(n) => Literal::Num(n.clone()),
        Value::Bool(b) => Literal::Bool(*b),
        Value::Null => Literal::Null,
        Value::Array(_) | Value::Object(_) => return None,
    })
}

fn parse_operator(map: &Map<String, Value>, path: &Path<'_>) -> Result<Matcher, FilterError> {
    let mut entries = map.iter();
    let (Some((op, arg)), None) = (entries.next(), entries.next()) else {
        return Err(invalid(
            path,
            "a matcher object must hold exactly one operator",
        ));
    };
    let expect_string = |what: &str| -> Result<String, FilterError> {
        match arg {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(path, format!("\"{what}\" expects a string"))),
        }
    };
    Ok(match op.as_str() {
        "prefix" | "suffix" => {
            let (text, ignore_case) = match arg {
                Value::String(s) => (s.clone(), false),
                Value::Object(inner) => (parse_ignore_case_object(inner, op, path)?, true),
                _ => {
                    return Err(invalid(
                        path,
                        format!("\"{op}\" expects a string or {{\"equals-ignore-case\": string}}"),
                    ))
                }
            };
            if op == "prefix" {
                Matcher::Prefix { text, ignore_case }
            } else {
                Matcher::Suffix { text, ignore_case }
            }
        }
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(expect_string(op)?),
        "wildcard" => {
            Matcher::Wildcard(Wildcard::parse(&expect_string(op)?).map_err(|e| invalid(path, e))?)
        }
        "numeric" => Matcher::Numeric(parse_range(arg, path)?),
        "exists" => match arg {
            Value::Bool(b) => Matcher::Exists(*b),
            _ => return Err(invalid(path, "\"exists\" expects true or false")),
        },
        "anything-but" => Matcher::AnythingBut(parse_anything_but(arg, path)?),
        "cidr" => Matcher::Cidr(parse_cidr(&expect_string(op)?).map_err(|e| invalid(path, e))?),
        other => return Err(invalid(path, format!("unrecognized match type {other:?}"))),
    })
}

/// `{"equals-ignore-case": "text"}` inside `prefix` or `suffix`.
fn parse_ignore_case_object(
    inner: &Map<String, Value>,
    op: &str,
    path: &Path<'_>,
) -> Result<String, FilterError> {
    match (inner.len(), inner.get("equals-ignore-case")) {
        (1, Some(Value::String(s))) => Ok(s.clone()),
        _ => Err(invalid(
            path,
            format!("\"{op}\" accepts only {{\"equals-ignore-case\": string}} as an object"),
        )),
    }
}

fn parse_range(arg: &Value, path: &Path<'_>) -> Result<Range, FilterError> {
    let Value::Array(items) = arg else {
        return Err(invalid(
            path,
            "\"numeric\" expects an array such as [\">\", 0, \"<=\", 5]",
        ));
    };
    if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
        return Err(invalid(
            path,
            "\"numeric\" expects one or two (operator, number) pairs",
        ));
    }
    let mut range = Range {
        lower: None,
        upper: None,
    };
    let mut equals = false;
    for pair in items.chunks(2) {
        let (Value::String(op), Value::Number(n)) = (&pair[0], &pair[1]) else {
            return Err(invalid(
                path,
                "\"numeric\" expects each operator (a string) followed by a number",
            ));
        };
        let Some(n) = n.as_f64().filter(|n| n.is_finite()) else {
            return Err(invalid(path, "\"numeric\" bound is not a finite number"));
        };
        let slot = match op.as_str() {
            "=" => {
                equals = true;
                &mut range.lower
            }
            ">" | ">=" => &mut range.lower,
            "<" | "<=" => &mut range.upper,
            other => {
                return Err(invalid(
                    path,
                    format!("unrecognized numeric operator {other:?} (use =, <, <=, >, >=)"),
                ))
            }
        };
        if slot.is_some() {
            return Err(invalid(
                path,
                "\"numeric\" allows at most one lower and one upper bound",
            ));
        }
        *slot = Some((n, op.ends_with('=')));
    }
    if equals {
        if items.len() != 2 {
            return Err(invalid(path, "\"numeric\" with \"=\" takes no other bound"));
        }
        range.upper = range.lower;
    }
    if let (Some((low, _)), Some((high, _))) = (range.lower, range.upper) {
        if !equals && low >= high {
            return Err(invalid(
                path,
                "\"numeric\" lower bound must be less than the upper bound",
            ));
        }
    }
    Ok(range)
}

fn parse_anything_but(arg: &Value, path: &Path<'_>) -> Result<AnythingBut, FilterError> {
    match arg {
        Value::String(_) | Value::Number(_) => Ok(AnythingBut::Values(vec![
            literal(arg).unwrap_or(Literal::Null)
        ])),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(invalid(path, "\"anything-but\" list must not be empty"));
            }
            let all_strings = items.iter().all(Value::is_string);
            let all_numbers = items.iter().all(Value::is_number);
            if !all_strings && !all_numbers {
                return Err(invalid(
                    path,
                    "\"anything-but\" list must hold only strings or only numbers",
                ));
            }
            Ok(AnythingBut::Values(
                items.iter().filter_map(literal).collect(),
            ))
        }
        Value::Object(inner) => {
            let mut entries = inner.iter();
            let (Some((op, value)), None) = (entries.next(), entries.next()) else {
                return Err(invalid(
                    path,
                    "\"anything-but\" object must hold exactly one operator",
                ));
            };
            let strings = |what: &str| -> Result<Vec<String>, FilterError> {
                match value {
                    Value::String(s) => Ok(vec![s.clone()]),
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .map(|item| match item {
                            Value::String(s) => Ok(s.clone()),
                            _ => Err(invalid(
                                path,
                                format!("\"anything-but\" {what:?} expects strings"),
                            )),
                        })
                        .collect(),
                    _ => Err(invalid(
                        path,
                        format!("\"anything-but\" {what:?} expects a string or a list of strings"),
                    )),
                }
            };
            let single = |what: &str| -> Result<String, FilterError> {
                match value {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(invalid(
                        path,
                        format!("\"anything-but\" {what:?} expects a string"),
                    )),
                }
            };
            match op.as_str() {
                "prefix" => Ok(AnythingBut::Prefix(single(op)?)),
                "suffix" => Ok(AnythingBut::Suffix(single(op)?)),
                "equals-ignore-case" => Ok(AnythingBut::IgnoreCase(
                    strings(op)?.iter().map(|s| s.to_lowercase()).collect(),
                )),
                "wildcard" => Ok(AnythingBut::Wildcard(
                    strings(op)?
                        .iter()
                        .map(|s| Wildcard::parse(s))
                        .collect::<Result<_, _>>()
                        .map_err(|e| invalid(path, e))?,
                )),
                other => Err(invalid(
                    path,
                    format!("unsupported operator {other:?} inside \"anything-but\""),
                )),
            }
        }
        _ => Err(invalid(
            path,
            "\"anything-but\" expects a string, a number, a list of either, or an operator object",
        )),
    }
}

fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let bad = || format!("{text:?} is not a CIDR block such as 10.0.0.0/24");
    let (address, bits) = match text.split_once('/') {
        Some((address, bits)) => (address, Some(bits)),
        None => (text, None),
    };
    let network: IpAddr = address.parse().map_err(|_| bad())?;
    let max = if network.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(bits) if !bits.is_empty() && bits.bytes().all(|b| b.is_ascii_digit()) => bits
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    Ok(Cidr { network, bits })
}

impl Cidr {
    fn contains(&self, text: &str) -> bool {
        let Ok(address) = text.parse::<IpAddr>() else {
            return false;
        };
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Matching

fn match_object(object: &Object, value: Option<&Value>) -> bool {
    let map = value.and_then(Value::as_object);
    object.fields.iter().all(|(name, field)| {
        let child = map.and_then(|m| m.get(name));
        match field {
            Field::Leaf(matchers) => match_leaf(matchers, child),
            Field::Nested(inner) => match child {
                Some(Value::Array(items)) if !items.is_empty() => {
                    items.iter().any(|item| match_object(inner, Some(item)))
                }
                Some(Value::Object(_)) => match_object(inner, child),
                _ => match_object(inner, None),
            },
        }
    }) && object
        .ors
        .iter()
        .all(|alternatives| alternatives.iter().any(|alt| match_object(alt, value)))
}

/// The leaf values of a field: the value itself, or every scalar inside an array (recursively).
fn leaves<'v>(value: Option<&'v Value>, out: &mut Vec<&'v Value>) {
    match value {
        None | Some(Value::Object(_)) => {}
        Some(Value::Array(items)) => {
            for item in items {
                leaves(Some(item), out);
            }
        }
        Some(scalar) => out.push(scalar),
    }
}

fn match_leaf(matchers: &[Matcher], value: Option<&Value>) -> bool {
    let mut values = Vec::new();
    leaves(value, &mut values);
    matchers.iter().any(|matcher| match matcher {
        Matcher::Exists(wanted) => values.is_empty() != *wanted,
        _ => values.iter().any(|v| matcher.matches_value(v)),
    })
}

fn equals(literal: &Literal, value: &Value) -> bool {
    match (literal, value) {
        (Literal::Str(a), Value::String(b)) => a == b,
        (Literal::Num(a), Value::Number(b)) => a == b,
        (Literal::Bool(a), Value::Bool(b)) => a == b,
        (Literal::Null, Value::Null) => true,
        _ => false,
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.to_lowercase().starts_with(&prefix.to_lowercase())
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.to_lowercase().ends_with(&suffix.to_lowercase())
}

impl Matcher {
    /// Whether one leaf value matches (every matcher but `exists`, which looks at the field).
    fn matches_value(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Matcher::Exact(literal) => equals(literal, value),
            Matcher::Prefix {
                text: p,
                ignore_case,
            } => text.is_some_and(|t| {
                if *ignore_case {
                    starts_with_ignore_case(t, p)
                } else {
                    t.starts_with(p.as_str())
                }
            }),
            Matcher::Suffix {
                text: s,
                ignore_case,
            } => text.is_some_and(|t| {
                if *ignore_case {
                    ends_with_ignore_case(t, s)
                } else {
                    t.ends_with(s.as_str())
                }
            }),
            Matcher::EqualsIgnoreCase(s) => {
                text.is_some_and(|t| t.to_lowercase() == s.to_lowercase())
            }
            Matcher::Wildcard(w) => text.is_some_and(|t| w.matches(t)),
            Matcher::Numeric(range) => value
                .as_f64()
                .filter(|_| value.is_number())
                .is_some_and(|n| range.contains(n)),
            Matcher::Exists(_) => false,
            Matcher::Cidr(cidr) => text.is_some_and(|t| cidr.contains(t)),
            Matcher::AnythingBut(but) => match but {
                AnythingBut::Values(values) => !values.iter().any(|l| equals(l, value)),
                AnythingBut::Prefix(p) => text.is_some_and(|t| !t.starts_with(p.as_str())),
                AnythingBut::Suffix(s) => text.is_some_and(|t| !t.ends_with(s.as_str())),
                AnythingBut::IgnoreCase(lowered) => {
                    text.is_some_and(|t| !lowered.contains(&t.to_lowercase()))
                }
                AnythingBut::Wildcard(ws) => text.is_some_and(|t| !ws.iter().any(|w| w.matches(t))),
            },
        }
    }
}

impl Range {
    fn contains(&self, n: f64) -> bool {
        let above = match self.lower {
            None => true,
            Some((low, inclusive)) => n > low || (inclusive && n == low),
        };
        let below = match self.upper {
            None => true,
            Some((high, inclusive)) => n < high || (inclusive && n == high),
        };
        above && below
    }
}

// ---------------------------------------------------------------------------------------------
// Filters

/// `FilterCriteria.Filters`: up to [`MAX_FILTERS`] patterns; an event passes when any matches.
/// No patterns at all means no filtering: every event passes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filters {
    patterns: Vec<Pattern>,
}

impl Filters {
    /// Parses every pattern text; the first invalid one is the error.
    pub fn parse<I, S>(texts: I) -> Result<Filters, FilterError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = texts
            .into_iter()
            .map(|text| Pattern::parse(text.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Filters::new(patterns)
    }

    /// Filters from already parsed patterns (at most [`MAX_FILTERS`]).
    pub fn new(patterns: Vec<Pattern>) -> Result<Filters, FilterError> {
        if patterns.len() > MAX_FILTERS {
            return Err(FilterError::TooManyFilters(patterns.len()));
        }
        Ok(Filters { patterns })
    }

    /// Parses Lambda's `FilterCriteria` object: `{"Filters": [{"Pattern": "<json text>"}, ...]}`.
    pub fn from_criteria(criteria: &Value) -> Result<Filters, FilterError> {
        let shape = || {
            FilterError::InvalidPattern(
                "FilterCriteria must look like {\"Filters\": [{\"Pattern\": \"...\"}]}".to_owned(),
            )
        };
        let Some(criteria) = criteria.as_object() else {
            return Err(shape());
        };
        let Some(filters) = criteria.get("Filters") else {
            return Ok(Filters::default());
        };
        let Value::Array(filters) = filters else {
            return Err(shape());
        };
        if filters.len() > MAX_FILTERS {
            return Err(FilterError::TooManyFilters(filters.len()));
        }
        let texts = filters
            .iter()
            .map(|filter| {
                filter
                    .get("Pattern")
                    .and_then(Value::as_str)
                    .ok_or_else(shape)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Filters::parse(texts)
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// True when there are no patterns (every event passes).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the event passes: no patterns, or any pattern matches.
    pub fn matches(&self, event: &Value) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(event))
    }
}

#[cfg(test)]
mod tests;
