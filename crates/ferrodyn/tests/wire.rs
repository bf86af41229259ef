//! Exact wire behaviour over raw HTTP: headers, health check, error bodies.

use ferrodyn_testkit::TestServer;

const CREATE: &str = r#"{"TableName":"tbl","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#;

#[test]
fn health_check_answers_on_root_only() {
    let server = TestServer::in_memory();
    let r = reqwest::blocking::get(&server.url).unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().unwrap(), format!("healthy: {}", server.addr));
    let r = reqwest::blocking::get(format!("{}/abc", server.url)).unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn responses_carry_request_id_crc32_and_content_type() {
    let server = TestServer::in_memory();
    let r = server.raw("ListTables", "{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.0"));
    assert!(r.header("x-amzn-requestid").is_some_and(|v| !v.is_empty()));
    let crc: u32 = r.header("x-amz-crc32").unwrap().parse().unwrap();
    assert_eq!(crc, ferrodyn_testkit::crc32(r.body.as_bytes()));
    assert_eq!(r.json(), serde_json::json!({"TableNames": []}));
}

#[test]
fn unknown_operation() {
    let server = TestServer::in_memory();
    let r = server.raw("FlyToTheMoon", "{}");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["__type"],
        "com.amazon.coral.service#UnknownOperationException"
    );
    let r = server.raw_with(None, "{}", true);
    assert_eq!(r.error_code(), "UnknownOperationException");
}

#[test]
fn missing_authorization_is_rejected() {
    let server = TestServer::in_memory();
    let r = server.raw_with(Some("DynamoDB_20120810.ListTables"), "{}", false);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "MissingAuthenticationTokenException");
    assert_eq!(r.message(), "Request is missing Authentication Token");
}

#[test]
fn malformed_json_is_serialization_exception() {
    let server = TestServer::in_memory();
    for body in ["{", "", "[1,2]", "\"x\"", "{\"TableName\": }"] {
        let r = server.raw("ListTables", body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(
            r.error_code(),
            "SerializationException",
            "{body}: {}",
            r.body
        );
    }
}

#[test]
fn validation_messages_match_aws() {
    let server = TestServer::in_memory();
    let r = server.raw("DescribeTable", r#"{"TableName":"ab"}"#);
    assert_eq!(r.error_code(), "ValidationException");
    assert_eq!(
        r.message(),
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"
    );
    let r = server.raw("PutItem", r#"{"Item":{"pk":{"S":"x"}}}"#);
    assert_eq!(
        r.message(),
        "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null"
    );
    let r = server.raw("GetItem", r#"{"TableName":"nope","Key":{"pk":{"S":"x"}}}"#);
    assert_eq!(r.error_code(), "ResourceNotFoundException");
    assert_eq!(r.message(), "Requested resource not found");
    let r = server.raw("DescribeTable", r#"{"TableName":"nope"}"#);
    assert_eq!(
        r.message(),
        "Requested resource not found: Table: nope not found"
    );
}

#[test]
fn item_errors_match_aws() {
    let server = TestServer::in_memory();
    assert_eq!(server.raw("CreateTable", CREATE).status, 200);
    let cases = [
        (r#"{"TableName":"tbl","Item":{"pk":{"S":"a"},"x":{"SS":[]}}}"#, "One or more parameter values were invalid: An string set  may not be empty"),
        (r#"{"TableName":"tbl","Item":{"pk":{"S":"a"},"x":{"SS":["a","a"]}}}"#, "One or more parameter values were invalid: Input collection [a, a] contains duplicates."),
        (r#"{"TableName":"tbl","Item":{"x":{"S":"a"}}}"#, "One or more parameter values were invalid: Missing the key pk in the item"),
        (r#"{"TableName":"tbl","Item":{"pk":{"N":"1"}}}"#, "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"),
        (r#"{"TableName":"tbl","Item":{"pk":{"S":"a"},"n":{"N":"abc"}}}"#, "The parameter cannot be converted to a numeric value: abc"),
        (r#"{"TableName":"tbl","Item":{"pk":{"S":"a"},"n":{"NULL":false}}}"#, "One or more parameter values were invalid: Null attribute value types must have the value of true"),
    ];
    for (body, msg) in cases {
        let r = server.raw("PutItem", body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error_code(), "ValidationException", "{body}: {}", r.body);
        assert_eq!(r.message(), msg, "{body}");
    }
    let r = server.raw(
        "GetItem",
        r#"{"TableName":"tbl","Key":{"pk":{"S":"a"},"extra":{"S":"b"}}}"#,
    );
    assert_eq!(
        r.message(),
        "The provided key element does not match the schema"
    );
}

#[test]
fn conditional_check_failure_returns_old_item_on_request() {
    let server = TestServer::in_memory();
    assert_eq!(server.raw("CreateTable", CREATE).status, 200);
    assert_eq!(
        server
            .raw(
                "PutItem",
                r#"{"TableName":"tbl","Item":{"pk":{"S":"a"},"v":{"N":"1"}}}"#
            )
            .status,
        200
    );
    let r = server.raw(
        "PutItem",
        r#"{"TableName":"tbl","Item":{"pk":{"S":"a"}},"ConditionExpression":"attribute_not_exists(pk)","ReturnValuesOnConditionCheckFailure":"ALL_OLD"}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["__type"],
        "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
    );
    assert_eq!(r.message(), "The conditional request failed");
    assert_eq!(
        r.json()["Item"],
        serde_json::json!({"pk": {"S": "a"}, "v": {"N": "1"}})
    );
}

#[test]
fn deeply_nested_input_is_rejected_not_crashing() {
    let server = TestServer::in_memory();
    assert_eq!(server.raw("CreateTable", CREATE).status, 200);
    let depth = 10_000;
    let doc = format!(
        "{}{}{}",
        r#"{"L":["#.repeat(depth),
        r#"{"S":"x"}"#,
        "]}".repeat(depth)
    );
    let body = format!(r#"{{"TableName":"tbl","Item":{{"pk":{{"S":"a"}},"deep":{doc}}}}}"#);
    let r = server.raw("PutItem", &body);
    assert_eq!(r.status, 400, "{}", &r.body[..r.body.len().min(200)]);
    let expr = format!("{}a = :v{}", "(".repeat(depth), ")".repeat(depth));
    let body = format!(
        r#"{{"TableName":"tbl","Item":{{"pk":{{"S":"a"}}}},"ConditionExpression":"{expr}","ExpressionAttributeValues":{{":v":{{"S":"x"}}}}}}"#
    );
    let r = server.raw("PutItem", &body);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "ValidationException");
    // The server is still alive and well.
    assert_eq!(server.raw("ListTables", "{}").status, 200);
}

#[test]
fn oversized_body_is_413() {
    let server = TestServer::in_memory();
    let body = format!(
        r#"{{"TableName":"tbl",{}"Item":{{}}}}"#,
        " ".repeat(17 * 1024 * 1024)
    );
    let r = server.raw("PutItem", &body);
    assert_eq!(r.status, 413);
}

/// Reads without filter or projection write items straight from their stored form; reads with
/// one build the items in memory first. Both must put the same bytes on the wire, for every
/// attribute type, escapes, non-ASCII text and nesting.
#[test]
fn stored_and_built_items_are_written_identically() {
    let server = TestServer::in_memory();
    let ok = |op: &str, body: &str| {
        let r = server.raw(op, body);
        assert_eq!(r.status, 200, "{op}: {}", r.body);
        r.body
    };
    ok(
        "CreateTable",
        r#"{"TableName":"tbl","BillingMode":"PAY_PER_REQUEST",
            "AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},
                                    {"AttributeName":"sk","AttributeType":"N"}],
            "KeySchema":[{"AttributeName":"pk","KeyType":"HASH"},
                         {"AttributeName":"sk","KeyType":"RANGE"}]}"#,
    );
    let item = r#"{"pk":{"S":"p"},"sk":{"N":"-0.50"},
        "s":{"S":"quote\" back\\ tab\t nl\n ctl\u0001 é 😀"},
        "n":{"N":"12345678901234567890123456789012345678e10"},
        "small":{"N":"1e-130"},"b":{"B":"AAEC/w=="},"t":{"BOOL":true},"f":{"BOOL":false},
        "z":{"NULL":true},"ss":{"SS":["b","a"]},"ns":{"NS":["2","-1.5"]},"bs":{"BS":["AQ==","Ag=="]},
        "m":{"M":{"x":{"L":[{"N":"0"},{"M":{}},{"L":[]},{"S":""}]},"é":{"NS":["1"]}}},
        "l":{"L":[{"SS":["x"]},{"NULL":true}]}}"#;
    ok(
        "PutItem",
        &format!(r#"{{"TableName":"tbl","Item":{item}}}"#),
    );
    ok(
        "PutItem",
        r#"{"TableName":"tbl","Item":{"pk":{"S":"p"},"sk":{"N":"7"},"x":{"S":"second"}}}"#,
    );

    let key = r#""Key":{"pk":{"S":"p"},"sk":{"N":"-0.5"}}"#;
    let all = r#""ProjectionExpression":"pk,sk,s,n,small,b,t,f,z,ss,ns,bs,m,l""#;
    let stored = ok("GetItem", &format!(r#"{{"TableName":"tbl",{key}}}"#));
    let built = ok("GetItem", &format!(r#"{{"TableName":"tbl",{key},{all}}}"#));
    assert_eq!(stored, built);
    assert!(stored.contains(r#""sk":{"N":"-0.5"}"#), "{stored}");

    let query =
        r#""KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{":p":{"S":"p"}}"#;
    let stored = ok(
        "Query",
        &format!(r#"{{"TableName":"tbl",{query},"Limit":2}}"#),
    );
    let built = ok(
        "Query",
        &format!(
            r#"{{"TableName":"tbl",{query},"Limit":2,"FilterExpression":"attribute_not_exists(nope)"}}"#
        ),
    );
    assert_eq!(stored, built);
    assert!(stored.contains(r#""Count":2,"ScannedCount":2"#), "{stored}");
    let stored = ok("Scan", r#"{"TableName":"tbl","Limit":1}"#);
    let built = ok(
        "Scan",
        r#"{"TableName":"tbl","Limit":1,"FilterExpression":"attribute_exists(pk)"}"#,
    );
    assert_eq!(stored, built);
    assert!(stored.contains("LastEvaluatedKey"), "{stored}");
}
