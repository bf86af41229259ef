//! Stream shards close and hand over to children: lineage is recorded and a consumer that
//! follows it reads every record exactly once, in order.

use std::sync::Arc;

use ferrodyn_core::EngineConfig;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::TestServer;
use serde_json::{json, Value};

fn streams(s: &TestServer, op: &str, body: Value) -> Value {
    let r = s.raw_with(
        Some(&format!("DynamoDBStreams_20120810.{op}")),
        &body.to_string(),
        true,
    );
    assert_eq!(r.status, 200, "{op}: {}", r.body);
    r.json()
}

#[test]
fn closed_shards_have_children_and_lose_no_record() {
    let config = EngineConfig {
        durability: Durability::Buffered,
        stream_shard_records: 5,
        ..EngineConfig::default()
    };
    let s = TestServer::with_config(Arc::new(MemoryStorage::new()), config);
    let r = s.raw(
        "CreateTable",
        r#"{"TableName":"rolls","BillingMode":"PAY_PER_REQUEST",
            "AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"},{"AttributeName":"c","AttributeType":"N"}],
            "KeySchema":[{"AttributeName":"p","KeyType":"HASH"},{"AttributeName":"c","KeyType":"RANGE"}],
            "StreamSpecification":{"StreamEnabled":true,"StreamViewType":"KEYS_ONLY"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let arn = r.json()["TableDescription"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_owned();
    // One partition, so every record lands in the same lane of shards.
    for c in 0..23 {
        let body =
            format!(r#"{{"TableName":"rolls","Item":{{"p":{{"S":"one"}},"c":{{"N":"{c}"}}}}}}"#);
        assert_eq!(s.raw("PutItem", &body).status, 200);
    }
    let desc = streams(&s, "DescribeStream", json!({"StreamArn": arn}));
    let shards = desc["StreamDescription"]["Shards"]
        .as_array()
        .unwrap()
        .clone();
    // Follow the lineage of the lane that holds the records: start at a root with records.
    let by_parent = |id: &str| {
        shards
            .iter()
            .find(|sh| sh["ParentShardId"].as_str() == Some(id))
            .cloned()
    };
    let closed: Vec<&Value> = shards
        .iter()
        .filter(|sh| sh["SequenceNumberRange"]["EndingSequenceNumber"].is_string())
        .collect();
    assert!(
        closed.len() >= 4,
        "23 records at 5 per shard close at least 4 shards: {shards:#?}"
    );
    for sh in &closed {
        let id = sh["ShardId"].as_str().unwrap();
        assert!(by_parent(id).is_some(), "closed shard {id} has a child");
    }
    let mut seen = Vec::new();
    for root in shards.iter().filter(|sh| sh.get("ParentShardId").is_none()) {
        let mut shard = Some(root.clone());
        while let Some(sh) = shard {
            let id = sh["ShardId"].as_str().unwrap().to_owned();
            let it = streams(
                &s,
                "GetShardIterator",
                json!({"StreamArn": arn, "ShardId": id, "ShardIteratorType": "TRIM_HORIZON"}),
            );
            let mut iter = it["ShardIterator"].as_str().map(str::to_owned);
            let mut rounds = 0;
            while let Some(i) = iter.take() {
                let page = streams(&s, "GetRecords", json!({"ShardIterator": i}));
                for rec in page["Records"].as_array().unwrap() {
                    seen.push(
                        rec["dynamodb"]["Keys"]["c"]["N"]
                            .as_str()
                            .unwrap()
                            .parse::<u32>()
                            .unwrap(),
                    );
                }
                rounds += 1;
                let closed = sh["SequenceNumberRange"]["EndingSequenceNumber"].is_string();
                if closed && rounds < 50 {
                    iter = page["NextShardIterator"].as_str().map(str::to_owned);
                }
            }
            shard = by_parent(&id);
        }
    }
    assert_eq!(
        seen,
        (0..23).collect::<Vec<u32>>(),
        "every record once, in order"
    );
}
