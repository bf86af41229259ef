//! DynamoDB Streams over HTTP: records for every kind of write, shards and iterators, disabled
//! streams, and (with the real binary) exactly one record per acknowledged write after kill -9.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrodyn_testkit::TestServer;
use serde_json::{json, Value};

fn ddb(s: &TestServer, op: &str, body: Value) -> Value {
    let r = s.raw(op, &body.to_string());
    assert_eq!(r.status, 200, "{op}: {}", r.body);
    r.json()
}

fn streams_raw(s: &TestServer, op: &str, body: Value) -> ferrodyn_testkit::RawResponse {
    s.raw_with(
        Some(&format!("DynamoDBStreams_20120810.{op}")),
        &body.to_string(),
        true,
    )
}

fn streams(s: &TestServer, op: &str, body: Value) -> Value {
    let r = streams_raw(s, op, body);
    assert_eq!(r.status, 200, "{op}: {}", r.body);
    r.json()
}

fn create(s: &TestServer, name: &str, view: Option<&str>) -> String {
    let mut body = json!({
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "p", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    });
    if let Some(v) = view {
        body["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": v});
    }
    let out = ddb(s, "CreateTable", body);
    out["TableDescription"]["LatestStreamArn"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every record of a stream, shard by shard from TRIM_HORIZON, in shard order.
fn read_all(s: &TestServer, arn: &str) -> Vec<Value> {
    let desc = streams(s, "DescribeStream", json!({"StreamArn": arn}));
    let mut out = Vec::new();
    for shard in desc["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = streams(
            s,
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        );
        let mut it = it["ShardIterator"].as_str().map(str::to_string);
        while let Some(i) = it {
            let page = streams(s, "GetRecords", json!({"ShardIterator": i}));
            let recs = page["Records"].as_array().unwrap();
            if recs.is_empty() {
                break;
            }
            out.extend(recs.iter().cloned());
            it = page["NextShardIterator"].as_str().map(str::to_string);
        }
    }
    out
}

fn put(s: &TestServer, t: &str, p: &str, v: i64) {
    ddb(
        s,
        "PutItem",
        json!({"TableName": t, "Item": {"p": {"S": p}, "v": {"N": v.to_string()}}}),
    );
}

#[test]
fn records_for_put_update_delete_batch_and_transactions() {
    let s = TestServer::in_memory();
    let arn = create(&s, "tbl", Some("NEW_AND_OLD_IMAGES"));
    assert!(arn.contains(":table/tbl/stream/"), "{arn}");
    put(&s, "tbl", "a", 1);
    put(&s, "tbl", "a", 1); // changes nothing: no record
    ddb(
        &s,
        "UpdateItem",
        json!({"TableName": "tbl", "Key": {"p": {"S": "a"}}, "UpdateExpression": "SET v = :v",
               "ExpressionAttributeValues": {":v": {"N": "2"}}}),
    );
    ddb(
        &s,
        "DeleteItem",
        json!({"TableName": "tbl", "Key": {"p": {"S": "a"}}}),
    );
    ddb(
        &s,
        "DeleteItem",
        json!({"TableName": "tbl", "Key": {"p": {"S": "a"}}}),
    ); // no-op
    ddb(
        &s,
        "BatchWriteItem",
        json!({"RequestItems": {"tbl": [
            {"PutRequest": {"Item": {"p": {"S": "b"}}}},
            {"DeleteRequest": {"Key": {"p": {"S": "missing"}}}}
        ]}}),
    );
    ddb(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "tbl", "Item": {"p": {"S": "c"}}}},
            {"Delete": {"TableName": "tbl", "Key": {"p": {"S": "b"}}}}
        ]}),
    );

    let recs = read_all(&s, &arn);
    let mut by_key: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    for r in &recs {
        assert_eq!(r["eventVersion"], "1.1");
        assert_eq!(r["eventSource"], "aws:dynamodb");
        assert_eq!(r["awsRegion"], "us-east-1");
        assert!(r["eventID"].is_string());
        let d = &r["dynamodb"];
        assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
        assert!(d["SequenceNumber"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit()));
        assert!(d["SizeBytes"].as_u64().unwrap() > 0);
        assert!(d["ApproximateCreationDateTime"].is_number());
        assert!(r.get("userIdentity").is_none());
        let key = d["Keys"]["p"]["S"].as_str().unwrap().to_string();
        by_key
            .entry(key)
            .or_default()
            .push((r["eventName"].as_str().unwrap().to_string(), d.clone()));
    }
    let a = &by_key["a"];
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(a[0].1["NewImage"]["v"]["N"], "1");
    assert!(a[0].1.get("OldImage").is_none());
    assert_eq!(a[1].1["OldImage"]["v"]["N"], "1");
    assert_eq!(a[1].1["NewImage"]["v"]["N"], "2");
    assert_eq!(a[2].1["OldImage"]["v"]["N"], "2");
    assert!(a[2].1.get("NewImage").is_none());
    let seqs: Vec<u128> = a
        .iter()
        .map(|(_, d)| d["SequenceNumber"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let b: Vec<&str> = by_key["b"].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(b, ["INSERT", "REMOVE"]);
    assert_eq!(by_key["c"].len(), 1);
    assert!(!by_key.contains_key("missing"));
}

/// An iterator at the trim horizon of a shard older than the retention stays readable. It was
/// refused as trimmed (TrimmedDataAccessException) as soon as the clock moved on, though
/// nothing after it had been deleted, so no reader could ever start at the horizon of a shard
/// opened more than the retention ago (found by the crash-point harness).
#[test]
fn trim_horizon_of_a_shard_older_than_the_retention_stays_readable() {
    let s = TestServer::with_config(
        Arc::new(ferrodyn_storage::MemoryStorage::new()),
        ferrodyn_core::EngineConfig {
            durability: ferrodyn_storage::Durability::Buffered,
            stream_retention: Duration::from_secs(1),
            ..ferrodyn_core::EngineConfig::default()
        },
    );
    let arn = create(&s, "old-shard", Some("NEW_IMAGE"));
    put(&s, "old-shard", "before", 1);
    std::thread::sleep(Duration::from_millis(1300));
    for i in 0..8 {
        put(&s, "old-shard", &format!("after{i}"), 2);
    }
    let desc = streams(&s, "DescribeStream", json!({"StreamArn": arn}));
    let mut keys = Vec::new();
    for shard in desc["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = streams(
            &s,
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        );
        std::thread::sleep(Duration::from_millis(5));
        let page = streams(
            &s,
            "GetRecords",
            json!({"ShardIterator": it["ShardIterator"]}),
        );
        for r in page["Records"].as_array().unwrap() {
            keys.push(r["dynamodb"]["Keys"]["p"]["S"].as_str().unwrap().to_owned());
        }
    }
    keys.sort();
    let want: Vec<String> = (0..8).map(|i| format!("after{i}")).collect();
    assert_eq!(
        keys, want,
        "the records within the retention, and only those"
    );
}

#[test]
fn view_types_shape_images() {
    let s = TestServer::in_memory();
    for (view, new, old) in [
        ("KEYS_ONLY", false, false),
        ("NEW_IMAGE", true, false),
        ("OLD_IMAGE", false, true),
    ] {
        let name = format!("view_{}", view.to_lowercase());
        let arn = create(&s, &name, Some(view));
        put(&s, &name, "k", 1);
        put(&s, &name, "k", 2);
        let recs = read_all(&s, &arn);
        assert_eq!(recs.len(), 2, "{view}");
        let d = &recs[1]["dynamodb"];
        assert_eq!(d["StreamViewType"], view);
        assert_eq!(d.get("NewImage").is_some(), new, "{view}");
        assert_eq!(d.get("OldImage").is_some(), old, "{view}");
        assert_eq!(d["Keys"], json!({"p": {"S": "k"}}));
    }
}

#[test]
fn list_describe_and_iterators() {
    let s = TestServer::in_memory();
    let a1 = create(&s, "one", Some("KEYS_ONLY"));
    let a2 = create(&s, "two", Some("KEYS_ONLY"));
    create(&s, "plain", None);

    let all = streams(&s, "ListStreams", json!({}));
    let arns: Vec<&str> = all["Streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["StreamArn"].as_str().unwrap())
        .collect();
    assert!(arns.contains(&a1.as_str()) && arns.contains(&a2.as_str()));
    assert!(all.get("LastEvaluatedStreamArn").is_none());
    let page = streams(&s, "ListStreams", json!({"Limit": 1}));
    assert_eq!(page["Streams"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["LastEvaluatedStreamArn"],
        page["Streams"][0]["StreamArn"]
    );
    let only = streams(&s, "ListStreams", json!({"TableName": "plain"}));
    assert_eq!(only["Streams"], json!([]));

    let d = streams(&s, "DescribeStream", json!({"StreamArn": a1}));
    let sd = &d["StreamDescription"];
    assert_eq!(sd["StreamStatus"], "ENABLED");
    assert_eq!(sd["TableName"], "one");
    assert_eq!(
        sd["KeySchema"],
        json!([{"AttributeName": "p", "KeyType": "HASH"}])
    );
    let shards = sd["Shards"].as_array().unwrap();
    assert_eq!(shards.len(), 4);
    let ids: Vec<&str> = shards
        .iter()
        .map(|x| x["ShardId"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(shards.iter().all(|x| x["SequenceNumberRange"]
        .get("EndingSequenceNumber")
        .is_none()));
    let page = streams(&s, "DescribeStream", json!({"StreamArn": a1, "Limit": 3}));
    assert_eq!(page["StreamDescription"]["LastEvaluatedShardId"], ids[2]);
    let rest = streams(
        &s,
        "DescribeStream",
        json!({"StreamArn": a1, "ExclusiveStartShardId": ids[2]}),
    );
    assert_eq!(rest["StreamDescription"]["Shards"][0]["ShardId"], ids[3]);

    // LATEST sees only later writes; AT/AFTER_SEQUENCE_NUMBER re-read from a record.
    let latest: Vec<String> = ids
        .iter()
        .map(|id| {
            streams(
                &s,
                "GetShardIterator",
                json!({"StreamArn": a1, "ShardId": id, "ShardIteratorType": "LATEST"}),
            )["ShardIterator"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    put(&s, "one", "x", 1);
    put(&s, "one", "x", 2);
    let mut found = None;
    for (id, it) in ids.iter().zip(&latest) {
        let page = streams(&s, "GetRecords", json!({"ShardIterator": it}));
        assert!(page["NextShardIterator"].is_string());
        let recs = page["Records"].as_array().unwrap();
        if !recs.is_empty() {
            assert_eq!(recs.len(), 2);
            found = Some((
                id.to_string(),
                recs.clone(),
                page["NextShardIterator"].clone(),
            ));
        }
    }
    let (shard, recs, next) = found.expect("records in one shard");
    let again = streams(&s, "GetRecords", json!({"ShardIterator": next}));
    assert_eq!(again["Records"], json!([]));
    let seq0 = recs[0]["dynamodb"]["SequenceNumber"].clone();
    for (ty, expect) in [("AT_SEQUENCE_NUMBER", 2), ("AFTER_SEQUENCE_NUMBER", 1)] {
        let it = streams(
            &s,
            "GetShardIterator",
            json!({"StreamArn": a1, "ShardId": shard, "ShardIteratorType": ty, "SequenceNumber": seq0}),
        );
        let page = streams(
            &s,
            "GetRecords",
            json!({"ShardIterator": it["ShardIterator"]}),
        );
        assert_eq!(page["Records"].as_array().unwrap().len(), expect, "{ty}");
    }
    let limited = streams(
        &s,
        "GetShardIterator",
        json!({"StreamArn": a1, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    );
    let page = streams(
        &s,
        "GetRecords",
        json!({"ShardIterator": limited["ShardIterator"], "Limit": 1}),
    );
    assert_eq!(page["Records"].as_array().unwrap().len(), 1);

    // Errors.
    let r = streams_raw(&s, "DescribeStream", json!({"StreamArn": "x".repeat(40)}));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("ValidationException"), "{}", r.body);
    let missing = a1.replace(":table/one/", ":table/nope/");
    let r = streams_raw(&s, "DescribeStream", json!({"StreamArn": missing}));
    assert!(r.body.contains("ResourceNotFoundException"), "{}", r.body);
    let r = streams_raw(
        &s,
        "GetShardIterator",
        json!({"StreamArn": a1, "ShardId": "shardId-nonexistent-000000000000", "ShardIteratorType": "LATEST"}),
    );
    assert!(r.body.contains("ResourceNotFoundException"), "{}", r.body);
    let r = streams_raw(
        &s,
        "GetShardIterator",
        json!({"StreamArn": a1, "ShardId": shard, "ShardIteratorType": "AT_SEQUENCE_NUMBER"}),
    );
    assert!(r.body.contains("ValidationException"), "{}", r.body);
    let r = streams_raw(
        &s,
        "GetShardIterator",
        json!({"StreamArn": a1, "ShardId": shard, "ShardIteratorType": "LATEST", "SequenceNumber": seq0}),
    );
    assert!(r.body.contains("ValidationException"), "{}", r.body);
    let r = streams_raw(&s, "GetRecords", json!({"ShardIterator": "y".repeat(50)}));
    assert!(r.body.contains("ValidationException"), "{}", r.body);
    let r = streams_raw(
        &s,
        "GetRecords",
        json!({"ShardIterator": latest[0], "Limit": 1001}),
    );
    assert!(r.body.contains("ValidationException"), "{}", r.body);
}

#[test]
fn disabled_stream_stays_readable_and_closed() {
    let s = TestServer::in_memory();
    let arn = create(&s, "dis", Some("KEYS_ONLY"));
    put(&s, "dis", "k", 1);
    ddb(
        &s,
        "UpdateTable",
        json!({"TableName": "dis", "StreamSpecification": {"StreamEnabled": false}}),
    );
    put(&s, "dis", "k", 2); // not recorded
    let d = streams(&s, "DescribeStream", json!({"StreamArn": arn}));
    assert_eq!(d["StreamDescription"]["StreamStatus"], "DISABLED");
    for sh in d["StreamDescription"]["Shards"].as_array().unwrap() {
        assert!(sh["SequenceNumberRange"]["EndingSequenceNumber"].is_string());
        let it = streams(
            &s,
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": sh["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        );
        let page = streams(
            &s,
            "GetRecords",
            json!({"ShardIterator": it["ShardIterator"]}),
        );
        // A closed, fully read shard has no next iterator.
        assert!(page.get("NextShardIterator").is_none(), "{page}");
    }
    assert_eq!(read_all(&s, &arn).len(), 1);

    // Re-enabling makes a new stream; the old one is still listed.
    ddb(
        &s,
        "UpdateTable",
        json!({"TableName": "dis", "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "KEYS_ONLY"}}),
    );
    let list = streams(&s, "ListStreams", json!({"TableName": "dis"}));
    assert_eq!(list["Streams"].as_array().unwrap().len(), 2);
    let desc = ddb(&s, "DescribeTable", json!({"TableName": "dis"}));
    let arn2 = desc["Table"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(arn, arn2);
    put(&s, "dis", "k", 3);
    assert_eq!(read_all(&s, &arn2).len(), 1);
    assert_eq!(read_all(&s, &arn).len(), 1);
}

// ---- crash test with the real binary --------------------------------------------------------

fn start(dir: &std::path::Path) -> (ferrodyn_testkit::ServerProcess, String) {
    let proc = ferrodyn_testkit::ServerProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_ferrodyn")),
        dir,
    );
    let url = proc.url.clone();
    (proc, url)
}

use ferrodyn_testkit::call;

fn ok(client: &reqwest::blocking::Client, url: &str, target: &str, body: Value) -> Value {
    let (st, text) = call(client, url, target, body.to_string()).unwrap();
    assert_eq!(st, 200, "{target}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn one_record_per_acknowledged_write_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start(dir.path());
    let client = reqwest::blocking::Client::new();
    ok(
        &client,
        &url,
        "DynamoDB_20120810.CreateTable",
        json!({"TableName": "crash_s", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
               "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}], "BillingMode": "PAY_PER_REQUEST",
               "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"}}),
    );
    // Each worker overwrites its few items with an increasing counter.
    let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let deadline = Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let acked = acked.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut i = 1u64;
                while Instant::now() < deadline + Duration::from_secs(5) {
                    let key = format!("w{w}-{}", i % 3);
                    let body = format!(
                        r#"{{"TableName":"crash_s","Item":{{"pk":{{"S":"{key}"}},"v":{{"N":"{i}"}}}}}}"#
                    );
                    match call(&client, &url, "DynamoDB_20120810.PutItem", body) {
                        Ok((200, _)) => acked.lock().unwrap().push((key, i)),
                        _ => break,
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    child.kill9();
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 30, "too few writes: {}", acked.len());

    let (_child, url) = start(dir.path());
    // A write after the restart gets a larger sequence number than any before.
    ok(
        &client,
        &url,
        "DynamoDB_20120810.PutItem",
        json!({"TableName": "crash_s", "Item": {"pk": {"S": "after"}}}),
    );
    let desc = ok(
        &client,
        &url,
        "DynamoDB_20120810.DescribeTable",
        json!({"TableName": "crash_s"}),
    );
    let arn = desc["Table"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_string();
    let sd = ok(
        &client,
        &url,
        "DynamoDBStreams_20120810.DescribeStream",
        json!({"StreamArn": arn}),
    );
    let mut per_key: HashMap<String, Vec<u64>> = HashMap::new();
    let mut max_seq_before = 0u128;
    let mut after_seq = 0u128;
    for sh in sd["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = ok(
            &client,
            &url,
            "DynamoDBStreams_20120810.GetShardIterator",
            json!({"StreamArn": arn, "ShardId": sh["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        );
        let mut it = it["ShardIterator"].as_str().map(str::to_string);
        while let Some(i) = it {
            let page = ok(
                &client,
                &url,
                "DynamoDBStreams_20120810.GetRecords",
                json!({"ShardIterator": i}),
            );
            let recs = page["Records"].as_array().unwrap();
            if recs.is_empty() {
                break;
            }
            for r in recs {
                let d = &r["dynamodb"];
                let key = d["Keys"]["pk"]["S"].as_str().unwrap().to_string();
                let seq: u128 = d["SequenceNumber"].as_str().unwrap().parse().unwrap();
                if key == "after" {
                    after_seq = seq;
                    continue;
                }
                max_seq_before = max_seq_before.max(seq);
                let v: u64 = d["NewImage"]["v"]["N"].as_str().unwrap().parse().unwrap();
                per_key.entry(key).or_default().push(v);
            }
            it = page["NextShardIterator"].as_str().map(str::to_string);
        }
    }
    assert!(
        after_seq > max_seq_before,
        "{after_seq} <= {max_seq_before}"
    );
    // Per item: records in write order; every acknowledged write has exactly one record (a write
    // in flight at the kill may have committed unacknowledged, and then has a record too).
    let mut acked_per_key: HashMap<String, Vec<u64>> = HashMap::new();
    for (k, v) in acked {
        acked_per_key.entry(k).or_default().push(v);
    }
    for (k, vs) in &acked_per_key {
        let got = per_key.get(k).cloned().unwrap_or_default();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "{k}: out of order {got:?}"
        );
        for v in vs {
            assert_eq!(
                got.iter().filter(|g| *g == v).count(),
                1,
                "{k}: acknowledged write {v} has no single record"
            );
        }
        let unacked = got.iter().filter(|g| !vs.contains(g)).count();
        assert!(
            unacked <= 1,
            "{k}: {unacked} records for unacknowledged writes"
        );
    }
}
