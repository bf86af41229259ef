//! ReturnConsumedCapacity=INDEXES: the table's share and each touched index's share add up.

use ferrodyn_testkit::TestServer;
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
    // A query on an index is charged to that index only.
    let r = server.raw(
        "Query",
        r#"{"TableName":"cap","IndexName":"gsi","KeyConditionExpression":"x = :x","ExpressionAttributeValues":{":x":{"S":"y"}},"ReturnConsumedCapacity":"INDEXES"}"#,
    );
    let cc = &r.json()["ConsumedCapacity"];
    assert!(cc.get("Table").is_none(), "{cc}");
    assert_eq!(units(cc), units(&cc["GlobalSecondaryIndexes"]["gsi"]));
}
