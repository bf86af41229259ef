//! Amazon Ion text lines: the data files of ION exports and imports.
//!
//! Owns: DynamoDB's mapping between attribute values and Ion (S ⇄ string, N ⇄ decimal, B ⇄
//! blob, BOOL ⇄ bool, NULL ⇄ null, M ⇄ struct, L ⇄ list, SS/NS/BS ⇄ lists annotated
//! `$dynamodb_SS` / `$dynamodb_NS` / `$dynamodb_BS`), the full-export line
//! `$ion_1_0 {Item:{...}}` and the incremental line
//! `$ion_1_0 {Record:{Keys:{...},Metadata:{WriteTimestampMicros:…},OldImage:{...},NewImage:{...}}}`.
//!
//! Reading maps Ion to DynamoDB JSON values and decodes them with ferrodyn-protocol's codec, so
//! an Ion item is checked by exactly the rules (and messages) of a JSON one. On input, ints and
//! floats are accepted as numbers (their exact decimal text), symbols as strings; Ion types
//! DynamoDB has no counterpart for (timestamp, clob, sexp, nan, infinities) are errors.
//!
//! Numbers are written as Ion decimals with every digit: `103.` for an integer, `6d2` for
//! trailing zeros (as DynamoDB writes them), `1.5` or `12d-140` for fractions.

pub(crate) mod text;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ferrodyn_model::{AttributeValue, Item, Number};
use ferrodyn_protocol::codec::decode_item;
use serde_json::{Map, Value as Json};

use crate::format::{ChangeRecord, ExportViewType, Record};
use text::{Annotated, Value};

/// Appends `$ion_1_0 {Item:{...}}` and a newline.
pub fn write_item_line(item: &Item, out: &mut Vec<u8>) {
    out.extend_from_slice(b"$ion_1_0 {Item:");
    write_struct(item, out);
    out.extend_from_slice(b"}\n");
}

/// Appends one incremental-export line and a newline (see the module docs for its shape).
pub fn write_change_line(change: &ChangeRecord, view: ExportViewType, out: &mut Vec<u8>) {
    out.extend_from_slice(b"$ion_1_0 {Record:{Keys:");
    write_struct(&change.keys, out);
    out.extend_from_slice(b",Metadata:{WriteTimestampMicros:");
    out.extend_from_slice(change.write_timestamp_micros.to_string().as_bytes());
    out.extend_from_slice(b".}");
    if view == ExportViewType::NewAndOldImages {
        if let Some(old) = &change.old_image {
            out.extend_from_slice(b",OldImage:");
            write_struct(old, out);
        }
    }
    if let Some(new) = &change.new_image {
        out.extend_from_slice(b",NewImage:");
        write_struct(new, out);
    }
    out.extend_from_slice(b"}}\n");
}

/// Appends one attribute value as Ion text.
pub fn write_value(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => write_string(s, out),
        AttributeValue::N(n) => write_decimal(n, out),
        AttributeValue::B(b) => write_blob(b, out),
        AttributeValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AttributeValue::Null => out.extend_from_slice(b"null"),
        AttributeValue::M(m) => write_struct(m, out),
        AttributeValue::L(l) => {
            out.push(b'[');
            for (k, v) in l.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_value(v, out);
            }
            out.push(b']');
        }
        AttributeValue::SS(ss) => {
            write_set(b"$dynamodb_SS::[", ss, out, |s, out| write_string(s, out))
        }
        AttributeValue::NS(ns) => write_set(b"$dynamodb_NS::[", ns, out, write_decimal),
        AttributeValue::BS(bs) => {
            write_set(b"$dynamodb_BS::[", bs, out, |b, out| write_blob(b, out))
        }
    }
}

fn write_set<T>(open: &[u8], members: &[T], out: &mut Vec<u8>, write: impl Fn(&T, &mut Vec<u8>)) {
    out.extend_from_slice(open);
    for (k, m) in members.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write(m, out);
    }
    out.push(b']');
}

fn write_struct(m: &std::collections::BTreeMap<String, AttributeValue>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (k, (name, v)) in m.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        write_field_name(name, out);
        out.push(b':');
        write_value(v, out);
    }
    out.push(b'}');
}

/// An identifier stays bare unless Ion would read it as something else (a keyword, a symbol id
/// such as `$10`, a system symbol); anything else is a quoted symbol.
fn write_field_name(name: &str, out: &mut Vec<u8>) {
    let b = name.as_bytes();
    let identifier = !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b'$')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$');
    let reserved = matches!(name, "null" | "true" | "false" | "nan")
        || name.starts_with('$')
            && (name[1..].bytes().all(|c| c.is_ascii_digit()) || name.starts_with("$ion"));
    if identifier && !reserved {
        out.extend_from_slice(b);
    } else {
        write_quoted(name, b'\'', out);
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    write_quoted(s, b'"', out);
}

fn write_quoted(s: &str, quote: u8, out: &mut Vec<u8>) {
    out.push(quote);
    for &c in s.as_bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ if c == quote => {
                out.push(b'\\');
                out.push(c);
            }
            0x00..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\x");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
            _ => out.push(c),
        }
    }
    out.push(quote);
}

fn write_blob(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{{");
    out.extend_from_slice(B64.encode(b).as_bytes());
    out.extend_from_slice(b"}}");
}

/// Writes `n` as an Ion decimal that keeps every significant digit.
fn write_decimal(n: &Number, out: &mut Vec<u8>) {
    // Derive coefficient digits and exponent from the canonical plain-decimal text.
    let mut text = Vec::with_capacity(48);
    n.write_canonical(&mut text);
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, &text[..]),
    };
    let (digits, exponent): (Vec<u8>, i64) = match body.iter().position(|&c| c == b'.') {
        Some(point) => {
            let frac = &body[point + 1..];
            let all: Vec<u8> = body[..point].iter().chain(frac).copied().collect();
            let first = all
                .iter()
                .position(|&c| c != b'0')
                .unwrap_or(all.len().saturating_sub(1));
            (all[first..].to_vec(), -(frac.len() as i64))
        }
        None => {
            let zeros = body.iter().rev().take_while(|&&c| c == b'0').count();
            if zeros == body.len() {
                (b"0".to_vec(), 0)
            } else {
                (body[..body.len() - zeros].to_vec(), zeros as i64)
            }
        }
    };
    if negative {
        out.push(b'-');
    }
    let len = digits.len() as i64;
    if exponent == 0 {
        out.extend_from_slice(&digits);
        out.push(b'.');
    } else if exponent > 0 {
        out.extend_from_slice(&digits);
        out.push(b'd');
        out.extend_from_slice(exponent.to_string().as_bytes());
    } else if len + exponent > -6 {
        // Plain fraction, as in `1.5` or `0.0001`.
        let point = len + exponent;
        if point > 0 {
            out.extend_from_slice(&digits[..point as usize]);
            out.push(b'.');
            out.extend_from_slice(&digits[point as usize..]);
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-point) as usize));
            out.extend_from_slice(&digits);
        }
    } else {
        out.extend_from_slice(&digits);
        out.push(b'd');
        out.extend_from_slice(exponent.to_string().as_bytes());
    }
}

/// Parses Ion text holding whole records (one line of an export, say) into records. Text that
/// ends inside a value, or an invalid value, is one error for the rest of the text, since Ion
/// gives no way to find where the next value starts.
pub fn parse_records(text: &str) -> Vec<Result<Record, String>> {
    let (values, rest) = text::parse_stream(text);
    let mut out: Vec<_> = values.iter().map(|(_, v)| record(v)).collect();
    match rest {
        text::Rest::Done => {}
        text::Rest::Incomplete(_) => {
            out.push(Err("Invalid Ion: the text ends inside a value".to_string()))
        }
        text::Rest::Invalid(_, message) => out.push(Err(message)),
    }
    out
}

pub(crate) fn record_of(v: &Annotated) -> Result<Record, String> {
    record(v)
}

fn record(v: &Annotated) -> Result<Record, String> {
    let Value::Struct(fields) = &v.value else {
        return Err(format!(
            "Invalid Ion record: expected a struct, found {}",
            v.value.type_name()
        ));
    };
    if let Some(item) = field(fields, "Item") {
        return image(item, "Item").map(Record::Item);
    }
    let change_fields = match field(fields, "Record") {
        Some(Annotated {
            value: Value::Struct(inner),
            ..
        }) => inner,
        Some(_) => return Err("Invalid Ion record: Record must be a struct".to_string()),
        None => fields,
    };
    let Some(keys) = field(change_fields, "Keys") else {
        return Err("Invalid Ion record: the struct has no Item".to_string());
    };
    let keys = image(keys, "Keys")?;
    let write_timestamp_micros = match field(change_fields, "Metadata") {
        None => 0,
        Some(Annotated {
            value: Value::Struct(meta),
            ..
        }) => match field(meta, "WriteTimestampMicros") {
            None => 0,
            Some(ts) => timestamp(&ts.value)?,
        },
        Some(_) => return Err("Invalid Ion record: Metadata must be a struct".to_string()),
    };
    let optional = |name: &str| -> Result<Option<Item>, String> {
        match field(change_fields, name) {
            None
            | Some(Annotated {
                value: Value::Null, ..
            }) => Ok(None),
            Some(v) => image(v, name).map(Some),
        }
    };
    Ok(Record::Change(ChangeRecord {
        write_timestamp_micros,
        keys,
        new_image: optional("NewImage")?,
        old_image: optional("OldImage")?,
    }))
}

fn field<'a>(fields: &'a [(String, Annotated)], name: &str) -> Option<&'a Annotated> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn timestamp(v: &Value) -> Result<u64, String> {
    let text = match v {
        Value::Int(t) | Value::Decimal(t) => t,
        _ => return Err("Invalid Ion record: WriteTimestampMicros is not a timestamp".to_string()),
    };
    let n = Number::parse(text).map_err(|e| e.message_for_input(text))?;
    // The canonical text of an integer is plain digits.
    n.to_string()
        .parse::<u64>()
        .ok()
        .ok_or_else(|| "Invalid Ion record: WriteTimestampMicros is not a timestamp".to_string())
}

/// An Ion struct as an item: mapped to DynamoDB JSON, then decoded by the protocol codec.
fn image(v: &Annotated, name: &str) -> Result<Item, String> {
    let Value::Struct(fields) = &v.value else {
        return Err(format!("Invalid Ion record: {name} must be a struct"));
    };
    let json = Json::Object(members(fields)?);
    decode_item(&json).map_err(|e| e.to_string())
}

fn members(fields: &[(String, Annotated)]) -> Result<Map<String, Json>, String> {
    let mut map = Map::new();
    for (name, value) in fields {
        if map.insert(name.clone(), to_json(value)?).is_some() {
            return Err(format!(
                "Invalid Ion record: the field {name} appears twice in a struct"
            ));
        }
    }
    Ok(map)
}

fn tagged(tag: &str, v: Json) -> Json {
    let mut m = Map::new();
    m.insert(tag.to_string(), v);
    Json::Object(m)
}

fn number_text(v: &Value) -> Option<Result<String, String>> {
    match v {
        Value::Int(t) | Value::Decimal(t) => Some(Ok(t.clone())),
        Value::Float(t) if matches!(t.as_str(), "nan" | "+inf" | "-inf") => Some(Err(format!(
            "Unsupported Ion value {t}: DynamoDB numbers are finite decimals"
        ))),
        Value::Float(t) => Some(Ok(t.clone())),
        _ => None,
    }
}

fn unsupported(v: &Value) -> String {
    format!(
        "Unsupported Ion type {} for a DynamoDB attribute value",
        v.type_name()
    )
}

/// One Ion value as a DynamoDB JSON attribute value.
fn to_json(v: &Annotated) -> Result<Json, String> {
    let set = v.annotations.iter().find(|a| a.starts_with("$dynamodb_"));
    if let Some(set) = set {
        let Value::List(elements) = &v.value else {
            return Err(format!("The Ion annotation {set} applies only to a list"));
        };
        let member = |e: &Annotated| -> Result<Json, String> {
            let wrong = || {
                format!(
                    "The Ion set {set} holds a value of type {}",
                    e.value.type_name()
                )
            };
            match set.as_str() {
                "$dynamodb_SS" => match &e.value {
                    Value::String(s) | Value::Symbol(s) => Ok(Json::String(s.clone())),
                    _ => Err(wrong()),
                },
                "$dynamodb_NS" => match number_text(&e.value) {
                    Some(t) => t.map(Json::String),
                    None => Err(wrong()),
                },
                "$dynamodb_BS" => match &e.value {
                    Value::Blob(b) => Ok(Json::String(B64.encode(b))),
                    _ => Err(wrong()),
                },
                _ => Err(format!("Unknown Ion annotation {set}")),
            }
        };
        let members = elements.iter().map(member).collect::<Result<Vec<_>, _>>()?;
        return Ok(tagged(&set["$dynamodb_".len()..], Json::Array(members)));
    }
    if let Some(t) = number_text(&v.value) {
        return Ok(tagged("N", Json::String(t?)));
    }
    Ok(match &v.value {
        Value::Null => tagged("NULL", Json::Bool(true)),
        Value::Bool(b) => tagged("BOOL", Json::Bool(*b)),
        Value::String(s) | Value::Symbol(s) => tagged("S", Json::String(s.clone())),
        Value::Blob(b) => tagged("B", Json::String(B64.encode(b))),
        Value::List(elements) => tagged(
            "L",
            Json::Array(elements.iter().map(to_json).collect::<Result<_, _>>()?),
        ),
        Value::Struct(fields) => tagged("M", Json::Object(members(fields)?)),
        other => return Err(unsupported(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(s).unwrap())
    }

    fn items(text: &str) -> Vec<Result<Record, String>> {
        parse_records(text)
    }

    fn decimal(s: &str) -> String {
        let mut out = Vec::new();
        write_decimal(&Number::parse(s).unwrap(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal("103"), "103.");
        assert_eq!(decimal("600"), "6d2");
        assert_eq!(decimal("2000"), "2d3");
        assert_eq!(decimal("0"), "0.");
        assert_eq!(decimal("-1.5"), "-1.5");
        assert_eq!(decimal("0.0001"), "0.0001");
        assert_eq!(decimal("1e-130"), "1d-130");
        assert_eq!(
            decimal("9.9999999999999999999999999999999999999E+125"),
            "99999999999999999999999999999999999999d88"
        );
        assert_eq!(
            decimal("12345678901234567890123456789012345678"),
            "12345678901234567890123456789012345678."
        );
        for s in [
            "103",
            "600",
            "-1.5",
            "0.0001",
            "1e-130",
            "-9.9999999999999999999999999999999999999E+125",
            "1.2345e-7",
        ] {
            let text = decimal(s);
            let Value::Decimal(parsed) = text::parse_top_level(&text).unwrap().remove(0).value
            else {
                panic!("{text}")
            };
            assert_eq!(
                Number::parse(&parsed).unwrap(),
                Number::parse(s).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn documentation_shaped_item() {
        let line = "$ion_1_0 {Item:{Authors:$dynamodb_SS::[\"Ann\",\"Bob\"],Dimensions:\"8.5 x 11\",Id:103.,InPrint:false,Pages:6d2,Price:2d3,Cover:{{aGVsbG8=}},Nums:$dynamodb_NS::[1.5,2.],Bins:$dynamodb_BS::[{{AQ==}}],Tags:[null,\"x\",{a:1.}]}}";
        let mut records = items(line);
        let Ok(Record::Item(item)) = records.remove(0) else {
            panic!()
        };
        assert_eq!(item["Id"], n("103"));
        assert_eq!(item["Pages"], n("600"));
        assert_eq!(item["Price"], n("2000"));
        assert_eq!(item["InPrint"], AttributeValue::Bool(false));
        assert_eq!(item["Cover"], AttributeValue::B(b"hello".to_vec()));
        assert_eq!(
            item["Authors"],
            AttributeValue::SS(vec!["Ann".into(), "Bob".into()])
        );
        assert_eq!(
            item["Nums"],
            AttributeValue::NS(vec![
                Number::parse("1.5").unwrap(),
                Number::parse("2").unwrap()
            ])
        );
        assert_eq!(item["Bins"], AttributeValue::BS(vec![vec![1]]));
        let mut out = Vec::new();
        write_item_line(&item, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("$ion_1_0 {Item:{Authors:$dynamodb_SS::[\"Ann\",\"Bob\"],"),
            "{text}"
        );
        assert!(text.contains("Id:103.,"), "{text}");
        assert!(text.contains("Pages:6d2,"), "{text}");
        assert_eq!(items(&text), vec![Ok(Record::Item(item))]);
    }

    #[test]
    fn hand_written_ion_is_accepted() {
        let text = "// exported by hand\n$ion_1_0\n{ 'Item' : { \"pk\": \"a\\tb\", n1: 15d-1, n2: 0x10, n3: 1.5e0, 'with space': sym, /* note */ list: [ 1, 2, ], }, }\n{Item:{pk:'''multi''' '''part'''}}";
        let records = items(text);
        assert_eq!(records.len(), 2);
        let Ok(Record::Item(item)) = &records[0] else {
            panic!("{records:?}")
        };
        assert_eq!(item["pk"], AttributeValue::S("a\tb".into()));
        assert_eq!(item["n1"], n("1.5"));
        assert_eq!(item["n2"], n("16"));
        assert_eq!(item["n3"], n("1.5"));
        assert_eq!(item["with space"], AttributeValue::S("sym".into()));
        let Ok(Record::Item(item)) = &records[1] else {
            panic!()
        };
        assert_eq!(item["pk"], AttributeValue::S("multipart".into()));
    }

    #[test]
    fn unsupported_and_invalid_values_are_errors() {
        for bad in [
            "{Item:{a:2020-01-01T}}",
            "{Item:{a:{{\"clob\"}}}}",
            "{Item:{a:(x)}}",
            "{Item:{a:nan}}",
            "{Item:{a:$dynamodb_SS::[1.]}}",
            "{Item:{a:$dynamodb_SS::\"x\"}}",
            "{Item:{a:$dynamodb_XS::[]}}",
            "{Item:{a:$dynamodb_SS::[]}}",
            "{Item:{a:$dynamodb_SS::[\"x\",\"x\"]}}",
            "{Item:{a:1d200}}",
            "{Item:{a:1,a:2}}",
            "{Item:5}",
            "{Other:{}}",
            "5",
        ] {
            let records = items(bad);
            assert!(records.iter().all(Result::is_err), "{bad}: {records:?}");
        }
        assert_eq!(
            items("{Item:{a:$dynamodb_SS::[]}}"),
            vec![Err(
                "One or more parameter values were invalid: An string set  may not be empty"
                    .to_string()
            )]
        );
    }

    #[test]
    fn change_records() {
        let key: Item = [("pk".to_string(), AttributeValue::S("k".into()))].into();
        let mut new = key.clone();
        new.insert("v".into(), n("2"));
        let change = ChangeRecord {
            write_timestamp_micros: 1_684_374_845_117_899,
            keys: key.clone(),
            new_image: Some(new),
            old_image: Some(key.clone()),
        };
        let mut out = Vec::new();
        write_change_line(&change, ExportViewType::NewAndOldImages, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "$ion_1_0 {Record:{Keys:{pk:\"k\"},Metadata:{WriteTimestampMicros:1684374845117899.},OldImage:{pk:\"k\"},NewImage:{pk:\"k\",v:2.}}}\n"
        );
        assert_eq!(items(&text), vec![Ok(Record::Change(change.clone()))]);
        let delete = ChangeRecord {
            new_image: None,
            old_image: None,
            ..change
        };
        let mut out = Vec::new();
        write_change_line(&delete, ExportViewType::NewImage, &mut out);
        assert_eq!(
            items(std::str::from_utf8(&out).unwrap()),
            vec![Ok(Record::Change(delete))]
        );
    }

    #[test]
    fn field_names_are_quoted_when_needed() {
        let mut item = Item::new();
        for name in ["plain_1", "with space", "null", "$10", "it's", "", "é"] {
            item.insert(name.to_string(), AttributeValue::Null);
        }
        let mut out = Vec::new();
        write_item_line(&item, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("plain_1:null"));
        assert!(text.contains("'with space':null"));
        assert!(text.contains("'null':null"));
        assert!(text.contains("'$10':null"));
        assert!(text.contains("'it\\'s':null"));
        assert_eq!(parse_records(&text), vec![Ok(Record::Item(item))]);
    }
}
