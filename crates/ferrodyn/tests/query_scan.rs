//! Query and Scan: key conditions, filters, paging in both directions, parallel scan, and the
//! capacity a Scan is charged.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as AV, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, Select,
};
use aws_sdk_dynamodb::Client;
use ferrodyn_testkit::TestServer;

async fn setup(c: &Client) {
    c.create_table()
        .table_name("tbl")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::N)
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
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for p in 0..5 {
        for s in 0..40 {
            c.put_item()
                .table_name("tbl")
                .item("pk", AV::S(format!("p{p}")))
                .item("sk", AV::N(format!("{}", s - 20)))
                .item("even", AV::Bool(s % 2 == 0))
                .send()
                .await
                .unwrap();
        }
    }
}

fn sk(item: &HashMap<String, AV>) -> i64 {
    item["sk"].as_n().unwrap().parse().unwrap()
}

/// Pages through a query with every combination of limit, filter and direction, comparing with
/// the expected result computed directly.
#[tokio::test]
async fn query_paging_matches_expected_in_every_combination() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c).await;
    for forward in [true, false] {
        for limit in [None, Some(1), Some(3), Some(7), Some(40), Some(100)] {
            for filter in [false, true] {
                let mut got = Vec::new();
                let mut start = None;
                let mut pages = 0;
                loop {
                    let mut q = c
                        .query()
                        .table_name("tbl")
                        .key_condition_expression("pk = :p AND sk BETWEEN :lo AND :hi")
                        .expression_attribute_values(":p", AV::S("p3".into()))
                        .expression_attribute_values(":lo", AV::N("-5".into()))
                        .expression_attribute_values(":hi", AV::N("12".into()))
                        .scan_index_forward(forward)
                        .set_limit(limit)
                        .set_exclusive_start_key(start.take());
                    if filter {
                        q = q
                            .filter_expression("even = :t")
                            .expression_attribute_values(":t", AV::Bool(true));
                    }
                    let out = q.send().await.unwrap();
                    pages += 1;
                    assert!(out.count() <= out.scanned_count());
                    got.extend(out.items().iter().map(sk));
                    match out.last_evaluated_key() {
                        Some(k) => start = Some(k.clone()),
                        None => break,
                    }
                    assert!(pages < 100);
                }
                let mut want: Vec<i64> =
                    (-5..=12).filter(|s| !filter || (s + 20) % 2 == 0).collect();
                if !forward {
                    want.reverse();
                }
                assert_eq!(
                    got, want,
                    "forward={forward} limit={limit:?} filter={filter}"
                );
            }
        }
    }
}

#[tokio::test]
async fn query_sort_key_operators() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c).await;
    let cases = [
        ("sk = :v", vec![3]),
        ("sk < :v", (-20..3).collect::<Vec<i64>>()),
        ("sk <= :v", (-20..=3).collect()),
        ("sk > :v", (4..20).collect()),
        ("sk >= :v", (3..20).collect()),
    ];
    for (cond, want) in cases {
        let out = c
            .query()
            .table_name("tbl")
            .key_condition_expression(format!("pk = :p AND {cond}"))
            .expression_attribute_values(":p", AV::S("p1".into()))
            .expression_attribute_values(":v", AV::N("3".into()))
            .send()
            .await
            .unwrap();
        let got: Vec<i64> = out.items().iter().map(sk).collect();
        assert_eq!(got, want, "{cond}");
    }
    let out = c
        .query()
        .table_name("tbl")
        .key_condition_expression("pk = :p")
        .expression_attribute_values(":p", AV::S("p1".into()))
        .select(Select::Count)
        .send()
        .await
        .unwrap();
    assert_eq!(out.count(), 40);
    assert!(out.items().is_empty());
}

#[tokio::test]
async fn query_rejects_bad_key_conditions() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c).await;
    let err = c
        .query()
        .table_name("tbl")
        .key_condition_expression("sk = :v")
        .expression_attribute_values(":v", AV::N("3".into()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.meta().code(), Some("ValidationException"));
    assert_eq!(
        err.meta().message(),
        Some("Query condition missed key schema element: pk")
    );
}

#[tokio::test]
async fn parallel_scan_segments_are_disjoint_and_complete() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c).await;
    for total in [1, 2, 3, 7] {
        let mut seen = BTreeSet::new();
        for seg in 0..total {
            let mut start = None;
            loop {
                let out = c
                    .scan()
                    .table_name("tbl")
                    .segment(seg)
                    .total_segments(total)
                    .limit(13)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .unwrap();
                for it in out.items() {
                    let key = (it["pk"].as_s().unwrap().clone(), sk(it));
                    assert!(seen.insert(key), "item returned twice");
                }
                match out.last_evaluated_key() {
                    Some(k) => start = Some(k.clone()),
                    None => break,
                }
            }
        }
        assert_eq!(seen.len(), 200, "total segments {total}");
    }
}

#[tokio::test]
async fn scan_filter_counts() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c).await;
    let out = c
        .scan()
        .table_name("tbl")
        .filter_expression("even = :f AND sk > :z")
        .expression_attribute_values(":f", AV::Bool(false))
        .expression_attribute_values(":z", AV::N("0".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.scanned_count(), 200);
    assert_eq!(out.count(), 5 * 10);
}

/// begins_with on the sort key reads the same items in both directions, with items sorting
/// after the prefix in the same partition.
#[tokio::test]
async fn begins_with_reads_backwards_too() {
    let server = TestServer::in_memory();
    let c = server.client();
    c.create_table()
        .table_name("bw_tbl")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
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
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    for s in ["a", "ab", "abc", "abd", "ac", "b", "ba"] {
        c.put_item()
            .table_name("bw_tbl")
            .item("pk", AV::S("p".into()))
            .item("sk", AV::S(s.into()))
            .send()
            .await
            .unwrap();
    }
    for (forward, want) in [(true, ["ab", "abc", "abd"]), (false, ["abd", "abc", "ab"])] {
        let r = c
            .query()
            .table_name("bw_tbl")
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", AV::S("p".into()))
            .expression_attribute_values(":s", AV::S("ab".into()))
            .scan_index_forward(forward)
            .send()
            .await
            .unwrap();
        let got: Vec<&str> = r
            .items()
            .iter()
            .map(|i| i["sk"].as_s().unwrap().as_str())
            .collect();
        assert_eq!(got, want, "forward: {forward}");
    }
}

#[test]
fn a_scan_is_charged_per_partition_it_reads() {
    let server = TestServer::in_memory();
    let r = server.raw(
        "CreateTable",
        r#"{"TableName":"scanned","AttributeDefinitions":[{"AttributeName":"p","AttributeType":"S"}],
            "KeySchema":[{"AttributeName":"p","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let scan = |consistent: bool| {
        server
            .raw(
                "Scan",
                &format!(
                    r#"{{"TableName":"scanned","ConsistentRead":{consistent},"ReturnConsumedCapacity":"TOTAL"}}"#
                ),
            )
            .json()["ConsumedCapacity"]["CapacityUnits"]
            .as_f64()
    };
    // Every one of a new table's four partitions costs at least one read, even empty.
    assert_eq!(scan(true), Some(4.0));
    let r = server.raw(
        "PutItem",
        r#"{"TableName":"scanned","Item":{"p":{"S":"a"},"animal":{"S":"cat"}}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(scan(true), Some(4.0));
    assert_eq!(scan(false), Some(2.0));
    // A parallel scan's segment of a quarter of the key space reads one partition.
    let r = server.raw(
        "Scan",
        r#"{"TableName":"scanned","Segment":1,"TotalSegments":4,"ReturnConsumedCapacity":"TOTAL"}"#,
    );
    assert_eq!(r.json()["ConsumedCapacity"]["CapacityUnits"], 0.5);
}
