//! DynamoDB JSON lines: the data files of DYNAMODB_JSON exports and imports.
//!
//! Owns: the line shapes. A full export line is `{"Item":{...}}`; an incremental export line is
//! `{"Metadata":{"WriteTimestampMicros":{"N":"…"}},"Keys":{...},"OldImage":{...},"NewImage":{...}}`
//! with the images the view type keeps. Attribute values go through ferrodyn-protocol's codec in
//! both directions, so values are checked with DynamoDB's rules and messages; this module never
//! reads or writes an attribute value itself.

use ferrodyn_model::Item;
use ferrodyn_protocol::codec::{decode_item, write_item_json};
use serde_json::{Map, Value};

use crate::format::{ChangeRecord, ExportViewType, Record};

/// Appends `{"Item":{...}}` and a newline.
pub fn write_item_line(item: &Item, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"Item\":");
    write_item_json(item, out);
    out.extend_from_slice(b"}\n");
}

/// Appends one incremental-export line and a newline. The old image is written only for
/// [`ExportViewType::NewAndOldImages`], the new image only when the change did not delete.
pub fn write_change_line(change: &ChangeRecord, view: ExportViewType, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"");
    out.extend_from_slice(change.write_timestamp_micros.to_string().as_bytes());
    out.extend_from_slice(b"\"}},\"Keys\":");
    write_item_json(&change.keys, out);
    if view == ExportViewType::NewAndOldImages {
        if let Some(old) = &change.old_image {
            out.extend_from_slice(b",\"OldImage\":");
            write_item_json(old, out);
        }
    }
    if let Some(new) = &change.new_image {
        out.extend_from_slice(b",\"NewImage\":");
        write_item_json(new, out);
    }
    out.extend_from_slice(b"}\n");
}

/// Parses one line (without its newline) of a DynamoDB JSON data file.
pub fn parse_line(line: &str) -> Result<Record, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| format!("Invalid DynamoDB JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("Invalid DynamoDB JSON: a line must be a JSON object".to_string());
    };
    if let Some(item) = object.get("Item") {
        return image(item, "Item").map(Record::Item);
    }
    if object.contains_key("Keys") || object.contains_key("NewImage") {
        return change(&object).map(Record::Change);
    }
    Err("Invalid DynamoDB JSON: the object has no Item".to_string())
}

fn change(object: &Map<String, Value>) -> Result<ChangeRecord, String> {
    let keys = match object.get("Keys") {
        Some(keys) => image(keys, "Keys")?,
        None => return Err("Invalid DynamoDB JSON: the change has no Keys".to_string()),
    };
    let write_timestamp_micros = match object.get("Metadata") {
        None | Some(Value::Null) => 0,
        Some(Value::Object(meta)) => match meta.get("WriteTimestampMicros") {
            None | Some(Value::Null) => 0,
            Some(ts) => timestamp(ts)?,
        },
        Some(_) => return Err("Invalid DynamoDB JSON: Metadata must be an object".to_string()),
    };
    let optional = |name: &str| -> Result<Option<Item>, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => image(v, name).map(Some),
        }
    };
    Ok(ChangeRecord {
        write_timestamp_micros,
        keys,
        new_image: optional("NewImage")?,
        old_image: optional("OldImage")?,
    })
}

/// `WriteTimestampMicros` as DynamoDB writes it (`{"N":"…"}`), or as a plain JSON number.
fn timestamp(v: &Value) -> Result<u64, String> {
    let invalid = || "Invalid DynamoDB JSON: WriteTimestampMicros is not a timestamp".to_string();
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(invalid),
        Value::Object(o) => match o.get("N") {
            Some(Value::String(s)) if o.len() == 1 => s.parse::<u64>().map_err(|_| invalid()),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

fn image(v: &Value, name: &str) -> Result<Item, String> {
    if !v.is_object() {
        return Err(format!("Invalid DynamoDB JSON: {name} must be an object"));
    }
    decode_item(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrodyn_model::{AttributeValue, Number};

    fn n(s: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(s).unwrap())
    }

    #[test]
    fn full_export_line_round_trips() {
        let line = r#"{"Item":{"Authors":{"SS":["Ann","Bob"]},"Id":{"N":"103"},"InPrint":{"BOOL":false},"Title":{"S":"A title"}}}"#;
        let Record::Item(item) = parse_line(line).unwrap() else {
            panic!("not an item")
        };
        assert_eq!(item["Id"], n("103"));
        assert_eq!(
            item["Authors"],
            AttributeValue::SS(vec!["Bob".into(), "Ann".into()])
        );
        let mut out = Vec::new();
        write_item_line(&item, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&out).unwrap().trim_end();
        assert_eq!(text, line);
    }

    #[test]
    fn incremental_lines_by_view_type() {
        let key: Item = [("pk".to_string(), AttributeValue::S("a".into()))].into();
        let mut new = key.clone();
        new.insert("v".into(), n("2"));
        let mut old = key.clone();
        old.insert("v".into(), n("1"));
        let update = ChangeRecord {
            write_timestamp_micros: 1_700_000_000_123_456,
            keys: key.clone(),
            new_image: Some(new.clone()),
            old_image: Some(old.clone()),
        };
        let mut out = Vec::new();
        write_change_line(&update, ExportViewType::NewAndOldImages, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"1700000000123456\"}},\
             \"Keys\":{\"pk\":{\"S\":\"a\"}},\"OldImage\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"1\"}},\
             \"NewImage\":{\"pk\":{\"S\":\"a\"},\"v\":{\"N\":\"2\"}}}\n"
        );
        assert_eq!(
            parse_line(std::str::from_utf8(&out).unwrap().trim_end()).unwrap(),
            Record::Change(update.clone())
        );

        out.clear();
        write_change_line(&update, ExportViewType::NewImage, &mut out);
        let Record::Change(parsed) = parse_line(std::str::from_utf8(&out).unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(parsed.old_image, None);
        assert_eq!(parsed.new_image, Some(new));

        let delete = ChangeRecord {
            write_timestamp_micros: 7,
            keys: key.clone(),
            new_image: None,
            old_image: Some(old),
        };
        out.clear();
        write_change_line(&delete, ExportViewType::NewImage, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"Metadata\":{\"WriteTimestampMicros\":{\"N\":\"7\"}},\"Keys\":{\"pk\":{\"S\":\"a\"}}}\n"
        );
        let parsed = parse_line(std::str::from_utf8(&out).unwrap()).unwrap();
        assert!(matches!(&parsed, Record::Change(c) if c.is_delete()));
        assert_eq!(parsed.into_item(), None);
    }

    #[test]
    fn bad_lines_are_errors_with_dynamodb_messages() {
        for line in ["", "[]", "{", "{\"Other\":1}", "{\"Item\":[]}", "null"] {
            assert!(parse_line(line).is_err(), "{line}");
        }
        assert_eq!(
            parse_line(r#"{"Item":{"a":{"N":"1e200"}}}"#).unwrap_err(),
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        );
        assert!(parse_line(r#"{"Item":{"a":{"SS":[]}}}"#).is_err());
        assert!(
            parse_line(r#"{"Keys":{"a":{"S":"x"}},"Metadata":{"WriteTimestampMicros":"x"}}"#)
                .is_err()
        );
        // A plain number is accepted for the timestamp.
        assert!(
            parse_line(r#"{"Keys":{"a":{"S":"x"}},"Metadata":{"WriteTimestampMicros":5}}"#).is_ok()
        );
    }
}
