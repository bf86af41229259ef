//! Decoding DynamoDB JSON into attribute values, with DynamoDB's two-step checking.
//!
//! Step 1 (`check_*`, SerializationException) walks the whole document with an explicit stack,
//! so it is safe at any depth. Step 2 (`Validator`) recurses, but stops with the nesting error on
//! reaching level 33, so its recursion depth is bounded by [`MAX_NESTING_LEVELS`] + 1.
//!
//! Invariant: step 2 only runs on a document step 1 accepted; it still re-derives every type
//! error instead of assuming, so no input can make it panic.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine as _;
use ferrodyn_model::{AttributeValue, Error, Item, Number};
use serde_json::{Map, Value};

use super::messages::*;
use super::number::parse_number;

/// Which generation of DynamoDB's request validation words the messages.
///
/// * `Current`: PutItem, UpdateItem, DeleteItem, GetItem, BatchGetItem, Query (and, in some
///   regions, the transaction operations).
/// * `Older`: BatchWriteItem, TransactWriteItems, TransactGetItems, Scan. It differs in the
///   wording of duplicate set members, of an empty number, in how exponents past 32 bits are
///   read, and it wraps errors in expression attribute values with
///   "ExpressionAttributeValues contains invalid value: … for key :v".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layer {
    #[default]
    Current,
    Older,
}

/// Where an attribute value object sits in the request, which decides the wording of a
/// non-object in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// A structure member, e.g. `Expected.a.Value`, `AttributeUpdates.a.Value`.
    Field,
    /// A map value or list element: items, keys, expression attribute values, `AttributeValueList`
    /// members, and values inside `M` and `L`.
    Member,
}

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

/// Decodes one attribute value in a structure-field position under the current layer.
pub fn decode_value(v: &Value) -> Result<AttributeValue, Error> {
    decode_value_with(v, Position::Field, Layer::Current)
}

/// Decodes one attribute value: deserialization checks first, then validation.
pub fn decode_value_with(
    v: &Value,
    position: Position,
    layer: Layer,
) -> Result<AttributeValue, Error> {
    check_value(v, position)?;
    Validator { layer }.value(v, 1)
}

/// Decodes an item or key (a map of attribute name to value) under the current layer.
pub fn decode_item(v: &Value) -> Result<Item, Error> {
    decode_item_with(v, Layer::Current)
}

/// Decodes an item or key. JSON `null` (an absent member) decodes as an empty item; the caller
/// decides whether the member was required. Problems are reported in document order.
pub fn decode_item_with(v: &Value, layer: Layer) -> Result<Item, Error> {
    check_item(v)?;
    let mut item = Item::new();
    if let Value::Object(map) = v {
        let validator = Validator { layer };
        for (name, value) in map {
            item.insert(name.clone(), validator.value(value, 1)?);
        }
    }
    Ok(item)
}

/// Decodes `ExpressionAttributeValues` under the current layer.
pub fn decode_value_map(v: &Value) -> Result<HashMap<String, AttributeValue>, Error> {
    decode_value_map_with(v, Layer::Current)
}

/// Decodes `ExpressionAttributeValues`. In the older layer a validation error is wrapped as
/// "ExpressionAttributeValues contains invalid value: {message} for key {key}".
pub fn decode_value_map_with(
    v: &Value,
    layer: Layer,
) -> Result<HashMap<String, AttributeValue>, Error> {
    check_item(v)?;
    let mut out = HashMap::new();
    if let Value::Object(map) = v {
        out.reserve(map.len());
        let validator = Validator { layer };
        for (name, value) in map {
            let decoded = validator.value(value, 1).map_err(|e| match (layer, e) {
                (Layer::Older, Error::Validation(msg)) => Error::Validation(format!(
                    "ExpressionAttributeValues contains invalid value: {msg} for key {name}"
                )),
                (_, e) => e,
            })?;
            out.insert(name.clone(), decoded);
        }
    }
    Ok(out)
}

/// Decodes a list of attribute values (`AttributeValueList`, PartiQL `Parameters`). JSON `null`
/// decodes as an empty list.
pub fn decode_value_list_with(v: &Value, layer: Layer) -> Result<Vec<AttributeValue>, Error> {
    let elements: &[Value] = match v {
        Value::Null => &[],
        Value::Array(a) => a,
        Value::Object(_) => return Err(serialization(START_OF_STRUCTURE)),
        _ => return Err(serialization(UNEXPECTED_FIELD_TYPE)),
    };
    for e in elements {
        check_value(e, Position::Member)?;
    }
    let validator = Validator { layer };
    elements.iter().map(|e| validator.value(e, 1)).collect()
}

/// Deserialization checks of one attribute value (and everything inside it): JSON types of the
/// members and base64. Returns the first problem in document order as a SerializationException.
/// Safe at any nesting depth.
pub fn check_value(v: &Value, position: Position) -> Result<(), Error> {
    run_checks(vec![Task::Value(v, position)])
}

/// Deserialization checks of a map of attribute values (item, key, expression attribute values).
pub fn check_item(v: &Value) -> Result<(), Error> {
    match v {
        Value::Null => Ok(()),
        Value::Object(map) => run_checks(member_tasks(map)),
        Value::Array(_) => Err(serialization(COLLECTION_MAP)),
        _ => Err(serialization(UNEXPECTED_FIELD_TYPE)),
    }
}

// ---------------------------------------------------------------------------------------------
// Step 1: deserialization checks (iterative)
// ---------------------------------------------------------------------------------------------

enum Task<'a> {
    /// An attribute value object.
    Value(&'a Value, Position),
    /// One member (`"S": ...`) of an attribute value object.
    Member(&'a str, &'a Value),
}

/// Tasks for the values of a map of attribute values, in reverse so the stack pops them in
/// document order.
fn member_tasks(map: &Map<String, Value>) -> Vec<Task<'_>> {
    map.values()
        .rev()
        .map(|v| Task::Value(v, Position::Member))
        .collect()
}

fn run_checks(mut stack: Vec<Task<'_>>) -> Result<(), Error> {
    while let Some(task) = stack.pop() {
        match task {
            Task::Value(v, position) => match v {
                // An absent value is a validation problem (step 2), not a type problem.
                Value::Null => {}
                Value::Object(members) => {
                    stack.extend(members.iter().rev().map(|(k, v)| Task::Member(k, v)));
                }
                Value::Array(_) => return Err(serialization(COLLECTION_ATTRIBUTE_VALUE)),
                _ => {
                    return Err(serialization(match position {
                        Position::Field => UNEXPECTED_FIELD_TYPE,
                        Position::Member => UNEXPECTED_VALUE_TYPE,
                    }))
                }
            },
            Task::Member(_, Value::Null) => {}
            Task::Member(key, v) => match key {
                "S" | "N" => {
                    as_string(v)?;
                }
                "B" => {
                    as_blob(v)?;
                }
                "BOOL" | "NULL" => {
                    as_bool(v)?;
                }
                "SS" | "NS" => {
                    for e in as_list(v)? {
                        as_set_string(e)?;
                    }
                }
                "BS" => {
                    for e in as_list(v)? {
                        as_set_blob(e)?;
                    }
                }
                "L" => {
                    let elements = as_list(v)?;
                    stack.extend(
                        elements
                            .iter()
                            .rev()
                            .map(|e| Task::Value(e, Position::Member)),
                    );
                }
                "M" => stack.extend(member_tasks(as_map(v)?)),
                // DynamoDB's reader ignores members it does not know.
                _ => {}
            },
        }
    }
    Ok(())
}

fn number_token(n: &serde_json::Number) -> &'static str {
    if n.is_f64() {
        "DECIMAL_VALUE"
    } else {
        "NUMBER_VALUE"
    }
}

fn as_string(v: &Value) -> Result<&str, Error> {
    match v {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Err(serialization(format!(
            "{} cannot be converted to String",
            if *b { "TRUE_VALUE" } else { "FALSE_VALUE" }
        ))),
        Value::Number(n) => Err(serialization(format!(
            "{} cannot be converted to String",
            number_token(n)
        ))),
        Value::Array(_) => Err(serialization(COLLECTION_STRING)),
        Value::Object(_) => Err(serialization(START_OF_STRUCTURE)),
        Value::Null => Err(serialization(UNEXPECTED_VALUE_TYPE)),
    }
}

/// A set member: `null` is not a string.
fn as_set_string(v: &Value) -> Result<&str, Error> {
    as_string(v)
}

fn as_blob(v: &Value) -> Result<Vec<u8>, Error> {
    match v {
        Value::String(s) => decode_base64(s),
        Value::Bool(_) | Value::Number(_) => Err(serialization(ONLY_BASE64)),
        Value::Array(_) => Err(serialization(COLLECTION_BYTES)),
        Value::Object(_) => Err(serialization(START_OF_STRUCTURE)),
        Value::Null => Err(serialization(UNEXPECTED_VALUE_TYPE)),
    }
}

fn as_set_blob(v: &Value) -> Result<Vec<u8>, Error> {
    as_blob(v)
}

/// Standard alphabet, padding required, no whitespace, canonical final bits.
fn decode_base64(s: &str) -> Result<Vec<u8>, Error> {
    // DynamoDB counts UTF-16 units (its strings are Java strings).
    let units = if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    };
    if units & 3 != 0 {
        return Err(base64_length(units));
    }
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| serialization(BAD_BASE64_LAST))
}

/// DynamoDB's reader also accepts the strings true/false/yes/no/1/0 (any case) as booleans.
fn as_bool(v: &Value) -> Result<bool, Error> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => {
            if ["true", "yes", "1"]
                .iter()
                .any(|t| s.eq_ignore_ascii_case(t))
            {
                Ok(true)
            } else if ["false", "no", "0"]
                .iter()
                .any(|t| s.eq_ignore_ascii_case(t))
            {
                Ok(false)
            } else {
                Err(serialization(UNEXPECTED_TOKEN))
            }
        }
        Value::Number(n) => Err(serialization(format!(
            "{} cannot be converted to Boolean",
            number_token(n)
        ))),
        Value::Array(_) => Err(serialization(COLLECTION_BOOLEAN)),
        Value::Object(_) => Err(serialization(START_OF_STRUCTURE)),
        Value::Null => Err(serialization(UNEXPECTED_VALUE_TYPE)),
    }
}

fn as_list(v: &Value) -> Result<&[Value], Error> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(_) => Err(serialization(START_OF_STRUCTURE)),
        _ => Err(serialization(UNEXPECTED_FIELD_TYPE)),
    }
}

fn as_map(v: &Value) -> Result<&Map<String, Value>, Error> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Array(_) => Err(serialization(COLLECTION_MAP)),
        _ => Err(serialization(UNEXPECTED_FIELD_TYPE)),
    }
}

// ---------------------------------------------------------------------------------------------
// Step 2: validation and construction (recursive, bounded)
// ---------------------------------------------------------------------------------------------

struct Validator {
    layer: Layer,
}

impl Validator {
    /// `level` is 1 for an attribute (or a standalone value) and grows by one inside `M`/`L`.
    ///
    /// Members are examined in document order; only after all of them is "more than one
    /// datatype" reported, so a bad number beats it (as in DynamoDB).
    fn value(&self, v: &Value, level: usize) -> Result<AttributeValue, Error> {
        if level > MAX_NESTING_LEVELS {
            return Err(bare(NESTING));
        }
        let members = match v {
            Value::Object(m) => m,
            Value::Null => return Err(bare(EMPTY_VALUE)),
            // Unreachable after step 1, but answered the same way.
            _ => return check_value(v, Position::Member).and(Err(bare(EMPTY_VALUE))),
        };
        let mut first: Option<AttributeValue> = None;
        let mut types = 0usize;
        for (key, member) in members {
            if member.is_null() {
                continue;
            }
            let decoded = match key.as_str() {
                "S" => AttributeValue::S(as_string(member)?.to_owned()),
                "N" => AttributeValue::N(parse_number(as_string(member)?, self.layer)?),
                "B" => AttributeValue::B(as_blob(member)?),
                "BOOL" => AttributeValue::Bool(as_bool(member)?),
                "NULL" => {
                    if !as_bool(member)? {
                        return Err(invalid(NULL_NOT_TRUE));
                    }
                    AttributeValue::Null
                }
                "SS" => AttributeValue::SS(self.string_set(as_list(member)?)?),
                "NS" => AttributeValue::NS(self.number_set(as_list(member)?)?),
                "BS" => AttributeValue::BS(self.binary_set(as_list(member)?)?),
                "M" => {
                    let mut map = BTreeMap::new();
                    for (name, inner) in as_map(member)? {
                        map.insert(name.clone(), self.value(inner, level + 1)?);
                    }
                    AttributeValue::M(map)
                }
                "L" => {
                    let elements = as_list(member)?;
                    let mut list = Vec::with_capacity(elements.len());
                    for inner in elements {
                        list.push(self.value(inner, level + 1)?);
                    }
                    AttributeValue::L(list)
                }
                _ => continue,
            };
            types += 1;
            if first.is_none() {
                first = Some(decoded);
            }
        }
        match (first, types) {
            (Some(value), 1) => Ok(value),
            (None, _) => Err(bare(EMPTY_VALUE)),
            (Some(_), _) => Err(bare(MANY_TYPES)),
        }
    }

    fn string_set(&self, elements: &[Value]) -> Result<Vec<String>, Error> {
        if elements.is_empty() {
            return Err(invalid(EMPTY_SS));
        }
        let strings = elements
            .iter()
            .map(as_set_string)
            .collect::<Result<Vec<&str>, Error>>()?;
        let mut seen = BTreeSet::new();
        for (i, s) in strings.iter().enumerate() {
            if !seen.insert(*s) {
                let listed = match self.layer {
                    // AWS (PutItem, checked by the Parity Suite) lists string members unquoted.
                    Layer::Current => {
                        duplicate_listing(&seen, s, &strings[i + 1..], ", ", |s| s.to_string())
                    }
                    Layer::Older => strings.join(", "),
                };
                return Err(invalid(&format!(
                    "Input collection [{listed}] contains duplicates."
                )));
            }
        }
        Ok(strings.into_iter().map(str::to_owned).collect())
    }

    fn number_set(&self, elements: &[Value]) -> Result<Vec<Number>, Error> {
        if elements.is_empty() {
            return Err(invalid(EMPTY_NS));
        }
        let mut numbers = Vec::with_capacity(elements.len());
        for e in elements {
            numbers.push(parse_number(as_set_string(e)?, self.layer)?);
        }
        // Members compare by value: "1" and "1.0" are duplicates.
        let mut seen = BTreeSet::new();
        if !numbers.iter().all(|n| seen.insert(n)) {
            return Err(match self.layer {
                Layer::Current => invalid("Input collection contains duplicates."),
                Layer::Older => bare("Input collection contains duplicates"),
            });
        }
        Ok(numbers)
    }

    fn binary_set(&self, elements: &[Value]) -> Result<Vec<Vec<u8>>, Error> {
        if elements.is_empty() {
            return Err(invalid(EMPTY_BS));
        }
        let blobs = elements
            .iter()
            .map(as_set_blob)
            .collect::<Result<Vec<Vec<u8>>, Error>>()?;
        let mut seen: BTreeSet<&[u8]> = BTreeSet::new();
        for (i, b) in blobs.iter().enumerate() {
            if !seen.insert(b.as_slice()) {
                let listed = match self.layer {
                    Layer::Current => {
                        let rest: Vec<&[u8]> = blobs[i + 1..].iter().map(Vec::as_slice).collect();
                        duplicate_listing(&seen, b.as_slice(), &rest, ",", |b| {
                            format!(
                                "\"{}\"",
                                base64::engine::general_purpose::STANDARD.encode(b)
                            )
                        })
                    }
                    // As sent; every member is a string here (step 1 checked).
                    Layer::Older => elements
                        .iter()
                        .map(|e| e.as_str().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                return Err(invalid(&format!(
                    "Input collection [{listed}]of type BS contains duplicates."
                )));
            }
        }
        Ok(blobs)
    }
}

/// The current layer's listing of a set with a duplicate: the members before the repeat in
/// byte order, then the repeat, then the remaining members as sent.
fn duplicate_listing<T: Ord + Copy>(
    seen: &BTreeSet<T>,
    repeat: T,
    rest: &[T],
    separator: &str,
    show: impl Fn(T) -> String,
) -> String {
    seen.iter()
        .copied()
        .chain(std::iter::once(repeat))
        .chain(rest.iter().copied())
        .map(show)
        .collect::<Vec<_>>()
        .join(separator)
}
