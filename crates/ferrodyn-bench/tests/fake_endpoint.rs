//! End-to-end runs of the bench client against a tiny in-process fake DynamoDB
//! endpoint (a hyper server on 127.0.0.1:0).
//!
//! The fake answers `{}` to most operations, canned items to GetItem/Query, an
//! ACTIVE table to DescribeTable, and verifies every request's SigV4 signature.
//! No timing assertions: only counts and error classification are checked.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use ferrodyn_bench::sigv4::{Credentials, Signer};
use ferrodyn_bench::{run, BenchArgs};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    bad_signatures: AtomicU64,
    by_target: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

const KEY_ID: &str = "AKIDTEST";
const SECRET: &str = "test-secret";

/// Recomputes the SigV4 signature from what arrived on the wire.
fn signature_ok(req: &hyper::http::request::Parts, body: &[u8]) -> bool {
    let h = |n: &str| {
        req.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let date = h("x-amz-date");
    let Ok(date16) = <[u8; 16]>::try_from(date.as_bytes()) else {
        return false;
    };
    let headers = [
        ("content-type", h("content-type")),
        ("host", h("host")),
        ("x-amz-date", date),
        ("x-amz-target", h("x-amz-target")),
    ];
    let mut signer = Signer::new(
        Credentials {
            access_key_id: KEY_ID.into(),
            secret_access_key: SECRET.into(),
            session_token: None,
        },
        "eu-west-1",
        "dynamodb",
    );
    let expected = signer.sign("POST", "/", "", &headers, &date16, body);
    h("authorization") == expected && h("content-type") == "application/x-amz-json-1.0"
}

async fn handle(
    seen: Arc<Seen>,
    throttle_puts: bool,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    seen.requests.fetch_add(1, Ordering::Relaxed);
    if !signature_ok(&parts, &body) {
        seen.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start_matches("DynamoDB_20120810.")
        .to_string();
    *seen
        .by_target
        .lock()
        .unwrap()
        .entry(target.clone())
        .or_default() += 1;
    let (status, answer) = match target.as_str() {
        "DescribeTable" => (200, r#"{"Table":{"TableStatus":"ACTIVE"}}"#.to_string()),
        "GetItem" => (
            200,
            r#"{"Item":{"pk":{"S":"user1"},"sk":{"S":"0"},"data":{"S":"x"}}}"#.to_string(),
        ),
        "Query" => {
            let items: Vec<String> = (0..20)
                .map(|i| format!(r#"{{"pk":{{"S":"user1"}},"sk":{{"S":"{i}"}}}}"#))
                .collect();
            (200, format!(r#"{{"Count":20,"Items":[{}]}}"#, items.join(",")))
        }
        "PutItem" if throttle_puts => (
            400,
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}"#
                .to_string(),
        ),
        _ => (200, "{}".to_string()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(answer)));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(resp)
}

/// Starts the fake endpoint; returns its URL and the shared request record.
async fn fake_endpoint(throttle_puts: bool) -> (String, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(s.clone(), throttle_puts, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn args(endpoint: &str, extra: &[&str]) -> BenchArgs {
    let mut argv = vec![
        "bench",
        "--endpoint",
        endpoint,
        "--quiet",
        "--region",
        "eu-west-1",
        "--access-key-id",
        KEY_ID,
        "--secret-access-key",
        SECRET,
        "--keys",
        "100",
        "--seed",
        "42",
    ];
    // Small defaults unless the caller sets them.
    for (flag, value) in [("--connections", "4"), ("--item-size", "100")] {
        if !extra.contains(&flag) {
            argv.extend_from_slice(&[flag, value]);
        }
    }
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).expect("valid arguments").args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_a_for_one_second_with_create_and_load() {
    let (url, seen) = fake_endpoint(false).await;
    let a = args(
        &url,
        &[
            "--workload",
            "a",
            "--duration",
            "1",
            "--create-table",
            "--load",
            "60",
        ],
    );
    let report = run(&a).await.expect("bench run");
    assert!(report.total_requests > 0);
    assert_eq!(report.total_errors, 0, "{}", report.to_text());
    assert!(report.op("get").is_some_and(|o| o.count > 0));
    assert!(report.op("update").is_some_and(|o| o.count > 0));
    assert_eq!(report.info.loaded_items, 60);
    assert_eq!(seen.bad_signatures.load(Ordering::Relaxed), 0);
    let by_target = seen.by_target.lock().unwrap().clone();
    assert_eq!(by_target.get("CreateTable"), Some(&1));
    // 60 items in batches of 25.
    assert_eq!(by_target.get("BatchWriteItem"), Some(&3));
    // Every measured request reached the server (plus setup requests).
    assert!(seen.requests.load(Ordering::Relaxed) >= report.total_requests);

    let j = report.to_json();
    assert_eq!(j["schema"], ferrodyn_bench::SCHEMA);
    assert_eq!(j["config"]["workload"], "a");
    assert_eq!(j["config"]["distribution"], "zipfian");
    assert!(
        j["operations"]["get"]["latency_ms"]["p99"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_request_count_runs_every_single_operation() {
    let (url, seen) = fake_endpoint(false).await;
    for (workload, op) in [
        ("put", "put"),
        ("get", "get"),
        ("update", "update"),
        ("query", "query"),
        ("batch-write", "batch_write"),
        ("transact-write", "transact_write"),
        ("c", "get"),
        ("d", "get"),
        ("e", "scan"),
        ("f", "read_modify_write"),
    ] {
        let a = args(
            &url,
            &["--workload", workload, "--requests", "200", "--warmup", "0"],
        );
        let report = run(&a).await.expect("bench run");
        assert_eq!(report.total_errors, 0, "{workload}: {}", report.to_text());
        assert!(
            report.op(op).is_some_and(|o| o.count > 0),
            "{workload}: {}",
            report.to_text()
        );
        if workload != "f" {
            // Read-modify-write counts its get and update separately too, so
            // only the other workloads have one recorded request per operation.
            let ops: u64 = report.operations.iter().map(|o| o.count).sum();
            assert_eq!(ops, 200, "{workload}: exactly the requested operations");
        }
    }
    assert_eq!(seen.bad_signatures.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_errors_are_counted_by_type() {
    let (url, _seen) = fake_endpoint(true).await;
    let a = args(&url, &["--workload", "put", "--requests", "50"]);
    let report = run(&a).await.expect("bench run");
    let put = report.op("put").expect("put stats");
    assert_eq!(put.count, 50);
    assert_eq!(put.errors, 50);
    assert_eq!(
        put.errors_by_type,
        vec![("ThrottlingException".to_string(), 50)]
    );
    let j = report.to_json();
    assert_eq!(
        j["operations"]["put"]["errors_by_type"]["ThrottlingException"],
        50
    );
}

#[tokio::test]
async fn unreachable_endpoint_is_an_error_not_a_hang() {
    // Bind then drop to get a port that is very likely closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let a = args(&format!("http://127.0.0.1:{port}"), &["--requests", "1"]);
    assert!(run(&a).await.is_err());
}

#[test]
fn option_parsing_and_defaults() {
    let a = Cli::try_parse_from(["bench", "--load", "--quiet"])
        .unwrap()
        .args;
    assert_eq!(a.load, Some(None));
    assert!(a.quiet);
    assert_eq!(a.endpoint, "http://127.0.0.1:8000");
    assert_eq!(a.table, "ferrodyn-bench");
    assert_eq!((a.connections, a.item_size, a.duration), (32, 1024, 10.0));
    let a = Cli::try_parse_from(["bench", "--load", "5", "--workload", "batch-write"])
        .unwrap()
        .args;
    assert_eq!(a.load, Some(Some(5)));
    assert_eq!(a.workload, ferrodyn_bench::workload::Workload::BatchWrite);
    assert_eq!(Cli::try_parse_from(["bench"]).unwrap().args.load, None);
}
