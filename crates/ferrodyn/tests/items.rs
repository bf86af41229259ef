//! Item operations and expressions through the official AWS SDK for Rust.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as AV, BillingMode, KeySchemaElement, KeyType,
    ReturnConsumedCapacity, ReturnValue, ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;
use ferrodyn_testkit::TestServer;

async fn table(client: &Client, name: &str, range: bool) {
    let mut b = client
        .create_table()
        .table_name(name)
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
        );
    if range {
        b = b
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("sk")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("sk")
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            );
    }
    b.send().await.unwrap();
}

fn s(v: &str) -> AV {
    AV::S(v.to_string())
}
fn n(v: &str) -> AV {
    AV::N(v.to_string())
}

#[tokio::test]
async fn put_get_delete_round_trip_all_types() {
    let server = TestServer::in_memory();
    let c = server.client();
    table(&c, "tbl", false).await;
    let item: HashMap<String, AV> = [
        ("pk".to_string(), s("k1")),
        ("str".into(), s("")),
        ("num".into(), n("0012.3400")),
        ("bin".into(), AV::B(vec![0u8, 1, 2].into())),
        ("yes".into(), AV::Bool(true)),
        ("nothing".into(), AV::Null(true)),
        ("list".into(), AV::L(vec![n("1"), s("two")])),
        (
            "map".into(),
            AV::M([("deep".to_string(), n("-5e2"))].into()),
        ),
        ("ss".into(), AV::Ss(vec!["a".into(), "b".into()])),
        ("ns".into(), AV::Ns(vec!["1".into(), "2.5".into()])),
        ("bs".into(), AV::Bs(vec![vec![1u8].into()])),
    ]
    .into();
    c.put_item()
        .table_name("tbl")
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let got = c
        .get_item()
        .table_name("tbl")
        .key("pk", s("k1"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let got = got.item().unwrap();
    assert_eq!(got["num"], n("12.34"));
    assert_eq!(got["map"], AV::M([("deep".to_string(), n("-500"))].into()));
    assert_eq!(got["bin"], AV::B(vec![0u8, 1, 2].into()));
    assert_eq!(got["str"], s(""));
    assert_eq!(got.len(), 11);

    let proj = c
        .get_item()
        .table_name("tbl")
        .key("pk", s("k1"))
        .projection_expression("#m.deep, #l[1]")
        .expression_attribute_names("#m", "map")
        .expression_attribute_names("#l", "list")
        .send()
        .await
        .unwrap();
    let p = proj.item().unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p["list"], AV::L(vec![s("two")]));

    let del = c
        .delete_item()
        .table_name("tbl")
        .key("pk", s("k1"))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .unwrap();
    assert_eq!(del.attributes().unwrap()["yes"], AV::Bool(true));
    let gone = c
        .get_item()
        .table_name("tbl")
        .key("pk", s("k1"))
        .send()
        .await
        .unwrap();
    assert!(gone.item().is_none());
}

#[tokio::test]
async fn conditional_put_and_update_expressions() {
    let server = TestServer::in_memory();
    let c = server.client();
    table(&c, "tbl", false).await;
    c.put_item()
        .table_name("tbl")
        .item("pk", s("a"))
        .item("count", n("1"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap();
    let err = c
        .put_item()
        .table_name("tbl")
        .item("pk", s("a"))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_conditional_check_failed_exception());

    let out = c
        .update_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .update_expression("SET #c = #c + :one, tags = list_append(if_not_exists(tags, :empty), :t) ADD seen :set REMOVE gone")
        .condition_expression("#c < :limit")
        .expression_attribute_names("#c", "count")
        .expression_attribute_values(":one", n("1"))
        .expression_attribute_values(":empty", AV::L(vec![]))
        .expression_attribute_values(":t", AV::L(vec![s("x")]))
        .expression_attribute_values(":set", AV::Ss(vec!["q".into()]))
        .expression_attribute_values(":limit", n("10"))
        .return_values(ReturnValue::UpdatedNew)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes().unwrap();
    assert_eq!(attrs["count"], n("2"));
    assert_eq!(attrs["tags"], AV::L(vec![s("x")]));
    assert_eq!(attrs["seen"], AV::Ss(vec!["q".into()]));
    assert!(!attrs.contains_key("pk"));

    let err = c
        .update_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .update_expression("SET pk = :v")
        .expression_attribute_values(":v", s("b"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        err.meta().message(),
        Some("One or more parameter values were invalid: Cannot update attribute pk. This attribute is part of the key")
    );

    // UpdateItem on a missing item creates it.
    let out = c
        .update_item()
        .table_name("tbl")
        .key("pk", s("new"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", n("7"))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .unwrap();
    assert_eq!(out.attributes().unwrap().len(), 2);
}

#[tokio::test]
async fn unused_and_undefined_placeholders() {
    let server = TestServer::in_memory();
    let c = server.client();
    table(&c, "tbl", false).await;
    let err = c
        .put_item()
        .table_name("tbl")
        .item("pk", s("a"))
        .condition_expression("attribute_not_exists(pk)")
        .expression_attribute_values(":unused", n("1"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        err.meta().message(),
        Some("Value provided in ExpressionAttributeValues unused in expressions: keys: {:unused}")
    );
    let err = c
        .update_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .update_expression("SET a = :v")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        err.meta().message(),
        Some("Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :v")
    );
}

#[tokio::test]
async fn consumed_capacity_arithmetic() {
    let server = TestServer::in_memory();
    let c = server.client();
    table(&c, "tbl", false).await;
    let big = "x".repeat(3000);
    let out = c
        .put_item()
        .table_name("tbl")
        .item("pk", s("a"))
        .item("data", s(&big))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity().unwrap();
    assert_eq!(cc.table_name(), Some("tbl"));
    assert_eq!(cc.capacity_units(), Some(3.0));
    let out = c
        .get_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .unwrap();
    assert_eq!(out.consumed_capacity().unwrap().capacity_units(), Some(0.5));
    let out = c
        .get_item()
        .table_name("tbl")
        .key("pk", s("a"))
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await
        .unwrap();
    let cc = out.consumed_capacity().unwrap();
    assert_eq!(cc.capacity_units(), Some(1.0));
    assert_eq!(cc.table().unwrap().capacity_units(), Some(1.0));
}

#[test]
fn legacy_expected_and_attribute_updates() {
    let server = TestServer::in_memory();
    let r = server.raw(
        "CreateTable",
        r#"{"TableName":"tbl","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let raw = server.raw(
        "PutItem",
        r#"{"TableName":"tbl","Item":{"pk":{"S":"a"},"v":{"N":"1"}},"Expected":{"pk":{"Exists":false}}}"#,
    );
    assert_eq!(raw.status, 200, "{}", raw.body);
    let raw = server.raw(
        "UpdateItem",
        r#"{"TableName":"tbl","Key":{"pk":{"S":"a"}},"AttributeUpdates":{"v":{"Action":"ADD","Value":{"N":"5"}}},"Expected":{"v":{"Value":{"N":"1"}}},"ReturnValues":"ALL_NEW"}"#,
    );
    assert_eq!(raw.status, 200, "{}", raw.body);
    assert_eq!(raw.json()["Attributes"]["v"]["N"], "6");
    let raw = server.raw(
        "UpdateItem",
        r#"{"TableName":"tbl","Key":{"pk":{"S":"a"}},"AttributeUpdates":{"v":{"Action":"PUT","Value":{"N":"5"}}},"ConditionExpression":"attribute_exists(v)"}"#,
    );
    assert_eq!(
        raw.message(),
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributeUpdates} Expression parameters: {ConditionExpression}"
    );
}
