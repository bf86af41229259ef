//! Validation of request bodies against the API's input shapes, before any semantic check.
//!
//! Owns: the answer DynamoDB gives when a request body does not fit the operation's input shape:
//! a `SerializationException` when a JSON value has the wrong type for its member (the service's
//! deserializer stops at the first one, in document order), and otherwise a
//! `ValidationException` listing the violated model constraints ("1 validation error detected:
//! Value 'x' at 'tableName' failed to satisfy constraint: ...", at most 10, in the service's order).
//! The shapes come from the botocore models through `tools/gen-shapes.py` (`shapes/generated.rs`).
//!
//! Must not: interpret attribute values (the codec does), or know about tables and indexes.
//!
//! Invariants:
//! - `null` anywhere is the same as an absent member; unknown members are ignored.
//! - The type pass is iterative (explicit stack), so any nesting depth is safe; the constraint
//!   pass only recurses through shapes marked `checked`, which the generator proves acyclic, so its
//!   depth is bounded by the model. Attribute values are opaque to the constraint pass.
//! - The happy path allocates only the type pass's stack.

#[rustfmt::skip]
mod generated;

use ferrodyn_model::Error;
use serde_json::{Map, Value};
use std::fmt::Write as _;

use generated::{DYNAMODB_OPS, SHAPES, STREAMS_OPS, TABLE_NAME_SHAPE};

/// Which API: `DynamoDB_20120810` or `DynamoDBStreams_20120810`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    DynamoDb,
    Streams,
}

/// Returns true if the operation exists in that API.
pub fn operation_exists(api: Api, op: &str) -> bool {
    input_shape(api, op).is_some()
}

/// Every operation of an API, by name (sorted).
pub fn operations(api: Api) -> impl Iterator<Item = &'static str> {
    let ops: &'static [(&'static str, u16)] = match api {
        Api::DynamoDb => &DYNAMODB_OPS,
        Api::Streams => &STREAMS_OPS,
    };
    ops.iter().map(|(name, _)| *name)
}

/// Validates `body` against the input shape of `op`.
///
/// `Err(Error::Serialization)` for a JSON type mismatch, `Err(Error::Validation)` for constraint
/// violations and for the few shape-level checks the service makes before them (see
/// `precheck`). An operation that does not exist is not this function's concern: `Ok(())`.
pub fn validate(api: Api, op: &str, body: &Value) -> Result<(), Error> {
    let Some(root) = input_shape(api, op) else {
        return Ok(());
    };
    let empty = Map::new();
    let obj = match body {
        Value::Object(o) => o,
        Value::Null => &empty,
        Value::Array(_) => {
            return Err(Error::Serialization(format!(
                "Unrecognized collection type class {}",
                shape(root).java_type
            )))
        }
        _ => {
            return Err(Error::Serialization(
                "Unexpected value type in payload".to_owned(),
            ))
        }
    };
    type_check(root, obj).map_err(Error::Serialization)?;
    precheck(api, op, obj)?;

    // The table name (which may be an ARN) is resolved before anything else: when it is
    // invalid, its violations are the only ones reported.
    let mut ctx = Ctx::default();
    let table_member = table_name_member(root);
    if let Some(m) = table_member {
        let root_path = Path::ROOT;
        check_member(&mut ctx, obj.get(m.name), m, &root_path);
        ctx.finish()?;
    }
    check_struct(
        &mut ctx,
        obj,
        root,
        &Path::ROOT,
        table_member.map(|m| m.name),
    );
    ctx.finish()
}

/// The service's reading of a `Boolean` member: JSON booleans, and the strings it also accepts
/// (`true`/`false`, `yes`/`no`, `1`/`0`, any case). Handlers must read booleans through this,
/// since [`validate`] lets those strings through.
pub fn coerce_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => {
            if ["true", "yes", "1"]
                .iter()
                .any(|t| s.eq_ignore_ascii_case(t))
            {
                Some(true)
            } else if ["false", "no", "0"]
                .iter()
                .any(|t| s.eq_ignore_ascii_case(t))
            {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Shape tables (filled by generated.rs)
// ---------------------------------------------------------------------------------------------

struct Shape {
    /// The model's shape name (used in Java-style renderings of structures).
    name: &'static str,
    /// The Java type the service deserializes into, for SerializationException messages.
    java_type: &'static str,
    kind: Kind,
    /// Length (string, list, map) or value (integer, long) bounds.
    min: Option<i64>,
    max: Option<i64>,
    pattern: Option<Pattern>,
    /// In the order the service lists them.
    enum_values: &'static [&'static str],
    /// A table name or table ARN: checked as an ARN, then, unless it is one, as a table name.
    table_arn: bool,
    /// Whether the constraint pass can report anything for a value of this shape.
    checked: bool,
}

enum Kind {
    Structure {
        members: &'static [Member],
        /// Indexes into `members`, in the order the service reports violations.
        report_order: &'static [u8],
    },
    List {
        member: u16,
    },
    Map {
        key: u16,
        value: u16,
    },
    String,
    Integer,
    Long,
    Double,
    Boolean,
    Blob,
    Timestamp,
}

struct Member {
    /// Wire name, e.g. `TableName`.
    name: &'static str,
    /// Name used in violation paths, e.g. `tableName`.
    lower: &'static str,
    shape: u16,
    required: bool,
    /// Violations of this member's own constraints are reported without the value and with a
    /// wire-name path ("Value at 'Limit' failed to satisfy constraint: ...").
    new_style: bool,
}

/// The model's regular expressions, each implemented by hand (full-match semantics).
/// Some only constrain output shapes today; the generator may use any of them.
#[derive(Clone, Copy)]
#[allow(dead_code)]
enum Pattern {
    PrintPlus,
    XmlText,
    TableName,
    NoDollar,
    ContributorInsightsRule,
    CsvDelimiter,
    CsvHeader,
    HexBlocks16,
    S3Bucket,
    TwelveDigits,
    Uuid,
}

impl Pattern {
    /// The pattern as the model (and the service's message) spells it.
    fn source(self) -> &'static str {
        match self {
            Pattern::PrintPlus => r"\p{Print}+",
            Pattern::XmlText => {
                "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*"
            }
            Pattern::TableName => "[a-zA-Z0-9_.-]+",
            Pattern::NoDollar => r"^[^\$]+$",
            Pattern::ContributorInsightsRule => r"[A-Za-z0-9][A-Za-z0-9\-\_\.]{0,126}[A-Za-z0-9]",
            Pattern::CsvDelimiter => r"[,;:|\t ]",
            Pattern::CsvHeader => r"[\x20-\x21\x23-\x2B\x2D-\x7E]*",
            Pattern::HexBlocks16 => "([0-9a-f]{16})+",
            Pattern::S3Bucket => r"^[a-z0-9A-Z]+[\.\-\w]*[a-z0-9A-Z]+$",
            Pattern::TwelveDigits => "[0-9]{12}",
            Pattern::Uuid => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        }
    }

    fn matches(self, s: &str) -> bool {
        let b = s.as_bytes();
        let hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
        let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
        match self {
            Pattern::PrintPlus => !b.is_empty() && b.iter().all(|c| (0x20..=0x7e).contains(c)),
            Pattern::XmlText => s.chars().all(|c| {
                matches!(c, '\r' | '\n' | '\t' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
                    || c as u32 >= 0x10000
            }),
            Pattern::TableName => {
                !b.is_empty()
                    && b.iter()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
            }
            Pattern::NoDollar => !s.is_empty() && !s.contains('$'),
            Pattern::ContributorInsightsRule => {
                (2..=128).contains(&b.len())
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            }
            Pattern::CsvDelimiter => matches!(b, [b',' | b';' | b':' | b'|' | b'\t' | b' ']),
            Pattern::CsvHeader => b
                .iter()
                .all(|c| matches!(c, 0x20..=0x21 | 0x23..=0x2b | 0x2d..=0x7e)),
            Pattern::HexBlocks16 => !b.is_empty() && b.len() & 15 == 0 && b.iter().all(hex),
            Pattern::S3Bucket => {
                b.len() >= 2
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|c| word(c) || matches!(c, b'.' | b'-'))
            }
            Pattern::TwelveDigits => b.len() == 12 && b.iter().all(u8::is_ascii_digit),
            Pattern::Uuid => {
                b.len() == 36
                    && b.iter().enumerate().all(|(i, c)| {
                        if matches!(i, 8 | 13 | 18 | 23) {
                            *c == b'-'
                        } else {
                            hex(c)
                        }
                    })
            }
        }
    }
}

fn shape(id: u16) -> &'static Shape {
    &SHAPES[usize::from(id)]
}

fn input_shape(api: Api, op: &str) -> Option<u16> {
    let ops: &[(&str, u16)] = match api {
        Api::DynamoDb => &DYNAMODB_OPS,
        Api::Streams => &STREAMS_OPS,
    };
    ops.binary_search_by(|(name, _)| (*name).cmp(op))
        .ok()
        .map(|i| ops[i].1)
}

fn table_name_member(root: u16) -> Option<&'static Member> {
    match &shape(root).kind {
        Kind::Structure { members, .. } => members
            .iter()
            .find(|m| m.name == "TableName" && shape(m.shape).table_arn),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Shape-level checks the service makes before constraint validation
// ---------------------------------------------------------------------------------------------

/// Operations on a whole table answer a missing table name with their own message.
const TABLE_OPERATIONS: [&str; 5] = [
    "CreateTable",
    "DeleteTable",
    "DescribeTable",
    "DescribeTimeToLive",
    "UpdateTable",
];

fn precheck(api: Api, op: &str, obj: &Map<String, Value>) -> Result<(), Error> {
    if api != Api::DynamoDb {
        return Ok(());
    }
    if TABLE_OPERATIONS.contains(&op) && obj.get("TableName").is_none_or(Value::is_null) {
        return Err(Error::validation(
            "The parameter 'TableName' is required but was not present in the request",
        ));
    }
    if matches!(op, "BatchGetItem" | "BatchWriteItem")
        && obj
            .get("RequestItems")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
    {
        return Err(Error::validation(format!(
            "The requestItems parameter is required for {op}"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Type pass: SerializationException, first mismatch in document order
// ---------------------------------------------------------------------------------------------

/// Where a value sits; the deserializer's complaint about a wrong type depends on it.
#[derive(Clone, Copy, PartialEq)]
enum Pos {
    Field,
    Element,
    MapValue,
}

const CAST_MESSAGE: &str = "class sun.reflect.generics.reflectiveObjects.ParameterizedTypeImpl \
     cannot be cast to class java.lang.Class (sun.reflect.generics.reflectiveObjects.\
     ParameterizedTypeImpl and java.lang.Class are in module java.base of loader 'bootstrap')";
const START_OF_STRUCTURE: &str = "Start of structure or map found where not expected";

fn type_check(root: u16, obj: &Map<String, Value>) -> Result<(), String> {
    let mut stack: Vec<(&Value, u16, Pos)> = Vec::new();
    push_members(&mut stack, root, obj);
    while let Some((v, id, pos)) = stack.pop() {
        check_type(v, id, pos, &mut stack)?;
    }
    Ok(())
}

/// Pushes the known, non-null members of `obj` so that they pop in document order.
fn push_members<'v>(stack: &mut Vec<(&'v Value, u16, Pos)>, id: u16, obj: &'v Map<String, Value>) {
    let Kind::Structure { members, .. } = &shape(id).kind else {
        return;
    };
    for (k, v) in obj.iter().rev() {
        if v.is_null() {
            continue;
        }
        if let Some(m) = members.iter().find(|m| m.name == k) {
            stack.push((v, m.shape, Pos::Field));
        }
    }
}

fn scalar_token(v: &Value) -> &'static str {
    match v {
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Number(n) if n.is_f64() => "DECIMAL_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        _ => "STRING_VALUE",
    }
}

fn check_type<'v>(
    v: &'v Value,
    id: u16,
    pos: Pos,
    stack: &mut Vec<(&'v Value, u16, Pos)>,
) -> Result<(), String> {
    let s = shape(id);
    let collection = || format!("Unrecognized collection type {}", class_name(s.java_type));
    let wrong_container = || {
        if pos == Pos::Field {
            "Unexpected field type".to_owned()
        } else {
            CAST_MESSAGE.to_owned()
        }
    };
    match (&s.kind, v) {
        (_, Value::Null) => Ok(()),
        (Kind::Structure { .. }, Value::Object(o)) => {
            push_members(stack, id, o);
            Ok(())
        }
        (Kind::Structure { .. }, Value::Array(_)) => Err(collection()),
        (Kind::Structure { .. }, _) => Err(if pos == Pos::Field {
            "Unexpected field type".to_owned()
        } else {
            "Unexpected value type in payload".to_owned()
        }),
        (Kind::List { member }, Value::Array(a)) => {
            stack.extend(a.iter().rev().map(|e| (e, *member, Pos::Element)));
            Ok(())
        }
        (Kind::List { .. }, Value::Object(_)) => Err(START_OF_STRUCTURE.to_owned()),
        (Kind::List { .. }, _) => Err(wrong_container()),
        (Kind::Map { value, .. }, Value::Object(o)) => {
            stack.extend(o.values().rev().map(|e| (e, *value, Pos::MapValue)));
            Ok(())
        }
        (Kind::Map { .. }, Value::Array(_)) => Err(collection()),
        (Kind::Map { .. }, _) => Err(wrong_container()),
        (_, Value::Object(_)) => Err(START_OF_STRUCTURE.to_owned()),
        (_, Value::Array(_)) => Err(collection()),
        (Kind::String, Value::String(_)) => Ok(()),
        (Kind::String, _) => Err(format!("{} cannot be converted to String", scalar_token(v))),
        (Kind::Boolean, Value::Bool(_)) => Ok(()),
        (Kind::Boolean, Value::String(_)) if coerce_bool(v).is_some() => Ok(()),
        (Kind::Boolean, Value::String(_)) => Err("Unexpected token received from parser".into()),
        (Kind::Boolean, _) => Err(format!(
            "{} cannot be converted to Boolean",
            scalar_token(v)
        )),
        (Kind::Integer | Kind::Long | Kind::Double | Kind::Timestamp, Value::Number(_)) => Ok(()),
        (Kind::Integer | Kind::Long | Kind::Double | Kind::Timestamp, _) => {
            let target = match s.kind {
                Kind::Integer => "Integer",
                Kind::Long => "Long",
                Kind::Double => "Double",
                _ => "Date",
            };
            Err(format!(
                "{} cannot be converted to {target}",
                scalar_token(v)
            ))
        }
        (Kind::Blob, Value::String(b64)) => check_base64(b64),
        (Kind::Blob, _) => Err("only base-64-encoded strings are convertible to bytes".into()),
    }
}

/// `java.util.Map<...>` stays as is; a plain class gets Java's `class ` prefix.
fn class_name(java_type: &str) -> std::borrow::Cow<'_, str> {
    if java_type.contains('<') {
        java_type.into()
    } else {
        format!("class {java_type}").into()
    }
}

/// Canonical, padded standard base64, checked without decoding.
fn check_base64(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    if b.len() & 3 != 0 {
        return Err(format!(
            "Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.encode_utf16().count()
        ));
    }
    const LAST: &str = "Invalid last non-pad Base64 character dectected";
    let sextet = |c: u8| -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let pads = b.iter().rev().take_while(|c| **c == b'=').count();
    if pads > 2 {
        return Err(LAST.to_owned());
    }
    let data = &b[..b.len() - pads];
    let mut last = 0u8;
    for &c in data {
        last = sextet(c).ok_or_else(|| LAST.to_owned())?;
    }
    // The bits the padding leaves unused in the last data character must be zero.
    let unused_mask = match pads {
        1 => 0b11,
        2 => 0b1111,
        _ => 0,
    };
    if last & unused_mask != 0 {
        return Err(LAST.to_owned());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Constraint pass: ValidationException, up to 10 violations
// ---------------------------------------------------------------------------------------------

const MAX_REPORTED: usize = 10;

#[derive(Default)]
struct Ctx {
    errors: Vec<String>,
}

impl Ctx {
    fn full(&self) -> bool {
        self.errors.len() >= MAX_REPORTED
    }

    /// Records one violation. `value` is `None` for a missing member.
    fn push(
        &mut self,
        value: Option<(&Value, u16)>,
        path: &Path<'_>,
        constraint: &str,
        new_style: bool,
    ) {
        if self.full() {
            return;
        }
        let mut msg = String::from("Value ");
        if new_style {
            msg.push_str("at '");
        } else {
            match value {
                None => msg.push_str("null at '"),
                Some((v, id)) => {
                    msg.push('\'');
                    render(&mut msg, v, id, 0);
                    msg.push_str("' at '");
                }
            }
        }
        path.render(&mut msg, new_style);
        msg.push_str("' failed to satisfy constraint: ");
        msg.push_str(constraint);
        self.errors.push(msg);
    }

    fn finish(&mut self) -> Result<(), Error> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let n = self.errors.len();
        let plural = if n == 1 { "" } else { "s" };
        Err(Error::Validation(format!(
            "{n} validation error{plural} detected: {}",
            self.errors.join("; ")
        )))
    }
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Member(&'static Member),
    /// Zero-based list index; rendered one-based, followed by `member`.
    Index(usize),
    /// Map key, followed by `member`.
    Key(&'a str),
}

/// A violation path as a chain on the stack; only rendered when a violation is reported.
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn child(&'a self, seg: Seg<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            seg,
        }
    }

    fn render(&self, out: &mut String, wire_names: bool) {
        let mut segs: Vec<Seg<'_>> = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut first = true;
        for seg in segs.iter().rev() {
            if matches!(seg, Seg::Root) {
                continue;
            }
            if !first {
                out.push('.');
            }
            first = false;
            match seg {
                Seg::Root => {}
                Seg::Member(m) => out.push_str(if wire_names { m.name } else { m.lower }),
                Seg::Index(i) => {
                    let _ = write!(out, "{}.member", i + 1);
                }
                Seg::Key(k) => {
                    out.push_str(k);
                    out.push_str(".member");
                }
            }
        }
    }
}

fn check_struct(
    ctx: &mut Ctx,
    obj: &Map<String, Value>,
    id: u16,
    path: &Path<'_>,
    skip: Option<&str>,
) {
    let Kind::Structure {
        members,
        report_order,
    } = &shape(id).kind
    else {
        return;
    };
    // The members the request gives, by index in `members`: one pass over the request (which
    // names few of a shape's members) instead of one map lookup per member of the shape.
    let mut given: Vec<Option<&Value>> = vec![None; members.len()];
    for (k, v) in obj {
        if let Some(i) = members.iter().position(|m| m.name == k) {
            given[i] = Some(v);
        }
    }
    for &i in report_order.iter() {
        if ctx.full() {
            return;
        }
        let i = usize::from(i);
        let Some(m) = members.get(i) else {
            continue;
        };
        if skip == Some(m.name) {
            continue;
        }
        check_member(ctx, given.get(i).copied().flatten(), m, path);
    }
}

/// Checks member `m`, whose value in the request is `value` (`None`: absent).
fn check_member(ctx: &mut Ctx, value: Option<&Value>, m: &'static Member, path: &Path<'_>) {
    let child = path.child(Seg::Member(m));
    match value.filter(|v| !v.is_null()) {
        None if m.required => ctx.push(None, &child, "Member must not be null", m.new_style),
        None => {}
        Some(v) if shape(m.shape).checked => check_value(ctx, v, m.shape, &child, m.new_style),
        Some(_) => {}
    }
}

/// One violated constraint.
#[derive(Clone, Copy)]
enum Violation {
    MinLength(i64),
    MaxLength(i64),
    MinValue(i64),
    MaxValue(i64),
    Pattern(Pattern),
    Enum(&'static [&'static str]),
}

impl Violation {
    fn write(self, out: &mut String) {
        let _ = match self {
            Violation::MinLength(n) => {
                write!(out, "Member must have length greater than or equal to {n}")
            }
            Violation::MaxLength(n) => {
                write!(out, "Member must have length less than or equal to {n}")
            }
            Violation::MinValue(n) => {
                write!(out, "Member must have value greater than or equal to {n}")
            }
            Violation::MaxValue(n) => {
                write!(out, "Member must have value less than or equal to {n}")
            }
            Violation::Pattern(p) => write!(
                out,
                "Member must satisfy regular expression pattern: {}",
                p.source()
            ),
            Violation::Enum(values) => {
                write!(
                    out,
                    "Member must satisfy enum value set: [{}]",
                    values.join(", ")
                )
            }
        };
    }

    fn text(self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

/// Java's `String.length()`: UTF-16 code units.
fn java_len(s: &str) -> i64 {
    let n = if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Calls `f` for each violated constraint of a string, in the service's order (pattern, then
/// length bounds, then enum). Returns the shape whose constraints applied (see `table_arn`).
fn string_violations(s: &str, id: u16, f: &mut dyn FnMut(Violation)) -> u16 {
    let sh = shape(id);
    let own = |sh: &Shape, f: &mut dyn FnMut(Violation)| -> bool {
        let mut any = false;
        if let Some(p) = sh.pattern {
            if !p.matches(s) {
                f(Violation::Pattern(p));
                any = true;
            }
        }
        let len = java_len(s);
        if let Some(min) = sh.min.filter(|m| len < *m) {
            f(Violation::MinLength(min));
            any = true;
        }
        if let Some(max) = sh.max.filter(|m| len > *m) {
            f(Violation::MaxLength(max));
            any = true;
        }
        if !sh.enum_values.is_empty() && !sh.enum_values.contains(&s) {
            f(Violation::Enum(sh.enum_values));
            any = true;
        }
        any
    };
    if own(sh, f) || !sh.table_arn || s.starts_with("arn:") {
        return id;
    }
    own(shape(TABLE_NAME_SHAPE), f);
    TABLE_NAME_SHAPE
}

/// Every constraint of a shape, as the service lists them in "Map keys/value must satisfy
/// constraint: [...]": upper bound, lower bound, pattern, enum.
fn constraint_list(id: u16) -> String {
    let sh = shape(id);
    let numeric = matches!(sh.kind, Kind::Integer | Kind::Long);
    let mut parts: Vec<String> = Vec::new();
    if let Some(max) = sh.max {
        parts.push(if numeric {
            Violation::MaxValue(max).text()
        } else {
            Violation::MaxLength(max).text()
        });
    }
    if let Some(min) = sh.min {
        parts.push(if numeric {
            Violation::MinValue(min).text()
        } else {
            Violation::MinLength(min).text()
        });
    }
    if let Some(p) = sh.pattern {
        parts.push(Violation::Pattern(p).text());
    }
    if !sh.enum_values.is_empty() {
        parts.push(Violation::Enum(sh.enum_values).text());
    }
    format!("[{}]", parts.join(", "))
}

/// Whether a value violates any of its shape's own constraints; `Some(shape)` names the shape
/// whose constraints were applied.
fn own_violation(v: &Value, id: u16) -> Option<u16> {
    let mut hit = false;
    let applied = match v {
        Value::String(s) => string_violations(s, id, &mut |_| hit = true),
        _ => {
            each_own_violation(v, id, &mut |_| hit = true);
            id
        }
    };
    hit.then_some(applied)
}

/// Own constraints of non-string values: numeric bounds, collection sizes.
fn each_own_violation(v: &Value, id: u16, f: &mut dyn FnMut(Violation)) {
    let sh = shape(id);
    match (&sh.kind, v) {
        (Kind::Integer | Kind::Long | Kind::Double, Value::Number(n)) => {
            let x = n.as_f64().unwrap_or(0.0);
            let x = if matches!(sh.kind, Kind::Double) {
                x
            } else {
                x.trunc()
            };
            // Bounds in the model are far below 2^53, so the float comparison is exact.
            if let Some(min) = sh.min.filter(|m| x < *m as f64) {
                f(Violation::MinValue(min));
            }
            if let Some(max) = sh.max.filter(|m| x > *m as f64) {
                f(Violation::MaxValue(max));
            }
        }
        (Kind::List { .. }, Value::Array(a)) => sizes(sh, len_i64(a.len()), f),
        (Kind::Map { .. }, Value::Object(o)) => sizes(sh, len_i64(o.len()), f),
        _ => {}
    }
}

fn sizes(sh: &Shape, len: i64, f: &mut dyn FnMut(Violation)) {
    if let Some(min) = sh.min.filter(|m| len < *m) {
        f(Violation::MinLength(min));
    }
    if let Some(max) = sh.max.filter(|m| len > *m) {
        f(Violation::MaxLength(max));
    }
}

fn check_value(ctx: &mut Ctx, v: &Value, id: u16, path: &Path<'_>, new_style: bool) {
    check_own(ctx, v, id, path, new_style);
    check_contents(ctx, v, id, path);
}

fn check_own(ctx: &mut Ctx, v: &Value, id: u16, path: &Path<'_>, new_style: bool) {
    let mut found: [Option<Violation>; 4] = [None; 4];
    let mut n = 0;
    let mut collect = |x: Violation| {
        if let Some(slot) = found.get_mut(n) {
            *slot = Some(x);
            n += 1;
        }
    };
    match v {
        Value::String(s) => {
            string_violations(s, id, &mut collect);
        }
        _ => each_own_violation(v, id, &mut collect),
    }
    for x in found.iter().flatten() {
        ctx.push(Some((v, id)), path, &x.text(), new_style);
    }
}

/// Constraints inside a list or map (elements, keys, values) and structure members.
fn check_contents(ctx: &mut Ctx, v: &Value, id: u16, path: &Path<'_>) {
    if ctx.full() {
        return;
    }
    match (&shape(id).kind, v) {
        (Kind::Structure { .. }, Value::Object(o)) => check_struct(ctx, o, id, path, None),
        (Kind::List { member }, Value::Array(a)) => {
            if !shape(*member).checked {
                return;
            }
            for (i, e) in a.iter().enumerate() {
                if ctx.full() {
                    return;
                }
                let child = path.child(Seg::Index(i));
                if e.is_null() {
                    ctx.push(None, &child, "Member must not be null", false);
                } else {
                    check_value(ctx, e, *member, &child, false);
                }
            }
        }
        (Kind::Map { key, value }, Value::Object(o)) => {
            let (key, value) = (*key, *value);
            if shape(key).checked {
                let bad = o.keys().find_map(|k| {
                    let mut hit = false;
                    let applied = string_violations(k, key, &mut |_| hit = true);
                    hit.then_some(applied)
                });
                if let Some(applied) = bad {
                    let msg = format!(
                        "Map keys must satisfy constraint: {}",
                        constraint_list(applied)
                    );
                    ctx.push(Some((v, id)), path, &msg, false);
                }
            }
            let vs = shape(value);
            if !vs.checked {
                return;
            }
            let is_struct = matches!(vs.kind, Kind::Structure { .. });
            if !is_struct {
                // A value's own constraints are reported once, against the whole map.
                let bad = o
                    .values()
                    .filter(|e| !e.is_null())
                    .find_map(|e| own_violation(e, value));
                if let Some(applied) = bad {
                    let msg = format!(
                        "Map value must satisfy constraint: {}",
                        constraint_list(applied)
                    );
                    ctx.push(Some((v, id)), path, &msg, false);
                }
            }
            for (k, e) in o {
                if ctx.full() {
                    return;
                }
                let child = path.child(Seg::Key(k));
                if e.is_null() {
                    ctx.push(None, &child, "Member must not be null", false);
                } else if is_struct {
                    check_value(ctx, e, value, &child, false);
                } else {
                    check_contents(ctx, e, value, &child);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering of offending values, as the service's Java `toString` does
// ---------------------------------------------------------------------------------------------

/// Deeper values are elided; the renderer recurses, so this bounds its stack use.
const MAX_RENDER_DEPTH: usize = 32;

fn render(out: &mut String, v: &Value, id: u16, depth: usize) {
    if depth > MAX_RENDER_DEPTH {
        out.push_str("...");
        return;
    }
    let sh = shape(id);
    match (&sh.kind, v) {
        (_, Value::Null) => out.push_str("null"),
        (Kind::Structure { members, .. }, Value::Object(o)) => {
            out.push_str(sh.name);
            out.push('(');
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(m.lower);
                out.push('=');
                match o.get(m.name) {
                    Some(x) => render(out, x, m.shape, depth + 1),
                    None => out.push_str("null"),
                }
            }
            out.push(')');
        }
        (Kind::List { member }, Value::Array(a)) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(out, e, *member, depth + 1);
            }
            out.push(']');
        }
        (Kind::Map { value, .. }, Value::Object(o)) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                render(out, e, *value, depth + 1);
            }
            out.push('}');
        }
        (Kind::Blob, Value::String(s)) => {
            let pads = s.bytes().rev().take_while(|c| *c == b'=').count();
            let n = (s.len() / 4) * 3 - pads.min(2);
            let _ = write!(out, "java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]");
        }
        (Kind::Integer | Kind::Long, Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(u)) => {
                let _ = write!(out, "{u}");
            }
            _ => {
                let _ = write!(out, "{}", n.as_f64().unwrap_or(0.0).trunc());
            }
        },
        (_, Value::String(s)) => out.push_str(s),
        (_, Value::Number(n)) => {
            let _ = write!(out, "{n}");
        }
        (_, Value::Bool(b)) => {
            let _ = write!(out, "{b}");
        }
        // Type-checked values never mismatch their shape here; render plainly regardless.
        (_, Value::Array(_) | Value::Object(_)) => {
            let _ = write!(out, "{v}");
        }
    }
}

#[cfg(test)]
mod tests;
