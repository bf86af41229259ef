//! Stream triggers against a real HTTP receiver started by the test: every change delivered in
//! Lambda's event format and in order per item; whole-batch failures retried then handed to a
//! dead-letter table; bisection isolating a poison record; partial batch responses; timeouts;
//! filters; LATEST; disable, enable and delete; the admin API's validation.

mod trigger_support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrodyn_core::EngineConfig;
use ferrodyn_server::ServerOptions;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::TestServer;
use ferrodyn_triggers::TriggersConfig;
use serde_json::{json, Value};
use trigger_support::{admin, ddb, pk_v, stream_table, Receiver, Reply};

fn server() -> TestServer {
    TestServer::with_options(
        Arc::new(MemoryStorage::new()),
        EngineConfig {
            durability: Durability::Buffered,
            ..EngineConfig::default()
        },
        ServerOptions {
            triggers: Some(TriggersConfig {
                poll_interval: Duration::from_millis(5),
                backoff_base: Duration::from_millis(5),
                backoff_cap: Duration::from_millis(50),
            }),
            ..ServerOptions::default()
        },
    )
}

fn create(s: &TestServer, body: Value) -> String {
    let (status, v) = admin(&s.url, "CreateTrigger", body);
    assert_eq!(status, 200, "{v}");
    v["TriggerId"].as_str().unwrap().to_owned()
}

fn put(s: &TestServer, table: &str, pk: &str, v: i64) {
    let (status, a) = ddb(
        &s.url,
        "PutItem",
        json!({"TableName": table, "Item": {"pk": {"S": pk}, "v": {"N": v.to_string()}}}),
    );
    assert_eq!(status, 200, "{a}");
}

/// Per item, the `v` values in the order they were acknowledged.
fn per_item(records: &[Value]) -> HashMap<String, Vec<i64>> {
    let mut m: HashMap<String, Vec<i64>> = HashMap::new();
    for r in records {
        let (pk, v) = pk_v(r);
        m.entry(pk).or_default().push(v);
    }
    m
}

fn scan(s: &TestServer, table: &str) -> Vec<Value> {
    let (status, v) = ddb(&s.url, "Scan", json!({"TableName": table}));
    assert_eq!(status, 200, "{v}");
    v["Items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_change_arrives_in_lambdas_format_in_order_per_item() {
    let s = server();
    stream_table(&s.url, "orders");
    let rx = Receiver::start(|_| Reply::ok());
    let id = create(
        &s,
        json!({"TableName": "orders", "Target": {"Url": rx.url}, "BatchSize": 7,
            "StartingPosition": "TRIM_HORIZON", "ParallelizationFactor": 3}),
    );
    for v in 1..=20 {
        for item in ["a", "b", "c", "d"] {
            put(&s, "orders", item, v);
        }
    }
    let (status, _) = ddb(
        &s.url,
        "DeleteItem",
        json!({"TableName": "orders", "Key": {"pk": {"S": "a"}}}),
    );
    assert_eq!(status, 200);
    rx.wait_for(20, "81 records", |r| r.acknowledged().len() >= 81);
    let recs = rx.acknowledged();
    assert_eq!(recs.len(), 81, "no duplicates without failures");
    for p in rx.posts() {
        assert!(p.body["Records"].as_array().unwrap().len() <= 7);
    }
    let m = per_item(&recs);
    for item in ["b", "c", "d"] {
        assert_eq!(m[item], (1..=20).collect::<Vec<_>>(), "{item}");
    }
    let mut a: Vec<i64> = (1..=20).collect();
    a.push(20);
    assert_eq!(m["a"], a);
    // Lambda's DynamoDB event record.
    let r = &recs[0];
    assert_eq!(r["eventVersion"], "1.1");
    assert_eq!(r["eventSource"], "aws:dynamodb");
    assert_eq!(r["awsRegion"], "us-east-1");
    assert!(r["eventID"].is_string());
    assert!(r["eventSourceARN"]
        .as_str()
        .unwrap()
        .contains(":table/orders/stream/"));
    let d = &r["dynamodb"];
    assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES");
    assert!(d["ApproximateCreationDateTime"].is_i64());
    assert!(d["SequenceNumber"].is_string() && d["SizeBytes"].is_u64());
    assert!(d["Keys"]["pk"]["S"].is_string());
    let names: Vec<&str> = recs
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "INSERT").count(), 4);
    assert_eq!(names.iter().filter(|n| **n == "REMOVE").count(), 1);
    let removed = recs.iter().find(|r| r["eventName"] == "REMOVE").unwrap();
    assert!(removed["dynamodb"]["OldImage"].is_object());
    assert!(removed["dynamodb"].get("NewImage").is_none());

    let (status, d) = admin(&s.url, "DescribeTrigger", json!({"TriggerId": id}));
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["State"], "Enabled");
    assert_eq!(d["Delivered"], 81);
    assert_eq!(d["LagRecords"], 0);
    assert_eq!(d["LastProcessingResult"], "OK");
}

#[test]
fn a_poison_record_is_isolated_by_bisection_and_lands_in_the_dead_letter_table() {
    let s = server();
    stream_table(&s.url, "tpoison");
    let rx = Receiver::start(|b| {
        let poisoned = b["Records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dynamodb"]["Keys"]["pk"]["S"] == "poison");
        if poisoned {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    });
    // Written before the trigger reads: one batch of 16 holds the poison record.
    for i in 0..16 {
        let pk = if i == 5 {
            "poison".to_owned()
        } else {
            format!("k{i}")
        };
        put(&s, "tpoison", &pk, i);
    }
    let id = create(
        &s,
        json!({"TableName": "tpoison", "Target": {"Url": rx.url}, "BatchSize": 16,
            "StartingPosition": "TRIM_HORIZON", "MaximumRetryAttempts": 2,
            "BisectBatchOnFunctionError": true,
            "DestinationConfig": {"OnFailure": {"Destination": "tpoison-dlq"}}}),
    );
    rx.wait_for(20, "15 good records", |r| r.acknowledged().len() >= 15);
    let dlq = {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, _) = ddb(&s.url, "DescribeTable", json!({"TableName": "tpoison-dlq"}));
            if status == 200 && !scan(&s, "tpoison-dlq").is_empty() {
                break scan(&s, "tpoison-dlq");
            }
            assert!(std::time::Instant::now() < deadline, "no dead letter");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    let item = &dlq[0];
    assert_eq!(item["attempts"]["N"], "3", "the first try and two retries");
    assert!(item["error"]["S"].as_str().unwrap().contains("500"));
    assert!(item["id"]["S"].as_str().unwrap().starts_with(&id));
    let record: Value = serde_json::from_str(item["record"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(record["dynamodb"]["Keys"]["pk"]["S"], "poison");
    let good = rx.acknowledged();
    assert_eq!(good.len(), 15);
    assert!(good
        .iter()
        .all(|r| r["dynamodb"]["Keys"]["pk"]["S"] != "poison"));
    let (_, d) = admin(&s.url, "DescribeTrigger", json!({"TriggerId": id}));
    assert_eq!(d["DeadLettered"], 1);
    assert!(d["LastError"].as_str().unwrap().contains("500"));
    let metrics = reqwest::blocking::get(format!("{}/metrics", s.url))
        .unwrap()
        .text()
        .unwrap();
    let line =
        format!("ferrodyn_trigger_dead_lettered_records{{trigger=\"{id}\",table=\"tpoison\"}} 1");
    assert!(metrics.contains(&line), "{metrics}");
    assert!(metrics.contains("ferrodyn_trigger_delivered_records{"));
    // Delivery goes on after the poison record.
    put(&s, "tpoison", "after", 1);
    rx.wait_for(20, "the next record", |r| r.acknowledged().len() >= 16);
}

#[test]
fn without_bisection_the_whole_batch_is_retried_then_dead_lettered() {
    let s = server();
    stream_table(&s.url, "whole");
    let rx = Receiver::start(|_| Reply::status(503));
    create(
        &s,
        json!({"TableName": "whole", "Target": {"Url": rx.url}, "BatchSize": 10,
            "StartingPosition": "TRIM_HORIZON", "MaximumRetryAttempts": 1,
            "DestinationConfig": {"OnFailure": {"Destination": "whole-dlq"}}}),
    );
    for i in 0..3 {
        put(&s, "whole", &format!("k{i}"), i);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ddb(&s.url, "DescribeTable", json!({"TableName": "whole-dlq"})).0 != 200
        || scan(&s, "whole-dlq").len() < 3
    {
        assert!(std::time::Instant::now() < deadline, "no dead letters");
        std::thread::sleep(Duration::from_millis(20));
    }
    let posts = rx.posts();
    assert!(posts.len() >= 2, "a try and a retry: {}", posts.len());
    for item in scan(&s, "whole-dlq") {
        assert_eq!(item["attempts"]["N"], "2");
    }
}

#[test]
fn partial_batch_responses_retry_from_the_lowest_failed_record() {
    let s = server();
    stream_table(&s.url, "partial");
    let refusals = Arc::new(AtomicU32::new(0));
    let r2 = refusals.clone();
    let rx = Receiver::start(move |b| {
        let recs = b["Records"].as_array().unwrap();
        let bad = recs
            .iter()
            .find(|r| r["dynamodb"]["Keys"]["pk"]["S"] == "k3")
            .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned());
        match bad {
            Some(seq) if r2.fetch_add(1, Ordering::SeqCst) < 2 => Reply::partial(&[&seq]),
            _ => Reply::ok(),
        }
    });
    for i in 0..6 {
        put(&s, "partial", &format!("k{i}"), i);
    }
    create(
        &s,
        json!({"TableName": "partial", "Target": {"Url": rx.url}, "BatchSize": 10,
            "StartingPosition": "TRIM_HORIZON",
            "FunctionResponseTypes": ["ReportBatchItemFailures"]}),
    );
    rx.wait_for(20, "k3's third batch", |r| {
        r.posts()
            .iter()
            .filter(|p| p.body.to_string().contains("\"k3\""))
            .count()
            >= 3
    });
    std::thread::sleep(Duration::from_millis(200));
    let posts = rx.posts();
    let keys = |p: &trigger_support::Received| -> Vec<String> {
        p.body["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| pk_v(r).0)
            .collect()
    };
    // Records of different items may sit in different shards; follow k3's batches.
    let with_k3: Vec<Vec<String>> = posts
        .iter()
        .map(keys)
        .filter(|k| k.iter().any(|x| x == "k3"))
        .collect();
    assert_eq!(with_k3.len(), 3, "{with_k3:?}");
    let at = with_k3[0].iter().position(|x| x == "k3").unwrap();
    let tail = with_k3[0][at..].to_vec();
    // What preceded k3 was acknowledged by the partial response: only k3 onwards comes again.
    assert_eq!(with_k3[1], tail);
    assert_eq!(with_k3[2], tail);
    let mut count: HashMap<String, usize> = HashMap::new();
    for p in &posts {
        for k in keys(p) {
            *count.entry(k).or_default() += 1;
        }
    }
    for i in 0..6 {
        let k = format!("k{i}");
        let expected = if tail.contains(&k) { 3 } else { 1 };
        assert_eq!(
            count[&k],
            expected,
            "{k}: {posts_keys:?}",
            posts_keys = posts.iter().map(keys).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_target_that_times_out_is_retried() {
    let s = server();
    stream_table(&s.url, "slow");
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = calls.clone();
    let rx = Receiver::start(move |_| {
        if c2.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::slow(Duration::from_millis(2500))
        } else {
            Reply::ok()
        }
    });
    let id = create(
        &s,
        json!({"TableName": "slow", "Target": {"Url": rx.url}, "TimeoutSeconds": 1,
            "StartingPosition": "TRIM_HORIZON"}),
    );
    put(&s, "slow", "a", 1);
    rx.wait_for(20, "the retry", |r| r.acknowledged().len() == 1);
    let (_, d) = admin(&s.url, "DescribeTrigger", json!({"TriggerId": id}));
    assert!(d["Failed"].as_u64().unwrap() >= 1, "{d}");
    assert!(
        d["LastError"].as_str().unwrap().contains("timed out"),
        "{d}"
    );
}

#[test]
fn filters_drop_exactly_the_records_they_do_not_match() {
    let s = server();
    stream_table(&s.url, "filtered");
    let rx = Receiver::start(|_| Reply::ok());
    // Numbers are strings in DynamoDB JSON, so Lambda's numeric matching does not apply to
    // them; a prefix on a string attribute does.
    let pattern = json!({"eventName": [{"anything-but": ["REMOVE"]}],
        "dynamodb": {"NewImage": {"status": {"S": [{"prefix": "ship"}]}}}});
    create(
        &s,
        json!({"TableName": "filtered", "Target": {"Url": rx.url}, "StartingPosition": "TRIM_HORIZON",
            "FilterCriteria": {"Filters": [{"Pattern": pattern.to_string()}]}}),
    );
    for v in [1, 10, 5, 12, 30] {
        let status = if v >= 10 { "shipped" } else { "pending" };
        let (code, _) = ddb(
            &s.url,
            "PutItem",
            json!({"TableName": "filtered", "Item": {"pk": {"S": "a"}, "v": {"N": v.to_string()},
                "status": {"S": status}}}),
        );
        assert_eq!(code, 200);
    }
    ddb(
        &s.url,
        "DeleteItem",
        json!({"TableName": "filtered", "Key": {"pk": {"S": "a"}}}),
    );
    let (code, _) = ddb(
        &s.url,
        "PutItem",
        json!({"TableName": "filtered", "Item": {"pk": {"S": "z"}, "v": {"N": "99"},
            "status": {"S": "shipping"}}}),
    );
    assert_eq!(code, 200);
    rx.wait_for(20, "the last record", |r| {
        r.acknowledged().iter().any(|x| pk_v(x).0 == "z")
    });
    std::thread::sleep(Duration::from_millis(100));
    let got: Vec<i64> = rx.acknowledged().iter().map(|r| pk_v(r).1).collect();
    assert_eq!(got, [10, 12, 30, 99]);
}

#[test]
fn latest_skips_what_was_written_before_the_trigger() {
    let s = server();
    stream_table(&s.url, "latest");
    put(&s, "latest", "old", 1);
    std::thread::sleep(Duration::from_millis(1100));
    let rx = Receiver::start(|_| Reply::ok());
    create(
        &s,
        json!({"TableName": "latest", "Target": {"Url": rx.url}, "StartingPosition": "LATEST"}),
    );
    put(&s, "latest", "new", 2);
    rx.wait_for(20, "the new record", |r| !r.acknowledged().is_empty());
    std::thread::sleep(Duration::from_millis(100));
    let keys: Vec<String> = rx.acknowledged().iter().map(|r| pk_v(r).0).collect();
    assert_eq!(keys, ["new"]);
}

#[test]
fn disable_enable_and_delete() {
    let s = server();
    stream_table(&s.url, "toggled");
    let rx = Receiver::start(|_| Reply::ok());
    let id = create(
        &s,
        json!({"TableName": "toggled", "Target": {"Url": rx.url}, "StartingPosition": "TRIM_HORIZON"}),
    );
    put(&s, "toggled", "a", 1);
    rx.wait_for(20, "the first record", |r| r.acknowledged().len() == 1);

    let (status, v) = admin(
        &s.url,
        "UpdateTrigger",
        json!({"TriggerId": id, "Enabled": false}),
    );
    assert_eq!((status, v["State"].as_str()), (200, Some("Disabled")));
    std::thread::sleep(Duration::from_millis(300));
    put(&s, "toggled", "a", 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.acknowledged().len(), 1, "nothing while disabled");
    let (_, d) = admin(&s.url, "DescribeTrigger", json!({"TriggerId": id}));
    assert_eq!(d["LagRecords"], 1, "{d}");

    admin(
        &s.url,
        "UpdateTrigger",
        json!({"TriggerId": id, "Enabled": true}),
    );
    rx.wait_for(20, "the record written while disabled", |r| {
        r.acknowledged().len() == 2
    });

    let (status, list) = admin(&s.url, "ListTriggers", json!({"TableName": "toggled"}));
    assert_eq!(status, 200);
    assert_eq!(list["Triggers"].as_array().unwrap().len(), 1);
    let (status, _) = admin(&s.url, "DeleteTrigger", json!({"TriggerId": id}));
    assert_eq!(status, 200);
    let (status, e) = admin(&s.url, "DescribeTrigger", json!({"TriggerId": id}));
    assert_eq!(status, 400);
    assert!(e["__type"]
        .as_str()
        .unwrap()
        .ends_with("ResourceNotFoundException"));
    std::thread::sleep(Duration::from_millis(300));
    put(&s, "toggled", "a", 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rx.acknowledged().len(), 2, "nothing after delete");
    let (_, list) = admin(&s.url, "ListTriggers", json!({}));
    assert_eq!(list["Triggers"], json!([]));
}

/// With ParallelizationFactor above 1, a lane that had its records acknowledged while another
/// lane of the same read kept failing does not deliver them again after the worker restarts
/// (the trigger disabled and enabled: it reloads its durable checkpoint).
#[test]
fn parallel_lanes_keep_their_progress_across_a_restart() {
    let s = server();
    stream_table(&s.url, "tlanes");
    let rx = Receiver::start(|body| {
        let poisoned = body["Records"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| pk_v(r).0 == "bad"));
        if poisoned {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    });
    // Written before the trigger exists, so its first read takes 16 of them at once.
    put(&s, "tlanes", "bad", 1);
    let items: Vec<String> = (0..24).map(|i| format!("item{i}")).collect();
    for item in &items {
        put(&s, "tlanes", item, 1);
    }
    let id = create(
        &s,
        json!({"TableName": "tlanes", "Target": {"Url": rx.url}, "BatchSize": 4,
            "ParallelizationFactor": 4, "MaximumRetryAttempts": -1,
            "StartingPosition": "TRIM_HORIZON"}),
    );
    // One read takes 16 records (BatchSize × ParallelizationFactor): the lanes without the
    // poisoned record get theirs through; the poisoned record's lane is stuck, so the read
    // (and the shard's checkpoint) does not complete.
    rx.wait_for(20, "the other lanes", |r| r.acknowledged().len() >= 3);
    std::thread::sleep(Duration::from_millis(300));
    let before = rx.acknowledged().len();
    assert!(before < items.len(), "one lane is blocked: {before}");
    let (status, _) = admin(
        &s.url,
        "UpdateTrigger",
        json!({"TriggerId": id, "Enabled": false}),
    );
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(300));
    rx.set(|_| Reply::ok());
    admin(
        &s.url,
        "UpdateTrigger",
        json!({"TriggerId": id, "Enabled": true}),
    );
    rx.wait_for(20, "every record", |r| {
        r.acknowledged().iter().any(|r| pk_v(r).0 == "bad") && r.acknowledged().len() > items.len()
    });
    std::thread::sleep(Duration::from_millis(300));
    let acked = rx.acknowledged();
    let m = per_item(&acked);
    for item in items.iter().map(String::as_str).chain(["bad"]) {
        assert_eq!(m[item], vec![1], "{item} delivered once");
    }
    assert_eq!(acked.len(), items.len() + 1);
}

#[test]
fn bad_requests_are_validation_errors() {
    let s = server();
    stream_table(&s.url, "valid");
    ddb(
        &s.url,
        "CreateTable",
        json!({"TableName": "nostream",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"}),
    );
    let url = json!({"Url": "http://127.0.0.1:9/x"});
    for (body, needle) in [
        (
            json!({"TableName": "valid", "Target": url, "BatchSize": 0}),
            "BatchSize",
        ),
        (
            json!({"TableName": "valid", "Target": url, "ParallelizationFactor": 11}),
            "ParallelizationFactor",
        ),
        (
            json!({"TableName": "valid", "Target": url, "MaximumRecordAgeInSeconds": 10}),
            "MaximumRecordAgeInSeconds",
        ),
        (
            json!({"TableName": "valid", "Target": {"Url": "ftp://x"}}),
            "Url",
        ),
        (json!({"TableName": "valid"}), "Target"),
        (json!({"Target": url}), "TableName"),
        (json!({"TableName": "nostream", "Target": url}), "stream"),
        (
            json!({"TableName": "valid", "Target": url, "FilterCriteria": {"Filters": [{"Pattern": "{"}]}}),
            "FilterCriteria",
        ),
    ] {
        let (status, e) = admin(&s.url, "CreateTrigger", body.clone());
        assert_eq!(status, 400, "{body}: {e}");
        assert!(
            e["__type"]
                .as_str()
                .unwrap()
                .ends_with("ValidationException"),
            "{e}"
        );
        assert!(
            e["message"].as_str().unwrap().contains(needle),
            "{body}: {e}"
        );
    }
    let (status, e) = admin(
        &s.url,
        "CreateTrigger",
        json!({"TableName": "missing", "Target": url}),
    );
    assert_eq!(status, 400);
    assert!(e["__type"]
        .as_str()
        .unwrap()
        .ends_with("ResourceNotFoundException"));
}

/// Every message of a JetStream stream: (headers, payload).
fn stored(url: &str, stream: &str) -> Vec<(HashMap<String, String>, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut handle = js.get_stream(stream).await.unwrap();
        let count = handle.info().await.unwrap().state.messages;
        let mut out = Vec::new();
        for seq in 1..=count {
            let m = handle.get_raw_message(seq).await.unwrap();
            let headers = m
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v[0].as_str().to_owned()))
                .collect();
            out.push((headers, serde_json::from_slice(&m.payload).unwrap()));
        }
        out
    })
}

#[test]
fn nats_jetstream_gets_one_message_per_record_with_a_deduplication_id() {
    let nats = ferrodyn_natstest::NatsServer::start().expect("nats-server");
    let s = server();
    stream_table(&s.url, "natsorders");
    for v in 1..=5 {
        for item in ["a", "b", "c"] {
            put(&s, "natsorders", item, v);
        }
    }
    let id = create(
        &s,
        json!({"TableName": "natsorders", "Target": {"Nats": nats.url(), "Subject": "orders.events"},
            "StartingPosition": "TRIM_HORIZON", "BatchSize": 4}),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, d) = admin(&s.url, "DescribeTrigger", json!({"TriggerId": id}));
        if d["Delivered"] == 15 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{d}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let msgs = stored(&nats.url(), "FERRODYN_orders_events");
    assert_eq!(msgs.len(), 15);
    let mut per: HashMap<String, Vec<i64>> = HashMap::new();
    for (h, body) in &msgs {
        let (pk, v) = pk_v(body);
        per.entry(pk).or_default().push(v);
        assert_eq!(h["Ferrodyn-Table"], "natsorders");
        assert_eq!(
            h["Ferrodyn-Event-Name"],
            body["eventName"].as_str().unwrap()
        );
        let seq = body["dynamodb"]["SequenceNumber"].as_str().unwrap();
        assert_eq!(h["Ferrodyn-Sequence-Number"], seq);
        assert_eq!(
            h["Nats-Msg-Id"],
            format!("{}/{seq}", body["eventSourceARN"].as_str().unwrap())
        );
    }
    for item in ["a", "b", "c"] {
        assert_eq!(per[item], [1, 2, 3, 4, 5]);
    }
}

/// Latency from an acknowledged write to its arrival at the receiver (`BatchingWindow` 0),
/// and delivery throughput; printed for docs/benchmarks.md, with a loose bound only (the
/// machine running the tests may be busy).
#[test]
fn delivery_latency_and_throughput() {
    use std::sync::Mutex;
    use std::time::Instant;
    let s = server();
    stream_table(&s.url, "latency");
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let a2 = arrived.clone();
    let rx = Receiver::start(move |b| {
        let now = Instant::now();
        let mut m = a2.lock().unwrap();
        for r in b["Records"].as_array().unwrap() {
            m.entry(pk_v(r).0).or_insert(now);
        }
        Reply::ok()
    });
    create(
        &s,
        json!({"TableName": "latency", "Target": {"Url": rx.url}, "StartingPosition": "LATEST"}),
    );
    std::thread::sleep(Duration::from_millis(300));
    let mut lat = Vec::new();
    for i in 0..200 {
        let pk = format!("lat{i}");
        put(&s, "latency", &pk, i);
        let acked = Instant::now();
        let deadline = acked + Duration::from_secs(10);
        let got = loop {
            if let Some(t) = arrived.lock().unwrap().get(&pk) {
                break *t;
            }
            assert!(Instant::now() < deadline, "{pk} never arrived");
            std::thread::sleep(Duration::from_micros(200));
        };
        lat.push(got.saturating_duration_since(acked).as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];

    // Throughput: 5,000 changes written in batches of 25, timed until the last arrives.
    let start = Instant::now();
    let client = reqwest::blocking::Client::new();
    for chunk in (0..5000).collect::<Vec<_>>().chunks(25) {
        let puts: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"PutRequest": {"Item": {"pk": {"S": format!("tp{i}")}, "v": {"N": "1"}}}}))
            .collect();
        let (status, _) = ferrodyn_testkit::call(
            &client,
            &s.url,
            "DynamoDB_20120810.BatchWriteItem",
            json!({"RequestItems": {"latency": puts}}).to_string(),
        )
        .unwrap();
        assert_eq!(status, 200);
    }
    let written = start.elapsed();
    rx.wait_for(60, "5,000 records", |_| {
        arrived.lock().unwrap().len() >= 5200
    });
    let total = start.elapsed();
    println!(
        "trigger latency (write acknowledged -> received, 200 sequential puts): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms; throughput: 5000 changes written in {:.2} s, all delivered after {:.2} s ({:.0} records/s)",
        p(0.5),
        p(0.9),
        p(0.99),
        written.as_secs_f64(),
        total.as_secs_f64(),
        5000.0 / total.as_secs_f64()
    );
    assert!(p(0.5) < 500.0, "p50 {} ms", p(0.5));
}
