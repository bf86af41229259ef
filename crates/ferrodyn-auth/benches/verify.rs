//! Cost of verifying one SigV4-signed DynamoDB request on this CPU (SHA-NI where the CPU has
//! it), for the request the `ferrodyn bench` client sends and for one signed like the AWS SDK
//! signs (more signed headers). Prints nanoseconds per verification; `cargo bench -p
//! ferrodyn-auth --bench verify`.

#[path = "../tests/sigv4_support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use ferrodyn_auth::sigv4::{KeyMaterial, RequestParts, Verifier};
use support::{keys, now, sign_req, Req, Signing};

const BODY: &str = r#"{"TableName":"bench","Key":{"pk":{"S":"user00000042"},"sk":{"S":"0"}}}"#;

fn measure(name: &str, req: &Req) {
    let headers: Vec<(&str, &[u8])> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let parts = RequestParts {
        method: &req.method,
        path: &req.path,
        query: req.query.as_deref(),
        headers: &headers,
        body: &req.body,
    };
    let verifier = Verifier::new();
    let at = now();
    assert!(
        verifier.verify(&parts, at, &keys).is_ok(),
        "{name}: does not verify"
    );
    // The server's lookup: a borrowed key, nothing copied.
    let key = keys(support::AKID).expect("test key");
    let lookup = |id: &str| (id == support::AKID).then_some(&key);
    let _: &KeyMaterial = verifier.verify_key(&parts, at, lookup).expect("verifies");
    // ITERATIONS=1000 for a run under callgrind.
    let n: u32 = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..n {
            black_box(verifier.verify_key(black_box(&parts), at, lookup).is_ok());
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(n));
    }
    println!("{name:<40} {best:>8.0} ns/verification (best of 7 rounds of {n})");
}

fn main() {
    // What `ferrodyn bench` signs: four headers.
    let mut bench = Req::dynamodb(BODY).set_header("X-Amz-Target", "DynamoDB_20120810.GetItem");
    sign_req(&mut bench, &Signing::default());
    measure("GetItem, bench client headers", &bench);

    // What the AWS SDK for Rust sends and signs besides.
    let mut sdk = Req::dynamodb(BODY)
        .set_header("X-Amz-Target", "DynamoDB_20120810.GetItem")
        .header("content-length", &BODY.len().to_string())
        .header(
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 api/dynamodb/1.136.0 os/linux lang/rust/1.95.0",
        )
        .header(
            "amz-sdk-invocation-id",
            "0b7b9c6c-55a4-4e6c-9d43-2f3b7a1f0c11",
        )
        .header("amz-sdk-request", "attempt=1; max=3");
    sign_req(&mut sdk, &Signing::default());
    measure("GetItem, AWS SDK headers", &sdk);
}
