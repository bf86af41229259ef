//! A reader of Amazon Ion text values, for the shapes DynamoDB writes and the ones a person may
//! write by hand: comments, any whitespace, quoted and unquoted symbols, short and long strings
//! with every escape, ints (decimal, hex, binary, `_` separators), decimals (`1.5`, `15d-1`,
//! `103.`), floats, blobs, clobs, timestamps, typed nulls, annotations, lists, s-expressions
//! and structs (trailing commas allowed).
//!
//! Owns: turning text into [`Value`]s. It does not know DynamoDB: the caller maps values to
//! attribute values and rejects the Ion types DynamoDB has no use for.
//!
//! Invariants: never panics on any input (proptest `ion_reader_never_panics`); container depth
//! is bounded by [`MAX_DEPTH`], so recursion is bounded; running out of input inside a value is
//! reported as [`Fail::Incomplete`] (the caller may append the next line and retry), every other
//! problem as [`Fail::Invalid`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// Deepest container nesting accepted (DynamoDB's own limit of 32 levels, plus the record's
/// wrappers, fits well within it).
pub(crate) const MAX_DEPTH: usize = 48;

/// The message of DynamoDB's nesting error, used when a value is nested deeper than this reader
/// follows.
pub(crate) const NESTING_MESSAGE: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null` or a typed null such as `null.string`.
    Null,
    Bool(bool),
    /// An integer in DynamoDB's number syntax (decimal digits, optional `-`).
    Int(String),
    /// A decimal in DynamoDB's number syntax (`d` exponents rewritten as `E`).
    Decimal(String),
    /// A float; `nan`, `+inf` and `-inf` are kept as written.
    Float(String),
    String(String),
    Symbol(String),
    Blob(Vec<u8>),
    Clob(Vec<u8>),
    Timestamp(String),
    List(Vec<Annotated>),
    Sexp(Vec<Annotated>),
    Struct(Vec<(String, Annotated)>),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Decimal(_) => "decimal",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Symbol(_) => "symbol",
            Value::Blob(_) => "blob",
            Value::Clob(_) => "clob",
            Value::Timestamp(_) => "timestamp",
            Value::List(_) => "list",
            Value::Sexp(_) => "sexp",
            Value::Struct(_) => "struct",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Annotated {
    pub annotations: Vec<String>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fail {
    /// The text ended inside a value.
    Incomplete,
    Invalid(String),
}

type Result<T> = std::result::Result<T, Fail>;

fn invalid<T>(message: impl Into<String>) -> Result<T> {
    Err(Fail::Invalid(message.into()))
}

/// How far [`parse_stream`] got through its text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rest {
    /// Every value was complete.
    Done,
    /// The value starting at this byte offset is cut off by the end of the text.
    Incomplete(usize),
    /// The value starting at this byte offset is invalid; nothing after it was read.
    Invalid(usize, String),
}

/// Parses the top-level values of `text`, each with the byte offset where it starts, up to the
/// first incomplete or invalid one. Ion version markers (`$ion_1_0`) and local symbol tables are
/// consumed and not returned.
pub(crate) fn parse_stream(text: &str) -> (Vec<(usize, Annotated)>, Rest) {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    loop {
        let start = p.i;
        if let Err(fail) = p.skip_ws() {
            return (out, rest_of(fail, start));
        }
        if p.i >= p.s.len() {
            return (out, Rest::Done);
        }
        let start = p.i;
        let v = match p.value() {
            Ok(v) => v,
            Err(fail) => return (out, rest_of(fail, start)),
        };
        if v.annotations.is_empty() {
            if let Value::Symbol(s) = &v.value {
                if s == "$ion_1_0" {
                    continue;
                }
                if is_version_marker(s) {
                    let message = format!("Unsupported Ion version marker {s}");
                    return (out, Rest::Invalid(start, message));
                }
            }
        }
        if v.annotations.first().map(String::as_str) == Some("$ion_symbol_table") {
            continue;
        }
        out.push((start, v));
    }
}

fn rest_of(fail: Fail, start: usize) -> Rest {
    match fail {
        Fail::Incomplete => Rest::Incomplete(start),
        Fail::Invalid(message) => Rest::Invalid(start, message),
    }
}

/// Every top-level value of `text`, or why not.
#[cfg(test)]
pub(crate) fn parse_top_level(text: &str) -> Result<Vec<Annotated>> {
    let (values, rest) = parse_stream(text);
    match rest {
        Rest::Done => Ok(values.into_iter().map(|(_, v)| v).collect()),
        Rest::Incomplete(_) => Err(Fail::Incomplete),
        Rest::Invalid(_, message) => Err(Fail::Invalid(message)),
    }
}

fn is_version_marker(s: &str) -> bool {
    s.strip_prefix("$ion_").is_some_and(|rest| {
        let mut parts = rest.split('_');
        let ok = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

fn is_operator_char(b: u8) -> bool {
    b"!#%&*+-./;<=>?@^`|~".contains(&b)
}

/// Characters that end a number, timestamp or keyword token.
fn is_stop(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t'
            | b'\n'
            | b'\r'
            | 0x0b
            | 0x0c
            | b','
            | b']'
            | b'}'
            | b')'
            | b'['
            | b'{'
            | b'('
            | b'"'
            | b'\''
    )
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    fn starts_with(&self, pat: &[u8]) -> bool {
        self.s
            .get(self.i..)
            .is_some_and(|rest| rest.starts_with(pat))
    }

    /// Skips whitespace and comments.
    fn skip_ws(&mut self) -> Result<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => self.i += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    while let Some(b) = self.peek() {
                        self.i += 1;
                        if b == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => {
                    self.i += 2;
                    loop {
                        if self.i >= self.s.len() {
                            return Err(Fail::Incomplete);
                        }
                        if self.starts_with(b"*/") {
                            self.i += 2;
                            break;
                        }
                        self.i += 1;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn expect_more(&self) -> Result<u8> {
        self.peek().ok_or(Fail::Incomplete)
    }

    fn value(&mut self) -> Result<Annotated> {
        let mut annotations = Vec::new();
        loop {
            self.skip_ws()?;
            let start = self.i;
            let b = self.expect_more()?;
            let symbol = if is_ident_start(b) {
                Some(self.identifier())
            } else if b == b'\'' && !self.starts_with(b"'''") {
                Some(self.quoted(b'\'')?)
            } else {
                None
            };
            let Some(symbol) = symbol else { break };
            self.skip_ws()?;
            if self.starts_with(b"::") {
                self.i += 2;
                annotations.push(symbol);
            } else {
                self.i = start;
                break;
            }
        }
        let value = self.bare_value()?;
        Ok(Annotated { annotations, value })
    }

    fn bare_value(&mut self) -> Result<Value> {
        let b = self.expect_more()?;
        match b {
            b'{' if self.peek_at(1) == Some(b'{') => self.lob(),
            b'{' => self.nested(|p| p.struct_body()),
            b'[' => self.nested(|p| p.list_body()),
            b'(' => self.nested(|p| p.sexp_body()),
            b'"' => self.quoted(b'"').map(Value::String),
            b'\'' if self.starts_with(b"'''") => self.long_strings().map(Value::String),
            b'\'' => self.quoted(b'\'').map(Value::Symbol),
            b'0'..=b'9' | b'-' | b'+' => self.numeric(),
            _ if is_ident_start(b) => self.keyword_or_symbol(),
            _ => invalid(format!(
                "Unexpected character '{}' in Ion text",
                char::from(b).escape_default()
            )),
        }
    }

    fn nested(&mut self, body: impl FnOnce(&mut Self) -> Result<Value>) -> Result<Value> {
        if self.depth >= MAX_DEPTH {
            return invalid(NESTING_MESSAGE);
        }
        self.depth += 1;
        self.i += 1;
        let v = body(self);
        self.depth -= 1;
        v
    }

    fn identifier(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(is_ident_char) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn keyword_or_symbol(&mut self) -> Result<Value> {
        let word = self.identifier();
        match word.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "nan" => Ok(Value::Float(word)),
            "null" => {
                if self.peek() == Some(b'.') {
                    self.i += 1;
                    let ty = self.identifier();
                    const TYPES: [&str; 13] = [
                        "null",
                        "bool",
                        "int",
                        "float",
                        "decimal",
                        "timestamp",
                        "symbol",
                        "string",
                        "clob",
                        "blob",
                        "list",
                        "sexp",
                        "struct",
                    ];
                    if !TYPES.contains(&ty.as_str()) {
                        return invalid(format!("Invalid Ion typed null null.{ty}"));
                    }
                }
                Ok(Value::Null)
            }
            _ => Ok(Value::Symbol(word)),
        }
    }

    fn struct_body(&mut self) -> Result<Value> {
        let mut fields = Vec::new();
        loop {
            self.skip_ws()?;
            if self.expect_more()? == b'}' {
                self.i += 1;
                return Ok(Value::Struct(fields));
            }
            let b = self.expect_more()?;
            let name = if b == b'"' {
                self.quoted(b'"')?
            } else if self.starts_with(b"'''") {
                self.long_strings()?
            } else if b == b'\'' {
                self.quoted(b'\'')?
            } else if is_ident_start(b) {
                self.identifier()
            } else {
                return invalid("Expected a field name in an Ion struct");
            };
            self.skip_ws()?;
            if self.expect_more()? != b':' || self.peek_at(1) == Some(b':') {
                return invalid(format!("Expected ':' after the Ion field name {name}"));
            }
            self.i += 1;
            let value = self.value()?;
            fields.push((name, value));
            self.skip_ws()?;
            match self.expect_more()? {
                b',' => self.i += 1,
                b'}' => {}
                _ => return invalid("Expected ',' or '}' in an Ion struct"),
            }
        }
    }

    fn list_body(&mut self) -> Result<Value> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            if self.expect_more()? == b']' {
                self.i += 1;
                return Ok(Value::List(items));
            }
            items.push(self.value()?);
            self.skip_ws()?;
            match self.expect_more()? {
                b',' => self.i += 1,
                b']' => {}
                _ => return invalid("Expected ',' or ']' in an Ion list"),
            }
        }
    }

    fn sexp_body(&mut self) -> Result<Value> {
        let mut items = Vec::new();
        loop {
            self.skip_ws()?;
            let b = self.expect_more()?;
            if b == b')' {
                self.i += 1;
                return Ok(Value::Sexp(items));
            }
            let numeric_sign = (b == b'-' || b == b'+')
                && (self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
                    || self.starts_with(b"+inf")
                    || self.starts_with(b"-inf"));
            if is_operator_char(b) && !numeric_sign {
                let start = self.i;
                while self.peek().is_some_and(is_operator_char) {
                    self.i += 1;
                }
                let op = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                items.push(Annotated {
                    annotations: Vec::new(),
                    value: Value::Symbol(op),
                });
            } else {
                items.push(self.value()?);
            }
        }
    }

    /// A short string or quoted symbol: `"…"` or `'…'`, no raw newlines.
    fn quoted(&mut self, quote: u8) -> Result<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = self.expect_more()?;
            if b == quote {
                self.i += 1;
                break;
            }
            if b == b'\n' || b == b'\r' {
                return invalid("Unterminated Ion string: a newline inside a short string");
            }
            self.string_char(&mut out, false)?;
        }
        String::from_utf8(out).map_err(|_| Fail::Invalid("Ion text is not valid UTF-8".into()))
    }

    /// One or more `'''…'''` segments, concatenated.
    fn long_strings(&mut self) -> Result<String> {
        let mut out = Vec::new();
        loop {
            self.i += 3;
            loop {
                if self.i >= self.s.len() {
                    return Err(Fail::Incomplete);
                }
                if self.starts_with(b"'''") {
                    self.i += 3;
                    break;
                }
                self.string_char(&mut out, true)?;
            }
            let after = self.i;
            match self.skip_ws() {
                Ok(()) if self.starts_with(b"'''") => continue,
                _ => {
                    self.i = after;
                    break;
                }
            }
        }
        String::from_utf8(out).map_err(|_| Fail::Invalid("Ion text is not valid UTF-8".into()))
    }

    /// One character of a string body, escapes decoded; the input is valid UTF-8 already.
    fn string_char(&mut self, out: &mut Vec<u8>, long: bool) -> Result<()> {
        let b = self.expect_more()?;
        if b != b'\\' {
            if b < 0x20
                && !matches!(b, b'\t' | 0x0b | 0x0c)
                && !(long && matches!(b, b'\n' | b'\r'))
            {
                return invalid("Invalid control character in an Ion string");
            }
            out.push(b);
            self.i += 1;
            return Ok(());
        }
        self.i += 1;
        let e = self.expect_more()?;
        self.i += 1;
        let simple = match e {
            b'a' => Some(0x07),
            b'b' => Some(0x08),
            b't' => Some(b'\t'),
            b'n' => Some(b'\n'),
            b'f' => Some(0x0c),
            b'r' => Some(b'\r'),
            b'v' => Some(0x0b),
            b'?' => Some(b'?'),
            b'0' => Some(0),
            b'\'' => Some(b'\''),
            b'"' => Some(b'"'),
            b'/' => Some(b'/'),
            b'\\' => Some(b'\\'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(());
        }
        match e {
            // An escaped newline continues the string on the next line.
            b'\n' => Ok(()),
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.i += 1;
                }
                Ok(())
            }
            b'x' => self.hex_escape(2, out),
            b'u' => self.hex_escape(4, out),
            b'U' => self.hex_escape(8, out),
            _ => invalid("Invalid escape sequence in an Ion string"),
        }
    }

    fn hex_digits(&mut self, n: usize) -> Result<u32> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let b = self.expect_more()?;
            let d = char::from(b)
                .to_digit(16)
                .ok_or_else(|| Fail::Invalid("Invalid hex escape in an Ion string".into()))?;
            v = v.wrapping_mul(16).wrapping_add(d);
            self.i += 1;
        }
        Ok(v)
    }

    fn hex_escape(&mut self, n: usize, out: &mut Vec<u8>) -> Result<()> {
        let mut code = self.hex_digits(n)?;
        if n == 4 && (0xD800..0xDC00).contains(&code) {
            // A high surrogate must be followed by an escaped low surrogate.
            if !self.starts_with(b"\\u") {
                return invalid("Unpaired surrogate in an Ion string");
            }
            self.i += 2;
            let low = self.hex_digits(4)?;
            if !(0xDC00..0xE000).contains(&low) {
                return invalid("Unpaired surrogate in an Ion string");
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        let c = char::from_u32(code)
            .ok_or_else(|| Fail::Invalid("Invalid code point in an Ion string".into()))?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    /// `{{ base64 }}` (blob) or `{{ "…" }}` / `{{ '''…''' }}` (clob).
    fn lob(&mut self) -> Result<Value> {
        self.i += 2;
        let skip_spaces = |p: &mut Self| {
            while p
                .peek()
                .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
            {
                p.i += 1;
            }
        };
        skip_spaces(self);
        let b = self.expect_more()?;
        if b == b'"' || b == b'\'' {
            let text = if self.starts_with(b"'''") {
                self.long_strings()?
            } else if b == b'"' {
                self.quoted(b'"')?
            } else {
                return invalid("Invalid Ion clob");
            };
            skip_spaces(self);
            if !self.starts_with(b"}}") {
                return if self.i + 1 >= self.s.len() {
                    Err(Fail::Incomplete)
                } else {
                    invalid("Expected '}}' after an Ion clob")
                };
            }
            self.i += 2;
            return Ok(Value::Clob(text.into_bytes()));
        }
        let mut b64 = Vec::new();
        loop {
            let b = self.expect_more()?;
            if b == b'}' {
                if self.peek_at(1).is_none() {
                    return Err(Fail::Incomplete);
                }
                if self.peek_at(1) != Some(b'}') {
                    return invalid("Expected '}}' after an Ion blob");
                }
                self.i += 2;
                break;
            }
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
                self.i += 1;
                continue;
            }
            if !(b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=') {
                return invalid("Invalid character in an Ion blob");
            }
            b64.push(b);
            self.i += 1;
        }
        B64.decode(&b64)
            .map(Value::Blob)
            .map_err(|_| Fail::Invalid("Invalid base64 in an Ion blob".into()))
    }

    /// Ints, decimals, floats, `+inf`/`-inf` and timestamps.
    fn numeric(&mut self) -> Result<Value> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if is_stop(b) || (b == b'/' && matches!(self.peek_at(1), Some(b'/' | b'*'))) {
                break;
            }
            self.i += 1;
        }
        let token = std::str::from_utf8(&self.s[start..self.i])
            .map_err(|_| Fail::Invalid("Ion text is not valid UTF-8".into()))?;
        classify_number(token)
    }
}

fn classify_number(token: &str) -> Result<Value> {
    let bad = || Fail::Invalid(format!("Invalid Ion number {token}"));
    if token == "+inf" || token == "-inf" {
        return Ok(Value::Float(token.to_string()));
    }
    let b = token.as_bytes();
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && matches!(b[4], b'-' | b'T') {
        return Ok(Value::Timestamp(token.to_string()));
    }
    let (negative, body) = match token.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, token),
    };
    let sign = if negative { "-" } else { "" };
    if let Some(radix_digits) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return radix_int(radix_digits, 16, sign).ok_or_else(bad);
    }
    if let Some(radix_digits) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        return radix_int(radix_digits, 2, sign).ok_or_else(bad);
    }
    let plain = strip_underscores(body).ok_or_else(bad)?;
    // [digits] [. digits] [(e|E|d|D) [+-] digits]
    let p = plain.as_bytes();
    let mut i = 0;
    while i < p.len() && p[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i;
    if int_len == 0 || (int_len > 1 && p[0] == b'0') {
        return Err(bad());
    }
    let mut has_point = false;
    if i < p.len() && p[i] == b'.' {
        has_point = true;
        i += 1;
        while i < p.len() && p[i].is_ascii_digit() {
            i += 1;
        }
    }
    let mut exp_kind = None;
    if i < p.len() && matches!(p[i], b'e' | b'E' | b'd' | b'D') {
        exp_kind = Some(p[i].to_ascii_lowercase());
        i += 1;
        if i < p.len() && matches!(p[i], b'+' | b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < p.len() && p[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return Err(bad());
        }
    }
    if i != p.len() {
        return Err(bad());
    }
    match exp_kind {
        Some(b'e') => Ok(Value::Float(format!("{sign}{plain}"))),
        Some(_) => Ok(Value::Decimal(format!(
            "{sign}{}",
            plain.replace(['d', 'D'], "E")
        ))),
        None if has_point => Ok(Value::Decimal(format!("{sign}{plain}"))),
        None => Ok(Value::Int(format!("{sign}{plain}"))),
    }
}

/// Removes `_` digit separators, which must stand between two digits.
fn strip_underscores(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    for (k, &c) in b.iter().enumerate() {
        if c == b'_' {
            let before = k > 0 && b[k - 1].is_ascii_hexdigit();
            let after = b.get(k + 1).is_some_and(u8::is_ascii_hexdigit);
            if !before || !after {
                return None;
            }
        } else {
            out.push(char::from(c));
        }
    }
    Some(out)
}

/// A hex or binary int as decimal text; up to 128 bits (DynamoDB's numbers are smaller).
fn radix_int(digits: &str, radix: u32, sign: &str) -> Option<Value> {
    let digits = strip_underscores(digits)?;
    if digits.is_empty() {
        return None;
    }
    let mut v: u128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        v = v
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(d))?;
    }
    let sign = if v == 0 { "" } else { sign };
    Some(Value::Int(format!("{sign}{v}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        let mut values = parse_top_level(text).unwrap();
        assert_eq!(values.len(), 1, "{text}");
        values.remove(0).value
    }

    #[test]
    fn scalars() {
        assert_eq!(one("null"), Value::Null);
        assert_eq!(one("null.string"), Value::Null);
        assert_eq!(one("true"), Value::Bool(true));
        assert_eq!(one("103."), Value::Decimal("103.".into()));
        assert_eq!(one("6d2"), Value::Decimal("6E2".into()));
        assert_eq!(one("15d-1"), Value::Decimal("15E-1".into()));
        assert_eq!(one("-1.5D+0"), Value::Decimal("-1.5E+0".into()));
        assert_eq!(one("1_000"), Value::Int("1000".into()));
        assert_eq!(one("-0x1F"), Value::Int("-31".into()));
        assert_eq!(one("0b101"), Value::Int("5".into()));
        assert_eq!(one("1.5e0"), Value::Float("1.5e0".into()));
        assert_eq!(
            one("2007-02-23T12:14Z"),
            Value::Timestamp("2007-02-23T12:14Z".into())
        );
        assert_eq!(one("'quoted sym'"), Value::Symbol("quoted sym".into()));
        assert_eq!(
            one("\"a\\u00e9\\x41\\U0001F600\\uD83D\\uDE00\""),
            Value::String("aéA😀😀".into())
        );
        assert_eq!(
            one("'''ab''' /* c */ '''cd'''"),
            Value::String("abcd".into())
        );
        assert_eq!(one("{{ aGVs bG8= }}"), Value::Blob(b"hello".to_vec()));
        assert_eq!(one("{{\"x\"}}"), Value::Clob(b"x".to_vec()));
        for bad in [
            "01",
            "1__0",
            "1.2.3",
            "0x",
            "1e",
            "null.foo",
            "{{ a }}",
            "\"\\q\"",
            "\"\\uD800\"",
        ] {
            assert!(
                matches!(parse_top_level(bad), Err(Fail::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn containers_comments_and_markers() {
        let text = "$ion_1_0 // a comment\n{ Item: /* c */ { 'a b': [1, 2,], \"c\": a::b::(+ 1 x), d: {}, }, }";
        let values = parse_top_level(text).unwrap();
        assert_eq!(values.len(), 1);
        let Value::Struct(fields) = &values[0].value else {
            panic!()
        };
        assert_eq!(fields[0].0, "Item");
        let Value::Struct(item) = &fields[0].1.value else {
            panic!()
        };
        assert_eq!(item[0].0, "a b");
        assert_eq!(item[1].0, "c");
        assert_eq!(
            item[1].1.annotations,
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(matches!(&item[1].1.value, Value::Sexp(v) if v.len() == 3));
        assert!(matches!(
            parse_top_level("$ion_2_0 {}"),
            Err(Fail::Invalid(_))
        ));
        assert!(
            parse_top_level("$ion_symbol_table::{symbols:[\"a\"]} {}")
                .unwrap()
                .len()
                == 1
        );
    }

    #[test]
    fn incomplete_versus_invalid() {
        for partial in [
            "{",
            "{a:",
            "{a:1",
            "[1,",
            "\"abc",
            "'''abc",
            "/* x",
            "{{ aGVs",
            "$ion_1_0 {Item:{a:[1",
        ] {
            assert_eq!(parse_top_level(partial), Err(Fail::Incomplete), "{partial}");
        }
        for bad in ["}", "{a 1}", "[1 2]", "{a::1}", "\"a\nb\""] {
            assert!(
                matches!(parse_top_level(bad), Err(Fail::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(10_000);
        assert_eq!(
            parse_top_level(&deep),
            Err(Fail::Invalid(NESTING_MESSAGE.into()))
        );
    }
}
