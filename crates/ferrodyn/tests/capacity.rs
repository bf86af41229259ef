//! Capacity: what ReturnConsumedCapacity reports (INDEXES: the table's share and each touched
//! index's share add up), capacity enforcement
//! (`--enforce-capacity`: provisioned tables and indexes, on-demand limits, transactions,
//! batches, UpdateTable, SDK retries).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrodyn_core::throttle::ThrottleConfig;
use ferrodyn_core::EngineConfig;
use ferrodyn_storage::MemoryStorage;
use ferrodyn_testkit::{RawResponse, TestServer};
use serde_json::Value;

fn units(v: &Value) -> f64 {
    v["CapacityUnits"].as_f64().unwrap_or(0.0)
}

#[test]
fn index_shares_add_up_to_the_total() {
    let server = TestServer::in_memory();
    let r = server.raw(
        "CreateTable",
        r#"{"TableName":"cap","BillingMode":"PAY_PER_REQUEST",
            "AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"c","AttributeType":"S"},{"AttributeName":"x","AttributeType":"S"}],
            "KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"c","KeyType":"RANGE"}],
            "GlobalSecondaryIndexes":[{"IndexName":"gsi","KeySchema":[{"AttributeName":"x","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"}}],
            "LocalSecondaryIndexes":[{"IndexName":"lsi","KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"x","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = server.raw(
        "PutItem",
        r#"{"TableName":"cap","Item":{"p":{"S":"a"},"c":{"S":"b"},"x":{"S":"y"}},"ReturnConsumedCapacity":"INDEXES"}"#,
    );
    let cc = &r.json()["ConsumedCapacity"];
    let (t, g, l) = (
        units(&cc["Table"]),
        units(&cc["GlobalSecondaryIndexes"]["gsi"]),
        units(&cc["LocalSecondaryIndexes"]["lsi"]),
    );
    assert!(t > 0.0 && g > 0.0 && l > 0.0, "{cc}");
    assert_eq!(units(cc), t + g + l);
    // TOTAL reports the same sum without the breakdown.
    let r = server.raw(
        "PutItem",
        r#"{"TableName":"cap","Item":{"p":{"S":"a"},"c":{"S":"b"},"x":{"S":"y"}},"ReturnConsumedCapacity":"TOTAL"}"#,
    );
    let cc = &r.json()["ConsumedCapacity"];
    assert_eq!(units(cc), 3.0);
    assert!(cc.get("Table").is_none());
    // An item without the index key touches no index.
    let r = server.raw(
        "PutItem",
        r#"{"TableName":"cap","Item":{"p":{"S":"z"},"c":{"S":"b"}},"ReturnConsumedCapacity":"INDEXES"}"#,
    );
    let cc = &r.json()["ConsumedCapacity"];
    assert!(
        cc.get("GlobalSecondaryIndexes").is_none() && cc.get("LocalSecondaryIndexes").is_none(),
        "{cc}"
    );
    // Transactions double every share and also report them as write (or read) units.
    let r = server.raw(
        "TransactWriteItems",
        r#"{"TransactItems":[{"Put":{"TableName":"cap","Item":{"p":{"S":"t"},"c":{"S":"b"},"x":{"S":"y"}}}}],"ReturnConsumedCapacity":"INDEXES"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cc = &r.json()["ConsumedCapacity"][0];
    assert_eq!(
        *cc,
        serde_json::json!({"TableName": "cap", "CapacityUnits": 6.0, "WriteCapacityUnits": 6.0,
            "Table": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0},
            "GlobalSecondaryIndexes": {"gsi": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}},
            "LocalSecondaryIndexes": {"lsi": {"CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}}})
    );
    let r = server.raw(
        "TransactGetItems",
        r#"{"TransactItems":[{"Get":{"TableName":"cap","Key":{"p":{"S":"t"},"c":{"S":"b"}}}},{"Get":{"TableName":"cap","Key":{"p":{"S":"none"},"c":{"S":"b"}}}}],"ReturnConsumedCapacity":"TOTAL"}"#,
    );
    assert_eq!(
        r.json()["ConsumedCapacity"],
        serde_json::json!([{"TableName": "cap", "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0}])
    );
    // Single-item operations report CapacityUnits alone.
    let r = server.raw(
        "GetItem",
        r#"{"TableName":"cap","Key":{"p":{"S":"t"},"c":{"S":"b"}},"ReturnConsumedCapacity":"TOTAL"}"#,
    );
    assert_eq!(
        r.json()["ConsumedCapacity"],
        serde_json::json!({"TableName": "cap", "CapacityUnits": 0.5})
    );
    // A query on an index is charged to that index only.
    let r = server.raw(
        "Query",
        r#"{"TableName":"cap","IndexName":"gsi","KeyConditionExpression":"x = :x","ExpressionAttributeValues":{":x":{"S":"y"}},"ReturnConsumedCapacity":"INDEXES"}"#,
    );
    let cc = &r.json()["ConsumedCapacity"];
    assert!(cc.get("Table").is_none(), "{cc}");
    assert_eq!(units(cc), units(&cc["GlobalSecondaryIndexes"]["gsi"]));
}

// ---------------------------------------------------------------------------------------------
// Capacity enforcement (`--enforce-capacity`)
// ---------------------------------------------------------------------------------------------

const TABLE_MESSAGE: &str = "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.";
const INDEX_MESSAGE: &str = "The level of configured provisioned throughput for one or more global secondary indexes of the table was exceeded. Consider increasing your provisioning level for the under-provisioned global secondary indexes with the UpdateTable API";
const PTE: &str = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException";

/// A server enforcing capacity with a burst window of `burst` seconds instead of 300.
fn enforcing(burst: f64) -> TestServer {
    TestServer::with_config(
        Arc::new(MemoryStorage::new()),
        EngineConfig {
            capacity: Some(ThrottleConfig {
                burst_seconds: burst,
            }),
            ..EngineConfig::default()
        },
    )
}

fn create_provisioned(server: &TestServer, name: &str, rcu: u32, wcu: u32) {
    let r = server.raw(
        "CreateTable",
        &format!(
            r#"{{"TableName":"{name}","AttributeDefinitions":[{{"AttributeName":"p","AttributeType":"S"}}],
                "KeySchema":[{{"AttributeName":"p","KeyType":"HASH"}}],
                "ProvisionedThroughput":{{"ReadCapacityUnits":{rcu},"WriteCapacityUnits":{wcu}}}}}"#
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn put(server: &TestServer, table: &str, p: &str) -> RawResponse {
    server.raw(
        "PutItem",
        &format!(r#"{{"TableName":"{table}","Item":{{"p":{{"S":"{p}"}},"x":{{"S":"{p}"}}}}}}"#),
    )
}

/// Puts until the first refusal; returns how many succeeded and the refusal.
fn put_until_throttled(server: &TestServer, table: &str, max: usize) -> (usize, RawResponse) {
    for i in 0..max {
        let r = put(server, table, &format!("k{i}"));
        if r.status != 200 {
            return (i, r);
        }
    }
    panic!("{max} puts were never throttled");
}

#[test]
fn a_provisioned_table_throttles_a_burst_once_its_burst_capacity_is_spent_and_recovers() {
    let server = enforcing(2.0);
    create_provisioned(&server, "burst", 5, 5);
    // A bucket starts with one second of capacity; idle, it saves up to its 2-second window.
    assert_eq!(put(&server, "burst", "first").status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    let started = Instant::now();
    let (ok, r) = put_until_throttled(&server, "burst", 100);
    let refill = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!(ok >= 10 && ok <= 10 + refill, "{ok} puts before throttling");
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["__type"], PTE);
    assert_eq!(body["message"], TABLE_MESSAGE);
    assert_eq!(
        body["ThrottlingReasons"],
        serde_json::json!([{"reason": "TableWriteProvisionedThroughputExceeded",
            "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/burst"}])
    );
    // Reads have their own capacity.
    let r = server.raw("GetItem", r#"{"TableName":"burst","Key":{"p":{"S":"k0"}}}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    // A fifth of a second later one write unit has come back.
    std::thread::sleep(Duration::from_millis(300));
    let r = put(&server, "burst", "later");
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Runs `f` on a runtime of its own (raw requests block, so tests that mix them with the SDK
/// are not async themselves).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn an_sdk_client_with_standard_retries_succeeds_against_a_throttled_table() {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::types::AttributeValue;
    let server = enforcing(1.0);
    create_provisioned(&server, "retried", 5, 10);
    let base = server.client();
    let client = aws_sdk_dynamodb::Client::from_conf(
        base.config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(10))
            .build(),
    );
    let started = Instant::now();
    block_on(async {
        for i in 0..30 {
            client
                .put_item()
                .table_name("retried")
                .item("p", AttributeValue::S(format!("k{i}")))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {i}: {e:?}"));
        }
    });
    // 30 units at 10 per second, 10 of them in the bucket: the retries waited for the rest.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_throttled_global_index_throttles_the_table_write_and_its_own_reads() {
    let server = enforcing(1.0);
    let r = server.raw(
        "CreateTable",
        r#"{"TableName":"gsi","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"x","AttributeType":"S"}],
            "KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],
            "ProvisionedThroughput":{"ReadCapacityUnits":100,"WriteCapacityUnits":100},
            "GlobalSecondaryIndexes":[{"IndexName":"byx","KeySchema":[{"AttributeName":"x","KeyType":"HASH"}],
                "Projection":{"ProjectionType":"ALL"},
                "ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1}}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The index's one write unit goes to the first put; the second put is refused for it.
    let r = put(&server, "gsi", "a");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = put(&server, "gsi", "b");
    assert_eq!(r.status, 400, "{}", r.body);
    let body = r.json();
    assert_eq!(body["__type"], PTE);
    assert_eq!(body["message"], INDEX_MESSAGE);
    assert_eq!(
        body["ThrottlingReasons"],
        serde_json::json!([{"reason": "IndexWriteProvisionedThroughputExceeded",
            "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/gsi/index/byx"}])
    );
    // Reads of the table do not touch the index's capacity ...
    for _ in 0..5 {
        let r = server.raw(
            "Query",
            r#"{"TableName":"gsi","KeyConditionExpression":"p = :p","ExpressionAttributeValues":{":p":{"S":"a"}}}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // ... reads of the index do: one unit is two eventually consistent queries.
    let query = r#"{"TableName":"gsi","IndexName":"byx","KeyConditionExpression":"x = :x","ExpressionAttributeValues":{":x":{"S":"a"}},"ReturnConsumedCapacity":"INDEXES"}"#;
    for _ in 0..2 {
        let r = server.raw("Query", query);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.json()["ConsumedCapacity"]["GlobalSecondaryIndexes"]["byx"]["CapacityUnits"],
            0.5
        );
    }
    let r = server.raw("Query", query);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["message"], INDEX_MESSAGE);
    assert_eq!(
        r.json()["ThrottlingReasons"][0]["reason"],
        "IndexReadProvisionedThroughputExceeded"
    );
}

#[test]
fn on_demand_tables_throttle_at_their_maximum_throughput() {
    let server = enforcing(300.0);
    let r = server.raw(
        "CreateTable",
        r#"{"TableName":"ondemand","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"}],
            "KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST",
            "OnDemandThroughput":{"MaxWriteRequestUnits":2}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["TableDescription"]["OnDemandThroughput"],
        serde_json::json!({"MaxWriteRequestUnits": 2})
    );
    let (ok, r) = put_until_throttled(&server, "ondemand", 50);
    assert!((2..=4).contains(&ok), "{ok}");
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#ThrottlingException"
    );
    assert_eq!(
        body["message"],
        "Throughput exceeds the maximum OnDemandThroughput configured on table or index"
    );
    assert_eq!(
        body["throttlingReasons"],
        serde_json::json!([{"reason": "TableWriteMaxOnDemandThroughputExceeded",
            "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/ondemand"}])
    );
    // Removing the maximum leaves the default per-table quota (40 000 units a second).
    let r = server.raw(
        "UpdateTable",
        r#"{"TableName":"ondemand","OnDemandThroughput":{"MaxWriteRequestUnits":-1}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["TableDescription"]
        .get("OnDemandThroughput")
        .is_none());
    for i in 0..50 {
        let r = put(&server, "ondemand", &format!("after{i}"));
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn an_on_demand_index_throttles_at_its_own_maximum() {
    let server = enforcing(300.0);
    let r = server.raw(
        "CreateTable",
        r#"{"TableName":"odgsi","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"x","AttributeType":"S"}],
            "KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST",
            "GlobalSecondaryIndexes":[{"IndexName":"byx","KeySchema":[{"AttributeName":"x","KeyType":"HASH"}],
                "Projection":{"ProjectionType":"ALL"},"OnDemandThroughput":{"MaxReadRequestUnits":1}}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let gsi = &r.json()["TableDescription"]["GlobalSecondaryIndexes"][0];
    assert_eq!(
        gsi["OnDemandThroughput"],
        serde_json::json!({"MaxReadRequestUnits": 1})
    );
    assert!(r.json()["TableDescription"]
        .get("OnDemandThroughput")
        .is_none());
    let query = r#"{"TableName":"odgsi","IndexName":"byx","KeyConditionExpression":"x = :x","ExpressionAttributeValues":{":x":{"S":"a"}}}"#;
    for _ in 0..2 {
        assert_eq!(server.raw("Query", query).status, 200);
    }
    let r = server.raw("Query", query);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["throttlingReasons"],
        serde_json::json!([{"reason": "IndexReadMaxOnDemandThroughputExceeded",
            "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/odgsi/index/byx"}])
    );
    // Raising it through GlobalSecondaryIndexUpdates applies at once.
    let r = server.raw(
        "UpdateTable",
        r#"{"TableName":"odgsi","GlobalSecondaryIndexUpdates":[{"Update":{"IndexName":"byx","OnDemandThroughput":{"MaxReadRequestUnits":1000}}}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["TableDescription"]["GlobalSecondaryIndexes"][0]["OnDemandThroughput"],
        serde_json::json!({"MaxReadRequestUnits": 1000})
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(server.raw("Query", query).status, 200);
}

#[test]
fn a_failed_conditional_write_is_charged_the_size_of_the_item_it_found() {
    let server = enforcing(1.0);
    create_provisioned(&server, "cond", 5, 5);
    // Five units to start with; a 3 KB item takes three.
    let big = format!(
        r#"{{"TableName":"cond","Item":{{"p":{{"S":"big"}},"pad":{{"S":"{}"}}}}}}"#,
        "z".repeat(3000)
    );
    assert_eq!(server.raw("PutItem", &big).status, 200);
    let r = server.raw(
        "PutItem",
        r#"{"TableName":"cond","Item":{"p":{"S":"big"}},"ConditionExpression":"attribute_not_exists(p)"}"#,
    );
    assert_eq!(
        r.error_code(),
        "ConditionalCheckFailedException",
        "{}",
        r.body
    );
    // The failed put was charged three units, not one: nothing is left for another write.
    let r = put(&server, "cond", "next");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["__type"], PTE);
}

#[test]
fn update_table_changing_throughput_takes_effect() {
    let server = enforcing(1.0);
    create_provisioned(&server, "grow", 1, 1);
    let (ok, _) = put_until_throttled(&server, "grow", 20);
    assert!(ok <= 2, "{ok}");
    let r = server.raw(
        "UpdateTable",
        r#"{"TableName":"grow","ProvisionedThroughput":{"ReadCapacityUnits":1,"WriteCapacityUnits":1000}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..20 {
        let r = put(&server, "grow", &format!("more{i}"));
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[test]
fn transactions_count_double_and_are_cancelled_when_throttled() {
    let server = enforcing(1.0);
    create_provisioned(&server, "txn", 4, 4);
    let tx = |p: &str| {
        server.raw(
            "TransactWriteItems",
            &format!(
                r#"{{"TransactItems":[{{"Put":{{"TableName":"txn","Item":{{"p":{{"S":"{p}"}}}}}}}}],"ReturnConsumedCapacity":"TOTAL"}}"#
            ),
        )
    };
    // Four units: two transactional puts of two units each.
    for p in ["a", "b"] {
        let r = tx(p);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.json()["ConsumedCapacity"],
            serde_json::json!([{"TableName": "txn", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}])
        );
    }
    let r = tx("c");
    assert_eq!(r.status, 400, "{}", r.body);
    let body = r.json();
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
    );
    assert_eq!(
        body["CancellationReasons"],
        serde_json::json!([{"Code": "ProvisionedThroughputExceeded", "Message": TABLE_MESSAGE}])
    );
}

#[test]
fn batch_writes_return_a_throttled_tables_requests_unprocessed() {
    let server = enforcing(1.0);
    create_provisioned(&server, "slow", 1, 1);
    create_provisioned(&server, "fast", 100, 100);
    let _ = put_until_throttled(&server, "slow", 10);
    let r = server.raw(
        "BatchWriteItem",
        r#"{"RequestItems":{"slow":[{"PutRequest":{"Item":{"p":{"S":"s"}}}}],
            "fast":[{"PutRequest":{"Item":{"p":{"S":"f"}}}}]}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["UnprocessedItems"],
        serde_json::json!({"slow": [{"PutRequest": {"Item": {"p": {"S": "s"}}}}]})
    );
    // Only when every table is throttled does the call fail.
    let r = server.raw(
        "BatchWriteItem",
        r#"{"RequestItems":{"slow":[{"PutRequest":{"Item":{"p":{"S":"s"}}}}]}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["__type"], PTE);
    // BatchGetItem likewise leaves a throttled table's keys unprocessed.
    let _ = (0..10).try_for_each(|_| {
        let r = server.raw(
            "GetItem",
            r#"{"TableName":"slow","Key":{"p":{"S":"s"}},"ConsistentRead":true}"#,
        );
        (r.status == 200).then_some(())
    });
    let r = server.raw(
        "BatchGetItem",
        r#"{"RequestItems":{"slow":{"Keys":[{"p":{"S":"s"}}]},"fast":{"Keys":[{"p":{"S":"f"}}]}}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["UnprocessedKeys"]["slow"]["Keys"],
        serde_json::json!([{"p": {"S": "s"}}])
    );
    assert_eq!(
        r.json()["Responses"]["fast"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn without_enforcement_nothing_is_throttled() {
    let server = TestServer::in_memory();
    create_provisioned(&server, "free", 1, 1);
    for i in 0..50 {
        let r = put(&server, "free", &format!("k{i}"));
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server.raw("Scan", r#"{"TableName":"free","ConsistentRead":true}"#);
        assert_eq!(r.status, 200, "{}", r.body);
    }
}
