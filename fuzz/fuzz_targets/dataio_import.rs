//! The import readers of ferrodyn-dataio: DynamoDB JSON lines, Ion text and CSV, plain, GZIP
//! or ZSTD, and the export manifests.
//!
//! Input: a selector byte (format and compression), then the file's bytes. Invariants: reading
//! never panics and ends; every item read from JSON or Ion lines writes back (in the same
//! format) to a line that reads back to the same item.
#![no_main]

use std::io::Cursor;

use ferrodyn_dataio::{
    export::{ManifestEntry, ManifestSummary},
    ion, json, Compression, InputFormat, ReadOptions, Record, RecordReader,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => InputFormat::DynamoDbJson,
        1 => InputFormat::Ion,
        _ => InputFormat::Csv,
    };
    let compression = match (selector / 3) % 4 {
        0 | 1 => Compression::None,
        2 => Compression::Gzip,
        _ => Compression::Zstd,
    };
    if selector == 255 {
        if let Ok(text) = std::str::from_utf8(rest) {
            let _ = ManifestSummary::parse(text);
            for line in text.lines() {
                let _ = ManifestEntry::parse(line);
            }
        }
        return;
    }
    let mut options = ReadOptions::new(format, compression);
    options
        .key_types
        .insert("pk".into(), ferrodyn_model::ScalarType::S);
    options
        .key_types
        .insert("n".into(), ferrodyn_model::ScalarType::N);
    let Ok(reader) = RecordReader::new("fuzz", Cursor::new(rest.to_vec()), &options) else {
        return;
    };
    for (_location, record) in reader.take(10_000) {
        let Ok(Record::Item(item)) = record else {
            continue;
        };
        match format {
            InputFormat::DynamoDbJson => {
                let mut line = Vec::new();
                json::write_item_line(&item, &mut line);
                let text = String::from_utf8(line).expect("JSON lines are UTF-8");
                match json::parse_line(text.trim_end()) {
                    Ok(Record::Item(again)) => assert_eq!(again, item),
                    other => panic!("written JSON line reads back as {other:?}"),
                }
            }
            InputFormat::Ion => {
                let mut line = Vec::new();
                ion::write_item_line(&item, &mut line);
                let text = String::from_utf8(line).expect("Ion text is UTF-8");
                let mut records = ion::parse_records(&text);
                assert_eq!(records.len(), 1, "{text}");
                match records.pop() {
                    Some(Ok(Record::Item(again))) => assert_eq!(again, item),
                    other => panic!("written Ion line reads back as {other:?}"),
                }
            }
            InputFormat::Csv => {}
        }
    }
});
