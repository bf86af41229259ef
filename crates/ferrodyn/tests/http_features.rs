//! HTTP features around the API: compression both ways, CORS, tagging, and DescribeEndpoints
//! answering with the address the request came to.

use std::io::{Read, Write};

use ferrodyn_testkit::TestServer;

const CREATE: &str = r#"{"TableName":"tbl","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}"#;
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0";

fn post(
    server: &TestServer,
    op: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let client = reqwest::blocking::Client::builder()
        .no_gzip()
        .no_deflate()
        .build()
        .unwrap();
    let mut req = client
        .post(&server.url)
        .header("x-amz-target", format!("DynamoDB_20120810.{op}"))
        .header("content-type", "application/x-amz-json-1.0")
        .header("authorization", AUTH)
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_and_deflate_requests_are_decoded() {
    let server = TestServer::in_memory();
    assert_eq!(server.raw("CreateTable", CREATE).status, 200);
    let body = gzip(br#"{"TableName":"tbl","Item":{"pk":{"S":"g"}}}"#);
    let r = post(&server, "PutItem", body, &[("content-encoding", "gzip")]);
    assert_eq!(r.status().as_u16(), 200);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(br#"{"TableName":"tbl","Item":{"pk":{"S":"d"}}}"#)
        .unwrap();
    let r = post(
        &server,
        "PutItem",
        z.finish().unwrap(),
        &[("content-encoding", "deflate")],
    );
    assert_eq!(r.status().as_u16(), 200);
    let r = server.raw("Scan", r#"{"TableName":"tbl","Select":"COUNT"}"#);
    assert_eq!(r.json()["Count"], 2);
    // Garbage that claims to be gzip is refused without writing anything.
    let r = post(
        &server,
        "PutItem",
        b"not gzip".to_vec(),
        &[("content-encoding", "gzip")],
    );
    assert_eq!(r.status().as_u16(), 500);
    let r = post(
        &server,
        "PutItem",
        b"{}".to_vec(),
        &[("content-encoding", "br")],
    );
    assert_eq!(r.status().as_u16(), 500);
}

#[test]
fn large_responses_are_compressed_when_accepted() {
    let server = TestServer::in_memory();
    assert_eq!(server.raw("CreateTable", CREATE).status, 200);
    let big = "x".repeat(8000);
    let put = format!(r#"{{"TableName":"tbl","Item":{{"pk":{{"S":"a"}},"v":{{"S":"{big}"}}}}}}"#);
    assert_eq!(server.raw("PutItem", &put).status, 200);
    let get = br#"{"TableName":"tbl","Key":{"pk":{"S":"a"}}}"#.to_vec();
    let plain = post(&server, "GetItem", get.clone(), &[]);
    assert!(plain.headers().get("content-encoding").is_none());
    for (accept, enc) in [
        ("gzip", "gzip"),
        ("br, deflate, gzip", "deflate"),
        ("*", "gzip"),
    ] {
        let r = post(
            &server,
            "GetItem",
            get.clone(),
            &[("accept-encoding", accept)],
        );
        assert_eq!(r.headers()["content-encoding"], enc, "{accept}");
        let crc: u32 = r.headers()["x-amz-crc32"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let raw = r.bytes().unwrap();
        assert_eq!(
            crc,
            ferrodyn_testkit::crc32(&raw),
            "the checksum covers the bytes sent"
        );
        let mut text = String::new();
        if enc == "gzip" {
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_string(&mut text)
                .unwrap();
        } else {
            flate2::read::ZlibDecoder::new(&raw[..])
                .read_to_string(&mut text)
                .unwrap();
        }
        let j: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(j["Item"]["v"]["S"].as_str().unwrap().len(), 8000);
    }
    let r = post(&server, "GetItem", get, &[("accept-encoding", "gzip;q=0")]);
    assert!(r.headers().get("content-encoding").is_none());
}

#[test]
fn cors_headers_only_with_origin() {
    let server = TestServer::in_memory();
    let client = reqwest::blocking::Client::new();
    let r = client.get(&server.url).send().unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = client
        .request(reqwest::Method::OPTIONS, &server.url)
        .header("origin", "http://example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "x-amz-target, authorization",
        )
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.headers()["access-control-allow-methods"], "POST");
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "x-amz-target, authorization"
    );
    assert!(r.headers().get("access-control-max-age").is_some());
    // Opaque bytes in a preflight's values are not reflected (found by the HTTP fuzz target).
    let r = client
        .request(reqwest::Method::OPTIONS, &server.url)
        .header("origin", "http://example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            reqwest::header::HeaderValue::from_bytes(b"x-amz-targe\xff\xfft").unwrap(),
        )
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["access-control-allow-methods"], "POST");
    assert!(r.headers().get("access-control-allow-headers").is_none());
    let r = post(
        &server,
        "ListTables",
        b"{}".to_vec(),
        &[("origin", "http://example.com")],
    );
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers().get("access-control-max-age").is_none());
}

#[test]
fn tags_round_trip_and_arn_errors() {
    let server = TestServer::in_memory();
    let r = server.raw("CreateTable", CREATE);
    let arn = r.json()["TableDescription"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let tag = |body: String| server.raw("TagResource", &body);
    let r = tag(format!(
        r#"{{"ResourceArn":"{arn}","Tags":[{{"Key":"a","Value":"1"}},{{"Key":"b","Value":"2"}}]}}"#
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "", "TagResource answers with an empty body");
    let r = server.raw(
        "UntagResource",
        &format!(r#"{{"ResourceArn":"{arn}","TagKeys":["a"]}}"#),
    );
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = server.raw(
        "ListTagsOfResource",
        &format!(r#"{{"ResourceArn":"{arn}"}}"#),
    );
    assert_eq!(
        r.json()["Tags"],
        serde_json::json!([{"Key": "b", "Value": "2"}])
    );
    let r = server.raw(
        "ListTagsOfResource",
        &format!(r#"{{"ResourceArn":"{arn}x"}}"#),
    );
    assert_eq!(r.error_code(), "ResourceNotFoundException");
    let r = server.raw(
        "ListTagsOfResource",
        r#"{"ResourceArn":"arn:aws:dynamodb:us-east-1:111122223333:table/tbl"}"#,
    );
    assert_eq!(r.error_code(), "AccessDeniedException");
    let r = server.raw(
        "ListTagsOfResource",
        &format!(r#"{{"ResourceArn":"{arn}/index/i"}}"#),
    );
    assert_eq!(r.error_code(), "ValidationException");
    let many: Vec<String> = (0..51)
        .map(|i| format!(r#"{{"Key":"k{i}","Value":"v"}}"#))
        .collect();
    let r = tag(format!(
        r#"{{"ResourceArn":"{arn}","Tags":[{}]}}"#,
        many.join(",")
    ));
    assert_eq!(r.error_code(), "ValidationException");
}

#[test]
fn describe_endpoints_answers_with_the_address_the_request_came_to() {
    let server = TestServer::in_memory();
    let r = server.raw("DescribeEndpoints", "{}");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"Endpoints": [{"Address": server.addr.to_string(), "CachePeriodInMinutes": 1440}]})
    );
    let client = server.client();
    // Raw requests block, so this test is not async itself.
    let out = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client.describe_endpoints().send())
        .unwrap();
    assert_eq!(out.endpoints()[0].address(), server.addr.to_string());
}
