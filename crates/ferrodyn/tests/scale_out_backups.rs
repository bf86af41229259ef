//! Backups and point-in-time recovery on the shared (PostgreSQL) engine, with two real nodes:
//! what one node makes, the other describes, lists and restores; a point-in-time restore
//! through one node sees the writes of both; and work whose node dies is finished (restores,
//! run by the holder of the background lease) or removed (backups whose copier stopped
//! reporting, after the stale period) by the survivor.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Cluster, Node};
use serde_json::{json, Value};

/// Short periods, so the tests need not wait for the defaults: TTL/backup upkeep every
/// 0.2 s, a backup without progress for 3 s is abandoned.
const FLAGS: [&str; 4] = ["--ttl-interval", "0.2", "--backup-stale-secs", "3"];

struct Http {
    url: String,
    http: reqwest::blocking::Client,
}

impl Http {
    fn new(node: &Node) -> Http {
        Http {
            url: node.url.clone(),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn call(&self, op: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let (status, text) = ferrodyn_testkit::call(
            &self.http,
            &self.url,
            &format!("DynamoDB_20120810.{op}"),
            body.to_string(),
        )?;
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{op}: {e}: {text}"))
        };
        Ok((status, v))
    }

    fn ok(&self, op: &str, body: Value) -> Value {
        let (status, v) = self.call(op, &body).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(status, 200, "{op} {body}: {v}");
        v
    }

    fn err(&self, op: &str, body: Value) -> String {
        let (status, v) = self.call(op, &body).unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(status, 400, "{op} {body}: {v}");
        let ty = v["__type"].as_str().unwrap_or_default();
        ty.rsplit('#').next().unwrap_or_default().to_owned()
    }

    fn status(&self, table: &str) -> String {
        let d = self.ok("DescribeTable", json!({"TableName": table}));
        d["Table"]["TableStatus"].as_str().unwrap().to_owned()
    }

    /// Waits until `table` is `ACTIVE` (it must be `CREATING` until then).
    fn wait_active(&self, table: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let status = self.status(table);
            if status == "ACTIVE" {
                return started.elapsed();
            }
            assert_eq!(status, "CREATING", "{table}");
            assert!(
                started.elapsed() < limit,
                "{table} not ACTIVE after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_available(&self, arn: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let d = self.ok("DescribeBackup", json!({"BackupArn": arn}));
            if d["BackupDescription"]["BackupDetails"]["BackupStatus"] == "AVAILABLE" {
                return d;
            }
            assert!(Instant::now() < deadline, "{arn} never became AVAILABLE");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// ListBackups (all types): ARN → (name, status, type).
    fn listed(&self) -> BTreeMap<String, (String, String, String)> {
        let l = self.ok("ListBackups", json!({"BackupType": "ALL"}));
        l["BackupSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let f = |n: &str| b[n].as_str().unwrap().to_owned();
                (
                    f("BackupArn"),
                    (f("BackupName"), f("BackupStatus"), f("BackupType")),
                )
            })
            .collect()
    }

    /// Every item of `table` (or of its index), by its whole JSON text.
    fn scan_all(&self, table: &str, index: Option<&str>) -> BTreeMap<String, Value> {
        ferrodyn_testkit::scan_items(|op, b| self.ok(op, b), table, index)
            .into_iter()
            .map(|i| (i.to_string(), i))
            .collect()
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A table keyed by `pk` (S) with a global index on `g` (S).
fn create_indexed(c: &Http, name: &str) {
    c.ok(
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

/// Loads `count` items with BatchWriteItem, half through each node.
fn load(nodes: &[&Http], table: &str, count: usize) {
    std::thread::scope(|scope| {
        for (t, node) in nodes.iter().enumerate() {
            let step = 25 * nodes.len();
            scope.spawn(move || {
                let mut i = t * 25;
                while i < count {
                    let requests: Vec<Value> = (i..(i + 25).min(count))
                        .map(|j| json!({"PutRequest": {"Item": {"pk": {"S": format!("k{j:06}")}, "g": {"S": format!("g{}", j % 97)}, "v": {"N": j.to_string()}}}}))
                        .collect();
                    let v = node.ok(
                        "BatchWriteItem",
                        json!({"RequestItems": {table: requests}}),
                    );
                    assert_eq!(v["UnprocessedItems"], json!({}));
                    i += step;
                }
            });
        }
    });
}

/// One phase of writes to `hist`: node `a` changes the even keys, `b` the odd ones, at once;
/// returns each changed key's new value (`None`: deleted).
fn phase(a: &Http, b: &Http, p: usize) -> BTreeMap<usize, Option<usize>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = [a, b]
            .into_iter()
            .enumerate()
            .map(|(side, node)| {
                scope.spawn(move || {
                    let mut state = BTreeMap::new();
                    for key in (side..60).step_by(2) {
                        let value = p * 1000 + key;
                        let k = json!({"S": format!("h{key}")});
                        match (key / 2 + p) % 4 {
                            0 => {
                                node.ok("DeleteItem", json!({"TableName": "hist", "Key": {"pk": k}}));
                                state.insert(key, None);
                            }
                            1 => continue,
                            _ => {
                                node.ok("PutItem", json!({"TableName": "hist", "Item": {"pk": k, "v": {"N": value.to_string()}}}));
                                state.insert(key, Some(value));
                            }
                        }
                    }
                    state
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn backups_and_point_in_time_recovery_across_nodes() {
    let cluster = Cluster::start_with(2, &FLAGS);
    let (a, b) = (Http::new(&cluster.nodes[0]), Http::new(&cluster.nodes[1]));

    // A backup made through A is described, listed and restored through B.
    create_indexed(&a, "src");
    load(&[&a, &b], "src", 500);
    let made = a.ok(
        "CreateBackup",
        json!({"TableName": "src", "BackupName": "from-a"}),
    );
    let arn = made["BackupDetails"]["BackupArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let described = b.wait_available(&arn);
    assert_eq!(
        described["BackupDescription"]["BackupDetails"]["BackupName"],
        "from-a"
    );
    assert_eq!(
        described["BackupDescription"]["SourceTableDetails"]["ItemCount"],
        500
    );
    for node in [&a, &b] {
        let listed = node.listed();
        assert_eq!(
            listed.get(&arn),
            Some(&(
                "from-a".to_owned(),
                "AVAILABLE".to_owned(),
                "USER".to_owned()
            )),
            "{listed:?}"
        );
    }
    b.ok(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "src-copy", "BackupArn": arn}),
    );
    a.wait_active("src-copy", Duration::from_secs(60));
    b.wait_active("src-copy", Duration::from_secs(60));
    let source = a.scan_all("src", None);
    assert_eq!(source.len(), 500);
    assert_eq!(b.scan_all("src-copy", None), source);
    assert_eq!(a.scan_all("src-copy", Some("byg")).len(), 500);
    // Deleted through B, gone for A.
    b.ok("DeleteBackup", json!({"BackupArn": arn}));
    assert_eq!(
        a.err("DescribeBackup", json!({"BackupArn": arn})),
        "BackupNotFoundException"
    );

    // Point-in-time recovery enabled through A; writes through both nodes; restores through
    // B to instants between acknowledged phases equal the state then.
    a.ok(
        "CreateTable",
        json!({
            "TableName": "hist",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    a.ok(
        "UpdateContinuousBackups",
        json!({"TableName": "hist", "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}),
    );
    let d = b.ok("DescribeContinuousBackups", json!({"TableName": "hist"}));
    assert_eq!(
        d["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
            ["PointInTimeRecoveryStatus"],
        "ENABLED"
    );
    let mut state: BTreeMap<usize, Option<usize>> = BTreeMap::new();
    let mut instants = Vec::new();
    for p in 0..3 {
        // Alternate which node writes which half.
        let changed = if p % 2 == 0 {
            phase(&a, &b, p)
        } else {
            phase(&b, &a, p)
        };
        state.extend(changed);
        std::thread::sleep(Duration::from_millis(20));
        instants.push((now(), state.clone()));
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, (at, expected)) in instants.iter().enumerate() {
        let target = format!("hist-at{i}");
        b.ok(
            "RestoreTableToPointInTime",
            json!({"SourceTableName": "hist", "TargetTableName": target, "RestoreDateTime": at}),
        );
        b.wait_active(&target, Duration::from_secs(60));
        let got: BTreeMap<usize, Option<usize>> = b
            .scan_all(&target, None)
            .values()
            .map(|item| {
                let k = item["pk"]["S"].as_str().unwrap()[1..].parse().unwrap();
                (k, Some(item["v"]["N"].as_str().unwrap().parse().unwrap()))
            })
            .collect();
        let expected: BTreeMap<usize, Option<usize>> = expected
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(got, expected, "restore through B to instant {i}");
    }

    // DeleteTable with recovery enabled keeps a SYSTEM backup, visible from both nodes and
    // restorable through either.
    let latest = a.scan_all("hist", None);
    a.ok("DeleteTable", json!({"TableName": "hist"}));
    let mut system = None;
    for node in [&a, &b] {
        let l = node.ok("ListBackups", json!({"BackupType": "SYSTEM"}));
        let summaries = l["BackupSummaries"].as_array().unwrap();
        assert_eq!(summaries.len(), 1, "{l}");
        assert_eq!(summaries[0]["BackupName"], "hist$DeletedTableBackup");
        assert_eq!(summaries[0]["BackupType"], "SYSTEM");
        let found = summaries[0]["BackupArn"].as_str().unwrap().to_owned();
        assert_eq!(system.get_or_insert(found.clone()), &found);
    }
    let system = system.unwrap();
    let d = a.ok("DescribeBackup", json!({"BackupArn": system}));
    assert_eq!(
        d["BackupDescription"]["BackupDetails"]["BackupStatus"],
        "AVAILABLE"
    );
    b.ok(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "hist-again", "BackupArn": system}),
    );
    a.wait_active("hist-again", Duration::from_secs(60));
    assert_eq!(a.scan_all("hist-again", None), latest);
}

#[test]
fn a_dead_nodes_restore_is_finished_and_its_backup_removed() {
    // A starts alone, so it takes the background lease and runs every restore's load.
    let mut cluster = Cluster::start_with(1, &FLAGS);
    let logs = tempfile::tempdir().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let url = cluster.pg.url();
    cluster
        .nodes
        .push(Node::start_with(&url, &logs.path().join("b.log"), &FLAGS));
    let (a, b) = (Http::new(&cluster.nodes[0]), Http::new(&cluster.nodes[1]));

    const ITEMS: usize = 60_000;
    create_indexed(&a, "big");
    let started = Instant::now();
    load(&[&a, &b], "big", ITEMS);
    eprintln!(
        "loaded {ITEMS} items through two nodes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let full = a.ok(
        "CreateBackup",
        json!({"TableName": "big", "BackupName": "full"}),
    );
    let full_arn = full["BackupDetails"]["BackupArn"]
        .as_str()
        .unwrap()
        .to_owned();
    a.wait_available(&full_arn);
    let copy = started.elapsed();
    eprintln!(
        "backup of {ITEMS} items on the shared engine: {:.2} s",
        copy.as_secs_f64()
    );
    let before = a.scan_all("big", None);
    assert_eq!(before.len(), ITEMS);

    // A restore requested through B is loaded by A (the lease holder), which sees the new
    // table within a cluster sync (1 s); a second backup is copied by A (the node that took
    // the request). A dies while both run.
    b.ok(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "restored", "BackupArn": full_arn}),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        b.status("restored"),
        "CREATING",
        "the restore finished before A was killed: make the table larger"
    );
    let started = Instant::now();
    let creating = {
        let url = a.url.clone();
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            // Answers CREATING after a short wait, or never (A is killed first).
            let _ = ferrodyn_testkit::call(
                &http,
                &url,
                "DynamoDB_20120810.CreateBackup",
                json!({"TableName": "big", "BackupName": "orphan"}).to_string(),
            );
        })
    };
    let orphan = loop {
        if let Some((arn, (_, status, _))) = b
            .listed()
            .into_iter()
            .find(|(_, (name, _, _))| name == "orphan")
        {
            assert_eq!(status, "CREATING");
            break arn;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the second backup never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    // A fifth of the way into the copy.
    std::thread::sleep(copy / 5);
    cluster.nodes[0].kill9();
    let killed = Instant::now();
    creating.join().unwrap();

    // B takes the lease once A's expires (10 s) and loads the table again from the start.
    let took = b.wait_active("restored", Duration::from_secs(90));
    eprintln!(
        "restore finished by B {:.1} s after A was killed",
        took.as_secs_f64()
    );
    assert!(
        b.scan_all("restored", None) == before,
        "the restored table differs from its source"
    );
    assert_eq!(b.scan_all("restored", Some("byg")).len(), ITEMS);

    // The orphaned backup is removed once it has not progressed for the stale period.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match b.call("DescribeBackup", &json!({"BackupArn": orphan})) {
            Ok((400, v))
                if v["__type"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("#BackupNotFoundException") =>
            {
                break
            }
            Ok((200, v)) => assert_eq!(
                v["BackupDescription"]["BackupDetails"]["BackupStatus"],
                "CREATING"
            ),
            other => panic!("DescribeBackup: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "the orphaned backup is still there 60 s after its node died\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "orphaned backup gone (checked once the restore was) {:.1} s after its node died",
        killed.elapsed().as_secs_f64()
    );
    let listed = b.listed();
    assert!(!listed.contains_key(&orphan), "{listed:?}");
    assert_eq!(
        listed.get(&full_arn).map(|(_, s, _)| s.as_str()),
        Some("AVAILABLE")
    );
    assert_eq!(
        b.err(
            "RestoreTableFromBackup",
            json!({"TargetTableName": "never", "BackupArn": orphan})
        ),
        "BackupNotFoundException"
    );
}
