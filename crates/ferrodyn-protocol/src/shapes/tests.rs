//! Table-driven tests of input-shape validation; expected messages are the service's own.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn ddb(op: &str, body: Value) -> Result<(), Error> {
    validate(Api::DynamoDb, op, &body)
}

fn one(msg: &str) -> Result<(), Error> {
    Err(Error::Validation(format!(
        "1 validation error detected: {msg}"
    )))
}

fn ser(msg: &str) -> Result<(), Error> {
    Err(Error::Serialization(msg.to_owned()))
}

#[test]
fn operations() {
    assert!(operation_exists(Api::DynamoDb, "PutItem"));
    assert!(operation_exists(Api::DynamoDb, "UpdateTimeToLive"));
    assert!(!operation_exists(Api::DynamoDb, "GetRecords"));
    assert!(operation_exists(Api::Streams, "GetRecords"));
    assert!(operation_exists(Api::Streams, "ListStreams"));
    assert!(!operation_exists(Api::Streams, "PutItem"));
    assert!(!operation_exists(Api::DynamoDb, "BogusOperation"));
    assert_eq!(validate(Api::DynamoDb, "Bogus", &json!(5)), Ok(()));
}

#[test]
fn valid_requests_pass() {
    let cases = [
        (
            "PutItem",
            json!({"TableName": "tbl", "Item": {"p": {"S": "x"}, "n": {"N": "1"},
            "b": {"B": "YWJj"}, "l": {"L": [{"M": {"a": {"BOOL": true}}}, {"NULL": true}]},
            "ss": {"SS": ["a"]}, "bs": {"BS": ["YQ=="]}}}),
        ),
        (
            "CreateTable",
            json!({"TableName": "abc",
            "AttributeDefinitions": [{"AttributeName": "p", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "p", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"}),
        ),
        (
            "Query",
            json!({"TableName": "tbl", "KeyConditionExpression": "p = :v",
            "ExpressionAttributeValues": {":v": {"S": "x"}}, "Limit": 5,
            "ConsistentRead": "yes", "Unknown": [1, 2, 3], "IndexName": null}),
        ),
        (
            "BatchWriteItem",
            json!({"RequestItems": {"tbl": [
            {"PutRequest": {"Item": {"p": {"S": "x"}}}},
            {"DeleteRequest": {"Key": {"p": {"S": "y"}}}}]}}),
        ),
        ("ListTables", json!({})),
        ("ListTables", Value::Null),
        (
            "GetItem",
            json!({"TableName": "arn:aws:dynamodb:us-east-1:123456789012:table/x",
            "Key": {"p": {"S": "x"}}}),
        ),
    ];
    for (op, body) in cases {
        assert_eq!(ddb(op, body.clone()), Ok(()), "{op} {body}");
    }
    assert_eq!(
        validate(
            Api::Streams,
            "GetRecords",
            &json!({"ShardIterator": "abc", "Limit": 10})
        ),
        Ok(())
    );
}

#[test]
fn single_constraints() {
    let long = "a".repeat(256);
    let cases: Vec<(&str, Value, String)> = vec![
        (
            "PutItem",
            json!({"Item": {}}),
            "Value null at 'tableName' failed to satisfy constraint: Member must not be null"
                .into(),
        ),
        (
            "PutItem",
            json!({"TableName": "", "Item": {}}),
            "Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ),
        (
            "PutItem",
            json!({"TableName": long, "Item": {}}),
            format!("Value '{long}' at 'tableName' failed to satisfy constraint: Member must have length less than or equal to 255"),
        ),
        (
            "PutItem",
            json!({"TableName": "bad table!@#", "Item": {}}),
            "Value 'bad table!@#' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+".into(),
        ),
        (
            "CreateTable",
            json!({"TableName": "ab", "AttributeDefinitions": [], "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}]}),
            "Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3".into(),
        ),
        (
            "CreateTable",
            json!({"TableName": "abc", "AttributeDefinitions": [],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "INVALID"}]}),
            "Value 'INVALID' at 'keySchema.1.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]".into(),
        ),
        (
            "CreateTable",
            json!({"TableName": "abc", "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "INVALID"}],
                   "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}),
            "Value 'INVALID' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]".into(),
        ),
        (
            "CreateTable",
            json!({"TableName": "abc", "AttributeDefinitions": [],
                   "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}, {"AttributeName": "c", "KeyType": "RANGE"}]}),
            "Value '[KeySchemaElement(attributeName=a, keyType=HASH), KeySchemaElement(attributeName=b, keyType=RANGE), KeySchemaElement(attributeName=c, keyType=RANGE)]' at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2".into(),
        ),
        (
            "Query",
            json!({"TableName": "tbl", "Select": "INVALID_VALUE"}),
            "Value 'INVALID_VALUE' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]".into(),
        ),
        (
            "Query",
            json!({"TableName": "tbl", "Limit": 0}),
            "Value at 'Limit' failed to satisfy constraint: Member must have value greater than or equal to 1".into(),
        ),
        (
            "Scan",
            json!({"TableName": "tbl", "Limit": 0}),
            "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1".into(),
        ),
        (
            "Scan",
            json!({"TableName": "tbl", "Limit": 0.7}),
            "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1".into(),
        ),
        (
            "Scan",
            json!({"TableName": "tbl", "TotalSegments": 1000001, "Segment": 1}),
            "Value '1000001' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000".into(),
        ),
        (
            "TransactGetItems",
            json!({"TransactItems": []}),
            "Value '[]' at 'transactItems' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ),
        (
            "UpdateTable",
            json!({"TableName": "tbl", "ProvisionedThroughput": {"ReadCapacityUnits": 0, "WriteCapacityUnits": 5}}),
            "Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1".into(),
        ),
        (
            "GetItem",
            json!({"TableName": "tbl", "Key": {"p": {"S": "x"}}, "AttributesToGet": []}),
            "Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ),
        (
            "BatchGetItem",
            json!({"RequestItems": {"tbl": {"Keys": (0..101).map(|i| json!({"p": {"S": i.to_string()}})).collect::<Vec<_>>()}}}),
            "Value at 'RequestItems.tbl.member.Keys' failed to satisfy constraint: Member must have length less than or equal to 100".into(),
        ),
        (
            "BatchWriteItem",
            json!({"RequestItems": {"tbl": [{"PutRequest": {}}]}}),
            "Value null at 'requestItems.tbl.member.1.member.putRequest.item' failed to satisfy constraint: Member must not be null".into(),
        ),
        (
            "UpdateTimeToLive",
            json!({"TableName": "tbl", "TimeToLiveSpecification": {"Enabled": true, "AttributeName": ""}}),
            "Value '' at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
        ),
        (
            "UpdateTimeToLive",
            json!({"TableName": "tbl", "TimeToLiveSpecification": {"AttributeName": "x"}}),
            "Value null at 'timeToLiveSpecification.enabled' failed to satisfy constraint: Member must not be null".into(),
        ),
        (
            "TagResource",
            json!({"ResourceArn": "arn:x", "Tags": [{"Key": "k"}]}),
            "Value null at 'tags.1.member.value' failed to satisfy constraint: Member must not be null".into(),
        ),
    ];
    for (op, body, msg) in cases {
        assert_eq!(ddb(op, body.clone()), one(&msg), "{op} {body}");
    }
}

#[test]
fn map_constraints() {
    let requests: Vec<Value> = (0..26)
        .map(|i| json!({"PutRequest": {"Item": {"p": {"S": i.to_string()}}}}))
        .collect();
    let err = ddb("BatchWriteItem", json!({"RequestItems": {"tbl": requests}}));
    let Err(Error::Validation(msg)) = err else {
        panic!("{err:?}")
    };
    assert!(msg.starts_with(
        "1 validation error detected: Value '{tbl=[WriteRequest(putRequest=PutRequest(item={p=AttributeValue(s=0, n=null"
    ), "{msg}");
    assert!(msg.ends_with("}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]"), "{msg}");

    assert_eq!(
        ddb("BatchWriteItem", json!({"RequestItems": {"tbl": []}})),
        one("Value '{tbl=[]}' at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]")
    );
    assert_eq!(
        ddb("BatchGetItem", json!({"RequestItems": {"a;": {"Keys": [{"p": {"S": "x"}}]}}})),
        one("Value '{a;=KeysAndAttributes(keys=[{p=AttributeValue(s=x, n=null, b=null, sS=null, nS=null, bS=null, m=null, l=null, nULL=null, bOOL=null)}], attributesToGet=null, consistentRead=null, projectionExpression=null, expressionAttributeNames=null)}' at 'requestItems' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have length greater than or equal to 3, Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]")
    );
}

#[test]
fn shape_level_messages() {
    for op in ["CreateTable", "DeleteTable", "DescribeTable", "UpdateTable"] {
        assert_eq!(
            ddb(op, json!({})),
            Err(Error::validation(
                "The parameter 'TableName' is required but was not present in the request"
            )),
            "{op}"
        );
    }
    assert_eq!(
        ddb("BatchGetItem", json!({"RequestItems": {}})),
        Err(Error::validation(
            "The requestItems parameter is required for BatchGetItem"
        ))
    );
    assert_eq!(
        ddb("BatchWriteItem", json!({"RequestItems": {}})),
        Err(Error::validation(
            "The requestItems parameter is required for BatchWriteItem"
        ))
    );
    assert_eq!(
        ddb("BatchWriteItem", json!({})),
        one("Value null at 'requestItems' failed to satisfy constraint: Member must not be null")
    );
}

#[test]
fn multiple_errors_in_service_order() {
    assert_eq!(
        ddb("PutItem", json!({"TableName": "tbl", "Item": {"p": {"S": "x"}},
            "ReturnValues": "INVALID", "ReturnConsumedCapacity": "INVALID",
            "ReturnItemCollectionMetrics": "INVALID"})),
        Err(Error::validation(
            "3 validation errors detected: \
             Value 'INVALID' at 'returnConsumedCapacity' failed to satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]; \
             Value 'INVALID' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]; \
             Value 'INVALID' at 'returnItemCollectionMetrics' failed to satisfy constraint: Member must satisfy enum value set: [SIZE, NONE]"
        ))
    );
    assert_eq!(
        ddb("CreateTable", json!({"TableName": "abc", "AttributeDefinitions": [],
            "KeySchema": [], "BillingMode": "A",
            "ProvisionedThroughput": {"ReadCapacityUnits": -1, "WriteCapacityUnits": -1}})),
        Err(Error::validation(
            "4 validation errors detected: \
             Value 'A' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]; \
             Value '-1' at 'provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1; \
             Value '-1' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1; \
             Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length greater than or equal to 1"
        ))
    );
    // Missing required members are all reported.
    assert_eq!(
        ddb("CreateTable", json!({"TableName": "abc"})),
        Err(Error::validation(
            "2 validation errors detected: \
             Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null; \
             Value null at 'keySchema' failed to satisfy constraint: Member must not be null"
        ))
    );
    // Pattern before length, both on one value.
    assert_eq!(
        ddb("Query", json!({"TableName": "tbl", "IndexName": "h;"})),
        Err(Error::validation(
            "2 validation errors detected: \
             Value 'h;' at 'indexName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
             Value 'h;' at 'indexName' failed to satisfy constraint: Member must have length greater than or equal to 3"
        ))
    );
}

#[test]
fn table_name_errors_are_reported_alone() {
    assert_eq!(
        ddb("PutItem", json!({"TableName": "", "ReturnValues": "INVALID", "Item": {}})),
        one("Value '' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 1")
    );
    assert_eq!(
        ddb("CreateTable", json!({"TableName": "x!", "KeySchema": [], "AttributeDefinitions": []})),
        Err(Error::validation(
            "2 validation errors detected: \
             Value 'x!' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; \
             Value 'x!' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"
        ))
    );
}

#[test]
fn at_most_ten_errors() {
    let lsis: Vec<Value> = (0..9).map(|_| json!({})).collect();
    let err = ddb(
        "CreateTable",
        json!({"TableName": "abc", "AttributeDefinitions": [], "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}],
               "LocalSecondaryIndexes": lsis}),
    );
    let Err(Error::Validation(msg)) = err else {
        panic!("{err:?}")
    };
    assert!(msg.starts_with("10 validation errors detected: Value null at 'localSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must not be null; "), "{msg}");
    assert_eq!(msg.matches("failed to satisfy constraint").count(), 10);
    assert!(msg.ends_with("Value null at 'localSecondaryIndexes.4.member.indexName' failed to satisfy constraint: Member must not be null"), "{msg}");
}

#[test]
fn type_mismatches() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("PutItem", json!({"TableName": 5}), "NUMBER_VALUE cannot be converted to String"),
        ("PutItem", json!({"TableName": 5.5}), "DECIMAL_VALUE cannot be converted to String"),
        ("PutItem", json!({"TableName": true}), "TRUE_VALUE cannot be converted to String"),
        ("PutItem", json!({"TableName": false}), "FALSE_VALUE cannot be converted to String"),
        ("PutItem", json!({"TableName": []}), "Unrecognized collection type class java.lang.String"),
        ("PutItem", json!({"TableName": {}}), "Start of structure or map found where not expected"),
        ("Scan", json!({"Limit": "abc"}), "STRING_VALUE cannot be converted to Integer"),
        ("Scan", json!({"Limit": true}), "TRUE_VALUE cannot be converted to Integer"),
        ("Scan", json!({"Limit": [1]}), "Unrecognized collection type class java.lang.Integer"),
        ("Scan", json!({"ConsistentRead": "23"}), "Unexpected token received from parser"),
        ("Scan", json!({"ConsistentRead": 23}), "NUMBER_VALUE cannot be converted to Boolean"),
        ("Scan", json!({"ConsistentRead": 0.5}), "DECIMAL_VALUE cannot be converted to Boolean"),
        ("Scan", json!({"ConsistentRead": []}), "Unrecognized collection type class java.lang.Boolean"),
        ("Scan", json!({"ConsistentRead": {}}), "Start of structure or map found where not expected"),
        ("CreateTable", json!({"KeySchema": {}}), "Start of structure or map found where not expected"),
        ("CreateTable", json!({"KeySchema": "x"}), "Unexpected field type"),
        ("CreateTable", json!({"KeySchema": ["x"]}), "Unexpected value type in payload"),
        ("CreateTable", json!({"KeySchema": [[]]}), "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.KeySchemaElement"),
        ("CreateTable", json!({"ProvisionedThroughput": 5}), "Unexpected field type"),
        ("CreateTable", json!({"ProvisionedThroughput": []}), "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.ProvisionedThroughput"),
        ("CreateTable", json!({"ProvisionedThroughput": {"ReadCapacityUnits": "1"}}), "STRING_VALUE cannot be converted to Long"),
        ("PutItem", json!({"Item": []}), "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"),
        ("PutItem", json!({"Item": 3}), "Unexpected field type"),
        ("PutItem", json!({"Item": {"a": 3}}), "Unexpected value type in payload"),
        ("PutItem", json!({"Item": {"a": []}}), "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"),
        ("PutItem", json!({"Item": {"a": {"N": 3}}}), "NUMBER_VALUE cannot be converted to String"),
        ("PutItem", json!({"Item": {"a": {"SS": "x"}}}), "Unexpected field type"),
        ("PutItem", json!({"Item": {"a": {"SS": [1]}}}), "NUMBER_VALUE cannot be converted to String"),
        ("PutItem", json!({"Item": {"a": {"BOOL": "maybe"}}}), "Unexpected token received from parser"),
        ("PutItem", json!({"Item": {"a": {"M": []}}}), "Unrecognized collection type java.util.Map<java.lang.String, com.amazonaws.dynamodb.v20120810.AttributeValue>"),
        ("PutItem", json!({"Item": {"a": {"L": [{"M": {"b": {"L": [{"S": 1}]}}}]}}}), "NUMBER_VALUE cannot be converted to String"),
        ("PutItem", json!({"Item": {"a": {"B": 1}}}), "only base-64-encoded strings are convertible to bytes"),
        ("PutItem", json!({"Item": {"a": {"B": []}}}), "Unrecognized collection type class java.nio.ByteBuffer"),
        ("PutItem", json!({"Item": {"a": {"B": "23456"}}}), "Base64 encoded length is expected a multiple of 4 bytes but found: 5"),
        ("PutItem", json!({"Item": {"a": {"B": "=+/="}}}), "Invalid last non-pad Base64 character dectected"),
        ("PutItem", json!({"Item": {"a": {"B": "+/+="}}}), "Invalid last non-pad Base64 character dectected"),
        ("PutItem", json!({"Item": {"a": {"BS": ["YWJj??!!"]}}}), "Invalid last non-pad Base64 character dectected"),
        ("PutItem", json!({"ExpressionAttributeNames": {"#a": 1}}), "NUMBER_VALUE cannot be converted to String"),
        ("BatchWriteItem", json!({"RequestItems": []}), "Unrecognized collection type java.util.Map<java.lang.String, java.util.List<com.amazonaws.dynamodb.v20120810.WriteRequest>>"),
        ("BatchWriteItem", json!({"RequestItems": {"t": "x"}}), CAST_MESSAGE),
        ("BatchWriteItem", json!({"RequestItems": {"t": {}}}), "Start of structure or map found where not expected"),
        ("BatchGetItem", json!({"RequestItems": {"t": {"Keys": ["x"]}}}), CAST_MESSAGE),
        ("BatchGetItem", json!({"RequestItems": {"t": "x"}}), "Unexpected value type in payload"),
        ("PutItem", json!([]), "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.PutItemInput"),
        ("PutItem", json!("x"), "Unexpected value type in payload"),
    ];
    for (op, body, msg) in cases {
        assert_eq!(ddb(op, body.clone()), ser(msg), "{op} {body}");
    }
}

#[test]
fn type_errors_come_first_in_document_order() {
    // A type error wins over constraint violations anywhere in the body.
    assert_eq!(
        ddb("PutItem", json!({"TableName": "", "Item": {"a": {"N": 1}}})),
        ser("NUMBER_VALUE cannot be converted to String")
    );
    assert_eq!(
        ddb("Scan", json!({"Limit": "x", "ConsistentRead": 1})),
        ser("STRING_VALUE cannot be converted to Integer")
    );
    assert_eq!(
        ddb("Scan", json!({"ConsistentRead": 1, "Limit": "x"})),
        ser("NUMBER_VALUE cannot be converted to Boolean")
    );
}

#[test]
fn nulls_and_unknown_members() {
    assert_eq!(
        ddb("PutItem", json!({"TableName": null, "Item": {}})),
        one("Value null at 'tableName' failed to satisfy constraint: Member must not be null")
    );
    assert_eq!(
        ddb(
            "Scan",
            json!({"TableName": "tbl", "Limit": null, "Bogus": {"x": [1]}})
        ),
        Ok(())
    );
    assert_eq!(
        ddb("CreateTable", json!({"TableName": "abc", "AttributeDefinitions": [null],
            "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}]})),
        one("Value null at 'attributeDefinitions.1.member' failed to satisfy constraint: Member must not be null")
    );
}

fn nested(depth: usize) -> Value {
    // Built by hand: `json!` re-serializes interpolated values, which is quadratic here.
    let mut v = json!({"S": "x"});
    for _ in 0..depth {
        let mut m = Map::new();
        m.insert("L".to_owned(), Value::Array(vec![v]));
        v = Value::Object(m);
    }
    v
}

#[test]
fn deep_nesting_does_not_overflow() {
    // Built and dropped on a large stack: serde_json's own recursive Drop and Clone are not
    // under test here, only `validate`.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(|| {
            let mut item = Map::new();
            item.insert("a".to_owned(), nested(10_000));
            let mut body = json!({"TableName": "tbl"});
            body["Item"] = Value::Object(item);
            let ok = ddb("PutItem", body.clone());
            let mut bad = body;
            // A type error at the very bottom is still found.
            let mut cur = &mut bad["Item"]["a"];
            while cur.get("L").is_some() {
                cur = &mut cur["L"][0];
            }
            *cur = json!({"S": 7});
            let err = ddb("PutItem", bad);
            (ok, err)
        })
        .expect("spawn");
    let (ok, err) = handle.join().expect("join");
    assert_eq!(ok, Ok(()));
    assert_eq!(err, ser("NUMBER_VALUE cannot be converted to String"));
}

#[test]
fn patterns() {
    assert!(Pattern::TableName.matches("a-b_c.9"));
    assert!(!Pattern::TableName.matches(""));
    assert!(Pattern::S3Bucket.matches("my.bucket-1"));
    assert!(!Pattern::S3Bucket.matches("a"));
    assert!(!Pattern::S3Bucket.matches("-ab"));
    assert!(Pattern::Uuid.matches("123e4567-e89b-12d3-a456-426614174000"));
    assert!(!Pattern::Uuid.matches("123e4567e89b-12d3-a456-426614174000-"));
    assert!(Pattern::HexBlocks16.matches("0123456789abcdef0123456789abcdef"));
    assert!(!Pattern::HexBlocks16.matches("0123456789abcdef0"));
    assert!(Pattern::NoDollar.matches("abc"));
    assert!(!Pattern::NoDollar.matches("a$c"));
    assert!(Pattern::CsvDelimiter.matches(";"));
    assert!(!Pattern::CsvDelimiter.matches(";;"));
    assert!(Pattern::ContributorInsightsRule.matches("ab"));
    assert!(!Pattern::ContributorInsightsRule.matches("a"));
    assert!(Pattern::PrintPlus.matches("a b"));
    assert!(!Pattern::PrintPlus.matches("a\n"));
    assert!(Pattern::XmlText.matches("a\tb😀"));
    assert!(!Pattern::XmlText.matches("a\u{1}"));
}

#[test]
fn base64() {
    for ok in ["", "YQ==", "YWI=", "YWJj", "+/+/"] {
        assert_eq!(check_base64(ok), Ok(()), "{ok}");
    }
    for bad in ["YR==", "YWJ=", "Y===", "====", "YW=j", "YWJ\u{e9}"] {
        assert!(check_base64(bad).is_err(), "{bad}");
    }
}

#[test]
fn coerce_bool_accepts_service_spellings() {
    assert_eq!(coerce_bool(&json!(true)), Some(true));
    assert_eq!(coerce_bool(&json!("YES")), Some(true));
    assert_eq!(coerce_bool(&json!("0")), Some(false));
    assert_eq!(coerce_bool(&json!("nope")), None);
    assert_eq!(coerce_bool(&json!(1)), None);
}

const OPS: [&str; 12] = [
    "PutItem",
    "GetItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "CreateTable",
    "UpdateTable",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "ExecuteStatement",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let names = prop_oneof![
        Just("TableName".to_owned()),
        Just("Item".to_owned()),
        Just("Key".to_owned()),
        Just("S".to_owned()),
        Just("N".to_owned()),
        Just("B".to_owned()),
        Just("L".to_owned()),
        Just("M".to_owned()),
        Just("KeySchema".to_owned()),
        Just("RequestItems".to_owned()),
        Just("TransactItems".to_owned()),
        Just("Put".to_owned()),
        Just("Limit".to_owned()),
        "[a-zA-Z]{0,4}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9+/=;]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec((names.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn validate_never_panics(op in 0..OPS.len(), body in arb_json()) {
        let _ = validate(Api::DynamoDb, OPS[op], &body);
        let _ = validate(Api::Streams, "GetRecords", &body);
        if let Value::Object(o) = &body {
            // Wrapped under the most common members too, to reach deeper shapes.
            for member in ["Item", "RequestItems", "TransactItems", "KeySchema"] {
                let mut m = o.clone();
                m.insert(member.to_owned(), body.clone());
                let _ = validate(Api::DynamoDb, OPS[op], &Value::Object(m));
            }
        }
    }
}
