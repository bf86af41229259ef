//! Backups and point-in-time recovery over HTTP: CreateBackup … RestoreTableFromBackup,
//! UpdateContinuousBackups … RestoreTableToPointInTime, with DynamoDB's errors; restores equal
//! the snapshot (items of every type, indexes); point-in-time restores under concurrent writes
//! equal the state at each chosen instant, checked against a recorded history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrodyn_core::EngineConfig;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::TestServer;
use serde_json::{json, Value};

/// Every scenario below runs on the in-memory engine and on the durable one (fjall, each write
/// fsynced, as `ferrodyn serve --data-dir` runs).
macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            $(#[test]
            fn $name() {
                super::$name(super::server());
            })*
        }
        mod durable {
            $(#[test]
            fn $name() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(ferrodyn_testkit::TestServer::durable(dir.path()));
            })*
        }
    };
}

on_every_engine!(
    backup_and_restore_equal_the_snapshot,
    continuous_backups_settings_and_errors,
    point_in_time_restores_equal_the_recorded_history,
    the_sdk_reads_backup_answers,
);

fn server() -> TestServer {
    TestServer::with_config(
        Arc::new(MemoryStorage::new()),
        EngineConfig {
            durability: Durability::Buffered,
            ..EngineConfig::default()
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

/// A table keyed by (p S, s N) with a GSI on g and an LSI on l.
fn create_indexed(s: &TestServer, name: &str) {
    ok(
        s,
        "CreateTable",
        json!({
            "TableName": name,
            "AttributeDefinitions": [
                {"AttributeName": "p", "AttributeType": "S"},
                {"AttributeName": "s", "AttributeType": "N"},
                {"AttributeName": "g", "AttributeType": "S"},
                {"AttributeName": "l", "AttributeType": "B"}
            ],
            "KeySchema": [
                {"AttributeName": "p", "KeyType": "HASH"},
                {"AttributeName": "s", "KeyType": "RANGE"}
            ],
            "GlobalSecondaryIndexes": [{
                "IndexName": "byg",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}
            }],
            "LocalSecondaryIndexes": [{
                "IndexName": "byl",
                "KeySchema": [
                    {"AttributeName": "p", "KeyType": "HASH"},
                    {"AttributeName": "l", "KeyType": "RANGE"}
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"}
            }],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"}
        }),
    );
}

/// An item with every attribute type (numbers to 38 digits).
fn rich_item(i: usize) -> Value {
    json!({
        "p": {"S": format!("p{}", i % 7)},
        "s": {"N": format!("{i}")},
        "g": {"S": format!("g{}", i % 3)},
        "l": {"B": "AAEC"},
        "n": {"N": "-1.2345678901234567890123456789012345678E-120"},
        "big": {"N": "99999999999999999999999999999999999999"},
        "b": {"B": "3q2+7w=="},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": ["AQ==", "Ag=="]},
        "m": {"M": {"x": {"L": [{"NULL": true}, {"BOOL": false}, {"S": ""}]}}},
        "e": {"L": []}
    })
}

/// Every item of `table`, keyed by its whole JSON text (the map is the set of items).
fn scan_all(s: &TestServer, table: &str) -> BTreeMap<String, Value> {
    ferrodyn_testkit::scan_items(|op, b| s.ok(op, b), table, None)
        .into_iter()
        .map(|i| (i.to_string(), i))
        .collect()
}

fn wait_active(s: &TestServer, table: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = ok(s, "DescribeTable", json!({"TableName": table}));
        if d["Table"]["TableStatus"] == "ACTIVE" {
            return d["Table"].clone();
        }
        assert!(Instant::now() < deadline, "{table} never became ACTIVE");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn arn_of(s: &TestServer) -> String {
    let l = ok(s, "ListBackups", json!({}));
    l["BackupSummaries"][0]["BackupArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn wait_available(s: &TestServer, arn: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = ok(s, "DescribeBackup", json!({"BackupArn": arn}));
        if d["BackupDescription"]["BackupDetails"]["BackupStatus"] == "AVAILABLE" {
            return d["BackupDescription"].clone();
        }
        assert!(Instant::now() < deadline, "backup never became AVAILABLE");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn backup_and_restore_equal_the_snapshot(s: TestServer) {
    create_indexed(&s, "src");
    for i in 0..300 {
        ok(
            &s,
            "PutItem",
            json!({"TableName": "src", "Item": rich_item(i)}),
        );
    }
    let snapshot = scan_all(&s, "src");
    let created = ok(
        &s,
        "CreateBackup",
        json!({"TableName": "src", "BackupName": "first"}),
    );
    let arn = created["BackupDetails"]["BackupArn"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(arn.contains(":table/src/backup/"), "{arn}");
    assert_eq!(created["BackupDetails"]["BackupName"], "first");
    assert_eq!(created["BackupDetails"]["BackupType"], "USER");
    // Writes after the backup are not in it.
    ok(
        &s,
        "DeleteItem",
        json!({"TableName": "src", "Key": {"p": {"S": "p0"}, "s": {"N": "0"}}}),
    );
    ok(
        &s,
        "PutItem",
        json!({"TableName": "src", "Item": rich_item(1000)}),
    );

    let desc = wait_available(&s, &arn);
    assert_eq!(desc["SourceTableDetails"]["TableName"], "src");
    assert_eq!(desc["SourceTableDetails"]["ItemCount"], 300);
    assert_eq!(desc["SourceTableDetails"]["BillingMode"], "PAY_PER_REQUEST");
    let features = &desc["SourceTableFeatureDetails"];
    assert_eq!(features["GlobalSecondaryIndexes"][0]["IndexName"], "byg");
    assert_eq!(features["LocalSecondaryIndexes"][0]["IndexName"], "byl");
    assert_eq!(features["StreamDescription"]["StreamViewType"], "NEW_IMAGE");
    assert!(desc["BackupDetails"]["BackupSizeBytes"].as_u64().unwrap() > 0);

    // Listing: by table, by type, by time, paged.
    let list = ok(&s, "ListBackups", json!({"TableName": "src"}));
    assert_eq!(list["BackupSummaries"].as_array().unwrap().len(), 1);
    assert_eq!(list["BackupSummaries"][0]["BackupArn"], arn.as_str());
    let none = ok(&s, "ListBackups", json!({"TableName": "other"}));
    assert!(none["BackupSummaries"].as_array().unwrap().is_empty());
    let system = ok(&s, "ListBackups", json!({"BackupType": "SYSTEM"}));
    assert!(system["BackupSummaries"].as_array().unwrap().is_empty());
    let later = ok(
        &s,
        "ListBackups",
        json!({"TimeRangeLowerBound": now() + 60.0}),
    );
    assert!(later["BackupSummaries"].as_array().unwrap().is_empty());
    let second = ok(
        &s,
        "CreateBackup",
        json!({"TableName": "src", "BackupName": "second"}),
    );
    let page = ok(&s, "ListBackups", json!({"Limit": 1}));
    assert_eq!(page["BackupSummaries"].as_array().unwrap().len(), 1);
    let next = page["LastEvaluatedBackupArn"].as_str().unwrap().to_owned();
    let page2 = ok(
        &s,
        "ListBackups",
        json!({"Limit": 1, "ExclusiveStartBackupArn": next}),
    );
    assert_eq!(
        page2["BackupSummaries"][0]["BackupArn"],
        second["BackupDetails"]["BackupArn"]
    );

    // Restore: CREATING at first, then every item of the snapshot, indexes included.
    let restored = ok(
        &s,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "copy", "BackupArn": arn}),
    );
    let td = &restored["TableDescription"];
    assert_eq!(td["RestoreSummary"]["SourceBackupArn"], arn.as_str());
    assert_eq!(td["RestoreSummary"]["RestoreInProgress"], true);
    let active = wait_active(&s, "copy");
    assert_eq!(active["RestoreSummary"]["RestoreInProgress"], false);
    // Streams are not restored (DynamoDB: set them up again on the new table).
    assert!(active.get("StreamSpecification").is_none());
    assert_eq!(active["GlobalSecondaryIndexes"][0]["IndexName"], "byg");
    assert_eq!(scan_all(&s, "copy"), snapshot);
    let by_g = ok(
        &s,
        "Query",
        json!({"TableName": "copy", "IndexName": "byg",
               "KeyConditionExpression": "g = :g",
               "ExpressionAttributeValues": {":g": {"S": "g1"}}, "Select": "COUNT"}),
    );
    assert_eq!(by_g["Count"], 100);
    let by_l = ok(
        &s,
        "Query",
        json!({"TableName": "copy", "IndexName": "byl",
               "KeyConditionExpression": "p = :p",
               "ExpressionAttributeValues": {":p": {"S": "p3"}}, "Select": "COUNT"}),
    );
    let in_p3 = snapshot.values().filter(|i| i["p"]["S"] == "p3").count();
    assert_eq!(by_l["Count"], in_p3);

    // Overrides: no GSI, provisioned billing.
    ok(
        &s,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "slim", "BackupArn": arn,
               "GlobalSecondaryIndexOverride": [],
               "BillingModeOverride": "PROVISIONED",
               "ProvisionedThroughputOverride": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 6}}),
    );
    let slim = wait_active(&s, "slim");
    assert!(slim.get("GlobalSecondaryIndexes").is_none());
    assert_eq!(slim["ProvisionedThroughput"]["WriteCapacityUnits"], 6);
    assert_eq!(scan_all(&s, "slim").len(), 300);

    // Errors.
    let (code, msg) = err(
        &s,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "copy", "BackupArn": arn}),
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("TableAlreadyExistsException", "Table already exists: copy")
    );
    let missing = format!(
        "{}/backup/00000000000000-00000000",
        &arn[..arn.find("/backup/").unwrap()]
    );
    let (code, _) = err(&s, "DescribeBackup", json!({"BackupArn": missing}));
    assert_eq!(code, "BackupNotFoundException");
    let (code, _) = err(
        &s,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "xxx", "BackupArn": "arn:aws:dynamodb:us-east-1:123456789012:table/tbl/backup/01700000000000-abcdef12"}),
    );
    assert_eq!(code, "BackupNotFoundException");
    let (code, msg) = err(
        &s,
        "CreateBackup",
        json!({"TableName": "nope", "BackupName": "bk1"}),
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("TableNotFoundException", "Table not found: nope")
    );

    // Backups outlive their table; deleting one removes it.
    ok(&s, "DeleteTable", json!({"TableName": "src"}));
    wait_available(&s, &arn);
    let deleted = ok(&s, "DeleteBackup", json!({"BackupArn": arn}));
    assert_eq!(
        deleted["BackupDescription"]["BackupDetails"]["BackupStatus"],
        "DELETED"
    );
    let (code, _) = err(&s, "DescribeBackup", json!({"BackupArn": arn}));
    assert_eq!(code, "BackupNotFoundException");
}

fn continuous_backups_settings_and_errors(s: TestServer) {
    create_indexed(&s, "tbl");
    let d = ok(&s, "DescribeContinuousBackups", json!({"TableName": "tbl"}));
    assert_eq!(
        d["ContinuousBackupsDescription"],
        json!({"ContinuousBackupsStatus": "DISABLED",
               "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}})
    );
    let (code, _) = err(
        &s,
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "tbl", "TargetTableName": "rst", "UseLatestRestorableTime": true}),
    );
    assert_eq!(code, "PointInTimeRecoveryUnavailableException");
    let (code, _) = err(
        &s,
        "UpdateContinuousBackups",
        json!({"TableName": "tbl", "PointInTimeRecoverySpecification":
               {"PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 36}}),
    );
    assert_eq!(code, "ValidationException");
    let (code, msg) = err(
        &s,
        "UpdateContinuousBackups",
        json!({"TableName": "nope", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("TableNotFoundException", "Table not found: nope")
    );

    let before = now();
    let on = ok(
        &s,
        "UpdateContinuousBackups",
        json!({"TableName": "tbl", "PointInTimeRecoverySpecification":
               {"PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 7}}),
    );
    let pitr = &on["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"];
    assert_eq!(
        on["ContinuousBackupsDescription"]["ContinuousBackupsStatus"],
        "ENABLED"
    );
    assert_eq!(pitr["PointInTimeRecoveryStatus"], "ENABLED");
    assert_eq!(pitr["RecoveryPeriodInDays"], 7);
    let earliest = pitr["EarliestRestorableDateTime"].as_f64().unwrap();
    assert!(earliest >= before - 1.0 && earliest <= now() + 1.0);

    // Outside the window.
    let (code, _) = err(
        &s,
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "tbl", "TargetTableName": "rst", "RestoreDateTime": earliest - 3600.0}),
    );
    assert_eq!(code, "InvalidRestoreTimeException");
    let (code, _) = err(
        &s,
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "tbl", "TargetTableName": "rst", "RestoreDateTime": now() + 3600.0}),
    );
    assert_eq!(code, "InvalidRestoreTimeException");
    let (code, _) = err(
        &s,
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "gone", "TargetTableName": "rst", "UseLatestRestorableTime": true}),
    );
    assert_eq!(code, "TableNotFoundException");

    // Disabling drops the window; the table keeps working.
    let off = ok(
        &s,
        "UpdateContinuousBackups",
        json!({"TableName": "tbl", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": false}}),
    );
    assert_eq!(
        off["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"],
        json!({"PointInTimeRecoveryStatus": "DISABLED"})
    );
    ok(
        &s,
        "PutItem",
        json!({"TableName": "tbl", "Item": rich_item(1)}),
    );
}

/// One write of the recorded history: the item's value from `sent` on (at the latest from
/// `acked`); `None` is a deletion.
struct Write {
    key: usize,
    value: Option<String>,
    sent: f64,
    acked: f64,
}

fn point_in_time_restores_equal_the_recorded_history(s: TestServer) {
    let s = Arc::new(s);
    ok(
        &s,
        "CreateTable",
        json!({
            "TableName": "hist",
            "AttributeDefinitions": [
                {"AttributeName": "k", "AttributeType": "S"},
                {"AttributeName": "v", "AttributeType": "S"}
            ],
            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "byv",
                "KeySchema": [{"AttributeName": "v", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}
            }],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    // Items written before recovery was enabled are part of every restore.
    for k in 0..20 {
        ok(
            &s,
            "PutItem",
            json!({"TableName": "hist", "Item": {"k": {"S": format!("k{k}")}, "v": {"S": "initial"}}}),
        );
    }
    ok(
        &s,
        "UpdateContinuousBackups",
        json!({"TableName": "hist", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    let start = now();
    // Four writers on disjoint keys (5 each), puts and deletes, for about 1.5 s.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut log = Vec::new();
                let mut n = 0usize;
                let until = Instant::now() + Duration::from_millis(1500);
                while Instant::now() < until {
                    let key = w * 5 + n % 5;
                    let delete = n % 7 == 3;
                    let value = format!("w{w}-{n}");
                    let sent = now();
                    if delete {
                        ok(&s, "DeleteItem", json!({"TableName": "hist", "Key": {"k": {"S": format!("k{key}")}}}));
                    } else {
                        ok(&s, "PutItem", json!({"TableName": "hist", "Item": {"k": {"S": format!("k{key}")}, "v": {"S": value}}}));
                    }
                    let acked = now();
                    log.push(Write { key, value: (!delete).then_some(value), sent, acked });
                    n += 1;
                    std::thread::sleep(Duration::from_millis(3));
                }
                log
            })
        })
        .collect();
    // Choose instants while the writers run.
    let mut instants = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(250));
        instants.push(now());
    }
    let log: Vec<Write> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(log.len() > 100, "only {} writes", log.len());

    for (i, at) in instants.iter().enumerate() {
        let target = format!("at{i}");
        ok(
            &s,
            "RestoreTableToPointInTime",
            json!({"SourceTableName": "hist", "TargetTableName": target, "RestoreDateTime": at}),
        );
        wait_active(&s, &target);
        let got: BTreeMap<usize, Option<String>> = scan_all(&s, &target)
            .values()
            .map(|item| {
                let k: usize = item["k"]["S"].as_str().unwrap()[1..].parse().unwrap();
                (k, item["v"]["S"].as_str().map(str::to_owned))
            })
            .collect();
        for key in 0..20 {
            // The writes of this key, in order; the value at `at` is that of the last write
            // acknowledged by then, or of a write in flight at `at`.
            let writes: Vec<&Write> = log.iter().filter(|w| w.key == key).collect();
            let settled = writes
                .iter()
                .rev()
                .find(|w| w.acked <= *at)
                .map_or(Some("initial".to_owned()), |w| w.value.clone());
            let in_flight: Vec<Option<String>> = writes
                .iter()
                .filter(|w| w.sent <= *at && w.acked > *at)
                .map(|w| w.value.clone())
                .collect();
            let actual = got.get(&key).cloned().flatten();
            assert!(
                actual == settled || in_flight.contains(&actual),
                "key {key} at {at} (+{:.3}s): restored {actual:?}, expected {settled:?} or one of {in_flight:?}",
                at - start
            );
        }
        // The restored index matches the restored items.
        let count = ok(
            &s,
            "Scan",
            json!({"TableName": target, "IndexName": "byv", "Select": "COUNT"}),
        );
        assert_eq!(count["Count"].as_u64().unwrap() as usize, got.len());
    }

    // UseLatestRestorableTime: the table as it is now.
    ok(
        &s,
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "hist", "TargetTableName": "latest", "UseLatestRestorableTime": true}),
    );
    wait_active(&s, "latest");
    let strip = |m: BTreeMap<String, Value>| m.into_values().collect::<Vec<_>>();
    assert_eq!(strip(scan_all(&s, "latest")), strip(scan_all(&s, "hist")));

    // Deleting the table keeps a system backup of it.
    ok(&s, "DeleteTable", json!({"TableName": "hist"}));
    let system = ok(&s, "ListBackups", json!({"BackupType": "SYSTEM"}));
    let summaries = system["BackupSummaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0]["BackupName"], "hist$DeletedTableBackup");
    assert!(summaries[0]["BackupExpiryDateTime"].as_f64().unwrap() > now() + 34.0 * 86400.0);
    let arn = summaries[0]["BackupArn"].as_str().unwrap().to_owned();
    ok(
        &s,
        "RestoreTableFromBackup",
        json!({"TargetTableName": "hist2", "BackupArn": arn}),
    );
    wait_active(&s, "hist2");
    assert_eq!(strip(scan_all(&s, "hist2")), strip(scan_all(&s, "latest")));
}

fn the_sdk_reads_backup_answers(s: TestServer) {
    create_indexed(&s, "tbl");
    ok(
        &s,
        "PutItem",
        json!({"TableName": "tbl", "Item": rich_item(1)}),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = s.client();
        let b = c
            .create_backup()
            .table_name("tbl")
            .backup_name("sdk")
            .send()
            .await
            .unwrap();
        let arn = b.backup_details().unwrap().backup_arn().to_owned();
        let d = c.describe_backup().backup_arn(&arn).send().await.unwrap();
        let desc = d.backup_description().unwrap();
        assert_eq!(desc.source_table_details().unwrap().table_name(), "tbl");
        let l = c.list_backups().send().await.unwrap();
        assert_eq!(l.backup_summaries().len(), 1);
        c.update_continuous_backups()
            .table_name("tbl")
            .point_in_time_recovery_specification(
                aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let cb = c
            .describe_continuous_backups()
            .table_name("tbl")
            .send()
            .await
            .unwrap();
        let pitr = cb
            .continuous_backups_description()
            .unwrap()
            .point_in_time_recovery_description()
            .unwrap();
        assert!(pitr.earliest_restorable_date_time().is_some());
        let r = c
            .restore_table_to_point_in_time()
            .source_table_name("tbl")
            .target_table_name("rst")
            .use_latest_restorable_time(true)
            .send()
            .await
            .unwrap();
        assert!(r.table_description().unwrap().restore_summary().is_some());
        c.restore_table_from_backup()
            .backup_arn(&arn)
            .target_table_name("rst2")
            .send()
            .await
            .unwrap();
    });
    wait_active(&s, "rst2");
    ok(&s, "DeleteBackup", json!({"BackupArn": arn_of(&s)}));
}
