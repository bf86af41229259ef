//! Exports and imports on shared storage: two `ferrodyn serve --storage` nodes on one real
//! PostgreSQL; an export started on one node is described, listed and imported through the
//! other, and the imported table equals the exported one (jobs are records in the shared
//! database; the files are in the export directory both nodes use).

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use ferrodyn_testkit::ok_json as ok;
use serde_json::{json, Value};

fn items(url: &str, table: &str) -> Vec<String> {
    let mut out: Vec<String> = ferrodyn_testkit::scan_items(|op, b| ok(url, op, b), table, None)
        .iter()
        .map(Value::to_string)
        .collect();
    out.sort();
    out
}

fn until(what: &str, mut done: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_export_from_one_node_imports_through_another() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start_with(2, &["--export-dir", dir.path().to_str().unwrap()]);
    let (a, b) = (&cluster.nodes[0].url, &cluster.nodes[1].url);
    ok(
        a,
        "CreateTable",
        json!({
            "TableName": "orders",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"}
            ],
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"}
            ],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    for i in 0..300 {
        let node = if i % 2 == 0 { a } else { b };
        ok(
            node,
            "PutItem",
            json!({"TableName": "orders", "Item": {
                "pk": {"S": format!("c{}", i % 10)}, "sk": {"N": i.to_string()},
                "total": {"N": format!("{i}.25")}, "tags": {"SS": ["x", "y"]}
            }}),
        );
    }
    ok(
        a,
        "UpdateContinuousBackups",
        json!({"TableName": "orders", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    let arn = ok(a, "DescribeTable", json!({"TableName": "orders"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = items(a, "orders");

    let started = ok(
        a,
        "ExportTableToPointInTime",
        json!({"TableArn": arn, "S3Bucket": "shared", "S3Prefix": "orders", "ExportFormat": "ION"}),
    );
    let export = started["ExportDescription"]["ExportArn"]
        .as_str()
        .unwrap()
        .to_owned();
    // The other node sees the job and its end.
    let done = until("export", || {
        let d = ok(b, "DescribeExport", json!({"ExportArn": export}))["ExportDescription"].clone();
        (d["ExportStatus"] != "IN_PROGRESS").then_some(d)
    });
    assert_eq!(done["ExportStatus"], "COMPLETED", "{done}");
    assert_eq!(done["ItemCount"], 300);
    let listed = ok(b, "ListExports", json!({"TableArn": arn}));
    assert_eq!(listed["ExportSummaries"].as_array().unwrap().len(), 1);

    let started = ok(
        b,
        "ImportTable",
        json!({
            "S3BucketSource": {"S3Bucket": "shared", "S3KeyPrefix": "orders"},
            "InputFormat": "ION",
            "InputCompressionType": "GZIP",
            "TableCreationParameters": {
                "TableName": "orders-copy",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"}
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"}
                ],
                "BillingMode": "PAY_PER_REQUEST"
            }
        }),
    );
    let import = started["ImportTableDescription"]["ImportArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = until("import", || {
        let d =
            ok(a, "DescribeImport", json!({"ImportArn": import}))["ImportTableDescription"].clone();
        (d["ImportStatus"] != "IN_PROGRESS").then_some(d)
    });
    assert_eq!(done["ImportStatus"], "COMPLETED", "{done}");
    assert_eq!(done["ImportedItemCount"], 300);
    until("table", || {
        let d = ok(a, "DescribeTable", json!({"TableName": "orders-copy"}));
        (d["Table"]["TableStatus"] == "ACTIVE").then_some(d)
    });
    assert_eq!(items(a, "orders-copy"), expected);
    assert_eq!(items(b, "orders-copy"), expected);
}
