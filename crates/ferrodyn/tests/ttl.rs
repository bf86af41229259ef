//! Time to Live over HTTP: settings and their errors, and the background expiry (with a short
//! sweep interval) including the REMOVE stream record attributed to the service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_core::EngineConfig;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::TestServer;
use serde_json::{json, Value};

fn server() -> TestServer {
    TestServer::with_config(
        Arc::new(MemoryStorage::new()),
        EngineConfig {
            durability: Durability::Buffered,
            ttl_interval: Duration::from_millis(200),
            ..EngineConfig::default()
        },
    )
}

fn ok(s: &TestServer, op: &str, body: Value) -> Value {
    let r = s.raw(op, &body.to_string());
    assert_eq!(r.status, 200, "{op}: {}", r.body);
    r.json()
}

fn err(s: &TestServer, op: &str, body: Value) -> (String, String) {
    let r = s.raw(op, &body.to_string());
    assert_eq!(r.status, 400, "{op}: {}", r.body);
    (r.error_code(), r.message())
}

fn create(s: &TestServer, name: &str, stream: bool) {
    let mut body = json!({
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": "p", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    });
    if stream {
        body["StreamSpecification"] = json!({"StreamEnabled": true, "StreamViewType": "OLD_IMAGE"});
    }
    ok(s, "CreateTable", body);
}

fn ttl(s: &TestServer, t: &str, attr: &str, on: bool) -> Result<Value, (String, String)> {
    let body =
        json!({"TableName": t, "TimeToLiveSpecification": {"AttributeName": attr, "Enabled": on}});
    let r = s.raw("UpdateTimeToLive", &body.to_string());
    if r.status == 200 {
        Ok(r.json())
    } else {
        Err((r.error_code(), r.message()))
    }
}

#[test]
fn settings_and_errors() {
    let s = server();
    create(&s, "ttlt", false);
    let d = ok(&s, "DescribeTimeToLive", json!({"TableName": "ttlt"}));
    assert_eq!(
        d,
        json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}})
    );
    let (code, msg) = ttl(&s, "ttlt", "e", false).unwrap_err();
    assert!(
        code.contains("ValidationException") && msg.contains("disabled"),
        "{msg}"
    );
    let out = ttl(&s, "ttlt", "e", true).unwrap();
    assert_eq!(
        out,
        json!({"TimeToLiveSpecification": {"AttributeName": "e", "Enabled": true}})
    );
    let d = ok(&s, "DescribeTimeToLive", json!({"TableName": "ttlt"}));
    assert_eq!(
        d,
        json!({"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "e"}})
    );
    let (_, msg) = ttl(&s, "ttlt", "e", true).unwrap_err();
    assert!(msg.contains("already enabled"), "{msg}");
    let (_, msg) = ttl(&s, "ttlt", "other", true).unwrap_err();
    assert!(msg.contains("active"), "{msg}");
    let (_, msg) = ttl(&s, "ttlt", "other", false).unwrap_err();
    assert!(msg.contains("different"), "{msg}");
    ttl(&s, "ttlt", "e", false).unwrap();
    let d = ok(&s, "DescribeTimeToLive", json!({"TableName": "ttlt"}));
    assert_eq!(d["TimeToLiveDescription"]["TimeToLiveStatus"], "DISABLED");
    let (code, _) = ttl(&s, "nope", "e", true).unwrap_err();
    assert!(code.contains("ResourceNotFoundException"), "{code}");
    let (code, _) = err(&s, "DescribeTimeToLive", json!({"TableName": "nope"}));
    assert!(code.contains("ResourceNotFoundException"), "{code}");
    let (code, _) = ttl(&s, "ttlt", "", true).unwrap_err();
    assert!(code.contains("ValidationException"), "{code}");
}

#[test]
fn expired_items_are_deleted_with_a_service_record() {
    let s = server();
    create(&s, "ttlx", true);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let items = [
        ("past", json!({"N": (now - 60).to_string()})),
        ("past-exp", json!({"N": format!("{}e1", (now - 60) / 10)})),
        ("past-frac", json!({"N": format!("{}.25", now - 60)})),
        ("future", json!({"N": (now + 3600).to_string()})),
        ("ancient", json!({"N": "162777600"})),
        ("string", json!({"S": (now - 60).to_string()})),
    ];
    for (p, e) in &items {
        ok(
            &s,
            "PutItem",
            json!({"TableName": "ttlx", "Item": {"p": {"S": p}, "e": e}}),
        );
    }
    ok(
        &s,
        "PutItem",
        json!({"TableName": "ttlx", "Item": {"p": {"S": "none"}}}),
    );
    // Expired but not yet swept items are still returned.
    let got = ok(
        &s,
        "GetItem",
        json!({"TableName": "ttlx", "Key": {"p": {"S": "past"}}}),
    );
    assert!(got.get("Item").is_some());
    ttl(&s, "ttlx", "e", true).unwrap();

    let gone = |p: &str| {
        ok(
            &s,
            "GetItem",
            json!({"TableName": "ttlx", "Key": {"p": {"S": p}}, "ConsistentRead": true}),
        )
        .get("Item")
        .is_none()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(gone("past") && gone("past-exp") && gone("past-frac")) {
        assert!(Instant::now() < deadline, "expired items were not deleted");
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in ["future", "ancient", "string", "none"] {
        assert!(!gone(p), "{p} must stay");
    }

    // The stream has a REMOVE by the service for each expiry, and plain INSERTs before.
    let desc = ok(&s, "DescribeTable", json!({"TableName": "ttlx"}));
    let arn = desc["Table"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_string();
    let target = |op: &str| format!("DynamoDBStreams_20120810.{op}");
    let sd = s
        .raw_with(
            Some(&target("DescribeStream")),
            &json!({"StreamArn": arn}).to_string(),
            true,
        )
        .json();
    let mut removes = Vec::new();
    for sh in sd["StreamDescription"]["Shards"].as_array().unwrap() {
        let it = s
            .raw_with(
                Some(&target("GetShardIterator")),
                &json!({"StreamArn": arn, "ShardId": sh["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}).to_string(),
                true,
            )
            .json();
        let page = s
            .raw_with(
                Some(&target("GetRecords")),
                &json!({"ShardIterator": it["ShardIterator"]}).to_string(),
                true,
            )
            .json();
        for r in page["Records"].as_array().unwrap() {
            if r["eventName"] == "REMOVE" {
                assert_eq!(
                    r["userIdentity"],
                    json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"})
                );
                assert!(r["dynamodb"]["OldImage"]["e"].is_object());
                removes.push(
                    r["dynamodb"]["Keys"]["p"]["S"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            } else {
                assert!(r.get("userIdentity").is_none());
            }
        }
    }
    removes.sort();
    assert_eq!(removes, ["past", "past-exp", "past-frac"]);
}
