//! Disk full, on a real size-limited filesystem: the real server binary keeps its data
//! directory on a small tmpfs, which a ballast file then fills. Writes are refused with
//! InternalServerError naming the cause, logged once; reads go on; once the ballast is
//! deleted writes resume without a restart; after kill -9 every acknowledged write is there.
//! Both when the free-space reserve catches the full disk first, and when there is no reserve
//! and fjall's own journal write meets ENOSPC (fjall then poisons its database and the engine
//! reopens the data directory in-process once space is back).
//!
//! Mounting a tmpfs needs root (CAP_SYS_ADMIN), as tests and CI run on this project's
//! machines.

use std::path::Path;
use std::time::{Duration, Instant};

use ferrodyn_testhost::{fill_until_full as fill, Tmpfs};
use ferrodyn_testkit::{call_json, http_get, ok_json, pk_numbers, FaultyDir, ServerProcess};
use serde_json::{json, Value};

const INTERNAL: &str = "com.amazonaws.dynamodb.v20120810#InternalServerError";

/// Puts item `back` until it is accepted (every refusal meanwhile a 500), at most `within`;
/// records it as acknowledged and returns how long it took.
fn writes_resume(
    url: &str,
    acked: &mut std::collections::BTreeMap<String, u64>,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = put(url, "back", 1);
        if status == 200 {
            acked.insert("back".into(), 1);
            return started.elapsed();
        }
        assert_eq!(status, 500, "{body}");
        assert!(started.elapsed() < within, "writes never resumed: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Puts `k{i}` = i for every i of `range`, each acknowledged, and records them in `acked`.
fn put_acked(
    url: &str,
    range: std::ops::Range<u64>,
    acked: &mut std::collections::BTreeMap<String, u64>,
) {
    for i in range {
        let (status, body) = put(url, &format!("k{i}"), i);
        assert_eq!(status, 200, "{body}");
        acked.insert(format!("k{i}"), i);
    }
}

fn put(url: &str, key: &str, v: u64) -> (u16, Value) {
    call_json(
        url,
        "PutItem",
        json!({"TableName": "tbl", "Item": {"pk": {"S": key}, "v": {"N": v.to_string()}}}),
    )
}

fn start(dir: &Path, log: &Path) -> ServerProcess {
    start_with_reserve(dir, log, "4")
}

fn start_with_reserve(dir: &Path, log: &Path, min_free_mb: &str) -> ServerProcess {
    let dir = dir.to_str().unwrap();
    ServerProcess::start_env(
        Path::new(env!("CARGO_BIN_EXE_ferrodyn")),
        &[
            "serve",
            "--port",
            "0",
            "--data-dir",
            dir,
            "--min-free-mb",
            min_free_mb,
        ],
        &[],
        Some(log),
    )
}

/// A 64 MiB tmpfs holding the data directory (`mnt/data`), and the server log beside it, off
/// the tmpfs so that it can always be written.
struct SmallDisk {
    mnt: std::path::PathBuf,
    data: std::path::PathBuf,
    log: std::path::PathBuf,
    // Unmounted before the directory holding the mount point goes.
    _tmpfs: Tmpfs,
    _base: tempfile::TempDir,
}

impl SmallDisk {
    fn new() -> SmallDisk {
        let base = tempfile::tempdir().unwrap();
        let mnt = base.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let tmpfs = Tmpfs::mount(&mnt, "64m");
        SmallDisk {
            data: mnt.join("data"),
            log: base.path().join("server.log"),
            mnt,
            _tmpfs: tmpfs,
            _base: base,
        }
    }
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_without_a_restart() {
    let disk = SmallDisk::new();
    let (mnt, data, log) = (disk.mnt.clone(), disk.data.clone(), disk.log.clone());
    let mut server = start(&data, &log);
    let url = server.url.clone();
    ok_json(
        &url,
        "CreateTable",
        json!({"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
    );
    let mut acked = std::collections::BTreeMap::new();
    put_acked(&url, 0..50, &mut acked);

    let ballast = mnt.join("ballast");
    assert!(fill(&ballast) > 0);
    // The engine reads the free space every SPACE_CHECK_INTERVAL (100 ms): once it has, the
    // readiness check says why writes are refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http_get(&url, "/health/ready");
        assert_eq!(
            status, 200,
            "a full disk keeps the server ready for reads: {body}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["status"] == "degraded" {
            assert!(
                v["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("No space left on device"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never noticed the full disk");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Every kind of write is refused with the same error shape, many times over.
    for i in 0..20u64 {
        let (status, body) = put(&url, &format!("full{i}"), i);
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["__type"], INTERNAL, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with("No space left on device"),
            "the message names the cause: {message}"
        );
    }
    for (op, request) in [
        (
            "DeleteItem",
            json!({"TableName": "tbl", "Key": {"pk": {"S": "k1"}}}),
        ),
        (
            "UpdateItem",
            json!({"TableName": "tbl", "Key": {"pk": {"S": "k2"}},
                   "UpdateExpression": "SET v = :v", "ExpressionAttributeValues": {":v": {"N": "7"}}}),
        ),
        (
            "BatchWriteItem",
            json!({"RequestItems": {"tbl": [{"PutRequest": {"Item": {"pk": {"S": "b"}}}}]}}),
        ),
        (
            "TransactWriteItems",
            json!({"TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "x"}}}}]}),
        ),
    ] {
        let (status, body) = call_json(&url, op, request);
        assert_eq!(status, 500, "{op}: {body}");
        assert_eq!(body["__type"], INTERNAL, "{op}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("No space left on device"),
            "{op}: {body}"
        );
    }
    // Reads go on, and see exactly the acknowledged writes.
    let item = ok_json(
        &url,
        "GetItem",
        json!({"TableName": "tbl", "Key": {"pk": {"S": "k1"}}, "ConsistentRead": true}),
    );
    assert_eq!(item["Item"]["v"]["N"], "1");
    assert_eq!(pk_numbers(&url, "tbl"), acked);
    // One loud line for the whole episode, not one per refused request.
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("DISK FULL").count(), 1, "server log:\n{text}");

    // Space comes back: writes resume by themselves.
    std::fs::remove_file(&ballast).unwrap();
    writes_resume(&url, &mut acked, Duration::from_secs(10));
    put_acked(&url, 50..100, &mut acked);
    let (status, body) = http_get(&url, "/health/ready");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("disk space is back"));

    // Nothing acknowledged is lost, across a crash.
    server.kill9();
    let server = start(&data, &log);
    assert_eq!(pk_numbers(&server.url, "tbl"), acked);
}

/// Creates `tbl` with a stream; returns the stream's ARN.
fn create_table_with_stream(url: &str) -> String {
    let out = ok_json(
        url,
        "CreateTable",
        json!({"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST",
               "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
               "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"}}),
    );
    out["TableDescription"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The partition keys of every record of the stream, shard by shard from TRIM_HORIZON.
fn stream_keys(url: &str, arn: &str) -> Vec<String> {
    let client = reqwest::blocking::Client::new();
    let streams = |op: &str, body: Value| -> Value {
        let (status, text) = ferrodyn_testkit::call(
            &client,
            url,
            &format!("DynamoDBStreams_20120810.{op}"),
            body.to_string(),
        )
        .unwrap();
        assert_eq!(status, 200, "{op}: {text}");
        serde_json::from_str(&text).unwrap()
    };
    let desc = streams("DescribeStream", json!({"StreamArn": arn}));
    let mut keys = Vec::new();
    for shard in desc["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = streams(
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        );
        let mut it = it["ShardIterator"].as_str().map(str::to_owned);
        while let Some(i) = it {
            let page = streams("GetRecords", json!({"ShardIterator": i}));
            let records = page["Records"].as_array().unwrap();
            if records.is_empty() {
                break;
            }
            for r in records {
                keys.push(
                    r["dynamodb"]["Keys"]["pk"]["S"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            it = page["NextShardIterator"].as_str().map(str::to_owned);
        }
    }
    keys
}

/// Every acknowledged write is in `seen`, and nothing else but writes answered with an error
/// (keys starting with `f`: they may or may not be present, as after any 500).
fn assert_acked_present(
    seen: &std::collections::BTreeMap<String, u64>,
    acked: &std::collections::BTreeMap<String, u64>,
) {
    for (k, v) in acked {
        assert_eq!(seen.get(k), Some(v), "acknowledged {k} missing");
    }
    for k in seen.keys() {
        assert!(
            acked.contains_key(k) || k.starts_with('f'),
            "{k} was never written"
        );
    }
}

/// No reserve (`--min-free-mb 0`): fjall's own journal write meets ENOSPC and fjall poisons
/// its database. The write is refused with the disk-full error, readiness says degraded, reads
/// go on; once the ballast is deleted the engine reopens the data directory in-process and
/// writes resume without a restart (reads during the reopen are answered); every
/// acknowledged write is there, also after kill -9 and a restart.
#[test]
fn a_full_disk_met_by_the_journal_itself_is_recovered_without_a_restart() {
    let disk = SmallDisk::new();
    let (mnt, data, log) = (disk.mnt.clone(), disk.data.clone(), disk.log.clone());
    let mut server = start_with_reserve(&data, &log, "0");
    let url = server.url.clone();
    let arn = create_table_with_stream(&url);
    let mut acked = std::collections::BTreeMap::new();
    put_acked(&url, 0..50, &mut acked);

    let ballast = mnt.join("ballast");
    assert!(fill(&ballast) > 0);
    // The journal's last page may still take a few records; then a write meets ENOSPC.
    let mut refused = None;
    for i in 0..10_000u64 {
        let (status, body) = put(&url, &format!("f{i}"), i);
        if status == 200 {
            acked.insert(format!("f{i}"), i);
            continue;
        }
        refused = Some(body);
        break;
    }
    let body = refused.expect("no write met the full disk");
    assert_eq!(body["__type"], INTERNAL, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("No space left on device"),
        "the message names the cause: {message}"
    );
    let (status, body) = http_get(&url, "/health/ready");
    assert_eq!(status, 200, "reads are served: {body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "degraded", "{body}");
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .starts_with("No space left on device"),
        "{body}"
    );
    for i in 0..5u64 {
        let (status, body) = put(&url, &format!("f-again{i}"), i);
        assert_eq!(status, 500, "{body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("No space left on device"),
            "{body}"
        );
    }
    assert_acked_present(&pk_numbers(&url, "tbl"), &acked);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("DISK FULL").count(), 1, "server log:\n{text}");

    // Reads keep coming while space returns and the engine reopens the store.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (url, stop) = (url.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (status, body) = call_json(
                    &url,
                    "GetItem",
                    json!({"TableName": "tbl", "Key": {"pk": {"S": "k1"}}, "ConsistentRead": true}),
                );
                answers.push((status, body));
            }
            answers
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    std::fs::remove_file(&ballast).unwrap();
    let resumed_after = writes_resume(&url, &mut acked, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = reader.join().unwrap();
    assert!(answers.len() > 5, "{} reads", answers.len());
    for (status, body) in &answers {
        assert_eq!(*status, 200, "a read during the recovery failed: {body}");
        assert_eq!(body["Item"]["v"]["N"], "1", "{body}");
    }
    eprintln!(
        "writes resumed {resumed_after:?} after the ballast was deleted; {} reads meanwhile",
        answers.len()
    );
    let (status, body) = http_get(&url, "/health/ready");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("reopening the data directory to resume writes")
            .count(),
        1,
        "server log:\n{text}"
    );
    assert!(
        text.contains("data directory reopened: writes resume"),
        "server log:\n{text}"
    );
    put_acked(&url, 50..100, &mut acked);
    assert_acked_present(&pk_numbers(&url, "tbl"), &acked);
    // The stream holds a record of every acknowledged write, once, in readable shards.
    let check_stream = |url: &str| {
        let keys = stream_keys(url, &arn);
        for k in acked.keys() {
            assert_eq!(
                keys.iter().filter(|r| *r == k).count(),
                1,
                "stream records of {k}: {keys:?}"
            );
        }
    };
    check_stream(&url);

    // Nothing acknowledged is lost, across a crash.
    server.kill9();
    let server = start_with_reserve(&data, &log, "0");
    check_stream(&server.url);
    assert_acked_present(&pk_numbers(&server.url, "tbl"), &acked);
    let (status, body) = put(&server.url, "after-restart", 1);
    assert_eq!(status, 200, "{body}");
}

/// The same recovery with the full disk injected at the system-call boundary
/// (`ferrodyn-faultfs`: every write to a file of the data directory answers ENOSPC while the
/// statfs figures still show space): the engine reopens only once a probe file can really be
/// written and synced, i.e. once the fault is gone, and then resumes without a restart.
#[test]
fn an_injected_enospc_on_journal_writes_is_recovered_once_writes_succeed_again() {
    let binary = Path::new(env!("CARGO_BIN_EXE_ferrodyn"));
    let dir = FaultyDir::new(binary, &["--min-free-mb", "1"]);
    let mut server = dir.start(binary);
    let url = server.url.clone();
    create_table_with_stream(&url);
    let mut acked = std::collections::BTreeMap::new();
    put_acked(&url, 0..20, &mut acked);

    dir.inject("write ENOSPC\n");
    let (status, body) = put(&url, "f0", 0);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["__type"], INTERNAL, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("No space left on device"),
        "{body}"
    );
    // Space looks free, but nothing can be written: no reopen, writes stay refused.
    std::thread::sleep(Duration::from_millis(1000));
    let (status, body) = put(&url, "f1", 1);
    assert_eq!(status, 500, "{body}");
    let (status, body) = http_get(&url, "/health/ready");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("degraded"), "{body}");
    let text = std::fs::read_to_string(&dir.log).unwrap();
    assert!(
        !text.contains("reopening the data directory"),
        "log:\n{text}"
    );
    assert_acked_present(&pk_numbers(&url, "tbl"), &acked);

    dir.inject("");
    writes_resume(&url, &mut acked, Duration::from_secs(20));
    let (status, body) = http_get(&url, "/health/ready");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    put_acked(&url, 20..40, &mut acked);
    assert_acked_present(&pk_numbers(&url, "tbl"), &acked);
    server.kill9();
    let server = dir.start_plain(binary);
    assert_acked_present(&pk_numbers(&server.url, "tbl"), &acked);
}
