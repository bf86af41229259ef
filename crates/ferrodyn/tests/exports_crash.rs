//! Crash safety of exports and imports: kill -9 the real server binary while an export runs
//! (after the restart it is FAILED, its directory has no summary manifest, and a new export
//! completes) and while an import runs (after the restart it continues, its table stays
//! CREATING until then, and ends ACTIVE with every item).

use std::path::Path;
use std::time::{Duration, Instant};

use ferrodyn_testkit::ServerProcess;
use ferrodyn_testkit::{call_json as call, ok_json as ok};
use serde_json::{json, Value};

const ITEMS: usize = 12_000;

fn start(data: &Path, exports: &Path) -> ServerProcess {
    ServerProcess::start_with(
        Path::new(env!("CARGO_BIN_EXE_ferrodyn")),
        data,
        &["--export-dir", exports.to_str().unwrap()],
    )
}

/// A table of ITEMS items of about 4 KB each, with point-in-time recovery.
fn fill(url: &str) -> String {
    ok(
        url,
        "CreateTable",
        json!({
            "TableName": "big",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    let pad = "x".repeat(4000);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (url, pad) = (url.to_owned(), pad.clone());
            std::thread::spawn(move || {
                for chunk in (w * ITEMS / 4..(w + 1) * ITEMS / 4)
                    .collect::<Vec<_>>()
                    .chunks(25)
                {
                    let requests: Vec<Value> = chunk
                        .iter()
                        .map(|i| {
                            json!({"PutRequest": {"Item": {
                                "pk": {"S": format!("item-{i:06}")},
                                "n": {"N": i.to_string()},
                                "pad": {"S": pad}
                            }}})
                        })
                        .collect();
                    let r = ok(
                        &url,
                        "BatchWriteItem",
                        json!({"RequestItems": {"big": requests}}),
                    );
                    assert!(r["UnprocessedItems"]
                        .as_object()
                        .is_none_or(|m| m.is_empty()));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    ok(
        url,
        "UpdateContinuousBackups",
        json!({"TableName": "big", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    ok(url, "DescribeTable", json!({"TableName": "big"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn wait(url: &str, op: &str, arn_field: &str, arn: &str, desc: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = ok(url, op, json!({ arn_field: arn }))[desc].clone();
        if d[status] != "IN_PROGRESS" {
            return d;
        }
        assert!(Instant::now() < deadline, "{op} never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(url: &str, table: &str) -> u64 {
    let mut total = 0;
    let mut start: Option<Value> = None;
    loop {
        let mut body = json!({"TableName": table, "Select": "COUNT", "ConsistentRead": true});
        if let Some(k) = start.take() {
            body["ExclusiveStartKey"] = k;
        }
        let page = ok(url, "Scan", body);
        total += page["Count"].as_u64().unwrap();
        match page.get("LastEvaluatedKey") {
            Some(k) => start = Some(k.clone()),
            None => return total,
        }
    }
}

#[test]
fn exports_and_imports_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let exports = tempfile::tempdir().unwrap();
    let mut server = start(data.path(), exports.path());
    let table_arn = fill(&server.url);

    // An export killed mid-way is FAILED after the restart and left no summary manifest.
    let started = ok(
        &server.url,
        "ExportTableToPointInTime",
        json!({"TableArn": table_arn, "S3Bucket": "crash", "S3Prefix": "first"}),
    );
    let first = started["ExportDescription"]["ExportArn"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(50));
    let (_, during) = call(&server.url, "DescribeExport", json!({"ExportArn": first}));
    assert_eq!(
        during["ExportDescription"]["ExportStatus"], "IN_PROGRESS",
        "the export finished before the kill; make the table bigger"
    );
    server.kill9();
    let mut server = start(data.path(), exports.path());
    let failed =
        ok(&server.url, "DescribeExport", json!({"ExportArn": first}))["ExportDescription"].clone();
    assert_eq!(failed["ExportStatus"], "FAILED", "{failed}");
    assert!(failed["FailureMessage"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    let id = first.rsplit('/').next().unwrap();
    let summary = exports
        .path()
        .join("crash/first/AWSDynamoDB")
        .join(id)
        .join("manifest-summary.json");
    assert!(!summary.exists());

    // A new export completes.
    let started = ok(
        &server.url,
        "ExportTableToPointInTime",
        json!({"TableArn": table_arn, "S3Bucket": "crash", "S3Prefix": "second"}),
    );
    let second = started["ExportDescription"]["ExportArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = wait(
        &server.url,
        "DescribeExport",
        "ExportArn",
        &second,
        "ExportDescription",
        "ExportStatus",
    );
    assert_eq!(done["ExportStatus"], "COMPLETED", "{done}");
    assert_eq!(done["ItemCount"], ITEMS as u64);

    // An import killed mid-way continues after the restart.
    let started = ok(
        &server.url,
        "ImportTable",
        json!({
            "S3BucketSource": {"S3Bucket": "crash", "S3KeyPrefix": "second"},
            "InputFormat": "DYNAMODB_JSON",
            "InputCompressionType": "GZIP",
            "TableCreationParameters": {
                "TableName": "copy",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "BillingMode": "PAY_PER_REQUEST"
            }
        }),
    );
    let import = started["ImportTableDescription"]["ImportArn"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(100));
    let (_, during) = call(&server.url, "DescribeImport", json!({"ImportArn": import}));
    assert_eq!(
        during["ImportTableDescription"]["ImportStatus"], "IN_PROGRESS",
        "the import finished before the kill; make the table bigger"
    );
    server.kill9();
    let server = start(data.path(), exports.path());
    // Until it is done, the table is CREATING and data operations do not find it.
    let (status, d) = call(&server.url, "DescribeTable", json!({"TableName": "copy"}));
    assert_eq!(status, 200, "{d}");
    if d["Table"]["TableStatus"] == "CREATING" {
        let (status, e) = call(
            &server.url,
            "GetItem",
            json!({"TableName": "copy", "Key": {"pk": {"S": "item-000001"}}}),
        );
        assert_eq!(status, 400, "{e}");
        assert!(e["__type"]
            .as_str()
            .unwrap()
            .ends_with("ResourceNotFoundException"));
    }
    let done = wait(
        &server.url,
        "DescribeImport",
        "ImportArn",
        &import,
        "ImportTableDescription",
        "ImportStatus",
    );
    assert_eq!(done["ImportStatus"], "COMPLETED", "{done}");
    assert_eq!(done["ErrorCount"], 0);
    let d = ok(&server.url, "DescribeTable", json!({"TableName": "copy"}));
    assert_eq!(d["Table"]["TableStatus"], "ACTIVE");
    assert_eq!(count(&server.url, "copy"), ITEMS as u64);
    let item = ok(
        &server.url,
        "GetItem",
        json!({"TableName": "copy", "Key": {"pk": {"S": "item-007777"}}, "ConsistentRead": true}),
    );
    assert_eq!(item["Item"]["n"], json!({"N": "7777"}));
}
