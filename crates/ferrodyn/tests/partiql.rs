//! PartiQL (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction) against a real server:
//! every statement's result compared with the classic call it stands for, DynamoDB's exact
//! error bodies, and random SELECTs checked against Query/Scan.

use ferrodyn_testkit::{RawResponse, TestServer};
use proptest::prelude::*;
use serde_json::{json, Value};

const HASH: &str = r#"{"TableName":"hsh","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#;
const COMPOSITE: &str = r#"{"TableName":"cmp","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"sk","AttributeType":"N"},{"AttributeName":"g","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],"GlobalSecondaryIndexes":[{"IndexName":"byg","KeySchema":[{"AttributeName":"g","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}],"BillingMode":"PAY_PER_REQUEST"}"#;

const MALFORMED: &str = "Statement wasn't well formed, can't be processed: ";

fn server() -> TestServer {
    let s = TestServer::in_memory();
    assert_eq!(s.raw("CreateTable", HASH).status, 200);
    assert_eq!(s.raw("CreateTable", COMPOSITE).status, 200);
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

fn stmt(s: &TestServer, statement: &str) -> Value {
    ok(s, "ExecuteStatement", json!({ "Statement": statement }))
}

fn stmt_err(s: &TestServer, body: Value, ty: &str, message: &str) -> RawResponse {
    let r = call(s, "ExecuteStatement", body);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), ty, "{}", r.body);
    assert_eq!(r.message(), message, "{}", r.body);
    r
}

fn get(s: &TestServer, table: &str, key: Value) -> Value {
    ok(
        s,
        "GetItem",
        json!({"TableName": table, "Key": key, "ConsistentRead": true}),
    )
    .get("Item")
    .cloned()
    .unwrap_or(Value::Null)
}

fn seed(s: &TestServer) {
    for pk in ["a", "b"] {
        for sk in 1..=5 {
            ok(
                s,
                "PutItem",
                json!({"TableName": "cmp", "Item": {
                    "pk": {"S": pk}, "sk": {"N": sk.to_string()}, "g": {"S": format!("g{}", sk % 2)},
                    "n": {"N": (sk * 10).to_string()}, "tag": {"S": format!("t-{pk}{sk}")},
                    "m": {"M": {"inner": {"L": [{"S": "x"}, {"N": sk.to_string()}]}}}}}),
            );
        }
    }
}

#[test]
fn insert_select_update_delete_match_the_classic_calls() {
    let s = server();
    let r = stmt(
        &s,
        "INSERT INTO hsh VALUE {'pk': 'k1', 'data': 'it''s', 'n': 12345678901234567890123456789012345678, 's': <<'x', 'y'>>, 'l': [1, TRUE, NULL], 'm': {'a': {'b': 2}}}",
    );
    assert_eq!(r, json!({"Items": []}));
    assert_eq!(
        get(&s, "hsh", json!({"pk": {"S": "k1"}})),
        json!({"pk": {"S": "k1"}, "data": {"S": "it's"},
               "n": {"N": "12345678901234567890123456789012345678"},
               "s": {"SS": ["x", "y"]}, "l": {"L": [{"N": "1"}, {"BOOL": true}, {"NULL": true}]},
               "m": {"M": {"a": {"M": {"b": {"N": "2"}}}}}})
    );
    // SELECT by key = GetItem; projection of a nested path names the value by its last name.
    let got = stmt(&s, r#"SELECT * FROM "hsh" WHERE "pk" = 'k1'"#);
    assert_eq!(
        got["Items"],
        json!([get(&s, "hsh", json!({"pk": {"S": "k1"}}))])
    );
    let got = stmt(&s, "SELECT data, m.a.b, l[1] FROM hsh WHERE pk = 'k1'");
    assert_eq!(
        got["Items"],
        json!([{"data": {"S": "it's"}, "b": {"N": "2"}, "l": {"BOOL": true}}])
    );
    // UPDATE: arithmetic, list_append, set_add, REMOVE, RETURNING.
    let got = ok(
        &s,
        "ExecuteStatement",
        json!({"Statement": "UPDATE hsh SET n = n + ? SET l = list_append(l, [2]) SET s = set_add(s, <<'z'>>) REMOVE data WHERE pk = ? RETURNING MODIFIED NEW *",
               "Parameters": [{"N": "2"}, {"S": "k1"}]}),
    );
    assert_eq!(
        got["Items"],
        json!([{"n": {"N": "12345678901234567890123456789012345680"},
                "l": {"L": [{"N": "1"}, {"BOOL": true}, {"NULL": true}, {"N": "2"}]},
                "s": {"SS": ["x", "y", "z"]}}])
    );
    assert!(get(&s, "hsh", json!({"pk": {"S": "k1"}}))
        .get("data")
        .is_none());
    let got = stmt(
        &s,
        "UPDATE hsh SET s = set_delete(s, <<'x'>>) WHERE pk = 'k1' RETURNING ALL OLD *",
    );
    assert_eq!(got["Items"][0]["s"], json!({"SS": ["x", "y", "z"]}));
    assert_eq!(
        get(&s, "hsh", json!({"pk": {"S": "k1"}}))["s"],
        json!({"SS": ["y", "z"]})
    );
    // DELETE with RETURNING ALL OLD *.
    let got = stmt(&s, "DELETE FROM hsh WHERE pk = 'k1' RETURNING ALL OLD *");
    assert_eq!(got["Items"][0]["pk"], json!({"S": "k1"}));
    assert_eq!(get(&s, "hsh", json!({"pk": {"S": "k1"}})), Value::Null);
    // Deleting a missing item succeeds, like DeleteItem.
    assert_eq!(
        stmt(&s, "DELETE FROM hsh WHERE pk = 'k1'"),
        json!({"Items": []})
    );
}

#[test]
fn write_conditions_and_duplicates() {
    let s = server();
    stmt(&s, "INSERT INTO hsh VALUE {'pk': 'd', 'v': 1}");
    let r = stmt_err(
        &s,
        json!({"Statement": "INSERT INTO hsh VALUE {'pk': 'd', 'v': 2}"}),
        "DuplicateItemException",
        "Duplicate primary key exists in table",
    );
    assert_eq!(
        r.json()["__type"],
        "com.amazonaws.dynamodb.v20120810#DuplicateItemException"
    );
    // UPDATE of a missing item fails its implied existence check.
    let r = stmt_err(
        &s,
        json!({"Statement": "UPDATE hsh SET v = 5 WHERE pk = 'missing'"}),
        "ConditionalCheckFailedException",
        "The conditional request failed",
    );
    assert!(r.json().get("Item").is_none());
    assert_eq!(get(&s, "hsh", json!({"pk": {"S": "missing"}})), Value::Null);
    // A failed condition on a non-key attribute, with the old item on request.
    let r = stmt_err(
        &s,
        json!({"Statement": "UPDATE hsh SET v = 5 WHERE pk = 'd' AND v > 1",
               "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}),
        "ConditionalCheckFailedException",
        "The conditional request failed",
    );
    assert_eq!(r.json()["Item"], json!({"pk": {"S": "d"}, "v": {"N": "1"}}));
    stmt_err(
        &s,
        json!({"Statement": "DELETE FROM hsh WHERE pk = 'd' AND v IS MISSING"}),
        "ConditionalCheckFailedException",
        "The conditional request failed",
    );
    stmt(
        &s,
        "UPDATE hsh SET v = 5 WHERE pk = 'd' AND v = 1 AND w IS MISSING",
    );
    assert_eq!(
        get(&s, "hsh", json!({"pk": {"S": "d"}}))["v"],
        json!({"N": "5"})
    );
}

#[test]
fn errors_have_dynamodb_types_and_messages() {
    let s = server();
    let v = "ValidationException";
    stmt_err(
        &s,
        json!({"Statement": "SELECTT * FROMM h"}),
        v,
        &format!("{MALFORMED}Expected data manipulation"),
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM hsh WHERE"}),
        v,
        &format!("{MALFORMED}Unexpected term"),
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM hsh WHERE pk = 'x' foo"}),
        v,
        &format!("{MALFORMED}Unexpected token after expression"),
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM hsh t WHERE pk = 'x'"}),
        v,
        "Aliasing is not supported",
    );
    stmt_err(
        &s,
        json!({"Statement": "INSERT INTO hsh VALUE {'pk': 'x', 'm': {'l': [1, 1e126]}}"}),
        v,
        "Number overflow. Attempting to store a number with magnitude larger than supported range under root.m.l[1]",
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM hsh WHERE pk = 'x' AND"}),
        v,
        &format!("{MALFORMED}Missing right-hand side expression of infix operator"),
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM hsh WHERE pk = 'x' AND AND"}),
        v,
        &format!("{MALFORMED}Unexpected keyword"),
    );
    stmt_err(
        &s,
        json!({"Statement": "UPDATE hsh SET v = 1 WHERE v = 2"}),
        v,
        "Where clause does not contain a mandatory equality on all key attributes",
    );
    stmt_err(
        &s,
        json!({"Statement": "DELETE FROM cmp WHERE pk = 'a'"}),
        v,
        "Where clause does not contain a mandatory equality on all key attributes",
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM hsh WHERE pk = ?"}),
        v,
        "Number of parameters in request and statement don't match.",
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM hsh WHERE pk = ?", "Parameters": [{"S": "a"}, {"S": "b"}]}),
        v,
        "Number of parameters in request and statement don't match.",
    );
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM nope WHERE pk = 'x'"}),
        "ResourceNotFoundException",
        "Requested resource not found",
    );
    // Shape limits come first: the statement is at most 8192 characters.
    let long = format!("SELECT * FROM hsh WHERE pk = '{}'", "x".repeat(8200));
    let r = call(&s, "ExecuteStatement", json!({ "Statement": long }));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), v);
    assert!(
        r.message()
            .contains("Member must have length less than or equal to 8192"),
        "{}",
        r.body
    );
    // A long chain of conditions is refused by the expression limits, never a crash.
    let chain = format!(
        "SELECT * FROM hsh WHERE {}pk = 'a'",
        "n = 1 AND ".repeat(800)
    );
    let r = call(&s, "ExecuteStatement", json!({ "Statement": chain }));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_code(), v);
    // Deep nesting is refused, never a crash.
    let deep = format!(
        "SELECT * FROM hsh WHERE {}pk = 'a'{}",
        "(".repeat(500),
        ")".repeat(500)
    );
    let r = call(&s, "ExecuteStatement", json!({ "Statement": deep }));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.message().starts_with(MALFORMED), "{}", r.body);
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM cmp WHERE n > 1 ORDER BY sk"}),
        v,
        "Must have WHERE clause in the statement when using ORDER BY clause.",
    );
}

#[test]
fn selects_run_as_query_or_scan_with_order_limit_and_paging() {
    let s = server();
    seed(&s);
    // Query with a sort-key condition, ORDER BY DESC = ScanIndexForward false.
    let got = stmt(
        &s,
        "SELECT sk FROM cmp WHERE pk = 'a' AND sk BETWEEN 2 AND 4 ORDER BY sk DESC",
    );
    assert_eq!(
        got["Items"],
        json!([{"sk": {"N": "4"}}, {"sk": {"N": "3"}}, {"sk": {"N": "2"}}])
    );
    // A non-key condition next to the partition key is a filter.
    let got = stmt(
        &s,
        "SELECT * FROM cmp WHERE pk = 'b' AND begins_with(tag, 't-b') AND n >= 30",
    );
    let q = ok(
        &s,
        "Query",
        json!({"TableName": "cmp", "KeyConditionExpression": "pk = :p",
               "FilterExpression": "begins_with(tag, :t) AND n >= :n",
               "ExpressionAttributeValues": {":p": {"S": "b"}, ":t": {"S": "t-b"}, ":n": {"N": "30"}}}),
    );
    assert_eq!(got["Items"], q["Items"]);
    assert_eq!(got["Items"].as_array().map(Vec::len), Some(3));
    // No partition-key equality: a Scan, same items as the classic Scan.
    let got = stmt(
        &s,
        "SELECT * FROM cmp WHERE n IN [10, 50] OR contains(tag, 'a3')",
    );
    let sc = ok(
        &s,
        "Scan",
        json!({"TableName": "cmp", "FilterExpression": "n IN (:a, :b) OR contains(tag, :t)",
               "ExpressionAttributeValues": {":a": {"N": "10"}, ":b": {"N": "50"}, ":t": {"S": "a3"}}}),
    );
    assert_eq!(got["Items"], sc["Items"]);
    assert_eq!(got["Items"].as_array().map(Vec::len), Some(5));
    // Functions and IS tests.
    let got = stmt(&s, "SELECT sk FROM cmp WHERE pk = 'a' AND size(tag) = 4 AND attribute_type(m, 'M') AND m.nope IS MISSING AND NOT (n <> 20)");
    assert_eq!(got["Items"], json!([{"sk": {"N": "2"}}]));
    // An index.
    let got = stmt(
        &s,
        r#"SELECT pk, sk FROM "cmp"."byg" WHERE g = 'g0' AND sk > 2"#,
    );
    let mut have = got["Items"].as_array().cloned().unwrap_or_default();
    have.sort_by_key(|i| i["pk"].to_string());
    assert_eq!(
        have,
        vec![
            json!({"pk": {"S": "a"}, "sk": {"N": "4"}}),
            json!({"pk": {"S": "b"}, "sk": {"N": "4"}})
        ]
    );
    // Limit and NextToken page through a partition.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Statement": "SELECT sk FROM cmp WHERE pk = 'a'", "Limit": 2, "ConsistentRead": true});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = ok(&s, "ExecuteStatement", body);
        seen.extend(page["Items"].as_array().cloned().unwrap_or_default());
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    let want: Vec<Value> = (1..=5)
        .map(|i| json!({"sk": {"N": i.to_string()}}))
        .collect();
    assert_eq!(seen, want);
    let r = call(
        &s,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM cmp WHERE pk = 'a'", "NextToken": "not-a-token"}),
    );
    assert_eq!(r.error_code(), "ValidationException");
    // ReturnConsumedCapacity.
    let got = ok(
        &s,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM cmp WHERE pk = 'a' AND sk = 1", "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(got["ConsumedCapacity"]["TableName"], "cmp");
    assert_eq!(got["ConsumedCapacity"]["CapacityUnits"], 0.5);
}

#[test]
fn batch_execute_statement() {
    let s = server();
    seed(&s);
    let r = ok(
        &s,
        "BatchExecuteStatement",
        json!({"Statements": [
            {"Statement": "SELECT tag FROM cmp WHERE pk = 'a' AND sk = 1"},
            {"Statement": "SELECT * FROM cmp WHERE pk = ? AND sk = ?", "Parameters": [{"S": "a"}, {"N": "99"}]},
            {"Statement": "SELECT * FROM nope WHERE pk = 'x'"},
            {"Statement": "SELECT * FROM cmp WHERE pk = 'a'"},
        ], "ReturnConsumedCapacity": "TOTAL"}),
    );
    let resp = r["Responses"].as_array().cloned().unwrap_or_default();
    assert_eq!(resp.len(), 4);
    assert_eq!(
        resp[0],
        json!({"TableName": "cmp", "Item": {"tag": {"S": "t-a1"}}})
    );
    assert_eq!(resp[1], json!({"TableName": "cmp"}));
    assert_eq!(resp[2]["Error"]["Code"], "ResourceNotFound");
    assert_eq!(resp[3]["Error"]["Code"], "ValidationError");
    assert_eq!(
        resp[3]["Error"]["Message"],
        "Where clause does not contain a mandatory equality on all key attributes"
    );
    assert_eq!(r["ConsumedCapacity"][0]["TableName"], "cmp");
    // Writes: each statement succeeds or fails on its own.
    let r = ok(
        &s,
        "BatchExecuteStatement",
        json!({"Statements": [
            {"Statement": "INSERT INTO hsh VALUE {'pk': 'new'}"},
            {"Statement": "UPDATE cmp SET n = 0 WHERE pk = 'a' AND sk = 1 AND n = 7", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
            {"Statement": "INSERT INTO hsh VALUE {'pk': 'new'}"},
            {"Statement": "DELETE FROM cmp WHERE pk = 'b' AND sk = 1"},
        ]}),
    );
    let resp = r["Responses"].as_array().cloned().unwrap_or_default();
    assert_eq!(resp[0], json!({"TableName": "hsh"}));
    assert_eq!(resp[1]["Error"]["Code"], "ConditionalCheckFailed");
    assert_eq!(resp[1]["Error"]["Item"]["n"], json!({"N": "10"}));
    assert_eq!(resp[2]["Error"]["Code"], "DuplicateItem");
    assert_eq!(
        resp[2]["Error"]["Message"],
        "Duplicate primary key exists in table"
    );
    assert_eq!(resp[3], json!({"TableName": "cmp"}));
    assert_eq!(
        get(&s, "cmp", json!({"pk": {"S": "b"}, "sk": {"N": "1"}})),
        Value::Null
    );
    // Reads and writes never mix; empty and oversized batches fail validation.
    let r = call(
        &s,
        "BatchExecuteStatement",
        json!({"Statements": [
            {"Statement": "SELECT * FROM hsh WHERE pk = 'new'"},
            {"Statement": "DELETE FROM hsh WHERE pk = 'new'"},
        ]}),
    );
    assert_eq!(r.error_code(), "ValidationException", "{}", r.body);
    assert!(get(&s, "hsh", json!({"pk": {"S": "new"}})).is_object());
    let r = call(&s, "BatchExecuteStatement", json!({"Statements": []}));
    assert_eq!(r.error_code(), "ValidationException");
    let many: Vec<Value> = (0..26)
        .map(|i| json!({"Statement": format!("SELECT * FROM hsh WHERE pk = '{i}'")}))
        .collect();
    let r = call(&s, "BatchExecuteStatement", json!({ "Statements": many }));
    assert_eq!(r.error_code(), "ValidationException");
    assert!(
        r.message().contains("less than or equal to 25"),
        "{}",
        r.body
    );
}

#[test]
fn execute_transaction() {
    let s = server();
    seed(&s);
    ok(
        &s,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "INSERT INTO hsh VALUE {'pk': 't1', 'v': 1}"},
            {"Statement": "UPDATE cmp SET n = n + 1 WHERE pk = 'a' AND sk = 1"},
            {"Statement": "DELETE FROM cmp WHERE pk = 'a' AND sk = 2"},
            {"Statement": "EXISTS(SELECT * FROM cmp WHERE pk = 'a' AND sk = 3 AND n = 30)"},
        ]}),
    );
    assert_eq!(
        get(&s, "cmp", json!({"pk": {"S": "a"}, "sk": {"N": "1"}}))["n"],
        json!({"N": "11"})
    );
    assert_eq!(
        get(&s, "cmp", json!({"pk": {"S": "a"}, "sk": {"N": "2"}})),
        Value::Null
    );
    // One failure cancels all, with reasons in statement order.
    let r = call(
        &s,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "INSERT INTO hsh VALUE {'pk': 't1', 'v': 2}"},
            {"Statement": "INSERT INTO hsh VALUE {'pk': 't2'}"},
            {"Statement": "UPDATE cmp SET n = 0 WHERE pk = 'a' AND sk = 2", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
            {"Statement": "EXISTS(SELECT * FROM cmp WHERE pk = 'a' AND sk = 3 AND n = 31)", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
        ]}),
    );
    assert_eq!(r.error_code(), "TransactionCanceledException", "{}", r.body);
    assert_eq!(
        r.message(),
        "Transaction cancelled, please refer cancellation reasons for specific reasons [DuplicateItem, None, ConditionalCheckFailed, ConditionalCheckFailed]"
    );
    let reasons = r.json()["CancellationReasons"].clone();
    assert_eq!(
        reasons[0]["Message"],
        "Duplicate primary key exists in table"
    );
    assert_eq!(reasons[3]["Item"]["n"], json!({"N": "30"}));
    assert_eq!(get(&s, "hsh", json!({"pk": {"S": "t2"}})), Value::Null);
    // Read transactions are TransactGetItems.
    let r = ok(
        &s,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "SELECT v FROM hsh WHERE pk = 't1'"},
            {"Statement": "SELECT * FROM hsh WHERE pk = ?", "Parameters": [{"S": "zzz"}]},
        ], "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(r["Responses"], json!([{"Item": {"v": {"N": "1"}}}, {}]));
    assert_eq!(r["ConsumedCapacity"][0]["TableName"], "hsh");
    // Idempotency: the same token and statements succeed again without writing again.
    let body = json!({"TransactStatements": [
        {"Statement": "UPDATE hsh SET v = v + 1 WHERE pk = 't1'"}
    ], "ClientRequestToken": "tok-1"});
    ok(&s, "ExecuteTransaction", body.clone());
    ok(&s, "ExecuteTransaction", body);
    assert_eq!(
        get(&s, "hsh", json!({"pk": {"S": "t1"}}))["v"],
        json!({"N": "2"})
    );
    let r = call(
        &s,
        "ExecuteTransaction",
        json!({"TransactStatements": [{"Statement": "UPDATE hsh SET v = v + 5 WHERE pk = 't1'"}],
               "ClientRequestToken": "tok-1"}),
    );
    assert_eq!(
        r.error_code(),
        "IdempotentParameterMismatchException",
        "{}",
        r.body
    );
    // Mixed reads and writes, and empty lists, fail validation.
    let r = call(
        &s,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "SELECT * FROM hsh WHERE pk = 't1'"},
            {"Statement": "DELETE FROM hsh WHERE pk = 't1'"},
        ]}),
    );
    assert_eq!(r.error_code(), "ValidationException", "{}", r.body);
    let r = call(
        &s,
        "ExecuteTransaction",
        json!({"TransactStatements": [
            {"Statement": "SELECT * FROM hsh WHERE pk = 't1'"},
            {"Statement": "SELECT * FROM hsh WHERE"},
        ]}),
    );
    assert_eq!(
        r.message(),
        format!("Validation failed in TransactStatements[1]: {MALFORMED}Unexpected term")
    );
    let r = call(&s, "ExecuteTransaction", json!({"TransactStatements": []}));
    assert_eq!(r.error_code(), "ValidationException");
}

fn attr_name() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("sk"), Just("n"), Just("tag"), Just("g")]
}

/// A random condition on non-partition-key attributes, as PartiQL text and as a classic
/// FilterExpression over the same values.
fn condition() -> impl Strategy<Value = (String, String)> {
    let leaf = (
        attr_name(),
        0u32..6,
        prop_oneof![
            Just("="),
            Just("<>"),
            Just("<"),
            Just(">="),
            Just("BETWEEN"),
            Just("IN"),
            Just("MISSING")
        ],
    )
        .prop_map(|(a, v, op)| {
            let (val, filt) = match a {
                "sk" => (v.to_string(), format!("{v}")),
                "n" => ((v * 10).to_string(), format!("{}", v * 10)),
                "tag" => (format!("'t-a{v}'"), format!("t-a{v}")),
                _ => (format!("'g{}'", v % 2), format!("g{}", v % 2)),
            };
            match op {
                "BETWEEN" => (
                    format!("{a} BETWEEN {val} AND {val}"),
                    format!("{a} BETWEEN {filt} AND {filt}"),
                ),
                "IN" => (format!("{a} IN [{val}]"), format!("{a} IN ({filt})")),
                "MISSING" => (
                    format!("{a} IS NOT MISSING"),
                    format!("attribute_exists({a})"),
                ),
                _ => (format!("{a} {op} {val}"), format!("{a} {op} {filt}")),
            }
        });
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| (
                format!("({}) AND ({})", a.0, b.0),
                format!("({}) AND ({})", a.1, b.1)
            )),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| (
                format!("({}) OR ({})", a.0, b.0),
                format!("({}) OR ({})", a.1, b.1)
            )),
            inner.prop_map(|a| (format!("NOT ({})", a.0), format!("NOT ({})", a.1))),
        ]
    })
}

/// Turns a FilterExpression whose values are written inline into one with placeholders.
fn classic_filter(text: &str) -> (String, serde_json::Map<String, Value>) {
    let mut out = String::new();
    let mut values = serde_json::Map::new();
    let toks: Vec<&str> = text.split(' ').collect();
    for (i, t) in toks.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let (pre, core, post) = split_parens(t);
        let v = if core.starts_with("t-a")
            || core.starts_with('g') && core.len() == 2 && core != "g)"
        {
            Some(json!({"S": core}))
        } else if !core.is_empty() && core.bytes().all(|b| b.is_ascii_digit()) {
            Some(json!({"N": core}))
        } else {
            None
        };
        match v {
            Some(v) => {
                let ph = format!(":v{}", values.len());
                values.insert(ph.clone(), v);
                out.push_str(&format!("{pre}{ph}{post}"));
            }
            None => out.push_str(t),
        }
    }
    (out, values)
}

fn split_parens(t: &str) -> (&str, &str, &str) {
    let start = t.len() - t.trim_start_matches('(').len();
    let rest = &t[start..];
    let core = rest.trim_end_matches(')');
    (&t[..start], core, &rest[core.len()..])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// A random SELECT returns what the equivalent Query (partition key given) or Scan returns.
    #[test]
    fn random_selects_agree_with_query_and_scan((partiql, filter) in condition(), mode in 0u8..4) {
        static SERVER: std::sync::OnceLock<TestServer> = std::sync::OnceLock::new();
        let s = SERVER.get_or_init(|| { let s = server(); seed(&s); s });
        let (filter, mut values) = classic_filter(&filter);
        let (statement, op, body) = if mode >= 2 {
            // An OR of partition keys (one Query per branch), or an IN beside the condition.
            values.insert(":pk".into(), json!({"S": "a"}));
            values.insert(":pb".into(), json!({"S": "b"}));
            let filter = filter.replace("sk", "#sk");
            let statement = if mode == 2 {
                format!("SELECT * FROM cmp WHERE (pk = 'a' AND ({partiql})) OR pk = 'b'")
            } else {
                format!("SELECT * FROM cmp WHERE pk IN ['b', 'a'] AND ({partiql})")
            };
            let classic = if mode == 2 {
                format!("(pk = :pk AND ({filter})) OR pk = :pb")
            } else {
                format!("pk IN (:pb, :pk) AND ({filter})")
            };
            (statement, "Scan",
             json!({"TableName": "cmp", "FilterExpression": classic,
                    "ExpressionAttributeNames": {"#sk": "sk"}, "ExpressionAttributeValues": values}))
        } else if mode == 1 {
            values.insert(":pk".into(), json!({"S": "a"}));
            // The sort key cannot be in a Query's filter; test it through the Scan instead.
            let filter = filter.replace("sk", "#sk");
            (format!("SELECT * FROM cmp WHERE pk = 'a' AND ({partiql})"), "Scan",
             json!({"TableName": "cmp", "FilterExpression": format!("pk = :pk AND ({filter})"),
                    "ExpressionAttributeNames": {"#sk": "sk"}, "ExpressionAttributeValues": values}))
        } else {
            (format!("SELECT * FROM cmp WHERE {partiql}"), "Scan",
             json!({"TableName": "cmp", "FilterExpression": filter, "ExpressionAttributeValues": values}))
        };
        let mut body = body;
        if let Some(m) = body.as_object_mut() {
            if !filter_uses_sk(&Value::Object(m.clone())) {
                m.remove("ExpressionAttributeNames");
            }
            if m["ExpressionAttributeValues"].as_object().is_some_and(|v| v.is_empty()) {
                m.remove("ExpressionAttributeValues");
            }
        }
        let got = ok(s, "ExecuteStatement", json!({ "Statement": statement }));
        let want = ok(s, op, body);
        let mut g = got["Items"].as_array().cloned().unwrap_or_default();
        let mut w = want["Items"].as_array().cloned().unwrap_or_default();
        g.sort_by_key(|i| i.to_string());
        w.sort_by_key(|i| i.to_string());
        prop_assert_eq!(g, w, "{}", statement);
    }
}

fn filter_uses_sk(body: &Value) -> bool {
    body["FilterExpression"]
        .as_str()
        .is_some_and(|f| f.contains("#sk"))
}

#[test]
fn indexes_tokens_and_expression_errors() {
    let s = server();
    seed(&s);
    let inc = r#"{"TableName":"idx","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"g","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"GlobalSecondaryIndexes":[{"IndexName":"inc","KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"INCLUDE","NonKeyAttributes":["p"]}}],"BillingMode":"PAY_PER_REQUEST"}"#;
    assert_eq!(s.raw("CreateTable", inc).status, 200);
    for (pk, np) in [("i1", "n1"), ("i2", "n2")] {
        stmt(
            &s,
            &format!("INSERT INTO idx VALUE {{'pk': '{pk}', 'g': 'y', 'p': 'proj', 'np': '{np}'}}"),
        );
    }
    let v = "ValidationException";
    // A keyed read of an index may not filter on an attribute the index does not project...
    for w in [
        "g = 'y' AND np = 'n1'",
        "g IN ['y', 'z'] AND np IS MISSING",
        "g = 'y' AND NOT np = 'n1'",
    ] {
        stmt_err(
            &s,
            json!({ "Statement": format!(r#"SELECT pk FROM "idx"."inc" WHERE {w}"#) }),
            v,
            "Where clause refers to attributes that are not projected by the index",
        );
    }
    // ...an unkeyed one scans the index, where the attribute is absent.
    let got = stmt(&s, r#"SELECT pk FROM "idx"."inc" WHERE np = 'n1'"#);
    assert_eq!(got["Items"], json!([]));
    let got = stmt(
        &s,
        r#"SELECT pk FROM "idx"."inc" WHERE g = 'y' AND p = 'proj'"#,
    );
    assert_eq!(got["Items"].as_array().map(Vec::len), Some(2));
    let got = stmt(&s, r#"SELECT * FROM "idx"."inc" WHERE g = 'y'"#);
    for item in got["Items"].as_array().cloned().unwrap_or_default() {
        let mut names: Vec<&String> = item
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        names.sort();
        assert_eq!(names, ["g", "p", "pk"]);
    }
    // Writes refuse an index qualifier.
    let r = call(
        &s,
        "ExecuteStatement",
        json!({"Statement": r#"INSERT INTO "idx"."inc" VALUE {'pk': 'w'}"#}),
    );
    assert_eq!(r.error_code(), v);
    assert!(
        r.message()
            .contains("FROM clause may only contain a single table name"),
        "{}",
        r.body
    );
    for w in [
        r#"UPDATE "idx"."inc" SET p = 'z' WHERE pk = 'i1'"#,
        r#"DELETE FROM "idx"."inc" WHERE pk = 'i1'"#,
    ] {
        stmt_err(
            &s,
            json!({ "Statement": w }),
            v,
            "This operation is not supported on an index",
        );
    }
    // A NextToken belongs to the statement that made it.
    let first = ok(
        &s,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM cmp WHERE pk = 'a'", "Limit": 1}),
    );
    let token = first["NextToken"].as_str().unwrap_or_default().to_owned();
    assert!(!token.is_empty());
    stmt_err(
        &s,
        json!({"Statement": "SELECT * FROM cmp WHERE pk = 'b'", "NextToken": token}),
        v,
        "Invalid NextToken",
    );
    // Expression errors keep DynamoDB's wording without the expression kind.
    for op in ["<", "<=", ">", ">="] {
        stmt_err(
            &s,
            json!({"Statement": format!("SELECT * FROM cmp WHERE pk = 'a' AND n {op} ?"), "Parameters": [{"BOOL": true}]}),
            v,
            &format!("Incorrect operand type for operator or function; operator or function: {op}, operand type: BOOL"),
        );
    }
    // Non-scalar equality agrees with ConditionExpression (sets are unordered, lists are not).
    stmt(
        &s,
        "INSERT INTO hsh VALUE {'pk': 'sets', 'ss': <<'a', 'b'>>, 'l': ['a', 'b']}",
    );
    let hit = |w: &str, p: Value| {
        ok(&s, "ExecuteStatement", json!({"Statement": format!("SELECT pk FROM hsh WHERE pk = 'sets' AND {w}"), "Parameters": [p]}))["Items"]
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(hit("ss = ?", json!({"SS": ["b", "a"]})), Some(1));
    assert_eq!(
        hit("l = ?", json!({"L": [{"S": "b"}, {"S": "a"}]})),
        Some(0)
    );
    assert_eq!(
        hit("l <> ?", json!({"L": [{"S": "b"}, {"S": "a"}]})),
        Some(1)
    );
}

#[test]
fn key_conditions_written_either_way_round() {
    let s = server();
    seed(&s);
    let got = stmt(&s, "SELECT sk FROM cmp WHERE 'a' = pk AND 3 > sk");
    assert_eq!(
        got["Items"],
        json!([{"sk": {"N": "1"}}, {"sk": {"N": "2"}}])
    );
    let got = stmt(
        &s,
        "SELECT sk FROM cmp WHERE pk = 'a' AND sk >= 4 ORDER BY sk DESC",
    );
    assert_eq!(
        got["Items"],
        json!([{"sk": {"N": "5"}}, {"sk": {"N": "4"}}])
    );
    let got = stmt(
        &s,
        "UPDATE cmp SET n = 1 WHERE 2 = sk AND 'a' = pk RETURNING ALL NEW *",
    );
    assert_eq!(got["Items"][0]["n"], json!({"N": "1"}));
}

/// The AWS SDK for Rust sees the three operations' shapes and DuplicateItemException as AWS's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_round_trip() {
    use aws_sdk_dynamodb::operation::execute_statement::ExecuteStatementError;
    use aws_sdk_dynamodb::types::{
        AttributeValue as AV, BatchStatementErrorCodeEnum, BatchStatementRequest,
        ParameterizedStatement,
    };
    let s = tokio::task::spawn_blocking(|| {
        let s = server();
        seed(&s);
        s
    })
    .await
    .unwrap();
    let c = s.client();
    c.execute_statement()
        .statement("INSERT INTO hsh VALUE {'pk': ?, 'v': ?}")
        .parameters(AV::S("sdk".into()))
        .parameters(AV::N("7".into()))
        .send()
        .await
        .unwrap();
    let err = c
        .execute_statement()
        .statement("INSERT INTO hsh VALUE {'pk': 'sdk'}")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.as_service_error(),
            Some(ExecuteStatementError::DuplicateItemException(_))
        ),
        "{err:?}"
    );
    let out = c
        .execute_statement()
        .statement("SELECT v FROM hsh WHERE pk = ?")
        .parameters(AV::S("sdk".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.items().len(), 1);
    assert_eq!(out.items()[0].get("v"), Some(&AV::N("7".into())));
    let out = c
        .execute_statement()
        .statement("SELECT sk FROM cmp WHERE pk = 'a'")
        .limit(3)
        .send()
        .await
        .unwrap();
    assert_eq!(out.items().len(), 3);
    assert!(out.next_token().is_some());
    let out = c
        .batch_execute_statement()
        .statements(
            BatchStatementRequest::builder()
                .statement("UPDATE hsh SET v = v + 1 WHERE pk = 'sdk'")
                .build()
                .unwrap(),
        )
        .statements(
            BatchStatementRequest::builder()
                .statement("INSERT INTO hsh VALUE {'pk': 'sdk'}")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(out.responses()[0].error().is_none());
    assert_eq!(
        out.responses()[1].error().and_then(|e| e.code()),
        Some(&BatchStatementErrorCodeEnum::DuplicateItem)
    );
    let out = c
        .execute_transaction()
        .transact_statements(
            ParameterizedStatement::builder()
                .statement("SELECT v FROM hsh WHERE pk = 'sdk'")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.responses()[0].item().and_then(|i| i.get("v")),
        Some(&AV::N("8".into()))
    );
}

#[test]
fn in_on_the_partition_key_runs_one_query_per_value() {
    let s = server();
    seed(&s);
    let got = stmt(
        &s,
        "SELECT pk, sk FROM cmp WHERE pk IN ['b', 'zz', 'a', 'b'] AND sk < 3 AND n > 10",
    );
    assert_eq!(
        got["Items"],
        json!([{"pk": {"S": "b"}, "sk": {"N": "2"}}, {"pk": {"S": "a"}, "sk": {"N": "2"}}])
    );
    let got = ok(
        &s,
        "ExecuteStatement",
        json!({"Statement": "SELECT * FROM cmp WHERE pk IN ?", "Parameters": [{"L": [{"S": "a"}]}],
               "ReturnConsumedCapacity": "TOTAL"}),
    );
    assert_eq!(got["Items"].as_array().map(Vec::len), Some(5));
    assert_eq!(got["ConsumedCapacity"]["TableName"], "cmp");
    // So does an OR of partition-key equalities, each branch with its own conditions.
    let got = stmt(
        &s,
        "SELECT pk, sk FROM cmp WHERE (pk = 'b' AND sk = 4) OR (pk = 'a' AND n >= 40) OR pk = 'zz'",
    );
    assert_eq!(
        got["Items"],
        json!([{"pk": {"S": "b"}, "sk": {"N": "4"}}, {"pk": {"S": "a"}, "sk": {"N": "4"}}, {"pk": {"S": "a"}, "sk": {"N": "5"}}])
    );
    // The same partition twice, or a branch without the key, is a Scan with the same answer.
    let got = stmt(
        &s,
        "SELECT pk, sk FROM cmp WHERE (pk = 'a' AND sk = 1) OR (pk = 'a' AND sk = 2) OR n = 30",
    );
    let mut have: Vec<String> = got["Items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            format!(
                "{}{}",
                i["pk"]["S"].as_str().unwrap_or(""),
                i["sk"]["N"].as_str().unwrap_or("")
            )
        })
        .collect();
    have.sort();
    assert_eq!(have, ["a1", "a2", "a3", "b3"]);
    // Pages of 3 walk both partitions in the order written.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body =
            json!({"Statement": "SELECT pk, sk FROM cmp WHERE pk IN ['b', 'a']", "Limit": 3});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = ok(&s, "ExecuteStatement", body);
        for i in page["Items"].as_array().cloned().unwrap_or_default() {
            seen.push(format!(
                "{}{}",
                i["pk"]["S"].as_str().unwrap_or(""),
                i["sk"]["N"].as_str().unwrap_or("")
            ));
        }
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["b1", "b2", "b3", "b4", "b5", "a1", "a2", "a3", "a4", "a5"]
    );
}

#[test]
fn select_on_a_multi_attribute_key_index_agrees_with_a_scan_of_it() {
    let s = TestServer::in_memory();
    let table = json!({"TableName": "multi",
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "region", "AttributeType": "S"},
            {"AttributeName": "shop", "AttributeType": "S"},
            {"AttributeName": "day", "AttributeType": "N"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [{"IndexName": "byplace",
            "KeySchema": [
                {"AttributeName": "region", "KeyType": "HASH"},
                {"AttributeName": "shop", "KeyType": "HASH"},
                {"AttributeName": "day", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}],
        "BillingMode": "PAY_PER_REQUEST"});
    ok(&s, "CreateTable", table);
    for i in 0..12 {
        let region = ["eu", "us"][i % 2];
        let shop = ["s1", "s2", "s3"][i % 3];
        ok(
            &s,
            "PutItem",
            json!({"TableName": "multi", "Item": {
                "pk": {"S": format!("p{i}")}, "region": {"S": region},
                "shop": {"S": shop}, "day": {"N": (i % 4).to_string()}}}),
        );
    }
    let sorted = |v: &Value| {
        let mut items: Vec<String> = v["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["pk"]["S"].as_str().unwrap().to_owned())
            .collect();
        items.sort();
        items
    };
    let got = stmt(
        &s,
        r#"SELECT * FROM "multi"."byplace" WHERE region = 'eu' AND shop = 's1' AND day >= 2"#,
    );
    let scanned = ok(
        &s,
        "Scan",
        json!({"TableName": "multi", "IndexName": "byplace",
            "FilterExpression": "#r = :r AND shop = :s AND #d >= :d",
            "ExpressionAttributeNames": {"#r": "region", "#d": "day"},
            "ExpressionAttributeValues": {":r": {"S": "eu"}, ":s": {"S": "s1"}, ":d": {"N": "2"}}}),
    );
    assert_eq!(sorted(&got), sorted(&scanned));
    assert!(!sorted(&got).is_empty());
}
