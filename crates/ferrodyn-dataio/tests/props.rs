//! Property tests: exact round trips of arbitrary items through every line format and
//! compression, and readers that never panic on arbitrary input.

use std::io::{Read, Write};

use ferrodyn_dataio::compress::{decoder, gzip_encoder, zstd_compress};
use ferrodyn_dataio::csv::CsvOptions;
use ferrodyn_dataio::{
    ion, json, ChangeRecord, Compression, ExportViewType, InputFormat, ReadOptions, Record,
    RecordReader,
};
use ferrodyn_model::{AttributeValue, Item, Number, ScalarType};
use proptest::prelude::*;

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from_i64),
        // Up to 38 digits with the most significant one anywhere in DynamoDB's range.
        (any::<bool>(), 1u128..(10u128.pow(38)), -130i32..=125).prop_filter_map(
            "in range",
            |(negative, coefficient, msd)| {
                let digits = coefficient.checked_ilog10().unwrap_or(0) as i32 + 1;
                Number::from_parts(negative, coefficient, msd - digits + 1).ok()
            }
        ),
        prop_oneof![
            Just("9.9999999999999999999999999999999999999E+125"),
            Just("-9.9999999999999999999999999999999999999E+125"),
            Just("1E-130"),
            Just("-1E-130"),
            Just("0"),
            Just("12345678901234567890123456789012345678"),
            Just("0.00000012345678901234567890123456789012345678"),
        ]
        .prop_map(|s| Number::parse(s).unwrap()),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,8}",
        any::<String>(),
        Just("quote\" apostrophe' back\\ slash\n\t\r\u{0}\u{1f}\u{7f}é😀'''".to_owned()),
    ]
}

fn attribute_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        string().prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        prop::collection::btree_set(string(), 1..5)
            .prop_map(|s| AttributeValue::SS(s.into_iter().collect())),
        prop::collection::btree_set(number(), 1..5)
            .prop_map(|s| AttributeValue::NS(s.into_iter().collect())),
        prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..6), 1..5)
            .prop_map(|s| AttributeValue::BS(s.into_iter().collect())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(AttributeValue::L),
            prop::collection::btree_map(string(), inner, 0..5).prop_map(AttributeValue::M),
        ]
    })
}

fn item() -> impl Strategy<Value = Item> {
    prop::collection::btree_map(string(), attribute_value(), 0..6)
}

fn change() -> impl Strategy<Value = ChangeRecord> {
    (
        any::<u64>(),
        item(),
        proptest::option::of(item()),
        proptest::option::of(item()),
    )
        .prop_map(|(ts, keys, new_image, old_image)| ChangeRecord {
            write_timestamp_micros: ts,
            keys,
            new_image,
            old_image,
        })
}

/// Sets compare as sets; also compare member order so a reordering bug would show.
fn same(a: &Item, b: &Item) -> bool {
    a == b && format!("{a:?}") == format!("{b:?}")
}

fn read_back(bytes: Vec<u8>, format: InputFormat, compression: Compression) -> Vec<Record> {
    RecordReader::new(
        "file",
        std::io::Cursor::new(bytes),
        &ReadOptions::new(format, compression),
    )
    .unwrap()
    .map(|(_, r)| r.unwrap())
    .collect()
}

fn compress(data: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = gzip_encoder(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd_compress(data),
    }
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Zstd)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_lines_round_trip(items in prop::collection::vec(item(), 0..4), c in compression()) {
        let mut text = Vec::new();
        for item in &items {
            json::write_item_line(item, &mut text);
        }
        let records = read_back(compress(&text, c), InputFormat::DynamoDbJson, c);
        prop_assert_eq!(records.len(), items.len());
        for (record, item) in records.iter().zip(&items) {
            let Record::Item(got) = record else { panic!("not an item") };
            prop_assert!(same(got, item), "{:?} != {:?}", got, item);
        }
    }

    #[test]
    fn ion_lines_round_trip(items in prop::collection::vec(item(), 0..4), c in compression()) {
        let mut text = Vec::new();
        for item in &items {
            ion::write_item_line(item, &mut text);
        }
        let records = read_back(compress(&text, c), InputFormat::Ion, c);
        prop_assert_eq!(records.len(), items.len());
        for (record, item) in records.iter().zip(&items) {
            let Record::Item(got) = record else { panic!("not an item") };
            prop_assert!(same(got, item), "{:?} != {:?}", got, item);
        }
    }

    #[test]
    fn change_lines_round_trip(change in change(), both in any::<bool>()) {
        let view = if both { ExportViewType::NewAndOldImages } else { ExportViewType::NewImage };
        let expected = ChangeRecord {
            old_image: if both { change.old_image.clone() } else { None },
            ..change.clone()
        };
        let mut text = Vec::new();
        json::write_change_line(&change, view, &mut text);
        let json_back = json::parse_line(std::str::from_utf8(&text).unwrap()).unwrap();
        prop_assert_eq!(&json_back, &Record::Change(expected.clone()));
        let mut text = Vec::new();
        ion::write_change_line(&change, view, &mut text);
        let ion_back = ion::parse_records(std::str::from_utf8(&text).unwrap());
        prop_assert_eq!(ion_back, vec![Ok(Record::Change(expected))]);
    }

    #[test]
    fn ion_reader_never_panics(text in prop_oneof![
        any::<String>(),
        "[{}\\[\\]()'\":,$_a-zA-Z0-9.+\\- \n\t/*\\\\]{0,80}",
    ]) {
        let _ = ion::parse_records(&text);
        let _ = RecordReader::new("f", std::io::Cursor::new(text.into_bytes()), &ReadOptions::new(InputFormat::Ion, Compression::None))
            .unwrap()
            .count();
    }

    #[test]
    fn ion_reader_survives_damaged_lines(item in item(), cut in any::<prop::sample::Index>(), junk in "[\\x00-\\x7f]{0,3}") {
        let mut text = Vec::new();
        ion::write_item_line(&item, &mut text);
        let text = String::from_utf8(text).unwrap();
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let damaged = format!("{}{junk}{}", &text[..at], &text[at..]);
        let _ = ion::parse_records(&damaged);
        let _ = ion::parse_records(&text[..at]);
    }

    #[test]
    fn csv_reader_never_panics(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            "[a-c,;\"\r\n ]{0,80}".prop_map(String::into_bytes),
        ],
        delimiter in prop::sample::select(vec![',', ';', ':', '|', '\t', ' ']),
        header in proptest::option::of(prop::collection::vec("[a-c]{1,2}", 1..4)),
    ) {
        let mut options = ReadOptions::new(InputFormat::Csv, Compression::None);
        options.csv = CsvOptions::new(delimiter, header).unwrap();
        options.key_types = [("a".to_string(), ScalarType::N), ("b".to_string(), ScalarType::B)].into();
        let _ = RecordReader::new("f", std::io::Cursor::new(bytes), &options).unwrap().count();
    }

    #[test]
    fn json_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), text in any::<String>()) {
        let _ = json::parse_line(&text);
        let _ = RecordReader::new("f", std::io::Cursor::new(bytes), &ReadOptions::new(InputFormat::DynamoDbJson, Compression::None))
            .unwrap()
            .count();
    }

    #[test]
    fn decompressors_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), c in compression()) {
        if let Ok(mut r) = decoder(c, &bytes[..]) {
            let mut out = Vec::new();
            let _ = r.by_ref().take(1 << 20).read_to_end(&mut out);
        }
    }

    #[test]
    fn damaged_compressed_files_are_errors_not_panics(items in prop::collection::vec(item(), 1..4), c in prop_oneof![Just(Compression::Gzip), Just(Compression::Zstd)], cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let mut text = Vec::new();
        for item in &items {
            json::write_item_line(item, &mut text);
        }
        let packed = compress(&text, c);
        let truncated = packed[..cut.index(packed.len())].to_vec();
        let _ = RecordReader::new("f", std::io::Cursor::new(truncated), &ReadOptions::new(InputFormat::DynamoDbJson, c)).map(Iterator::count);
        let mut flipped = packed.clone();
        let k = flip.0.index(flipped.len());
        flipped[k] ^= flip.1 | 1;
        let _ = RecordReader::new("f", std::io::Cursor::new(flipped), &ReadOptions::new(InputFormat::DynamoDbJson, c)).map(Iterator::count);
    }
}
