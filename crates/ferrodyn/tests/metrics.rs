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
