//! Scale-out: three real `ferrodyn serve` processes on one real PostgreSQL database, driven
//! concurrently through all of them with the AWS SDK. Each test has its own database and nodes.
//!
//! What must hold across nodes: atomic counters and conditional writes are exact, transactions
//! are serializable (a bank's total never changes, not even in a snapshot read), indexes and
//! streams see every change exactly once and in order, schema changes reach every node, and
//! the cluster survives a node's crash, a database restart and a failover to a standby.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, IndexStatus, KeySchemaElement, KeyType, KeysAndAttributes,
    Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus, TransactGetItem, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use common::{failure, n, num, s, Cluster, Failure, Rng};
use ferrodyn_pgtest::PgServer;
use serde_json::json;

type Item = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Every request's limit; no request may take longer.
const TIMEOUT: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

fn key_def(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .unwrap()
}

fn hash_key(name: &str) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(KeyType::Hash)
        .build()
        .unwrap()
}

/// An on-demand table with a string partition key `pk`.
async fn create_table(c: &Client, name: &str) {
    ferrodyn_testkit::create_hash_table(c, name).await;
}

async fn get(c: &Client, table: &str, pk: &str) -> Result<Option<Item>, Failure> {
    c.get_item()
        .table_name(table)
        .key("pk", s(pk))
        .consistent_read(true)
        .send()
        .await
        .map(|o| o.item)
        .map_err(|e| failure(&e))
}

async fn put(c: &Client, table: &str, pk: &str, extra: &[(&str, &str)]) -> Result<(), Failure> {
    let mut req = c.put_item().table_name(table).item("pk", s(pk));
    for (k, v) in extra {
        req = req.item(*k, s(*v));
    }
    req.send().await.map(|_| ()).map_err(|e| failure(&e))
}

/// Every item of a table (or of one of its indexes), through `c`, all pages.
async fn scan_all(c: &Client, table: &str, index: Option<&str>) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = c
            .scan()
            .table_name(table)
            .set_index_name(index.map(str::to_owned))
            .set_consistent_read(index.is_none().then_some(true))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Scan {table} {index:?}: {:?}", failure(&e)));
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return items,
        }
    }
}

/// Keys that must all be readable through `c` (BatchGetItem, consistent, all unprocessed keys
/// retried); returns those that are not.
async fn missing_keys(c: &Client, table: &str, keys: &[String]) -> Vec<String> {
    let mut found = std::collections::HashSet::new();
    for chunk in keys.chunks(100) {
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(
                    chunk
                        .iter()
                        .map(|k| HashMap::from([("pk".to_owned(), s(k))]))
                        .collect(),
                ))
                .consistent_read(true)
                .build()
                .unwrap(),
        );
        while let Some(r) = request.take() {
            let out = c
                .batch_get_item()
                .request_items(table, r)
                .send()
                .await
                .unwrap_or_else(|e| panic!("BatchGetItem: {:?}", failure(&e)));
            for item in out
                .responses
                .unwrap_or_default()
                .remove(table)
                .unwrap_or_default()
            {
                if let Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) = item.get("pk") {
                    found.insert(pk.clone());
                }
            }
            request = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .filter(|r| !r.keys.is_empty());
        }
    }
    keys.iter()
        .filter(|k| !found.contains(*k))
        .cloned()
        .collect()
}

/// Retries a write and a read of a fresh key through `c` until both succeed (or `limit`);
/// returns the time it took, or the last failure.
async fn until_serving(
    c: &Client,
    table: &str,
    key: &str,
    limit: Duration,
) -> Result<Duration, String> {
    let began = Instant::now();
    let mut last = String::new();
    while began.elapsed() < limit {
        match put(c, table, key, &[("probe", "1")]).await {
            Ok(()) => match get(c, table, key).await {
                Ok(Some(_)) => return Ok(began.elapsed()),
                Ok(None) => last = format!("{key} not found after its PutItem succeeded"),
                Err(f) => last = format!("GetItem: {f:?}"),
            },
            Err(f) => last = format!("PutItem: {f:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("not serving after {limit:?}; last: {last}"))
}

// ---- 1. counters ---------------------------------------------------------------------------

/// `ADD n :1` on item `pk` of table `counters`.
async fn add_one(c: &Client, pk: &str) -> Result<(), String> {
    c.update_item()
        .table_name("counters")
        .key("pk", s(pk))
        .update_expression("ADD n :one")
        .expression_attribute_values(":one", n(1))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", failure(&e)))
}

#[test]
fn counters_are_exact_across_nodes() {
    let cluster = Cluster::start(3);
    let clients = cluster.clients(TIMEOUT);
    const WORKERS: usize = 24; // 8 per node
    const UPDATES: usize = 100;
    const ITEMS: usize = 20;
    runtime().block_on(async {
        create_table(&clients[0], "counters").await;

        // One hot item.
        let mut tasks = Vec::new();
        for w in 0..WORKERS {
            let c = clients[w % 3].clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..UPDATES {
                    add_one(&c, "hot")
                        .await
                        .map_err(|e| format!("worker {w}: {e}"))?;
                }
                Ok::<_, String>(())
            }));
        }
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        }
        for c in &clients {
            let item = get(c, "counters", "hot").await.unwrap().expect("hot item");
            assert_eq!(num(&item, "n"), (WORKERS * UPDATES) as i64);
        }

        // Twenty items at once: worker w's step i adds to item (w + i) % 20, so each worker adds
        // UPDATES / ITEMS to every item.
        let mut tasks = Vec::new();
        for w in 0..WORKERS {
            let c = clients[w % 3].clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..UPDATES {
                    add_one(&c, &format!("c{}", (w + i) % ITEMS))
                        .await
                        .map_err(|e| format!("worker {w}: {e}"))?;
                }
                Ok::<_, String>(())
            }));
        }
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        }
        let mut total = 0;
        for i in 0..ITEMS {
            let item = get(&clients[i % 3], "counters", &format!("c{i}"))
                .await
                .unwrap()
                .expect("counter item");
            assert_eq!(num(&item, "n"), (WORKERS * UPDATES / ITEMS) as i64, "c{i}");
            total += num(&item, "n");
        }
        assert_eq!(total, (WORKERS * UPDATES) as i64);
    });
}

// ---- 2. bank transfers ---------------------------------------------------------------------

fn transfer_update(
    from_or_to: &str,
    expr: &str,
    condition: Option<&str>,
    amount: u64,
) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(
            Update::builder()
                .table_name("bank")
                .key("pk", s(from_or_to))
                .update_expression(expr)
                .set_condition_expression(condition.map(str::to_owned))
                .expression_attribute_values(":amt", n(amount))
                .build()
                .unwrap(),
        )
        .build()
}

#[test]
fn bank_transfers_keep_the_total() {
    let cluster = Cluster::start(3);
    let clients = cluster.clients(TIMEOUT);
    const ACCOUNTS: usize = 10;
    const WRITERS: usize = 18; // 6 per node
    const TRANSFERS: usize = 40;
    runtime().block_on(async {
        create_table(&clients[0], "bank").await;
        for a in 0..ACCOUNTS {
            clients[a % 3]
                .put_item()
                .table_name("bank")
                .item("pk", s(format!("a{a}")))
                .item("bal", n(100))
                .send()
                .await
                .unwrap();
        }
        let done = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let canceled = Arc::new(AtomicU64::new(0));

        let mut readers = Vec::new();
        for (r, c) in clients.iter().enumerate() {
            let c = c.clone();
            let done = done.clone();
            readers.push(tokio::spawn(async move {
                let (mut reads, mut canceled) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    let gets = (0..ACCOUNTS).map(|a| {
                        TransactGetItem::builder()
                            .get(
                                aws_sdk_dynamodb::types::Get::builder()
                                    .table_name("bank")
                                    .key("pk", s(format!("a{a}")))
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                    });
                    match c
                        .transact_get_items()
                        .set_transact_items(Some(gets.collect()))
                        .send()
                        .await
                    {
                        Ok(out) => {
                            let responses = out.responses.unwrap_or_default();
                            let sum: i64 = responses
                                .iter()
                                .map(|r| num(r.item.as_ref().expect("account"), "bal"))
                                .sum();
                            if sum != 1000 || responses.len() != ACCOUNTS {
                                return Err(format!(
                                    "reader {r}: a snapshot sums to {sum}: {responses:?}"
                                ));
                            }
                            reads += 1;
                        }
                        // DynamoDB cancels a TransactGetItems that conflicts with a write.
                        Err(e) if failure(&e).code() == "TransactionCanceledException" => {
                            canceled += 1
                        }
                        Err(e) => return Err(format!("reader {r}: {:?}", failure(&e))),
                    }
                }
                Ok((reads, canceled))
            }));
        }

        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let c = clients[w % 3].clone();
            let (committed, canceled) = (committed.clone(), canceled.clone());
            writers.push(tokio::spawn(async move {
                let mut rng = Rng::new(w as u64 + 1);
                for _ in 0..TRANSFERS {
                    let from = rng.range(0, ACCOUNTS as u64 - 1);
                    let to = (from + rng.range(1, ACCOUNTS as u64 - 1)) % ACCOUNTS as u64;
                    let amount = rng.range(1, 30);
                    let result = c
                        .transact_write_items()
                        .transact_items(transfer_update(
                            &format!("a{from}"),
                            "SET bal = bal - :amt",
                            Some("bal >= :amt"),
                            amount,
                        ))
                        .transact_items(transfer_update(
                            &format!("a{to}"),
                            "SET bal = bal + :amt",
                            None,
                            amount,
                        ))
                        .send()
                        .await;
                    match result {
                        Ok(_) => {
                            committed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            let Some(TransactWriteItemsError::TransactionCanceledException(tc)) =
                                e.as_service_error()
                            else {
                                return Err(format!("writer {w}: {:?}", failure(&e)));
                            };
                            for reason in tc.cancellation_reasons() {
                                let code = reason.code().unwrap_or("None");
                                if !matches!(
                                    code,
                                    "None" | "ConditionalCheckFailed" | "TransactionConflict"
                                ) {
                                    return Err(format!(
                                        "writer {w}: cancellation reason {reason:?}"
                                    ));
                                }
                            }
                            canceled.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok::<_, String>(())
            }));
        }
        for t in writers {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        }
        done.store(true, Ordering::Relaxed);
        let (mut reads, mut reads_canceled) = (0, 0);
        for t in readers {
            let (r, c) = t
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
            reads += r;
            reads_canceled += c;
        }
        eprintln!(
            "transfers: {} committed, {} canceled; snapshot reads: {reads} summing to 1000, \
             {reads_canceled} canceled",
            committed.load(Ordering::Relaxed),
            canceled.load(Ordering::Relaxed)
        );
        assert!(reads > 0, "no TransactGetItems succeeded");
        let committed = committed.load(Ordering::Relaxed);
        assert!(committed > 0, "no transfer committed");
        assert_eq!(
            committed + canceled.load(Ordering::Relaxed),
            (WRITERS * TRANSFERS) as u64
        );

        for c in &clients {
            let mut sum = 0;
            for a in 0..ACCOUNTS {
                let item = get(c, "bank", &format!("a{a}"))
                    .await
                    .unwrap()
                    .expect("account");
                let bal = num(&item, "bal");
                assert!(bal >= 0, "a{a} has {bal}");
                sum += bal;
            }
            assert_eq!(sum, 1000);
        }
    });
}

// ---- 3. put-if-absent races ----------------------------------------------------------------

#[test]
fn put_if_absent_has_one_winner() {
    let cluster = Cluster::start(3);
    let clients = cluster.clients(TIMEOUT);
    const KEYS: usize = 50;
    const RACERS: usize = 6;
    runtime().block_on(async {
        create_table(&clients[0], "race").await;
        let mut tasks = Vec::new();
        for k in 0..KEYS {
            for r in 0..RACERS {
                let c = clients[(k + r) % 3].clone();
                tasks.push(tokio::spawn(async move {
                    let result = c
                        .put_item()
                        .table_name("race")
                        .item("pk", s(format!("k{k}")))
                        .item("owner", s(format!("r{r}")))
                        .condition_expression("attribute_not_exists(pk)")
                        .send()
                        .await;
                    (k, r, result.map(|_| ()).map_err(|e| failure(&e)))
                }));
            }
        }
        let mut winners: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for t in tasks {
            let (k, r, result) = t.await.unwrap();
            match result {
                Ok(()) => winners.entry(k).or_default().push(r),
                Err(f) if f.code() == "ConditionalCheckFailedException" => {}
                Err(f) => panic!("k{k} r{r}: {f:?}\n{}", cluster.logs()),
            }
        }
        for k in 0..KEYS {
            let w = winners.get(&k).cloned().unwrap_or_default();
            assert_eq!(w.len(), 1, "k{k}: winners {w:?}");
            for c in &clients {
                let item = get(c, "race", &format!("k{k}"))
                    .await
                    .unwrap()
                    .expect("item");
                assert_eq!(item.get("owner"), Some(&s(format!("r{}", w[0]))), "k{k}");
            }
        }
    });
}

// ---- 4. GSI and stream ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Op {
    Put,
    Update,
    Delete,
}

/// One stream record as the test sees it: event name, OldImage.v, NewImage.v.
type Change = (String, Option<i64>, Option<i64>);

/// An item's writes, in order: step k (1-based) writes `v = k` and maybe a `g`.
fn plan(item: usize) -> Vec<(Op, Option<String>)> {
    let mut rng = Rng::new(1000 + item as u64);
    (0..rng.range(1, 5))
        .map(|_| {
            let op = match rng.range(0, 9) {
                0..=3 => Op::Put,
                4..=7 => Op::Update,
                _ => Op::Delete,
            };
            let g = (rng.range(0, 9) >= 3).then(|| format!("g{}", rng.range(0, 4)));
            (op, g)
        })
        .collect()
}

/// The stream records a plan must produce, and the item it leaves (v, g), if any.
fn expected_changes(plan: &[(Op, Option<String>)]) -> (Vec<Change>, Option<(i64, Option<String>)>) {
    let mut state: Option<(i64, Option<String>)> = None;
    let mut changes = Vec::new();
    for (step, (op, g)) in plan.iter().enumerate() {
        let v = step as i64 + 1;
        match op {
            Op::Put | Op::Update => {
                let old = state.as_ref().map(|(v, _)| *v);
                let name = if old.is_some() { "MODIFY" } else { "INSERT" };
                changes.push((name.to_owned(), old, Some(v)));
                state = Some((v, g.clone()));
            }
            Op::Delete => {
                if let Some((old, _)) = state.take() {
                    changes.push(("REMOVE".to_owned(), Some(old), None));
                }
            }
        }
    }
    (changes, state)
}

async fn apply(c: &Client, pk: &str, v: i64, op: Op, g: &Option<String>) -> Result<(), Failure> {
    let result = match op {
        Op::Put => {
            let mut req = c
                .put_item()
                .table_name("gsi_stream")
                .item("pk", s(pk))
                .item("v", n(v));
            if let Some(g) = g {
                req = req.item("g", s(g));
            }
            req.send().await.map(|_| ()).map_err(|e| failure(&e))
        }
        Op::Update => {
            let req = c
                .update_item()
                .table_name("gsi_stream")
                .key("pk", s(pk))
                .expression_attribute_values(":v", n(v));
            match g {
                Some(g) => req
                    .update_expression("SET v = :v, g = :g")
                    .expression_attribute_values(":g", s(g)),
                None => req.update_expression("SET v = :v REMOVE g"),
            }
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failure(&e))
        }
        Op::Delete => c
            .delete_item()
            .table_name("gsi_stream")
            .key("pk", s(pk))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failure(&e)),
    };
    result
}

/// `v` of a stream record's image (absent image: `None`).
fn image_v(image: &serde_json::Value) -> Option<i64> {
    if image.is_null() {
        return None;
    }
    let v = image["v"]["N"]
        .as_str()
        .unwrap_or_else(|| panic!("image without v: {image}"));
    Some(v.parse().expect("v is an integer"))
}

/// One DynamoDB Streams call over raw HTTP (the SDK for streams is a separate crate); panics
/// unless it answers 200.
async fn streams_call(url: &str, op: &str, body: serde_json::Value) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(url)
        .header("x-amz-target", format!("DynamoDBStreams_20120810.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=ferrodyn/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .timeout(TIMEOUT)
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{op} {body}: {text}");
    serde_json::from_str(&text).expect("JSON answer")
}

/// Orders DynamoDB sequence numbers (decimal strings of any length).
fn seq_key(seq: &str) -> (usize, String) {
    (seq.len(), seq.to_owned())
}

#[test]
fn index_and_stream_see_every_change_once_in_order() {
    let cluster = Cluster::start(3);
    let clients = cluster.clients(TIMEOUT);
    const ITEMS: usize = 200;
    const WORKERS: usize = 6;
    runtime().block_on(async {
        clients[0]
            .create_table()
            .table_name("gsi_stream")
            .attribute_definitions(key_def("pk"))
            .attribute_definitions(key_def("g"))
            .key_schema(hash_key("pk"))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("by_g")
                    .key_schema(hash_key("g"))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .unwrap(),
            )
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateTable: {:?}", failure(&e)));

        // Worker w owns items w, w + 6, ...; it interleaves their writes, round by round.
        let mut tasks = Vec::new();
        for w in 0..WORKERS {
            let c = clients[w % 3].clone();
            tasks.push(tokio::spawn(async move {
                let mine: Vec<usize> = (w..ITEMS).step_by(WORKERS).collect();
                let plans: Vec<_> = mine.iter().map(|&i| plan(i)).collect();
                for step in 0..5 {
                    for (&i, p) in mine.iter().zip(&plans) {
                        if let Some((op, g)) = p.get(step) {
                            apply(&c, &format!("i{i}"), step as i64 + 1, *op, g)
                                .await
                                .map_err(|f| format!("i{i} step {step} {op:?}: {f:?}"))?;
                        }
                    }
                }
                Ok::<_, String>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        }

        // The table holds exactly what the plans leave.
        let mut table = scan_all(&clients[0], "gsi_stream", None).await;
        table.sort_by_key(|i| format!("{:?}", i.get("pk")));
        let mut expected: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
        let mut expected_stream: HashMap<String, Vec<Change>> = HashMap::new();
        for i in 0..ITEMS {
            let (changes, state) = expected_changes(&plan(i));
            if let Some(state) = state {
                expected.insert(format!("i{i}"), state);
            }
            if !changes.is_empty() {
                expected_stream.insert(format!("i{i}"), changes);
            }
        }
        let got: BTreeMap<String, (i64, Option<String>)> = table
            .iter()
            .map(|item| {
                let pk = match item.get("pk") {
                    Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) => pk.clone(),
                    other => panic!("pk {other:?}"),
                };
                let g = item.get("g").map(|g| g.as_s().expect("g is a string").clone());
                (pk, (num(item, "v"), g))
            })
            .collect();
        assert_eq!(got, expected, "table contents");

        // The index (through node 3) is the projection of the table: every item that has g.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut index = scan_all(&clients[2], "gsi_stream", Some("by_g")).await;
        index.sort_by_key(|i| format!("{:?}", i.get("pk")));
        let projected: Vec<Item> = table.iter().filter(|i| i.contains_key("g")).cloned().collect();
        assert_eq!(index.len(), projected.len(), "index size");
        assert_eq!(index, projected, "index contents");

        let described = clients[1].describe_table().table_name("gsi_stream").send().await.unwrap();
        let t = described.table.expect("table");
        assert_eq!(t.item_count, Some(table.len() as i64), "ItemCount");

        // The stream, through node 2: every shard from TRIM_HORIZON to its end.
        let stream_arn = t.latest_stream_arn.expect("stream arn");
        let node2 = cluster.nodes[1].url.clone();
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut body = json!({"StreamArn": stream_arn});
            if let Some(id) = &start {
                body["ExclusiveStartShardId"] = json!(id);
            }
            let d = streams_call(&node2, "DescribeStream", body).await;
            let d = &d["StreamDescription"];
            shards.extend(d["Shards"].as_array().cloned().unwrap_or_default());
            match d["LastEvaluatedShardId"].as_str() {
                Some(id) => start = Some(id.to_owned()),
                None => break,
            }
        }
        assert!(!shards.is_empty());
        let mut records: HashMap<String, Vec<(String, Change)>> = HashMap::new();
        let mut seen_sequence = HashMap::new();
        for shard in &shards {
            let shard_id = shard["ShardId"].as_str().expect("shard id");
            let closed = shard["SequenceNumberRange"]["EndingSequenceNumber"].is_string();
            let it = streams_call(
                &node2,
                "GetShardIterator",
                json!({"StreamArn": stream_arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}),
            )
            .await;
            let mut iterator = it["ShardIterator"].as_str().map(str::to_owned);
            let mut calls = 0;
            while let Some(it) = iterator.take() {
                calls += 1;
                assert!(calls < 1000, "shard {shard_id} never ends");
                let out = streams_call(&node2, "GetRecords", json!({"ShardIterator": it})).await;
                let batch = out["Records"].as_array().cloned().unwrap_or_default();
                let empty = batch.is_empty();
                for r in batch {
                    let rec = &r["dynamodb"];
                    let seq = rec["SequenceNumber"].as_str().expect("sequence number").to_owned();
                    let pk = rec["Keys"]["pk"]["S"].as_str().expect("key").to_owned();
                    if let Some(first) = seen_sequence.insert(seq.clone(), (shard_id.to_owned(), r.clone())) {
                        panic!("sequence number {seq} twice: in {first:?}\nand in {shard_id}: {r}\nshards: {shards:#?}");
                    }
                    let name = r["eventName"].as_str().expect("event name").to_owned();
                    records.entry(pk).or_default().push((
                        seq,
                        (name, image_v(&rec["OldImage"]), image_v(&rec["NewImage"])),
                    ));
                }
                // A closed shard ends when it hands out no further iterator; the open one
                // once it has nothing more (no writes are running).
                iterator = match out["NextShardIterator"].as_str() {
                    Some(next) if closed || !empty => Some(next.to_owned()),
                    _ => None,
                };
            }
        }
        let got_stream: HashMap<String, Vec<Change>> = records
            .into_iter()
            .map(|(pk, mut list)| {
                list.sort_by_key(|(seq, _)| seq_key(seq));
                (pk, list.into_iter().map(|(_, c)| c).collect())
            })
            .collect();
        for (pk, want) in &expected_stream {
            assert_eq!(got_stream.get(pk), Some(want), "stream records of {pk}");
        }
        assert_eq!(got_stream.len(), expected_stream.len(), "items with stream records");
    });
}

// ---- 5. schema changes ---------------------------------------------------------------------

#[test]
fn schema_changes_reach_every_node() {
    let cluster = Cluster::start(3);
    let c = cluster.clients(TIMEOUT);
    runtime().block_on(async {
        create_table(&c[0], "schema").await;
        put(&c[1], "schema", "a", &[("g", "x")])
            .await
            .unwrap_or_else(|f| panic!("PutItem through node 2 right after CreateTable: {f:?}"));
        let item = get(&c[2], "schema", "a")
            .await
            .unwrap_or_else(|f| panic!("GetItem: {f:?}"));
        assert_eq!(item.and_then(|i| i.get("g").cloned()), Some(s("x")));

        c[1].update_table()
            .table_name("schema")
            .attribute_definitions(key_def("g"))
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder()
                    .create(
                        CreateGlobalSecondaryIndexAction::builder()
                            .index_name("by_g")
                            .key_schema(hash_key("g"))
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
            .unwrap_or_else(|e| panic!("UpdateTable: {:?}", failure(&e)));
        let began = Instant::now();
        let mut seen = false;
        loop {
            let t = c[2]
                .describe_table()
                .table_name("schema")
                .send()
                .await
                .unwrap()
                .table
                .unwrap();
            let index = t
                .global_secondary_indexes()
                .iter()
                .find(|i| i.index_name() == Some("by_g"))
                .cloned();
            if index.is_some() && !seen {
                seen = true;
                eprintln!("node 3 saw the new index after {:?}", began.elapsed());
            }
            if index.is_some_and(|i| i.index_status() == Some(&IndexStatus::Active))
                && t.table_status() == Some(&TableStatus::Active)
            {
                break;
            }
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "after 10 s node 3 describes {t:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let q = c[0]
            .query()
            .table_name("schema")
            .index_name("by_g")
            .key_condition_expression("g = :g")
            .expression_attribute_values(":g", s("x"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("Query by_g through node 1: {:?}", failure(&e)));
        assert_eq!(q.count, 1);

        c[2].delete_table()
            .table_name("schema")
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteTable: {:?}", failure(&e)));
        let after = put(&c[0], "schema", "b", &[]).await;
        assert!(
            matches!(&after, Err(f) if f.code() == "ResourceNotFoundException"),
            "PutItem through node 1 after DeleteTable through node 3: {after:?}"
        );
    });
    // Nothing of the deleted table is left in the database: no rows, no statistics counters
    // (keyspace 0 holds the keyspace-id sequence).
    let orphans = cluster
        .pg
        .psql(
            "SELECT (SELECT count(*) FROM ferrodyn_kv WHERE ks NOT IN (SELECT id FROM ferrodyn_keyspaces)) \
             + (SELECT count(*) FROM ferrodyn_counters WHERE ks <> 0 AND ks NOT IN (SELECT id FROM ferrodyn_keyspaces))",
        )
        .unwrap();
    assert_eq!(orphans.trim(), "0", "rows of dropped keyspaces remain");
}

// ---- 6. kill -9 of a node ------------------------------------------------------------------

#[test]
fn acknowledged_writes_survive_a_node_crash() {
    let mut cluster = Cluster::start(3);
    let clients = cluster.clients(TIMEOUT);
    let rt = runtime();
    rt.block_on(create_table(&clients[0], "crash"));
    let acked = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..9 {
        let node = w % 3;
        let c = clients[node].clone();
        let (acked, killed, stop) = (acked.clone(), killed.clone(), stop.clone());
        tasks.push(rt.spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}-{i}");
                i += 1;
                match put(&c, "crash", &key, &[("data", "x")]).await {
                    Ok(()) => acked.lock().unwrap().push((node, key)),
                    Err(_) if node == 1 && killed.load(Ordering::Relaxed) => return Ok(()),
                    Err(f) => return Err(format!("worker {w} (node {}) {key}: {f:?}", node + 1)),
                }
            }
            Ok::<_, String>(())
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    killed.store(true, Ordering::Relaxed);
    cluster.nodes[1].kill9();
    let at_kill = acked.lock().unwrap().len();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        rt.block_on(t)
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    let acked = acked.lock().unwrap().clone();
    let by_node2 = acked.iter().filter(|(n, _)| *n == 1).count();
    eprintln!(
        "acknowledged: {} ({} through node 2, {at_kill} before the kill)",
        acked.len(),
        by_node2
    );
    assert!(
        by_node2 > 0,
        "node 2 acknowledged nothing before it was killed"
    );
    assert!(
        acked.len() > at_kill,
        "nodes 1 and 3 stopped writing after the kill"
    );
    let keys: Vec<String> = acked.into_iter().map(|(_, k)| k).collect();
    rt.block_on(async {
        for c in [&clients[0], &clients[2]] {
            let missing = missing_keys(c, "crash", &keys).await;
            assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
        }
    });
}

// ---- 7. database restart -------------------------------------------------------------------

#[test]
fn nodes_survive_a_database_restart() {
    let cluster = Cluster::start(3);
    let clients = cluster.clients(TIMEOUT);
    let rt = runtime();
    rt.block_on(async {
        create_table(&clients[0], "restart").await;
        for (i, c) in clients.iter().enumerate() {
            until_serving(c, "restart", &format!("before{i}"), Duration::from_secs(5))
                .await
                .unwrap();
        }
    });
    // Load through every node while the database restarts: each request must end with a
    // response (success or an error) within the client's timeout.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (node, c) in clients.iter().enumerate() {
        let (c, stop) = (c.clone(), stop.clone());
        load.push(rt.spawn(async move {
            let (mut acked, mut errors) = (Vec::new(), BTreeMap::<String, u64>::new());
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("n{node}-{i}");
                i += 1;
                let began = Instant::now();
                match put(&c, "restart", &key, &[]).await {
                    Ok(()) => acked.push(key),
                    Err(Failure::Service { code, status, .. }) => {
                        *errors.entry(format!("{status} {code}")).or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(f @ Failure::NoResponse(_)) => {
                        return Err(format!(
                            "node {} {key} after {:?}: {f:?}",
                            node + 1,
                            began.elapsed()
                        ))
                    }
                }
            }
            Ok((acked, errors))
        }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let began = Instant::now();
    cluster.pg.restart().expect("restart PostgreSQL");
    eprintln!("PostgreSQL restarted in {:?}", began.elapsed());
    rt.block_on(async {
        for (i, c) in clients.iter().enumerate() {
            let took = until_serving(c, "restart", &format!("after{i}"), Duration::from_secs(15))
                .await
                .unwrap_or_else(|e| panic!("node {}: {e}\n{}", i + 1, cluster.logs()));
            eprintln!(
                "node {} serving again {took:?} after the restart returned",
                i + 1
            );
        }
    });
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in load {
        let (a, errors) = rt
            .block_on(t)
            .unwrap()
            .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        eprintln!(
            "during the restart: {} acknowledged, errors {errors:?}",
            a.len()
        );
        for e in errors.keys() {
            assert!(
                e.starts_with('5') || e.contains("Throttl"),
                "unexpected error during the outage: {e}"
            );
        }
        acked.extend(a);
    }
    rt.block_on(async {
        for c in &clients {
            let missing = missing_keys(c, "restart", &acked).await;
            assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
        }
    });
}

// ---- 8. failover to a promoted standby -----------------------------------------------------

#[test]
fn nodes_follow_a_promoted_standby() {
    let primary = PgServer::start().expect("start PostgreSQL");
    let standby = primary.start_standby().expect("start the standby");
    let storage = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=ferrodyn dbname=ferrodyn target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let cluster = Cluster::on(primary, &storage, 3);
    let clients = cluster.clients(TIMEOUT);
    let rt = runtime();
    let mut acked = Vec::new();
    rt.block_on(async {
        create_table(&clients[0], "failover").await;
        for i in 0..60 {
            let key = format!("before{i}");
            put(&clients[i % 3], "failover", &key, &[("data", "x")])
                .await
                .unwrap_or_else(|f| panic!("{key}: {f:?}"));
            acked.push(key);
        }
    });
    // Wait until the standby has replayed everything the primary wrote.
    let lsn = cluster.pg.psql("SELECT pg_current_wal_lsn()").unwrap();
    let lsn = lsn.trim();
    let began = Instant::now();
    loop {
        let caught_up = standby
            .psql(&format!(
                "SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"
            ))
            .unwrap();
        if caught_up.trim() == "t" {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "standby not at {lsn} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("standby caught up with {lsn}");

    cluster.pg.kill9().expect("kill the primary");
    standby.promote().expect("promote the standby");
    let promoted = Instant::now();
    rt.block_on(async {
        for (i, c) in clients.iter().enumerate() {
            let took = until_serving(c, "failover", &format!("after{i}"), Duration::from_secs(20))
                .await
                .unwrap_or_else(|e| panic!("node {}: {e}\n{}", i + 1, cluster.logs()));
            eprintln!(
                "node {} serving on the promoted standby after {took:?}",
                i + 1
            );
        }
        eprintln!(
            "all nodes serving {:?} after the promotion",
            promoted.elapsed()
        );
        for (i, c) in clients.iter().enumerate() {
            let missing = missing_keys(c, "failover", &acked).await;
            assert!(
                missing.is_empty(),
                "node {}: lost in the failover: {missing:?}",
                i + 1
            );
        }
        // Writes keep working through every node.
        for i in 0..30 {
            let key = format!("later{i}");
            put(&clients[i % 3], "failover", &key, &[])
                .await
                .unwrap_or_else(|f| panic!("{key}: {f:?}"));
            let item = get(&clients[(i + 1) % 3], "failover", &key).await.unwrap();
            assert!(
                item.is_some(),
                "{key} written through one node, missing through another"
            );
        }
    });
}

/// A TransactWriteItems retried with the same ClientRequestToken through another node is not
/// applied twice, and the token with a different request is refused, on any node.
#[test]
fn client_request_tokens_hold_across_nodes() {
    let cluster = Cluster::start(3);
    let clients = cluster.clients(TIMEOUT);
    runtime().block_on(async {
        create_table(&clients[0], "tokens").await;
        let add = |amount: u64| {
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("tokens")
                        .key("pk", s("counter"))
                        .update_expression("ADD n :amt")
                        .expression_attribute_values(":amt", n(amount))
                        .build()
                        .unwrap(),
                )
                .build()
        };
        for c in &clients {
            c.transact_write_items()
                .transact_items(add(1))
                .client_request_token("token-1")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{:?}\n{}", failure(&e), cluster.logs()));
        }
        let item = get(&clients[2], "tokens", "counter")
            .await
            .unwrap()
            .expect("item");
        assert_eq!(
            num(&item, "n"),
            1,
            "applied once for three sends of one token"
        );
        for c in &clients {
            let err = c
                .transact_write_items()
                .transact_items(add(2))
                .client_request_token("token-1")
                .send()
                .await
                .expect_err("a different request with a used token");
            assert_eq!(failure(&err).code(), "IdempotentParameterMismatchException");
        }
        // A new token applies again.
        clients[1]
            .transact_write_items()
            .transact_items(add(1))
            .client_request_token("token-2")
            .send()
            .await
            .unwrap();
        let item = get(&clients[0], "tokens", "counter")
            .await
            .unwrap()
            .expect("item");
        assert_eq!(num(&item, "n"), 2);
    });
}

/// With the audit log on, writes through every node form one gapless hash chain: every
/// acknowledged write has its record, and verification through any node finds it intact.
#[test]
fn one_audit_chain_across_nodes() {
    let cluster = Cluster::start_with(3, &["--audit", "on"]);
    let clients = cluster.clients(TIMEOUT);
    const WORKERS: usize = 12;
    const PUTS: usize = 20;
    runtime().block_on(async {
        create_table(&clients[0], "audited").await;
        let mut tasks = Vec::new();
        for w in 0..WORKERS {
            let c = clients[w % 3].clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..PUTS {
                    put(&c, "audited", &format!("w{w}-{i}"), &[])
                        .await
                        .map_err(|e| format!("worker {w}: {e:?}"))?;
                }
                Ok::<_, String>(())
            }));
        }
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        }
    });
    let http = reqwest::blocking::Client::new();
    for node in &cluster.nodes {
        let (status, text) = ferrodyn_testkit::call(
            &http,
            &node.url,
            "FerrodynAdmin_20261201.VerifyAuditLog",
            "{}".into(),
        )
        .expect("request");
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["Intact"], true, "{v}");
        // CreateTable, then one record per put.
        assert_eq!(
            v["Checked"].as_u64(),
            Some((1 + WORKERS * PUTS) as u64),
            "{v}"
        );
    }
}

/// TTL sweeps run on one node at a time (the holder of the background lease) and fail over:
/// whichever node is killed, the items that expire afterwards are still deleted, by another.
#[test]
fn ttl_sweeps_fail_over_when_a_node_dies() {
    let ttl_flags = ["--ttl-interval", "0.2"];
    let mut cluster = Cluster::start_with(2, &ttl_flags);
    let url = cluster.pg.url();
    let logs = tempfile::tempdir().unwrap();
    let rt = runtime();
    let first = cluster.nodes[0].client(TIMEOUT);
    rt.block_on(async {
        create_table(&first, "expiring").await;
        first
            .update_time_to_live()
            .table_name("expiring")
            .time_to_live_specification(
                aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("exp")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    });
    let past = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60)
        .to_string();
    for victim in 0..2 {
        cluster.nodes[victim].kill9();
        let survivor = cluster.nodes[1 - victim].client(TIMEOUT);
        rt.block_on(async {
            for i in 0..5 {
                survivor
                    .put_item()
                    .table_name("expiring")
                    .item("pk", s(format!("v{victim}-{i}")))
                    .item("exp", n(&past))
                    .send()
                    .await
                    .unwrap();
            }
            // The lease of a dead holder expires after 10 s; the survivor then sweeps.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let left = scan_all(&survivor, "expiring", None).await.len();
                if left == 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{left} expired items left 30 s after node {} died\n{}",
                    victim + 1,
                    cluster.logs()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let log = logs.path().join(format!("replacement{victim}.log"));
        cluster.nodes[victim] = common::Node::start_with(&url, &log, &ttl_flags);
    }
}
