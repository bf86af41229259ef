//! Control plane through the official AWS SDK for Rust against a real server.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ProvisionedThroughput,
    ScalarAttributeType,
};
use ferrodyn_testkit::{create_hash_table, TestServer};

#[tokio::test]
async fn create_describe_list_delete() {
    let server = TestServer::in_memory();
    let client = server.client();
    let created = client
        .create_table()
        .table_name("orders")
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
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(7)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let desc = created.table_description().unwrap();
    assert_eq!(desc.table_name(), Some("orders"));
    assert_eq!(
        desc.table_arn(),
        Some("arn:aws:dynamodb:us-east-1:000000000000:table/orders")
    );
    assert_eq!(desc.key_schema().len(), 2);

    let d = client
        .describe_table()
        .table_name("orders")
        .send()
        .await
        .unwrap();
    let t = d.table().unwrap();
    assert_eq!(t.table_status().map(|s| s.as_str()), Some("ACTIVE"));
    assert_eq!(t.item_count(), Some(0));
    let pt = t.provisioned_throughput().unwrap();
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(5), Some(7))
    );
    assert_eq!(pt.number_of_decreases_today(), Some(0));
    assert!(t.table_id().is_some());
    assert!(t.creation_date_time().is_some());

    create_hash_table(&client, "accounts").await;
    create_hash_table(&client, "books").await;
    let all = client.list_tables().send().await.unwrap();
    assert_eq!(all.table_names(), ["accounts", "books", "orders"]);
    let page = client.list_tables().limit(2).send().await.unwrap();
    assert_eq!(page.table_names(), ["accounts", "books"]);
    assert_eq!(page.last_evaluated_table_name(), Some("books"));
    let rest = client
        .list_tables()
        .exclusive_start_table_name("books")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.table_names(), ["orders"]);
    assert_eq!(rest.last_evaluated_table_name(), None);

    let deleted = client
        .delete_table()
        .table_name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(
        deleted
            .table_description()
            .unwrap()
            .table_status()
            .map(|s| s.as_str()),
        Some("DELETING")
    );
    let err = client
        .describe_table()
        .table_name("orders")
        .send()
        .await
        .unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
}

#[tokio::test]
async fn create_existing_table_is_resource_in_use() {
    let server = TestServer::in_memory();
    let client = server.client();
    create_hash_table(&client, "tbl1").await;
    let err = client
        .create_table()
        .table_name("tbl1")
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
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_in_use_exception(), "{err:?}");
}

#[tokio::test]
async fn update_table_throughput_and_billing() {
    let server = TestServer::in_memory();
    let client = server.client();
    create_hash_table(&client, "tbl").await;
    let out = client
        .update_table()
        .table_name("tbl")
        .billing_mode(BillingMode::Provisioned)
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(3)
                .write_capacity_units(4)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let pt = out
        .table_description()
        .unwrap()
        .provisioned_throughput()
        .unwrap();
    assert_eq!(
        (pt.read_capacity_units(), pt.write_capacity_units()),
        (Some(3), Some(4))
    );
    let out = client
        .update_table()
        .table_name("tbl")
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(1)
                .write_capacity_units(1)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let pt = out
        .table_description()
        .unwrap()
        .provisioned_throughput()
        .unwrap();
    assert_eq!(pt.number_of_decreases_today(), Some(1));
    let d = client
        .describe_table()
        .table_name("tbl")
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.table()
            .unwrap()
            .billing_mode_summary()
            .unwrap()
            .billing_mode()
            .unwrap()
            .as_str(),
        "PROVISIONED"
    );
}

#[test]
fn table_survives_restart_on_durable_storage() {
    let dir = tempfile::tempdir().unwrap();
    {
        let server = TestServer::durable(dir.path());
        let r = server.raw(
            "CreateTable",
            r#"{"TableName":"keep","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let r = server.raw(
            "PutItem",
            r#"{"TableName":"keep","Item":{"pk":{"S":"a"},"v":{"N":"1.50"}}}"#,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let server = TestServer::durable(dir.path());
    let r = server.raw("GetItem", r#"{"TableName":"keep","Key":{"pk":{"S":"a"}}}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["Item"]["v"]["N"], "1.5");
    let r = server.raw("DescribeTable", r#"{"TableName":"keep"}"#);
    assert_eq!(r.json()["Table"]["ItemCount"], 1);
}
