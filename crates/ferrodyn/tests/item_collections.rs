//! Item collections of tables with local secondary indexes: metrics and the size limit (single
//! writes and transactions), which survives a restart (sizes are recomputed from storage).

use std::sync::Arc;

use ferrodyn_core::EngineConfig;
use ferrodyn_storage::{Durability, FjallStorage};
use ferrodyn_testkit::TestServer;

const CREATE: &str = r#"{"TableName":"coll","BillingMode":"PAY_PER_REQUEST",
    "AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"c","AttributeType":"S"},{"AttributeName":"x","AttributeType":"S"}],
    "KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"c","KeyType":"RANGE"}],
    "LocalSecondaryIndexes":[{"IndexName":"lsi","KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"x","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}}]}"#;

fn server(dir: &std::path::Path) -> TestServer {
    let config = EngineConfig {
        durability: Durability::Sync,
        item_collection_limit: 4000,
        ..EngineConfig::default()
    };
    TestServer::with_config(Arc::new(FjallStorage::open(dir).unwrap()), config)
}

fn put(s: &TestServer, p: &str, c: u32) -> ferrodyn_testkit::RawResponse {
    // About 1 KB of item plus 1 KB of LSI entry.
    let body = format!(
        r#"{{"TableName":"coll","Item":{{"p":{{"S":"{p}"}},"c":{{"S":"{c}"}},"x":{{"S":"x{c}"}},"pad":{{"S":"{}"}}}},"ReturnItemCollectionMetrics":"SIZE"}}"#,
        "z".repeat(900)
    );
    s.raw("PutItem", &body)
}

#[test]
fn collection_limit_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = server(dir.path());
        assert_eq!(s.raw("CreateTable", CREATE).status, 200);
        let r = put(&s, "a", 0);
        assert_eq!(r.status, 200, "{}", r.body);
        let icm = &r.json()["ItemCollectionMetrics"];
        assert_eq!(
            icm["ItemCollectionKey"],
            serde_json::json!({"p": {"S": "a"}})
        );
        assert_eq!(icm["SizeEstimateRangeGB"], serde_json::json!([0.0, 1.0]));
        assert_eq!(put(&s, "a", 1).status, 200);
        let r = put(&s, "a", 2);
        assert_eq!(r.status, 400);
        assert_eq!(
            r.error_code(),
            "ItemCollectionSizeLimitExceededException",
            "{}",
            r.body
        );
        // A transaction writing to the full collection is cancelled for that action.
        let t = s.raw(
            "TransactWriteItems",
            &format!(
                r#"{{"TransactItems":[{{"Put":{{"TableName":"coll","Item":{{"p":{{"S":"b"}},"c":{{"S":"9"}}}}}}}},
                    {{"Put":{{"TableName":"coll","Item":{{"p":{{"S":"a"}},"c":{{"S":"2"}},"pad":{{"S":"{}"}}}}}}}}]}}"#,
                "z".repeat(900)
            ),
        );
        assert_eq!(t.status, 400, "{}", t.body);
        assert_eq!(
            t.json()["CancellationReasons"],
            serde_json::json!([{"Code": "None"},
                {"Code": "ItemCollectionSizeLimitExceeded", "Message": "Collection size exceeded."}])
        );
        // Other collections are unaffected; the refused items were not written.
        assert_eq!(put(&s, "b", 0).status, 200);
        let g = s.raw(
            "GetItem",
            r#"{"TableName":"coll","Key":{"p":{"S":"b"},"c":{"S":"9"}}}"#,
        );
        assert!(g.json().get("Item").is_none());
        let g = s.raw(
            "GetItem",
            r#"{"TableName":"coll","Key":{"p":{"S":"a"},"c":{"S":"2"}}}"#,
        );
        assert!(g.json().get("Item").is_none());
    }
    // After a restart the sizes are recomputed: the collection is still full until shrunk.
    let s = server(dir.path());
    assert_eq!(
        put(&s, "a", 2).error_code(),
        "ItemCollectionSizeLimitExceededException"
    );
    let d = s.raw(
        "DeleteItem",
        r#"{"TableName":"coll","Key":{"p":{"S":"a"},"c":{"S":"0"}}}"#,
    );
    assert_eq!(d.status, 200);
    assert_eq!(put(&s, "a", 2).status, 200);
}
