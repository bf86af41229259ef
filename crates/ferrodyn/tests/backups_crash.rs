//! Backups and point-in-time recovery across crashes: kill -9 the real server binary while a
//! backup is copied, while restores load, and after acknowledged writes to a table with
//! point-in-time recovery, restart it on the same directory, and check what the design
//! promises (crates/ferrodyn-core/src/{backups,restore,pitr}.rs): an interrupted backup is
//! gone and every other backup intact; an interrupted restore continues and ends `ACTIVE`
//! with exactly the expected items, never `ACTIVE` and partial; the history is as durable as
//! the items.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrodyn_testkit::ServerProcess;
use serde_json::{json, Value};

/// Items of the large table: enough that a backup's copy and a restore's load take a while.
const BIG: usize = 120_000;

struct Server {
    proc: ServerProcess,
    url: String,
    http: reqwest::blocking::Client,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let proc = ServerProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_ferrodyn")), dir);
        let url = proc.url.clone();
        Server {
            proc,
            url,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    fn call(&self, op: &str, body: &Value) -> (u16, Value) {
        let (status, text) = ferrodyn_testkit::call(
            &self.http,
            &self.url,
            &format!("DynamoDB_20120810.{op}"),
            body.to_string(),
        )
        .unwrap_or_else(|e| panic!("{op}: {e}"));
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{op}: {e}: {text}"))
        };
        (status, v)
    }

    fn ok(&self, op: &str, body: Value) -> Value {
        let (status, v) = self.call(op, &body);
        assert_eq!(status, 200, "{op} {body}: {v}");
        v
    }

    /// The error code (`__type` after the `#`) of a request that must fail with 400.
    fn err(&self, op: &str, body: Value) -> String {
        let (status, v) = self.call(op, &body);
        assert_eq!(status, 400, "{op} {body}: {v}");
        let ty = v["__type"].as_str().unwrap_or_default();
        ty.rsplit('#').next().unwrap_or_default().to_owned()
    }

    fn status(&self, table: &str) -> String {
        let d = self.ok("DescribeTable", json!({"TableName": table}));
        d["Table"]["TableStatus"].as_str().unwrap().to_owned()
    }

    /// Waits until `table` is `ACTIVE`; returns how long that took.
    fn wait_active(&self, table: &str) -> Duration {
        let started = Instant::now();
        loop {
            let status = self.status(table);
            if status == "ACTIVE" {
                return started.elapsed();
            }
            assert_eq!(status, "CREATING", "{table}");
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{table} never became ACTIVE"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(&mut self) {
        self.proc.kill9();
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Every item of `table` (or of its index), by its whole JSON text (the map is the set).
fn scan_all(s: &Server, table: &str, index: Option<&str>) -> BTreeMap<String, Value> {
    ferrodyn_testkit::scan_items(|op, b| s.ok(op, b), table, index)
        .into_iter()
        .map(|i| (i.to_string(), i))
        .collect()
}

/// A table keyed by `pk` (S) with a global index on `g` (S).
fn create_indexed(s: &Server, name: &str) {
    s.ok(
        "CreateTable",
        json!({
            "TableName": name,
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}
            ],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "byg",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}
            }],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
}

fn big_item(i: usize) -> Value {
    json!({"pk": {"S": format!("k{i:06}")}, "g": {"S": format!("g{}", i % 97)}, "v": {"N": i.to_string()}})
}

/// Loads items `0..count` with BatchWriteItem from four threads.
fn load(url: &str, table: &str, count: usize) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let url = url.to_owned();
            let table = table.to_owned();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut i = t * 25;
                while i < count {
                    let requests: Vec<Value> = (i..(i + 25).min(count))
                        .map(|j| json!({"PutRequest": {"Item": big_item(j)}}))
                        .collect();
                    let body = json!({"RequestItems": {table.clone(): requests}});
                    let (status, text) = ferrodyn_testkit::call(
                        &http,
                        &url,
                        "DynamoDB_20120810.BatchWriteItem",
                        body.to_string(),
                    )
                    .unwrap();
                    assert_eq!(status, 200, "{text}");
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["UnprocessedItems"], json!({}), "{text}");
                    i += 100;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// The backups that ListBackups (all types) shows: ARN → status.
fn listed(s: &Server) -> BTreeMap<String, String> {
    let l = s.ok("ListBackups", json!({"BackupType": "ALL"}));
    l["BackupSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["BackupArn"].as_str().unwrap().to_owned(),
                b["BackupStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn wait_available(s: &Server, arn: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = s.ok("DescribeBackup", json!({"BackupArn": arn}));
        let details = &d["BackupDescription"]["BackupDetails"];
        if details["BackupStatus"] == "AVAILABLE" {
            return d;
        }
        assert_eq!(details["BackupStatus"], "CREATING");
        assert!(Instant::now() < deadline, "{arn} never became AVAILABLE");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The whole table and its index, for comparisons.
fn contents(s: &Server, table: &str) -> (BTreeMap<String, Value>, usize) {
    let items = scan_all(s, table, None);
    let index = scan_all(s, table, Some("byg")).len();
    (items, index)
}

#[test]
fn interrupted_backups_and_restores_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    create_indexed(&s, "big");
    let started = Instant::now();
    load(&s.url, "big", BIG);
    eprintln!(
        "loaded {BIG} items with BatchWriteItem in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    create_indexed(&s, "small");
    for i in 0..10 {
        s.ok(
            "PutItem",
            json!({"TableName": "small", "Item": big_item(i)}),
        );
    }
    let small_arn = s.ok(
        "CreateBackup",
        json!({"TableName": "small", "BackupName": "small-kept"}),
    )["BackupDetails"]["BackupArn"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_available(&s, &small_arn);

    // A whole backup of the large table, timed: the copy that the crash below interrupts.
    let started = Instant::now();
    let full = s.ok(
        "CreateBackup",
        json!({"TableName": "big", "BackupName": "big-full"}),
    );
    let full_arn = full["BackupDetails"]["BackupArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let described = wait_available(&s, &full_arn);
    let copy = started.elapsed();
    eprintln!(
        "CreateBackup of {BIG} items: AVAILABLE after {:.2} s",
        copy.as_secs_f64()
    );
    assert_eq!(
        described["BackupDescription"]["SourceTableDetails"]["ItemCount"],
        BIG
    );
    assert!(
        copy > Duration::from_millis(150),
        "the copy ({copy:?}) is too quick to be interrupted reliably: make the table larger"
    );

    // (a) kill -9 a fifth of the way into a second copy.
    let http = s.http.clone();
    let url = s.url.clone();
    let creating = std::thread::spawn(move || {
        // Answers CREATING after its short wait, or never (the server is killed first).
        let _ = ferrodyn_testkit::call(
            &http,
            &url,
            "DynamoDB_20120810.CreateBackup",
            json!({"TableName": "big", "BackupName": "interrupted"}).to_string(),
        );
    });
    let interrupted = loop {
        let found = listed(&s)
            .into_iter()
            .find(|(arn, _)| arn != &full_arn && arn != &small_arn && arn.contains(":table/big/"));
        if let Some((arn, status)) = found {
            assert_eq!(status, "CREATING");
            break arn;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // Part of the way in (at most 50 ms: the kill must land before the copy ends).
    std::thread::sleep((copy / 5).min(Duration::from_millis(50)));
    s.kill9();
    creating.join().unwrap();

    let started = Instant::now();
    let mut s = Server::start(dir.path());
    eprintln!(
        "restart after the crash: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        s.err("DescribeBackup", json!({"BackupArn": interrupted})),
        "BackupNotFoundException"
    );
    let after = listed(&s);
    assert!(!after.contains_key(&interrupted), "{after:?}");
    assert_eq!(
        after,
        BTreeMap::from([
            (full_arn.clone(), "AVAILABLE".to_owned()),
            (small_arn.clone(), "AVAILABLE".to_owned())
        ])
    );
    assert_eq!(
        s.err(
            "RestoreTableFromBackup",
            json!({"TargetTableName": "never", "BackupArn": interrupted})
        ),
        "BackupNotFoundException"
    );
    // The table is intact.
    let (before, before_index) = contents(&s, "big");
    assert_eq!(before.len(), BIG);
    assert_eq!(before_index, BIG);
    // The other backups too: a restore of the small one equals its table.
    s.ok(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "small-copy", "BackupArn": small_arn}),
    );
    s.wait_active("small-copy");
    assert_eq!(
        scan_all(&s, "small-copy", None),
        scan_all(&s, "small", None)
    );

    // (b) and (c): both kinds of restore of the large table, killed mid-load.
    s.ok(
        "UpdateContinuousBackups",
        json!({"TableName": "big", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    std::thread::sleep(Duration::from_millis(20));
    let at = now();
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    let r = s.ok(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "from-backup", "BackupArn": full_arn}),
    );
    assert_eq!(r["TableDescription"]["TableStatus"], "CREATING");
    let r = s.ok(
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "big", "TargetTableName": "from-pitr", "RestoreDateTime": at}),
    );
    assert_eq!(r["TableDescription"]["TableStatus"], "CREATING");
    // Changes after the restore point, while the loads run: not part of either restore.
    for i in 0..200 {
        s.ok(
            "PutItem",
            json!({"TableName": "big", "Item": {"pk": {"S": format!("k{i:06}")}, "g": {"S": "changed"}}}),
        );
        s.ok(
            "DeleteItem",
            json!({"TableName": "big", "Key": {"pk": {"S": format!("k{:06}", BIG - 1 - i)}}}),
        );
    }
    for table in ["from-backup", "from-pitr"] {
        assert_eq!(
            s.status(table),
            "CREATING",
            "{table} finished before the crash"
        );
        // Invisible to data operations while it loads.
        assert_eq!(
            s.err("Scan", json!({"TableName": table})),
            "ResourceNotFoundException"
        );
    }
    eprintln!(
        "killed {:.2} s into the restores",
        started.elapsed().as_secs_f64()
    );
    s.kill9();

    let s = Server::start(dir.path());
    for table in ["from-backup", "from-pitr"] {
        // Never ACTIVE and partial: the first status seen is CREATING or the finished table.
        let took = s.wait_active(table);
        eprintln!(
            "{table}: ACTIVE {:.2} s after the restart",
            took.as_secs_f64()
        );
        let (items, index) = contents(&s, table);
        assert_eq!(items.len(), BIG, "{table}");
        assert!(items == before, "{table}: items differ from the source's");
        assert_eq!(index, BIG, "{table}: index entries");
        let d = s.ok("DescribeTable", json!({"TableName": table}));
        assert_eq!(d["Table"]["RestoreSummary"]["RestoreInProgress"], false);
        // The statistics count each item once, although two runs of the load wrote it (they
        // may be partial for a while after the crash, never above the truth).
        let settle = Instant::now() + Duration::from_secs(60);
        loop {
            let d = s.ok("DescribeTable", json!({"TableName": table}));
            let count = d["Table"]["ItemCount"].as_u64().unwrap();
            if count == BIG as u64 {
                break;
            }
            assert!(count < BIG as u64, "{table}: ItemCount {count}");
            assert!(
                Instant::now() < settle,
                "{table}: ItemCount stuck at {count}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // The source kept its changes.
    let (now_items, _) = contents(&s, "big");
    assert_eq!(now_items.len(), BIG - 200);
}

/// One phase of the history test: four threads change keys `0..200` of `hist`; returns each
/// changed key's new value (`None`: deleted).
fn phase(url: &str, phase: usize) -> BTreeMap<usize, Option<usize>> {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut state = BTreeMap::new();
                for key in (t..200).step_by(4) {
                    // Every phase changes a different subset: puts, updates and deletes.
                    let (target, body, value) = match (key + phase) % 5 {
                        0 => (
                            "DeleteItem",
                            json!({"TableName": "hist", "Key": {"pk": {"S": format!("h{key}")}}}),
                            None,
                        ),
                        1 => (
                            "UpdateItem",
                            json!({"TableName": "hist", "Key": {"pk": {"S": format!("h{key}")}},
                                "UpdateExpression": "SET v = :v",
                                "ExpressionAttributeValues": {":v": {"N": (phase * 1000 + key).to_string()}}}),
                            Some(phase * 1000 + key),
                        ),
                        4 => continue, // unchanged in this phase
                        _ => (
                            "PutItem",
                            json!({"TableName": "hist", "Item": {"pk": {"S": format!("h{key}")},
                                "v": {"N": (phase * 1000 + key).to_string()}}}),
                            Some(phase * 1000 + key),
                        ),
                    };
                    let (status, text) = ferrodyn_testkit::call(
                        &http,
                        &url,
                        &format!("DynamoDB_20120810.{target}"),
                        body.to_string(),
                    )
                    .unwrap();
                    assert_eq!(status, 200, "{text}");
                    state.insert(key, value);
                }
                state
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn point_in_time_history_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path());
    s.ok(
        "CreateTable",
        json!({
            "TableName": "hist",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    s.ok(
        "UpdateContinuousBackups",
        json!({"TableName": "hist", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    // Phases of acknowledged writes from four threads; an instant between each two.
    let mut state: BTreeMap<usize, Option<usize>> = BTreeMap::new();
    let mut instants = Vec::new();
    for p in 0..4 {
        for (k, v) in phase(&s.url, p) {
            state.insert(k, v);
        }
        std::thread::sleep(Duration::from_millis(10));
        instants.push((now(), state.clone()));
        std::thread::sleep(Duration::from_millis(10));
    }
    s.kill9();

    let s = Server::start(dir.path());
    for (i, (at, expected)) in instants.iter().enumerate() {
        let target = format!("at{i}");
        s.ok(
            "RestoreTableToPointInTime",
            json!({"SourceTableName": "hist", "TargetTableName": target, "RestoreDateTime": at}),
        );
        s.wait_active(&target);
        let got: BTreeMap<usize, Option<usize>> = scan_all(&s, &target, None)
            .values()
            .map(|item| {
                let k = item["pk"]["S"].as_str().unwrap()[1..].parse().unwrap();
                let v = item["v"]["N"].as_str().unwrap().parse().unwrap();
                (k, Some(v))
            })
            .collect();
        let expected: BTreeMap<usize, Option<usize>> = expected
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(got, expected, "restore to instant {i}");
    }
    // The latest state, too: the table itself after the crash.
    let current: BTreeMap<String, Value> = scan_all(&s, "hist", None);
    let last = scan_all(&s, "at3", None);
    assert_eq!(current, last);
}

/// While a backup is being copied its table cannot be deleted (DynamoDB refuses to delete the
/// source table of a backup in progress); once it is, the backup outlives the table, complete.
#[test]
fn a_table_cannot_be_deleted_while_its_backup_is_copied() {
    const ITEMS: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    create_indexed(&s, "gone");
    load(&s.url, "gone", ITEMS);
    let expected = scan_all(&s, "gone", None);
    let http = s.http.clone();
    let url = s.url.clone();
    let creating = std::thread::spawn(move || {
        ferrodyn_testkit::call(
            &http,
            &url,
            "DynamoDB_20120810.CreateBackup",
            json!({"TableName": "gone", "BackupName": "outlives"}).to_string(),
        )
        .unwrap()
    });
    let arn = loop {
        if let Some((arn, status)) = listed(&s).into_iter().next() {
            assert_eq!(status, "CREATING");
            break arn;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (status, refused) = s.call("DeleteTable", &json!({"TableName": "gone"}));
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["__type"],
        "com.amazonaws.dynamodb.v20120810#ResourceInUseException"
    );
    assert_eq!(
        refused["message"],
        "Attempt to change a resource which is still in use: Table is being backed up: gone"
    );
    let (status, body) = creating.join().unwrap();
    assert_eq!(status, 200, "{body}");
    let d = wait_available(&s, &arn);
    s.ok("DeleteTable", json!({"TableName": "gone"}));
    assert_eq!(
        d["BackupDescription"]["SourceTableDetails"]["ItemCount"],
        ITEMS
    );
    s.ok(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "back", "BackupArn": arn}),
    );
    s.wait_active("back");
    assert!(scan_all(&s, "back", None) == expected);
}
