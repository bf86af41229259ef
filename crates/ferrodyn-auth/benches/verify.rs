//! Cost of verifying one SigV4-signed DynamoDB request on this CPU (SHA-NI where the CPU has
//! it), for requests as the `ferrodyn bench` client sends them and as the AWS SDK signs them (more
//! signed headers, a fresh invocation id each). Each round cycles through 64 distinct requests
//! (other keys in the body, other invocation ids) signed in the same second, as traffic is: the
//! verifier's memo of leading blocks sees what it sees in a server, no more. Prints nanoseconds
//! per verification; `cargo bench -p ferrodyn-auth --bench verify`.

#[path = "../tests/sigv4_support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use ferrodyn_auth::sigv4::{KeyMaterial, RequestParts, Verifier};
use support::{keys, now, sign_req, Req, Signing};

/// Distinct requests per round.
const DISTINCT: usize = 64;

fn body(i: usize) -> String {
    format!(r#"{{"TableName":"bench","Key":{{"pk":{{"S":"user{i:08}"}},"sk":{{"S":"0"}}}}}}"#)
}

fn measure(name: &str, reqs: &[Req]) {
    let owned: Vec<Vec<(&str, &[u8])>> = reqs
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect()
        })
        .collect();
    let parts: Vec<RequestParts<'_>> = reqs
        .iter()
        .zip(&owned)
        .map(|(req, headers)| RequestParts {
            method: &req.method,
            path: &req.path,
            query: req.query.as_deref(),
            headers,
            body: &req.body,
        })
        .collect();
    let verifier = Verifier::new();
    let at = now();
    for p in &parts {
        assert!(
            verifier.verify(p, at, &keys).is_ok(),
            "{name}: does not verify"
        );
    }
    // The server's lookup: a borrowed key, nothing copied.
    let key = keys(support::AKID).expect("test key");
    let lookup = |id: &str| (id == support::AKID).then_some(&key);
    // ITERATIONS=1000 for a run under callgrind.
    let n: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for i in 0..n {
            let p = &parts[i % DISTINCT];
            black_box(verifier.verify_key(black_box(p), at, lookup).is_ok());
        }
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
    }
    let _: &KeyMaterial = &key;
    println!("{name:<40} {best:>8.0} ns/verification (best of 7 rounds of {n})");
}

fn main() {
    // What `ferrodyn bench` signs: four headers.
    let bench: Vec<Req> = (0..DISTINCT)
        .map(|i| {
            let mut r =
                Req::dynamodb(&body(i)).set_header("X-Amz-Target", "DynamoDB_20120810.GetItem");
            sign_req(&mut r, &Signing::default());
            r
        })
        .collect();
    measure("GetItem, bench client headers", &bench);

    // What the AWS SDK for Rust sends and signs besides; the invocation id is new each time.
    let sdk: Vec<Req> = (0..DISTINCT)
        .map(|i| {
            let b = body(i);
            let mut r = Req::dynamodb(&b)
                .set_header("X-Amz-Target", "DynamoDB_20120810.GetItem")
                .header("content-length", &b.len().to_string())
                .header(
                    "x-amz-user-agent",
                    "aws-sdk-rust/1.3.9 api/dynamodb/1.136.0 os/linux lang/rust/1.95.0",
                )
                .header(
                    "amz-sdk-invocation-id",
                    &format!("0b7b9c6c-55a4-4e6c-9d43-{i:012x}"),
                )
                .header("amz-sdk-request", "attempt=1; max=3");
            sign_req(&mut r, &Signing::default());
            r
        })
        .collect();
    measure("GetItem, AWS SDK headers", &sdk);
}
