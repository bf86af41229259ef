//! Global secondary indexes with multi-attribute keys (up to 4 HASH and 4 RANGE attributes):
//! key-schema validation, DescribeTable, sparse maintenance and type checks, Query rules and
//! errors (expressions and legacy KeyConditions), tuple ordering, paging, Scan, projections,
//! consumed capacity, streams, and online backfill under concurrent writes.
//!
//! Every test runs on both storage engines: in memory, and fjall on disk behind the read cache
//! (as `ferrodyn serve` runs it). SDK tests drive the behaviour; raw HTTP pins exact error bodies.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as AV, BillingMode, ComparisonOperator, Condition,
    CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, ReturnConsumedCapacity,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use ferrodyn_testkit::TestServer;
use serde_json::json;

type Item = HashMap<String, AV>;
/// A CreateTable case: attribute definitions, GSI key schema (name, HASH|RANGE), message.
type SchemaCase<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
/// A Query case: KeyConditionExpression, values, expected `pk`s in order.
type QueryCase<'a> = (&'a str, Vec<(&'a str, AV)>, Vec<&'a str>);
/// An index entry as the backfill test compares it: (r, w, pk, sk).
type Entry = (i64, String, String, i64);

/// One server per storage engine; the temporary directory lives as long as its server.
fn engines() -> Vec<(&'static str, TestServer, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    vec![
        ("memory", TestServer::in_memory(), None),
        ("fjall", TestServer::durable(dir.path()), Some(dir)),
    ]
}

fn attr(name: &str, t: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .unwrap()
}

fn key(name: &str, t: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .unwrap()
}

fn schema(hash: &[&str], range: &[&str]) -> Vec<KeySchemaElement> {
    hash.iter()
        .map(|h| key(h, KeyType::Hash))
        .chain(range.iter().map(|r| key(r, KeyType::Range)))
        .collect()
}

fn gsi(name: &str, hash: &[&str], range: &[&str], p: ProjectionType) -> GlobalSecondaryIndex {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .set_key_schema(Some(schema(hash, range)))
        .projection(Projection::builder().projection_type(p).build())
        .build()
        .unwrap()
}

fn s(v: &str) -> AV {
    AV::S(v.to_string())
}
fn n(v: i64) -> AV {
    AV::N(v.to_string())
}

/// Table `tbl`: key `pk` (S); GSI `idx`: HASH `h1` (S), `h2` (N); RANGE `r1` (N), `r2` (S),
/// projection ALL; GSI `keys`: the same key, KEYS_ONLY.
async fn setup(c: &Client) {
    c.create_table()
        .table_name("tbl")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("h1", ScalarAttributeType::S))
        .attribute_definitions(attr("h2", ScalarAttributeType::N))
        .attribute_definitions(attr("r1", ScalarAttributeType::N))
        .attribute_definitions(attr("r2", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(gsi(
            "idx",
            &["h1", "h2"],
            &["r1", "r2"],
            ProjectionType::All,
        ))
        .global_secondary_indexes(gsi(
            "keys",
            &["h1", "h2"],
            &["r1", "r2"],
            ProjectionType::KeysOnly,
        ))
        .send()
        .await
        .unwrap();
}

async fn put(c: &Client, table: &str, item: &[(&str, AV)]) {
    let mut req = c.put_item().table_name(table);
    for (k, v) in item {
        req = req.item(*k, v.clone());
    }
    req.send().await.unwrap();
}

/// Puts an item of table `tbl` with the given index key values (None = attribute absent).
async fn put_t(
    c: &Client,
    pk: &str,
    h1: Option<&str>,
    h2: Option<i64>,
    r1: Option<i64>,
    r2: Option<&str>,
) {
    let mut item = vec![("pk", s(pk)), ("v", s(&format!("v-{pk}")))];
    item.extend(h1.map(|v| ("h1", s(v))));
    item.extend(h2.map(|v| ("h2", n(v))));
    item.extend(r1.map(|v| ("r1", n(v))));
    item.extend(r2.map(|v| ("r2", s(v))));
    put(c, "tbl", &item).await;
}

/// Runs a Query on index `idx` with `expr` and `values`; returns the `pk`s in result order.
async fn q(c: &Client, expr: &str, values: &[(&str, AV)], forward: bool) -> Vec<String> {
    let mut req = c
        .query()
        .table_name("tbl")
        .index_name("idx")
        .key_condition_expression(expr)
        .scan_index_forward(forward);
    for (k, v) in values {
        req = req.expression_attribute_values(*k, v.clone());
    }
    let items = req.send().await.unwrap().items.unwrap_or_default();
    items
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_and_describe_multi_attribute_keys() {
    for (engine, server, _dir) in engines() {
        let c = server.client();
        let mut req = c
            .create_table()
            .table_name("wide")
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk", ScalarAttributeType::S));
        for a in ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"] {
            req = req.attribute_definitions(attr(a, ScalarAttributeType::B));
        }
        let out = req
            .key_schema(key("pk", KeyType::Hash))
            .global_secondary_indexes(gsi(
                "max",
                &["a1", "a2", "a3", "a4"],
                &["b1", "b2", "b3", "b4"],
                ProjectionType::All,
            ))
            .global_secondary_indexes(gsi("hashes", &["b4", "a1"], &[], ProjectionType::All))
            .global_secondary_indexes(gsi("ranges", &["a2"], &["b1", "a3"], ProjectionType::All))
            .send()
            .await
            .unwrap();
        let created = out.table_description.unwrap();
        let d = c
            .describe_table()
            .table_name("wide")
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        for desc in [created, d] {
            let gsis: BTreeMap<String, Vec<KeySchemaElement>> = desc
                .global_secondary_indexes
                .unwrap()
                .into_iter()
                .map(|g| (g.index_name.unwrap(), g.key_schema.unwrap()))
                .collect();
            assert_eq!(
                gsis["max"],
                schema(&["a1", "a2", "a3", "a4"], &["b1", "b2", "b3", "b4"]),
                "{engine}"
            );
            assert_eq!(gsis["hashes"], schema(&["b4", "a1"], &[]), "{engine}");
            assert_eq!(gsis["ranges"], schema(&["a2"], &["b1", "a3"]), "{engine}");
            // The table's own key schema is unchanged.
            assert_eq!(desc.key_schema.unwrap(), schema(&["pk"], &[]));
        }
    }
}

/// A CreateTable body with table key `pk` (S), attributes `defs` (all S) and one GSI `g` with
/// key schema `ks` (name, HASH|RANGE).
fn create_body(defs: &[&str], ks: &[(&str, &str)]) -> String {
    let mut ad = vec![json!({"AttributeName": "pk", "AttributeType": "S"})];
    ad.extend(
        defs.iter()
            .map(|d| json!({"AttributeName": d, "AttributeType": "S"})),
    );
    let ks: Vec<_> = ks
        .iter()
        .map(|(a, t)| json!({"AttributeName": a, "KeyType": t}))
        .collect();
    json!({
        "TableName": "bad",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": ad,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [{"IndexName": "gsi", "KeySchema": ks, "Projection": {"ProjectionType": "ALL"}}],
    })
    .to_string()
}

fn assert_validation(r: &ferrodyn_testkit::RawResponse, message: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.json()["__type"],
        "com.amazon.coral.validate#ValidationException",
        "{}",
        r.body
    );
    assert_eq!(r.message(), message, "{}", r.body);
}

#[test]
fn key_schema_validation_errors() {
    const H: &str = "HASH";
    const R: &str = "RANGE";
    for (engine, server, _dir) in engines() {
        let five = ["a", "b", "c", "d", "e"];
        let cases: Vec<SchemaCase> = vec![
            (
                five.to_vec(),
                five.iter().map(|a| (*a, H)).collect(),
                "Invalid KeySchema: The number of HASH KeySchemaElements must be between 1 and 4",
            ),
            (
                five.to_vec(),
                std::iter::once(("a", H))
                    .chain(five[1..].iter().map(|a| (*a, R)))
                    .chain([("f", R)])
                    .collect(),
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [a, b, c, d, e, f], AttributeDefinitions: [pk, a, b, c, d, e]",
            ),
            (
                vec!["a", "b", "c", "d", "e", "f"],
                std::iter::once(("f", H))
                    .chain(five.iter().map(|a| (*a, R)))
                    .collect(),
                "Invalid KeySchema: The number of RANGE KeySchemaElements must be between 0 and 4",
            ),
            (
                vec!["a", "b", "c"],
                vec![("a", H), ("b", R), ("c", H)],
                "Invalid KeySchema: All HASH KeySchemaElements must precede all RANGE KeySchemaElements",
            ),
            (
                vec!["a", "b"],
                vec![("a", R), ("b", H), ("a", H)],
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ),
            (
                vec!["a"],
                vec![("a", H), ("a", H)],
                "Invalid KeySchema: KeySchemaElements must not have the same name: a",
            ),
            (
                vec!["a", "b"],
                vec![("a", H), ("b", H), ("a", R)],
                "Invalid KeySchema: KeySchemaElements must not have the same name: a",
            ),
            // One HASH and one RANGE keep the single-attribute checks and messages.
            (
                vec!["a"],
                vec![("a", H), ("a", R)],
                "Invalid KeySchema: Some index key attribute have no definition",
            ),
            (
                vec!["a", "b"],
                vec![("a", R), ("b", H)],
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ),
            (
                vec!["a"],
                vec![("a", R)],
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ),
            (
                vec!["a", "b"],
                vec![("a", H), ("b", H), ("c", R)],
                "One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [a, b, c], AttributeDefinitions: [pk, a, b]",
            ),
        ];
        for (defs, ks, want) in cases {
            let r = server.raw("CreateTable", &create_body(&defs, &ks));
            assert_validation(&r, want);
            let _ = engine;
        }
        // Base tables and local secondary indexes keep one HASH and at most one RANGE.
        let r = server.raw(
            "CreateTable",
            &json!({
                "TableName": "bad", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "HASH"}],
            })
            .to_string(),
        );
        assert_validation(
            &r,
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        );
        let r = server.raw(
            "CreateTable",
            &json!({
                "TableName": "bad", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}, {"AttributeName": "c", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}, {"AttributeName": "c", "KeyType": "RANGE"}],
            })
            .to_string(),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            r.message().starts_with("1 validation error detected: ")
                && r.message().contains("at 'keySchema' failed to satisfy constraint: Member must have length less than or equal to 2"),
            "{}",
            r.body
        );
        let r = server.raw(
            "CreateTable",
            &json!({
                "TableName": "bad", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}, {"AttributeName": "b", "AttributeType": "S"}, {"AttributeName": "c", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}],
                "LocalSecondaryIndexes": [{"IndexName": "lsi", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}, {"AttributeName": "b", "KeyType": "RANGE"}, {"AttributeName": "c", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "ALL"}}],
            })
            .to_string(),
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            r.message().contains("at 'localSecondaryIndexes.1.member.keySchema' failed to satisfy constraint: Member must have length less than or equal to 2"),
            "{}",
            r.body
        );

        // UpdateTable Create applies the same rules.
        let r = server.raw(
            "CreateTable",
            r#"{"TableName":"upd","BillingMode":"PAY_PER_REQUEST","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}]}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let update = |ks: &[(&str, &str)]| {
            let defs: Vec<_> = ["a", "b", "c", "d", "e"]
                .iter()
                .map(|d| json!({"AttributeName": d, "AttributeType": "N"}))
                .collect();
            let ks: Vec<_> = ks
                .iter()
                .map(|(a, t)| json!({"AttributeName": a, "KeyType": t}))
                .collect();
            server.raw(
                "UpdateTable",
                &json!({
                    "TableName": "upd",
                    "AttributeDefinitions": defs,
                    "GlobalSecondaryIndexUpdates": [{"Create": {"IndexName": "gsi", "KeySchema": ks, "Projection": {"ProjectionType": "ALL"}}}],
                })
                .to_string(),
            )
        };
        assert_validation(
            &update(&five.iter().map(|a| (*a, H)).collect::<Vec<_>>()),
            "Invalid KeySchema: The number of HASH KeySchemaElements must be between 1 and 4",
        );
        assert_validation(
            &update(&[("a", H), ("b", R), ("c", H)]),
            "Invalid KeySchema: All HASH KeySchemaElements must precede all RANGE KeySchemaElements",
        );
        assert_validation(
            &update(&[("a", H), ("b", R), ("b", R)]),
            "Invalid KeySchema: KeySchemaElements must not have the same name: b",
        );
        let r = update(&[("a", H), ("b", H), ("c", R), ("d", R)]);
        assert_eq!(r.status, 200, "{engine}: {}", r.body);
        let ks = &r.json()["TableDescription"]["GlobalSecondaryIndexes"][0]["KeySchema"];
        assert_eq!(
            ks,
            &json!([
                {"AttributeName": "a", "KeyType": "HASH"},
                {"AttributeName": "b", "KeyType": "HASH"},
                {"AttributeName": "c", "KeyType": "RANGE"},
                {"AttributeName": "d", "KeyType": "RANGE"},
            ])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_maintenance_and_key_types() {
    for (engine, server, _dir) in engines() {
        let c = server.client();
        setup(&c).await;
        put_t(&c, "full", Some("x"), Some(1), Some(5), Some("a")).await;
        put_t(&c, "no-h2", Some("x"), None, Some(5), Some("a")).await;
        put_t(&c, "no-r1", Some("x"), Some(1), None, Some("a")).await;
        put_t(&c, "no-r2", Some("x"), Some(1), Some(5), None).await;
        put_t(&c, "none", None, None, None, None).await;
        let all = |c: Client| async move {
            q(
                &c,
                "h1 = :a AND h2 = :b",
                &[(":a", s("x")), (":b", n(1))],
                true,
            )
            .await
        };
        assert_eq!(all(c.clone()).await, vec!["full"], "{engine}");
        // An update that completes the key adds the entry; removing one attribute drops it.
        c.update_item()
            .table_name("tbl")
            .key("pk", s("no-r2"))
            .update_expression("SET r2 = :v")
            .expression_attribute_values(":v", s("b"))
            .send()
            .await
            .unwrap();
        assert_eq!(all(c.clone()).await, vec!["full", "no-r2"], "{engine}");
        c.update_item()
            .table_name("tbl")
            .key("pk", s("full"))
            .update_expression("REMOVE h2")
            .send()
            .await
            .unwrap();
        assert_eq!(all(c.clone()).await, vec!["no-r2"], "{engine}");
        // Changing one key attribute moves the entry to its new place.
        c.update_item()
            .table_name("tbl")
            .key("pk", s("no-r2"))
            .update_expression("SET h2 = :v")
            .expression_attribute_values(":v", n(2))
            .send()
            .await
            .unwrap();
        assert!(all(c.clone()).await.is_empty(), "{engine}");
        let moved = q(
            &c,
            "h1 = :a AND h2 = :b",
            &[(":a", s("x")), (":b", n(2))],
            true,
        )
        .await;
        assert_eq!(moved, vec!["no-r2"], "{engine}");
        c.delete_item()
            .table_name("tbl")
            .key("pk", s("no-r2"))
            .send()
            .await
            .unwrap();
        let gone = q(
            &c,
            "h1 = :a AND h2 = :b",
            &[(":a", s("x")), (":b", n(2))],
            true,
        )
        .await;
        assert!(gone.is_empty(), "{engine}");
    }
}

#[test]
fn wrong_typed_or_empty_key_attributes_are_rejected() {
    for (engine, server, _dir) in engines() {
        let r = server.raw(
            "CreateTable",
            &json!({
                "TableName": "tbl", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "h1", "AttributeType": "S"},
                    {"AttributeName": "h2", "AttributeType": "N"},
                    {"AttributeName": "r1", "AttributeType": "N"},
                    {"AttributeName": "r2", "AttributeType": "S"},
                ],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "idx", "KeySchema": [
                    {"AttributeName": "h1", "KeyType": "HASH"},
                    {"AttributeName": "h2", "KeyType": "HASH"},
                    {"AttributeName": "r1", "KeyType": "RANGE"},
                    {"AttributeName": "r2", "KeyType": "RANGE"},
                ], "Projection": {"ProjectionType": "ALL"}}],
            })
            .to_string(),
        );
        assert_eq!(r.status, 200, "{engine}: {}", r.body);
        let cases = [
            (r#""h2":{"S":"1"}"#, "One or more parameter values were invalid: Type mismatch for Index Key h2 Expected: N Actual: S IndexName: idx"),
            (r#""r2":{"N":"1"}"#, "One or more parameter values were invalid: Type mismatch for Index Key r2 Expected: S Actual: N IndexName: idx"),
            (r#""r1":{"B":"AA=="}"#, "One or more parameter values were invalid: Type mismatch for Index Key r1 Expected: N Actual: B IndexName: idx"),
            (r#""r2":{"S":""}"#, "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: idx, IndexKey: r2"),
        ];
        for (bad, want) in cases {
            // The other key attributes are absent: a wrong type is rejected even in an item
            // the index would leave out.
            let r = server.raw(
                "PutItem",
                &format!(r#"{{"TableName":"tbl","Item":{{"pk":{{"S":"p"}},{bad}}}}}"#),
            );
            assert_validation(&r, want);
            // The same attribute in an otherwise complete item.
            let full =
                r#""pk":{"S":"p"},"h1":{"S":"x"},"h2":{"N":"1"},"r1":{"N":"1"},"r2":{"S":"y"}"#;
            let name = &bad[..bad.find(':').unwrap()];
            let kept: Vec<&str> = full.split(',').filter(|kv| !kv.starts_with(name)).collect();
            let r = server.raw(
                "PutItem",
                &format!(
                    r#"{{"TableName":"tbl","Item":{{{},{bad}}}}}"#,
                    kept.join(",")
                ),
            );
            assert_validation(&r, want);
            // And set by an update.
            let (attr, value) = bad.split_once(':').unwrap();
            let r = server.raw(
                "UpdateItem",
                &format!(
                    r##"{{"TableName":"tbl","Key":{{"pk":{{"S":"p"}}}},"UpdateExpression":"SET #a = :v","ExpressionAttributeNames":{{"#a":{attr}}},"ExpressionAttributeValues":{{":v":{value}}}}}"##
                ),
            );
            assert_validation(&r, want);
        }
        // A batch write rejects a wrong-typed index key the same way.
        let r = server.raw(
            "BatchWriteItem",
            r#"{"RequestItems":{"tbl":[{"PutRequest":{"Item":{"pk":{"S":"b"},"h2":{"S":"no"}}}}]}}"#,
        );
        assert_validation(&r, "One or more parameter values were invalid: Type mismatch for Index Key h2 Expected: N Actual: S IndexName: idx");
    }
}

/// The items of a small tournament: (pk, h1, h2, r1, r2).
const ROWS: &[(&str, &str, i64, i64, &str)] = &[
    ("m1", "w24", 1, 2, "upper"),
    ("m2", "w24", 1, 2, "lower"),
    ("m3", "w24", 1, -3, "upper"),
    ("m4", "w24", 1, 10, "up"),
    ("m5", "w24", 1, 10, "upper"),
    ("m6", "w24", 2, 2, "upper"),
    ("m7", "s25", 1, 2, "upper"),
    ("m8", "w24", 1, 10, ""),
];

async fn load_rows(c: &Client) {
    for (pk, h1, h2, r1, r2) in ROWS {
        if r2.is_empty() {
            put_t(c, pk, Some(h1), Some(*h2), Some(*r1), None).await;
        } else {
            put_t(c, pk, Some(h1), Some(*h2), Some(*r1), Some(r2)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_orders_by_range_tuple_and_applies_conditions() {
    for (engine, server, _dir) in engines() {
        let c = server.client();
        setup(&c).await;
        load_rows(&c).await;
        let part = [(":a", s("w24")), (":b", n(1))];
        let with = |extra: &[(&'static str, AV)]| {
            let mut v = part.to_vec();
            v.extend_from_slice(extra);
            v
        };
        // The whole partition, by (r1 numerically, then r2 by bytes); m8 has no r2.
        let all = q(&c, "h1 = :a AND h2 = :b", &part, true).await;
        assert_eq!(all, ["m3", "m2", "m1", "m4", "m5"], "{engine}");
        let back = q(&c, "h1 = :a AND h2 = :b", &part, false).await;
        assert_eq!(back, ["m5", "m4", "m1", "m2", "m3"], "{engine}");
        let cases: Vec<QueryCase> = vec![
            (
                "h2 = :b AND r1 = :r AND h1 = :a",
                with(&[(":r", n(10))]),
                vec!["m4", "m5"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 > :r",
                with(&[(":r", n(2))]),
                vec!["m4", "m5"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 >= :r",
                with(&[(":r", n(2))]),
                vec!["m2", "m1", "m4", "m5"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 < :r",
                with(&[(":r", n(2))]),
                vec!["m3"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 <= :r",
                with(&[(":r", n(2))]),
                vec!["m3", "m2", "m1"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 BETWEEN :x AND :y",
                with(&[(":x", n(-3)), (":y", n(2))]),
                vec!["m3", "m2", "m1"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND r2 = :s",
                with(&[(":r", n(10)), (":s", s("up"))]),
                vec!["m4"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND r2 > :s",
                with(&[(":r", n(10)), (":s", s("up"))]),
                vec!["m5"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND r2 >= :s",
                with(&[(":r", n(10)), (":s", s("up"))]),
                vec!["m4", "m5"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND r2 < :s",
                with(&[(":r", n(2)), (":s", s("upper"))]),
                vec!["m2"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND r2 <= :s",
                with(&[(":r", n(10)), (":s", s("upper"))]),
                vec!["m4", "m5"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND begins_with(r2, :s)",
                with(&[(":r", n(10)), (":s", s("up"))]),
                vec!["m4", "m5"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND begins_with(r2, :s)",
                with(&[(":r", n(2)), (":s", s("lo"))]),
                vec!["m2"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r AND r2 BETWEEN :x AND :y",
                with(&[(":r", n(2)), (":x", s("a")), (":y", s("m"))]),
                vec!["m2"],
            ),
            (
                "h1 = :a AND h2 = :b AND r1 = :r",
                with(&[(":r", n(3))]),
                vec![],
            ),
            (
                "h1 = :a AND h2 = :c",
                vec![(":a", s("w24")), (":c", n(2))],
                vec!["m6"],
            ),
            (
                "h1 = :a AND h2 = :b",
                vec![(":a", s("s25")), (":b", n(1))],
                vec!["m7"],
            ),
        ];
        for (expr, values, want) in cases {
            assert_eq!(q(&c, expr, &values, true).await, want, "{engine}: {expr}");
            let mut rev = want.clone();
            rev.reverse();
            assert_eq!(
                q(&c, expr, &values, false).await,
                rev,
                "{engine}: {expr} backwards"
            );
        }
        // Legacy KeyConditions follow the same rules and give the same results.
        let cond = |op: ComparisonOperator, vs: Vec<AV>| {
            Condition::builder()
                .comparison_operator(op)
                .set_attribute_value_list(Some(vs))
                .build()
                .unwrap()
        };
        let r = c
            .query()
            .table_name("tbl")
            .index_name("idx")
            .key_conditions("h1", cond(ComparisonOperator::Eq, vec![s("w24")]))
            .key_conditions("h2", cond(ComparisonOperator::Eq, vec![n(1)]))
            .key_conditions("r1", cond(ComparisonOperator::Eq, vec![n(10)]))
            .key_conditions("r2", cond(ComparisonOperator::BeginsWith, vec![s("up")]))
            .send()
            .await
            .unwrap();
        let got: Vec<String> = r
            .items
            .unwrap()
            .iter()
            .map(|i| i["pk"].as_s().unwrap().clone())
            .collect();
        assert_eq!(got, ["m4", "m5"], "{engine}");
        // FilterExpression on a non-key attribute is fine, and the table key too.
        let r = c
            .query()
            .table_name("tbl")
            .index_name("idx")
            .key_condition_expression("h1 = :a AND h2 = :b")
            .filter_expression("v = :v OR pk = :p")
            .expression_attribute_values(":a", s("w24"))
            .expression_attribute_values(":b", n(1))
            .expression_attribute_values(":v", s("v-m3"))
            .expression_attribute_values(":p", s("m5"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.count, 2, "{engine}");
        assert_eq!(r.scanned_count, 5, "{engine}");
    }
}

#[test]
fn query_errors_are_dynamodb_s() {
    for (engine, server, _dir) in engines() {
        let r = server.raw(
            "CreateTable",
            &json!({
                "TableName": "tbl", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "h1", "AttributeType": "S"},
                    {"AttributeName": "h2", "AttributeType": "N"},
                    {"AttributeName": "r1", "AttributeType": "N"},
                    {"AttributeName": "r2", "AttributeType": "S"},
                    {"AttributeName": "r3", "AttributeType": "B"},
                ],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "idx", "KeySchema": [
                    {"AttributeName": "h1", "KeyType": "HASH"},
                    {"AttributeName": "h2", "KeyType": "HASH"},
                    {"AttributeName": "r1", "KeyType": "RANGE"},
                    {"AttributeName": "r2", "KeyType": "RANGE"},
                    {"AttributeName": "r3", "KeyType": "RANGE"},
                ], "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            })
            .to_string(),
        );
        assert_eq!(r.status, 200, "{engine}: {}", r.body);
        let values = json!({
            ":a": {"S": "x"}, ":b": {"N": "1"}, ":n": {"N": "2"}, ":s": {"S": "q"},
            ":bin": {"B": "AQ=="},
        });
        let query = |extra: serde_json::Value| {
            let mut body = json!({"TableName": "tbl", "IndexName": "idx"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            server.raw("Query", &body.to_string())
        };
        let expr = |text: &str| {
            let mut used = serde_json::Map::new();
            for token in text.split(|ch: char| !(ch.is_alphanumeric() || ch == ':')) {
                if let Some(v) = values.get(token) {
                    used.insert(token.to_string(), v.clone());
                }
            }
            query(json!({"KeyConditionExpression": text, "ExpressionAttributeValues": used}))
        };
        let hash = |a: &str| {
            format!("Query key condition not supported: HASH key attribute {a} must be specified with an equality condition")
        };
        let range = |later: &str, a: &str| {
            format!("Query key condition not supported: RANGE key attribute {later} is specified, so RANGE key attribute {a} must be specified with an equality condition")
        };
        let cases: Vec<(&str, String)> = vec![
            ("h1 = :a", hash("h2")),
            ("h2 = :b", hash("h1")),
            ("h1 = :a AND h2 > :b", hash("h2")),
            ("h1 = :a AND h2 BETWEEN :b AND :n", hash("h2")),
            ("begins_with(h1, :a) AND h2 = :b", hash("h1")),
            ("r1 = :n AND r2 = :s", hash("h1")),
            ("h1 = :a AND h2 = :b AND r2 = :s", range("r2", "r1")),
            ("h1 = :a AND h2 = :b AND r1 = :n AND r3 = :bin", range("r3", "r2")),
            ("h1 = :a AND h2 = :b AND r1 > :n AND r2 = :s", range("r2", "r1")),
            ("h1 = :a AND h2 = :b AND r1 > :n AND r2 < :s", range("r2", "r1")),
            ("h1 = :a AND h2 = :b AND begins_with(r2, :s) AND r1 = :n AND r3 = :bin", range("r3", "r2")),
            ("h1 = :a AND h2 = :b AND pk = :s", "Query key condition not supported".into()),
            ("h1 = :a AND h2 = :b AND h2 = :n", "KeyConditionExpressions must only contain one condition per key".into()),
            ("h1 = :a AND h2 = :s", "One or more parameter values were invalid: Condition parameter type does not match schema type".into()),
            ("h1 = :a AND h2 = :b AND r1 = :s", "One or more parameter values were invalid: Condition parameter type does not match schema type".into()),
            ("h1 = :a AND h2 = :b AND r1 = :n AND r2 > :n", "One or more parameter values were invalid: Condition parameter type does not match schema type".into()),
            ("h1 = :a AND h2 = :b AND begins_with(r1, :n)", "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N".into()),
            ("h1 = :a AND h2 = :b AND r1 BETWEEN :n AND :b", "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower operand: AttributeValue: {N:2}, upper operand: AttributeValue: {N:1}".into()),
            ("h1 = :a OR h2 = :b", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR".into()),
        ];
        for (text, want) in cases {
            let r = expr(text);
            assert_eq!(r.status, 400, "{engine}: {text}: {}", r.body);
            assert_eq!(r.message(), want, "{engine}: {text}");
            assert_eq!(r.error_code(), "ValidationException");
        }
        // A FilterExpression or QueryFilter may not name any key attribute of the index.
        for a in ["h1", "h2", "r1", "r3"] {
            let r = query(json!({
                "KeyConditionExpression": "h1 = :a AND h2 = :b",
                "FilterExpression": format!("attribute_exists({a})"),
                "ExpressionAttributeValues": {":a": {"S": "x"}, ":b": {"N": "1"}},
            }));
            assert_validation(
                &r,
                &format!("Filter Expression can only contain non-primary key attributes: Primary key attribute: {a}"),
            );
        }
        let r = query(json!({
            "KeyConditions": {
                "h1": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "x"}]},
                "h2": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "1"}]},
            },
            "QueryFilter": {"r2": {"ComparisonOperator": "NOT_NULL"}},
        }));
        assert_validation(
            &r,
            "Filter Expression can only contain non-primary key attributes: Primary key attribute: r2",
        );
        // Legacy KeyConditions: the same rules and messages.
        let legacy = |conds: serde_json::Value| query(json!({ "KeyConditions": conds }));
        let eq =
            |v: serde_json::Value| json!({"ComparisonOperator": "EQ", "AttributeValueList": [v]});
        let r = legacy(json!({"h1": eq(json!({"S": "x"}))}));
        assert_validation(&r, &hash("h2"));
        let r = legacy(json!({
            "h1": eq(json!({"S": "x"})), "h2": eq(json!({"N": "1"})),
            "r2": eq(json!({"S": "x"})),
        }));
        assert_validation(&r, &range("r2", "r1"));
        let r = legacy(json!({
            "h1": eq(json!({"S": "x"})), "h2": eq(json!({"N": "1"})),
            "r1": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "1"}]},
            "r2": eq(json!({"S": "x"})),
        }));
        assert_validation(&r, &range("r2", "r1"));
        let r = legacy(json!({
            "h1": eq(json!({"S": "x"})), "h2": eq(json!({"N": "1"})),
            "r1": eq(json!({"N": "1"})),
            "r2": {"ComparisonOperator": "LE", "AttributeValueList": [{"S": "x"}]},
        }));
        assert_eq!(r.status, 200, "{engine}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_projection_scan_and_capacity() {
    for (engine, server, _dir) in engines() {
        let c = server.client();
        setup(&c).await;
        load_rows(&c).await;
        // Query pages of one item: LastEvaluatedKey has every index key attribute and the
        // table key; following it visits the partition exactly once, in order.
        for forward in [true, false] {
            let mut got = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let r = c
                    .query()
                    .table_name("tbl")
                    .index_name("idx")
                    .key_condition_expression("h1 = :a AND h2 = :b")
                    .expression_attribute_values(":a", s("w24"))
                    .expression_attribute_values(":b", n(1))
                    .scan_index_forward(forward)
                    .limit(1)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .unwrap();
                got.extend(
                    r.items
                        .unwrap()
                        .iter()
                        .map(|i| i["pk"].as_s().unwrap().clone()),
                );
                match r.last_evaluated_key {
                    Some(k) => {
                        let mut names: Vec<&str> = k.keys().map(String::as_str).collect();
                        names.sort_unstable();
                        assert_eq!(names, ["h1", "h2", "pk", "r1", "r2"], "{engine}");
                        start = Some(k);
                    }
                    None => break,
                }
            }
            let mut want = vec!["m3", "m2", "m1", "m4", "m5"];
            if !forward {
                want.reverse();
            }
            assert_eq!(got, want, "{engine}");
        }
        // Scan of the index: only complete keys, every page's key complete too.
        let mut scanned = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let r = c
                .scan()
                .table_name("tbl")
                .index_name("keys")
                .limit(2)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for i in r.items.unwrap() {
                // KEYS_ONLY: the table key and every index key attribute, nothing else.
                let mut names: Vec<&str> = i.keys().map(String::as_str).collect();
                names.sort_unstable();
                assert_eq!(names, ["h1", "h2", "pk", "r1", "r2"], "{engine}");
                scanned.push(i["pk"].as_s().unwrap().clone());
            }
            match r.last_evaluated_key {
                Some(k) => {
                    assert_eq!(k.len(), 5, "{engine}");
                    start = Some(k);
                }
                None => break,
            }
        }
        scanned.sort();
        assert_eq!(
            scanned,
            ["m1", "m2", "m3", "m4", "m5", "m6", "m7"],
            "{engine}"
        );

        // ExclusiveStartKey: every index key attribute and the table key, nothing else.
        let esk = |drop: &str, extra: bool| {
            let mut k: Item = [
                ("pk", s("m1")),
                ("h1", s("w24")),
                ("h2", n(1)),
                ("r1", n(2)),
                ("r2", s("upper")),
            ]
            .into_iter()
            .filter(|(a, _)| *a != drop)
            .map(|(a, v)| (a.to_string(), v))
            .collect();
            if extra {
                k.insert("v".into(), s("x"));
            }
            k
        };
        for (drop, extra) in [("h2", false), ("r2", false), ("pk", false), ("", true)] {
            let e = c
                .query()
                .table_name("tbl")
                .index_name("idx")
                .key_condition_expression("h1 = :a AND h2 = :b")
                .expression_attribute_values(":a", s("w24"))
                .expression_attribute_values(":b", n(1))
                .set_exclusive_start_key(Some(esk(drop, extra)))
                .send()
                .await
                .unwrap_err();
            let e = e.into_service_error();
            assert_eq!(
                e.meta().message(),
                Some("The provided starting key is invalid: The provided key element does not match the schema"),
                "{engine}: {drop} {extra}"
            );
        }
        // A start key outside the RANGE equalities of the condition.
        let e = c
            .query()
            .table_name("tbl")
            .index_name("idx")
            .key_condition_expression("h1 = :a AND h2 = :b AND r1 = :r")
            .expression_attribute_values(":a", s("w24"))
            .expression_attribute_values(":b", n(1))
            .expression_attribute_values(":r", n(10))
            .set_exclusive_start_key(Some(esk("", false)))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(
            e.meta().message(),
            Some("The provided starting key is outside query boundaries based on provided conditions"),
            "{engine}"
        );
        let r = c
            .query()
            .table_name("tbl")
            .index_name("idx")
            .key_condition_expression("h1 = :a AND h2 = :b AND r1 = :r")
            .expression_attribute_values(":a", s("w24"))
            .expression_attribute_values(":b", n(1))
            .expression_attribute_values(":r", n(2))
            .set_exclusive_start_key(Some(esk("", false)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.count, 0, "{engine}: m1 is the last of r1 = 2");

        // Consumed capacity is charged per index, as for any GSI.
        let out = c
            .put_item()
            .table_name("tbl")
            .item("pk", s("cap"))
            .item("h1", s("c"))
            .item("h2", n(1))
            .item("r1", n(1))
            .item("r2", s("x"))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .unwrap();
        let cc = out.consumed_capacity.unwrap();
        let gsis = cc.global_secondary_indexes.unwrap();
        assert_eq!(gsis.len(), 2, "{engine}");
        assert_eq!(gsis["idx"].capacity_units, Some(1.0));
        assert_eq!(gsis["keys"].capacity_units, Some(1.0));
        assert_eq!(cc.capacity_units, Some(3.0));
        let out = c
            .put_item()
            .table_name("tbl")
            .item("pk", s("cap2"))
            .item("h1", s("c"))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .unwrap();
        // Not in the sparse indexes: nothing charged to them.
        assert!(out
            .consumed_capacity
            .unwrap()
            .global_secondary_indexes
            .unwrap_or_default()
            .is_empty());
        let out = c
            .query()
            .table_name("tbl")
            .index_name("idx")
            .key_condition_expression("h1 = :a AND h2 = :b")
            .expression_attribute_values(":a", s("c"))
            .expression_attribute_values(":b", n(1))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .unwrap();
        let cc = out.consumed_capacity.unwrap();
        assert_eq!(
            cc.global_secondary_indexes.unwrap()["idx"].capacity_units,
            Some(0.5)
        );
    }
}

fn streams_call(server: &TestServer, op: &str, body: serde_json::Value) -> serde_json::Value {
    let r = server.raw_with(
        Some(&format!("DynamoDBStreams_20120810.{op}")),
        &body.to_string(),
        true,
    );
    assert_eq!(r.status, 200, "{op}: {}", r.body);
    r.json()
}

#[test]
fn streams_carry_only_the_table_key() {
    for (engine, server, _dir) in engines() {
        let r = server.raw(
            "CreateTable",
            &json!({
                "TableName": "str", "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "a", "AttributeType": "S"},
                    {"AttributeName": "b", "AttributeType": "S"},
                ],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [{"IndexName": "gsi", "KeySchema": [
                    {"AttributeName": "a", "KeyType": "HASH"},
                    {"AttributeName": "b", "KeyType": "HASH"},
                ], "Projection": {"ProjectionType": "KEYS_ONLY"}}],
                "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"},
            })
            .to_string(),
        );
        assert_eq!(r.status, 200, "{engine}: {}", r.body);
        let arn = r.json()["TableDescription"]["LatestStreamArn"]
            .as_str()
            .unwrap()
            .to_string();
        let item = json!({"pk": {"S": "p"}, "a": {"S": "x"}, "b": {"S": "y"}});
        let r = server.raw(
            "PutItem",
            &json!({"TableName": "str", "Item": item}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let desc = streams_call(&server, "DescribeStream", json!({"StreamArn": arn}));
        let mut records = Vec::new();
        for sh in desc["StreamDescription"]["Shards"].as_array().unwrap() {
            let it = streams_call(
                &server,
                "GetShardIterator",
                json!({"StreamArn": arn, "ShardId": sh["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
            );
            let recs = streams_call(
                &server,
                "GetRecords",
                json!({"ShardIterator": it["ShardIterator"]}),
            );
            records.extend(recs["Records"].as_array().unwrap().clone());
        }
        assert_eq!(records.len(), 1, "{engine}");
        assert_eq!(
            records[0]["dynamodb"]["Keys"],
            json!({"pk": {"S": "p"}}),
            "{engine}"
        );
        assert_eq!(records[0]["dynamodb"]["NewImage"], item, "{engine}");
    }
}

async fn wait_active(c: &Client, table: &str) {
    for _ in 0..1500 {
        let d = c.describe_table().table_name(table).send().await.unwrap();
        let gsis = d
            .table
            .unwrap()
            .global_secondary_indexes
            .unwrap_or_default();
        if gsis
            .iter()
            .all(|g| g.index_status == Some(IndexStatus::Active) && g.backfilling.is_none())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("index did not become ACTIVE");
}

/// Every item of the table, by `pk`, read with a Scan.
async fn table_items(c: &Client, table: &str) -> Vec<Item> {
    let mut out = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let r = c
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        out.extend(r.items.unwrap());
        match r.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_backfill_under_concurrent_writes_matches_the_table() {
    for (engine, server, _dir) in engines() {
        let c = server.client();
        c.create_table()
            .table_name("onl")
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk", ScalarAttributeType::S))
            .attribute_definitions(attr("sk", ScalarAttributeType::N))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await
            .unwrap();
        // Items with the index key (t: S, g: N | r: N, w: S), some with one attribute missing.
        let item = |i: i64, tag: &str| -> Vec<(&'static str, AV)> {
            let mut v = vec![("pk", s(&format!("p{}", i % 11))), ("sk", n(i))];
            if i % 7 != 0 {
                v.push(("t", s(&format!("t{}", i % 3))));
            }
            v.push(("g", n(i % 2)));
            if i % 5 != 0 {
                v.push(("r", n((i * 37) % 17 - 8)));
            }
            v.push(("w", s(&format!("{tag}{}", i % 4))));
            v
        };
        for i in 0..400 {
            put(&c, "onl", &item(i, "a")).await;
        }
        let mut writers = Vec::new();
        for w in 0..4i64 {
            let c = c.clone();
            writers.push(tokio::spawn(async move {
                for j in 0..120i64 {
                    let i = (j * 13 + w * 101) % 480;
                    let (pk, sk) = (s(&format!("p{}", i % 11)), n(i));
                    match j % 4 {
                        0 => {
                            c.delete_item()
                                .table_name("onl")
                                .key("pk", pk)
                                .key("sk", sk)
                                .send()
                                .await
                                .unwrap();
                        }
                        1 => {
                            c.update_item()
                                .table_name("onl")
                                .key("pk", pk)
                                .key("sk", sk)
                                .update_expression("REMOVE r")
                                .send()
                                .await
                                .unwrap();
                        }
                        2 => {
                            c.update_item()
                                .table_name("onl")
                                .key("pk", pk)
                                .key("sk", sk)
                                .update_expression("SET t = :t, g = :g, r = :r, w = :w")
                                .expression_attribute_values(":t", s(&format!("t{}", j % 3)))
                                .expression_attribute_values(":g", n(j % 2))
                                .expression_attribute_values(":r", n(j % 9 - 4))
                                .expression_attribute_values(":w", s(&format!("w{w}")))
                                .send()
                                .await
                                .unwrap();
                        }
                        _ => put(&c, "onl", &item(i, &format!("b{w}"))).await,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let out = c
            .update_table()
            .table_name("onl")
            .attribute_definitions(attr("t", ScalarAttributeType::S))
            .attribute_definitions(attr("g", ScalarAttributeType::N))
            .attribute_definitions(attr("r", ScalarAttributeType::N))
            .attribute_definitions(attr("w", ScalarAttributeType::S))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .create(
                        CreateGlobalSecondaryIndexAction::builder()
                            .index_name("multi")
                            .set_key_schema(Some(schema(&["t", "g"], &["r", "w"])))
                            .projection(
                                Projection::builder()
                                    .projection_type(ProjectionType::All)
                                    .build(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let g = &out
            .table_description
            .unwrap()
            .global_secondary_indexes
            .unwrap()[0];
        assert_eq!(g.index_status, Some(IndexStatus::Creating), "{engine}");
        assert_eq!(g.backfilling, Some(true), "{engine}");
        assert_eq!(
            g.key_schema.clone().unwrap(),
            schema(&["t", "g"], &["r", "w"])
        );
        for w in writers {
            w.await.unwrap();
        }
        wait_active(&c, "onl").await;

        // The index, partition by partition, equals the table's complete items, filtered and
        // ordered here by (r, w) then by the table key.
        let items = table_items(&c, "onl").await;
        let mut expected: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
        for i in &items {
            let (Some(t), Some(g), Some(r), Some(w)) =
                (i.get("t"), i.get("g"), i.get("r"), i.get("w"))
            else {
                continue;
            };
            expected
                .entry((t.as_s().unwrap().clone(), g.as_n().unwrap().clone()))
                .or_default()
                .push((
                    r.as_n().unwrap().parse().unwrap(),
                    w.as_s().unwrap().clone(),
                    i["pk"].as_s().unwrap().clone(),
                    i["sk"].as_n().unwrap().parse().unwrap(),
                ));
        }
        assert!(expected.len() >= 4, "{engine}");
        let mut indexed = 0;
        for ((t, g), rows) in &mut expected {
            // Ties on (r, w) come in table-key byte order: pk as a string, then sk.
            rows.sort_by(|a, b| (a.0, &a.1, &a.2, a.3).cmp(&(b.0, &b.1, &b.2, b.3)));
            let mut got = Vec::new();
            let mut start: Option<Item> = None;
            loop {
                let r = c
                    .query()
                    .table_name("onl")
                    .index_name("multi")
                    .key_condition_expression("t = :t AND g = :g")
                    .expression_attribute_values(":t", s(t))
                    .expression_attribute_values(":g", AV::N(g.clone()))
                    .limit(7)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .unwrap();
                for i in r.items.unwrap() {
                    got.push((
                        i["r"].as_n().unwrap().parse::<i64>().unwrap(),
                        i["w"].as_s().unwrap().clone(),
                        i["pk"].as_s().unwrap().clone(),
                        i["sk"].as_n().unwrap().parse::<i64>().unwrap(),
                    ));
                }
                match r.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
            // Same multiset and the index's order is by (r, w); ties between equal (r, w)
            // follow the table key's encoding, which this comparison does not depend on.
            let mut sorted = got.clone();
            sorted.sort();
            let mut want = rows.clone();
            want.sort();
            assert_eq!(sorted, want, "{engine}: partition {t}/{g}");
            assert!(
                got.windows(2)
                    .all(|w| (w[0].0, &w[0].1) <= (w[1].0, &w[1].1)),
                "{engine}: partition {t}/{g} out of order: {got:?}"
            );
            indexed += got.len();
        }
        // And nothing else is in the index.
        let mut scanned = 0;
        let mut start: Option<Item> = None;
        loop {
            let r = c
                .scan()
                .table_name("onl")
                .index_name("multi")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            scanned += r.count as usize;
            match r.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        assert_eq!(scanned, indexed, "{engine}");
        assert!(indexed > 100, "{engine}: {indexed}");
    }
}
