//! Secondary indexes end to end: sparse GSIs, key changes, projections, LSI reads of
//! non-projected attributes, paging, and online GSI creation under concurrent writes.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as AV, BillingMode, CreateGlobalSecondaryIndexAction,
    DeleteGlobalSecondaryIndexAction, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    IndexStatus, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection, ProjectionType,
    ScalarAttributeType, Select,
};
use aws_sdk_dynamodb::Client;
use ferrodyn_testkit::TestServer;

type Item = HashMap<String, AV>;

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

fn projection(t: ProjectionType, include: &[&str]) -> Projection {
    let mut p = Projection::builder().projection_type(t);
    for a in include {
        p = p.non_key_attributes(*a);
    }
    p.build()
}

fn gsi(name: &str, hash: &str, range: Option<&str>, p: Projection) -> GlobalSecondaryIndex {
    let mut b = GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash))
        .projection(p);
    if let Some(r) = range {
        b = b.key_schema(key(r, KeyType::Range));
    }
    b.build().unwrap()
}

/// Table `pk`(S) + `sk`(N); GSIs `by_g` (g: S, hash only, ALL), `by_g_keys` (g, n: N, KEYS_ONLY),
/// `by_g_inc` (g, INCLUDE a); LSI `by_l` (pk, l: S, KEYS_ONLY).
async fn setup(c: &Client, name: &str) {
    c.create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .attribute_definitions(attr("g", ScalarAttributeType::S))
        .attribute_definitions(attr("n", ScalarAttributeType::N))
        .attribute_definitions(attr("l", ScalarAttributeType::S))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(gsi("by_g", "g", None, projection(ProjectionType::All, &[])))
        .global_secondary_indexes(gsi(
            "by_g_keys",
            "g",
            Some("n"),
            projection(ProjectionType::KeysOnly, &[]),
        ))
        .global_secondary_indexes(gsi(
            "by_g_inc",
            "g",
            None,
            projection(ProjectionType::Include, &["a"]),
        ))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by_l")
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("l", KeyType::Range))
                .projection(projection(ProjectionType::KeysOnly, &[]))
                .build()
                .unwrap(),
        )
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

fn s(v: &str) -> AV {
    AV::S(v.to_string())
}
fn n(v: i64) -> AV {
    AV::N(v.to_string())
}

async fn query_index(c: &Client, table: &str, index: &str, attr: &str, v: AV) -> Vec<Item> {
    c.query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("#k = :v")
        .expression_attribute_names("#k", attr)
        .expression_attribute_values(":v", v)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

fn pks(items: &[Item]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| format!("{}/{}", i["pk"].as_s().unwrap(), i["sk"].as_n().unwrap()))
        .collect()
}

#[tokio::test]
async fn sparse_gsi_and_key_change_moves_entry() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c, "sparse").await;
    put(&c, "sparse", &[("pk", s("a")), ("sk", n(1)), ("g", s("x"))]).await;
    put(&c, "sparse", &[("pk", s("a")), ("sk", n(2))]).await; // no g: not indexed
    put(&c, "sparse", &[("pk", s("b")), ("sk", n(1)), ("g", s("x"))]).await;
    let got = query_index(&c, "sparse", "by_g", "g", s("x")).await;
    assert_eq!(pks(&got), BTreeSet::from(["a/1".into(), "b/1".into()]));
    let scan = c
        .scan()
        .table_name("sparse")
        .index_name("by_g")
        .send()
        .await
        .unwrap();
    assert_eq!(scan.count, 2);

    // Changing the index key moves the entry.
    c.update_item()
        .table_name("sparse")
        .key("pk", s("a"))
        .key("sk", n(1))
        .update_expression("SET g = :y")
        .expression_attribute_values(":y", s("y"))
        .send()
        .await
        .unwrap();
    let x = query_index(&c, "sparse", "by_g", "g", s("x")).await;
    let y = query_index(&c, "sparse", "by_g", "g", s("y")).await;
    assert_eq!(pks(&x), BTreeSet::from(["b/1".into()]));
    assert_eq!(pks(&y), BTreeSet::from(["a/1".into()]));

    // Removing the attribute or the item removes the entry.
    c.update_item()
        .table_name("sparse")
        .key("pk", s("a"))
        .key("sk", n(1))
        .update_expression("REMOVE g")
        .send()
        .await
        .unwrap();
    c.delete_item()
        .table_name("sparse")
        .key("pk", s("b"))
        .key("sk", n(1))
        .send()
        .await
        .unwrap();
    assert!(query_index(&c, "sparse", "by_g", "g", s("y"))
        .await
        .is_empty());
    assert!(query_index(&c, "sparse", "by_g", "g", s("x"))
        .await
        .is_empty());

    // Wrong index key type is rejected before anything is written.
    let err = c
        .put_item()
        .table_name("sparse")
        .item("pk", s("c"))
        .item("sk", n(1))
        .item("g", n(5))
        .send()
        .await
        .unwrap_err();
    let msg = format!("{:?}", err.into_service_error());
    assert!(
        msg.contains("Type mismatch for Index Key g Expected: S Actual: N"),
        "{msg}"
    );
    let got = c
        .get_item()
        .table_name("sparse")
        .key("pk", s("c"))
        .key("sk", n(1))
        .send()
        .await
        .unwrap();
    assert!(got.item.is_none());
}

#[tokio::test]
async fn projections_and_lsi_fetch() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c, "proj").await;
    put(
        &c,
        "proj",
        &[
            ("pk", s("p")),
            ("sk", n(1)),
            ("g", s("x")),
            ("n", n(7)),
            ("l", s("m")),
            ("a", s("A")),
            ("b", s("B")),
        ],
    )
    .await;
    let all = query_index(&c, "proj", "by_g", "g", s("x")).await;
    assert_eq!(all[0].len(), 7);
    let keys = query_index(&c, "proj", "by_g_keys", "g", s("x")).await;
    let names: BTreeSet<&str> = keys[0].keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["pk", "sk", "g", "n"]));
    let inc = query_index(&c, "proj", "by_g_inc", "g", s("x")).await;
    let names: BTreeSet<&str> = inc[0].keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["pk", "sk", "g", "a"]));

    // ALL_ATTRIBUTES on a GSI that does not project everything is rejected.
    let err = c
        .query()
        .table_name("proj")
        .index_name("by_g_inc")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("x"))
        .select(Select::AllAttributes)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", err.into_service_error()).contains("ALL_ATTRIBUTES"));
    // ConsistentRead on a GSI is rejected.
    let err = c
        .query()
        .table_name("proj")
        .index_name("by_g")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("x"))
        .consistent_read(true)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", err.into_service_error())
        .contains("Consistent reads are not supported on global secondary indexes"));
    // Unknown index.
    let err = c
        .query()
        .table_name("proj")
        .index_name("nope")
        .key_condition_expression("g = :v")
        .expression_attribute_values(":v", s("x"))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{:?}", err.into_service_error())
        .contains("The table does not have the specified index: nope"));

    // LSI: projected attributes by default, the base item for ALL_ATTRIBUTES or unprojected names.
    let lsi = |select: Option<Select>, proj: Option<&str>| {
        let mut q = c
            .query()
            .table_name("proj")
            .index_name("by_l")
            .key_condition_expression("pk = :p AND l = :l")
            .expression_attribute_values(":p", s("p"))
            .expression_attribute_values(":l", s("m"))
            .consistent_read(true);
        if let Some(sel) = select {
            q = q.select(sel);
        }
        if let Some(p) = proj {
            q = q.projection_expression(p);
        }
        q.send()
    };
    let projected = lsi(None, None).await.unwrap().items.unwrap();
    let names: BTreeSet<&str> = projected[0].keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["pk", "sk", "l"]));
    let full = lsi(Some(Select::AllAttributes), None)
        .await
        .unwrap()
        .items
        .unwrap();
    assert_eq!(full[0].len(), 7);
    let b = lsi(None, Some("b")).await.unwrap().items.unwrap();
    assert_eq!(b[0].get("b"), Some(&s("B")));
    assert_eq!(b[0].len(), 1);
}

#[tokio::test]
async fn paging_on_an_index() {
    let server = TestServer::in_memory();
    let c = server.client();
    setup(&c, "paging").await;
    for i in 0..30 {
        put(
            &c,
            "paging",
            &[
                ("pk", s(&format!("p{}", i % 4))),
                ("sk", n(i)),
                ("g", s("x")),
                ("n", n(i % 5)),
            ],
        )
        .await;
    }
    for forward in [true, false] {
        for limit in [1, 4, 7] {
            let mut start: Option<Item> = None;
            let mut got: Vec<(i64, String)> = Vec::new();
            loop {
                let out = c
                    .query()
                    .table_name("paging")
                    .index_name("by_g_keys")
                    .key_condition_expression("g = :g AND n >= :n")
                    .expression_attribute_values(":g", s("x"))
                    .expression_attribute_values(":n", n(1))
                    .scan_index_forward(forward)
                    .limit(limit)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .unwrap();
                for i in out.items.unwrap() {
                    got.push((
                        i["n"].as_n().unwrap().parse().unwrap(),
                        format!("{}/{}", i["pk"].as_s().unwrap(), i["sk"].as_n().unwrap()),
                    ));
                }
                match out.last_evaluated_key {
                    Some(k) => {
                        let names: BTreeSet<&str> = k.keys().map(String::as_str).collect();
                        assert_eq!(names, BTreeSet::from(["pk", "sk", "g", "n"]));
                        start = Some(k);
                    }
                    None => break,
                }
            }
            let expected = (0..30).filter(|i| i % 5 >= 1).count();
            assert_eq!(got.len(), expected, "forward={forward} limit={limit}");
            let set: BTreeSet<_> = got.iter().cloned().collect();
            assert_eq!(set.len(), expected, "no duplicates");
            let ns: Vec<i64> = got.iter().map(|(n, _)| *n).collect();
            let mut sorted = ns.clone();
            sorted.sort();
            if !forward {
                sorted.reverse();
            }
            assert_eq!(ns, sorted, "index order");
        }
    }
    // Scan of an index pages too.
    let mut start: Option<Item> = None;
    let mut total = 0;
    loop {
        let out = c
            .scan()
            .table_name("paging")
            .index_name("by_g")
            .limit(7)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        total += out.count;
        match out.last_evaluated_key {
            Some(k) => start = Some(k),
            None => break,
        }
    }
    assert_eq!(total, 30);
}

async fn wait_active(c: &Client, table: &str) {
    for _ in 0..500 {
        let d = c.describe_table().table_name(table).send().await.unwrap();
        let gsis = d
            .table
            .unwrap()
            .global_secondary_indexes
            .unwrap_or_default();
        if gsis
            .iter()
            .all(|g| g.index_status == Some(IndexStatus::Active))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("index did not become ACTIVE");
}

async fn all_items(c: &Client, table: &str, index: Option<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut start: Option<Item> = None;
    loop {
        let r = c
            .scan()
            .table_name(table)
            .set_index_name(index.map(str::to_string))
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for i in r.items.unwrap() {
            if index.is_some() || i.contains_key("v") {
                out.insert(format!(
                    "{}/{}/{}",
                    i["pk"].as_s().unwrap(),
                    i["sk"].as_n().unwrap(),
                    i["v"].as_s().unwrap()
                ));
            }
        }
        match r.last_evaluated_key {
            Some(k) => start = Some(k),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_gsi_creation_with_concurrent_writers() {
    let server = TestServer::in_memory();
    let c = server.client();
    c.create_table()
        .table_name("online")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("sk", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .send()
        .await
        .unwrap();
    for i in 0..600 {
        put(
            &c,
            "online",
            &[
                ("pk", s(&format!("p{}", i % 13))),
                ("sk", n(i)),
                ("v", s(&format!("v{}", i % 3))),
            ],
        )
        .await;
    }
    // Writers change, add and delete items while the index is built.
    let mut writers = Vec::new();
    for w in 0..4 {
        let c = c.clone();
        writers.push(tokio::spawn(async move {
            for j in 0..150i64 {
                let i = (j * 7 + w * 131) % 700;
                let pk = s(&format!("p{}", i % 13));
                match j % 3 {
                    0 => {
                        c.delete_item()
                            .table_name("online")
                            .key("pk", pk)
                            .key("sk", n(i))
                            .send()
                            .await
                            .unwrap();
                    }
                    1 => {
                        c.update_item()
                            .table_name("online")
                            .key("pk", pk)
                            .key("sk", n(i))
                            .update_expression("REMOVE v")
                            .send()
                            .await
                            .unwrap();
                    }
                    _ => {
                        put(
                            &c,
                            "online",
                            &[("pk", pk), ("sk", n(i)), ("v", s(&format!("w{w}-{j}")))],
                        )
                        .await
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let out = c
        .update_table()
        .table_name("online")
        .attribute_definitions(attr("v", ScalarAttributeType::S))
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .create(
                    CreateGlobalSecondaryIndexAction::builder()
                        .index_name("by_v")
                        .key_schema(key("v", KeyType::Hash))
                        .projection(projection(ProjectionType::All, &[]))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let desc = out.table_description.unwrap();
    let g = &desc.global_secondary_indexes.unwrap()[0];
    assert_eq!(g.index_status, Some(IndexStatus::Creating));
    assert_eq!(g.backfilling, Some(true));
    for w in writers {
        w.await.unwrap();
    }
    wait_active(&c, "online").await;
    let table = all_items(&c, "online", None).await;
    let index = all_items(&c, "online", Some("by_v")).await;
    assert_eq!(table, index);
    assert!(!table.is_empty());

    // Deleting the index.
    c.update_table()
        .table_name("online")
        .global_secondary_index_updates(
            GlobalSecondaryIndexUpdate::builder()
                .delete(
                    DeleteGlobalSecondaryIndexAction::builder()
                        .index_name("by_v")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    for _ in 0..500 {
        let d = c
            .describe_table()
            .table_name("online")
            .send()
            .await
            .unwrap();
        if d.table
            .unwrap()
            .global_secondary_indexes
            .unwrap_or_default()
            .is_empty()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("index was not deleted");
}
