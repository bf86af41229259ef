//! Writers are not stalled by a backup: several threads write a table at full speed through
//! the real server binary (durable storage, every write fsynced) while CreateBackup copies that
//! table; per-write latency before and during the copy is printed and bounded.
//!
//! The bound is generous on purpose (the machine may be shared with other builds): no write
//! during the copy takes a second or more, and the 99th percentile during the copy stays under
//! ten times the one before plus 50 ms. A copy that held the table's locks, or the ddl lock
//! that writers never take, or that saturated the commit path, would break it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_testkit::ServerProcess;
use serde_json::{json, Value};

/// Items in the table when the backup starts.
const ITEMS: usize = 200_000;
/// Concurrent writers.
const WRITERS: usize = 4;

fn call(http: &reqwest::blocking::Client, url: &str, op: &str, body: &Value) -> Value {
    let (status, text) = ferrodyn_testkit::call(
        http,
        url,
        &format!("DynamoDB_20120810.{op}"),
        body.to_string(),
    )
    .unwrap_or_else(|e| panic!("{op}: {e}"));
    assert_eq!(status, 200, "{op}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Loads items `0..count` with BatchWriteItem from four threads.
fn load(url: &str, count: usize) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut i = t * 25;
                while i < count {
                    let requests: Vec<Value> = (i..(i + 25).min(count))
                        .map(|j| json!({"PutRequest": {"Item": {"pk": {"S": format!("k{j:06}")}, "v": {"N": j.to_string()}}}}))
                        .collect();
                    let v = call(
                        &http,
                        &url,
                        "BatchWriteItem",
                        &json!({"RequestItems": {"big": requests}}),
                    );
                    assert_eq!(v["UnprocessedItems"], json!({}));
                    i += 100;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

struct Figures {
    count: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn figures(mut lat: Vec<Duration>) -> Figures {
    assert!(!lat.is_empty());
    lat.sort();
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    Figures {
        count: lat.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *lat.last().unwrap(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn writes_are_not_stalled_by_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_ferrodyn")),
        dir.path(),
    );
    let url = server.url.clone();
    let http = reqwest::blocking::Client::new();
    call(
        &http,
        &url,
        "CreateTable",
        &json!({
            "TableName": "big",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    let started = Instant::now();
    load(&url, ITEMS);
    eprintln!(
        "loaded {ITEMS} items in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Writers: PutItem at full speed on keys of their own in the table being backed up;
    // each write's start (since `origin`) and latency.
    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let url = url.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut samples = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"TableName": "big", "Item": {"pk": {"S": format!("w{w}-{}", i % 5000)}, "v": {"N": i.to_string()}}});
                    let sent = Instant::now();
                    call(&http, &url, "PutItem", &body);
                    samples.push((sent - origin, sent.elapsed()));
                    i += 1;
                }
                samples
            })
        })
        .collect();

    // Two seconds of writes alone (the first 300 ms are warm-up), then the backup.
    std::thread::sleep(Duration::from_secs(2));
    let backup_start = origin.elapsed();
    let b = call(
        &http,
        &url,
        "CreateBackup",
        &json!({"TableName": "big", "BackupName": "during-writes"}),
    );
    let arn = b["BackupDetails"]["BackupArn"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let details = loop {
        let d = call(&http, &url, "DescribeBackup", &json!({"BackupArn": arn}));
        let details = d["BackupDescription"].clone();
        if details["BackupDetails"]["BackupStatus"] == "AVAILABLE" {
            break details;
        }
        assert!(Instant::now() < deadline, "backup never became AVAILABLE");
        std::thread::sleep(Duration::from_millis(5));
    };
    let backup_end = origin.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples: Vec<(Duration, Duration)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let copied = details["SourceTableDetails"]["ItemCount"].as_u64().unwrap();
    assert!(copied >= ITEMS as u64, "backup holds {copied} items");

    let before = figures(
        samples
            .iter()
            .filter(|(at, _)| *at >= Duration::from_millis(300) && *at < backup_start)
            .map(|(_, l)| *l)
            .collect(),
    );
    let during = figures(
        samples
            .iter()
            .filter(|(at, _)| *at >= backup_start && *at < backup_end)
            .map(|(_, l)| *l)
            .collect(),
    );
    eprintln!(
        "backup of {copied} items took {:.2} s with {WRITERS} writers",
        (backup_end - backup_start).as_secs_f64()
    );
    for (name, f) in [("before", &before), ("during", &during)] {
        eprintln!(
            "PutItem latency {name} the backup: {} writes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            f.count,
            ms(f.p50),
            ms(f.p99),
            ms(f.max)
        );
    }
    assert!(during.count >= 20, "too few writes during the backup");
    assert!(
        during.max < Duration::from_secs(1),
        "a write took {:?} during the backup",
        during.max
    );
    let bound = before.p99 * 10 + Duration::from_millis(50);
    assert!(
        during.p99 < bound,
        "p99 during the backup {:?} above {bound:?} (before: {:?})",
        during.p99,
        before.p99
    );
}
