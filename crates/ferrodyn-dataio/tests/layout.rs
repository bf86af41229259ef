//! The export layout written by `ExportWriter` and read back by `ImportSource`: manifests,
//! several data files, resuming, incremental exports, damaged and hostile inputs.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ferrodyn_dataio::compress::gzip_encoder;
use ferrodyn_dataio::csv::CsvOptions;
use ferrodyn_dataio::export::new_export_id;
use ferrodyn_dataio::{
    ChangeRecord, Compression, ExportFormat, ExportKind, ExportSpec, ExportViewType, ExportWriter,
    FileLimits, ImportSource, InputFormat, LineErrorKind, ManifestEntry, ManifestSummary, Position,
    ReadOptions, Record, SourceError,
};
use ferrodyn_model::{AttributeValue, Item, Number, ScalarType};
use md5::{Digest, Md5};

fn t(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn spec(prefix: Option<&str>, format: ExportFormat, kind: ExportKind) -> ExportSpec {
    let export_id = new_export_id(t(1_700_000_000_000));
    let table_arn = "arn:aws:dynamodb:us-east-1:000000000000:table/Books".to_string();
    ExportSpec {
        export_arn: format!("{table_arn}/export/{export_id}"),
        export_id,
        table_arn,
        table_id: "11111111-2222-3333-4444-555555555555".into(),
        s3_bucket: "bucket".into(),
        s3_prefix: prefix.map(str::to_string),
        s3_sse_algorithm: Some("AES256".into()),
        s3_sse_kms_key_id: None,
        format,
        kind,
        start_time: t(1_700_000_000_000),
    }
}

fn full() -> ExportKind {
    ExportKind::Full {
        export_time: t(1_699_999_999_000),
    }
}

/// A varied item: every attribute type, numbers with 38 digits and extreme exponents.
fn book(i: u64) -> Item {
    let n = |s: &str| Number::parse(s).unwrap();
    let mut item = Item::new();
    item.insert("pk".into(), AttributeValue::S(format!("book-{i:05}")));
    item.insert(
        "sk".into(),
        AttributeValue::N(Number::from_i64(i as i64 - 1500)),
    );
    item.insert(
        "big".into(),
        AttributeValue::N(n(&format!(
            "1234567890123456789012345678901234567{}e{}",
            i % 10,
            88
        ))),
    );
    item.insert("tiny".into(), AttributeValue::N(n("-1.5E-129")));
    item.insert("bin".into(), AttributeValue::B(i.to_be_bytes().to_vec()));
    item.insert("flag".into(), AttributeValue::Bool(i.is_multiple_of(2)));
    item.insert("nothing".into(), AttributeValue::Null);
    item.insert("empty".into(), AttributeValue::S(String::new()));
    item.insert(
        "tags".into(),
        AttributeValue::SS(vec!["b".into(), "a".into(), format!("t{i}")]),
    );
    item.insert(
        "nums".into(),
        AttributeValue::NS(vec![n("1"), n("2.5"), n("9.99E+125")]),
    );
    item.insert(
        "bins".into(),
        AttributeValue::BS(vec![vec![], vec![1, 2], vec![255]]),
    );
    let mut inner = BTreeMap::new();
    inner.insert(
        "quote\"d 'name'".to_string(),
        AttributeValue::L(vec![AttributeValue::Null]),
    );
    inner.insert("é".to_string(), AttributeValue::M(BTreeMap::new()));
    item.insert(
        "nested".into(),
        AttributeValue::L(vec![AttributeValue::M(inner), AttributeValue::L(vec![])]),
    );
    item
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn export_books(
    bucket: &Path,
    prefix: Option<&str>,
    format: ExportFormat,
    count: u64,
    per_file: u64,
) -> ManifestSummary {
    let spec = spec(prefix, format, full());
    let limits = FileLimits {
        max_items: per_file,
        max_bytes: u64::MAX,
    };
    let mut writer = ExportWriter::create(bucket, spec, limits).unwrap();
    for i in 0..count {
        writer.write_item(&book(i)).unwrap();
    }
    writer.finish(t(1_700_000_100_000)).unwrap()
}

fn all_items(source: &ImportSource, from: Position) -> Vec<(Position, Item)> {
    source
        .items(from)
        .map(|(p, r)| (p, r.unwrap_or_else(|e| panic!("{e}"))))
        .collect()
}

#[test]
fn full_export_round_trips_across_data_files() {
    for format in [ExportFormat::DynamoDbJson, ExportFormat::Ion] {
        let bucket = tempfile::tempdir().unwrap();
        let summary = export_books(bucket.path(), Some("exports/2026"), format, 3000, 700);
        assert_eq!(summary.item_count, 3000);
        assert_eq!(summary.output_format, format.as_str());
        assert_eq!(summary.export_type.as_deref(), Some("FULL_EXPORT"));
        assert_eq!(summary.version, "2020-06-30");
        assert_eq!(summary.start_time, "2023-11-14T22:13:20.000Z");
        assert_eq!(
            summary.export_time.as_deref(),
            Some("2023-11-14T22:13:19.000Z")
        );
        assert_eq!(summary.end_time, "2023-11-14T22:15:00.000Z");
        assert!(summary.billed_size_bytes > 0);

        // The layout, as DynamoDB writes it.
        let export_dir = bucket
            .path()
            .join(&summary.manifest_files_s3_key)
            .parent()
            .unwrap()
            .to_path_buf();
        assert!(summary
            .manifest_files_s3_key
            .starts_with("exports/2026/AWSDynamoDB/"));
        assert!(summary
            .manifest_files_s3_key
            .ends_with("/manifest-files.json"));
        assert_eq!(fs::read(export_dir.join("_started")).unwrap(), b"");
        assert!(export_dir.join("manifest-files.checksum").is_file());
        assert!(export_dir.join("manifest-summary.checksum").is_file());
        let on_disk = read_json(&export_dir.join("manifest-summary.json"));
        assert_eq!(on_disk["itemCount"], 3000);
        assert_eq!(on_disk["s3Prefix"], "exports/2026");
        assert_eq!(on_disk["s3SseKmsKeyId"], serde_json::Value::Null);
        assert_eq!(
            ManifestSummary::parse(&on_disk.to_string()).unwrap(),
            summary
        );

        let manifest =
            fs::read_to_string(bucket.path().join(&summary.manifest_files_s3_key)).unwrap();
        let entries: Vec<ManifestEntry> = manifest
            .lines()
            .map(|l| ManifestEntry::parse(l).unwrap())
            .collect();
        assert_eq!(entries.len(), 5);
        assert_eq!(
            entries.iter().map(|e| e.item_count).collect::<Vec<_>>(),
            [700, 700, 700, 700, 200]
        );
        for e in &entries {
            let name = e.data_file_s3_key.rsplit('/').next().unwrap();
            assert!(
                name.ends_with(&format!(".{}.gz", format.extension())),
                "{name}"
            );
            assert_eq!(name.len(), 26 + format.extension().len() + 4);
            assert!(e.data_file_s3_key.contains("/data/"));
            let bytes = fs::read(bucket.path().join(&e.data_file_s3_key)).unwrap();
            let digest = Md5::digest(&bytes);
            assert_eq!(e.md5_checksum, B64.encode(digest));
            assert_eq!(
                e.etag,
                digest
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
        }
        // No temporary file is left behind.
        let leftovers: Vec<_> = walk(bucket.path())
            .into_iter()
            .filter(|p| p.ends_with(".ferrodyn-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // Import: the prefix holds an export, so only its manifest's data files are read.
        let source = ImportSource::open(
            bucket.path(),
            "exports/",
            ReadOptions::new(format.as_input(), Compression::Gzip),
        )
        .unwrap();
        assert_eq!(source.files().len(), 5);
        assert_eq!(source.exports(), std::slice::from_ref(&summary));
        assert_eq!(
            source
                .files()
                .iter()
                .map(|f| f.manifest_item_count)
                .collect::<Vec<_>>(),
            entries
                .iter()
                .map(|e| Some(e.item_count))
                .collect::<Vec<_>>()
        );
        let got = all_items(&source, Position::START);
        assert_eq!(got.len(), 3000);
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "positions increase"
        );
        for (i, (_, item)) in got.iter().enumerate() {
            assert_eq!(item, &book(i as u64), "item {i}");
        }
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().to_string_lossy().into_owned());
        }
    }
    out
}

#[test]
fn an_interrupted_import_resumes_without_duplicates() {
    let bucket = tempfile::tempdir().unwrap();
    export_books(bucket.path(), None, ExportFormat::Ion, 2000, 300);
    let source = ImportSource::open(
        bucket.path(),
        "",
        ReadOptions::new(InputFormat::Ion, Compression::Gzip),
    )
    .unwrap();
    for stop_after in [0usize, 1, 299, 300, 301, 1234, 1999] {
        let first: Vec<(Position, Item)> = all_items(&source, Position::START)
            .into_iter()
            .take(stop_after + 1)
            .collect();
        let checkpoint = first.last().unwrap().0.after();
        let rest = all_items(&source, checkpoint);
        assert_eq!(first.len() + rest.len(), 2000, "stop after {stop_after}");
        let mut keys: Vec<String> = first
            .iter()
            .chain(&rest)
            .map(|(_, i)| match &i["pk"] {
                AttributeValue::S(s) => s.clone(),
                _ => unreachable!(),
            })
            .collect();
        keys.dedup();
        assert_eq!(keys.len(), 2000, "stop after {stop_after}");
    }
    // Resuming past the end reads nothing.
    let end = Position {
        file: source.files().len(),
        line: 0,
        index: 0,
    };
    assert_eq!(source.records(end).count(), 0);
}

#[test]
fn incremental_export_keeps_the_view_and_skips_deletions_on_import() {
    for (format, view) in [
        (ExportFormat::DynamoDbJson, ExportViewType::NewAndOldImages),
        (ExportFormat::Ion, ExportViewType::NewImage),
    ] {
        let bucket = tempfile::tempdir().unwrap();
        let kind = ExportKind::Incremental {
            from: t(1_699_990_000_000),
            to: t(1_699_999_000_000),
            view,
        };
        let mut writer = ExportWriter::create(
            bucket.path(),
            spec(Some("inc"), format, kind),
            FileLimits {
                max_items: 2,
                max_bytes: u64::MAX,
            },
        )
        .unwrap();
        let key =
            |i: u64| -> Item { [("pk".to_string(), AttributeValue::S(format!("k{i}")))].into() };
        let changes = vec![
            ChangeRecord {
                write_timestamp_micros: 1,
                keys: key(1),
                new_image: Some(book(1)),
                old_image: None,
            },
            ChangeRecord {
                write_timestamp_micros: 2,
                keys: key(2),
                new_image: Some(book(2)),
                old_image: Some(book(20)),
            },
            ChangeRecord {
                write_timestamp_micros: 3,
                keys: key(3),
                new_image: None,
                old_image: Some(book(3)),
            },
        ];
        for c in &changes {
            writer.write_change(c).unwrap();
        }
        let summary = writer.finish(t(1_700_000_100_000)).unwrap();
        assert_eq!(summary.version, "2023-08-01");
        assert_eq!(summary.export_type.as_deref(), Some("INCREMENTAL_EXPORT"));
        assert_eq!(summary.output_view.as_deref(), Some(view.as_str()));
        assert_eq!(
            summary.export_from_time.as_deref(),
            Some("2023-11-14T19:26:40.000Z")
        );
        assert_eq!(summary.export_time, None);
        let text = fs::read_to_string(bucket.path().join(&summary.manifest_files_s3_key)).unwrap();
        for line in text.lines() {
            // Incremental data files share the prefix's AWSDynamoDB/data folder.
            assert!(
                ManifestEntry::parse(line)
                    .unwrap()
                    .data_file_s3_key
                    .starts_with("inc/AWSDynamoDB/data/"),
                "{line}"
            );
        }
        let source = ImportSource::open(
            bucket.path(),
            "inc",
            ReadOptions::new(format.as_input(), Compression::Gzip),
        )
        .unwrap();
        assert_eq!(source.files().len(), 2);
        let records: Vec<Record> = source
            .records(Position::START)
            .map(|(_, r)| r.unwrap())
            .collect();
        let expected: Vec<Record> = changes
            .iter()
            .map(|c| {
                Record::Change(ChangeRecord {
                    old_image: if view == ExportViewType::NewAndOldImages {
                        c.old_image.clone()
                    } else {
                        None
                    },
                    ..c.clone()
                })
            })
            .collect();
        assert_eq!(records, expected);
        let items: Vec<Item> = all_items(&source, Position::START)
            .into_iter()
            .map(|(_, i)| i)
            .collect();
        assert_eq!(items, vec![book(1), book(2)]);
    }
}

#[test]
fn only_complete_exports_are_read() {
    let bucket = tempfile::tempdir().unwrap();
    export_books(
        bucket.path(),
        Some("p"),
        ExportFormat::DynamoDbJson,
        10,
        100,
    );
    // An export that never finished: data written, no summary.
    let mut writer = ExportWriter::create(
        bucket.path(),
        spec(Some("p"), ExportFormat::DynamoDbJson, full()),
        FileLimits {
            max_items: 1,
            max_bytes: u64::MAX,
        },
    )
    .unwrap();
    for i in 100..105 {
        writer.write_item(&book(i)).unwrap();
    }
    drop(writer);
    let source = ImportSource::open(
        bucket.path(),
        "p/",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    assert_eq!(source.exports().len(), 1);
    let items = all_items(&source, Position::START);
    assert_eq!(items.len(), 10);
    // A file being written is never listed, even without any export.
    let plain = tempfile::tempdir().unwrap();
    fs::write(
        plain.path().join("a.json"),
        "{\"Item\":{\"pk\":{\"S\":\"x\"}}}\n",
    )
    .unwrap();
    fs::write(plain.path().join("b.json.ferrodyn-tmp"), "garbage").unwrap();
    let source = ImportSource::open(
        plain.path(),
        "",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::None),
    )
    .unwrap();
    assert_eq!(
        source
            .files()
            .iter()
            .map(|f| f.key.as_str())
            .collect::<Vec<_>>(),
        ["a.json"]
    );
}

#[test]
fn an_empty_table_exports_one_empty_data_file() {
    let bucket = tempfile::tempdir().unwrap();
    let summary = export_books(bucket.path(), None, ExportFormat::DynamoDbJson, 0, 10);
    assert_eq!(summary.item_count, 0);
    assert!(summary.manifest_files_s3_key.starts_with("AWSDynamoDB/"));
    let manifest = fs::read_to_string(bucket.path().join(&summary.manifest_files_s3_key)).unwrap();
    assert_eq!(manifest.lines().count(), 1);
    let source = ImportSource::open(
        bucket.path(),
        "AWSDynamoDB",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    assert_eq!(source.files().len(), 1);
    assert_eq!(source.records(Position::START).count(), 0);
}

#[test]
fn a_moved_export_is_still_followed() {
    let bucket = tempfile::tempdir().unwrap();
    export_books(
        bucket.path(),
        Some("old/place"),
        ExportFormat::DynamoDbJson,
        50,
        20,
    );
    fs::create_dir_all(bucket.path().join("new")).unwrap();
    fs::rename(
        bucket.path().join("old/place/AWSDynamoDB"),
        bucket.path().join("new/AWSDynamoDB"),
    )
    .unwrap();
    let source = ImportSource::open(
        bucket.path(),
        "new/",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    assert_eq!(source.files().len(), 3);
    assert!(source
        .files()
        .iter()
        .all(|f| f.key.starts_with("new/AWSDynamoDB/")));
    assert_eq!(all_items(&source, Position::START).len(), 50);
}

#[test]
fn hostile_manifests_are_rejected() {
    let bucket = tempfile::tempdir().unwrap();
    let summary = export_books(bucket.path(), Some("x"), ExportFormat::DynamoDbJson, 3, 10);
    let manifest_path = bucket.path().join(&summary.manifest_files_s3_key);
    for key in [
        "../../etc/passwd",
        "/etc/passwd",
        "x//y",
        "x/AWSDynamoDB/missing.json.gz",
    ] {
        let entry = ManifestEntry {
            item_count: 1,
            md5_checksum: String::new(),
            etag: String::new(),
            data_file_s3_key: key.into(),
        };
        fs::write(&manifest_path, entry.to_json_line() + "\n").unwrap();
        let err = ImportSource::open(
            bucket.path(),
            "x/",
            ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
        )
        .unwrap_err();
        assert!(matches!(err, SourceError::Manifest { .. }), "{key}: {err}");
    }
    fs::write(&manifest_path, "not json\n").unwrap();
    assert!(ImportSource::open(
        bucket.path(),
        "x/",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip)
    )
    .is_err());
    // A prefix that cannot name a key matches nothing; an export id that cannot name a
    // directory is refused.
    let source = ImportSource::open(
        bucket.path(),
        "../",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    assert!(source.files().is_empty());
    let mut bad = spec(None, ExportFormat::DynamoDbJson, full());
    bad.export_id = "../x".into();
    assert!(ExportWriter::create(bucket.path(), bad, FileLimits::default()).is_err());
    let mut bad = spec(Some("a/../b"), ExportFormat::DynamoDbJson, full());
    bad.export_id = "ok".into();
    assert!(ExportWriter::create(bucket.path(), bad, FileLimits::default()).is_err());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = gzip_encoder(Vec::new());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn plain_files_bad_lines_truncated_files_and_large_items() {
    let bucket = tempfile::tempdir().unwrap();
    let dir = bucket.path().join("in");
    fs::create_dir_all(dir.join("sub")).unwrap();
    let line = |pk: &str| format!("{{\"Item\":{{\"pk\":{{\"S\":\"{pk}\"}}}}}}\n");
    // a: two good lines around a bad one and an item over 400 KB.
    let big = format!(
        "{{\"Item\":{{\"pk\":{{\"S\":\"big\"}},\"blob\":{{\"S\":\"{}\"}}}}}}\n",
        "x".repeat(410 * 1024)
    );
    let a = [
        line("a1"),
        "{\"Item\":{\"pk\":{\"N\":\"not a number\"}}}\n".to_string(),
        big,
        line("a2"),
    ]
    .concat();
    fs::write(dir.join("a.json.gz"), gzip(a.as_bytes())).unwrap();
    // b: truncated in the middle of the gzip stream.
    let b: String = (0..2000).map(|i| line(&format!("b{i}"))).collect();
    let packed = gzip(b.as_bytes());
    fs::write(dir.join("b.json.gz"), &packed[..packed.len() / 2]).unwrap();
    // c: in a subdirectory, still under the prefix.
    fs::write(dir.join("sub/c.json.gz"), gzip(line("c1").as_bytes())).unwrap();
    // Not under the prefix "in/".
    fs::write(
        bucket.path().join("other.json.gz"),
        gzip(line("z").as_bytes()),
    )
    .unwrap();

    let source = ImportSource::open(
        bucket.path(),
        "in/",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    let keys: Vec<&str> = source.files().iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["in/a.json.gz", "in/b.json.gz", "in/sub/c.json.gz"]);
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for (position, result) in source.items(Position::START) {
        match result {
            Ok(item) => loaded.push(item["pk"].clone()),
            Err(e) => errors.push((position, e)),
        }
    }
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(
        (errors[0].1.line, errors[0].1.kind),
        (2, LineErrorKind::Invalid)
    );
    assert_eq!(errors[0].1.file, "in/a.json.gz");
    assert_eq!(
        errors[0].1.message,
        "The parameter cannot be converted to a numeric value: not a number"
    );
    assert_eq!(
        (errors[1].1.line, errors[1].1.kind),
        (3, LineErrorKind::TooLarge)
    );
    assert_eq!(
        errors[1].1.message,
        "Item size has exceeded the maximum allowed size"
    );
    assert_eq!(errors[2].1.kind, LineErrorKind::Io);
    assert_eq!(errors[2].1.file, "in/b.json.gz");
    assert_eq!(errors[2].0.file, 1);
    let s = |v: &str| AttributeValue::S(v.into());
    assert_eq!(loaded[..2], [s("a1"), s("a2")]);
    assert_eq!(loaded.last(), Some(&s("c1")));
    // Everything before the cut of b was loaded, in order.
    let from_b = loaded.len() - 3;
    assert!(from_b > 0 && from_b < 2000, "{from_b}");
    assert_eq!(loaded[2 + from_b - 1], s(&format!("b{}", from_b - 1)));

    // A prefix that is part of a name matches by name.
    let source = ImportSource::open(
        bucket.path(),
        "in/a",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    assert_eq!(source.files().len(), 1);
    let source = ImportSource::open(
        bucket.path(),
        "nowhere/",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    assert!(source.files().is_empty());
}

#[test]
fn csv_files_with_header_or_header_list() {
    let bucket = tempfile::tempdir().unwrap();
    fs::write(
        bucket.path().join("1.csv"),
        "pk;n;note\nk1;1.50;\"a; b\"\nk2;;\nk3;x;y\n",
    )
    .unwrap();
    fs::write(bucket.path().join("2.csv"), "k4;4;z\n").unwrap();
    let mut options = ReadOptions::new(InputFormat::Csv, Compression::None);
    options.csv = CsvOptions::new(';', None).unwrap();
    options.key_types = [
        ("pk".to_string(), ScalarType::S),
        ("n".to_string(), ScalarType::N),
    ]
    .into();
    let source = ImportSource::open(bucket.path(), "1", options.clone()).unwrap();
    let results: Vec<_> = source.items(Position::START).collect();
    let n = |s: &str| AttributeValue::N(Number::parse(s).unwrap());
    let s = |v: &str| AttributeValue::S(v.into());
    let item1: Item = [
        ("pk".to_string(), s("k1")),
        ("n".to_string(), n("1.5")),
        ("note".to_string(), s("a; b")),
    ]
    .into();
    let item2: Item = [("pk".to_string(), s("k2"))].into();
    assert_eq!(
        results[0],
        (
            Position {
                file: 0,
                line: 2,
                index: 0
            },
            Ok(item1)
        )
    );
    assert_eq!(results[1].1, Ok(item2));
    assert_eq!(results[2].1.as_ref().unwrap_err().line, 4);
    assert_eq!(results.len(), 3);

    // With a header list, every line is data (in every file).
    options.csv = CsvOptions::new(';', Some(vec!["pk".into(), "n".into(), "note".into()])).unwrap();
    let source = ImportSource::open(bucket.path(), "", options).unwrap();
    let results: Vec<_> = source.items(Position::START).collect();
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[0].1.as_ref().unwrap_err().message,
        "The parameter cannot be converted to a numeric value: n"
    );
    assert_eq!(results[4].1.as_ref().unwrap()["n"], n("4"));
}
