//! TransactWriteItems and TransactGetItems: atomicity, cancellation reasons, validation tiers,
//! ClientRequestToken idempotency, and isolation under concurrent clients.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as AV, BillingMode, Get, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactGetItem, TransactWriteItem, Update,
};
use ferrodyn_testkit::{RawResponse, TestServer};
use serde_json::{json, Value};

const CREATE: &str = r#"{"TableName":"tbl","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#;
const CREATE2: &str = r#"{"TableName":"tbl2","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],"BillingMode":"PAY_PER_REQUEST"}"#;

fn server() -> TestServer {
    let s = TestServer::in_memory();
    assert_eq!(s.raw("CreateTable", CREATE).status, 200);
    assert_eq!(s.raw("CreateTable", CREATE2).status, 200);
    s
}

fn call(s: &TestServer, op: &str, body: Value) -> RawResponse {
    s.raw(op, &body.to_string())
}

fn ok(s: &TestServer, op: &str, body: Value) -> Value {
    let r = call(s, op, body);
    assert_eq!(r.status, 200, "{op}: {}", r.body);
    r.json()
}

fn put(s: &TestServer, item: Value) {
    ok(s, "PutItem", json!({"TableName": "tbl", "Item": item}));
}

fn get(s: &TestServer, pk: &str) -> Value {
    ok(
        s,
        "GetItem",
        json!({"TableName": "tbl", "Key": {"pk": {"S": pk}}, "ConsistentRead": true}),
    )["Item"]
        .clone()
}

fn codes(r: &RawResponse) -> Vec<String> {
    r.json()["CancellationReasons"]
        .as_array()
        .expect("CancellationReasons")
        .iter()
        .map(|x| x["Code"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn write_is_all_or_nothing_with_reasons_in_request_order() {
    let s = server();
    put(&s, json!({"pk": {"S": "a"}, "v": {"N": "1"}}));
    put(&s, json!({"pk": {"S": "c"}, "v": {"N": "3"}}));
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "tbl", "Item": {"pk": {"S": "new"}}}},
            {"ConditionCheck": {"TableName": "tbl", "Key": {"pk": {"S": "a"}},
                "ConditionExpression": "v = :two", "ExpressionAttributeValues": {":two": {"N": "2"}},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Put": {"TableName": "tbl", "Item": {"pk": {"S": "b"}}, "ConditionExpression": "attribute_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Update": {"TableName": "tbl", "Key": {"pk": {"S": "c"}}, "UpdateExpression": "SET v = v + :one",
                "ConditionExpression": "attribute_exists(pk)", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": "tbl", "Key": {"pk": {"S": "c2"}}}}
        ]}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "TransactionCanceledException");
    assert_eq!(
        r.message(),
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed, ConditionalCheckFailed, None, None]"
    );
    assert_eq!(
        codes(&r),
        [
            "None",
            "ConditionalCheckFailed",
            "ConditionalCheckFailed",
            "None",
            "None"
        ]
    );
    let reasons = r.json()["CancellationReasons"].clone();
    assert!(reasons[0].get("Message").is_none());
    assert_eq!(reasons[1]["Message"], "The conditional request failed");
    assert_eq!(
        reasons[1]["Item"],
        json!({"pk": {"S": "a"}, "v": {"N": "1"}})
    );
    // ALL_OLD on a missing item returns no Item.
    assert!(reasons[2].get("Item").is_none());
    // Nothing was applied.
    assert_eq!(get(&s, "new"), Value::Null);
    assert_eq!(get(&s, "c")["v"], json!({"N": "3"}));
}

#[test]
fn successful_write_applies_every_action_and_reports_double_capacity() {
    let s = server();
    put(&s, json!({"pk": {"S": "upd"}, "v": {"N": "1"}}));
    put(&s, json!({"pk": {"S": "del"}}));
    put(&s, json!({"pk": {"S": "chk"}, "state": {"S": "open"}}));
    let out = ok(
        &s,
        "TransactWriteItems",
        json!({"ReturnConsumedCapacity": "TOTAL", "TransactItems": [
            {"Put": {"TableName": "tbl", "Item": {"pk": {"S": "put"}, "x": {"S": "y"}},
                "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": "tbl", "Key": {"pk": {"S": "upd"}}, "UpdateExpression": "SET #v = #v + :one",
                "ExpressionAttributeNames": {"#v": "v"}, "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": "tbl", "Key": {"pk": {"S": "del"}}, "ConditionExpression": "attribute_exists(pk)"}},
            {"ConditionCheck": {"TableName": "tbl", "Key": {"pk": {"S": "chk"}},
                "ConditionExpression": "#s = :open", "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":open": {"S": "open"}}}},
            {"Put": {"TableName": "tbl2", "Item": {"pk": {"S": "p"}, "sk": {"N": "1"}}}}
        ]}),
    );
    assert_eq!(get(&s, "put")["x"], json!({"S": "y"}));
    assert_eq!(get(&s, "upd")["v"], json!({"N": "2"}));
    assert_eq!(get(&s, "del"), Value::Null);
    assert_eq!(get(&s, "chk")["state"], json!({"S": "open"}));
    assert_eq!(
        out["ConsumedCapacity"],
        json!([
            {"TableName": "tbl", "CapacityUnits": 8.0, "WriteCapacityUnits": 8.0},
            {"TableName": "tbl2", "CapacityUnits": 2.0, "WriteCapacityUnits": 2.0}
        ])
    );
    // Without ReturnConsumedCapacity the answer is an empty object.
    let out = ok(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "z"}}}}]}),
    );
    assert_eq!(out, json!({}));
}

#[test]
fn update_in_transaction_follows_update_item_semantics() {
    let s = server();
    // Upsert when absent.
    ok(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Update": {"TableName": "tbl", "Key": {"pk": {"S": "u"}},
            "UpdateExpression": "SET s = :v", "ConditionExpression": "attribute_not_exists(pk)",
            "ExpressionAttributeValues": {":v": {"S": "created"}}}}]}),
    );
    assert_eq!(
        get(&s, "u"),
        json!({"pk": {"S": "u"}, "s": {"S": "created"}})
    );
    // attribute_exists on a missing item cancels and leaves no ghost item.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Update": {"TableName": "tbl", "Key": {"pk": {"S": "ghost"}},
            "UpdateExpression": "ADD n :one", "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":one": {"N": "1"}}}}]}),
    );
    assert_eq!(codes(&r), ["ConditionalCheckFailed"]);
    assert_eq!(get(&s, "ghost"), Value::Null);
    // Updating a key attribute is a per-action validation error.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Update": {"TableName": "tbl", "Key": {"pk": {"S": "u"}},
            "UpdateExpression": "SET pk = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}}}]}),
    );
    assert_eq!(codes(&r), ["ValidationError"]);
    assert!(r.json()["CancellationReasons"][0]["Message"]
        .as_str()
        .unwrap()
        .contains("Cannot update attribute pk. This attribute is part of the key"));
    // A type error while applying the update cancels with ValidationError.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "tbl", "Item": {"pk": {"S": "other"}}}},
            {"Update": {"TableName": "tbl", "Key": {"pk": {"S": "u"}},
            "UpdateExpression": "SET s = s + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}]}),
    );
    assert_eq!(codes(&r), ["None", "ValidationError"]);
    assert_eq!(get(&s, "other"), Value::Null);
}

#[test]
fn request_level_and_action_level_validation() {
    let s = server();
    // Two operations on one item, including a ConditionCheck.
    for second in [
        json!({"Put": {"TableName": "tbl", "Item": {"pk": {"S": "d"}}}}),
        json!({"ConditionCheck": {"TableName": "tbl", "Key": {"pk": {"S": "d"}}, "ConditionExpression": "attribute_not_exists(pk)"}}),
    ] {
        let r = call(
            &s,
            "TransactWriteItems",
            json!({"TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "d"}}}}, second]}),
        );
        assert_eq!(r.error_code(), "ValidationException");
        assert_eq!(
            r.message(),
            "Transaction request cannot include multiple operations on one item"
        );
    }
    // Same key in different tables is fine.
    ok(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "tbl", "Item": {"pk": {"S": "d"}}}},
            {"Put": {"TableName": "tbl2", "Item": {"pk": {"S": "d"}, "sk": {"N": "0"}}}}]}),
    );
    // Exactly one action per element.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "e"}}},
            "Delete": {"TableName": "tbl", "Key": {"pk": {"S": "e"}}}}]}),
    );
    assert_eq!(r.error_code(), "ValidationException");
    assert_eq!(
        r.message(),
        "TransactItems can only contain one of Check, Put, Update or Delete"
    );
    // Missing table.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "nope", "Item": {"pk": {"S": "e"}}}}]}),
    );
    assert_eq!(r.error_code(), "ResourceNotFoundException");
    assert_eq!(r.message(), "Requested resource not found");
    // Expression problems fail the whole request.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "e"}}, "ConditionExpression": "hello!"}}]}),
    );
    assert_eq!(r.error_code(), "ValidationException");
    assert!(r.message().contains("Syntax error"), "{}", r.message());
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "e"}},
            "ConditionExpression": "attribute_exists(pk)", "ExpressionAttributeValues": {":xyz": {"N": "7"}}}}]}),
    );
    assert_eq!(r.error_code(), "ValidationException");
    assert!(r.message().contains(":xyz"), "{}", r.message());
    // Key problems: ValidationError for the first bad action only, conditions not evaluated.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "tbl", "Item": {"pk": {"N": "7"}}}},
            {"Put": {"TableName": "tbl", "Item": {"pk": {"N": "8"}}}},
            {"Put": {"TableName": "tbl", "Item": {"pk": {"S": "f"}}, "ConditionExpression": "attribute_exists(pk)"}}]}),
    );
    assert_eq!(r.error_code(), "TransactionCanceledException");
    assert_eq!(codes(&r), ["ValidationError", "None", "None"]);
    let reasons = r.json()["CancellationReasons"].clone();
    assert!(reasons[0]["Message"].is_string());
    assert!(reasons[1].get("Message").is_none());
    // Aggregate size over 4 MB.
    let big = "x".repeat(350_000);
    let items: Vec<Value> = (0..12)
        .map(|i| json!({"Put": {"TableName": "tbl", "Item": {"pk": {"S": format!("big{i}")}, "p": {"S": big}}}}))
        .collect();
    let r = call(&s, "TransactWriteItems", json!({ "TransactItems": items }));
    assert_eq!(r.error_code(), "ValidationException");
    assert!(
        r.message().contains("size cannot exceed"),
        "{}",
        r.message()
    );
    assert_eq!(get(&s, "big0"), Value::Null);
}

#[test]
fn client_request_token_makes_the_transaction_idempotent() {
    let s = server();
    put(&s, json!({"pk": {"S": "ctr"}, "x": {"N": "42"}}));
    let incr = |token: Option<&str>| {
        let mut body = json!({"TransactItems": [{"Update": {"TableName": "tbl", "Key": {"pk": {"S": "ctr"}},
            "UpdateExpression": "SET x = x + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}]});
        if let Some(t) = token {
            body["ClientRequestToken"] = json!(t);
        }
        body
    };
    ok(&s, "TransactWriteItems", incr(None));
    ok(&s, "TransactWriteItems", incr(None));
    assert_eq!(get(&s, "ctr")["x"], json!({"N": "44"}));
    ok(&s, "TransactWriteItems", incr(Some("tok-1")));
    ok(&s, "TransactWriteItems", incr(Some("tok-1")));
    assert_eq!(get(&s, "ctr")["x"], json!({"N": "45"}));
    // Member order in the JSON does not make a request different.
    let reordered = r#"{"ClientRequestToken":"tok-1","TransactItems":[{"Update":{"ExpressionAttributeValues":{":one":{"N":"1"}},"UpdateExpression":"SET x = x + :one","Key":{"pk":{"S":"ctr"}},"TableName":"tbl"}}]}"#;
    let r = s.raw("TransactWriteItems", reordered);
    assert_eq!(r.status, 200, "{}", r.body);
    // A replay reports read capacity instead of write capacity.
    let mut replay = incr(Some("tok-1"));
    replay["ReturnConsumedCapacity"] = json!("TOTAL");
    let out = ok(&s, "TransactWriteItems", replay);
    assert_eq!(
        out["ConsumedCapacity"],
        json!([{"TableName": "tbl", "CapacityUnits": 1.0, "ReadCapacityUnits": 1.0}])
    );
    assert_eq!(get(&s, "ctr")["x"], json!({"N": "45"}));
    // Same token, different request.
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"ClientRequestToken": "tok-1", "TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "other"}}}}]}),
    );
    assert_eq!(r.error_code(), "IdempotentParameterMismatchException");
    assert_eq!(get(&s, "other"), Value::Null);
    // A cancelled transaction does not consume its token.
    let failing = json!({"ClientRequestToken": "tok-2", "TransactItems": [{"Put": {"TableName": "tbl",
        "Item": {"pk": {"S": "later"}}, "ConditionExpression": "attribute_exists(pk)"}}]});
    assert_eq!(
        call(&s, "TransactWriteItems", failing.clone()).error_code(),
        "TransactionCanceledException"
    );
    let r = call(
        &s,
        "TransactWriteItems",
        json!({"ClientRequestToken": "tok-2", "TransactItems": [{"Put": {"TableName": "tbl", "Item": {"pk": {"S": "later"}}}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Token length is bounded by the model (1..=36).
    let mut long = incr(None);
    long["ClientRequestToken"] = json!("x".repeat(37));
    let r = call(&s, "TransactWriteItems", long);
    assert_eq!(r.error_code(), "ValidationException");
    assert!(
        r.message().contains("clientRequestToken"),
        "{}",
        r.message()
    );
}

#[test]
fn transact_get_reads_items_in_order() {
    let s = server();
    put(
        &s,
        json!({"pk": {"S": "a"}, "x": {"N": "1"}, "y": {"N": "2"}, "z": {"N": "3"}}),
    );
    ok(
        &s,
        "PutItem",
        json!({"TableName": "tbl2", "Item": {"pk": {"S": "a"}, "sk": {"N": "5"}, "d": {"S": "two"}}}),
    );
    let out = ok(
        &s,
        "TransactGetItems",
        json!({"ReturnConsumedCapacity": "TOTAL", "TransactItems": [
            {"Get": {"TableName": "tbl", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "#x, z",
                "ExpressionAttributeNames": {"#x": "x"}}},
            {"Get": {"TableName": "tbl", "Key": {"pk": {"S": "missing"}}}},
            {"Get": {"TableName": "tbl2", "Key": {"pk": {"S": "a"}, "sk": {"N": "5"}}}}
        ]}),
    );
    assert_eq!(
        out["Responses"],
        json!([
            {"Item": {"x": {"N": "1"}, "z": {"N": "3"}}},
            {},
            {"Item": {"pk": {"S": "a"}, "sk": {"N": "5"}, "d": {"S": "two"}}}
        ])
    );
    assert_eq!(
        out["ConsumedCapacity"],
        json!([
            {"TableName": "tbl", "CapacityUnits": 4.0, "ReadCapacityUnits": 4.0},
            {"TableName": "tbl2", "CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}
        ])
    );
    // Key problems cancel with ValidationError; expression problems fail the request.
    let r = call(
        &s,
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "tbl", "Key": {}}}]}),
    );
    assert_eq!(r.error_code(), "TransactionCanceledException");
    assert_eq!(
        r.message(),
        "Transaction cancelled, please refer cancellation reasons for specific reasons [ValidationError]"
    );
    let r = call(
        &s,
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "tbl", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "!!!"}}]}),
    );
    assert_eq!(r.error_code(), "ValidationException");
    assert_eq!(
        r.message(),
        "Invalid ProjectionExpression: Syntax error; token: \"!\", near: \"!!\""
    );
    let r = call(
        &s,
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "tbl", "Key": {"pk": {"S": "a"}},
            "ProjectionExpression": "#x", "ExpressionAttributeNames": {"#x": "x", "#qq": "q"}}}]}),
    );
    assert_eq!(r.error_code(), "ValidationException");
    assert!(r.message().contains("#qq"), "{}", r.message());
    let r = call(
        &s,
        "TransactGetItems",
        json!({"TransactItems": [
            {"Get": {"TableName": "tbl", "Key": {"pk": {"S": "a"}}}},
            {"Get": {"TableName": "tbl", "Key": {"pk": {"S": "a"}}}}]}),
    );
    assert_eq!(r.error_code(), "ValidationException");
    let r = call(
        &s,
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "nope", "Key": {"pk": {"S": "a"}}}}]}),
    );
    assert_eq!(r.error_code(), "ResourceNotFoundException");
    let r = call(&s, "TransactGetItems", json!({"TransactItems": []}));
    assert_eq!(
        r.message(),
        "1 validation error detected: Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1"
    );
}

// ---------------------------------------------------------------------------------------------
// Isolation under concurrency, through the SDK
// ---------------------------------------------------------------------------------------------

const ACCOUNTS: usize = 10;
const INITIAL: i64 = 1000;

fn account(i: usize) -> AV {
    AV::S(format!("acct{i}"))
}

/// Small deterministic generator (xorshift), one per task.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_preserve_the_total() {
    let server = TestServer::in_memory();
    let c = server.client();
    c.create_table()
        .table_name("bank")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut setup = c.transact_write_items();
    for i in 0..ACCOUNTS {
        setup = setup.transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("bank")
                        .item("pk", account(i))
                        .item("balance", AV::N(INITIAL.to_string()))
                        .build()
                        .unwrap(),
                )
                .build(),
        );
    }
    setup.send().await.unwrap();

    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
            let (mut done, mut cancelled) = (0, 0);
            for _ in 0..40 {
                let from = (rng.next() % ACCOUNTS as u64) as usize;
                let to = (from + 1 + (rng.next() % (ACCOUNTS as u64 - 1)) as usize) % ACCOUNTS;
                let amount = (rng.next() % 400 + 1).to_string();
                let debit = Update::builder()
                    .table_name("bank")
                    .key("pk", account(from))
                    .update_expression("SET balance = balance - :a")
                    .condition_expression("balance >= :a")
                    .expression_attribute_values(":a", AV::N(amount.clone()))
                    .build()
                    .unwrap();
                let credit = Update::builder()
                    .table_name("bank")
                    .key("pk", account(to))
                    .update_expression("SET balance = balance + :a")
                    .expression_attribute_values(":a", AV::N(amount))
                    .build()
                    .unwrap();
                let r = c
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().update(debit).build())
                    .transact_items(TransactWriteItem::builder().update(credit).build())
                    .send()
                    .await;
                match r {
                    Ok(_) => done += 1,
                    Err(SdkError::ServiceError(e)) => match e.err() {
                        TransactWriteItemsError::TransactionCanceledException(t) => {
                            let reasons = t.cancellation_reasons();
                            assert_eq!(reasons.len(), 2);
                            assert_eq!(reasons[0].code(), Some("ConditionalCheckFailed"));
                            assert_eq!(reasons[1].code(), Some("None"));
                            cancelled += 1;
                        }
                        other => panic!("unexpected error: {other:?}"),
                    },
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
            }
            (done, cancelled)
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..4 {
        let c = c.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..40 {
                let mut req = c.transact_get_items();
                for i in 0..ACCOUNTS {
                    req = req.transact_items(
                        TransactGetItem::builder()
                            .get(
                                Get::builder()
                                    .table_name("bank")
                                    .key("pk", account(i))
                                    .build()
                                    .unwrap(),
                            )
                            .build(),
                    );
                }
                let out = req.send().await.unwrap();
                let total: i64 = out
                    .responses()
                    .iter()
                    .map(|r| {
                        let item = r.item().expect("account exists");
                        let b: i64 = item["balance"].as_n().unwrap().parse().unwrap();
                        assert!(b >= 0, "negative balance {b}");
                        b
                    })
                    .sum();
                assert_eq!(total, INITIAL * ACCOUNTS as i64);
            }
        }));
    }
    let mut committed = 0;
    for t in tasks {
        committed += t.await.unwrap().0;
    }
    for r in readers {
        r.await.unwrap();
    }
    assert!(committed > 0);

    let mut total = 0i64;
    for i in 0..ACCOUNTS {
        let out = c
            .get_item()
            .table_name("bank")
            .key("pk", account(i))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        total += out.item().unwrap()["balance"]
            .as_n()
            .unwrap()
            .parse::<i64>()
            .unwrap();
    }
    assert_eq!(total, INITIAL * ACCOUNTS as i64);
}
