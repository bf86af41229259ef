//! Operations endpoints against a real server: `/metrics` counters and histograms after known
//! traffic, `/health/live` and `/health/ready`, `/metrics` authorization when keys are
//! enforced, and the binary's JSON logs with request ids and its slow-request log.

mod auth_support;

use std::io::{BufRead, Read};
use std::sync::Arc;

use auth_support::*;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use ferrodyn_auth::keys::{KeySource, KeyStore};
use ferrodyn_core::EngineConfig;
use ferrodyn_metrics::text::{self, Sample};
use ferrodyn_server::auth::AuthMode;
use ferrodyn_server::ServerOptions;
use ferrodyn_storage::{Durability, MemoryStorage};
use ferrodyn_testkit::{create_hash_table, RawResponse, TestServer};

fn get(url: &str, headers: &[(String, String)]) -> RawResponse {
    let client = reqwest::blocking::Client::new();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    RawResponse::from_blocking(req.send().expect("GET"))
}

fn scrape(base: &str) -> Vec<Sample> {
    let r = get(&format!("{base}/metrics"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type").unwrap().starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    text::parse(&r.body).unwrap()
}

fn v(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    text::value(s, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_operation_and_outcome() {
    let server = TestServer::in_memory();
    let c = server.client();
    create_hash_table(&c, "Metered").await;
    for i in 0..3 {
        c.put_item()
            .table_name("Metered")
            .item("pk", AV::S(format!("k{i}")))
            .item("v", AV::S("x".repeat(100)))
            .send()
            .await
            .unwrap();
    }
    let missing = c
        .get_item()
        .table_name("Missing")
        .key("pk", AV::S("a".into()))
        .send()
        .await;
    assert!(missing.is_err());

    let url = server.url.clone();
    let s = tokio::task::spawn_blocking(move || scrape(&url))
        .await
        .unwrap();
    let put_ok = [("operation", "PutItem"), ("outcome", "ok")];
    assert_eq!(v(&s, "ferrodyn_requests_total", &put_ok), 3.0);
    assert_eq!(
        v(
            &s,
            "ferrodyn_requests_total",
            &[
                ("operation", "GetItem"),
                ("outcome", "ResourceNotFoundException")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            &s,
            "ferrodyn_requests_total",
            &[("operation", "GetItem"), ("outcome", "ok")]
        ),
        0.0
    );
    assert_eq!(
        v(
            &s,
            "ferrodyn_requests_total",
            &[("operation", "CreateTable"), ("outcome", "ok")]
        ),
        1.0
    );
    let put = [("operation", "PutItem")];
    assert_eq!(v(&s, "ferrodyn_request_duration_seconds_count", &put), 3.0);
    assert_eq!(
        v(
            &s,
            "ferrodyn_request_duration_seconds_bucket",
            &[("operation", "PutItem"), ("le", "+Inf")]
        ),
        3.0
    );
    assert!(v(&s, "ferrodyn_request_duration_seconds_sum", &put) > 0.0);
    assert_eq!(
        v(
            &s,
            "ferrodyn_request_duration_seconds_count",
            &[("operation", "GetItem")]
        ),
        1.0
    );
    // Buckets are cumulative: never decreasing in `le`, ending at the count.
    let mut buckets: Vec<(f64, f64)> = s
        .iter()
        .filter(|x| {
            x.name == "ferrodyn_request_duration_seconds_bucket"
                && x.labels
                    .iter()
                    .any(|(k, v)| k == "operation" && v == "PutItem")
        })
        .map(|x| {
            let le = &x.labels.iter().find(|(k, _)| k == "le").unwrap().1;
            (le.parse::<f64>().unwrap_or(f64::INFINITY), x.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().unwrap().1, 3.0);

    assert_eq!(v(&s, "ferrodyn_table_items", &[("table", "Metered")]), 3.0);
    assert!(v(&s, "ferrodyn_table_size_bytes", &[("table", "Metered")]) > 300.0);
    assert!(v(&s, "ferrodyn_connections_total", &[]) >= 1.0);
    assert!(v(&s, "ferrodyn_process_resident_memory_bytes", &[]) > 0.0);
    assert_eq!(v(&s, "ferrodyn_ttl_deleted_items", &[]), 0.0);

    // Scrapes are not requests: one more PutItem moves the counters by exactly one.
    c.put_item()
        .table_name("Metered")
        .item("pk", AV::S("k3".into()))
        .send()
        .await
        .unwrap();
    let url = server.url.clone();
    let s2 = tokio::task::spawn_blocking(move || scrape(&url))
        .await
        .unwrap();
    assert_eq!(v(&s2, "ferrodyn_requests_total", &put_ok), 4.0);
    assert_eq!(v(&s2, "ferrodyn_request_duration_seconds_count", &put), 4.0);
    assert_eq!(v(&s2, "ferrodyn_table_items", &[("table", "Metered")]), 4.0);
}

#[test]
fn unknown_targets_and_bad_signatures_count_as_unknown_operation() {
    let server = TestServer::in_memory();
    let r = server.raw_with(Some("DynamoDB_20120810.Nope"), "{}", true);
    assert_eq!(r.status, 400);
    let r = server.raw_with(Some("DynamoDB_20120810.ListTables"), "{}", false);
    assert_eq!(r.status, 400);
    let s = scrape(&server.url);
    assert_eq!(
        v(
            &s,
            "ferrodyn_requests_total",
            &[
                ("operation", "unknown"),
                ("outcome", "UnknownOperationException")
            ]
        ),
        1.0
    );
    assert_eq!(
        v(
            &s,
            "ferrodyn_requests_total",
            &[
                ("operation", "unknown"),
                ("outcome", "MissingAuthenticationTokenException")
            ]
        ),
        1.0
    );
}

#[test]
fn health_endpoints_answer() {
    let server = TestServer::in_memory();
    let live = get(&format!("{}/health/live", server.url), &[]);
    assert_eq!(
        (live.status, live.body.as_str()),
        (200, r#"{"status":"live"}"#)
    );
    assert!(live.header("x-amzn-RequestId").is_some());
    let ready = get(&format!("{}/health/ready", server.url), &[]);
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, r#"{"status":"ready"}"#)
    );
}

/// A GET of `base/path` signed with SigV4 (empty body), as any AWS signer makes it.
fn signed_get(base: &str, path: &str, cred: &Cred) -> (String, Vec<(String, String)>) {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let identity =
        aws_credential_types::Credentials::new(&cred.akid, &cred.secret, None, None, "tests")
            .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("dynamodb")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(b"")).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (added, _) = instructions.into_parts();
    let headers = added
        .iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect();
    (url, headers)
}

#[test]
fn metrics_need_get_metrics_when_keys_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let path = keys_path(dir.path());
    let ops = Cred::new("AKIDOPS", "ops-secret");
    let data = Cred::new("AKIDDATA", "data-secret");
    write_keys(
        &path,
        &[
            key_entry(
                "ops",
                &ops,
                Some(allow(
                    &["ferrodyn:GetMetrics"],
                    &format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:metrics"),
                )),
            ),
            key_entry("data", &data, Some(allow(&["dynamodb:*"], "*"))),
        ],
    );
    let store = Arc::new(
        KeyStore::open(vec![KeySource {
            path,
            required: true,
        }])
        .unwrap(),
    );
    let server = TestServer::with_options(
        Arc::new(MemoryStorage::new()),
        EngineConfig {
            durability: Durability::Buffered,
            ..EngineConfig::default()
        },
        ServerOptions {
            auth: AuthMode::Enforced(store),
            ..ServerOptions::default()
        },
    );
    let url = format!("{}/metrics", server.url);

    let unsigned = get(&url, &[]);
    assert_eq!(unsigned.status, 400, "{}", unsigned.body);
    assert_eq!(unsigned.error_code(), "MissingAuthenticationTokenException");

    // dynamodb:* does not grant Ferrodyn's own actions.
    let (u, h) = signed_get(&server.url, "/metrics", &data);
    let denied = get(&u, &h);
    assert_eq!(denied.status, 400, "{}", denied.body);
    assert_eq!(denied.error_code(), "AccessDeniedException");
    assert_eq!(
        denied.message(),
        implicit_deny(
            "data",
            "ferrodyn:GetMetrics",
            &format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:metrics")
        )
    );

    let (u, h) = signed_get(&server.url, "/metrics", &ops);
    let ok = get(&u, &h);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let s = text::parse(&ok.body).unwrap();
    assert!(s.iter().any(|x| x.name == "ferrodyn_connections_total"));

    // Health checks are never authenticated.
    for p in ["/health/live", "/health/ready"] {
        assert_eq!(get(&format!("{}{p}", server.url), &[]).status, 200, "{p}");
    }
}

/// The binary with `--log-format json --slow-request-ms 0`: every request is slow, and its log
/// line carries the request id of the response's `x-amzn-RequestId` header.
#[test]
fn json_logs_carry_the_request_id_of_slow_requests() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodyn"))
        .args([
            "serve",
            "--in-memory",
            "--port",
            "0",
            "--log-format",
            "json",
            "--slow-request-ms",
            "0",
        ])
        // With the server's debug lines on, every line of a request carries its id in `span`;
        // the slow-request line also has it among its own fields at any level.
        .env("FERRODYN_LOG", "info,ferrodyn_server=debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let r = reqwest::blocking::Client::new()
        .post(&base)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDB_20120810.DescribeTable")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(r#"{"TableName":"Nothing"}"#)
        .send()
        .unwrap();
    let id = r.headers()["x-amzn-requestid"].to_str().unwrap().to_owned();
    assert_eq!(r.status(), 400);
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let slow: Vec<serde_json::Value> = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["fields"]["message"] == "slow request")
        .collect();
    assert_eq!(slow.len(), 1, "{err}");
    let j = &slow[0];
    assert_eq!(j["level"], "WARN");
    assert_eq!(j["fields"]["request_id"], id.as_str());
    assert_eq!(j["span"]["request_id"], id.as_str());
    assert_eq!(j["fields"]["operation"], "DescribeTable");
    assert_eq!(j["fields"]["table"], "Nothing");
    assert_eq!(j["fields"]["outcome"], "ResourceNotFoundException");
    assert!(j["fields"]["duration_ms"].as_f64().is_some());
}

/// A value of a sample that must be there.
fn present(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    text::value(s, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} missing"))
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
fn items_bytes_and_capacity_are_counted_by_table_and_index() {
    use serde_json::json;
    let server = TestServer::in_memory();
    server.ok(
        "CreateTable",
        json!({
            "TableName": "Act",
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}
            ],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "byG",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}
            }],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    // Item sizes by DynamoDB's rules: attribute names plus string values.
    // a: "pk"+"a" (3) + "g"+"x" (2) + "v" + 1994 chars (1995) = 2000 bytes.
    let a = json!({"pk": {"S": "a"}, "g": {"S": "x"}, "v": {"S": "x".repeat(1994)}});
    // b: 3 + "v" + 94 chars = 98 bytes, not in the index (no `g`).
    let b = json!({"pk": {"S": "b"}, "v": {"S": "y".repeat(94)}});
    let put = server.ok(
        "PutItem",
        json!({"TableName": "Act", "Item": a, "ReturnConsumedCapacity": "INDEXES"}),
    );
    // The figures below are the ones ConsumedCapacity reports.
    assert_eq!(put["ConsumedCapacity"]["Table"]["CapacityUnits"], 2.0);
    assert_eq!(
        put["ConsumedCapacity"]["GlobalSecondaryIndexes"]["byG"]["CapacityUnits"],
        2.0
    );
    server.ok("PutItem", json!({"TableName": "Act", "Item": b}));
    let key = |k: &str| json!({"pk": {"S": k}});
    server.ok(
        "GetItem",
        json!({"TableName": "Act", "Key": key("a"), "ConsistentRead": true}),
    );
    server.ok("GetItem", json!({"TableName": "Act", "Key": key("a")}));
    server.ok("GetItem", json!({"TableName": "Act", "Key": key("none")}));
    let q = server.ok(
        "Query",
        json!({
            "TableName": "Act", "IndexName": "byG",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": {"S": "x"}}
        }),
    );
    assert_eq!(q["ScannedCount"], 1);
    server.ok("DeleteItem", json!({"TableName": "Act", "Key": key("b")}));
    // a grows by "w"+"z": 2002 bytes.
    server.ok(
        "UpdateItem",
        json!({
            "TableName": "Act", "Key": key("a"),
            "UpdateExpression": "SET w = :z",
            "ExpressionAttributeValues": {":z": {"S": "z"}}
        }),
    );
    server.ok(
        "TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": "Act", "Key": key("a")}}]}),
    );
    // c: "pk"+"c" + "v"+"q" = 5 bytes; d: 3 bytes.
    server.ok(
        "TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "Act",
            "Item": {"pk": {"S": "c"}, "v": {"S": "q"}}}}]}),
    );
    server.ok(
        "BatchWriteItem",
        json!({"RequestItems": {"Act": [{"PutRequest": {"Item": {"pk": {"S": "d"}}}}]}}),
    );

    let s = scrape(&server.url);
    let t = [("table", "Act")];
    // Read: two GetItems of a, the Query's one index entry, the TransactGet of a (the
    // GetItem of a missing key reads nothing, but is charged).
    assert_eq!(present(&s, "ferrodyn_table_read_items_total", &t), 4.0);
    assert_eq!(
        present(&s, "ferrodyn_table_read_bytes_total", &t),
        (2000 + 2000 + 2000 + 2002) as f64
    );
    // 1 (consistent) + 0.5 + 0.5 (missing) + 2 (transactional, consistent, doubled).
    assert_eq!(
        present(&s, "ferrodyn_table_consumed_read_capacity_units_total", &t),
        4.0
    );
    let ix = [("table", "Act"), ("index", "byG")];
    assert_eq!(
        present(&s, "ferrodyn_index_consumed_read_capacity_units_total", &ix),
        0.5
    );
    // Written: puts of a and b, delete of b, update of a, transactional put of c, batch put
    // of d.
    assert_eq!(present(&s, "ferrodyn_table_written_items_total", &t), 6.0);
    assert_eq!(
        present(&s, "ferrodyn_table_written_bytes_total", &t),
        (2000 + 98 + 98 + 2002 + 5 + 3) as f64
    );
    // 2 + 1 + 1 + 2 + 2 (transactional) + 1.
    assert_eq!(
        present(&s, "ferrodyn_table_consumed_write_capacity_units_total", &t),
        9.0
    );
    // The index took a's put and its update.
    assert_eq!(
        present(
            &s,
            "ferrodyn_index_consumed_write_capacity_units_total",
            &ix
        ),
        4.0
    );
    assert_eq!(present(&s, "ferrodyn_stream_records_total", &t), 0.0);
    // No stream: no lag.
    assert_eq!(
        text::value(&s, "ferrodyn_stream_consumer_lag_seconds", &t),
        None
    );
    // A failed condition counts nothing.
    let (code, _) = server.err(
        "PutItem",
        json!({"TableName": "Act", "Item": {"pk": {"S": "a"}},
               "ConditionExpression": "attribute_not_exists(pk)"}),
    );
    assert_eq!(code, "ConditionalCheckFailedException");
    let s2 = scrape(&server.url);
    assert_eq!(present(&s2, "ferrodyn_table_written_items_total", &t), 6.0);
    // A dropped table is gone from the next scrape.
    server.ok("DeleteTable", json!({"TableName": "Act"}));
    let s3 = scrape(&server.url);
    assert_eq!(
        text::value(&s3, "ferrodyn_table_read_items_total", &t),
        None
    );
}

#[test]
fn stream_records_and_consumer_lag() {
    use serde_json::json;
    let server = TestServer::in_memory();
    server.ok(
        "CreateTable",
        json!({
            "TableName": "Str",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"}
        }),
    );
    let t = [("table", "Str")];
    let s = scrape(&server.url);
    assert_eq!(present(&s, "ferrodyn_stream_records_total", &t), 0.0);
    assert_eq!(present(&s, "ferrodyn_stream_consumer_lag_seconds", &t), 0.0);
    for i in 0..5 {
        server.ok(
            "PutItem",
            json!({"TableName": "Str", "Item": {"pk": {"S": format!("k{i}")}}}),
        );
    }
    // Overwriting with the same item changes nothing: no record.
    server.ok(
        "PutItem",
        json!({"TableName": "Str", "Item": {"pk": {"S": "k0"}}}),
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let s = scrape(&server.url);
    assert_eq!(present(&s, "ferrodyn_stream_records_total", &t), 5.0);
    let lag = present(&s, "ferrodyn_stream_consumer_lag_seconds", &t);
    assert!((1.0..60.0).contains(&lag), "{lag}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let later = present(
        &scrape(&server.url),
        "ferrodyn_stream_consumer_lag_seconds",
        &t,
    );
    assert!(
        later > lag,
        "lag rises while nobody reads: {lag} then {later}"
    );

    // A consumer reads every shard from its start, one record per call.
    let arn = server.ok("DescribeTable", json!({"TableName": "Str"}))["Table"]["LatestStreamArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let shards = streams_call(&server, "DescribeStream", json!({"StreamArn": arn}))
        ["StreamDescription"]["Shards"]
        .as_array()
        .unwrap()
        .clone();
    let mut read = 0;
    let mut first = true;
    for shard in &shards {
        let mut it = streams_call(
            &server,
            "GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard["ShardId"],
                   "ShardIteratorType": "TRIM_HORIZON"}),
        )["ShardIterator"]
            .as_str()
            .map(str::to_owned);
        while let Some(i) = it.take() {
            let page = streams_call(
                &server,
                "GetRecords",
                json!({"ShardIterator": i, "Limit": 1}),
            );
            let n = page["Records"].as_array().unwrap().len();
            read += n;
            if n == 0 {
                break;
            }
            if first {
                // Part read: still behind.
                first = false;
                let mid = present(
                    &scrape(&server.url),
                    "ferrodyn_stream_consumer_lag_seconds",
                    &t,
                );
                assert!(mid > 0.0, "{mid}");
            }
            it = page["NextShardIterator"].as_str().map(str::to_owned);
        }
    }
    assert_eq!(read, 5);
    let s = scrape(&server.url);
    assert_eq!(present(&s, "ferrodyn_stream_consumer_lag_seconds", &t), 0.0);
    assert_eq!(present(&s, "ferrodyn_stream_records_total", &t), 5.0);
}

#[test]
fn storage_internals_on_fjall_and_not_in_memory() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::durable(dir.path());
    server.ok(
        "CreateTable",
        json!({
            "TableName": "Dur",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
    );
    let before = scrape(&server.url);
    for i in 0..10 {
        server.ok(
            "PutItem",
            json!({"TableName": "Dur", "Item": {"pk": {"S": format!("k{i}")}}}),
        );
    }
    for _ in 0..3 {
        server.ok(
            "GetItem",
            json!({"TableName": "Dur", "Key": {"pk": {"S": "k1"}}}),
        );
    }
    let s = scrape(&server.url);
    let d = |name: &str| present(&s, name, &[]) - present(&before, name, &[]);
    // Every put waited for a group-commit fsync: the syncs since covered ten batches at least,
    // and no more syncs ran than batches they covered.
    let syncs = d("ferrodyn_storage_fsync_duration_seconds_count");
    let batches = d("ferrodyn_storage_group_commit_batches_sum");
    assert!(syncs >= 1.0, "{syncs}");
    assert!(batches >= 10.0 && batches >= syncs, "{batches} {syncs}");
    assert!(d("ferrodyn_storage_group_commit_batches_count") >= 1.0);
    assert!(present(&s, "ferrodyn_storage_fsync_duration_seconds_sum", &[]) > 0.0);
    assert_eq!(
        present(
            &s,
            "ferrodyn_storage_fsync_duration_seconds_bucket",
            &[("le", "+Inf")]
        ),
        present(&s, "ferrodyn_storage_fsync_duration_seconds_count", &[])
    );
    assert!(present(&s, "ferrodyn_storage_memtable_bytes", &[]) > 0.0);
    assert!(present(&s, "ferrodyn_storage_journals", &[]) >= 1.0);
    assert!(present(&s, "ferrodyn_storage_journal_bytes", &[]) > 0.0);
    for name in [
        "ferrodyn_storage_sealed_memtables",
        "ferrodyn_storage_pending_flushes",
        "ferrodyn_storage_active_compactions",
        "ferrodyn_storage_compactions_total",
        "ferrodyn_storage_segments",
        "ferrodyn_storage_block_cache_bytes",
    ] {
        present(&s, name, &[]);
    }
    assert!(present(&s, "ferrodyn_storage_block_cache_capacity_bytes", &[]) > 0.0);
    // The first GetItem of k1 misses the read cache, the next two hit it.
    assert!(d("ferrodyn_storage_read_cache_hits_total") >= 2.0);
    assert!(d("ferrodyn_storage_read_cache_misses_total") >= 1.0);
    let ratio = present(&s, "ferrodyn_storage_read_cache_hit_ratio", &[]);
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    assert!(present(&s, "ferrodyn_storage_read_cache_bytes", &[]) > 0.0);

    // The in-memory engine has none of these.
    let mem = TestServer::in_memory();
    let s = scrape(&mem.url);
    let storage: Vec<&str> = s
        .iter()
        .map(|x| x.name.as_str())
        .filter(|n| n.starts_with("ferrodyn_storage_"))
        .collect();
    assert!(storage.is_empty(), "{storage:?}");
}
