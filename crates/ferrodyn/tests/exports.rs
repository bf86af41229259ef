//! ExportTableToPointInTime / ImportTable over HTTP: full exports in DynamoDB JSON and Ion
//! round-trip exactly through ImportTable (every attribute type, numbers to 38 digits),
//! incremental exports hold each changed item's old and new images, CSV imports count bad
//! lines and load the rest, and DynamoDB's errors.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrodyn_core::EngineConfig;
use ferrodyn_dataio::{Compression, ImportSource, InputFormat, Position, ReadOptions, Record};
use ferrodyn_exchange::ExchangeConfig;
use ferrodyn_server::ServerOptions;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::TestServer;
use serde_json::{json, Value};

fn server(dir: &Path) -> TestServer {
    let mut exchange = ExchangeConfig::new(dir);
    exchange.min_incremental = Duration::ZERO;
    TestServer::with_options(
        Arc::new(MemoryStorage::new()),
        EngineConfig {
            durability: Durability::Buffered,
            ..EngineConfig::default()
        },
        ServerOptions {
            exchange: Some(exchange),
            ..ServerOptions::default()
        },
    )
}

fn ok(s: &TestServer, op: &str, body: Value) -> Value {
    s.ok(op, body)
}

fn err(s: &TestServer, op: &str, body: Value) -> (String, String) {
    s.err(op, body)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn create(s: &TestServer, name: &str) {
    ok(
        s,
        "CreateTable",
        json!({
            "TableName": name,
            "AttributeDefinitions": [
                {"AttributeName": "p", "AttributeType": "S"},
                {"AttributeName": "s", "AttributeType": "N"}
            ],
            "KeySchema": [
                {"AttributeName": "p", "KeyType": "HASH"},
                {"AttributeName": "s", "KeyType": "RANGE"}
            ],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
}

fn pitr(s: &TestServer, name: &str) {
    ok(
        s,
        "UpdateContinuousBackups",
        json!({"TableName": name, "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
}

fn rich_item(i: usize) -> Value {
    json!({
        "p": {"S": format!("p{}", i % 5)},
        "s": {"N": format!("{i}")},
        "n": {"N": "-1.2345678901234567890123456789012345678E-120"},
        "big": {"N": "99999999999999999999999999999999999999"},
        "b": {"B": "3q2+7w=="},
        "ss": {"SS": ["a", "b\u{e9}\n\"q\""]},
        "ns": {"NS": ["1", "2.5", "-0.000001"]},
        "bs": {"BS": ["AQ==", "Ag=="]},
        "m": {"M": {"x": {"L": [{"NULL": true}, {"BOOL": false}, {"S": ""}, {"M": {}}]}}},
        "e": {"L": []},
        "t": {"BOOL": true}
    })
}

fn scan_all(s: &TestServer, table: &str) -> Vec<Value> {
    let mut out = ferrodyn_testkit::scan_items(|op, b| s.ok(op, b), table, None);
    out.sort_by_key(|v| v.to_string());
    out
}

fn wait_export(s: &TestServer, arn: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = ok(s, "DescribeExport", json!({"ExportArn": arn}))["ExportDescription"].clone();
        if d["ExportStatus"] != "IN_PROGRESS" {
            return d;
        }
        assert!(Instant::now() < deadline, "export never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_import(s: &TestServer, arn: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d =
            ok(s, "DescribeImport", json!({"ImportArn": arn}))["ImportTableDescription"].clone();
        if d["ImportStatus"] != "IN_PROGRESS" {
            return d;
        }
        assert!(Instant::now() < deadline, "import never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn import(
    s: &TestServer,
    table: &str,
    bucket: &str,
    prefix: &str,
    format: &str,
    extra: Value,
) -> Value {
    let mut body = json!({
        "S3BucketSource": {"S3Bucket": bucket, "S3KeyPrefix": prefix},
        "InputFormat": format,
        "InputCompressionType": if format == "CSV" { "NONE" } else { "GZIP" },
        "TableCreationParameters": {
            "TableName": table,
            "AttributeDefinitions": [
                {"AttributeName": "p", "AttributeType": "S"},
                {"AttributeName": "s", "AttributeType": "N"}
            ],
            "KeySchema": [
                {"AttributeName": "p", "KeyType": "HASH"},
                {"AttributeName": "s", "KeyType": "RANGE"}
            ],
            "BillingMode": "PAY_PER_REQUEST"
        }
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let started = ok(s, "ImportTable", body);
    let d = &started["ImportTableDescription"];
    assert_eq!(d["ImportStatus"], "IN_PROGRESS");
    let arn = d["ImportArn"].as_str().unwrap().to_owned();
    assert!(arn.contains(&format!(":table/{table}/import/")), "{arn}");
    wait_import(s, &arn)
}

#[test]
fn full_exports_round_trip_through_imports_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    create(&s, "src");
    for i in 0..1200 {
        ok(
            &s,
            "PutItem",
            json!({"TableName": "src", "Item": rich_item(i)}),
        );
    }
    let arn = ok(&s, "DescribeTable", json!({"TableName": "src"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, msg) = err(
        &s,
        "ExportTableToPointInTime",
        json!({"TableArn": arn, "S3Bucket": "bucket-a"}),
    );
    assert_eq!(code, "PointInTimeRecoveryUnavailableException", "{msg}");
    pitr(&s, "src");
    let expected = scan_all(&s, "src");
    let at = now();
    // Changes after the export time are not exported.
    ok(
        &s,
        "PutItem",
        json!({"TableName": "src", "Item": rich_item(5000)}),
    );

    for (format, prefix) in [("DYNAMODB_JSON", "json/run1"), ("ION", "ion/run1")] {
        let started = ok(
            &s,
            "ExportTableToPointInTime",
            json!({"TableArn": arn, "S3Bucket": "bucket-a", "S3Prefix": prefix,
                   "ExportFormat": format, "ExportTime": at}),
        );
        let d = &started["ExportDescription"];
        assert_eq!(d["ExportStatus"], "IN_PROGRESS");
        assert_eq!(d["ExportType"], "FULL_EXPORT");
        let export_arn = d["ExportArn"].as_str().unwrap().to_owned();
        assert!(export_arn.starts_with(&format!("{arn}/export/")));
        let done = wait_export(&s, &export_arn);
        assert_eq!(done["ExportStatus"], "COMPLETED", "{done}");
        assert_eq!(done["ItemCount"], 1200);
        assert_eq!(done["ExportFormat"], format);
        let manifest = done["ExportManifest"].as_str().unwrap();
        assert!(
            manifest.starts_with(&format!("{prefix}/AWSDynamoDB/")),
            "{manifest}"
        );
        assert!(dir.path().join("bucket-a").join(manifest).is_file());

        let target = format!("from-{}", format.to_lowercase().replace('_', "-"));
        let imported = import(&s, &target, "bucket-a", prefix, format, json!({}));
        assert_eq!(imported["ImportStatus"], "COMPLETED", "{imported}");
        assert_eq!(imported["ImportedItemCount"], 1200);
        assert_eq!(imported["ErrorCount"], 0);
        assert_eq!(scan_all(&s, &target), expected, "{format}");
    }

    let list = ok(&s, "ListExports", json!({"TableArn": arn, "MaxResults": 1}));
    assert_eq!(list["ExportSummaries"].as_array().unwrap().len(), 1);
    let next = list["NextToken"].as_str().unwrap();
    let list2 = ok(
        &s,
        "ListExports",
        json!({"TableArn": arn, "NextToken": next}),
    );
    assert_eq!(list2["ExportSummaries"].as_array().unwrap().len(), 1);
    assert!(list2.get("NextToken").is_none());
    let imports = ok(&s, "ListImports", json!({}));
    assert_eq!(imports["ImportSummaryList"].as_array().unwrap().len(), 2);

    // Errors.
    let (code, _) = err(
        &s,
        "DescribeExport",
        json!({"ExportArn": format!("{arn}/export/01700000000000-00000000")}),
    );
    assert_eq!(code, "ExportNotFoundException");
    let (code, _) = err(
        &s,
        "DescribeImport",
        json!({"ImportArn": format!("{arn}/import/01700000000000-00000000")}),
    );
    assert_eq!(code, "ImportNotFoundException");
    let (code, _) = err(
        &s,
        "ExportTableToPointInTime",
        json!({"TableArn": arn, "S3Bucket": "bucket-a", "ExportTime": now() - 86400.0}),
    );
    assert_eq!(code, "InvalidExportTimeException");
    let r = s.raw(
        "ImportTable",
        &json!({
            "S3BucketSource": {"S3Bucket": "bucket-a", "S3KeyPrefix": "json/run1"},
            "InputFormat": "DYNAMODB_JSON",
            "InputCompressionType": "GZIP",
            "TableCreationParameters": {
                "TableName": "src",
                "AttributeDefinitions": [{"AttributeName": "p", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST"
            }
        })
        .to_string(),
    );
    assert_eq!(
        (r.status, r.error_code()),
        (400, "ResourceInUseException".to_owned())
    );

    // An import from a prefix with nothing under it fails and leaves no table.
    let failed = import(
        &s,
        "nothing",
        "bucket-a",
        "no/such/prefix",
        "DYNAMODB_JSON",
        json!({}),
    );
    assert_eq!(failed["ImportStatus"], "FAILED");
    assert!(failed["FailureMessage"].as_str().is_some());
    let (code, _) = err(&s, "DescribeTable", json!({"TableName": "nothing"}));
    assert_eq!(code, "ResourceNotFoundException");
}

#[test]
fn incremental_exports_hold_old_and_new_images() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    create(&s, "inc");
    let put = |i: usize, v: &str| {
        ok(
            &s,
            "PutItem",
            json!({"TableName": "inc", "Item": {"p": {"S": "k"}, "s": {"N": i.to_string()}, "v": {"S": v}}}),
        );
    };
    put(1, "before");
    put(2, "before");
    put(3, "before");
    pitr(&s, "inc");
    std::thread::sleep(Duration::from_millis(20));
    let from = now();
    std::thread::sleep(Duration::from_millis(20));
    put(1, "changed");
    ok(
        &s,
        "DeleteItem",
        json!({"TableName": "inc", "Key": {"p": {"S": "k"}, "s": {"N": "2"}}}),
    );
    put(4, "new");
    std::thread::sleep(Duration::from_millis(20));
    let to = now();
    std::thread::sleep(Duration::from_millis(20));
    put(3, "after the period");
    let arn = ok(&s, "DescribeTable", json!({"TableName": "inc"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = ok(
        &s,
        "ExportTableToPointInTime",
        json!({"TableArn": arn, "S3Bucket": "bucket-i", "S3Prefix": "inc",
               "ExportType": "INCREMENTAL_EXPORT",
               "IncrementalExportSpecification": {"ExportFromTime": from, "ExportToTime": to,
                                                  "ExportViewType": "NEW_AND_OLD_IMAGES"}}),
    );
    let done = wait_export(
        &s,
        started["ExportDescription"]["ExportArn"].as_str().unwrap(),
    );
    assert_eq!(done["ExportStatus"], "COMPLETED", "{done}");
    assert_eq!(done["ExportType"], "INCREMENTAL_EXPORT");
    assert_eq!(done["ItemCount"], 3);
    assert_eq!(
        done["IncrementalExportSpecification"]["ExportViewType"],
        "NEW_AND_OLD_IMAGES"
    );

    let source = ImportSource::open(
        &dir.path().join("bucket-i"),
        "inc",
        ReadOptions::new(InputFormat::DynamoDbJson, Compression::Gzip),
    )
    .unwrap();
    let mut changes: Vec<(String, Option<String>, Option<String>)> = source
        .records(Position::START)
        .map(|(_, r)| match r.unwrap() {
            Record::Change(c) => {
                let v = |i: &Option<ferrodyn_model::Item>| {
                    i.as_ref().and_then(|i| match i.get("v") {
                        Some(ferrodyn_model::AttributeValue::S(s)) => Some(s.clone()),
                        _ => None,
                    })
                };
                let key = match c.keys.get("s") {
                    Some(ferrodyn_model::AttributeValue::N(n)) => n.to_string(),
                    other => panic!("key {other:?}"),
                };
                assert!(c.write_timestamp_micros as f64 / 1e6 >= from);
                (key, v(&c.old_image), v(&c.new_image))
            }
            other => panic!("not a change: {other:?}"),
        })
        .collect();
    changes.sort();
    assert_eq!(
        changes,
        vec![
            ("1".into(), Some("before".into()), Some("changed".into())),
            ("2".into(), Some("before".into()), None),
            ("4".into(), None, Some("new".into())),
        ]
    );
}

#[test]
fn csv_imports_count_bad_lines_and_load_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path());
    let data = dir.path().join("bucket-c").join("csv");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("part-1.csv"),
        "p,s,name,note\nA,1,first,\"with, comma\"\nA,2,second,plain\n,3,missing key,x\nB,not-a-number,bad,x\n",
    )
    .unwrap();
    std::fs::write(data.join("part-2.csv"), "p,s,name\nC,10,third\n").unwrap();
    let done = import(&s, "csvtable", "bucket-c", "csv/", "CSV", json!({}));
    assert_eq!(done["ImportStatus"], "COMPLETED", "{done}");
    assert_eq!(done["ErrorCount"], 2);
    assert_eq!(done["ImportedItemCount"], 3);
    assert_eq!(done["ProcessedItemCount"], 5);
    let items = scan_all(&s, "csvtable");
    assert_eq!(items.len(), 3);
    let first = items.iter().find(|i| i["s"]["N"] == "1").unwrap();
    assert_eq!(first["note"], json!({"S": "with, comma"}));
    assert_eq!(first["p"], json!({"S": "A"}));

    // HeaderList and another delimiter.
    std::fs::write(data.join("semi.txt"), "D;20;x\n").unwrap();
    let done = import(
        &s,
        "csvsemi",
        "bucket-c",
        "csv/semi",
        "CSV",
        json!({"InputFormatOptions": {"Csv": {"Delimiter": ";", "HeaderList": ["p", "s", "name"]}}}),
    );
    assert_eq!(done["ImportStatus"], "COMPLETED", "{done}");
    assert_eq!(done["ImportedItemCount"], 1);
    assert_eq!(
        done["InputFormatOptions"],
        json!({"Csv": {"Delimiter": ";", "HeaderList": ["p", "s", "name"]}})
    );
    assert_eq!(scan_all(&s, "csvsemi")[0]["name"], json!({"S": "x"}));
}
